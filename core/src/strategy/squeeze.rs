//! `squeeze_flow`: SqueezeFlow's five-phase method on the spot and perpetual CVD of one
//! base asset, traded on one instrument of it.
//!
//! ```text
//! price bars (the instrument) --\
//! spot aggregate bars ------------> period bars, joined per period --> phases 1-4 (no position)
//! perp aggregate bars ----------/                                  \-> phase 5 (own position)
//! ```
//!
//! Everything runs on bars of `timeframe_s` (60 s by default), joined so that a period is
//! judged only once the price, spot and perp bars of it are all in ([`super::SeriesJoin`]):
//! the same decisions live and in replay. No absolute threshold: flows are judged by
//! z-scores against their own recent history.
//!
//! Per period, with `k = flow_bars`:
//! - *flows*: the change over the last `k` periods of the spot CVD, the perp CVD and the
//!   close, each as a z-score against the last `z_window` such changes (`z_spot`,
//!   `z_perp`, `z_move`); the *spread* `d = z_spot - z_perp`.
//!
//! The phases:
//! 1. **Context**: the bias is the sum of the signs of the least-squares slopes of the
//!    close, the spot CVD and the perp CVD over the last `context_bars` periods, on this
//!    timeframe and on the higher `context_timeframe_s` one (-6..=6).
//! 2. **Divergence**: `z_spot >= divergence_z` while `z_perp <= -divergence_z` is a long
//!    setup (spot buys what perps sell), the mirror a short one. A new divergence
//!    (re)starts the setup; it expires after `setup_bars` periods without a reset.
//! 3. **Reset**: the CVDs converge (`|d| <= converge_z`). Type A: with the price
//!    stagnating (`|z_move| <= stagnation_z`); type B: with a large move (`|z_move| >=
//!    move_z`). Converging with neither waits.
//! 4. **Score** (out of 10), on the reset period and the `entry_bars` after it:
//!    CVD reset deceleration 3.5 (the spread still shrinks, but less than the period before),
//!    absorption candle 2.5 (a wick of at least `absorption_wick` of the range against the
//!    setup, on at least the mean volume of `structure_bars`), failed breakdown 2.0 (the low
//!    broke the lowest low of the last `structure_bars` periods but the close is back above
//!    it; mirrored for a short), directional bias 2.0 (`bias * direction >= bias_min`),
//!    open interest confirming +2.0 / contradicting -1.0: the `k`-period change of the
//!    instrument's open interest at the period's end, z-scored against its last `z_window`
//!    changes (`z_oi`), confirms at `z_oi >= oi_z` and contradicts at `z_oi <= -oi_z`, for
//!    either direction: a divergence is one side of the market building positions against
//!    the other, and rising open interest is that fuel still growing into the reset, while
//!    falling open interest says the squeeze already spent it. The value at the period's end
//!    is the last statistics row of an earlier second received by the time the period is
//!    judged: from another connection than the bars (USD-M `/market`), a run and a replay
//!    can see a row more or less there. Only a perpetual instrument
//!    whose venue sends open interest (Bybit linear `tickers`, Binance futures with
//!    `open_interest_s`) scores it; elsewhere these points never fire. The score is
//!    clamped to 0..=10. An entry at `score >= entry_score`, at the close, with no stop or
//!    target: phase 5 decides the exit.
//! 5. **Exit**, for the position the instance's own entry opened, with the CVDs and the
//!    range stored at entry: flow reversal (`z_spot` at `divergence_z` against the
//!    position), range break (a close beyond the `structure_bars` range before entry),
//!    CVD invalidation (both CVDs past their entry values against the position and both
//!    still moving against it over the last `k` periods), market-structure break (after `swing_bars` periods, a close beyond
//!    the extreme of the last `swing_bars` periods).
//!
//! Entries carry `confidence = score / 10` and the reason bits of what fired; exits the
//! bits of every exit condition met. Signals are tactical.
//!
//! With a cooldown in its `[[strategy]]` table the set may hold back an entry the instance
//! counts as open; the instance's exit is then a repeat of the set's last action and is
//! dropped as a duplicate, so what the set passes on stays consistent.

use super::join::SeriesJoin;
use super::params::{ParamError, Params};
use super::signal::{Action, Signal, Strategy, SymbolContext, Tier};
use crate::bars::{Bar, BarKey};
use crate::indicators::{Rolling, RollingExtreme, Value};
use crate::timeframe::{PeriodBar, Timeframe};
use crate::venue_stats::StatsRow;

