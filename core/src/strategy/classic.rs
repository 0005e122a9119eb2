//! The classic methods (seed 003), each on one symbol's bars of a chosen period
//! (`timeframe_s`, 60 by default), each incremental:
//!
//! | name | enters long | enters short | score |
//! | --- | --- | --- | --- |
//! | `ema_cross` | fast EMA crosses above slow | crosses below | `(fast - slow) / slow` in bp |
//! | `rsi` | RSI climbs back above `oversold` | falls back below `overbought` | the RSI |
//! | `macd` | histogram turns positive | turns negative | `histogram / close` in bp |
//! | `momentum` | close up over `lookback` bars on volume >= `volume_factor` x its mean | down, same volume test | change in bp |
//!
//! Confidence (0 to 1): `ema_cross` and `macd` `|score| / confidence_bp`; `rsi` how far the
//! excursion went (`(50 - lowest) / 50` for a long); `momentum` `volume ratio / (2 x
//! volume_factor)`; each capped at 1. Entry is the bar's close; `stop_pct` and
//! `target_pct` (0 by default: none) set the stop and target around it. Signals are
//! tactical. Reason bit 0: the indicator crossed; bit 1 (momentum): the volume test passed.

use super::params::{ParamError, Params};
use super::signal::{Action, Signal, Strategy, Tier};
use crate::bars::{Bar, BarKey};
use crate::indicators::{Ema, Macd, Rolling, Rsi, Value};
use crate::timeframe::{PeriodBar, Timeframe};

/// Reason bit: the strategy's indicator crossed its line.
pub const REASON_CROSS: u32 = 1;
/// Reason bit (momentum): volume confirmed the move.
pub const REASON_VOLUME: u32 = 1 << 1;

const BP: i32 = 10_000;

/// What every classic method shares: its symbol's bars of the period, and how its
/// signals are made.
#[derive(Debug, Clone)]
struct Series {
    timeframe: Timeframe,
    maker: SignalMaker,
}

/// A classic method's signal: its symbol, entry at the close, stop and target.
#[derive(Debug, Clone)]
struct SignalMaker {
    key: BarKey,
    period_ms: i64,
    stop_pct: Value,
    target_pct: Value,
}

impl Series {
    fn new(key: BarKey, p: &Params<'_>) -> Result<Self, ParamError> {
        let seconds = p.int("timeframe_s", 60, 1, 86_400)?;
        Ok(Self {
            timeframe: Timeframe::new(seconds as u32),
            maker: SignalMaker {
                key,
                period_ms: seconds * 1000,
                stop_pct: p.number("stop_pct", 0.0, 0.0, 50.0)?,
                target_pct: p.number("target_pct", 0.0, 0.0, 500.0)?,
            },
        })
    }

    /// Feeds a one-second bar; `f` sees each final period bar that has prices, with its
    /// close.
    fn on_bar(&mut self, bar: &Bar, mut f: impl FnMut(&PeriodBar, i64, &SignalMaker)) {
        if bar.key != self.maker.key {
            return;
        }
        let maker = &self.maker;
        self.timeframe.push(bar, &mut |period| {
            if let Some(ohlc) = period.ohlc {
                f(period, ohlc.close, maker);
            }
        });
    }
}

impl SignalMaker {
    fn signal(&self, period: &PeriodBar, close: i64, action: Action) -> Signal {
        let end_ns = (period.start_ms + self.period_ms) * 1_000_000;
        let mut s = Signal::new(self.key, end_ns, action, Tier::Tactical);
        s.entry_px = close;
        let px = Value::from_num(close);
        let away = |pct: Value| (px * pct / Value::from_num(100)).round().to_num::<i64>();
        let (stop, target) = (away(self.stop_pct), away(self.target_pct));
        let sign = if action == Action::EnterShort { -1 } else { 1 };
        if stop > 0 {
            s.stop_px = close - sign * stop;
        }
        if target > 0 {
            s.target_px = close + sign * target;
        }
        s.reason_bits = REASON_CROSS;
        s
    }
}

/// Which side of its line an indicator is on; a change of side is an entry.
#[derive(Debug, Clone, Default)]
struct Side(Option<bool>);

