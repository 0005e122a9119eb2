//! SqueezeFlow on crafted period sequences (one-second periods, short windows): each
//! phase must fire on the shape it describes and must not fire without it; the short
//! mirror of a long squeeze gives the same decisions; the three inputs may arrive in any
//! interleaving; and the exits of phase 5 each close the instance's own position.

use flowcore_core::bars::{Bar, BarEngine, BarKey, Ohlc};
use flowcore_core::instrument::{InstrumentTable, MarketKind, Venue};
use flowcore_core::strategy::squeeze::*;
use flowcore_core::strategy::{Action, ParamValue, Signal, StrategySet, StrategySpec};
use flowcore_core::venue_stats::{StatsRow, VenueStats};

const T0_MS: i64 = 1_723_161_600_000;
const CENTER: i64 = 6_000_000;
/// One unit of flow at the aggregate scale (1 BTC).
const U: i128 = 100_000_000;

/// One period of the three inputs: the price bar's shape, its volume, and the spot and
/// perp aggregates' taker deltas.
#[derive(Debug, Clone, Copy)]
struct Period {
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    volume: i128,
    spot: i128,
    perp: i128,
}

impl Period {
    fn flat(close: i64, spot: i128, perp: i128) -> Self {
        Self {
            open: close,
            high: close + 5,
            // Wicks short of half the range below: not an absorption candle.
            low: close - 2,
            close,
            volume: 10,
            spot,
            perp,
        }
    }

    /// The mirror image: prices reflected about CENTER, flows negated.
    fn mirrored(self) -> Self {
        let m = |p: i64| 2 * CENTER - p;
        Self {
            open: m(self.open),
            high: m(self.low),
            low: m(self.high),
            close: m(self.close),
            volume: self.volume,
            spot: -self.spot,
            perp: -self.perp,
        }
    }
}

/// `n` quiet periods: closes alternating CENTER and CENTER + 1, spot and perp flows
/// together alternating +-1 (no divergence between them).
fn quiet(n: usize) -> Vec<Period> {
    (0..n)
        .map(|i| {
            let s = if i % 2 == 0 { 1 } else { -1 };
            Period::flat(CENTER + (i as i64 % 2), s * U, s * U)
        })
        .collect()
}

/// Spot buys what perps sell, price unmoved.
fn divergence(close: i64) -> Period {
    Period::flat(close, 20 * U, -20 * U)
}

/// A type A reset bar: flows quiet, close unchanged, a long lower wick below the range on
/// heavy volume (absorption and a failed breakdown).
fn absorbing_reset(close: i64) -> Period {
    Period {
        open: close,
        high: close + 5,
        low: close - 200,
        close,
        volume: 50,
        spot: 0,
        perp: 0,
    }
}

fn settings() -> Vec<(&'static str, ParamValue)> {
    use ParamValue::Int;
    vec![
        ("timeframe_s", Int(1)),
        ("flow_bars", Int(1)),
        ("z_window", Int(10)),
        ("context_bars", Int(4)),
        ("structure_bars", Int(5)),
        ("swing_bars", Int(2)),
        ("setup_bars", Int(10)),
        ("entry_bars", Int(3)),
        // The context bias cannot reach 6 while perps sell: it stays out of the way
        // unless a test asks for it.
        ("bias_min", Int(6)),
    ]
}

/// How the three inputs interleave.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Price, spot, perp for each second.
    InTurn,
    /// Spot one second behind the price, perp three.
    Lagged,
}

fn run(periods: &[Period], overrides: &[(&str, ParamValue)], order: Order) -> Vec<Signal> {
    run_with_open_interest(periods, overrides, order, &[])
}

