//! `smart_money`: the order-book imbalance method (seed 004) on one instrument, once a
//! second, from its book row and its one-second bar of the same second (joined, so live
//! equals replay).
//!
//! ```text
//! book rows (obi, top) --\
//!                          --> imbalance momentum, liquidity, regime --> market score --> signal
//! one-second bars -------/
//! ```
//!
//! - **Imbalance momentum**: the book row's depth-weighted imbalance (the engine's
//!   10-level `obi`, -1..1) averaged over the last `momentum_window` (20) seconds with
//!   weights `decay^age` (`decay` 0.95), kept as an exact running sum.
//! - **Liquidity score** (0..1): half `min(1, mean spread / spread)`, half `min(1, depth /
//!   mean depth)` over the last `liquidity_window` (60) seconds, where depth is the best
//!   bid plus best ask size (the book row carries no deeper sizes). Below 0.5 is illiquid.
//! - **Regime**, from the bars: *volatile* when the standard deviation of one-second close
//!   changes over `vol_short` (20) seconds is at least `volatile_ratio` (2) times that over
//!   `vol_long` (120); else *trending* when `|trend_z| >= trend_z` (2), with `trend_z` the
//!   close's change over `trend_window` (60) seconds in units of its expected spread
//!   (`std * sqrt(n)` of the long window); else *accumulation* / *distribution* when the
//!   CVD's flow over `trend_window`, `flow_z = sqrt(n) * mean delta / std delta`, is at least
//!   `flow_z` (1) either way; else *neutral*.
//! - **Market score** (-1..1): `0.4 * momentum + 0.3 * clamp(trend_z / 2) + 0.3 *
//!   clamp(flow_z / 2)`; confidence is its magnitude. An entry in its direction when the
//!   confidence reaches `confidence` (0.75), once per excursion above it (again only after
//!   it fell below or turned), and never more than `max_per_minute` (10) in 60 s.
//! - **Size** = `base_size` (in base units; 0: the gateway decides) x confidence x the
//!   regime factor (trending 1.0, accumulation/distribution 0.8, neutral 0.6, volatile 0.4)
//!   x the liquidity score, capped at `max_size` (default `base_size`).
//! - **Stop** `stop_pct` (2) and **target** `target_pct` (4) around the close, both widened
//!   x1.5 in a volatile regime and x1.25 when illiquid, tightened x0.75 in accumulation or
//!   distribution.
//!
//! Reason bits: 0 the imbalance momentum agrees, 1 the trend agrees, 2 the flow agrees,
//! 3 illiquid; bits 8-10 the regime (1 accumulation, 2 distribution, 3 trending,
//! 4 volatile, 5 neutral). The score is the signed market score. Signals are fast.

use super::join::SeriesJoin;
use super::params::{ParamError, Params};
use super::signal::{Action, Signal, Strategy, SymbolContext, Tier};
use crate::bars::{Bar, BarKey};
use crate::decimal::pow10_i128;
use crate::engine::{TopRow, TopSample};
use crate::imbalance::OBI_SCALE;
use crate::indicators::{sqrt, Rolling, Value};
use std::collections::VecDeque;

/// Reason bit: the imbalance momentum points the signal's way.
pub const REASON_IMBALANCE: u32 = 1;
/// Reason bit: the price trend points the signal's way.
pub const REASON_TREND: u32 = 1 << 1;
/// Reason bit: the CVD flow points the signal's way.
pub const REASON_FLOW: u32 = 1 << 2;
/// Reason bit: the liquidity score is below 0.5.
pub const REASON_ILLIQUID: u32 = 1 << 3;
/// The regime's code is in reason bits 8-10.
pub const REASON_REGIME_SHIFT: u32 = 8;

/// The market regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// Buying flow into a flat price.
    Accumulation = 1,
    /// Selling flow into a flat price.
    Distribution = 2,
    /// The price moves beyond its usual spread.
    Trending = 3,
    /// Short-term volatility well above its longer-term level.
    Volatile = 4,
    /// None of the above.
    Neutral = 5,
}

