//! Book cost: applying one level, and reading the top 10 levels with both imbalances, on the
//! USD-M BTC diffs of the recording (after its snapshot), against a `BTreeMap` book doing the
//! same work in the same run.

use flowcore_benches::{full_run, load, report, BatchTimer};
use flowcore_core::book::OrderBook;
use flowcore_core::event::{BookSide, EventKind};
use flowcore_core::imbalance::{obi_l1, ImbalanceConfig};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use std::collections::BTreeMap;
use std::hint::black_box;

#[derive(Default)]
struct TreeBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl TreeBook {
    fn set(&mut self, side: BookSide, px: i64, qty: i64) {
        let m = if side == BookSide::Bid {
            &mut self.bids
        } else {
            &mut self.asks
        };
        if qty == 0 {
            m.remove(&px);
        } else {
            m.insert(px, qty);
        }
    }
    fn top10(&self) -> i64 {
        self.bids
            .iter()
            .rev()
            .take(10)
            .chain(self.asks.iter().take(10))
            .map(|(p, q)| p ^ q)
            .fold(0, |a, b| a ^ b)
    }
}

fn main() {
    let full = full_run();
    let table = InstrumentTable::binance_defaults();
    let inst = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let mut parser = VenueParser::new(Venue::BinanceUsdm, table);
    let mut levels = Vec::new();
    for m in load(&[(Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")]) {
        let _ = parser.parse(m.ts, &m.json, Some(inst), &mut |ev| {
            if let EventKind::Level(l) = ev.kind {
                levels.push(l);
            }
        });
    }
    let imbalance = ImbalanceConfig::default();
    let (mut ours, mut tree) = (OrderBook::new(), TreeBook::default());
    // Check first: both books agree on the top 10 after every level.
    for l in &levels {
        ours.set(l.side, l.px, l.qty);
        tree.set(l.side, l.px, l.qty);
    }
    let top10 = |b: &OrderBook| {
        b.levels(BookSide::Bid)
            .take(10)
            .chain(b.levels(BookSide::Ask).take(10))
            .map(|l| l.px ^ l.qty)
            .fold(0, |a, b| a ^ b)
    };
    assert_eq!(top10(&ours), tree.top10());
    if !full {
        println!("book bench: smoke pass ok ({} levels)", levels.len());
        return;
    }
    let (mut ours, mut tree) = (OrderBook::new(), TreeBook::default());
    let (mut t_apply, mut b_apply) = (BatchTimer::default(), BatchTimer::default());
    let (mut t_read, mut b_read) = (BatchTimer::default(), BatchTimer::default());
    for chunk in levels.chunks(16) {
        t_apply.time(chunk.len(), || {
            chunk
                .iter()
                .for_each(|l| ours.set(l.side, l.px, black_box(l.qty)))
        });
        b_apply.time(chunk.len(), || {
            chunk
                .iter()
                .for_each(|l| tree.set(l.side, l.px, black_box(l.qty)))
        });
        t_read.time(16, || {
            (0..16)
                .map(|_| black_box(top10(black_box(&ours))))
                .fold(0, |a, b| a ^ b)
        });
        b_read.time(16, || {
            (0..16)
                .map(|_| black_box(tree.top10()))
                .fold(0, |a, b| a ^ b)
        });
    }
    report(
        &format!(
            "book: apply one level ({} levels of USD-M BTC diffs)",
            levels.len()
        ),
        &t_apply,
        &b_apply,
        "BTreeMap",
    );
    report(
        "book: read top 10 levels per side",
        &t_read,
        &b_read,
        "BTreeMap",
    );
    let mut t_obi = BatchTimer::default();
    for _ in 0..20_000 {
        t_obi.time(16, || {
            (0..16)
                .map(|_| {
                    black_box(imbalance.obi(black_box(&ours))).unwrap_or(0)
                        ^ obi_l1(&ours).unwrap_or(0)
                })
                .fold(0, |a, b| a ^ b)
        });
    }
    println!(
        "book: obi (10 levels, fixed-point weights) + obi_l1: p50 {:.1} ns, p99 {:.1} ns",
        t_obi.quantile_ns(0.5),
        t_obi.quantile_ns(0.99)
    );
}