/// [`run`], with the instrument's open interest at each period (a statistics row at the
/// period's start, before its bars, as the engine sends them from the bars' own venue).
fn run_with_open_interest(
    periods: &[Period],
    overrides: &[(&str, ParamValue)],
    order: Order,
    open_interest: &[i64],
) -> Vec<Signal> {
    let table = InstrumentTable::bundled_defaults();
    let engine = BarEngine::new(&table, None).unwrap();
    let inst = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let aggregate = |kind| {
        let a = engine
            .aggregates()
            .iter()
            .position(|a| a.base == "BTC" && a.kind == kind)
            .unwrap();
        BarKey::Aggregate(flowcore_core::bars::AggregateId(a as u16))
    };
    let (spot, perp) = (
        aggregate(MarketKind::Spot),
        aggregate(MarketKind::Perpetual),
    );
    let mut params = settings();
    for (k, v) in overrides {
        params.retain(|(key, _)| key != k);
        params.push((k, v.clone()));
    }
    let spec = StrategySpec {
        name: "squeeze_flow".into(),
        key: BarKey::Instrument(inst),
        cooldown_s: 0,
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    let mut set = StrategySet::new(&[spec], &table, engine.aggregates()).unwrap();

    let (mut spot_cvd, mut perp_cvd) = (0, 0);
    let mut streams: [Vec<Bar>; 3] = Default::default();
    for (i, p) in periods.iter().enumerate() {
        let ts_ms = T0_MS + i as i64 * 1000;
        let mut b = Bar {
            key: BarKey::Instrument(inst),
            ts_ms,
            ohlc: Some(Ohlc {
                open: p.open,
                high: p.high,
                low: p.low,
                close: p.close,
            }),
            buy_qty: p.volume,
            sell_qty: 0,
            delta: p.volume,
            cvd: 0,
            trades: 1,
            vwap: None,
            buy_notional: 0,
            sell_notional: 0,
            complete: true,
            members: 0,
        };
        streams[0].push(b);
        b.ohlc = None;
        for (stream, key, delta, cvd) in [
            (1, spot, p.spot, &mut spot_cvd),
            (2, perp, p.perp, &mut perp_cvd),
        ] {
            *cvd += delta;
            streams[stream].push(Bar {
                key,
                delta,
                cvd: *cvd,
                buy_qty: delta.max(0),
                sell_qty: (-delta).max(0),
                ..b
            });
        }
    }
    let lag = match order {
        Order::InTurn => [0, 0, 0],
        Order::Lagged => [0, 1, 3],
    };
    let mut out = Vec::new();
    for t in 0..periods.len() + 3 {
        if let Some(&oi) = open_interest.get(t) {
            let row = StatsRow {
                inst,
                ts_ms: T0_MS + t as i64 * 1000,
                stats: VenueStats {
                    open_interest: Some(oi),
                    ..VenueStats::default()
                },
            };
            set.on_stats(&row, &mut |signal| out.push(*signal));
        }
        for s in 0..3 {
            if let Some(bar) = t.checked_sub(lag[s]).and_then(|i| streams[s].get(i)) {
                set.on_bar(bar, &mut |signal| out.push(*signal));
            }
        }
    }
    out
}

fn entries(signals: &[Signal]) -> Vec<&Signal> {
    signals
        .iter()
        .filter(|s| s.action != Action::Exit)
        .collect()
}

/// The points a signal's reason bits add up to, in tenths (the documented weights).
fn points(bits: u32) -> i64 {
    [
        (REASON_DECELERATION, 35),
        (REASON_ABSORPTION, 25),
        (REASON_FAILED_BREAK, 20),
        (REASON_BIAS, 20),
        (REASON_OI_CONFIRMS, 20),
        (REASON_OI_CONTRADICTS, -10),
    ]
    .iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, p)| p)
    .sum()
}

fn assert_score_matches_bits(s: &Signal) {
    let tenths = (s.score * 10).round().to_num::<i64>();
    assert_eq!(tenths, points(s.reason_bits).clamp(0, 100), "{s:?}");
    assert_eq!(s.confidence, s.score / 10);
}

/// Quiet, a divergence, an absorbing type A reset.
fn long_squeeze() -> Vec<Period> {
    let mut p = quiet(20);
    p.push(divergence(CENTER));
    p.push(absorbing_reset(CENTER));
    p.extend(quiet(4));
    p
}

#[test]
fn a_divergence_then_an_absorbing_reset_enters_long_at_the_close() {
    let signals = run(&long_squeeze(), &[], Order::InTurn);
    let e = entries(&signals);
    assert_eq!(e.len(), 1, "{signals:#?}");
    let s = e[0];
    assert_eq!(s.action, Action::EnterLong);
    let must = REASON_DIVERGENCE | REASON_RESET_A | REASON_ABSORPTION | REASON_FAILED_BREAK;
    assert_eq!(s.reason_bits & must, must, "{:#b}", s.reason_bits);
    assert_eq!(s.reason_bits & REASON_RESET_B, 0);
    assert_score_matches_bits(s);
    // Judged at the end of the reset period (period 21), entered at its close, no stop.
    assert_eq!(s.exch_ns, (T0_MS + 22_000) * 1_000_000);
    assert_eq!((s.entry_px, s.stop_px, s.target_px), (CENTER, 0, 0));
}

