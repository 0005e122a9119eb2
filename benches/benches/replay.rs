//! Whole-replay throughput on the same decompressed, merged input: flowcore's parsers and
//! engine, on two threads as `flowcore replay` runs by default and on one, against a
//! straightforward single-threaded implementation of the same work
//! (serde_json::Value, rust_decimal, BTreeMap books, per-second bars and top-10 imbalance).
//! Both first prove they agree: same trade count and same final CVD per instrument.

use flowcore_benches::reference::reference;
use flowcore_benches::{full_run, load, Message, BTC_FILES};
use flowcore_core::bars::{Bar, BarKey, BarSink};
use flowcore_core::decimal::Fixed;
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::MarketEvent;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_runtime::config::IdleStrategy;
use flowcore_runtime::handoff::{
    producer_finished, two_threads, Handoff, HandoffSink, HandoffWriter, ReadOutcome, RING_CAPACITY,
};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

#[derive(Default)]
struct LastCvd {
    cvd: HashMap<InstrumentId, i128>,
    tops: u64,
}

impl BarSink for LastCvd {
    fn bar(&mut self, bar: &Bar) {
        if let BarKey::Instrument(id) = bar.key {
            self.cvd.insert(id, bar.cvd);
        }
    }
}

impl EngineSink for LastCvd {
    fn top(&mut self, row: &TopRow) {
        self.tops += black_box(row.top.is_some()) as u64;
    }
}

/// flowcore: returns (trades in bars, final CVD per symbol as decimal strings).
fn flowcore(
    messages: &[Message],
    files: &[(Venue, InstrumentId)],
) -> (u64, BTreeMap<String, String>) {
    let table = InstrumentTable::binance_defaults();
    let mut parsers = parsers_for(files, &table);
    let mut engine = engine_for(files, &table);
    let mut sink = LastCvd::default();
    for m in messages {
        let _ = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
            engine.on_event(&ev, &mut sink)
        });
    }
    engine.finish(&mut sink);
    (engine.bars().counters().trades, final_cvd(&table, &sink))
}

/// flowcore on two threads, as `flowcore replay` runs by default: the parsers on a reader
/// thread, the engine on this one, events crossing in batches through the replay's ring.
/// `per_message` flushes each message's batch as it ends, as a live feed thread does.
fn flowcore_two_threads(
    messages: &[Message],
    files: &[(Venue, InstrumentId)],
    per_message: bool,
) -> (u64, BTreeMap<String, String>, u64) {
    let table = InstrumentTable::binance_defaults();
    let mut engine = engine_for(files, &table);
    let mut sink = LastCvd::default();
    let read = |ring: &mut HandoffWriter| {
        let mut parsers = parsers_for(files, &table);
        for m in messages {
            let parsed = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
                ring.event(ev)
            });
            let outcome = match parsed {
                Ok(_) => ReadOutcome::Market,
                Err(_) => ReadOutcome::Refused,
            };
            if !ring.read(m.file as u32, outcome) {
                return;
            }
        }
    };
    let ((), full_waits) = two_threads(IdleStrategy::SpinYield, per_message, read, |h| {
        if let Handoff::Event(ev) = h {
            engine.on_event(ev, &mut sink);
        }
        true
    });
    engine.finish(&mut sink);
    let (trades, cvd) = (engine.bars().counters().trades, final_cvd(&table, &sink));
    (trades, cvd, full_waits)
}

/// Two threads with one rtrb push and pop per event: how live feed threads handed events to
/// the core thread before 2026-11-22 (the baseline for batching).
fn per_event_push_pop(messages: &[Message], files: &[(Venue, InstrumentId)]) -> u64 {
    let table = InstrumentTable::binance_defaults();
    let mut engine = engine_for(files, &table);
    let mut sink = LastCvd::default();
    let (mut tx, mut rx) = rtrb::RingBuffer::<MarketEvent>::new(RING_CAPACITY);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut parsers = parsers_for(files, &table);
            for m in messages {
                let _ = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
                    let mut ev = ev;
                    while let Err(rtrb::PushError::Full(back)) = tx.push(ev) {
                        ev = back;
                        std::hint::spin_loop();
                    }
                });
            }
        });
        while !producer_finished(&rx) {
            match rx.pop() {
                Ok(ev) => engine.on_event(&ev, &mut sink),
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    engine.finish(&mut sink);
    engine.bars().counters().trades
}

/// Final CVD per instrument as `venue:symbol` -> decimal string.
fn final_cvd(table: &InstrumentTable, sink: &LastCvd) -> BTreeMap<String, String> {
    sink.cvd
        .iter()
        .map(|(id, cvd)| {
            let i = table.get(*id);
            (
                format!("{}:{}", i.venue, i.symbol),
                Fixed::new(*cvd, i.size_scale).to_string(),
            )
        })
        .collect()
}

/// flowcore's parsers alone, the events counted and dropped: the parse share of [`flowcore`].
fn parse_only(messages: &[Message], files: &[(Venue, InstrumentId)]) -> u64 {
    let table = InstrumentTable::binance_defaults();
    let mut parsers = parsers_for(files, &table);
    let mut events = 0u64;
    for m in messages {
        let _ = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
            events += black_box(&ev).local_ts as u64 & 1;
        });
    }
    events
}

