//! A counting global allocator proves the hot path (parse -> engine -> bars, books, tops)
//! allocates nothing per message once warmed up.

use flowcore_core::bars::{Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_tests::{CountingAllocator, ALLOCATIONS};
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Counts rows like a real sink would consume them, without storing them.
#[derive(Default)]
struct CountingSink {
    bars: u64,
    tops: u64,
}

impl BarSink for CountingSink {
    fn bar(&mut self, _: &Bar) {
        self.bars += 1;
    }
}

impl EngineSink for CountingSink {
    fn top(&mut self, _: &TopRow) {
        self.tops += 1;
    }
}

type Message = (i64, usize, Vec<u8>);

/// The allocation counter is global: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Spot + USD-M BTC, merged by receive time.
fn messages() -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::new();
    for (i, name) in [
        "spot_btcusdt_20240808.txt.gz",
        "usdm_btcusdt_20240808.txt.gz",
    ]
    .into_iter()
    .enumerate()
    {
        for line in flowcore_tests::lines(name) {
            let (ts, json) = line.split_once(' ').unwrap();
            messages.push((ts.parse().unwrap(), i, json.as_bytes().to_vec()));
        }
    }
    messages.sort_by_key(|m| (m.0, m.1));
    messages
}

/// Runs the first fifth of the messages as warm-up, then counts the allocations of the
/// rest. `after` sees every event after the engine (the bus publisher hooks in there).
fn allocations_after_warm_up<S: EngineSink>(
    sink: &mut S,
    mut after: impl FnMut(&flowcore_core::event::MarketEvent, &Engine, &mut S),
) -> (u64, usize, Engine) {
    let messages = messages();
    let table = InstrumentTable::binance_defaults();
    let spot = table.find(Venue::BinanceSpot, b"BTCUSDT").unwrap();
    let usdm = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let mut parsers = [
        VenueParser::new(Venue::BinanceSpot, table.clone()),
        VenueParser::new(Venue::BinanceUsdm, table.clone()),
    ];
    let mut engine = Engine::new(table, ImbalanceConfig::default(), Some(&[spot, usdm])).unwrap();
    let warm_up = messages.len() / 5;
    let mut run = |range: std::ops::Range<usize>, engine: &mut Engine, sink: &mut S| {
        for (ts, i, json) in &messages[range] {
            let inst = if *i == 0 { spot } else { usdm };
            let _ = parsers[*i].parse(*ts, json, Some(inst), &mut |ev| {
                engine.on_event(&ev, sink);
                after(&ev, engine, sink);
            });
        }
    };
    run(0..warm_up, &mut engine, sink);
    let probe = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![0u8; 64]));
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > probe);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(warm_up..messages.len(), &mut engine, sink);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    (allocations, messages.len() - warm_up, engine)
}

#[test]
fn no_allocation_per_message_after_warm_up() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut sink = CountingSink::default();
    let (allocations, measured, engine) = allocations_after_warm_up(&mut sink, |_, _, _| {});
    assert!(sink.bars > 500 && sink.tops > 500 && engine.counters().diffs_applied > 5_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {measured} messages"
    );
}

#[test]
fn no_allocation_per_message_while_publishing_to_the_shm_bus() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = flowcore_tests::temp_dir("zero-alloc-shm");
    let engine = Engine::new(
        InstrumentTable::binance_defaults(),
        ImbalanceConfig::default(),
        None,
    )
    .unwrap();
    let mut publisher =
        flowcore_shm::Publisher::create(&flowcore_shm::BusConfig::new(&dir), &engine).unwrap();
    drop(engine);
    let (allocations, measured, _) =
        allocations_after_warm_up(&mut publisher, |ev, engine, p| p.on_event(ev, engine));
    // Bars, tops, trades, bbo and a top-20 book per depth batch went out.
    assert!(publisher.published() > 100_000, "{}", publisher.published());
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {measured} messages while publishing"
    );
    drop(publisher);
}

#[test]
fn no_allocation_per_message_with_every_output_strategies_and_health_records() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = flowcore_tests::temp_dir("zero-alloc-outputs");
    let engine = Engine::new(
        InstrumentTable::binance_defaults(),
        ImbalanceConfig::default(),
        None,
    )
    .unwrap();
    let (mut bars, mut tops, mut health) = (std::io::sink(), std::io::sink(), std::io::sink());
    let mut signals = std::io::sink();
    let outputs = flowcore_outputs::Outputs {
        bars: Some(&mut bars),
        tops: Some(&mut tops),
        health: Some(&mut health),
        signals: Some(&mut signals),
        stats: None,
    };
    let bus = flowcore_shm::BusConfig::new(&dir);
    // The classic strategies on 1 s bars, so that every bar reaches their indicators.
    let text = std::fs::read_to_string(flowcore_tests::repo().join("config/strategies/short.toml"))
        .unwrap()
        .replace("timeframe_s = 5", "timeframe_s = 1");
    let configs = flowcore_runtime::strategies::load_strategies(&text).unwrap();
    let strategies = flowcore_runtime::strategies::strategy_set(&configs, &engine).unwrap();
    let mut sink = flowcore_outputs::CoreSink::create(
        &engine,
        &[Venue::BinanceSpot, Venue::BinanceUsdm],
        outputs,
        Some(&bus),
    )
    .unwrap()
    .with_strategies(strategies);
    drop(engine);
    let feeds = flowcore_outputs::health::VenueFeedCounters::default();
    let (allocations, measured, _) = allocations_after_warm_up(&mut sink, |ev, engine, s| {
        s.after_event(ev, engine, || feeds)
    });
    let (bar_rows, top_rows) = sink.jsonl.rows();
    let published = sink.shm.as_ref().unwrap().published();
    // Rows, bus records, signals and a health record per source every second went out.
    assert!(bar_rows > 500 && top_rows > 500 && published > 100_000);
    let emitted = sink.strategies().unwrap().counters().emitted;
    assert!(emitted > 10, "{emitted} signals");
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {measured} messages with rows, bus, signals and health"
    );
    drop(sink);
}