#[test]
fn the_mirror_image_enters_short_for_the_same_reasons() {
    let long = run(&long_squeeze(), &[], Order::InTurn);
    let mirrored: Vec<Period> = long_squeeze().into_iter().map(Period::mirrored).collect();
    let short = run(&mirrored, &[], Order::InTurn);
    assert_eq!(long.len(), short.len());
    for (l, s) in long.iter().zip(&short) {
        let flipped = match l.action {
            Action::EnterLong => Action::EnterShort,
            Action::EnterShort => Action::EnterLong,
            Action::Exit => Action::Exit,
        };
        assert_eq!(s.action, flipped);
        assert_eq!(
            (s.reason_bits, s.score, s.exch_ns),
            (l.reason_bits, l.score, l.exch_ns)
        );
    }
}

#[test]
fn the_inputs_may_arrive_in_any_interleaving() {
    let mut p = long_squeeze();
    p.push(Period::flat(CENTER - 100, -5 * U, -5 * U));
    p.extend(quiet(5));
    let in_turn = run(&p, &[], Order::InTurn);
    assert!(!in_turn.is_empty());
    assert_eq!(in_turn, run(&p, &[], Order::Lagged));
}

#[test]
fn no_divergence_no_setup() {
    // Spot and perps buy together: a move, not a squeeze.
    let mut p = quiet(20);
    p.push(Period::flat(CENTER, 20 * U, 20 * U));
    p.push(absorbing_reset(CENTER));
    p.extend(quiet(4));
    assert_eq!(run(&p, &[], Order::InTurn), vec![]);
    // A divergence too weak for its z-score threshold either.
    let mut p = long_squeeze();
    p[20] = Period::flat(CENTER, 2 * U, -2 * U);
    assert_eq!(
        run(
            &p,
            &[("divergence_z", ParamValue::Number(2.5))],
            Order::InTurn
        ),
        vec![]
    );
}

#[test]
fn no_reset_while_the_cvds_stay_apart_and_the_setup_expires() {
    // The divergence keeps going: the absorbing bar comes while spot still buys and
    // perps still sell.
    let mut p = quiet(20);
    p.push(divergence(CENTER));
    p.push(Period {
        spot: 15 * U,
        perp: -15 * U,
        ..absorbing_reset(CENTER)
    });
    p.extend(quiet(4));
    let reset_end_ns = (T0_MS + 22_000) * 1_000_000;
    let signals = run(&p, &[], Order::InTurn);
    assert!(
        entries(&signals).iter().all(|s| s.exch_ns != reset_end_ns),
        "{signals:#?}"
    );
    // A reset after the setup expired is not an entry either.
    let mut p = quiet(20);
    p.push(divergence(CENTER));
    // Converged, but the price drifts (neither stagnant nor a large move): no reset
    // until the setup is gone.
    p.extend((1..=3).map(|i| Period::flat(CENTER + i, U, U)));
    p.push(absorbing_reset(CENTER + 3));
    let expired = run(&p, &[("setup_bars", ParamValue::Int(2))], Order::InTurn);
    assert_eq!(entries(&expired), Vec::<&Signal>::new());
    // The control: with the setup still alive, the same reset enters.
    assert_eq!(entries(&run(&p, &[], Order::InTurn)).len(), 1);
}

#[test]
fn a_reset_with_a_large_move_is_type_b() {
    let mut p = long_squeeze();
    // The reset bar drops 400: a flush, still absorbed on the wick, closing above the
    // range low of the periods before.
    p[21] = Period {
        open: CENTER,
        high: CENTER + 5,
        low: CENTER - 600,
        close: CENTER - 400,
        volume: 50,
        spot: 0,
        perp: 0,
    };
    let signals = run(
        &p,
        &[("entry_score", ParamValue::Number(0.0))],
        Order::InTurn,
    );
    let e = entries(&signals);
    assert_eq!(e.len(), 1, "{signals:#?}");
    assert_ne!(
        e[0].reason_bits & REASON_RESET_B,
        0,
        "{:#b}",
        e[0].reason_bits
    );
    assert_eq!(e[0].reason_bits & REASON_RESET_A, 0);
    // It closed below the range low: no failed breakdown.
    assert_eq!(e[0].reason_bits & REASON_FAILED_BREAK, 0);
}

