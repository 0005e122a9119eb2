//! `flowcore run` against a simulator that injects faults while its market keeps running:
//! dropped connections, refused reconnects, depth gaps, malformed and invalid UTF-8
//! frames, fragments, ping storms, failing and slow REST. Trades missed while a connection
//! was down come back from the venue's trade history, so the run's bars equal the golden
//! computation over the full recordings: nothing lost, nothing doubled. Where the history
//! is refused, exactly the seconds of the hole are flagged incomplete.

use flowcore_tests::{
    assert_rows_eq, btc_inputs, expected_transport, golden, io_uring_here, live_run, sim_config,
    sim_options, start_sim_with, IO_URING, TOKIO,
};
use flowcore_tools::sim::Pace;
use flowcore_tools::sim_faults::{FaultKind, FaultPlan};

/// Every fault, several times over the ~292k messages of the BTC recordings.
fn mixed_plan() -> FaultPlan {
    FaultPlan::none()
        .with(FaultKind::Drop, 40_000)
        .with(FaultKind::Gap, 9_000)
        .with(FaultKind::Malformed, 7_000)
        .with(FaultKind::BadUtf8, 50_000)
        .with(FaultKind::Fragment, 11_000)
        .with(FaultKind::PingStorm, 13_000)
        .with(FaultKind::RestFailure, 23_000)
        .with(FaultKind::Refuse, 70_000)
}

const KEY: &str = "flowcore-test-key";

fn mixed_faults_lose_and_double_nothing(transport: &str) {
    let mut options = sim_options(btc_inputs(), Pace::Faster(60.0), 3, None);
    options.faults = mixed_plan();
    options.api_key = Some(KEY.into());
    let (addresses, sim) = start_sim_with(options);
    let key_line = format!("api_key = \"{KEY}\"\n");
    let record = std::env::var("FLOWCORE_RECORD").ok().map(std::path::PathBuf::from);
    let out = live_run(&sim_config(&addresses, None, transport, &key_line), record);
    let sim = sim.join().unwrap();
    std::fs::write("/tmp/run_bars.jsonl", out.bars.join("\n")).unwrap();
    let s = &out.summary;
    eprintln!("faults: {}; late trades {}", sim.faults, out.summary.late_trades);
    eprintln!(
        "run: {} disconnects, {} connect errors, {} breaks, {} book gaps, {} trade gaps, \
         {} backfilled, {} duplicates, {} parse errors, {} histories ({} errors), {} snapshots \
         ({} errors)",
        s.disconnects,
        s.connect_errors,
        s.engine.stream_breaks,
        s.engine.gaps,
        s.engine.trade_gaps,
        s.engine.backfilled_trades,
        s.engine.duplicate_trades,
        s.parse_errors,
        s.histories,
        s.history_errors,
        s.snapshots,
        s.snapshot_errors
    );
    assert_eq!(s.transport, Some(expected_transport(transport)));
    for kind in FaultKind::ALL {
        assert!(sim.faults.get(kind) > 0, "no {} fault fired", kind.name());
    }
    assert!(s.disconnects >= 3 && s.engine.stream_breaks >= 3, "drops, refusals, bad UTF-8");
    assert!(s.engine.gaps > 0, "depth gaps and reconnects resync the books");
    assert!(s.parse_errors > 0, "malformed frames are counted");
    assert!(s.engine.backfilled_trades > 0, "missed trades come back from history");
    assert_rows_eq("bars through faults", &out.bars, &golden("bars_btc.jsonl"));
    assert_eq!(s.engine.unfilled_trade_gaps, 0, "every hole is filled");
    assert_eq!(s.late_trades, 0);
}

#[test]
fn over_io_uring_mixed_faults_lose_and_double_no_trade() {
    if io_uring_here() {
        mixed_faults_lose_and_double_nothing(IO_URING);
    }
}

#[test]
fn over_tokio_mixed_faults_lose_and_double_no_trade() {
    mixed_faults_lose_and_double_nothing(TOKIO);
}
