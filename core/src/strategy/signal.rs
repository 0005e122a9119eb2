//! What a strategy says: a [`Signal`], and the [`Strategy`] interface that live runs,
//! replays and backtests all drive the same way.

use crate::bars::{Bar, BarKey};
use crate::engine::TopRow;
use crate::indicators::Value;
use crate::venue_stats::StatsRow;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open or add to a long position.
    EnterLong,
    /// Open or add to a short position.
    EnterShort,
    /// Close the position.
    Exit,
}

impl Action {
    /// The name in JSONL rows and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Action::EnterLong => "enter_long",
            Action::EnterShort => "enter_short",
            Action::Exit => "exit",
        }
    }
}

/// How fast a signal's setup plays out, so a gateway can route it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Acts on a book or trade update, within 100 ms.
    Fast,
    /// A 1-60 s multi-timeframe setup.
    Tactical,
    /// A 10-300 s portfolio-level setup.
    Strategic,
}

impl Tier {
    /// The name in JSONL rows.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Fast => "fast",
            Tier::Tactical => "tactical",
            Tier::Strategic => "strategic",
        }
    }
}

/// Decimal digits of a signal's confidence and score in JSONL and on the bus.
pub const SIGNAL_FRACTION_SCALE: u8 = 9;

/// `v` as a mantissa at [`SIGNAL_FRACTION_SCALE`], rounded to nearest (ties away from 0),
/// saturating at the `i64` range: how confidence and score leave the core.
pub fn fraction_mantissa(v: Value) -> i64 {
    v.saturating_mul(Value::from_num(1_000_000_000i64))
        .round()
        .saturating_to_num::<i64>()
}

/// The index of a strategy instance in its [`super::StrategySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrategyId(pub u32);

/// A trading signal. Prices are mantissas at the symbol's price scale (0: none), the
/// size at its size scale; CVDs are the base asset's aggregates at the aggregate scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// Increasing within a run, from 1; set by the [`super::StrategySet`].
    pub id: u64,
    /// Which instance produced it; set by the set.
    pub strategy: StrategyId,
    /// The symbol it is about.
    pub key: BarKey,
    /// Exchange time of the data that triggered it: the end of the bar's second, ns.
    pub exch_ns: i64,
    /// What to do.
    pub action: Action,
    /// How fast it plays out.
    pub tier: Tier,
    /// Strategy-defined reasons (each strategy documents its bits).
    pub reason_bits: u32,
    /// Entry price (0: market).
    pub entry_px: i64,
    /// Stop-loss price (0: none).
    pub stop_px: i64,
    /// Take-profit price (0: none).
    pub target_px: i64,
    /// 0 to 1.
    pub confidence: Value,
    /// The strategy's own score (documented by each strategy).
    pub score: Value,
    /// Suggested size (0: the gateway decides).
    pub size: i64,
    /// Spot aggregate CVD of the base asset when the signal was made (its last final
    /// aggregate bar: which second that is depends on how the venues' messages
    /// interleave, so a live run and a replay can differ here); set by the set.
    pub spot_cvd: i128,
    /// Perpetual aggregate CVD of the base asset; set by the set.
    pub perp_cvd: i128,
}

impl Signal {
    /// A signal with no prices, size, score or reasons yet.
    pub fn new(key: BarKey, exch_ns: i64, action: Action, tier: Tier) -> Self {
        Self {
            id: 0,
            strategy: StrategyId(0),
            key,
            exch_ns,
            action,
            tier,
            reason_bits: 0,
            entry_px: 0,
            stop_px: 0,
            target_px: 0,
            confidence: Value::ZERO,
            score: Value::ZERO,
            size: 0,
            spot_cvd: 0,
            perp_cvd: 0,
        }
    }
}

/// What a strategy is told about the symbol it is built for.
#[derive(Debug, Clone, Copy)]
pub struct SymbolContext<'a> {
    /// The symbol.
    pub key: BarKey,
    /// Its base asset.
    pub base: &'a str,
    /// The base asset's spot aggregate, if the table has spot instruments of it.
    pub spot_aggregate: Option<BarKey>,
    /// The base asset's perpetual aggregate, if any.
    pub perp_aggregate: Option<BarKey>,
    /// Price and size scales of an instrument (`None` for an aggregate).
    pub scales: Option<(u8, u8)>,
}

/// A strategy instance: fed every final bar of the run, every per-second book row and
/// every per-second venue statistics row of its symbol, in the order the engine makes them, it hands its signals to `out`. The same calls come
/// live, in replay and in a backtest, so a strategy cannot tell them apart.
///
/// No allocation or I/O per call: state is built when the instance is.
pub trait Strategy: std::fmt::Debug + Send {
    /// One final bar of the instance's symbol (and of its base's aggregates, when it
    /// [reads them](Self::reads_base_aggregates)).
    fn on_bar(&mut self, bar: &Bar, out: &mut dyn FnMut(Signal));

    /// One per-second book row of the instance's instrument.
    fn on_top(&mut self, row: &TopRow, out: &mut dyn FnMut(Signal)) {
        let _ = (row, out);
    }

    /// One per-second venue statistics row (mark and index price, open interest, funding)
    /// of the instance's instrument, written once the instrument's statistics moved on to a
    /// later second (`crate::venue_stats`): it may come after bars of later seconds.
    fn on_stats(&mut self, row: &StatsRow, out: &mut dyn FnMut(Signal)) {
        let _ = (row, out);
    }

    /// True when the instance also reads its base asset's spot and perp aggregate bars
    /// (asked once, when the set builds it).
    fn reads_base_aggregates(&self) -> bool {
        false
    }
}