#[test]
fn a_reset_that_scores_below_the_entry_threshold_does_not_enter() {
    // A plain quiet bar as the reset: no absorption, no failed breakdown, bias held off.
    let mut p = long_squeeze();
    p[21] = Period::flat(CENTER, 0, 0);
    let none = run(&p, &[], Order::InTurn);
    assert_eq!(entries(&none), Vec::<&Signal>::new());
    // The same reset enters once the threshold is 0: the setup and reset were there.
    let any = run(
        &p,
        &[("entry_score", ParamValue::Number(0.0))],
        Order::InTurn,
    );
    let e = entries(&any);
    assert_eq!(e.len(), 1);
    assert!(e[0].score < 4, "{:?}", e[0]);
    assert_score_matches_bits(e[0]);
}

#[test]
fn a_gradual_reset_scores_the_deceleration_and_an_abrupt_one_does_not() {
    let abrupt = run(&long_squeeze(), &[], Order::InTurn);
    assert_eq!(entries(&abrupt)[0].reason_bits & REASON_DECELERATION, 0);
    // The divergence builds over two periods and unwinds over three, each step (in
    // z-score units) smaller than the one before, with the price held.
    let mut p = quiet(20);
    p.push(Period::flat(CENTER, 12 * U, -12 * U));
    p.push(divergence(CENTER));
    p.push(Period::flat(CENTER, 13 * U, -13 * U));
    p.push(Period::flat(CENTER, 8 * U, -8 * U));
    p.push(Period {
        spot: 5 * U,
        perp: -5 * U,
        ..absorbing_reset(CENTER)
    });
    p.extend(quiet(4));
    let signals = run(&p, &[], Order::InTurn);
    let e = entries(&signals);
    assert_eq!(e.len(), 1, "{signals:#?}");
    assert_ne!(
        e[0].reason_bits & REASON_DECELERATION,
        0,
        "{:#b}",
        e[0].reason_bits
    );
    assert_score_matches_bits(e[0]);
}

#[test]
fn a_context_trending_the_setups_way_adds_the_bias() {
    // Price, spot and perp CVD all rise through the context window; the divergence and
    // reset follow. Bias needs 4 of the 6 slopes (two timeframes) up.
    let mut p: Vec<Period> = (0..20)
        .map(|i| {
            let s = if i % 2 == 0 { 1 } else { 3 };
            Period::flat(CENTER + 3 * i, s * U, s * U)
        })
        .collect();
    let top = CENTER + 60;
    p.push(Period::flat(top, 30 * U, -4 * U));
    p.push(Period::flat(top, 2 * U, 2 * U));
    p.extend(quiet(4));
    let bias = [
        ("bias_min", ParamValue::Int(4)),
        ("entry_score", ParamValue::Number(2.0)),
    ];
    let signals = run(&p, &bias, Order::InTurn);
    let e = entries(&signals);
    assert_eq!(e.len(), 1, "{signals:#?}");
    assert_ne!(e[0].reason_bits & REASON_BIAS, 0, "{:#b}", e[0].reason_bits);
    // Without the trend (quiet context) the same ending has no bias.
    let mut q = quiet(20);
    q.extend_from_slice(&p[20..]);
    for e in entries(&run(&q, &bias, Order::InTurn)) {
        assert_eq!(e.reason_bits & REASON_BIAS, 0);
    }
}

/// A long squeeze entered, then `after`: the exit signals.
fn exits_after(after: &[Period]) -> Vec<Signal> {
    let mut p = long_squeeze();
    p.truncate(22);
    p.extend_from_slice(after);
    let signals = run(&p, &[], Order::InTurn);
    assert_eq!(entries(&signals).len(), 1, "{signals:#?}");
    signals
        .into_iter()
        .filter(|s| s.action == Action::Exit)
        .collect()
}

#[test]
fn phase_five_holds_a_quiet_position_and_exits_on_a_range_break() {
    assert_eq!(exits_after(&quiet(8)), vec![]);
    let mut after = quiet(3);
    after.push(Period::flat(CENTER - 50, 0, 0));
    let exits = exits_after(&after);
    assert_eq!(exits.len(), 1);
    assert_ne!(exits[0].reason_bits & REASON_RANGE_BREAK, 0);
    assert_eq!(exits[0].entry_px, CENTER - 50);
}

