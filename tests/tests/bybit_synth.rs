//! Bybit through the parser and the engine on the **synthetic** stream
//! (tools/sim/src/bybit_synth.rs), against the truth the generator made it from: the book after
//! every delta, level by level, and every second's taker flow. A break flags exactly the
//! seconds it may have cost; repeated trades are dropped.

use flowcore_core::bars::{Bar, BarKey, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::BookSide;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use flowcore_sim::bybit_synth::{generate, SynthOptions, SynthStream};
use std::collections::BTreeMap;

#[derive(Default)]
struct Bars(Vec<Bar>);
impl BarSink for Bars {
    fn bar(&mut self, b: &Bar) {
        self.0.push(*b);
    }
}
impl EngineSink for Bars {
    fn top(&mut self, _: &TopRow) {}
}

const START_MS: i64 = 1_723_161_254_000;

struct Fed {
    engine: Engine,
    bars: Bars,
    inst: InstrumentId,
}

/// Feeds recording lines (`<local_ns> <json>`) through the venue's parser into an engine,
/// calling `after(line index, engine)` after each.
fn feed(venue: Venue, lines: &[String], after: impl FnMut(usize, &Engine)) -> Fed {
    feed_with(venue, lines, false, after)
}

/// [`feed`], with block trades counted as taker flow or not.
fn feed_with(
    venue: Venue,
    lines: &[String],
    count_block_trades: bool,
    mut after: impl FnMut(usize, &Engine),
) -> Fed {
    let table = InstrumentTable::bundled_defaults();
    let inst = table.find(venue, b"BTCUSDT").unwrap();
    let mut parser =
        VenueParser::new(venue, table.clone()).counting_block_trades(count_block_trades);
    let mut engine = Engine::new(table, Default::default(), Some(&[inst])).unwrap();
    let mut bars = Bars::default();
    for (n, line) in lines.iter().enumerate() {
        let (ts, json) = line.split_once(' ').unwrap();
        let marker = flowcore_feeds::session_marker(json.as_bytes()).map(|_| inst);
        parser
            .parse(ts.parse().unwrap(), json.as_bytes(), marker, &mut |ev| {
                engine.on_event(&ev, &mut bars)
            })
            .unwrap_or_else(|e| panic!("line {n}: {e}: {json}"));
        after(n, &engine);
    }
    engine.finish(&mut bars);
    Fed { engine, bars, inst }
}

/// Per second: (taker buy, taker sell, trades) of the generator's trades, block trades left
/// out as the parser's default does.
fn truth_flow(stream: &SynthStream) -> BTreeMap<i64, (i128, i128, u32)> {
    truth_flow_with(stream, false)
}

fn truth_flow_with(stream: &SynthStream, blocks: bool) -> BTreeMap<i64, (i128, i128, u32)> {
    let mut flow = BTreeMap::new();
    for t in stream.trades.iter().filter(|t| blocks || !t.block) {
        let e = flow
            .entry(t.ts_ms.div_euclid(1000) * 1000)
            .or_insert((0, 0, 0));
        if t.buy {
            e.0 += i128::from(t.qty);
        } else {
            e.1 += i128::from(t.qty);
        }
        e.2 += 1;
    }
    flow
}

/// The bar's taker flow is the generator's for its second.
fn assert_flow_is_truth(bar: &Bar, truth: &BTreeMap<i64, (i128, i128, u32)>, venue: Venue) {
    let want = truth.get(&bar.ts_ms).copied().unwrap_or_default();
    assert_eq!(
        (bar.buy_qty, bar.sell_qty, bar.trades),
        want,
        "{venue} {}",
        bar.ts_ms
    );
}

fn instrument_bars(fed: &Fed) -> Vec<Bar> {
    fed.bars
        .0
        .iter()
        .filter(|b| b.key == BarKey::Instrument(fed.inst))
        .copied()
        .collect()
}

#[test]
fn books_equal_the_generated_book_after_every_delta() {
    for venue in [Venue::BybitSpot, Venue::BybitLinear] {
        let stream = generate(&SynthOptions::new(venue, 11, START_MS, 60)).unwrap();
        let mut book_at = 0;
        let mut checked = 0;
        let fed = feed(venue, &stream.lines, |n, engine| {
            if !stream.lines[n].contains("\"topic\":\"orderbook.") {
                return;
            }
            let truth = &stream.books[book_at];
            book_at += 1;
            let inst = engine
                .table()
                .find(venue, b"BTCUSDT")
                .expect("bundled instrument");
            assert!(engine.is_synced(inst), "{venue} u {}", truth.update_id);
            for (side, want) in [(BookSide::Bid, &truth.bids), (BookSide::Ask, &truth.asks)] {
                let got: Vec<(i64, i64)> = engine
                    .book(inst)
                    .levels(side)
                    .map(|l| (l.px, l.qty))
                    .collect();
                assert_eq!(&got, want, "{venue} {side:?} at u {}", truth.update_id);
            }
            checked += 1;
        });
        assert_eq!(checked, stream.books.len());
        assert!(checked > 2500, "{venue}: {checked} books");
        let c = fed.engine.counters();
        assert_eq!((c.gaps, c.crossed_books), (0, 0), "{venue}");
    }
}

#[test]
fn bars_equal_the_generated_taker_flow() {
    for venue in [Venue::BybitSpot, Venue::BybitLinear] {
        let stream = generate(&SynthOptions::new(venue, 12, START_MS, 60)).unwrap();
        let fed = feed(venue, &stream.lines, |_, _| {});
        let truth = truth_flow(&stream);
        let bars = instrument_bars(&fed);
        assert_eq!(bars.len(), 60, "{venue}: a bar a second");
        for bar in &bars {
            assert_flow_is_truth(bar, &truth, venue);
        }
        if let Some(want) = stream.stats {
            // The last `tickers` values, as the engine keeps them.
            let got = fed.engine.stats(fed.inst);
            assert_eq!(
                (
                    got.mark_px,
                    got.index_px,
                    got.open_interest,
                    got.funding_rate,
                    got.next_funding_ms
                ),
                (
                    // The synthesiser's prices are at scale 2; statistics at 8.
                    Some(want.mark_px * 1_000_000),
                    Some(want.index_px * 1_000_000),
                    Some(want.open_interest),
                    Some(want.funding_rate),
                    Some(want.next_funding_ms)
                )
            );
        }
        let blocks = stream.trades.iter().filter(|t| t.block).count();
        assert!(
            blocks > 0,
            "{venue}: the stream has block trades to leave out"
        );
        // Counted when asked for (`count_block_trades`, `--count-block-trades`).
        let counted = feed_with(venue, &stream.lines, true, |_, _| {});
        let with_blocks = truth_flow_with(&stream, true);
        for bar in &instrument_bars(&counted) {
            assert_flow_is_truth(bar, &with_blocks, venue);
        }
        assert_ne!(instrument_bars(&counted), bars);
        assert_eq!(fed.engine.counters().duplicate_trades, 0);
    }
}

#[test]
fn a_repeated_trade_message_is_counted_once() {
    let venue = Venue::BybitLinear;
    let stream = generate(&SynthOptions::new(venue, 13, START_MS, 20)).unwrap();
    let mut lines = stream.lines.clone();
    let at = lines
        .iter()
        .position(|l| l.contains("publicTrade") && l.matches("\"i\":").count() >= 2)
        .expect("a message of several trades");
    let repeats = lines[at].matches("\"i\":").count() as u64;
    lines.insert(at + 1, lines[at].clone());
    let fed = feed(venue, &lines, |_, _| {});
    let clean = feed(venue, &stream.lines, |_, _| {});
    assert_eq!(fed.engine.counters().duplicate_trades, repeats);
    assert_eq!(instrument_bars(&fed), instrument_bars(&clean));
}

/// A connection lost for 3 s: its trades are gone (Bybit has no history by id), so the
/// seconds from the break through the first trade after it are `complete: false`, and
/// every other second equals the truth.
#[test]
fn a_break_flags_the_seconds_it_may_have_cost() {
    let venue = Venue::BybitSpot;
    let stream = generate(&SynthOptions::new(venue, 14, START_MS, 30)).unwrap();
    // The venue's `ts` of a line.
    let venue_ms = |l: &str| -> i64 {
        let at = l.find("\"ts\":").unwrap() + 5;
        let len = l[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
        l[at..at + len].parse().unwrap()
    };
    let (cut_from, cut_to) = (START_MS + 10_500, START_MS + 13_500);
    let mut lines: Vec<String> = Vec::new();
    let mut resumed = false;
    for l in &stream.lines {
        let ms = venue_ms(l);
        if ms < cut_from {
            lines.push(l.clone());
        } else if ms >= cut_to {
            if !resumed {
                // The successor connection's lines follow a break marker. (Its snapshot is
                // left out: the book stays unsynced, which the bars do not need.)
                let local = l.split_once(' ').unwrap().0.parse::<i64>().unwrap();
                lines.push(format!("{} {{\"flowcore\":\"stream_break\"}}", local - 1));
                resumed = true;
            }
            lines.push(l.clone());
        }
    }
    let fed = feed(venue, &lines, |_, _| {});
    let truth = truth_flow(&stream);
    let first_after = stream
        .trades
        .iter()
        .find(|t| t.ts_ms >= cut_to && !t.block)
        .map(|t| t.ts_ms.div_euclid(1000) * 1000)
        .unwrap();
    let c = fed.engine.counters();
    assert_eq!((c.stream_breaks, c.unfilled_trade_gaps), (1, 1));
    let bars = instrument_bars(&fed);
    assert!(bars.len() >= 29, "{} bars", bars.len());
    // The first and last seconds are partly recorded: incomplete either way.
    for bar in &bars[1..bars.len() - 1] {
        // From the second the connection broke in through the first trade after it.
        let hole = bar.ts_ms >= (cut_from / 1000) * 1000 && bar.ts_ms <= first_after;
        assert_eq!(bar.complete, !hole, "second {}", bar.ts_ms);
        if !hole {
            assert_flow_is_truth(bar, &truth, venue);
        }
    }
}
