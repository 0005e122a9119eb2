//! `flowcore run` against `flowcore sim` on loopback: bars equal the golden computation of
//! the same recordings, over ws and over wss with a locally generated CA, and the live
//! output equals `flowcore replay` of the run's own `--record` output.

use flowcore_core::instrument::Venue::{BinanceSpot, BinanceUsdm};
use flowcore_feeds::recording::Input;
use flowcore_feeds::recording::Pace;
use flowcore_outputs::Outputs;
use flowcore_runtime::live::{run, RunOptions};
use flowcore_runtime::strategies::load_strategies;
use flowcore_sim::SimSummary;
use flowcore_tests::{
    assert_rows_eq, btc_inputs, expected_transport, file, golden, io_uring_here, live_run,
    local_ca, recorded_inputs, run as replay_run, run_options, sim_config, sim_options,
    start_sim_with, temp_dir, SimAddresses, IO_URING, IO_URING_PLAIN, TOKIO,
};
use flowcore_tests::{replay_written, rows, signal_contents, signal_rows_without, strategies_text};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

/// A fault-free simulator (see [`start_sim_with`]).
fn start_sim(
    inputs: Vec<Input>,
    pace: Pace,
    wait_clients: usize,
    tls: Option<(PathBuf, PathBuf)>,
) -> (SimAddresses, JoinHandle<SimSummary>) {
    start_sim_with(sim_options(inputs, pace, wait_clients, tls))
}

/// A run configuration for the simulator's venues (see [`sim_config`]).
fn config(addresses: &SimAddresses, ca: Option<&Path>, transport: &str) -> String {
    sim_config(addresses, ca, transport, "")
}

/// `[record]` tables for the three ways a run records.
const TEXT: &str = "[record]\nformat = \"text\"\n";
const JOURNAL: &str = "[record]\nformat = \"journal\"\n";
/// 1 MiB segments (the recordings fill more than ten), compressed once sealed; the
/// largest message accepted shrinks to fit twice in one.
const SMALL_COMPRESSED_JOURNAL: &str = "[record]\nsegment_mb = 1\ncompress = true\n";

fn run_against_sim_equals_the_golden_bars_and_its_own_recording(
    transport: &str,
    record_table: &str,
) {
    let (addresses, sim) = start_sim(btc_inputs(), Pace::Asap, 3, None);
    let record = temp_dir("record");
    let pipeline = if record_table == SMALL_COMPRESSED_JOURNAL {
        format!("{transport}max_message = 262144\n")
    } else {
        transport.to_string()
    };
    let text = config(&addresses, None, &pipeline) + &strategies_text("short.toml") + record_table;
    let out = live_run(&text, Some(record.to_path_buf()));
    let sim = sim.join().unwrap();
    assert_eq!(out.summary.transport, Some(expected_transport(transport)));
    assert_eq!(out.summary.parse_errors, 0);
    assert_eq!(
        out.summary.engine.gaps, 0,
        "asap pacing never outruns the client"
    );
    assert_eq!(sim.dropped_clients, 0);
    assert!(out.summary.snapshots >= 3, "one snapshot per book at least");
    assert_rows_eq("live BTC bars", &out.bars, &golden("bars_btc.jsonl"));
    // The strategies made the same signals live as on a replay of the recordings.
    let strategies = load_strategies(&strategies_text("short.toml")).unwrap();
    let mut options = flowcore_tests::options(btc_inputs());
    options.strategies = strategies.clone();
    let replayed = rows(replay_written(options).signals);
    assert!(replayed.len() >= 4, "{replayed:?}");
    assert_rows_eq(
        "live signals",
        &signal_contents(&out.signals),
        &signal_contents(&replayed),
    );
    let written = out.summary.record.as_ref().expect("recorded");
    match (record_table, written.journal) {
        (TEXT, None) => {}
        (JOURNAL, Some(j)) => assert_eq!((j.segments, j.oversized, j.compressed), (1, 0, 0)),
        (SMALL_COMPRESSED_JOURNAL, Some(j)) => {
            assert!(j.segments > 10 && j.oversized == 0, "{j:?}");
            assert_eq!(j.compressed, j.segments);
        }
        (table, j) => panic!("{table:?} recorded {j:?}"),
    }
    // Replaying what the run received gives back exactly what it wrote.
    let again = replay_run(recorded_inputs(&record));
    assert_eq!(again.summary.messages, out.summary.recorded_lines);
    assert_rows_eq("replayed bars", &again.bars, &out.bars);
    assert_rows_eq("replayed tops", &again.tops, &out.tops);
    // ... and the same signals, stamped with the same receive times where one venue's
    // messages decide them. SqueezeFlow's periods complete with whichever venue's bar comes
    // last, which depends on how the feed threads' rings interleaved on the core thread:
    // the same signal then, stamped with another message's receive time (core/src/strategy/join.rs).
    let mut options = flowcore_tests::options(recorded_inputs(&record));
    options.strategies = strategies;
    let again = rows(replay_written(options).signals);
    let (cross, single): (Vec<String>, Vec<String>) = again
        .into_iter()
        .partition(|r| r.contains("\"strategy\":\"squeeze_flow\""));
    let (live_cross, live_single): (Vec<String>, Vec<String>) = out
        .signals
        .iter()
        .cloned()
        .partition(|r| r.contains("\"strategy\":\"squeeze_flow\""));
    let keep_times = ["id", "spot_cvd", "perp_cvd"];
    assert_rows_eq(
        "single-venue signals of the recording",
        &signal_rows_without(&single, &keep_times),
        &signal_rows_without(&live_single, &keep_times),
    );
    assert!(!cross.is_empty(), "no SqueezeFlow signal");
    assert_rows_eq(
        "cross-venue signals of the recording",
        &signal_contents(&cross),
        &signal_contents(&live_cross),
    );
    std::fs::remove_dir_all(record).unwrap();
}

