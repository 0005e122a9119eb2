//! `flowcore backtest --sweep KEY=a,b,c ...`: the backtest over every point of a parameter
//! grid, on all cores, a results table sorted by a chosen metric, and walk-forward folds
//! (`--folds N`): the best point of each fold's in-sample window (the fold before it)
//! judged on the fold itself, out of sample.
//!
//! `KEY` is `NAME.param` (every `[[strategy]]` table of that strategy name) or
//! `strategy[i].param` (one table, by its index in the file); `param` may be `cooldown_s`.
//! A value the strategy refuses is an error naming the table and the key, as in the file.

use crate::backtest::{run_backtest, BacktestRun};
use anyhow::{bail, Context};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::InstrumentTable;
use flowcore_core::strategy::ParamValue;
use flowcore_feeds::recording::Input;
use flowcore_gateways::backtest::{window_metrics, BacktestConfig, BacktestMetrics};
use flowcore_runtime::replay::ReplayThreads;
use flowcore_runtime::strategies::StrategyConfig;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One `--sweep KEY=a,b,c`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// `NAME.param` or `strategy[i].param`.
    pub key: String,
    /// The values, as written.
    pub values: Vec<String>,
}

impl SweepAxis {
    /// Parses `KEY=a,b,c`.
    ///
    /// # Errors
    /// No `=`, an empty key or no value.
    pub fn parse(arg: &str) -> anyhow::Result<Self> {
        let (key, values) = arg
            .split_once('=')
            .with_context(|| format!("--sweep {arg:?}: expected KEY=a,b,c"))?;
        let values: Vec<String> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        if key.is_empty() || !key.contains('.') || values.is_empty() {
            bail!("--sweep {arg:?}: expected NAME.param=a,b,c or strategy[i].param=a,b,c");
        }
        Ok(Self {
            key: key.to_string(),
            values,
        })
    }
}

/// Which metric sorts the results (best first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortMetric {
    /// Annualised Sharpe ratio.
    Sharpe,
    /// Annualised Sortino ratio.
    Sortino,
    /// Profit after fees.
    Pnl,
    /// Profit factor.
    ProfitFactor,
    /// Win rate.
    WinRate,
    /// Max drawdown (smallest first).
    MaxDrawdown,
}

impl SortMetric {
    /// Higher is better.
    fn score(self, m: &BacktestMetrics) -> f64 {
        let v = match self {
            SortMetric::Sharpe => m.sharpe,
            SortMetric::Sortino => m.sortino,
            SortMetric::Pnl => m.pnl,
            SortMetric::ProfitFactor => m.profit_factor,
            SortMetric::WinRate => m.win_rate,
            SortMetric::MaxDrawdown => -m.max_drawdown,
        };
        if v.is_nan() {
            f64::NEG_INFINITY
        } else {
            v
        }
    }
}

/// One grid point's run.
#[derive(Debug)]
pub struct SweepPoint {
    /// (key, value) per axis.
    pub params: Vec<(String, String)>,
    /// Its backtest.
    pub run: BacktestRun,
}

/// A walk-forward fold.
#[derive(Debug, Clone)]
pub struct Fold {
    /// The fold's window, exchange ns.
    pub start_ns: i64,
    /// End (exclusive).
    pub end_ns: i64,
    /// The grid point best in the window before this one.
    pub chosen: usize,
    /// Its metrics in that window (in sample).
    pub in_sample: BacktestMetrics,
    /// Its metrics in this window (out of sample).
    pub out_of_sample: BacktestMetrics,
}

fn set_param(strategies: &mut [StrategyConfig], key: &str, value: &str) -> anyhow::Result<()> {
    let (target, param) = key.rsplit_once('.').expect("checked by SweepAxis::parse");
    let by_index = target
        .strip_prefix("strategy[")
        .and_then(|r| r.strip_suffix(']'))
        .map(|i| i.parse::<usize>())
        .transpose()
        .with_context(|| format!("--sweep {key}: bad table index"))?;
    let mut hit = false;
    for (i, s) in strategies.iter_mut().enumerate() {
        if by_index.map_or(s.name != target, |k| k != i) {
            continue;
        }
        hit = true;
        if param == "cooldown_s" {
            s.cooldown_s = value
                .parse()
                .with_context(|| format!("--sweep {key}: {value:?} is not a whole number"))?;
            continue;
        }
        let v = match (value.parse::<i64>(), value.parse::<f64>()) {
            (Ok(i), _) if !matches!(s.params.get(param), Some(ParamValue::Number(_))) => {
                ParamValue::Int(i)
            }
            (_, Ok(f)) => ParamValue::Number(f),
            _ => ParamValue::Text(value.to_string()),
        };
        s.params.insert(param.to_string(), v);
    }
    if !hit {
        bail!("--sweep {key}: no [[strategy]] table is {target}");
    }
    Ok(())
}

/// Every combination of the axes' values, the first axis slowest.
pub fn grid(axes: &[SweepAxis]) -> Vec<Vec<(String, String)>> {
    axes.iter().fold(vec![Vec::new()], |points, axis| {
        points
            .iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.key.clone(), v.clone()));
                    q
                })
            })
            .collect()
    })
}

