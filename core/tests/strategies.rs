//! The classic strategies on crafted bar series that must, and must not, fire them; the
//! set's numbering, dedup and cooldown; settings errors that name the key; longer bars;
//! and no look-ahead: the signals of a series cut at any bar are the full series' signals
//! up to that bar.

use flowcore_core::bars::{Bar, BarEngine, BarKey, Ohlc};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_core::strategy::{Action, ParamError, ParamValue, Signal, StrategySet, StrategySpec};
use flowcore_core::timeframe::Timeframe;
use proptest::prelude::*;
use std::collections::BTreeMap;

const T0_MS: i64 = 1_723_161_600_000;

fn btc() -> (InstrumentTable, InstrumentId) {
    let table = InstrumentTable::bundled_defaults();
    let id = table
        .find(Venue::BinanceSpot, b"BTCUSDT")
        .expect("bundled BTCUSDT");
    (table, id)
}

fn bar(id: InstrumentId, second: i64, close: i64, volume: i128) -> Bar {
    Bar {
        key: BarKey::Instrument(id),
        ts_ms: T0_MS + second * 1000,
        ohlc: Some(Ohlc {
            open: close,
            high: close,
            low: close,
            close,
        }),
        buy_qty: volume,
        sell_qty: 0,
        delta: volume,
        cvd: 0,
        trades: 1,
        vwap: Some(close),
        buy_notional: 0,
        sell_notional: 0,
        complete: true,
        members: 0,
    }
}

fn spec(name: &str, id: InstrumentId, params: &[(&str, i64)]) -> StrategySpec {
    StrategySpec {
        name: name.to_owned(),
        key: BarKey::Instrument(id),
        cooldown_s: 0,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::Int(*v)))
            .collect(),
    }
}

/// Runs one strategy over closes (one per second, volume per bar) and returns its signals.
fn signals(spec: StrategySpec, closes: &[i64], volumes: &[i128]) -> Vec<Signal> {
    let (table, id) = btc();
    let engine = BarEngine::new(&table, None).unwrap();
    let mut set = StrategySet::new(&[spec], &table, engine.aggregates()).unwrap();
    let mut out = Vec::new();
    for (i, &c) in closes.iter().enumerate() {
        let v = volumes.get(i).copied().unwrap_or(1);
        set.on_bar(&bar(id, i as i64, c, v), &mut |s| out.push(*s));
    }
    out
}

fn actions(s: &[Signal]) -> Vec<Action> {
    s.iter().map(|s| s.action).collect()
}

/// Down for `n`, then up for `n`, then down for `n`, in steps of `step`.
fn zigzag(start: i64, n: usize, step: i64) -> Vec<i64> {
    let mut p = start;
    let mut out = Vec::new();
    for leg in [-step, step, -step] {
        for _ in 0..n {
            p += leg;
            out.push(p);
        }
    }
    out
}

#[test]
fn ema_cross_enters_on_each_turn_and_never_in_a_flat_market() {
    let (_, id) = btc();
    let s = spec(
        "ema_cross",
        id,
        &[("fast", 2), ("slow", 5), ("timeframe_s", 1)],
    );
    let got = signals(s.clone(), &zigzag(6_000_000, 12, 100), &[]);
    assert_eq!(actions(&got), [Action::EnterLong, Action::EnterShort]);
    assert!(got[0].score > 0 && got[1].score < 0);
    assert_eq!(
        got[0].entry_px,
        zigzag(6_000_000, 12, 100)[(got[0].exch_ns / 1_000_000 - T0_MS) as usize / 1000 - 1]
    );
    assert!(signals(s, &[6_000_000; 50], &[]).is_empty());
}

#[test]
fn rsi_enters_long_after_an_oversold_excursion_and_not_in_a_steady_rise() {
    let (_, id) = btc();
    let s = spec("rsi", id, &[("period", 4), ("timeframe_s", 1)]);
    let got = signals(s.clone(), &zigzag(6_000_000, 10, 100), &[]);
    assert_eq!(actions(&got), [Action::EnterLong, Action::EnterShort]);
    // The long comes from a market that went all the way down: RSI 0, confidence 1.
    assert_eq!(got[0].confidence, 1);
    let rise: Vec<i64> = (0..40).map(|i| 6_000_000 + i * 100).collect();
    assert!(signals(s, &rise, &[]).is_empty());
}

#[test]
fn macd_enters_when_its_histogram_turns() {
    let (_, id) = btc();
    let s = spec(
        "macd",
        id,
        &[("fast", 3), ("slow", 6), ("signal", 3), ("timeframe_s", 1)],
    );
    let got = signals(s, &zigzag(6_000_000, 15, 100), &[]);
    assert_eq!(actions(&got), [Action::EnterLong, Action::EnterShort]);
}

#[test]
fn momentum_needs_the_volume_to_confirm_the_move() {
    let (_, id) = btc();
    let s = spec(
        "momentum",
        id,
        &[("lookback", 3), ("volume_window", 5), ("timeframe_s", 1)],
    );
    let flat = [6_000_000i64; 10];
    let up: Vec<i64> = (1..=5).map(|i| 6_000_000 + i * 10_000).collect();
    let closes: Vec<i64> = flat.iter().chain(&up).copied().collect();
    let quiet = vec![100i128; closes.len()];
    let mut loud = quiet.clone();
    loud[12] = 1_000;
    assert!(signals(s.clone(), &closes, &quiet).is_empty());
    let got = signals(s, &closes, &loud);
    assert_eq!(actions(&got), [Action::EnterLong]);
    assert_eq!(got[0].exch_ns, (T0_MS + 13 * 1000) * 1_000_000);
}

