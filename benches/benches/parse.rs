//! Parse cost per message type: flowcore's Binance scanner against serde_json into a derived
//! struct with borrowed `&str` fields and the same decimal parse, on the same messages.

use flowcore_benches::{full_run, load, report, BatchTimer, Message};
use flowcore_core::decimal::parse_mantissa;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use serde::Deserialize;
use std::hint::black_box;

#[derive(Deserialize)]
struct Wrapper<'a, T> {
    #[serde(borrow)]
    #[allow(dead_code)] // read by serde, as a real consumer would route on it
    stream: &'a str,
    data: T,
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)] // Binance's field names; every field is parsed as a consumer would
struct TradeMsg<'a> {
    e: &'a str,
    E: u64,
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    T: u64,
    m: bool,
    #[serde(default)]
    X: Option<&'a str>,
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)] // Binance's field names
struct BookTickerMsg<'a> {
    u: u64,
    s: &'a str,
    b: &'a str,
    B: &'a str,
    a: &'a str,
    A: &'a str,
    #[serde(default)]
    E: Option<u64>,
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)] // Binance's field names
struct DepthMsg<'a> {
    E: u64,
    s: &'a str,
    U: u64,
    u: u64,
    #[serde(default)]
    pu: Option<u64>,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

fn scales(venue: Venue) -> (u8, u8) {
    match venue {
        Venue::BinanceSpot => (2, 8),
        Venue::BinanceUsdm => (2, 3),
        Venue::BinanceCoinm => (1, 0),
        Venue::BybitSpot => (2, 6),
        Venue::BybitLinear => (2, 3),
    }
}

/// The serde_json baseline: returns a checksum of the parsed mantissas.
fn serde_parse(kind: &str, venue: Venue, json: &[u8]) -> i64 {
    let (ps, ss) = scales(venue);
    match kind {
        "trade" => {
            let w: Wrapper<TradeMsg> = serde_json::from_slice(json).unwrap();
            parse_mantissa(w.data.p.as_bytes(), ps).unwrap()
                ^ parse_mantissa(w.data.q.as_bytes(), ss).unwrap()
        }
        "bookTicker" => {
            let w: Wrapper<BookTickerMsg> = serde_json::from_slice(json).unwrap();
            parse_mantissa(w.data.b.as_bytes(), ps).unwrap()
                ^ parse_mantissa(w.data.A.as_bytes(), ss).unwrap()
        }
        _ => {
            let w: Wrapper<DepthMsg> = serde_json::from_slice(json).unwrap();
            let mut x = 0;
            for [p, q] in w.data.b.iter().chain(w.data.a.iter()) {
                x ^= parse_mantissa(p.as_bytes(), ps).unwrap()
                    ^ parse_mantissa(q.as_bytes(), ss).unwrap();
            }
            x
        }
    }
}

#[inline(never)]
fn ours_parse(parser: &mut VenueParser, json: &[u8]) -> i64 {
    use flowcore_core::event::EventKind::*;
    let mut x = 0;
    parser
        .parse(0, json, None, &mut |ev| match ev.kind {
            Trade(t) => x ^= t.px ^ t.qty,
            BookTicker(b) => x ^= b.bid_px ^ b.ask_qty,
            Level(l) => x ^= l.px ^ l.qty,
            _ => {}
        })
        .unwrap();
    x
}

fn main() {
    let full = full_run();
    let messages = load(&[
        (Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
        (Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz"),
    ]);
    let table = InstrumentTable::binance_defaults();
    // `PARSE_BENCH_KIND=trade` (say) runs one message type, for profiling.
    let only = std::env::var("PARSE_BENCH_KIND").ok();
    for kind in ["trade", "bookTicker", "depthUpdate"] {
        if only.as_deref().is_some_and(|k| k != kind) {
            continue;
        }
        for venue in [Venue::BinanceSpot, Venue::BinanceUsdm] {
            let set: Vec<&Message> = messages
                .iter()
                .filter(|m| m.venue == venue && m.json.starts_with(b"{\"stream\""))
                .filter(|m| {
                    let s = std::str::from_utf8(&m.json[..60.min(m.json.len())]).unwrap();
                    s.contains(&format!(
                        "@{}",
                        if kind == "depthUpdate" { "depth" } else { kind }
                    ))
                })
                .collect();
            let mut parser = VenueParser::new(venue, table.clone());
            // Both sides must agree before anything is timed.
            for m in &set {
                assert_eq!(
                    ours_parse(&mut parser, &m.json),
                    serde_parse(kind, venue, &m.json),
                    "{}",
                    String::from_utf8_lossy(&m.json)
                );
            }
            if !full {
                continue;
            }
            let batch = if kind == "depthUpdate" { 4 } else { 32 };
            let (mut ours, mut base) = (BatchTimer::default(), BatchTimer::default());
            for _round in 0..5 {
                for (i, chunk) in set.chunks(batch).enumerate() {
                    // Both parse a chunk already in cache (a live frame is parsed straight
                    // out of a hot receive buffer), and take turns going first.
                    black_box(
                        chunk
                            .iter()
                            .map(|m| m.json.iter().map(|&b| b as u64).sum::<u64>())
                            .sum::<u64>(),
                    );
                    let mut run_ours = || {
                        ours.time(chunk.len(), || {
                            chunk
                                .iter()
                                .map(|m| black_box(ours_parse(&mut parser, black_box(&m.json))))
                                .sum::<i64>()
                        })
                    };
                    let mut run_base = || {
                        base.time(chunk.len(), || {
                            chunk
                                .iter()
                                .map(|m| black_box(serde_parse(kind, venue, black_box(&m.json))))
                                .sum::<i64>()
                        })
                    };
                    if i % 2 == 0 {
                        run_ours();
                        run_base();
                    } else {
                        run_base();
                        run_ours();
                    }
                }
            }
            let avg_len = set.iter().map(|m| m.json.len()).sum::<usize>() / set.len().max(1);
            report(
                &format!(
                    "parse {} {kind} ({} msgs, avg {avg_len} B, per message)",
                    venue.name(),
                    set.len()
                ),
                &ours,
                &base,
                "serde_json+borrowed",
            );
        }
    }
    if !full {
        println!("parse bench: smoke pass ok (run `cargo bench` for numbers)");
    }
}