fn main() {
    let messages = load(&BTC_FILES);
    let table = InstrumentTable::binance_defaults();
    let files: Vec<(Venue, InstrumentId)> = BTC_FILES
        .iter()
        .map(|(v, name)| {
            (
                *v,
                table
                    .find(
                        *v,
                        if name.starts_with("coinm") {
                            b"BTCUSD_PERP"
                        } else {
                            b"BTCUSDT"
                        },
                    )
                    .unwrap(),
            )
        })
        .collect();
    let ours = flowcore(&messages, &files);
    let theirs = reference(&messages);
    assert_eq!(ours, theirs, "flowcore and the reference disagree");
    for per_message in [false, true] {
        let (trades, cvd, _) = flowcore_two_threads(&messages, &files, per_message);
        assert_eq!((trades, cvd), ours, "flowcore on two threads disagrees");
    }
    assert_eq!(per_event_push_pop(&messages, &files), ours.0);
    if !full_run() {
        println!("replay bench: smoke pass ok ({} trades)", ours.0);
        return;
    }
    let events = pre_parsed(&messages, &files);
    let bytes: usize = messages.iter().map(|m| m.json.len()).sum();
    let mut best = [f64::MAX; 7];
    let mut full_waits = 0;
    for _ in 0..5 {
        timed(&mut best[0], || flowcore(&messages, &files));
        timed(&mut best[1], || reference(&messages));
        timed(&mut best[2], || parse_only(&messages, &files));
        full_waits = timed(&mut best[3], || {
            flowcore_two_threads(&messages, &files, false)
        })
        .2;
        timed(&mut best[5], || {
            flowcore_two_threads(&messages, &files, true)
        });
        timed(&mut best[6], || per_event_push_pop(&messages, &files));
        timed(&mut best[4], || engine_only(&events, &files));
    }
    let n = messages.len() as f64;
    println!(
        "replay: {} messages ({} events), {:.1} MB decompressed, in memory, best of 5",
        messages.len(),
        events.len(),
        bytes as f64 / 1e6
    );
    let row = |what: &str, secs: f64| {
        println!(
            "  {what:<38} {:>7.1} ms  {:>5.2} M msgs/s  {:>5.2}x",
            secs * 1e3,
            n / secs / 1e6,
            best[1] / secs
        )
    };
    row("flowcore, 2 threads (replay default)", best[3]);
    row("  batches flushed per message (as live)", best[5]);
    row("  one push/pop per event (live before)", best[6]);
    row("flowcore, 1 thread", best[0]);
    println!(
        "    parsing alone                        {:>7.1} ms",
        best[2] * 1e3
    );
    println!(
        "    engine alone, events pre-parsed      {:>7.1} ms",
        best[4] * 1e3
    );
    row("serde_json+rust_decimal+BTree, 1 thread", best[1]);
    println!("  ratio = reference time / flowcore time; full-ring waits (last 2-thread run): {full_waits}");
}

/// The engine over the input files' instruments.
fn engine_for(files: &[(Venue, InstrumentId)], table: &InstrumentTable) -> Engine {
    let members: Vec<InstrumentId> = files.iter().map(|f| f.1).collect();
    Engine::new(table.clone(), Default::default(), Some(&members)).unwrap()
}

/// One parser per input file.
fn parsers_for(files: &[(Venue, InstrumentId)], table: &InstrumentTable) -> Vec<VenueParser> {
    files
        .iter()
        .map(|(v, _)| VenueParser::new(*v, table.clone()))
        .collect()
}

/// Runs `run` once, keeping the fastest time in `best` (seconds).
fn timed<R>(best: &mut f64, run: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let out = black_box(run());
    *best = best.min(t.elapsed().as_secs_f64());
    out
}

/// Every event of `messages`, parsed once.
fn pre_parsed(messages: &[Message], files: &[(Venue, InstrumentId)]) -> Vec<MarketEvent> {
    let table = InstrumentTable::binance_defaults();
    let mut parsers = parsers_for(files, &table);
    let mut events = Vec::new();
    for m in messages {
        let _ = parsers[m.file].parse(m.ts, &m.json, Some(files[m.file].1), &mut |ev| {
            events.push(ev)
        });
    }
    events
}

/// The engine alone over parsed events: the engine share of [`flowcore`], and the bound a
/// two-thread replay can reach.
fn engine_only(events: &[MarketEvent], files: &[(Venue, InstrumentId)]) -> u64 {
    let table = InstrumentTable::binance_defaults();
    let mut engine = engine_for(files, &table);
    let mut sink = LastCvd::default();
    for ev in events {
        engine.on_event(ev, &mut sink);
    }
    engine.finish(&mut sink);
    sink.tops
}