/// Reason bit: a spot/perp CVD divergence set the entry up (every entry has it).
pub const REASON_DIVERGENCE: u32 = 1;
/// Reason bit: the reset was type A (convergence, price stagnant).
pub const REASON_RESET_A: u32 = 1 << 1;
/// Reason bit: the reset was type B (convergence, large move).
pub const REASON_RESET_B: u32 = 1 << 2;
/// Reason bit: the CVD reset decelerated (3.5 points).
pub const REASON_DECELERATION: u32 = 1 << 3;
/// Reason bit: an absorption candle (2.5 points).
pub const REASON_ABSORPTION: u32 = 1 << 4;
/// Reason bit: a failed breakdown (a failed breakout for a short; 2.0 points).
pub const REASON_FAILED_BREAK: u32 = 1 << 5;
/// Reason bit: the context bias agrees (2.0 points).
pub const REASON_BIAS: u32 = 1 << 6;
/// Reason bit: open interest confirms (+2.0).
pub const REASON_OI_CONFIRMS: u32 = 1 << 7;
/// Reason bit: open interest contradicts (-1.0).
pub const REASON_OI_CONTRADICTS: u32 = 1 << 8;
/// Exit reason bit: spot flow reversed against the position.
pub const REASON_FLOW_REVERSAL: u32 = 1 << 16;
/// Exit reason bit: the close left the range held before entry.
pub const REASON_RANGE_BREAK: u32 = 1 << 17;
/// Exit reason bit: both CVDs turned against the position past their entry values.
pub const REASON_CVD_INVALIDATION: u32 = 1 << 18;
/// Exit reason bit: the close broke the recent swing extreme.
pub const REASON_STRUCTURE_BREAK: u32 = 1 << 19;

const PRICE: usize = 0;
const SPOT: usize = 1;
const PERP: usize = 2;

/// Points of each score component, in tenths.
const DECELERATION_POINTS: i32 = 35;
const ABSORPTION_POINTS: i32 = 25;
const FAILED_BREAK_POINTS: i32 = 20;
const BIAS_POINTS: i32 = 20;
const OI_CONFIRMS_POINTS: i32 = 20;
const OI_CONTRADICTS_POINTS: i32 = -10;

/// Open-interest rows kept to find the value at a period's end (rows come as the
/// instrument's statistics move on, on their own connection's clock: before or after the
/// period's bars).
const OI_ROWS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No setup.
    Watching,
    /// A divergence in `dir` (+1 long, -1 short), `bars` periods ago.
    Setup { dir: i8, bars: u32 },
    /// A reset of a setup in `dir`, `bars` periods ago; `kind` its reason bit.
    Reset { dir: i8, kind: u32, bars: u32 },
    /// The instance's own position.
    Open(Position),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    dir: i8,
    spot_cvd: i128,
    perp_cvd: i128,
    range_low: i128,
    range_high: i128,
    bars: u32,
}

/// The settings, read once.
#[derive(Debug, Clone)]
struct Settings {
    divergence_z: Value,
    converge_z: Value,
    stagnation_z: Value,
    move_z: Value,
    setup_bars: u32,
    entry_bars: u32,
    entry_score: Value,
    bias_min: i32,
    absorption_wick: Value,
    swing_bars: u32,
    oi_z: Value,
}

/// The instrument's open interest: the latest rows, and its flow per period.
#[derive(Debug, Clone)]
struct OpenInterest {
    /// (second start ms, open interest) of the latest rows, oldest first.
    rows: [Option<(i64, i128)>; OI_ROWS],
    flow: Flow,
}

impl OpenInterest {
    fn on_row(&mut self, ts_ms: i64, value: i128) {
        self.rows.rotate_left(1);
        self.rows[OI_ROWS - 1] = Some((ts_ms, value));
    }

    /// The z-score of the open interest's `k`-period change at `end_ms`, from the last row
    /// of a second before it; `None` without one (or while the windows fill).
    fn z_at(&mut self, end_ms: i64) -> Option<Value> {
        let (_, level) = self
            .rows
            .iter()
            .rev()
            .flatten()
            .find(|(ts, _)| *ts < end_ms)?;
        self.flow.push(*level)
    }
}

/// One series' change over `k` periods, z-scored against its recent changes.
#[derive(Debug, Clone)]
struct Flow {
    levels: Rolling,
    changes: Rolling,
    /// The newest `k`-period change.
    change: i128,
}

impl Flow {
    fn new(k: usize, window: usize) -> Self {
        Self {
            levels: Rolling::new(k + 1).expect("k >= 1"),
            changes: Rolling::new(window).expect("window >= 2"),
            change: 0,
        }
    }

