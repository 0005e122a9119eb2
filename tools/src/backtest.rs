//! `flowcore backtest`: the replay's bars, tops and signals (the live engine and strategies)
//! fed in exchange time to the gateway's risk engine and paper broker
//! ([`flowcore_gateways::backtest`]), with the numbers as a table and as JSON.
//!
//! The replay writes its rows exactly as `flowcore replay` does (decimal strings); they are
//! read back here at each symbol's scale, so the backtest sees the same values a
//! `--signals-out` file holds, with no float in between.

pub use crate::strategy_stats::SignalPoint;
use anyhow::{bail, Context};
use flowcore_core::decimal::parse_mantissa;
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::indicators::Value;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_core::strategy::Action;
use flowcore_feeds::recording::Input;
use flowcore_gateways::backtest::{
    pairs_for, BacktestConfig, BacktestMetrics, BacktestReport, Backtester,
};
use flowcore_gateways::market::Slot;
use flowcore_gateways::order::{GatewaySignal, SignalKey};
use flowcore_gateways::GatewayConfig;
use flowcore_outputs::Outputs;
use flowcore_runtime::replay::{replay, ReplayOptions, ReplayThreads};
use flowcore_runtime::strategies::StrategyConfig;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;

/// The gateway settings a backtest uses without `--config`: `config/gateway.toml`'s
/// defaults, paper fills.
const DEFAULT_CONFIG: &str =
    "buses = [\"backtest\"]\njournal = \"backtest\"\nexecutor = \"paper\"\n";

/// Ordering of rows known at the same instant: the market first, then the second's equity
/// mark, then the signals decided on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Market,
    Second,
    Signal,
}

#[derive(Clone, Copy)]
enum Row {
    Quote(Slot, i64, i64),
    Close(Slot, i64, i64),
    Second,
    Signal(GatewaySignal),
}

/// A backtest's result with the names the report shows.
#[derive(Debug)]
pub struct BacktestRun {
    /// Every strategy through one gateway, as a live run trades them (one position per
    /// symbol, correlated exposure limited).
    pub report: BacktestReport,
    /// Each strategy alone, on an account of its own.
    pub alone: BTreeMap<u32, BacktestReport>,
    /// Strategy id -> name, from the signals.
    pub strategy_names: BTreeMap<u32, String>,
    /// Messages replayed.
    pub messages: u64,
    /// What the report draws besides the trades and equity.
    pub series: MarketSeries,
}

/// Per-second market series for the report's charts (display only: `f64`).
#[derive(Debug, Default)]
pub struct MarketSeries {
    /// `venue:SYMBOL` -> (second end, ns; mid price; weighted imbalance `obi`).
    pub books: BTreeMap<String, Vec<(i64, f64, Option<f64>)>>,
    /// Aggregate (`agg-spot:BTC`, `agg-perp:BTC`) -> (second end, ns; CVD).
    pub cvd: BTreeMap<String, Vec<(i64, f64)>>,
    /// The signals.
    pub signals: Vec<SignalPoint>,
}

impl MarketSeries {
    fn from_rows(tops: &[Json], bars: &[Json], signals: &[Json]) -> Self {
        let f = |v: &Json| v.as_str().and_then(|s| s.parse::<f64>().ok());
        let name = |r: &Json| {
            format!(
                "{}:{}",
                r["venue"].as_str().unwrap_or(""),
                r["symbol"].as_str().unwrap_or("")
            )
        };
        let end = |r: &Json| (r["ts"].as_i64().unwrap_or(0) + 1000) * 1_000_000;
        let mut s = Self::default();
        for r in tops {
            if let (Some(bid), Some(ask)) = (f(&r["bid_px"]), f(&r["ask_px"])) {
                s.books
                    .entry(name(r))
                    .or_default()
                    .push((end(r), (bid + ask) / 2.0, f(&r["obi"])));
            }
        }
        for r in bars {
            let venue = r["venue"].as_str().unwrap_or("");
            if venue.starts_with("agg-") {
                if let Some(cvd) = f(&r["cvd"]) {
                    s.cvd.entry(name(r)).or_default().push((end(r), cvd));
                }
            }
        }
        for r in signals {
            s.signals.push(SignalPoint {
                id: r["id"].as_u64().unwrap_or(0),
                exch_ns: r["exch_ns"].as_i64().unwrap_or(0),
                strategy_id: r["strategy_id"].as_u64().unwrap_or(0) as u32,
                strategy: r["strategy"].as_str().unwrap_or("").to_string(),
                score: f(&r["score"]).unwrap_or(0.0),
                action: r["action"].as_str().unwrap_or("").to_string(),
                symbol: name(r),
                reason_bits: r["reason_bits"].as_u64().unwrap_or(0) as u32,
            });
        }
        s
    }
}