/// Runs the backtest at every grid point on `workers` threads (one replay thread each).
///
/// # Errors
/// A bad key or value (before anything runs), or a run's error.
pub fn sweep(
    table: &InstrumentTable,
    imbalance: &ImbalanceConfig,
    inputs: &[Input],
    strategies: &[StrategyConfig],
    config: &BacktestConfig,
    axes: &[SweepAxis],
    workers: usize,
) -> anyhow::Result<Vec<SweepPoint>> {
    let points = grid(axes);
    let sets = points
        .iter()
        .map(|p| {
            let mut set = strategies.to_vec();
            for (k, v) in p {
                set_param(&mut set, k, v)?;
            }
            Ok(set)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A progress line for a person watching, not for a log.
    let progress = std::io::stderr().is_terminal();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<BacktestRun>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, points.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(set) = sets.get(i) else { break };
                let run = run_backtest(
                    table.clone(),
                    imbalance.clone(),
                    inputs.to_vec(),
                    set.clone(),
                    config.clone(),
                    ReplayThreads::One,
                )
                .with_context(|| format!("sweep point {:?}", points[i]));
                results.lock().expect("a worker panicked")[i] = Some(run);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress {
                    eprint!("\rsweep: {n}/{} points", points.len());
                }
            });
        }
    });
    if progress {
        eprintln!();
    }
    points
        .into_iter()
        .zip(results.into_inner().expect("a worker panicked"))
        .map(|(params, run)| {
            Ok(SweepPoint {
                params,
                run: run.expect("every point ran")?,
            })
        })
        .collect()
}

/// Indices of `points` best first by `metric` (ties keep grid order).
pub fn ranked(points: &[SweepPoint], metric: SortMetric) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            metric.score(&points[a].run.report.metrics),
            metric.score(&points[b].run.report.metrics),
        );
        y.total_cmp(&x)
    });
    order
}

/// Splits the data into `folds` equal windows; for each after the first, the grid point best
/// by `metric` in the window before is judged in it.
pub fn walk_forward(points: &[SweepPoint], folds: usize, metric: SortMetric) -> Vec<Fold> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    let eq = &first.run.report.equity;
    let (Some(start), Some(end)) = (eq.first().map(|e| e.0), eq.last().map(|e| e.0 + 1)) else {
        return Vec::new();
    };
    let folds = folds.max(2) as i64;
    let edge = |k: i64| start + (end - start) * k / folds;
    (1..folds)
        .map(|k| {
            let (is_start, is_end, oos_end) = (edge(k - 1), edge(k), edge(k + 1));
            let in_sample: Vec<BacktestMetrics> = points
                .iter()
                .map(|p| window_metrics(&p.run.report, is_start, is_end))
                .collect();
            let chosen = (0..points.len())
                .max_by(|&a, &b| {
                    let (x, y) = (metric.score(&in_sample[a]), metric.score(&in_sample[b]));
                    // Ties go to the earlier grid point.
                    x.total_cmp(&y).then(b.cmp(&a))
                })
                .expect("points is not empty");
            Fold {
                start_ns: is_end,
                end_ns: oos_end,
                chosen,
                out_of_sample: window_metrics(&points[chosen].run.report, is_end, oos_end),
                in_sample: in_sample[chosen].clone(),
            }
        })
        .collect()
}

/// The results table and JSON, best first, with the walk-forward folds; and the best run.
pub fn summary(
    points: Vec<SweepPoint>,
    metric: SortMetric,
    folds: Option<Vec<Fold>>,
) -> (String, serde_json::Value, BacktestRun) {
    use serde_json::json;
    let order = ranked(&points, metric);
    let label = |p: &SweepPoint| {
        p.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let line = crate::backtest::metrics_text;
    let mut text = format!(
        "backtest: sweep of {} points, best first by {metric:?}\n",
        points.len()
    );
    for (rank, &i) in order.iter().enumerate() {
        let p = &points[i];
        text += &format!(
            "backtest: #{} {}: {}\n",
            rank + 1,
            label(p),
            line(&p.run.report.metrics)
        );
    }
    let window = |m: &BacktestMetrics| json!({"trades": m.trades, "pnl": m.pnl, "sharpe": m.sharpe, "max_drawdown": m.max_drawdown, "seconds": m.seconds});
    let mut folds_json = Vec::new();
    for (k, f) in folds.iter().flatten().enumerate() {
        let p = &points[f.chosen];
        text += &format!(
            "backtest: fold {}: chose {} (in sample: {}); out of sample: {}\n",
            k + 1,
            label(p),
            line(&f.in_sample),
            line(&f.out_of_sample)
        );
        folds_json.push(json!({
            "start_ns": f.start_ns,
            "end_ns": f.end_ns,
            "params": p.params,
            "in_sample": window(&f.in_sample),
            "out_of_sample": window(&f.out_of_sample),
        }));
    }
    let doc = json!({
        "sort": format!("{metric:?}"),
        "sweep": order.iter().map(|&i| {
            let p = &points[i];
            json!({"params": p.params, "metrics": p.run.to_json()["portfolio"]["metrics"]})
        }).collect::<Vec<_>>(),
        "walk_forward": folds_json,
    });
    let best = order[0];
    let run = points
        .into_iter()
        .nth(best)
        .expect("ranked indexes points")
        .run;
    (text, doc, run)
}
