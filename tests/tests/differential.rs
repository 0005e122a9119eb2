//! The fast scanner path against a generic JSON parse (serde_json::Value), on every message
//! of the bundled recordings and on rewritten variants of them (keys reordered, whitespace,
//! unknown fields): the same events, or the same refusal.

use flowcore_core::decimal::parse_mantissa;
use flowcore_core::event::{
    Aggressor, BatchKind, BookBegin, BookSide, BookTicker, EventKind, Level, MarketEvent, Trade,
    TradeSource,
};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use serde_json::{json, Value};
use std::num::{NonZeroI64, NonZeroU64};

/// Events derived from a generic parse, written independently of the scanner's code.
fn expected(
    venue: Venue,
    table: &InstrumentTable,
    file_inst: InstrumentId,
    ts: i64,
    v: &Value,
) -> Vec<MarketEvent> {
    let futures = venue != Venue::BinanceSpot;
    let (data, snapshot) = match v.get("data") {
        Some(d) => (d, false),
        None => (v, true),
    };
    let inst = if snapshot {
        file_inst
    } else {
        table
            .find(venue, data["s"].as_str().unwrap().as_bytes())
            .unwrap()
    };
    let i = table.get(inst);
    let px = |s: &Value| parse_mantissa(s.as_str().unwrap().as_bytes(), i.price_scale).unwrap();
    let qty = |s: &Value| parse_mantissa(s.as_str().unwrap().as_bytes(), i.size_scale).unwrap();
    let ms = |s: &Value| s.as_i64().unwrap() * 1_000_000;
    let ev = |kind| MarketEvent {
        inst,
        local_ts: ts,
        kind,
    };
    let levels = |begin: BookBegin, bids: &Value, asks: &Value| {
        let mut out = vec![];
        for (side, arr) in [(BookSide::Bid, bids), (BookSide::Ask, asks)] {
            for l in arr.as_array().unwrap() {
                out.push(ev(EventKind::Level(Level {
                    side,
                    px: px(&l[0]),
                    qty: qty(&l[1]),
                })));
            }
        }
        let mut all = vec![ev(EventKind::BookBegin(BookBegin {
            levels: out.len() as u32,
            ..begin
        }))];
        all.extend(out);
        all.push(ev(EventKind::BookEnd));
        all
    };
    if snapshot {
        let id = data["lastUpdateId"].as_u64().unwrap();
        let begin = BookBegin {
            kind: BatchKind::Snapshot,
            first_update_id: id,
            last_update_id: id,
            prev_update_id: None,
            exch_ts: data.get("E").map(|e| NonZeroI64::new(ms(e)).unwrap()),
            levels: 0,
        };
        return levels(begin, &data["bids"], &data["asks"]);
    }
    match data.get("e").and_then(Value::as_str) {
        Some("trade") => vec![ev(EventKind::Trade(Trade {
            trade_id: data["t"].as_u64().unwrap(),
            px: px(&data["p"]),
            qty: qty(&data["q"]),
            aggressor: if data["m"].as_bool().unwrap() {
                Aggressor::Sell
            } else {
                Aggressor::Buy
            },
            trade_ts: ms(&data["T"]),
            exch_ts: ms(&data["E"]),
            is_taker_flow: !futures || data["X"] == "MARKET",
            source: TradeSource::Trade,
        }))],
        Some("depthUpdate") => levels(
            BookBegin {
                kind: BatchKind::Diff,
                first_update_id: data["U"].as_u64().unwrap(),
                last_update_id: data["u"].as_u64().unwrap(),
                prev_update_id: futures
                    .then(|| NonZeroU64::new(data["pu"].as_u64().unwrap()).unwrap()),
                exch_ts: NonZeroI64::new(ms(&data["E"])),
                levels: 0,
            },
            &data["b"],
            &data["a"],
        ),
        Some("bookTicker") | None => vec![ev(EventKind::BookTicker(BookTicker {
            update_id: data["u"].as_u64().unwrap(),
            bid_px: px(&data["b"]),
            bid_qty: qty(&data["B"]),
            ask_px: px(&data["a"]),
            ask_qty: qty(&data["A"]),
            exch_ts: data.get("E").map(|e| NonZeroI64::new(ms(e)).unwrap()),
        }))],
        Some(other) => panic!("unexpected event type {other}"),
    }
}

fn fast(parser: &mut VenueParser, inst: InstrumentId, ts: i64, msg: &[u8]) -> Vec<MarketEvent> {
    let mut out = vec![];
    parser
        .parse(ts, msg, Some(inst), &mut |e| out.push(e))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(msg)));
    out
}

/// Adds unknown fields at both levels, including nested containers and a new `st`.
fn with_unknown_fields(v: &Value) -> Value {
    let mut v = v.clone();
    let extra = |o: &mut serde_json::Map<String, Value>| {
        o.insert(
            "zz".into(),
            json!({"nested": [1, {"x": "y\"z"}, [], null, true, -1.5e3]}),
        );
        o.insert("st".into(), json!("NEW"));
        o.insert("aa".into(), json!([["1", "2"]]));
    };
    if let Some(o) = v.as_object_mut() {
        extra(o);
        if let Some(d) = o.get_mut("data").and_then(Value::as_object_mut) {
            extra(d);
        }
    }
    v
}

