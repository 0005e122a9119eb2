//! Inline mode (`pipeline.mode = "inline"`) allocates nothing per message on its one thread:
//! the thread that reads the sockets through io_uring, frames, parses, runs the engine, the
//! strategies and every output. A run of the whole BTC set against `flowcore sim` and a
//! run of its first quarter allocate the same on that thread (the caller's: inline mode
//! runs there); the feeds' REST helper threads and the simulator are not counted.

use flowcore_feeds::recording::Input;
use flowcore_feeds::recording::Pace;
use flowcore_outputs::Outputs;
use flowcore_runtime::live::run;
use flowcore_tests::{
    btc_inputs, btc_inputs_cut, io_uring_here, line_ts, lines, run_options, sim_config,
    sim_options, start_sim_with, strategies_text, thread_allocations, CountingAllocator, IO_URING,
};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations on this thread over an inline run of `inputs`, and the messages it took.
fn inline_run_allocations(inputs: Vec<Input>) -> (u64, u64) {
    let (addresses, sim) = start_sim_with(sim_options(inputs, Pace::Asap, 3, None));
    let pipeline = format!("{IO_URING}mode = \"inline\"\n");
    let text = sim_config(&addresses, None, &pipeline, "") + &strategies_text("short.toml");
    let options = run_options(&text);
    let mut sinks: [std::io::Sink; 5] = std::array::from_fn(|_| std::io::sink());
    let [bars, tops, health, signals, stats] = &mut sinks;
    let outputs = Outputs {
        bars: Some(bars),
        tops: Some(tops),
        health: Some(health),
        signals: Some(signals),
        stats: Some(stats),
    };
    let before = thread_allocations();
    let summary = run(options, outputs).expect("inline run");
    let after = thread_allocations();
    let sim = sim.join().expect("simulator");
    assert_eq!(sim.dropped_clients, 0);
    assert_eq!((summary.parse_errors, summary.engine.gaps), (0, 0));
    (after - before, summary.messages)
}

#[test]
fn inline_mode_allocates_nothing_per_message() {
    if !io_uring_here() {
        return;
    }
    let times: Vec<i64> = lines("usdm_btcusdt_20240808.txt.gz")
        .iter()
        .map(|l| line_ts(l))
        .collect();
    let quarter = times[0] + (times[times.len() - 1] - times[0]) / 4;
    let (short, _) = btc_inputs_cut(quarter);
    let (short_allocations, short_messages) = inline_run_allocations(short);
    let (whole_allocations, whole_messages) = inline_run_allocations(btc_inputs());
    assert!(
        whole_messages > 3 * short_messages,
        "{whole_messages} against {short_messages} messages"
    );
    // Set-up (config, rings, books, connections, snapshots) allocates alike in both runs
    // (996 allocations here). The longer run grows one buffer a few times more: an
    // aggregate's pending seconds, while venues sent at full speed drift apart in exchange
    // time (3 more, 2026-12-06). Answering a ping allocated once per ping until then.
    let more = whole_allocations.saturating_sub(short_allocations);
    assert!(
        more <= 8,
        "{more} more allocations for {} more messages ({short_allocations} against \
         {whole_allocations})",
        whole_messages - short_messages
    );
}
