//! Bybit v5 spot and linear dialects against the real samples in data/samples: every
//! event equals what a generic JSON parse (serde_json) of the same message says, in any
//! key order, with whitespace and unknown fields; replies are control messages; malformed
//! messages are refused whole.

use flowcore_core::event::{
    Aggressor, BatchKind, BookSide, EventKind, MarketEvent, StatField, VenueStat,
};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parsed::{Control, Parsed};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::ParseError;
use serde_json::Value;

fn sample(name: &str) -> String {
    let path = format!("{}/../data/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(venue: Venue, msg: &str) -> Result<(Parsed, Vec<MarketEvent>), ParseError> {
    let mut parser = VenueParser::new(venue, InstrumentTable::bundled_defaults());
    let mut out = Vec::new();
    let parsed = parser.parse(7, msg.as_bytes(), None, &mut |e| out.push(e))?;
    Ok((parsed, out))
}

/// A decimal string as a mantissa at `scale`, by string surgery (not flowcore's parser).
fn mantissa(text: &str, scale: usize) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let kept: String = frac
        .chars()
        .chain(std::iter::repeat('0'))
        .take(scale)
        .collect();
    assert!(
        frac.chars().skip(scale).all(|c| c == '0'),
        "{text} at {scale}"
    );
    format!("{int}{kept}").parse().unwrap()
}

fn scales(venue: Venue, symbol: &str) -> (usize, usize) {
    let table = InstrumentTable::bundled_defaults();
    let i = table.get(table.find(venue, symbol.as_bytes()).unwrap());
    (i.price_scale.into(), i.size_scale.into())
}

/// The JSON text of `v` with every object's keys in reverse order, a space around each
/// token and an unknown member in front of each object's members.
fn reordered(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut members: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!(" {} : {} ", Value::String(k.clone()), reordered(v)))
                .collect();
            members.insert(
                0,
                r#" "zzUnknown" : {"nested":[1,"x",null,{"deep":true}]} "#.into(),
            );
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reordered).collect();
            format!("[ {} ]", items.join(" , "))
        }
        other => other.to_string(),
    }
}

/// The events a message must give, from its serde_json reading.
fn expected(venue: Venue, msg: &Value) -> Vec<(EventKind, u16)> {
    let topic = msg["topic"].as_str().unwrap();
    let symbol = topic.rsplit('.').next().unwrap();
    let (ps, ss) = scales(venue, symbol);
    let ts_ns = msg["ts"].as_i64().unwrap() * 1_000_000;
    let mut out = Vec::new();
    if topic.starts_with("publicTrade.") {
        for t in msg["data"].as_array().unwrap() {
            let i = t["i"].as_str().unwrap();
            let trade_id = match venue {
                Venue::BybitSpot => i.parse().unwrap(),
                _ => {
                    let hex: String = i.chars().filter(|c| *c != '-').collect();
                    let v = u128::from_str_radix(&hex, 16).unwrap();
                    (v >> 64) as u64 ^ v as u64
                }
            };
            out.push(EventKind::Trade(flowcore_core::event::Trade {
                trade_id,
                px: mantissa(t["p"].as_str().unwrap(), ps),
                qty: mantissa(t["v"].as_str().unwrap(), ss),
                aggressor: if t["S"] == "Buy" {
                    Aggressor::Buy
                } else {
                    Aggressor::Sell
                },
                trade_ts: t["T"].as_i64().unwrap() * 1_000_000,
                exch_ts: ts_ns,
                is_taker_flow: t["BT"] != true,
                source: flowcore_core::event::TradeSource::Trade,
            }));
        }
    } else if topic.starts_with("tickers.") {
        // One event per statistic present, in this order; `""` is absent.
        let d = &msg["data"];
        for (key, field, scale) in [
            ("markPrice", StatField::MarkPrice, 8),
            ("indexPrice", StatField::IndexPrice, 8),
            ("openInterest", StatField::OpenInterest, ss),
            ("fundingRate", StatField::FundingRate, 8),
            ("nextFundingTime", StatField::NextFundingMs, 0),
        ] {
            let Some(text) = d[key].as_str().filter(|t| !t.is_empty()) else {
                continue;
            };
            out.push(EventKind::Stat(VenueStat {
                field,
                value: mantissa(text, scale),
                exch_ts: flowcore_core::event::maybe_ns(ts_ns),
            }));
        }
    } else {
        let d = &msg["data"];
        let u = d["u"].as_u64().unwrap();
        let levels = |side: &str| -> Vec<(i64, i64)> {
            d[side]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        mantissa(l[0].as_str().unwrap(), ps),
                        mantissa(l[1].as_str().unwrap(), ss),
                    )
                })
                .collect()
        };
        let (bids, asks) = (levels("b"), levels("a"));
        out.push(EventKind::BookBegin(flowcore_core::event::BookBegin {
            kind: if msg["type"] == "snapshot" {
                BatchKind::Snapshot
            } else {
                BatchKind::Diff
            },
            first_update_id: u,
            last_update_id: u,
            prev_update_id: None,
            exch_ts: flowcore_core::event::maybe_ns(ts_ns),
            levels: (bids.len() + asks.len()) as u32,
        }));
        for (side, list) in [(BookSide::Bid, bids), (BookSide::Ask, asks)] {
            for (px, qty) in list {
                out.push(EventKind::Level(flowcore_core::event::Level {
                    side,
                    px,
                    qty,
                }));
            }
        }
        out.push(EventKind::BookEnd);
    }
    let inst = InstrumentTable::bundled_defaults()
        .find(venue, symbol.as_bytes())
        .unwrap()
        .0;
    out.into_iter().map(|k| (k, inst)).collect()
}