impl Regime {
    /// Its name in documentation and reports.
    pub fn name(self) -> &'static str {
        match self {
            Regime::Accumulation => "accumulation",
            Regime::Distribution => "distribution",
            Regime::Trending => "trending",
            Regime::Volatile => "volatile",
            Regime::Neutral => "neutral",
        }
    }

    /// The regime whose code reason bits 8-10 carry.
    pub fn from_reason_bits(bits: u32) -> Option<Self> {
        match (bits >> REASON_REGIME_SHIFT) & 7 {
            1 => Some(Regime::Accumulation),
            2 => Some(Regime::Distribution),
            3 => Some(Regime::Trending),
            4 => Some(Regime::Volatile),
            5 => Some(Regime::Neutral),
            _ => None,
        }
    }

    /// Tenths of the suggested size it keeps.
    fn size_tenths(self) -> i32 {
        match self {
            Regime::Trending => 10,
            Regime::Accumulation | Regime::Distribution => 8,
            Regime::Neutral => 6,
            Regime::Volatile => 4,
        }
    }
}

/// The two inputs of a second.
#[derive(Debug, Clone, Copy)]
enum Part {
    Top(Option<TopSample>),
    Bar(Bar),
}

const TOP: usize = 0;
const BAR: usize = 1;

fn tenths(n: i32) -> Value {
    Value::from_num(n) / Value::from_num(10)
}

fn clamp_unit(v: Value) -> Value {
    v.clamp(-Value::ONE, Value::ONE)
}

/// The order-book imbalance method (see the module documentation).
#[derive(Debug, Clone)]
pub struct SmartMoney {
    key: BarKey,
    join: SeriesJoin<Part, 2>,
    // Imbalance momentum: the samples (mantissas) and their decayed sum.
    imbalances: Rolling,
    decay: Value,
    /// decay^window: the weight of the sample leaving the window.
    decay_out: Value,
    /// The sum of decay^i over the window.
    weight: Value,
    momentum_sum: Value,
    // Liquidity.
    spreads: Rolling,
    depths: Rolling,
    // Regime, from the bars.
    last_close: Option<i64>,
    short_moves: Rolling,
    long_moves: Rolling,
    closes: Rolling,
    deltas: Rolling,
    /// The square root of the trend window's seconds.
    sqrt_trend_n: Value,
    volatile_ratio: Value,
    trend_z: Value,
    flow_z: Value,
    // Decisions.
    /// The market score's weights: 0.4 for the imbalance, 0.3 for trend and for flow
    /// (divided once here, not every second).
    weights: [Value; 2],
    confidence: Value,
    /// The direction of the excursion above the confidence threshold, if in one.
    above: Option<i8>,
    /// Exchange times of the last signals (ns), oldest first once full.
    recent: VecDeque<i64>,
    max_per_minute: usize,
    base_size: Value,
    max_size: Value,
    stop_pct: Value,
    target_pct: Value,
}