    /// The z-score of the newest `k`-period change, once both windows are full.
    fn push(&mut self, level: i128) -> Option<Value> {
        self.levels.insert(level);
        self.change = level - self.levels.oldest()?;
        self.changes.insert(self.change);
        self.changes.z_score()
    }
}

/// The trend of one series over a window: the sign of its slope.
#[derive(Debug, Clone)]
struct Trend(Rolling);

impl Trend {
    fn push(&mut self, level: i128) -> i32 {
        self.0.insert(level);
        self.0.slope_sign().unwrap_or(0)
    }
}

/// The recent range and volume of the price, read before the period is added.
#[derive(Debug, Clone)]
struct Structure {
    lows: RollingExtreme,
    highs: RollingExtreme,
    volumes: Rolling,
    swing_lows: RollingExtreme,
    swing_highs: RollingExtreme,
}

/// SqueezeFlow's method (see the module documentation).
#[derive(Debug, Clone)]
pub struct SqueezeFlow {
    keys: [BarKey; 3],
    period_ms: i64,
    context_ms: i64,
    frames: [Timeframe; 3],
    join: SeriesJoin<PeriodBar, 3>,
    flows: [Flow; 3],
    trends: [Trend; 3],
    context_trends: [Trend; 3],
    /// The context bias of the higher timeframe, held between its bars.
    context_bias: i32,
    structure: Structure,
    /// The spread of the last two periods, newest first.
    spreads: [Option<Value>; 2],
    open_interest: OpenInterest,
    settings: Settings,
    state: State,
}

impl SqueezeFlow {
    /// Built from its settings, for an instrument whose base asset has spot and
    /// perpetual instruments in the run.
    ///
    /// # Errors
    /// A setting of the wrong type or out of range; `symbol` when the symbol is an
    /// aggregate or its base lacks a spot or a perp aggregate.
    pub fn new(c: &SymbolContext<'_>, p: &Params<'_>) -> Result<Self, ParamError> {
        if c.scales.is_none() {
            return Err(p.invalid(
                "symbol",
                "needs an instrument (with prices), not an aggregate",
            ));
        }
        let (Some(spot), Some(perp)) = (c.spot_aggregate, c.perp_aggregate) else {
            return Err(p.invalid(
                "symbol",
                format!(
                    "needs spot and perpetual instruments of {} in the run",
                    c.base
                ),
            ));
        };
        let seconds = p.int("timeframe_s", 60, 1, 86_400)?;
        let context_s = p.int("context_timeframe_s", seconds * 5, seconds, 7 * 86_400)?;
        if context_s % seconds != 0 {
            return Err(p.invalid("context_timeframe_s", "must be a multiple of timeframe_s"));
        }
        let k = p.int("flow_bars", 5, 1, 10_000)? as usize;
        let window = p.int("z_window", 30, 2, 10_000)? as usize;
        let context = p.int("context_bars", 20, 2, 10_000)? as usize;
        let structure = p.int("structure_bars", 20, 2, 10_000)? as usize;
        let swing = p.int("swing_bars", 5, 1, 10_000)? as usize;
        let trend = || Trend(Rolling::new(context).expect("context >= 2"));
        let settings = Settings {
            divergence_z: p.number("divergence_z", 1.0, 0.0, 100.0)?,
            converge_z: p.number("converge_z", 1.0, 0.0, 100.0)?,
            stagnation_z: p.number("stagnation_z", 0.5, 0.0, 100.0)?,
            move_z: p.number("move_z", 2.0, 0.0, 100.0)?,
            setup_bars: p.int("setup_bars", 30, 1, 100_000)? as u32,
            entry_bars: p.int("entry_bars", 5, 0, 100_000)? as u32,
            entry_score: p.number("entry_score", 4.0, 0.0, 10.0)?,
            bias_min: p.int("bias_min", 2, 1, 6)? as i32,
            absorption_wick: p.number("absorption_wick", 0.5, 0.0, 1.0)?,
            swing_bars: swing as u32,
            oi_z: p.number("oi_z", 1.0, 0.0, 100.0)?,
        };
        Ok(Self {
            keys: [c.key, spot, perp],
            period_ms: seconds * 1000,
            context_ms: context_s * 1000,
            frames: std::array::from_fn(|_| Timeframe::new(seconds as u32)),
            join: SeriesJoin::new(seconds * 1000),
            flows: [(); 3].map(|_| Flow::new(k, window)),
            trends: [(); 3].map(|_| trend()),
            context_trends: [(); 3].map(|_| trend()),
            context_bias: 0,
            structure: Structure {
                lows: RollingExtreme::min(structure).expect("structure >= 2"),
                highs: RollingExtreme::max(structure).expect("structure >= 2"),
                volumes: Rolling::new(structure).expect("structure >= 2"),
                swing_lows: RollingExtreme::min(swing).expect("swing >= 1"),
                swing_highs: RollingExtreme::max(swing).expect("swing >= 1"),
            },
            spreads: [None; 2],
            open_interest: OpenInterest {
                rows: [None; OI_ROWS],
                flow: Flow::new(k, window),
            },
            settings,
            state: State::Watching,
        })
    }