impl Side {
    /// Takes the indicator's side now; the entry when it crossed (nothing on the first).
    fn cross(&mut self, above: bool) -> Option<Action> {
        let crossed = self.0.is_some_and(|was| was != above);
        self.0 = Some(above);
        crossed.then_some(if above {
            Action::EnterLong
        } else {
            Action::EnterShort
        })
    }
}

fn bp(num: Value, den: Value) -> Value {
    if den == 0 {
        return Value::ZERO;
    }
    num * Value::from_num(BP) / den
}

fn capped(v: Value) -> Value {
    v.abs().min(Value::ONE)
}

/// `ema_cross`: `fast` (9) and `slow` (21) EMAs of the close.
#[derive(Debug, Clone)]
pub struct EmaCross {
    series: Series,
    fast: Ema,
    slow: Ema,
    confidence_bp: Value,
    side: Side,
}

impl EmaCross {
    /// Built from its settings.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range, or `fast >= slow`.
    pub fn new(key: BarKey, p: &Params<'_>) -> Result<Self, ParamError> {
        let fast = p.int("fast", 9, 1, 10_000)?;
        let slow = p.int("slow", 21, 2, 10_000)?;
        if fast >= slow {
            return Err(p.invalid("fast", "must be below slow"));
        }
        Ok(Self {
            series: Series::new(key, p)?,
            fast: Ema::new(fast as usize).map_err(|e| p.invalid("fast", e))?,
            slow: Ema::new(slow as usize).map_err(|e| p.invalid("slow", e))?,
            confidence_bp: p.number("confidence_bp", 10.0, 0.001, 10_000.0)?,
            side: Side::default(),
        })
    }
}

impl Strategy for EmaCross {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Self {
            series,
            fast,
            slow,
            confidence_bp,
            side,
        } = self;
        series.on_bar(bar, |period, close, maker| {
            let x = Value::from_num(close);
            let (Some(f), Some(s)) = (fast.push(x), slow.push(x)) else {
                return;
            };
            if f == s {
                return;
            }
            if let Some(action) = side.cross(f > s) {
                let mut signal = maker.signal(period, close, action);
                signal.score = bp(f - s, s);
                signal.confidence = capped(signal.score / *confidence_bp);
                out(signal);
            }
        });
    }
}

/// `rsi`: Wilder's RSI of `period` (14) changes against `oversold` (30) and
/// `overbought` (70).
#[derive(Debug, Clone)]
pub struct RsiReversal {
    series: Series,
    rsi: Rsi,
    oversold: Value,
    overbought: Value,
    /// The lowest (below `oversold`) or highest (above `overbought`) RSI of the excursion.
    extreme: Option<Value>,
}

impl RsiReversal {
    /// Built from its settings.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range, or `oversold >= overbought`.
    pub fn new(key: BarKey, p: &Params<'_>) -> Result<Self, ParamError> {
        let oversold = p.number("oversold", 30.0, 0.0, 100.0)?;
        let overbought = p.number("overbought", 70.0, 0.0, 100.0)?;
        if oversold >= overbought {
            return Err(p.invalid("oversold", "must be below overbought"));
        }
        Ok(Self {
            series: Series::new(key, p)?,
            rsi: Rsi::new(p.int("period", 14, 1, 10_000)? as usize)
                .map_err(|e| p.invalid("period", e))?,
            oversold,
            overbought,
            extreme: None,
        })
    }
}

impl Strategy for RsiReversal {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Self {
            series,
            rsi,
            oversold,
            overbought,
            extreme,
        } = self;
        let fifty = Value::from_num(50);
        series.on_bar(bar, |period, close, maker| {
            let Some(r) = rsi.push(Value::from_num(close)) else {
                return;
            };
            if r < *oversold {
                *extreme = Some(extreme.filter(|e| *e < fifty).map_or(r, |e| e.min(r)));
                return;
            }
            if r > *overbought {
                *extreme = Some(extreme.filter(|e| *e > fifty).map_or(r, |e| e.max(r)));
                return;
            }
            let Some(e) = extreme.take() else { return };
            let action = if e < fifty {
                Action::EnterLong
            } else {
                Action::EnterShort
            };
            let mut signal = maker.signal(period, close, action);
            signal.score = r;
            signal.confidence = capped((fifty - e) / fifty);
            out(signal);
        });
    }
}