/// Bybit spot and linear (the synthetic stream): trades through the id window, deltas,
/// and a repeated trade message and a stream break in the measured part.
#[test]
fn no_allocation_per_bybit_message_after_warm_up() {
    use flowcore_sim::bybit_synth::{beside_btc_recordings, generate};
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let table = InstrumentTable::bundled_defaults();
    let venues = [Venue::BybitSpot, Venue::BybitLinear];
    let mut messages: Vec<Message> = Vec::new();
    for (i, venue) in venues.into_iter().enumerate() {
        let stream = generate(&beside_btc_recordings(venue)).unwrap();
        for line in &stream.lines {
            let (ts, json) = line.split_once(' ').unwrap();
            messages.push((ts.parse().unwrap(), i, json.as_bytes().to_vec()));
        }
    }
    messages.sort_by_key(|m| (m.0, m.1));
    let at = messages.len() / 2;
    let trade = messages[at..]
        .iter()
        .find(|m| m.2.starts_with(b"{\"topic\":\"publicTrade"))
        .cloned()
        .unwrap();
    messages.insert(at, trade);
    messages.insert(
        at + 10,
        (
            messages[at].0,
            0,
            b"{\"flowcore\":\"stream_break\"}".to_vec(),
        ),
    );
    let insts: Vec<_> = venues
        .iter()
        .map(|v| table.find(*v, b"BTCUSDT").unwrap())
        .collect();
    let mut parsers = venues.map(|v| VenueParser::new(v, table.clone()));
    let mut engine = Engine::new(table, ImbalanceConfig::default(), Some(&insts)).unwrap();
    let mut sink = CountingSink::default();
    let warm_up = messages.len() / 5;
    let mut run = |range: std::ops::Range<usize>, engine: &mut Engine| {
        for (ts, i, json) in &messages[range] {
            let marker = flowcore_feeds::session_marker(json).map(|_| insts[*i]);
            let _ = parsers[*i].parse(*ts, json, marker, &mut |ev| {
                engine.on_event(&ev, &mut sink);
            });
        }
    };
    run(0..warm_up, &mut engine);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(warm_up..messages.len(), &mut engine);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let c = engine.counters();
    assert!(
        c.duplicate_trades > 0 && c.stream_breaks == 1 && c.diffs_applied > 40_000,
        "{c:?}"
    );
    assert!(sink.bars > 1000, "{} bars", sink.bars);
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations over {} messages",
        messages.len() - warm_up
    );
}

/// The two-thread replay's handoff (runtime/src/handoff.rs): parsers on the reader thread,
/// batches through the ring, the engine on this thread. The counter is global, so it sees
/// both threads; it is read on the engine side at the first fifth's last message (the
/// reader is by then at most a ring ahead, past its warm-up too) and at the last message.
#[test]
fn no_allocation_per_message_on_two_threads() {
    use flowcore_runtime::config::IdleStrategy;
    use flowcore_runtime::handoff::{two_threads, Handoff, HandoffSink, ReadOutcome};
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let messages = messages();
    let table = InstrumentTable::binance_defaults();
    let insts = [
        table.find(Venue::BinanceSpot, b"BTCUSDT").unwrap(),
        table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap(),
    ];
    let mut parsers = [
        VenueParser::new(Venue::BinanceSpot, table.clone()),
        VenueParser::new(Venue::BinanceUsdm, table.clone()),
    ];
    let mut engine = Engine::new(table, ImbalanceConfig::default(), Some(&insts)).unwrap();
    let mut sink = CountingSink::default();
    let warm_up = messages.len() / 5;
    let (mut read, mut before, mut after) = (0, 0, 0);
    two_threads(
        IdleStrategy::SpinYield,
        false,
        |ring| {
            for (ts, i, json) in &messages {
                let _ = parsers[*i].parse(*ts, json, Some(insts[*i]), &mut |ev| ring.event(ev));
                ring.read(*i as u32, ReadOutcome::Market);
            }
        },
        |handoff| {
            match handoff {
                Handoff::Event(ev) => engine.on_event(ev, &mut sink),
                Handoff::Read { .. } => {
                    read += 1;
                    if read == warm_up {
                        before = ALLOCATIONS.load(Ordering::Relaxed);
                    } else if read == messages.len() {
                        after = ALLOCATIONS.load(Ordering::Relaxed);
                    }
                }
            }
            true
        },
    );
    assert_eq!(read, messages.len(), "every message crossed");
    assert!(sink.bars > 500 && sink.tops > 500 && engine.counters().diffs_applied > 5_000);
    assert_eq!(
        after - before,
        0,
        "{} allocations over {} messages",
        after - before,
        messages.len() - warm_up
    );
}