fn check_file(venue: Venue, name: &str) -> usize {
    let table = InstrumentTable::binance_defaults();
    let mut parser = VenueParser::new(venue, table.clone());
    let lines = flowcore_tests::lines(name);
    let mut file_inst = None;
    let mut checked = 0;
    for (n, line) in lines.iter().enumerate() {
        let (ts, msg) = line.split_once(' ').unwrap();
        let ts: i64 = ts.parse().unwrap();
        let v: Value = serde_json::from_str(msg).unwrap();
        if file_inst.is_none() {
            let s = v["data"]["s"].as_str().unwrap();
            file_inst = table.find(venue, s.as_bytes());
        }
        let inst = file_inst.unwrap();
        let want = expected(venue, &table, inst, ts, &v);
        assert_eq!(
            fast(&mut parser, inst, ts, msg.as_bytes()),
            want,
            "{name}:{}",
            n + 1
        );
        // Rewritten variants of every 5th message: sorted keys (a different order than the
        // venue's), pretty-printed whitespace, unknown fields.
        if n % 5 == 0 {
            for variant in [
                serde_json::to_string(&v).unwrap(),
                serde_json::to_string_pretty(&v).unwrap(),
                serde_json::to_string(&with_unknown_fields(&v)).unwrap(),
            ] {
                assert_eq!(
                    fast(&mut parser, inst, ts, variant.as_bytes()),
                    want,
                    "{name}:{} variant {variant}",
                    n + 1
                );
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn spot_recordings_agree_with_a_generic_parse() {
    let n = check_file(Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz")
        + check_file(Venue::BinanceSpot, "spot_btcusdt_20240809.txt.gz")
        + check_file(Venue::BinanceSpot, "spot_ethusdt_20240808.txt.gz")
        + check_file(Venue::BinanceSpot, "spot_ethusdt_20240809.txt.gz");
    assert!(n > 170_000);
}

#[test]
fn usdm_recordings_agree_with_a_generic_parse() {
    let n = check_file(Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")
        + check_file(Venue::BinanceUsdm, "usdm_ethusdt_20240808.txt.gz");
    assert!(n > 160_000);
}

#[test]
fn coinm_recordings_agree_with_a_generic_parse() {
    let n = check_file(Venue::BinanceCoinm, "coinm_btcusd_perp_20240808.txt.gz")
        + check_file(Venue::BinanceCoinm, "coinm_btcusd_perp_20240809.txt.gz");
    assert!(n > 95_000);
}

/// Later messages carry fields the recordings do not (`st` on USD-M, 2026): still parsed.
#[test]
fn newer_real_messages_with_unknown_fields_parse() {
    let table = InstrumentTable::binance_defaults();
    for (venue, file) in [
        (Venue::BinanceUsdm, "binance_usdm_trade_2026_ccxt.jsonl"),
        (
            Venue::BinanceSpot,
            "binance_spot_bookTicker_2026_ccxt.jsonl",
        ),
    ] {
        let text = std::fs::read_to_string(flowcore_tests::repo().join("data/samples").join(file))
            .unwrap();
        let mut parser = VenueParser::new(venue, table.clone());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut n = 0;
            let r = parser.parse(0, line.as_bytes(), None, &mut |_| n += 1);
            // Symbols outside the bundled table are refused as unknown instruments, not as
            // malformed messages.
            match r {
                Ok(flowcore_feeds::parsed::Parsed::Events(k)) => assert!(k > 0 && k == n),
                Ok(flowcore_feeds::parsed::Parsed::Control(c)) => {
                    assert_eq!(c, flowcore_feeds::parsed::Control::SubscribeReply { id: 1 })
                }
                Err(e) => assert_eq!(
                    e,
                    flowcore_feeds::ParseError::UnknownInstrument,
                    "{file}: {line}"
                ),
            }
        }
    }
}

/// Binance's `serverShutdown` notice, bare (`/ws`) or in the combined wrapper, is a
/// control message for every dialect, never market data and never an error.
#[test]
fn server_shutdown_notices_are_control_messages() {
    let table = InstrumentTable::binance_defaults();
    for venue in [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BinanceCoinm] {
        let mut parser = VenueParser::new(venue, table.clone());
        for line in [
            r#"{"e":"serverShutdown","E":1770123456789}"#,
            r#"{"stream":"btcusdt@trade","data":{"E":1770123456789,"e":"serverShutdown"}}"#,
        ] {
            let mut events = 0;
            let r = parser.parse(0, line.as_bytes(), None, &mut |_| events += 1);
            assert_eq!(
                r,
                Ok(flowcore_feeds::parsed::Parsed::Control(
                    flowcore_feeds::parsed::Control::ServerShutdown
                )),
                "{venue:?}: {line}"
            );
            assert_eq!(events, 0);
        }
    }
}