/// The gateway configuration of a backtest: `path`'s `[risk]`, `[sizing]`, `[paper]`,
/// `[pairs]` (its buses, journal and executor are not used), else the defaults.
///
/// # Errors
/// The file cannot be read or a key is wrong (named in the message).
pub fn gateway_config(path: Option<&Path>) -> anyhow::Result<GatewayConfig> {
    Ok(match path {
        Some(p) => GatewayConfig::load(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => GatewayConfig::parse(DEFAULT_CONFIG, Path::new("."), None)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

/// Latency samples from `path`: one latency in milliseconds per line (blank lines and `#`
/// comments skipped); none without a path.
///
/// # Errors
/// The file cannot be read, a line is not a non-negative number (named by its number), or
/// the file holds no sample.
pub fn latency_samples(path: Option<&Path>) -> anyhow::Result<Vec<i64>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => samples.push((ms * 1e6).round() as i64),
            _ => bail!(
                "{}:{}: {line:?} is not a latency in milliseconds",
                path.display(),
                n + 1
            ),
        }
    }
    if samples.is_empty() {
        bail!("{}: no latency sample", path.display());
    }
    Ok(samples)
}

/// Replays `inputs` with `strategies` (on `threads`) and backtests the signals.
///
/// # Errors
/// A recording cannot be read, or a row the replay wrote does not parse back.
pub fn run_backtest(
    table: InstrumentTable,
    imbalance: ImbalanceConfig,
    inputs: Vec<Input>,
    strategies: Vec<StrategyConfig>,
    mut config: BacktestConfig,
    threads: ReplayThreads,
) -> anyhow::Result<BacktestRun> {
    if strategies.is_empty() {
        bail!("no strategies: a backtest needs --strategies FILE with [[strategy]] tables");
    }
    let (mut bars, mut tops, mut signals) = (Vec::new(), Vec::new(), Vec::new());
    let summary = replay(
        ReplayOptions {
            strategies,
            threads,
            ..ReplayOptions::new(table.clone(), imbalance, inputs)
        },
        Outputs {
            bars: Some(&mut bars),
            tops: Some(&mut tops),
            signals: Some(&mut signals),
            ..Outputs::default()
        },
    )?;
    let parse = |buf: &[u8], what: &str| -> anyhow::Result<Vec<Json>> {
        buf.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).with_context(|| format!("a {what} row")))
            .collect()
    };
    let (bars, tops, signals) = (
        parse(&bars, "bar")?,
        parse(&tops, "tops")?,
        parse(&signals, "signal")?,
    );
    let scales = |row: &Json| -> Option<(String, String, u8, u8)> {
        let venue = Venue::from_name(row["venue"].as_str()?)?;
        let symbol = row["symbol"].as_str()?;
        let inst = table.get(table.find(venue, symbol.as_bytes())?);
        Some((
            format!("{}:{symbol}", venue.name()),
            inst.base.clone(),
            inst.price_scale,
            inst.size_scale,
        ))
    };
    // The pairs first (the risk engine is made with them): every symbol traded as itself
    // unless the configuration maps them.
    if config.gateway.pairs.is_empty() {
        let mut names: Vec<String> = tops.iter().filter_map(|r| scales(r).map(|s| s.0)).collect();
        names.sort();
        names.dedup();
        config.gateway.pairs = pairs_for(&names);
    }
    let mut rows: Vec<(i64, Kind, Row)> = Vec::new();
    // Slots in order of first sight: every run makes them in this order, so they match.
    let mut symbols: Vec<(String, String, u8, u8)> = Vec::new();
    let mut slot_of = |row: &Json| {
        let (name, base, p, s) = scales(row)?;
        let slot = match symbols.iter().position(|x| x.0 == name) {
            Some(k) => k,
            None => {
                symbols.push((name.clone(), base, p, s));
                symbols.len() - 1
            }
        };
        Some((name, (slot as Slot, p, s)))
    };
    let num = |row: &Json, k: &str, scale: u8| -> anyhow::Result<i64> {
        match &row[k] {
            Json::Null => Ok(0),
            Json::String(s) => {
                parse_mantissa(s.as_bytes(), scale).map_err(|e| anyhow::anyhow!("{k} {s:?}: {e:?}"))
            }
            other => bail!("{k}: not a decimal string: {other}"),
        }
    };
    let ts_ms = |row: &Json| row["ts"].as_i64().context("a row without ts");
    for row in &tops {
        let Some((_, (slot, p, _))) = slot_of(row) else {
            continue;
        };
        let known = (ts_ms(row)? + 1000) * 1_000_000;
        rows.push((known, Kind::Second, Row::Second));
        if row["synced"] == true {
            let (bid, ask) = (num(row, "bid_px", p)?, num(row, "ask_px", p)?);
            rows.push((known, Kind::Market, Row::Quote(slot, bid, ask)));
        }
    }
    for row in &bars {
        let Some((_, (slot, p, _))) = slot_of(row) else {
            continue;
        };
        let ts = ts_ms(row)?;
        if !row["close"].is_null() {
            let close = num(row, "close", p)?;
            rows.push((
                (ts + 1000) * 1_000_000,
                Kind::Market,
                Row::Close(slot, ts, close),
            ));
        }
    }
    let mut strategy_names = BTreeMap::new();
    for row in &signals {
        let Some((name, (slot, p, s))) = slot_of(row) else {
            continue;
        };
        let strategy = row["strategy_id"].as_u64().context("strategy_id")? as u32;
        strategy_names.insert(strategy, row["strategy"].as_str().unwrap_or("").to_string());
        let exch_ns = row["exch_ns"].as_i64().context("exch_ns")?;
        let action = match row["action"].as_str() {
            Some("enter_long") => Action::EnterLong,
            Some("enter_short") => Action::EnterShort,
            Some("exit") => Action::Exit,
            other => bail!("signal action {other:?}"),
        };
        let (venue, symbol) = name.split_once(':').expect("made with a ':'");
        let confidence: Value = row["confidence"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(Value::ONE);
        let signal = GatewaySignal {
            key: SignalKey {
                bus: 0,
                epoch: 0,
                id: row["id"].as_u64().context("id")?,
            },
            slot,
            pair: config.gateway.pair_index(venue, symbol).map(|i| i as u16),
            strategy,
            action,
            entry_px: num(row, "entry", p)?,
            stop_px: num(row, "stop", p)?,
            target_px: num(row, "target", p)?,
            confidence,
            size: num(row, "size", s)?,
            // Exchange time throughout: a recording's receive clock may be off by seconds.
            local_ns: exch_ns,
            read_ns: exch_ns,
        };
        rows.push((
            config.latency.known_at(signal.key.id, exch_ns),
            Kind::Signal,
            Row::Signal(signal),
        ));
    }
    // Stable: rows known at one instant keep the replay's order within their kind.
    rows.sort_by_key(|r| (r.0, r.1));
    rows.dedup_by(|a, b| matches!((&a.2, &b.2), (Row::Second, Row::Second)) && a.0 == b.0);
    let fresh = || {
        let mut b = Backtester::new(&config);
        for (name, base, p, s) in &symbols {
            b.slot(name, base, *p, *s);
        }
        b
    };
    let alone = strategy_names
        .keys()
        .map(|&id| (id, simulate(fresh(), &rows, Some(id))))
        .collect();
    Ok(BacktestRun {
        report: simulate(fresh(), &rows, None),
        alone,
        strategy_names,
        messages: summary.messages,
        series: MarketSeries::from_rows(&tops, &bars, &signals),
    })
}