#[test]
fn phase_five_exits_on_a_spot_flow_reversal() {
    let mut after = quiet(3);
    after.push(Period::flat(CENTER, -20 * U, 0));
    let exits = exits_after(&after);
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_ne!(exits[0].reason_bits & REASON_FLOW_REVERSAL, 0);
    assert_eq!(exits[0].reason_bits & REASON_RANGE_BREAK, 0);
}

#[test]
fn phase_five_exits_when_both_cvds_turn_against_the_position() {
    // Both sell moderately (under the reversal threshold) until both CVDs are below
    // their values at entry.
    let after: Vec<Period> = (0..4)
        .map(|i| Period::flat(CENTER + (i % 2), -U / 2, -U / 2))
        .collect();
    let exits = exits_after(&after);
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_ne!(exits[0].reason_bits & REASON_CVD_INVALIDATION, 0);
}

#[test]
fn settings_are_checked_and_the_base_must_have_spot_and_perps() {
    let table = InstrumentTable::bundled_defaults();
    let engine = BarEngine::new(&table, None).unwrap();
    let inst = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let build = |key, params: &[(&str, ParamValue)]| {
        let spec = StrategySpec {
            name: "squeeze_flow".into(),
            key,
            cooldown_s: 0,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        StrategySet::new(&[spec], &table, engine.aggregates())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(build(BarKey::Instrument(inst), &[]), Ok(()));
    let bad = build(
        BarKey::Instrument(inst),
        &[
            ("timeframe_s", ParamValue::Int(60)),
            ("context_timeframe_s", ParamValue::Int(90)),
        ],
    );
    assert!(bad.unwrap_err().contains("context_timeframe_s"));
    let agg = build(BarKey::Aggregate(flowcore_core::bars::AggregateId(0)), &[]);
    assert!(agg.unwrap_err().contains("symbol"));
}

/// Open interest wobbling by one contract a period, then moving by `jump` at the reset.
fn open_interest_with(jump: i64) -> Vec<i64> {
    let squeeze = long_squeeze();
    let mut oi: Vec<i64> = (0..squeeze.len())
        .map(|i| 50_000 + (i % 2) as i64)
        .collect();
    for level in &mut oi[21..] {
        *level += jump;
    }
    oi
}

#[test]
fn open_interest_rising_into_the_reset_confirms_and_falling_contradicts() {
    // Contradicting open interest takes a point: with the default threshold this entry
    // (4.5) would not be taken at all; a lower one shows the bit and the score.
    let low = [("entry_score", ParamValue::Number(3.0))];
    let plain = run(&long_squeeze(), &low, Order::InTurn);
    let plain = entries(&plain)[0];
    assert_eq!(
        plain.reason_bits & (REASON_OI_CONFIRMS | REASON_OI_CONTRADICTS),
        0
    );
    for (jump, bit, tenths) in [
        (40, REASON_OI_CONFIRMS, 20),
        (-40, REASON_OI_CONTRADICTS, -10),
    ] {
        let oi = open_interest_with(jump);
        let signals = run_with_open_interest(&long_squeeze(), &low, Order::InTurn, &oi);
        let e = entries(&signals);
        assert_eq!(e.len(), 1, "jump {jump}: {signals:#?}");
        assert_eq!(e[0].reason_bits, plain.reason_bits | bit, "jump {jump}");
        let tenths_of = |s: &Signal| (s.score * 10).round().to_num::<i64>();
        assert_eq!(tenths_of(e[0]), tenths_of(plain) + tenths, "jump {jump}");
        assert_score_matches_bits(e[0]);
    }
    // At the default threshold, contradicting open interest keeps the entry out.
    let oi = open_interest_with(-40);
    assert!(entries(&run_with_open_interest(
        &long_squeeze(),
        &[],
        Order::InTurn,
        &oi
    ))
    .is_empty());
    // Open interest that does not move scores nothing either way.
    let flat = run_with_open_interest(
        &long_squeeze(),
        &low,
        Order::InTurn,
        &vec![50_000; long_squeeze().len()],
    );
    assert_eq!(entries(&flat)[0].reason_bits, plain.reason_bits);
}
