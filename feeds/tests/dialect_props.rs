//! Property tests per Binance dialect: generated messages, in any key order, with unknown
//! fields and arbitrary whitespace, parse to exactly the values they were made from; and no
//! input at all makes the parser panic.

use flowcore_core::decimal::Fixed;
use flowcore_core::event::{Aggressor, EventKind, MarketEvent};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::parser::VenueParser;
use proptest::prelude::*;

/// Joins `"key":value` members in the given order with the given whitespace.
fn object(members: &[(String, String)], order: &[usize], ws: &str) -> String {
    let body: Vec<String> = order
        .iter()
        .map(|&i| format!("{ws}\"{}\"{ws}:{ws}{}", members[i].0, members[i].1))
        .collect();
    format!("{{{}{ws}}}", body.join(","))
}

fn venue_symbol(venue: Venue) -> (&'static str, u8, u8) {
    match venue {
        Venue::BinanceSpot => ("BTCUSDT", 2, 8),
        Venue::BinanceUsdm => ("BTCUSDT", 2, 3),
        Venue::BinanceCoinm => ("BTCUSD_PERP", 1, 0),
        Venue::BybitSpot => ("BTCUSDT", 2, 6),
        Venue::BybitLinear => ("BTCUSDT", 2, 3),
    }
}

fn parse_all(venue: Venue, msg: &str) -> Result<Vec<MarketEvent>, flowcore_feeds::ParseError> {
    let mut parser = VenueParser::new(venue, InstrumentTable::binance_defaults());
    let mut out = Vec::new();
    parser.parse(1, msg.as_bytes(), None, &mut |e| out.push(e))?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)] // one argument per generated field keeps the proptest readable
fn trade_roundtrip(
    venue: Venue,
    px: i64,
    qty: i64,
    id: u64,
    t: i64,
    maker: bool,
    market: bool,
    order: Vec<usize>,
    ws: &str,
    extra: bool,
) -> Result<(), TestCaseError> {
    let (symbol, ps, ss) = venue_symbol(venue);
    let mut members = vec![
        ("e".to_string(), "\"trade\"".to_string()),
        ("E".into(), (t + 3).to_string()),
        ("s".into(), format!("\"{symbol}\"")),
        ("t".into(), id.to_string()),
        ("p".into(), format!("\"{}\"", Fixed::new(px as i128, ps))),
        ("q".into(), format!("\"{}\"", Fixed::new(qty as i128, ss))),
        ("T".into(), t.to_string()),
        ("m".into(), maker.to_string()),
        ("M".into(), "true".into()),
    ];
    let futures = venue != Venue::BinanceSpot;
    if futures {
        members.push((
            "X".into(),
            if market {
                "\"MARKET\""
            } else {
                "\"INSURANCE_FUND\""
            }
            .into(),
        ));
    }
    if extra {
        members.push((
            "st".into(),
            "{\"deep\":[1,[2,{\"a\":\"b\"}]],\"s\":\"x\"}".into(),
        ));
        members.push(("zz".into(), "-1.25e-3".into()));
    }
    let order: Vec<usize> = order.into_iter().filter(|&i| i < members.len()).collect();
    let mut seen = vec![false; members.len()];
    let mut full: Vec<usize> = order
        .into_iter()
        .filter(|&i| !std::mem::replace(&mut seen[i], true))
        .collect();
    full.extend((0..members.len()).filter(|&i| !seen[i]));
    let data = object(&members, &full, ws);
    let msg = format!(
        "{{\"data\":{data},{ws}\"stream\":\"{}@trade\"}}",
        symbol.to_lowercase()
    );
    let events = parse_all(venue, &msg).map_err(|e| TestCaseError::fail(format!("{e}: {msg}")))?;
    prop_assert_eq!(events.len(), 1);
    let EventKind::Trade(trade) = events[0].kind else {
        return Err(TestCaseError::fail("not a trade"));
    };
    prop_assert_eq!(trade.px, px);
    prop_assert_eq!(trade.qty, qty);
    prop_assert_eq!(trade.trade_id, id);
    prop_assert_eq!(trade.trade_ts, t * 1_000_000);
    prop_assert_eq!(
        trade.aggressor,
        if maker {
            Aggressor::Sell
        } else {
            Aggressor::Buy
        }
    );
    prop_assert_eq!(trade.is_taker_flow, !futures || market);
    Ok(())
}

