//! Bybit books through the parser and the engine, from the real spot and linear samples:
//! every level equals an independent model (a `BTreeMap` fed from serde_json), a repeated
//! delta is skipped, a missing `u` unsyncs the book and asks for a fresh snapshot, and a new
//! snapshot (also one with `u == 1`, a venue restart) resets it.

use flowcore_core::engine::{Engine, EngineSink, FeedRequest, TopRow};
use flowcore_core::event::BookSide;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use serde_json::Value;
use std::collections::BTreeMap;

struct Ignore;
impl flowcore_core::bars::BarSink for Ignore {
    fn bar(&mut self, _: &flowcore_core::bars::Bar) {}
}
impl EngineSink for Ignore {
    fn top(&mut self, _: &TopRow) {}
}

/// A decimal string as a mantissa at `scale`, by string surgery.
fn mantissa(text: &str, scale: usize) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let kept: String = frac
        .chars()
        .chain(std::iter::repeat('0'))
        .take(scale)
        .collect();
    format!("{int}{kept}").parse().unwrap()
}

/// The book as Bybit describes it: a snapshot replaces, a delta sets (0 deletes).
#[derive(Default)]
struct Model {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl Model {
    fn apply(&mut self, msg: &Value, scales: (usize, usize)) {
        if msg["type"] == "snapshot" {
            self.bids.clear();
            self.asks.clear();
        }
        for (key, side) in [("b", &mut self.bids), ("a", &mut self.asks)] {
            for l in msg["data"][key].as_array().unwrap() {
                let px = mantissa(l[0].as_str().unwrap(), scales.0);
                let qty = mantissa(l[1].as_str().unwrap(), scales.1);
                if qty == 0 {
                    side.remove(&px);
                } else {
                    side.insert(px, qty);
                }
            }
        }
    }

    fn levels(&self, side: BookSide) -> Vec<(i64, i64)> {
        match side {
            BookSide::Bid => self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
            BookSide::Ask => self.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        }
    }
}

fn sample(name: &str) -> Value {
    let path = flowcore_tests::repo().join("data/samples").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn with_u(msg: &Value, u: u64) -> Value {
    let mut m = msg.clone();
    m["data"]["u"] = u.into();
    m
}

fn books_follow_the_model(venue: Venue, snapshot: &str, delta: &str) {
    let table = InstrumentTable::bundled_defaults();
    let (snapshot, delta) = (sample(snapshot), sample(delta));
    let symbol = snapshot["data"]["s"].as_str().unwrap();
    let inst = table.find(venue, symbol.as_bytes()).unwrap();
    let scales = {
        let i = table.get(inst);
        (i.price_scale as usize, i.size_scale as usize)
    };
    let mut parser = VenueParser::new(venue, table.clone());
    let mut engine = Engine::new(table, Default::default(), Some(&[inst])).unwrap();
    let mut model = Model::default();
    let s = snapshot["data"]["u"].as_u64().unwrap();
    // (message, applies to the model, synced after, what it is)
    let steps: Vec<(Value, bool, bool, &str)> = vec![
        (
            with_u(&delta, s - 5),
            false,
            false,
            "a delta before any snapshot",
        ),
        (snapshot.clone(), true, true, "the snapshot"),
        (with_u(&delta, s + 1), true, true, "the next delta"),
        (with_u(&delta, s + 1), false, true, "the same delta again"),
        (
            with_u(&delta, s + 3),
            false,
            false,
            "a delta after a missing one",
        ),
        (
            with_u(&snapshot, 1),
            true,
            true,
            "a snapshot after a venue restart",
        ),
        (with_u(&delta, 2), true, true, "the delta after it"),
    ];
    let mut requests = Vec::new();
    for (n, (msg, applies, synced, what)) in steps.iter().enumerate() {
        let text = msg.to_string();
        parser
            .parse(n as i64, text.as_bytes(), None, &mut |ev| {
                engine.on_event(&ev, &mut Ignore)
            })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        while let Some(r) = engine.pop_request() {
            requests.push((n, r));
        }
        if *applies {
            model.apply(msg, scales);
        }
        assert_eq!(engine.is_synced(inst), *synced, "{what}");
        if *synced {
            for side in [BookSide::Bid, BookSide::Ask] {
                let got: Vec<(i64, i64)> = engine
                    .book(inst)
                    .levels(side)
                    .map(|l| (l.px, l.qty))
                    .collect();
                assert_eq!(got, model.levels(side), "{what}: {side:?}");
            }
        }
    }
    assert!(model.bids.len() > 20 && model.asks.len() > 20);
    let c = engine.counters();
    assert_eq!(c.gaps, 1, "{c:?}");
    // The early delta and the gap each ask for a fresh snapshot (a resubscribe on Bybit).
    assert_eq!(
        requests,
        vec![
            (0, FeedRequest::Snapshot(inst)),
            (4, FeedRequest::Snapshot(inst))
        ]
    );
}

#[test]
fn spot_book_resets_skips_repeats_and_resyncs_after_a_gap() {
    books_follow_the_model(
        Venue::BybitSpot,
        "bybit_spot_orderbook200_snapshot.json",
        "bybit_spot_orderbook200_delta.json",
    );
}

#[test]
fn linear_book_resets_skips_repeats_and_resyncs_after_a_gap() {
    books_follow_the_model(
        Venue::BybitLinear,
        "bybit_linear_orderbook200_snapshot.json",
        "bybit_linear_orderbook200_delta.json",
    );
}