impl SmartMoney {
    /// Built from its settings, for an instrument with a book.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range; `symbol` for an aggregate.
    pub fn new(c: &SymbolContext<'_>, p: &Params<'_>) -> Result<Self, ParamError> {
        let Some((_, size_scale)) = c.scales else {
            return Err(p.invalid(
                "symbol",
                "needs an instrument with a book, not an aggregate",
            ));
        };
        let window = |key, default| -> Result<Rolling, ParamError> {
            let n = p.int(key, default, 2, 100_000)? as usize;
            Rolling::new(n).map_err(|e| p.invalid(key, e))
        };
        let momentum = p.int("momentum_window", 20, 1, 100_000)? as usize;
        let decay = p.number("decay", 0.95, 0.0, 1.0)?;
        let (mut weight, mut power) = (Value::ZERO, Value::ONE);
        for _ in 0..momentum {
            weight += power;
            power *= decay;
        }
        // Mantissas in, a -1..1 momentum out.
        let weight = weight * Value::from_num(pow10_i128(u32::from(OBI_SCALE)));
        let trend = p.int("trend_window", 60, 2, 100_000)? as usize;
        let units = Value::from_num(pow10_i128(u32::from(size_scale)));
        let base_size = p.number("base_size", 0.0, 0.0, 1e9)? * units;
        let max_size = match p.number("max_size", -1.0, -1.0, 1e9)? {
            m if m < 0 => base_size,
            m => m * units,
        };
        let max_per_minute = p.int("max_per_minute", 10, 1, 10_000)? as usize;
        Ok(Self {
            key: c.key,
            join: SeriesJoin::new(1000),
            imbalances: Rolling::new(momentum + 1).expect("window >= 2"),
            decay,
            decay_out: power,
            weight,
            momentum_sum: Value::ZERO,
            spreads: window("liquidity_window", 60)?,
            depths: window("liquidity_window", 60)?,
            last_close: None,
            short_moves: window("vol_short", 20)?,
            long_moves: window("vol_long", 120)?,
            closes: Rolling::new(trend + 1).expect("window >= 2"),
            deltas: Rolling::new(trend).expect("window >= 2"),
            sqrt_trend_n: sqrt(Value::from_num(trend)),
            volatile_ratio: p.number("volatile_ratio", 2.0, 0.0, 1000.0)?,
            trend_z: p.number("trend_z", 2.0, 0.0, 1000.0)?,
            flow_z: p.number("flow_z", 1.0, 0.0, 1000.0)?,
            weights: [tenths(4), tenths(3)],
            confidence: p.number("confidence", 0.75, 0.0, 1.0)?,
            above: None,
            recent: VecDeque::with_capacity(max_per_minute),
            max_per_minute,
            base_size,
            max_size,
            stop_pct: p.number("stop_pct", 2.0, 0.0, 50.0)?,
            target_pct: p.number("target_pct", 4.0, 0.0, 500.0)?,
        })
    }

    /// The imbalance momentum once the window is full.
    fn momentum(&mut self, obi: i64) -> Option<Value> {
        // The decayed sum is kept in imbalance mantissas: one division, at the end.
        self.imbalances.insert(i128::from(obi));
        self.momentum_sum = Value::from_num(obi) + self.decay * self.momentum_sum;
        let leaving = self.imbalances.oldest()?;
        self.momentum_sum -= self.decay_out * Value::from_num(leaving);
        Some(self.momentum_sum / self.weight)
    }

    /// The liquidity score once the window is full.
    fn liquidity(&mut self, spread: i64, depth: i64) -> Option<Value> {
        let (spread, depth) = (i128::from(spread), i128::from(depth));
        self.spreads.insert(spread);
        self.depths.insert(depth);
        let (mean_spread, mean_depth) = (self.spreads.mean()?, self.depths.mean()?);
        let tight = if spread <= 0 {
            Value::ONE
        } else {
            (mean_spread / Value::saturating_from_num(spread)).min(Value::ONE)
        };
        let deep = if mean_depth <= 0 {
            Value::ONE
        } else {
            (Value::saturating_from_num(depth) / mean_depth).min(Value::ONE)
        };
        Some((tight + deep) / Value::from_num(2))
    }

    /// The regime and the trend and flow z-scores, once every window is full.
    fn regime(&mut self, close: i64, delta: i128) -> Option<(Regime, Value, Value)> {
        let previous = self.last_close.replace(close)?;
        let change = i128::from(close - previous);
        self.short_moves.insert(change);
        self.long_moves.insert(change);
        self.closes.insert(i128::from(close));
        self.deltas.insert(delta);
        let (short, long) = (self.short_moves.std_dev()?, self.long_moves.std_dev()?);
        let (flow_sum, flow_std) = (self.deltas.sum()?, self.deltas.std_dev()?);
        let moved = Value::saturating_from_num(i128::from(close) - self.closes.oldest()?);
        let n = self.sqrt_trend_n;
        let trend_z = if long == 0 {
            Value::ZERO
        } else {
            moved / (long * n)
        };
        // sqrt(n) * mean / std = sum / (sqrt(n) * std).
        let flow_z = if flow_std == 0 {
            Value::ZERO
        } else {
            Value::saturating_from_num(flow_sum) / (n * flow_std)
        };
        let regime = if long > 0 && short >= self.volatile_ratio * long {
            Regime::Volatile
        } else if trend_z.abs() >= self.trend_z {
            Regime::Trending
        } else if flow_z >= self.flow_z {
            Regime::Accumulation
        } else if flow_z <= -self.flow_z {
            Regime::Distribution
        } else {
            Regime::Neutral
        };
        Some((regime, trend_z, flow_z))
    }