/// Runs the rows through `bt`, with every strategy's signals or only `only`'s.
fn simulate(mut bt: Backtester, rows: &[(i64, Kind, Row)], only: Option<u32>) -> BacktestReport {
    for &(known, _, row) in rows {
        match row {
            Row::Quote(slot, bid, ask) => bt.quote(known, slot, bid, ask),
            Row::Close(slot, ts, close) => bt.close(known, slot, ts, close),
            Row::Second => bt.second(known),
            Row::Signal(s) if only.is_none_or(|id| id == s.strategy) => bt.signal(s),
            Row::Signal(_) => {}
        }
    }
    bt.finish()
}

impl BacktestRun {
    /// The report as JSON: the portfolio run and each strategy alone, each with its
    /// metrics, rejections, trades and equity curve.
    pub fn to_json(&self) -> Json {
        let name = |id: u32| self.strategy_names.get(&id).cloned().unwrap_or_default();
        json!({
            "messages": self.messages,
            "portfolio": report_json(&self.report, &name),
            "strategies": self.alone.iter().map(|(id, alone)| {
                let (signals, trades, pnl) = self.report.per_strategy.get(id).copied().unwrap_or_default();
                json!({
                    "strategy_id": id,
                    "strategy": name(*id),
                    "in_portfolio": {"signals": signals, "trades": trades, "pnl": pnl},
                    "signal_stats": crate::strategy_stats::stats(&name(*id), *id, &self.series.signals, alone),
                    "alone": report_json(alone, &name),
                })
            }).collect::<Vec<_>>(),
        })
    }