const MARKET_SAMPLES: [(Venue, &str); 10] = [
    (Venue::BybitSpot, "bybit_spot_publicTrade.json"),
    (Venue::BybitSpot, "bybit_spot_orderbook200_snapshot.json"),
    (Venue::BybitSpot, "bybit_spot_orderbook200_delta.json"),
    (Venue::BybitLinear, "bybit_linear_publicTrade.json"),
    (Venue::BybitLinear, "bybit_linear_publicTrade_multi.json"),
    (
        Venue::BybitLinear,
        "bybit_linear_orderbook200_snapshot.json",
    ),
    (Venue::BybitLinear, "bybit_linear_orderbook200_delta.json"),
    (Venue::BybitLinear, "bybit_doc_publicTrade.json"),
    (Venue::BybitLinear, "bybit_linear_tickers_snapshot.json"),
    (Venue::BybitLinear, "bybit_linear_tickers_delta.json"),
];

#[test]
fn real_samples_give_the_events_a_generic_parse_gives_in_any_key_order() {
    for (venue, name) in MARKET_SAMPLES {
        let text = sample(name);
        let value: Value = serde_json::from_str(&text).unwrap();
        let want = expected(venue, &value);
        for variant in [text.trim().to_string(), reordered(&value)] {
            let (parsed, events) =
                parse(venue, &variant).unwrap_or_else(|e| panic!("{name}: {e}\n{variant}"));
            let got: Vec<(EventKind, u16)> = events
                .iter()
                .map(|e| {
                    assert_eq!(e.local_ts, 7);
                    (e.kind, e.inst.0)
                })
                .collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(parsed, Parsed::Events(want.len() as u32), "{name}");
        }
        eprintln!("{name}: {} events", want.len());
    }
}

#[test]
fn level_one_snapshots_and_replies_from_a_real_session() {
    let lines = sample("bybit_spot_orderbook1_2026_ccxt.jsonl");
    let mut snapshots = 0;
    for (n, line) in lines.lines().enumerate() {
        let (parsed, events) = parse(Venue::BybitSpot, line).unwrap();
        if n == 0 {
            assert_eq!(parsed, Parsed::Control(Control::SubscribeReply { id: 1 }));
            continue;
        }
        let value: Value = serde_json::from_str(line).unwrap();
        let got: Vec<_> = events.iter().map(|e| (e.kind, e.inst.0)).collect();
        assert_eq!(got, expected(Venue::BybitSpot, &value), "line {n}");
        snapshots += 1;
    }
    assert!(snapshots >= 2, "{snapshots}");
    // The documentation's heartbeat and subscribe exchange: the replies are control.
    for line in sample("bybit_doc_ping_pong_subscribe.jsonl").lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        if value.get("success").is_none() {
            continue; // our own requests
        }
        let (parsed, events) = parse(Venue::BybitLinear, line).unwrap();
        assert!(events.is_empty());
        let want = if value["op"] == "ping" {
            Control::Pong
        } else {
            Control::SubscribeReply { id: 0 }
        };
        assert_eq!(parsed, Parsed::Control(want), "{line}");
    }
    let spot_pong = r#"{"success":true,"ret_msg":"pong","conn_id":"x","op":"pong"}"#;
    assert_eq!(
        parse(Venue::BybitSpot, spot_pong).unwrap().0,
        Parsed::Control(Control::Pong)
    );
    let refused = r#"{"success":false,"ret_msg":"error:handler not found","conn_id":"x","req_id":"12","op":"subscribe"}"#;
    assert_eq!(
        parse(Venue::BybitSpot, refused).unwrap().0,
        Parsed::Control(Control::RequestError { id: Some(12) })
    );
}

