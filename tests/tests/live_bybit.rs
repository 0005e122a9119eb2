//! `flowcore run` with Binance and Bybit feeds against `flowcore sim`: Binance plays the
//! BTC recordings, Bybit a **synthetic** stream of the same seconds (tools/sim/src/bybit_synth.rs;
//! no Bybit recording is bundled). Every bar, per venue and aggregated across venues
//! (spot: Binance + Bybit; perp: USD-M + COIN-M + Bybit linear), equals the replay of the
//! recordings the simulator played, and the run's own recording replays to its output.

use flowcore_feeds::recording::Pace;
use flowcore_tests::{
    assert_rows_eq, btc_inputs, bybit_synth_inputs, expected_transport, io_uring_here, live_run,
    recorded_inputs, run as replay_run, sim_config, sim_options, start_sim_with, temp_dir,
    IO_URING, TOKIO,
};

fn binance_and_bybit_runs_equal_the_replay_of_what_was_played(transport: &str) {
    let dir = temp_dir("bybit-synth");
    let mut inputs = btc_inputs();
    inputs.extend(bybit_synth_inputs(&dir));
    let played = replay_run(inputs.clone());
    let (addresses, sim) = start_sim_with(sim_options(inputs, Pace::Asap, 5, None));
    let record = temp_dir("bybit-record");
    let out = live_run(
        &sim_config(&addresses, None, transport, "ping_interval_ms = 500\n"),
        Some(record.to_path_buf()),
    );
    let sim = sim.join().unwrap();
    let s = &out.summary;
    eprintln!(
        "{:?}: {} messages, {} bars, {} tops, sim: {} delivered, {} book snapshots, {} \
         dropped",
        s.transport,
        s.messages,
        out.bars.len(),
        out.tops.len(),
        sim.delivered,
        sim.snapshots,
        sim.dropped_clients
    );
    assert_eq!(s.transport, Some(expected_transport(transport)));
    assert_eq!((s.parse_errors, s.engine.gaps), (0, 0));
    assert_eq!(sim.dropped_clients, 0, "the clients ping in time");
    // Books synced from the snapshots each subscription starts with.
    assert!(sim.snapshots >= 2);
    assert_eq!(s.engine.crossed_books, 0);
    for venue in ["bybit-spot", "bybit-linear", "agg-spot", "agg-perp"] {
        let rows = out
            .bars
            .iter()
            .filter(|r| r.contains(&format!("\"venue\":\"{venue}\"")));
        assert!(rows.count() >= 600, "{venue} bars");
    }
    assert_rows_eq("live bars", &out.bars, &played.bars);
    let again = replay_run(recorded_inputs(&record));
    assert_rows_eq("replayed bars", &again.bars, &out.bars);
    assert_rows_eq("replayed tops", &again.tops, &out.tops);
    std::fs::remove_dir_all(record).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn over_io_uring_binance_and_bybit_runs_equal_the_replay_of_what_was_played() {
    if io_uring_here() {
        binance_and_bybit_runs_equal_the_replay_of_what_was_played(IO_URING);
    }
}

#[test]
fn over_tokio_binance_and_bybit_runs_equal_the_replay_of_what_was_played() {
    binance_and_bybit_runs_equal_the_replay_of_what_was_played(TOKIO);
}

/// Bybit alone, with faults: every book gap is answered by a resubscribe on the same
/// connection (a fresh snapshot, the trades never interrupted), and every dropped
/// connection costs exactly the seconds Bybit cannot give back, flagged incomplete: every
/// bar still `complete` equals the bar of the replay of what was played.
#[test]
fn bybit_gaps_resubscribe_and_drops_flag_only_their_seconds() {
    use flowcore_sim::faults::{FaultKind, FaultPlan};
    let dir = temp_dir("bybit-faults");
    let inputs = bybit_synth_inputs(&dir);
    let played = replay_run(inputs.clone());
    // Paced: a dropped client misses what the market plays while it reconnects.
    let mut options = sim_options(inputs, Pace::Faster(60.0), 2, None);
    options.faults = FaultPlan::none()
        .with(FaultKind::Gap, 3_000)
        .with(FaultKind::Drop, 25_000)
        .with(FaultKind::Malformed, 9_000);
    let (addresses, sim) = start_sim_with(options);
    let out = live_run(
        &sim_config(&addresses, None, TOKIO, "ping_interval_ms = 500\n"),
        None,
    );
    let sim = sim.join().unwrap();
    let s = &out.summary;
    eprintln!(
        "faults: {}; run: {} gaps, {} disconnects, {} breaks, {} unfilled, {} parse errors, {} \
         book snapshots served",
        sim.faults,
        s.engine.gaps,
        s.disconnects,
        s.engine.stream_breaks,
        s.engine.unfilled_trade_gaps,
        s.parse_errors,
        sim.snapshots
    );
    assert!(s.engine.gaps >= 5, "gaps found");
    assert!(
        sim.snapshots >= 2 + s.engine.gaps,
        "each gap brought a fresh snapshot"
    );
    assert!(s.parse_errors >= 2);
    assert!(s.engine.stream_breaks >= 2 && s.engine.unfilled_trade_gaps >= 2);
    assert_eq!(s.engine.crossed_books, 0);
    let incomplete: Vec<&String> = out
        .bars
        .iter()
        .filter(|r| r.contains("\"complete\":false") && r.contains("\"venue\":\"bybit-"))
        .collect();
    // The first and last second of each venue, plus those of each drop (the reconnect
    // takes a moment, a minute or so of the market at 60x).
    assert!(incomplete.len() > 4, "{} incomplete", incomplete.len());
    assert!(incomplete.len() < 200, "{} incomplete", incomplete.len());
    let complete: Vec<String> = out
        .bars
        .iter()
        .filter(|r| r.contains("\"complete\":true") && r.contains("\"venue\":\"bybit-"))
        .map(|r| without_cvd(r))
        .collect();
    let want: std::collections::HashSet<String> =
        played.bars.iter().map(|r| without_cvd(r)).collect();
    for row in &complete {
        assert!(want.contains(row), "a complete bar differs: {row}");
    }
    assert!(complete.len() > 1000, "{} complete", complete.len());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A bar row without its CVD (cumulative: offset by what a disconnect lost).
fn without_cvd(row: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(row).unwrap();
    v.as_object_mut().unwrap().remove("cvd");
    v.to_string()
}