    /// The human summary.
    pub fn table(&self) -> String {
        let m = &self.report.metrics;
        let mut s = format!(
            "backtest: {} messages, {} s of data, {} signals\n",
            self.messages, m.seconds, self.report.signals,
        );
        s += &format!("backtest: portfolio: {}\n", metrics_line(&self.report));
        for (id, alone) in &self.alone {
            let name = self.strategy_names.get(id).map_or("", String::as_str);
            s += &format!(
                "backtest: {name} (strategy {id}) alone: {}\n",
                metrics_line(alone)
            );
        }
        s
    }
}

/// The headline numbers, named and formatted for people (the table and the HTML report).
pub fn metric_cells(m: &BacktestMetrics) -> [(&'static str, String); 12] {
    [
        ("trades", m.trades.to_string()),
        ("pnl", format!("{:.4}", m.pnl)),
        ("return", format!("{:+.4}%", m.total_return * 100.0)),
        ("sharpe", format!("{:.2}", m.sharpe)),
        ("sortino", format!("{:.2}", m.sortino)),
        ("max drawdown", format!("{:.4}%", m.max_drawdown * 100.0)),
        ("drawdown s", m.max_drawdown_s.to_string()),
        ("win rate", format!("{:.1}%", m.win_rate * 100.0)),
        (
            "profit factor",
            if m.profit_factor.is_finite() {
                format!("{:.2}", m.profit_factor)
            } else {
                "inf".into()
            },
        ),
        ("average hold s", format!("{:.1}", m.avg_hold_s)),
        ("exposure", format!("{:.1}%", m.exposure * 100.0)),
        ("fees", format!("{:.4}", m.fees)),
    ]
}

/// The headline numbers on one line: `trades 4, pnl -0.3516, ...`.
pub fn metrics_text(m: &BacktestMetrics) -> String {
    metric_cells(m)
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn metrics_line(r: &BacktestReport) -> String {
    let mut s = metrics_text(&r.metrics);
    if r.unfilled > 0 {
        s += &format!(", {} orders unfilled", r.unfilled);
    }
    if !r.rejections.is_empty() {
        let v: Vec<String> = r
            .rejections
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        s += &format!("; not traded: {}", v.join(", "));
    }
    s
}

fn report_json(r: &BacktestReport, name: &dyn Fn(u32) -> String) -> Json {
    let m = &r.metrics;
    let finite = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
    json!({
        "metrics": {
            "initial_equity": m.initial_equity,
            "final_equity": m.final_equity,
            "pnl": m.pnl,
            "return": m.total_return,
            "sharpe": m.sharpe,
            "sortino": m.sortino,
            "max_drawdown": m.max_drawdown,
            "max_drawdown_s": m.max_drawdown_s,
            "trades": m.trades,
            "win_rate": m.win_rate,
            "profit_factor": finite(m.profit_factor),
            "avg_hold_s": m.avg_hold_s,
            "exposure": m.exposure,
            "fees": m.fees,
            "seconds": m.seconds,
        },
        "signals": r.signals,
        "rejections": r.rejections,
        "unfilled": r.unfilled,
        "trades": r.trades.iter().map(|t| json!({
            "signal": t.signal,
            "strategy": name(t.strategy),
            "symbol": t.symbol,
            "side": t.side.name(),
            "entry_ns": t.entry_ns,
            "exit_ns": t.exit_ns,
            "entry_price": t.entry_price.to_string(),
            "exit_price": t.exit_price.to_string(),
            "qty": t.qty.to_string(),
            "pnl": t.pnl.to_string(),
            "fees": t.fees.to_string(),
            "open_at_end": t.open_at_end,
        })).collect::<Vec<_>>(),
        "equity": r.equity.iter().map(|(ns, e)| json!([ns, e])).collect::<Vec<_>>(),
    })
}