/// `macd`: MACD `fast` (12), `slow` (26), `signal` (9); enters when the histogram
/// changes sign.
#[derive(Debug, Clone)]
pub struct MacdCross {
    series: Series,
    macd: Macd,
    confidence_bp: Value,
    side: Side,
}

impl MacdCross {
    /// Built from its settings.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range, or `fast >= slow`.
    pub fn new(key: BarKey, p: &Params<'_>) -> Result<Self, ParamError> {
        let fast = p.int("fast", 12, 1, 10_000)? as usize;
        let slow = p.int("slow", 26, 2, 10_000)? as usize;
        let signal = p.int("signal", 9, 1, 10_000)? as usize;
        Ok(Self {
            series: Series::new(key, p)?,
            macd: Macd::new(fast, slow, signal).map_err(|e| p.invalid("fast", e))?,
            confidence_bp: p.number("confidence_bp", 5.0, 0.001, 10_000.0)?,
            side: Side::default(),
        })
    }
}

impl Strategy for MacdCross {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Self {
            series,
            macd,
            confidence_bp,
            side,
        } = self;
        series.on_bar(bar, |period, close, maker| {
            let x = Value::from_num(close);
            let Some(m) = macd.push(x) else { return };
            if m.histogram == 0 {
                return;
            }
            if let Some(action) = side.cross(m.histogram > 0) {
                let mut signal = maker.signal(period, close, action);
                signal.score = bp(m.histogram, x);
                signal.confidence = capped(bp(m.line, x) / *confidence_bp);
                out(signal);
            }
        });
    }
}

/// `momentum`: the close against the close `lookback` (10) bars before, confirmed by the
/// bar's taker volume reaching `volume_factor` (1.5) times its mean over `volume_window`
/// (20) bars.
#[derive(Debug, Clone)]
pub struct Momentum {
    series: Series,
    /// Closes of the last `lookback + 1` bars (the oldest is the reference).
    closes: Rolling,
    volumes: Rolling,
    volume_factor: Value,
    min_move_bp: Value,
    last: Option<Action>,
}

impl Momentum {
    /// Built from its settings.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range.
    pub fn new(key: BarKey, p: &Params<'_>) -> Result<Self, ParamError> {
        let lookback = p.int("lookback", 10, 1, 10_000)? as usize;
        let window = p.int("volume_window", 20, 2, 10_000)? as usize;
        Ok(Self {
            series: Series::new(key, p)?,
            closes: Rolling::new(lookback + 1).map_err(|e| p.invalid("lookback", e))?,
            volumes: Rolling::new(window).map_err(|e| p.invalid("volume_window", e))?,
            volume_factor: p.number("volume_factor", 1.5, 0.0, 1000.0)?,
            min_move_bp: p.number("min_move_bp", 5.0, 0.0, 10_000.0)?,
            last: None,
        })
    }
}

impl Strategy for Momentum {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Self {
            series,
            closes,
            volumes,
            volume_factor,
            min_move_bp,
            last,
        } = self;
        series.on_bar(bar, |period, close, maker| {
            let volume = period.volume();
            closes.insert(i128::from(close));
            volumes.insert(volume);
            let Some(mean_volume) = volumes.mean().filter(|_| closes.is_full()) else {
                return;
            };
            // The close `lookback` bars ago.
            let reference = closes.oldest().map_or(close, |c| c as i64);
            let change = bp(
                Value::from_num(close - reference),
                Value::from_num(reference),
            );
            let ratio = if mean_volume == 0 {
                Value::ZERO
            } else {
                Value::saturating_from_num(volume) / mean_volume
            };
            let action = if change >= *min_move_bp {
                Action::EnterLong
            } else if change <= -*min_move_bp {
                Action::EnterShort
            } else {
                *last = None;
                return;
            };
            if ratio < *volume_factor || *last == Some(action) {
                return;
            }
            *last = Some(action);
            let mut signal = maker.signal(period, close, action);
            signal.reason_bits |= REASON_VOLUME;
            signal.score = change;
            signal.confidence = capped(ratio / (*volume_factor * Value::from_num(2)));
            out(signal);
        });
    }
}