#[test]
fn over_io_uring_multishot_the_run_equals_the_golden_bars_and_its_own_compressed_journal() {
    if io_uring_here() {
        run_against_sim_equals_the_golden_bars_and_its_own_recording(
            IO_URING,
            SMALL_COMPRESSED_JOURNAL,
        );
    }
}

#[test]
fn over_io_uring_plain_receives_the_run_equals_the_golden_bars_and_its_own_journal() {
    if io_uring_here() {
        run_against_sim_equals_the_golden_bars_and_its_own_recording(IO_URING_PLAIN, JOURNAL);
    }
}

#[test]
fn over_tokio_the_run_equals_the_golden_bars_and_its_own_text_recording() {
    run_against_sim_equals_the_golden_bars_and_its_own_recording(TOKIO, TEXT);
}

fn run_against_sim_over_wss_with_a_local_ca_equals_the_golden_bars(transport: &str) {
    let dir = temp_dir("tls");
    let (ca, cert, key) = local_ca(&dir);
    let (addresses, sim) = start_sim(btc_inputs(), Pace::Asap, 3, Some((cert, key)));
    assert!(addresses
        .values()
        .all(|(ws, rest)| ws.starts_with("wss://") && rest.starts_with("https://")));
    let out = live_run(&config(&addresses, Some(&ca), transport), None);
    sim.join().unwrap();
    assert_eq!(out.summary.transport, Some(expected_transport(transport)));
    assert_eq!(out.summary.engine.gaps, 0);
    assert_eq!(out.summary.connect_errors, 0);
    assert_rows_eq(
        "live BTC bars over wss",
        &out.bars,
        &golden("bars_btc.jsonl"),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn over_io_uring_and_wss_with_a_local_ca_the_run_equals_the_golden_bars() {
    if io_uring_here() {
        run_against_sim_over_wss_with_a_local_ca_equals_the_golden_bars(IO_URING);
    }
}

#[test]
fn over_tokio_and_wss_with_a_local_ca_the_run_equals_the_golden_bars() {
    run_against_sim_over_wss_with_a_local_ca_equals_the_golden_bars(TOKIO);
}

/// `pipeline.mode = "inline"`: the three feeds, the engine, the strategies and the
/// recorder's hand-off on one thread. Same bars, same signals, and its own journal replays
/// to the same output.
#[test]
fn inline_mode_the_run_equals_the_golden_bars_and_its_own_journal() {
    if io_uring_here() {
        let pipeline = format!("{IO_URING}mode = \"inline\"\n");
        run_against_sim_equals_the_golden_bars_and_its_own_recording(&pipeline, JOURNAL);
    }
}

/// With the kernel's signalled task work, completions come without an `io_uring_enter`:
/// the same bars, and enters only for what the feed threads submit (connects, pongs).
#[test]
fn over_io_uring_with_signalled_task_work_the_run_equals_the_golden_bars_with_few_enters() {
    if !io_uring_here() {
        return;
    }
    let (addresses, sim) = start_sim(btc_inputs(), Pace::Asap, 3, None);
    let pipeline = format!("{IO_URING}uring_task_work = \"signalled\"\n");
    let out = live_run(&config(&addresses, None, &pipeline), None);
    sim.join().unwrap();
    assert_eq!(out.summary.engine.gaps, 0);
    assert_rows_eq("live BTC bars", &out.bars, &golden("bars_btc.jsonl"));
    let per_message = out.summary.uring_enters as f64 / out.summary.messages as f64;
    assert!(
        per_message < 0.01,
        "{} enters for {} messages",
        out.summary.uring_enters,
        out.summary.messages
    );
}

#[test]
fn an_untrusted_certificate_is_refused_by_both_transports() {
    let dir = temp_dir("untrusted");
    let (_ca, cert, key) = local_ca(&dir);
    let (addresses, sim) = start_sim(
        vec![file(BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")],
        Pace::Asap,
        1,
        Some((cert, key)),
    );
    // No tls_ca_file: only the webpki roots are trusted, so every connect fails.
    let transports: &[&str] = if io_uring_here() {
        &[IO_URING, TOKIO]
    } else {
        &[TOKIO]
    };
    for transport in transports {
        let untrusting = RunOptions {
            duration: Some(Duration::from_secs(2)),
            ..run_options(&config(&addresses, None, transport))
        };
        let summary = run(untrusting, Outputs::default()).unwrap();
        assert_eq!(summary.transport, Some(expected_transport(transport)));
        assert!(summary.connect_errors >= 1, "{transport}");
        assert_eq!(summary.messages, 0, "{transport}");
    }
    // Let the simulator finish: a trusted client plays it out.
    let ca = dir.join("ca.pem");
    let _ = live_run(&config(&addresses, Some(&ca), ""), None);
    sim.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A client that connects while the market is running must resync from the snapshot the
/// simulator synthesises from its own book; from then on its tops equal those of a client
/// that was there from the start.
#[test]
fn a_client_joining_mid_stream_resyncs_and_its_tops_match() {
    let (addresses, sim) = start_sim(
        vec![file(BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")],
        Pace::Faster(60.0),
        1,
        None,
    );
    let text = config(&addresses, None, "");
    let early = {
        let text = text.clone();
        std::thread::spawn(move || live_run(&text, None))
    };
    std::thread::sleep(Duration::from_secs(2));
    let late = live_run(&text, None);
    let early = early.join().unwrap();
    let sim = sim.join().unwrap();
    assert_eq!(sim.dropped_clients, 0);
    assert!(sim.snapshots >= 2, "each client asked for a snapshot");
    assert_eq!(late.summary.engine.gaps, 0);
    let first_synced = |rows: &[String]| {
        rows.iter()
            .find(|r| r.contains("\"synced\":true"))
            .map(|r| {
                r.split("\"ts\":").nth(1).unwrap()[..13]
                    .parse::<i64>()
                    .unwrap()
            })
            .expect("a synced second")
    };
    let (early_start, late_start) = (first_synced(&early.tops), first_synced(&late.tops));
    assert!(
        late_start >= early_start + 30_000,
        "the late client joined about two minutes of market time later ({early_start} vs {late_start})"
    );
    let late_synced: Vec<&String> = late
        .tops
        .iter()
        .filter(|r| r.contains("\"synced\":true"))
        .collect();
    assert!(
        late_synced.len() >= 60,
        "only {} synced seconds",
        late_synced.len()
    );
    for row in late_synced {
        assert!(
            early.tops.contains(row),
            "the late client's {row} differs from the early one's"
        );
    }
}

/// `/ws` plus a live `SUBSCRIBE`: the reply, then bare payloads of the subscribed stream only.
#[test]
fn subscribe_on_a_raw_connection_gets_a_reply_then_bare_payloads() {
    use flowcore_feeds::transport::tungstenite::WsTransport;
    use flowcore_feeds::transport::{TlsSettings, Transport};
    let (addresses, sim) = start_sim(
        vec![file(BinanceSpot, "spot_btcusdt_20240808.txt.gz")],
        // Paced: the market must still be running when the subscription arrives.
        Pace::Faster(100.0),
        1,
        None,
    );
    let ws = addresses["binance-spot"].0.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (reply, trades, others) = runtime.block_on(async {
        let mut t = WsTransport::connect(&format!("{ws}/ws"), &TlsSettings::default())
            .await
            .unwrap();
        t.send_text(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}"#)
            .await
            .unwrap();
        let mut reply = None;
        let (mut trades, mut others) = (0, 0);
        while let Some(m) = t.next_message().await.unwrap() {
            let text = String::from_utf8(m.to_vec()).unwrap();
            if text.contains("\"result\"") {
                reply = Some(text);
            } else if text.starts_with(r#"{"e":"trade""#) {
                trades += 1;
            } else {
                others += 1;
            }
        }
        (reply, trades, others)
    });
    sim.join().unwrap();
    assert_eq!(reply.as_deref(), Some(r#"{"result":null,"id":7}"#));
    assert!(trades > 1000, "{trades} trades");
    assert_eq!(
        others, 0,
        "only the subscribed stream, without the combined wrapper"
    );
}

/// `--seconds`: the run stops on time while the market is still going, and flushes its open
/// bars as incomplete.
#[test]
fn a_timed_run_stops_and_flushes_the_open_bars() {
    let (addresses, _sim) = start_sim(
        vec![file(BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")],
        Pace::Faster(10.0),
        1,
        None,
    );
    let timed = RunOptions {
        duration: Some(Duration::from_secs(2)),
        exit_on_close: false,
        ..run_options(&config(&addresses, None, ""))
    };
    let started = std::time::Instant::now();
    let mut bars = Vec::new();
    let outputs = Outputs {
        bars: Some(&mut bars),
        ..Outputs::default()
    };
    let summary = run(timed, outputs).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert!(summary.messages > 1000, "{} messages", summary.messages);
    let text = String::from_utf8(bars).unwrap();
    let last = text.lines().last().expect("bars were written");
    assert!(
        last.contains("\"complete\":false"),
        "the open bar is flushed: {last}"
    );
    // About 20 s of market time at 10x: far from the recording's 6 minutes.
    assert!(text.lines().count() < 100, "{} bars", text.lines().count());
}