    /// One joined second.
    fn step(&mut self, ts_ms: i64, top: Option<TopSample>, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Some(ohlc) = bar.ohlc else { return };
        let regime = self.regime(ohlc.close, bar.delta);
        let Some(TopSample {
            bid: Some(bid),
            ask: Some(ask),
            obi: Some(obi),
            ..
        }) = top
        else {
            return;
        };
        let momentum = self.momentum(obi);
        let liquidity = self.liquidity(ask.px - bid.px, bid.qty + ask.qty);
        let (Some((regime, trend_z, flow_z)), Some(momentum), Some(liquidity)) =
            (regime, momentum, liquidity)
        else {
            return;
        };
        let two = Value::from_num(2);
        let [w_imbalance, w_trend] = self.weights;
        let score = w_imbalance * momentum
            + w_trend * clamp_unit(trend_z / two)
            + w_trend * clamp_unit(flow_z / two);
        let dir: i8 = if score >= 0 { 1 } else { -1 };
        if score.abs() < self.confidence {
            self.above = None;
            return;
        }
        if self.above == Some(dir) {
            return;
        }
        self.above = Some(dir);
        let exch_ns = (ts_ms + 1000) * 1_000_000;
        if self.recent.len() == self.max_per_minute {
            if exch_ns - self.recent[0] < 60_000_000_000 {
                return;
            }
            self.recent.pop_front();
        }
        self.recent.push_back(exch_ns);

        let action = if dir > 0 {
            Action::EnterLong
        } else {
            Action::EnterShort
        };
        let mut signal = Signal::new(self.key, exch_ns, action, Tier::Fast);
        let confidence = score.abs();
        let illiquid = liquidity < Value::from_num(1) / two;
        let sign = Value::from_num(dir);
        let agrees = |v: Value| v * sign > 0;
        signal.reason_bits = (regime as u32) << REASON_REGIME_SHIFT
            | if agrees(momentum) {
                REASON_IMBALANCE
            } else {
                0
            }
            | if agrees(trend_z) { REASON_TREND } else { 0 }
            | if agrees(flow_z) { REASON_FLOW } else { 0 }
            | if illiquid { REASON_ILLIQUID } else { 0 };
        signal.score = score;
        signal.confidence = confidence;
        signal.entry_px = ohlc.close;
        let size = self.base_size * confidence * tenths(regime.size_tenths()) * liquidity;
        signal.size = size.min(self.max_size).round().saturating_to_num();
        let mut widen = Value::ONE;
        if regime == Regime::Volatile {
            widen *= tenths(15);
        }
        if illiquid {
            widen *= Value::from_num(5) / Value::from_num(4);
        }
        if matches!(regime, Regime::Accumulation | Regime::Distribution) {
            widen *= Value::from_num(3) / Value::from_num(4);
        }
        let px = Value::from_num(ohlc.close);
        let away = |pct: Value| {
            (px * pct * widen / Value::from_num(100))
                .round()
                .saturating_to_num::<i64>()
        };
        let d = i64::from(dir);
        signal.stop_px = ohlc.close - d * away(self.stop_pct);
        signal.target_px = ohlc.close + d * away(self.target_pct);
        out(signal);
    }

    fn push(&mut self, input: usize, ts_ms: i64, part: Part, out: &mut dyn FnMut(Signal)) {
        let mut joined = None;
        self.join
            .push(input, ts_ms, part, |ts, parts| joined = Some((ts, parts)));
        if let Some((ts, [Part::Top(top), Part::Bar(bar)])) = joined {
            self.step(ts, top, &bar, out);
        }
    }
}

impl Strategy for SmartMoney {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        if bar.key == self.key {
            self.push(BAR, bar.ts_ms, Part::Bar(*bar), out);
        }
    }

    fn on_top(&mut self, row: &TopRow, out: &mut dyn FnMut(Signal)) {
        if BarKey::Instrument(row.inst) == self.key {
            self.push(TOP, row.ts_ms, Part::Top(row.top), out);
        }
    }
}
