//! `flowcore backtest` on the bundled BTC recordings with config/strategies/short.toml: the
//! same bytes twice, books that balance (the equity curve, kept by the paper broker, ends
//! where the trade list says), the latency model applied to every fill (checked against
//! the signal times of a plain replay), and no look-ahead (cutting the input leaves every
//! trade closed before the cut and the equity curve up to it unchanged).

use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::InstrumentTable;
use flowcore_feeds::recording::Input;
use flowcore_gateways::backtest::{BacktestConfig, LatencyModel};
use flowcore_runtime::config::IdleStrategy;
use flowcore_runtime::replay::ReplayThreads;
use flowcore_runtime::strategies::{load_strategies, StrategyConfig};
use flowcore_tests::{btc_inputs, btc_inputs_cut, options, replay_written, repo, rows};
use flowcore_tools::backtest::{gateway_config, run_backtest, BacktestRun};
use serde_json::Value as Json;
use std::collections::BTreeMap;

const FEED_MS: i64 = 50;
const ORDER_MS: i64 = 250;

fn strategies() -> Vec<StrategyConfig> {
    let path = repo().join("config/strategies/short.toml");
    load_strategies(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn config(latency: LatencyModel) -> BacktestConfig {
    BacktestConfig {
        gateway: gateway_config(None).unwrap(),
        latency,
        warmup_s: 0,
    }
}

/// A backtest with the bundled instruments and default imbalance settings.
fn run_on(
    inputs: Vec<Input>,
    strategies: Vec<StrategyConfig>,
    latency: LatencyModel,
    threads: ReplayThreads,
) -> BacktestRun {
    run_backtest(
        InstrumentTable::bundled_defaults(),
        ImbalanceConfig::default(),
        inputs,
        strategies,
        config(latency),
        threads,
    )
    .unwrap()
}

fn backtest(inputs: Vec<Input>) -> Json {
    let latency = LatencyModel {
        feed_ns: FEED_MS * 1_000_000,
        order_ns: ORDER_MS * 1_000_000,
        ..LatencyModel::default()
    };
    run_on(
        inputs,
        strategies(),
        latency,
        ReplayThreads::Two(IdleStrategy::SpinYield),
    )
    .to_json()
}

/// The portfolio run and each strategy's run alone.
fn reports(j: &Json) -> Vec<(String, &Json)> {
    let mut v = vec![("portfolio".to_string(), &j["portfolio"])];
    for s in j["strategies"].as_array().unwrap() {
        v.push((s["strategy"].as_str().unwrap().to_string(), &s["alone"]));
    }
    v
}

fn num(x: &Json) -> f64 {
    x.as_str()
        .map_or_else(|| x.as_f64().unwrap(), |s| s.parse().unwrap())
}

#[test]
fn a_backtest_is_deterministic_its_books_balance_and_every_fill_waits_for_its_latency() {
    let first = backtest(btc_inputs());
    let second = backtest(btc_inputs());
    assert_eq!(first.to_string(), second.to_string(), "same bytes twice");

    // Signal times from a plain replay with the same strategies, not from the backtest.
    let mut o = options(btc_inputs());
    o.strategies = strategies();
    let signals: BTreeMap<u64, Json> = rows(replay_written(o).signals)
        .iter()
        .map(|r| serde_json::from_str::<Json>(r).unwrap())
        .map(|r| (r["id"].as_u64().unwrap(), r))
        .collect();

    let mut traded = 0;
    for (name, r) in reports(&first) {
        let m = &r["metrics"];
        let trades = r["trades"].as_array().unwrap();
        assert_eq!(m["trades"].as_u64().unwrap(), trades.len() as u64, "{name}");
        let pnl: f64 = trades.iter().map(|t| num(&t["pnl"])).sum();
        let books = num(&m["final_equity"]) - num(&m["initial_equity"]);
        assert!(
            (pnl - books).abs() < 1e-6,
            "{name}: trades say {pnl}, the equity curve {books}"
        );
        for t in trades {
            let s = &signals[&t["signal"].as_u64().unwrap()];
            assert_eq!(t["strategy"], s["strategy"], "{name}: {t}");
            if name != "portfolio" {
                assert_eq!(t["strategy"], name.as_str());
            }
            let wait = t["entry_ns"].as_i64().unwrap() - s["exch_ns"].as_i64().unwrap();
            assert_eq!(wait, (FEED_MS + ORDER_MS) * 1_000_000, "{name}: {t}");
            let side = if s["action"] == "enter_long" {
                "long"
            } else {
                "short"
            };
            assert_eq!(t["side"], side);
            assert!(t["exit_ns"].as_i64() > t["entry_ns"].as_i64(), "{t}");
        }
        traded += trades.len();
    }
    assert!(traded >= 5, "{first:#}");

    // Strategy statistics against the replay's own signal rows.
    let of = |name: &str| {
        signals
            .values()
            .filter(|s| s["strategy"] == name)
            .collect::<Vec<_>>()
    };
    let stats = |name: &str| {
        first["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["strategy"] == name)
            .unwrap()["signal_stats"]
            .clone()
    };
    let squeeze = stats("squeeze_flow");
    let entries = of("squeeze_flow")
        .iter()
        .filter(|s| s["action"] != "exit")
        .count() as u64;
    assert_eq!(
        squeeze["reasons"]["divergence"].as_u64(),
        Some(entries),
        "{squeeze:#}"
    );
    let histogram: u64 = squeeze["entry_score_histogram"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(histogram, entries);
    let exits = of("squeeze_flow").len() as u64 - entries;
    let exit_reasons: u64 = [
        "exit_flow_reversal",
        "exit_range_break",
        "exit_cvd_invalidation",
        "exit_structure_break",
    ]
    .iter()
    .map(|k| squeeze["reasons"][k].as_u64().unwrap())
    .sum();
    assert!(exit_reasons >= exits, "{squeeze:#}");
    let smart = stats("smart_money");
    let by_regime: u64 = smart["regimes"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["signals"].as_u64().unwrap())
        .sum();
    assert_eq!(by_regime, of("smart_money").len() as u64, "{smart:#}");
    assert_eq!(stats("macd"), Json::Null);
    // MACD flips between long and short: its opposite entries close its own trades.
    let macd = &reports(&first)
        .into_iter()
        .find(|(n, _)| n == "macd")
        .unwrap()
        .1["trades"];
    assert!(macd.as_array().unwrap().len() >= 2, "{macd:#}");
}

/// A flat equity curve over `run`'s seconds: what a strategy that never traded has.
fn equity_of_flat(run: &Json) -> Json {
    let initial = &run["portfolio"]["metrics"]["initial_equity"];
    run["portfolio"]["equity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::json!([p[0], initial]))
        .collect()
}

#[test]
fn cutting_the_input_leaves_earlier_trades_and_equity_unchanged() {
    let full = backtest(btc_inputs());
    let equity = |r: &Json| -> Vec<(i64, f64)> {
        r["equity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    };
    let (start, end) = {
        let e = equity(&full["portfolio"]);
        (e[0].0, e.last().unwrap().0)
    };
    for k in 1..4 {
        let cut_ns = start + (end - start) * k / 4;
        let (inputs, last_kept) = btc_inputs_cut(cut_ns);
        let part = backtest(inputs);
        // Rows and fills up to a second before the last message kept are final in both.
        let before = last_kept - 1_000_000_000;
        let part_reports = reports(&part);
        for (name, f) in reports(&full) {
            // A strategy with no signal before the cut has no run of its own there.
            let empty = serde_json::json!({"trades": [], "equity": equity_of_flat(&part)});
            let p = part_reports
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(&empty, |r| r.1);
            let closed = |r: &Json| -> Vec<Json> {
                r["trades"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|t| t["open_at_end"] == false && t["exit_ns"].as_i64() < Some(before))
                    .cloned()
                    .collect()
            };
            assert_eq!(closed(p), closed(f), "{name}, cut at {cut_ns}");
            let upto = |r: &Json| -> Vec<(i64, f64)> {
                equity(r).into_iter().filter(|e| e.0 < before).collect()
            };
            assert_eq!(upto(p), upto(f), "{name}, cut at {cut_ns}");
            assert!(!upto(f).is_empty());
        }
    }
}

#[test]
fn a_sweep_runs_each_grid_point_as_its_own_backtest_and_ranks_them() {
    use flowcore_tools::sweep::{ranked, sweep, walk_forward, SortMetric, SweepAxis};
    let config = config(LatencyModel::default());
    let axes = [SweepAxis::parse("macd.fast=6,12").unwrap()];
    let points = sweep(
        &InstrumentTable::bundled_defaults(),
        &ImbalanceConfig::default(),
        &btc_inputs(),
        &strategies(),
        &config,
        &axes,
        2,
    )
    .unwrap();
    assert_eq!(points.len(), 2);
    // Each point equals a plain backtest of the file edited by hand.
    let text = std::fs::read_to_string(repo().join("config/strategies/short.toml")).unwrap();
    for p in &points {
        let fast = &p.params[0].1;
        let edited = text.replacen(
            "fast = 12\nslow = 26",
            &format!("fast = {fast}\nslow = 26"),
            1,
        );
        assert_eq!(edited == text, fast == "12", "the edit found macd's table");
        let single = run_on(
            btc_inputs(),
            load_strategies(&edited).unwrap(),
            config.latency.clone(),
            ReplayThreads::One,
        );
        assert_eq!(
            p.run.report.metrics, single.report.metrics,
            "macd.fast={fast}"
        );
        assert_eq!(
            p.run.report.trades, single.report.trades,
            "macd.fast={fast}"
        );
    }
    // Different settings, different trading.
    assert_ne!(points[0].run.report.trades, points[1].run.report.trades);
    let order = ranked(&points, SortMetric::Pnl);
    let pnl = |i: usize| points[i].run.report.metrics.pnl;
    assert!(pnl(order[0]) >= pnl(order[1]));
    let folds = walk_forward(&points, 3, SortMetric::Pnl);
    assert_eq!(folds.len(), 2);
    assert_eq!(folds[0].end_ns, folds[1].start_ns, "contiguous windows");

    let bad = SweepAxis::parse("macd.fastest=3").unwrap();
    let e = sweep(
        &InstrumentTable::bundled_defaults(),
        &ImbalanceConfig::default(),
        &btc_inputs(),
        &strategies(),
        &config,
        &[bad],
        1,
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("fastest"), "{e:#}");
    assert!(SweepAxis::parse("fast=3").is_err());
}

#[test]
fn drawn_latencies_come_from_the_samples_and_repeat() {
    let dir = flowcore_tests::temp_dir("latency-samples");
    let file = dir.join("order.txt");
    std::fs::write(&file, "# measured, ms\n100\n\n400 # a slow one\n").unwrap();
    let samples = flowcore_tools::backtest::latency_samples(Some(&file)).unwrap();
    assert_eq!(samples, vec![100_000_000, 400_000_000]);
    std::fs::write(&file, "100\nfast\n").unwrap();
    let e = flowcore_tools::backtest::latency_samples(Some(&file)).unwrap_err();
    assert!(e.to_string().contains(":2:"), "{e}");

    let run = || {
        let latency = LatencyModel {
            order_samples: samples.clone(),
            ..LatencyModel::default()
        };
        run_on(btc_inputs(), strategies(), latency, ReplayThreads::One)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.to_json(), b.to_json(), "the same draws every run");
    let exch: BTreeMap<u64, i64> = a.series.signals.iter().map(|s| (s.id, s.exch_ns)).collect();
    let mut waits = std::collections::BTreeSet::new();
    for r in std::iter::once(&a.report).chain(a.alone.values()) {
        for t in &r.trades {
            waits.insert(t.entry_ns - exch[&t.signal]);
        }
    }
    assert!(
        waits.iter().all(|w| samples.contains(w)),
        "every wait is a sample: {waits:?}"
    );
    assert_eq!(
        waits.len(),
        2,
        "both samples drawn over the run's entries: {waits:?}"
    );
}
