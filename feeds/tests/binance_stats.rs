//! Binance futures venue statistics: the `markPrice` stream and the REST open interest,
//! in the shapes Binance's documentation gives (USD-M and COIN-M), read into exact
//! `Stat` events and checked against a generic JSON parse of the same message.

use flowcore_core::event::{EventKind, MarketEvent, StatField, VenueStat};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parsed::Parsed;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::ParseError;
use serde_json::Value;

fn parse(venue: Venue, msg: &str) -> Result<(Parsed, Vec<MarketEvent>), ParseError> {
    let mut parser = VenueParser::new(venue, InstrumentTable::binance_defaults());
    let mut events = Vec::new();
    let parsed = parser.parse(7, msg.as_bytes(), None, &mut |e| events.push(e))?;
    Ok((parsed, events))
}

fn stats(events: &[MarketEvent]) -> Vec<(StatField, i64)> {
    events
        .iter()
        .map(|e| match e.kind {
            EventKind::Stat(VenueStat { field, value, .. }) => (field, value),
            other => panic!("not a statistic: {other:?}"),
        })
        .collect()
}

/// A decimal string at `scale` digits, by string surgery (not the crate's parser).
fn mantissa(text: &str, scale: usize) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = frac.trim_end_matches('0');
    assert!(frac.len() <= scale, "{text} has more than {scale} decimals");
    format!("{int}{frac:0<scale$}").parse().unwrap()
}

/// What a `markPriceUpdate` should become, read with serde_json.
fn expected_mark_price(msg: &Value) -> Vec<(StatField, i64)> {
    let d = msg.get("data").unwrap_or(msg);
    let mut want = vec![
        (StatField::MarkPrice, mantissa(d["p"].as_str().unwrap(), 8)),
        (StatField::IndexPrice, mantissa(d["i"].as_str().unwrap(), 8)),
    ];
    let r = d["r"].as_str().unwrap();
    if !r.is_empty() {
        want.push((StatField::FundingRate, mantissa(r, 8)));
    }
    let t = d["T"].as_i64().unwrap();
    if t != 0 {
        want.push((StatField::NextFundingMs, t));
    }
    want
}

#[test]
fn usdm_mark_price_reads_every_statistic_exactly_in_any_key_order() {
    // Binance's documented example, then the same keys reversed inside the combined wrapper.
    let doc = r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#;
    let reversed = r#"{"stream":"btcusdt@markPrice@1s","data":{"T":1562306400000,"r":"-0.00038167","P":"11784.25641265","i":"11784.62659091","p":"11794.15000000","s":"BTCUSDT","E":1562305380000,"e":"markPriceUpdate","st":"new"}}"#;
    for msg in [doc, reversed] {
        let (parsed, events) = parse(Venue::BinanceUsdm, msg).unwrap();
        let want = expected_mark_price(&serde_json::from_str(msg).unwrap());
        assert_eq!(parsed, Parsed::Events(want.len() as u32));
        assert_eq!(stats(&events), want, "{msg}");
        for e in &events {
            assert_eq!(e.local_ts, 7);
            assert_eq!(e.exch_ts(), Some(1_562_305_380_000_000_000));
        }
    }
    // The index price is not on the tick: kept at eight decimals, not rounded.
    let (_, events) = parse(Venue::BinanceUsdm, doc).unwrap();
    assert_eq!(
        stats(&events)[1],
        (StatField::IndexPrice, 1_178_462_659_091)
    );
}

#[test]
fn coinm_mark_price_of_a_perpetual_and_no_funding_where_binance_sends_none() {
    let perp = r#"{"e":"markPriceUpdate","E":1596095725000,"s":"BTCUSD_PERP","p":"11012.31359011","P":"10962.17178236","i":"10933.62615417","r":"0.00000000","T":1596096000000}"#;
    let (_, events) = parse(Venue::BinanceCoinm, perp).unwrap();
    assert_eq!(
        stats(&events),
        expected_mark_price(&serde_json::from_str(perp).unwrap())
    );
    assert_eq!(stats(&events).len(), 4, "a zero funding rate is a value");
    // Delivery contracts say `"r":""` and `"T":0`: no funding, not an error.
    let delivery = perp
        .replace(r#""r":"0.00000000""#, r#""r":"""#)
        .replace("1596096000000", "0");
    let (_, events) = parse(Venue::BinanceCoinm, &delivery).unwrap();
    assert_eq!(
        stats(&events),
        [
            (StatField::MarkPrice, 1_101_231_359_011),
            (StatField::IndexPrice, 1_093_362_615_417)
        ]
    );
}

#[test]
fn a_bad_mark_price_message_is_refused_whole() {
    let good = r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"1","r":"0.00038167","T":1562306400000}"#;
    let cases = [
        (good.replace(r#""i":"11784.62659091","#, ""), "i"),
        (good.replace("11784.62659091", "11784.626590911"), "i"),
        (good.replace("0.00038167", "0.000381671"), "r"),
        (
            good.replace(r#""p":"11794.15000000""#, r#""p":11794.15"#),
            "p",
        ),
    ];
    for (msg, field) in cases {
        let err = parse(Venue::BinanceUsdm, &msg).expect_err(&msg);
        let text = err.to_string();
        assert!(text.contains(field), "{msg}: {text}");
    }
    let unknown = good.replace("BTCUSDT", "NOPEUSDT");
    assert!(matches!(
        parse(Venue::BinanceUsdm, &unknown),
        Err(ParseError::UnknownInstrument)
    ));
}

#[test]
fn rest_open_interest_of_usdm_in_base_units_and_coinm_in_contracts() {
    let usdm = r#"{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}"#;
    let (parsed, events) = parse(Venue::BinanceUsdm, usdm).unwrap();
    assert_eq!(parsed, Parsed::Events(1));
    assert_eq!(stats(&events), [(StatField::OpenInterest, 10_659_509)]);
    assert_eq!(events[0].exch_ts(), Some(1_589_437_530_011_000_000));
    let coinm = r#"{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"23806","contractType":"PERPETUAL","time":1638521829215}"#;
    let (_, events) = parse(Venue::BinanceCoinm, coinm).unwrap();
    assert_eq!(stats(&events), [(StatField::OpenInterest, 23_806)]);
    // Finer than the instrument's lot is not exact at its size scale: refused.
    let fine = usdm.replace("10659.509", "10659.5091");
    assert!(parse(Venue::BinanceUsdm, &fine).is_err());
    let no_time = r#"{"openInterest":"1","symbol":"BTCUSDT"}"#;
    assert!(parse(Venue::BinanceUsdm, no_time).is_err());
}
