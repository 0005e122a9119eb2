//! Receive to visible on the shared-memory bus, on the live path: `flowcore sim` plays the
//! bundled BTC recordings (spot, USD-M, COIN-M) over loopback WebSockets, `flowcore run`
//! (io_uring, the `short.toml` strategies, `--shm`) takes them in, and a reader thread in
//! this process stamps each record the moment it sees it on the bus.
//!
//! ```text
//! sim --ws--> feed thread (stamps receive: local_ns) --ring--> core thread: engine,
//!             strategies, publisher (stamps publish_ns) --shm--> reader (stamps visible)
//! ```
//!
//! Two streams carry the receive time of the message behind them: `trades.ring` (every
//! trade: receive -> visible, and published -> visible, the dense sample) and `signals.ring` (receive of
//! the message whose event closed the bar that fired the signal -> visible: a strategy's
//! whole path). Receive stamps come from the run's TSC clock, read here through a twin of it
//! (see [`receive_clock`]); the bus hop alone (published -> visible) is CLOCK_REALTIME on
//! both sides. On this 2-core VM the engine's
//! threads park when idle (`idle = "park"`: three feed threads, the core thread, the
//! simulator and the reader share 2 cores; `FLOWCORE_BENCH_IDLE` picks another) and the
//! reader spins, yielding now and then. It also prints the feed threads' io_uring syscalls
//! per message.
//! There is no conventional stack in this bench to compare against: `flowcore bench e2e`
//! is where the same path runs beside tokio-tungstenite + serde_json + Redis.
//!
//! Full run (`cargo bench -p flowcore-benches --bench signal_latency`): the whole set at
//! 20x (about 35 s). Under `cargo test` the first 30 s of the recordings as fast as
//! possible, checking that every trade and signal came through with a sane latency.

use flowcore_benches::full_run;
use flowcore_feeds::recording::Pace;
use flowcore_outputs::Outputs;
use flowcore_runtime::clock::EpochClock;
use flowcore_runtime::live::{run, RunOptions};
use flowcore_shm::{BusConfig, BusReader, ReadFrom};
use flowcore_tests::{
    btc_inputs, btc_inputs_cut, run_options, sim_config, sim_options, start_sim_with,
    strategies_text,
};
use hdrhistogram::Histogram;
use std::time::Duration;

fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The clock the run stamps receive times with (TSC, anchored to CLOCK_REALTIME when made).
/// Made right beside the run's own, it shares its calibration, so the two differ by their
/// anchors only (well under a microsecond); against CLOCK_REALTIME itself the TSC drifts by
/// milliseconds over a run, which a first version of this bench measured as latency.
fn receive_clock() -> EpochClock {
    EpochClock::new()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds")
}

fn record(h: &mut Histogram<u64>, ns: i64) {
    // A negative difference is clock anchoring error (sub-microsecond): count it as 1 ns.
    h.record(ns.max(1) as u64).expect("in bounds");
}

fn row(name: &str, h: &Histogram<u64>) {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  {name:<28} p50 {:>9.1} µs  p90 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  max {:>10.1}  ({} samples)",
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0,
        h.len()
    );
}

fn main() {
    let full = full_run();
    let (inputs, pace) = if full {
        (btc_inputs(), Pace::Faster(20.0))
    } else {
        (btc_inputs_cut(1_723_161_286_000_000_000).0, Pace::Asap)
    };
    let (addresses, sim) = start_sim_with(sim_options(inputs, pace, 3, None));
    let dir = std::env::temp_dir().join(format!("flowcore-signal-latency-{}", std::process::id()));
    // FLOWCORE_BENCH_IDLE=spin-yield or spin to compare the feed and core threads' idle
    // strategies (spin wants a core per thread, which this 2-core VM does not have).
    let idle_strategy = std::env::var("FLOWCORE_BENCH_IDLE").unwrap_or_else(|_| "park".into());
    let config = sim_config(&addresses, None, "transport = \"io_uring\"\n", "")
        .replace("idle = \"park\"", &format!("idle = \"{idle_strategy}\""))
        + &strategies_text("short.toml");
    let options = RunOptions {
        shm: Some(BusConfig::new(&dir)),
        ..run_options(&config)
    };
    let mut clock = receive_clock();
    let engine = std::thread::spawn(move || run(options, Outputs::default()).expect("run"));
    let mut bus = BusReader::open_waiting(&dir, ReadFrom::Oldest, Duration::from_secs(30))
        .expect("the run's bus");
    let (mut received, mut hop) = (histogram(), histogram());
    let mut signals = histogram();
    let mut idle = 0u32;
    loop {
        let finished = engine.is_finished();
        let mut moved = false;
        while let Some(t) = bus.trades.try_read() {
            // Each difference on one clock: receive stamps against the run's, publish
            // stamps (CLOCK_REALTIME) against CLOCK_REALTIME.
            record(&mut received, clock.now() - t.local_ns);
            record(&mut hop, realtime_ns() - t.publish_ns);
            moved = true;
        }
        while let Some(s) = bus.signals.try_read() {
            record(&mut signals, clock.now() - s.local_ns);
            moved = true;
        }
        if finished && !moved {
            break;
        }
        idle = if moved { 0 } else { idle + 1 };
        if idle > 64 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    let summary = engine.join().expect("engine thread");
    let played = sim.join().expect("sim thread");
    let lapped = bus.trades.stats().lapped + bus.signals.stats().lapped;
    println!(
        "receive -> visible on the bus, live: {} messages, {} trades, {} signals ({}; {} lapped)",
        summary.messages,
        received.len(),
        signals.len(),
        if full {
            "whole BTC set at 20x"
        } else {
            "first 30 s, asap"
        },
        lapped
    );
    row("trade: published -> visible", &hop);
    row("trade: receive -> visible", &received);
    row("signal: receive -> visible", &signals);
    println!(
        "  io_uring (idle = {idle_strategy:?}): {} enters and {} parked waits for {} messages: {:.3} syscalls a message",
        summary.uring_enters,
        summary.uring_waits,
        summary.messages,
        (summary.uring_enters + summary.uring_waits) as f64 / summary.messages.max(1) as f64
    );
    assert_eq!(lapped, 0, "the reader kept up");
    assert!(received.len() > 1000, "{} trades", received.len());
    assert!(played.delivered > 0);
    // A receive-to-visible beyond a minute would be a clock mix-up, not a latency.
    assert!(received.max() < 60_000_000_000);
    if full {
        assert!(signals.len() >= 5, "{} signals", signals.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