#[test]
fn malformed_messages_are_refused_whole() {
    let trades = sample("bybit_linear_publicTrade_multi.json");
    let delta = sample("bybit_spot_orderbook200_delta.json");
    let n = trades.matches("\"i\":").count();
    assert!(n >= 2, "the sample holds several trades");
    let cases: Vec<(Venue, String, &str)> = vec![
        (
            Venue::BybitLinear,
            trades[..trades.len() / 2].into(),
            "truncated",
        ),
        // The last trade of the array is bad: none of the array may come out.
        (
            Venue::BybitLinear,
            {
                let at = trades
                    .rfind("\"S\":\"Buy\"")
                    .or(trades.rfind("\"S\":\"Sell\""))
                    .unwrap();
                let end = trades[at..].find(',').unwrap() + at;
                format!("{}\"S\":\"Up\"{}", &trades[..at], &trades[end..])
            },
            "taker side",
        ),
        (
            Venue::BybitLinear,
            trades.replacen("\"v\":\"0.01\"", "\"v\":\"0.015\"", 1),
            "inexact size",
        ),
        (
            Venue::BybitSpot,
            delta
                .replacen("\"u\":", "\"u\":\"", 1)
                .replacen(",\"seq\"", "\",\"seq\"", 1),
            "u as a string",
        ),
        (
            Venue::BybitSpot,
            delta.replacen("orderbook.200.BTCUSDT", "orderbook.200.DOGEUSDT", 1),
            "unknown symbol",
        ),
        (
            Venue::BybitSpot,
            delta.replacen("orderbook.200.", "liquidation.", 1),
            "unknown topic",
        ),
        (
            Venue::BybitSpot,
            delta.replacen("\"type\":\"delta\"", "\"type\":\"diff\"", 1),
            "unknown type",
        ),
        (
            Venue::BybitSpot,
            delta.replacen("\"ts\":", "\"tz\":", 1),
            "no ts",
        ),
    ];
    for (venue, msg, what) in cases {
        let mut events = 0;
        let mut parser = VenueParser::new(venue, InstrumentTable::bundled_defaults());
        let result = parser.parse(1, msg.as_bytes(), None, &mut |_| events += 1);
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(events, 0, "{what}: nothing emitted");
    }
}

#[test]
fn block_trades_are_excluded_unless_counted() {
    let msg = sample("bybit_spot_publicTrade.json").replacen("\"BT\":false", "\"BT\":true", 1);
    let (_, events) = parse(Venue::BybitSpot, &msg).unwrap();
    let EventKind::Trade(t) = events[0].kind else {
        panic!("a trade")
    };
    assert!(!t.is_taker_flow, "a block trade is not order-book flow");
    let mut parser =
        flowcore_feeds::bybit::BybitParser::<flowcore_feeds::bybit::spot::BybitSpot>::new(
            InstrumentTable::bundled_defaults(),
        );
    parser.count_block_trades = true;
    let mut out = Vec::new();
    parser
        .parse(1, msg.as_bytes(), None, &mut |e| out.push(e))
        .unwrap();
    let EventKind::Trade(t) = out[0].kind else {
        panic!("a trade")
    };
    assert!(t.is_taker_flow);
}

#[test]
fn a_tickers_delta_carries_only_what_changed_and_a_bad_field_refuses_it_whole() {
    let mut delta: Value =
        serde_json::from_str(&sample("bybit_linear_tickers_delta.json")).unwrap();
    delta["data"]["markPrice"] = "65120.05".into();
    delta["data"]["fundingRate"] = "-0.00012".into();
    delta["data"]["indexPrice"] = "".into();
    let (parsed, events) = parse(Venue::BybitLinear, &delta.to_string()).unwrap();
    assert_eq!(parsed, Parsed::Events(2));
    let got: Vec<(StatField, i64)> = events
        .iter()
        .map(|e| match e.kind {
            EventKind::Stat(s) => (s.field, s.value),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (StatField::MarkPrice, 6_512_005_000_000),
            (StatField::FundingRate, -12_000)
        ]
    );
    delta["data"]["openInterest"] = "59891.7321".into();
    assert!(matches!(
        parse(Venue::BybitLinear, &delta.to_string()),
        Err(ParseError::Decimal {
            field: "openInterest",
            ..
        })
    ));
}