fn depth_roundtrip(
    venue: Venue,
    levels: Vec<(i64, i64, bool)>,
    first: u64,
    span: u64,
    order: Vec<usize>,
    ws: &str,
) -> Result<(), TestCaseError> {
    let (symbol, ps, ss) = venue_symbol(venue);
    let side = |bid: bool| {
        let items: Vec<String> = levels
            .iter()
            .filter(|l| l.2 == bid)
            .map(|(p, q, _)| {
                format!(
                    "[{ws}\"{}\",{ws}\"{}\"{ws}]",
                    Fixed::new(*p as i128, ps),
                    Fixed::new(*q as i128, ss)
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let mut members = vec![
        ("e".to_string(), "\"depthUpdate\"".to_string()),
        ("E".into(), "1723161255208".into()),
        ("s".into(), format!("\"{symbol}\"")),
        ("U".into(), first.to_string()),
        ("u".into(), (first + span).to_string()),
        ("b".into(), side(true)),
        ("a".into(), side(false)),
    ];
    if venue != Venue::BinanceSpot {
        members.push(("pu".into(), (first - 1).to_string()));
        members.push(("T".into(), "1723161255200".into()));
    }
    let mut full: Vec<usize> = Vec::new();
    for i in order.into_iter().chain(0..members.len()) {
        if i < members.len() && !full.contains(&i) {
            full.push(i);
        }
    }
    let msg = object(&members, &full, ws);
    let events = parse_all(venue, &msg).map_err(|e| TestCaseError::fail(format!("{e}: {msg}")))?;
    prop_assert_eq!(events.len(), levels.len() + 2);
    let EventKind::BookBegin(begin) = events[0].kind else {
        return Err(TestCaseError::fail("no BookBegin"));
    };
    prop_assert_eq!(begin.first_update_id, first);
    prop_assert_eq!(begin.last_update_id, first + span);
    prop_assert_eq!(begin.levels as usize, levels.len());
    prop_assert_eq!(
        begin.prev_update_id.map(|p| p.get()),
        (venue != Venue::BinanceSpot).then_some(first - 1)
    );
    let mut want: Vec<(i64, i64)> = levels.iter().filter(|l| l.2).map(|l| (l.0, l.1)).collect();
    want.extend(levels.iter().filter(|l| !l.2).map(|l| (l.0, l.1)));
    let got: Vec<(i64, i64)> = events[1..events.len() - 1]
        .iter()
        .map(|e| match e.kind {
            EventKind::Level(l) => (l.px, l.qty),
            _ => (-1, -1),
        })
        .collect();
    prop_assert_eq!(got, want);
    prop_assert_eq!(events.last().unwrap().kind, EventKind::BookEnd);
    Ok(())
}

const WS: [&str; 3] = ["", " ", "\n\t "];

macro_rules! dialect_props {
    ($name:ident, $venue:expr) => {
        mod $name {
            use super::*;
            proptest! {
                #[test]
                fn trades(px in 1i64..10_000_000_000, qty in 0i64..1_000_000_000_000, id in any::<u64>(),
                          t in 1_500_000_000_000i64..2_000_000_000_000, maker: bool, market: bool,
                          order in proptest::collection::vec(0usize..12, 0..12), ws in 0usize..3, extra: bool) {
                    trade_roundtrip($venue, px, qty, id, t, maker, market, order, WS[ws], extra)?;
                }

                #[test]
                fn depth(levels in proptest::collection::vec((1i64..10_000_000_000, 0i64..1_000_000_000, any::<bool>()), 0..40),
                         first in 2u64..u64::MAX / 2, span in 0u64..1000,
                         order in proptest::collection::vec(0usize..9, 0..9), ws in 0usize..3) {
                    depth_roundtrip($venue, levels, first, span, order, WS[ws])?;
                }

                /// Arbitrary bytes, and real messages cut or corrupted at any point: an error
                /// or events, never a panic.
                #[test]
                fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..400, flip in 0usize..400, to: u8) {
                    let _ = parse_all($venue, &String::from_utf8_lossy(&bytes));
                    let sample = r#"{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":5,"u":9,"pu":4,"b":[["1.0","2"]],"a":[["3.0","0"]]}}"#;
                    let mut m = sample.as_bytes().to_vec();
                    m.truncate(cut.min(m.len()));
                    if flip < m.len() { m[flip] = to; }
                    let mut parser = VenueParser::new($venue, InstrumentTable::binance_defaults());
                    let _ = parser.parse(0, &m, None, &mut |_| {});
                }
            }
        }
    };
}

dialect_props!(spot, Venue::BinanceSpot);
dialect_props!(usdm, Venue::BinanceUsdm);
dialect_props!(coinm, Venue::BinanceCoinm);

/// A level priced at zero or below is refused with its own error, by the fast path and the
/// generic one alike (whitespace sends a message down the generic path); the book keys asks
/// by negated price, which the lowest mantissa has not.
#[test]
fn levels_priced_at_zero_or_below_are_refused() {
    use flowcore_feeds::ParseError;
    for venue in [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BinanceCoinm] {
        let (symbol, ps, _) = venue_symbol(venue);
        let lowest = Fixed::new(i64::MIN as i128, ps).to_string();
        for (ws, px) in [
            ("", "0"),
            ("", "0.00"),
            (" ", "0"),
            (" ", "-1.5"),
            (" ", &lowest),
        ] {
            for side in ["b", "a"] {
                let other = if side == "b" { "a" } else { "b" };
                let msg = format!(
                    "{{\"stream\":\"x@depth\",\"data\":{{\"e\":\"depthUpdate\",\"E\":1723161255208,\
                     \"s\":\"{symbol}\",\"U\":5,\"u\":6,\"pu\":4,\"{side}\":[[{ws}\"{px}\",\"1\"]],\"{other}\":[]}}}}"
                );
                let err = parse_all(venue, &msg).expect_err(&msg);
                assert!(
                    matches!(err, ParseError::NonPositivePrice(_)),
                    "{venue:?} {msg}: {err}"
                );
            }
        }
    }
}
