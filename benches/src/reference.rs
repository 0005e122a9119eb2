//! The baseline of the replay benches: the same work written the straightforward way, with
//! `serde_json::Value`, `rust_decimal` and `BTreeMap` books, on one thread.

use crate::Message;
use flowcore_core::instrument::Venue;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::str::FromStr;

#[derive(Default)]
struct RefBook {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    last_u: Option<u64>,
    next_sec: Option<i64>,
}

/// The straightforward reference: same outputs' inputs (bars' taker flow, books, per-second
/// top-10 imbalance), written the obvious way. Returns the trades counted and each
/// instrument's CVD over the run (`venue:SYMBOL` -> decimal text at the instrument's scale).
pub fn reference(messages: &[Message]) -> (u64, BTreeMap<String, String>) {
    let mut books: HashMap<usize, RefBook> = HashMap::new();
    let mut bars: HashMap<String, BTreeMap<i64, (Decimal, Decimal, u64)>> = HashMap::new();
    let weights: Vec<Decimal> = (0..10)
        .map(|i| Decimal::from_f64_retain((-0.1 * i as f64).exp()).unwrap())
        .collect();
    let mut trades = 0u64;
    let mut obi_sum = Decimal::ZERO;
    for m in messages {
        let v: Value = serde_json::from_slice(&m.json).unwrap();
        let venue = m.venue;
        let book = books.entry(m.file).or_default();
        let Some(data) = v.get("data") else {
            book.bids.clear();
            book.asks.clear();
            for (side, key) in [(&mut book.bids, "bids"), (&mut book.asks, "asks")] {
                for l in v[key].as_array().unwrap() {
                    side.insert(
                        Decimal::from_str(l[0].as_str().unwrap()).unwrap(),
                        Decimal::from_str(l[1].as_str().unwrap()).unwrap(),
                    );
                }
            }
            book.last_u = v["lastUpdateId"].as_u64();
            continue;
        };
        match data.get("e").and_then(Value::as_str) {
            Some("trade") => {
                if venue != Venue::BinanceSpot && data["X"] != "MARKET" {
                    continue;
                }
                let q = Decimal::from_str(data["q"].as_str().unwrap()).unwrap();
                let sec = data["T"].as_i64().unwrap() / 1000;
                let key = format!("{}:{}", venue.name(), data["s"].as_str().unwrap());
                let bar = bars.entry(key).or_default().entry(sec).or_insert((
                    Decimal::ZERO,
                    Decimal::ZERO,
                    0,
                ));
                if data["m"].as_bool().unwrap() {
                    bar.1 += q;
                } else {
                    bar.0 += q;
                }
                bar.2 += 1;
                trades += 1;
            }
            Some("depthUpdate") => {
                let sec = data["E"].as_i64().unwrap() / 1000;
                if book.next_sec.is_some_and(|s| s < sec) && book.last_u.is_some() {
                    // Per-second top-10 weighted imbalance, as the tops rows carry.
                    let (mut num, mut den) = (Decimal::ZERO, Decimal::ZERO);
                    let bids = book
                        .bids
                        .iter()
                        .rev()
                        .map(|l| *l.1)
                        .chain(std::iter::repeat(Decimal::ZERO));
                    let asks = book
                        .asks
                        .iter()
                        .map(|l| *l.1)
                        .chain(std::iter::repeat(Decimal::ZERO));
                    for ((w, b), a) in weights.iter().zip(bids).zip(asks) {
                        num += w * (b - a);
                        den += w * (b + a);
                    }
                    if !den.is_zero() {
                        obi_sum += num / den;
                    }
                }
                book.next_sec = Some(sec);
                let u = data["u"].as_u64().unwrap();
                match book.last_u {
                    Some(last) if u > last => {}
                    _ => continue,
                }
                for (side, key) in [(&mut book.bids, "b"), (&mut book.asks, "a")] {
                    for l in data[key].as_array().unwrap() {
                        let px = Decimal::from_str(l[0].as_str().unwrap()).unwrap();
                        let qty = Decimal::from_str(l[1].as_str().unwrap()).unwrap();
                        if qty.is_zero() {
                            side.remove(&px);
                        } else {
                            side.insert(px, qty);
                        }
                    }
                }
                book.last_u = Some(u);
            }
            _ => {}
        }
    }
    black_box(obi_sum);
    let cvd = bars
        .into_iter()
        .map(|(k, secs)| {
            let cvd: Decimal = secs.values().map(|(b, s, _)| b - s).sum();
            let scale = if k.starts_with("binance-spot") {
                8
            } else if k.starts_with("binance-usdm") {
                3
            } else {
                0
            };
            (k, format!("{:.*}", scale, cvd))
        })
        .collect();
    (trades, cvd)
}