#[test]
fn the_set_numbers_signals_and_drops_repeats_within_the_cooldown() {
    let (table, id) = btc();
    let engine = BarEngine::new(&table, None).unwrap();
    let mut fast = spec(
        "ema_cross",
        id,
        &[("fast", 2), ("slow", 3), ("timeframe_s", 1)],
    );
    fast.cooldown_s = 1_000;
    let slow = spec(
        "ema_cross",
        id,
        &[("fast", 2), ("slow", 5), ("timeframe_s", 1)],
    );
    let mut set = StrategySet::new(&[fast, slow], &table, engine.aggregates()).unwrap();
    let mut out = Vec::new();
    // Two up-turns: the second long of each instance repeats its first.
    let mut closes = zigzag(6_000_000, 10, 100);
    closes.extend(zigzag(*closes.last().unwrap(), 10, 100));
    for (i, &c) in closes.iter().enumerate() {
        set.on_bar(&bar(id, i as i64, c, 1), &mut |s| out.push(*s));
    }
    let ids: Vec<u64> = out.iter().map(|s| s.id).collect();
    assert_eq!(ids, (1..=out.len() as u64).collect::<Vec<_>>());
    // The first instance's cooldown outlasts the run: one signal, the rest dropped.
    assert_eq!(out.iter().filter(|s| s.strategy.0 == 0).count(), 1);
    assert!(set.counters().cooled_down >= 2, "{:?}", set.counters());
    // The second alternates long and short, so nothing repeats in a row.
    for strategy in 1..2 {
        let mine: Vec<Action> = out
            .iter()
            .filter(|s| s.strategy.0 == strategy)
            .map(|s| s.action)
            .collect();
        assert!(mine.len() >= 2, "{mine:?}");
        assert!(mine.windows(2).all(|w| w[0] != w[1]), "{mine:?}");
    }
    let c = set.counters();
    assert_eq!(c.emitted, out.len() as u64);
}

#[test]
fn settings_errors_name_the_strategy_and_the_key() {
    let (table, id) = btc();
    let engine = BarEngine::new(&table, None).unwrap();
    let build = |s: StrategySpec| StrategySet::new(&[s], &table, engine.aggregates()).map(|_| ());
    let e = build(spec("ema_cross", id, &[("fats", 2)])).unwrap_err();
    assert!(
        matches!(&e, ParamError::UnknownKey { key, .. } if key == "fats"),
        "{e}"
    );
    let e = build(spec("ema_cross", id, &[("fast", 30)])).unwrap_err();
    assert!(e.to_string().contains("fast"), "{e}");
    let e = build(spec("rsi", id, &[("period", 0)])).unwrap_err();
    assert!(e.to_string().contains("\"rsi\": period"), "{e}");
    let e = build(spec("squeeze", id, &[])).unwrap_err();
    assert!(matches!(e, ParamError::UnknownStrategy { .. }), "{e}");
    let mut text = spec("rsi", id, &[]);
    text.params = BTreeMap::from([("oversold".to_owned(), ParamValue::Text("low".into()))]);
    assert!(build(text).unwrap_err().to_string().contains("oversold"));
}

#[test]
fn longer_bars_close_with_their_last_second_and_a_gap_marks_them_incomplete() {
    let (_, id) = btc();
    let mut tf = Timeframe::new(60);
    let mut out = Vec::new();
    for s in 0..120 {
        let volume = if s == 30 { 7 } else { 1 };
        tf.push(&bar(id, s, 6_000_000 + s, volume), &mut |b| out.push(*b));
    }
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].start_ms, out[0].seconds, out[0].volume()),
        (T0_MS, 60, 66)
    );
    let ohlc = out[0].ohlc.unwrap();
    assert_eq!(
        (ohlc.open, ohlc.high, ohlc.low, ohlc.close),
        (6_000_000, 6_000_059, 6_000_000, 6_000_059)
    );
    assert!(out[0].complete && out[1].complete);
    // Seconds 150..=179 missing: the period ending at 180 s closes when 180 arrives.
    out.clear();
    for s in (120..150).chain(180..181) {
        tf.push(&bar(id, s, 6_000_000, 1), &mut |b| out.push(*b));
    }
    assert_eq!(out.len(), 1);
    assert!(!out[0].complete);
    assert_eq!(out[0].seconds, 30);
}

proptest! {
    #[test]
    fn signals_up_to_a_bar_do_not_depend_on_later_bars(
        steps in prop::collection::vec(-300i64..=300, 30..200),
        volumes in prop::collection::vec(1i128..1000, 200),
        cut in 0usize..200,
    ) {
        let (_, id) = btc();
        let closes: Vec<i64> = steps.iter().scan(6_000_000, |p, s| { *p += s; Some(*p) }).collect();
        let cut = cut.min(closes.len());
        for s in [
            spec("ema_cross", id, &[("fast", 3), ("slow", 7), ("timeframe_s", 2)]),
            spec("rsi", id, &[("period", 5), ("timeframe_s", 1)]),
            spec("macd", id, &[("fast", 3), ("slow", 8), ("signal", 4), ("timeframe_s", 1)]),
            spec("momentum", id, &[("lookback", 4), ("volume_window", 6), ("timeframe_s", 1)]),
        ] {
            let full = signals(s.clone(), &closes, &volumes);
            let part = signals(s, &closes[..cut], &volumes);
            let cut_ns = (T0_MS + cut as i64 * 1000) * 1_000_000;
            let early: Vec<Signal> = full.into_iter().filter(|s| s.exch_ns <= cut_ns).collect();
            prop_assert_eq!(part, early);
        }
    }
}