    /// Phase 5: the exit conditions `pos` meets this period, as reason bits.
    fn exit_bits(
        &self,
        pos: &Position,
        close: i128,
        levels: [i128; 3],
        z_spot: Value,
        (swing_low, swing_high): (i128, i128),
    ) -> u32 {
        let s = &self.settings;
        let d = i128::from(pos.dir);
        let mut bits = 0;
        if Value::from_num(pos.dir) * z_spot <= -s.divergence_z {
            bits |= REASON_FLOW_REVERSAL;
        }
        if (d > 0 && close < pos.range_low) || (d < 0 && close > pos.range_high) {
            bits |= REASON_RANGE_BREAK;
        }
        let against = |now: i128, then: i128| d * (now - then) < 0;
        if against(levels[SPOT], pos.spot_cvd)
            && against(levels[PERP], pos.perp_cvd)
            && against(self.flows[SPOT].change, 0)
            && against(self.flows[PERP].change, 0)
        {
            bits |= REASON_CVD_INVALIDATION;
        }
        if pos.bars >= s.swing_bars
            && ((d > 0 && close < swing_low) || (d < 0 && close > swing_high))
        {
            bits |= REASON_STRUCTURE_BREAK;
        }
        bits
    }

    /// One joined period: the instrument's bar, the spot and the perp aggregate's.
    fn step(&mut self, bars: [PeriodBar; 3], out: &mut dyn FnMut(Signal)) {
        let price = &bars[PRICE];
        let Some(ohlc) = price.ohlc else { return };
        let (close, low, high) = (
            i128::from(ohlc.close),
            i128::from(ohlc.low),
            i128::from(ohlc.high),
        );
        let levels = [close, bars[SPOT].cvd, bars[PERP].cvd];
        let end_ms = price.start_ms + self.period_ms;

        // What the structure held before this period.
        let st = &mut self.structure;
        let before = (
            st.lows.value(),
            st.highs.value(),
            st.volumes.mean(),
            st.swing_lows.value(),
            st.swing_highs.value(),
        );
        st.lows.push(low);
        st.highs.push(high);
        st.volumes.insert(price.volume());
        st.swing_lows.push(low);
        st.swing_highs.push(high);

        let z: [Option<Value>; 3] = std::array::from_fn(|i| self.flows[i].push(levels[i]));
        let z_oi = self.open_interest.z_at(end_ms);
        let mut bias: i32 = (0..3).map(|i| self.trends[i].push(levels[i])).sum();
        if end_ms % self.context_ms == 0 {
            self.context_bias = (0..3).map(|i| self.context_trends[i].push(levels[i])).sum();
        }
        bias += self.context_bias;

        let (
            [Some(z_move), Some(z_spot), Some(z_perp)],
            (
                Some(range_low),
                Some(range_high),
                Some(mean_volume),
                Some(swing_low),
                Some(swing_high),
            ),
        ) = (z, before)
        else {
            return;
        };
        let spread = z_spot - z_perp;
        let spreads = self.spreads;
        self.spreads = [Some(spread), spreads[0]];
        let s = &self.settings;

        if let State::Open(mut pos) = self.state {
            let bits = self.exit_bits(&pos, close, levels, z_spot, (swing_low, swing_high));
            pos.bars += 1;
            self.state = State::Open(pos);
            if bits != 0 {
                let mut signal = Signal::new(
                    self.keys[PRICE],
                    end_ms * 1_000_000,
                    Action::Exit,
                    Tier::Tactical,
                );
                signal.entry_px = ohlc.close;
                signal.reason_bits = bits;
                signal.score = Value::from_num(bits.count_ones());
                signal.confidence = Value::ONE;
                self.state = State::Watching;
                out(signal);
            }
            return;
        }

        // Phase 2: a divergence (re)starts a setup.
        let long = z_spot >= s.divergence_z && z_perp <= -s.divergence_z;
        let short = z_spot <= -s.divergence_z && z_perp >= s.divergence_z;
        self.state = if long || short {
            State::Setup {
                dir: if long { 1 } else { -1 },
                bars: 0,
            }
        } else {
            match self.state {
                // Phase 3: the reset.
                State::Setup { dir, bars } if spread.abs() <= s.converge_z => {
                    if z_move.abs() <= s.stagnation_z {
                        State::Reset {
                            dir,
                            kind: REASON_RESET_A,
                            bars: 0,
                        }
                    } else if z_move.abs() >= s.move_z {
                        State::Reset {
                            dir,
                            kind: REASON_RESET_B,
                            bars: 0,
                        }
                    } else if bars + 1 >= s.setup_bars {
                        State::Watching
                    } else {
                        State::Setup {
                            dir,
                            bars: bars + 1,
                        }
                    }
                }
                State::Setup { dir, bars } if bars + 1 < s.setup_bars => State::Setup {
                    dir,
                    bars: bars + 1,
                },
                State::Reset { dir, kind, bars } if bars < s.entry_bars => State::Reset {
                    dir,
                    kind,
                    bars: bars + 1,
                },
                _ => State::Watching,
            }
        };
        let State::Reset { dir, kind, .. } = self.state else {
            return;
        };

        // Phase 4: the score.
        let d = i128::from(dir);
        let mut bits = REASON_DIVERGENCE | kind;
        let mut tenths = 0;
        if let [Some(prev), Some(prev2)] = spreads {
            if spread.abs() < prev.abs() && (spread - prev).abs() < (prev - prev2).abs() {
                bits |= REASON_DECELERATION;
                tenths += DECELERATION_POINTS;
            }
        }
        let (open, range) = (i128::from(ohlc.open), high - low);
        // The wick against the setup: below the body for a long, above it for a short.
        let wick = if d > 0 {
            open.min(close) - low
        } else {
            high - open.max(close)
        };
        if range > 0
            && Value::saturating_from_num(wick)
                >= s.absorption_wick * Value::saturating_from_num(range)
            && Value::saturating_from_num(price.volume()) >= mean_volume
        {
            bits |= REASON_ABSORPTION;
            tenths += ABSORPTION_POINTS;
        }
        if (d > 0 && low < range_low && close > range_low)
            || (d < 0 && high > range_high && close < range_high)
        {
            bits |= REASON_FAILED_BREAK;
            tenths += FAILED_BREAK_POINTS;
        }
        if bias * i32::from(dir) >= s.bias_min {
            bits |= REASON_BIAS;
            tenths += BIAS_POINTS;
        }
        match z_oi {
            Some(z) if z >= s.oi_z => {
                bits |= REASON_OI_CONFIRMS;
                tenths += OI_CONFIRMS_POINTS;
            }
            Some(z) if z <= -s.oi_z => {
                bits |= REASON_OI_CONTRADICTS;
                tenths += OI_CONTRADICTS_POINTS;
            }
            _ => {}
        }
        let score = Value::from_num(tenths.clamp(0, 100)) / Value::from_num(10);
        if score < s.entry_score {
            return;
        }
        let action = if dir > 0 {
            Action::EnterLong
        } else {
            Action::EnterShort
        };
        let mut signal = Signal::new(self.keys[PRICE], end_ms * 1_000_000, action, Tier::Tactical);
        signal.entry_px = ohlc.close;
        signal.reason_bits = bits;
        signal.score = score;
        signal.confidence = score / Value::from_num(10);
        self.state = State::Open(Position {
            dir,
            spot_cvd: levels[SPOT],
            perp_cvd: levels[PERP],
            range_low,
            range_high,
            bars: 0,
        });
        out(signal);
    }
}

impl Strategy for SqueezeFlow {
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal)) {
        let Some(input) = self.keys.iter().position(|k| *k == bar.key) else {
            return;
        };
        // A bar closes at most two periods, each completing at most one joined period.
        let mut joined: [Option<[PeriodBar; 3]>; 2] = [None; 2];
        let join = &mut self.join;
        let mut n = 0;
        self.frames[input].push(bar, &mut |period| {
            join.push(input, period.start_ms, *period, |_, bars| {
                joined[n] = Some(bars);
                n += 1;
            });
        });
        for bars in joined.into_iter().flatten() {
            self.step(bars, out);
        }
    }

    fn on_stats(&mut self, row: &StatsRow, _out: &mut dyn FnMut(Signal)) {
        if let (BarKey::Instrument(inst), Some(oi)) = (self.keys[PRICE], row.stats.open_interest) {
            if inst == row.inst {
                self.open_interest.on_row(row.ts_ms, i128::from(oi));
            }
        }
    }

    fn reads_base_aggregates(&self) -> bool {
        true
    }
}
