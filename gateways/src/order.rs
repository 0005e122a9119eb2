//! What flows through the gateway: a signal as read off a bus, the order the risk engine
//! makes of it, and what the executor reports back. All `Copy`, fixed-size: they cross the
//! gateway's threads in rtrb rings without allocating.

use crate::market::Slot;
use flowcore_core::indicators::Value;
use flowcore_core::strategy::Action;

/// What makes a signal one signal: the bus it came from (index in `buses`), that bus's
/// writer start (epoch) and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalKey {
    /// Index into the configuration's `buses`.
    pub bus: u16,
    /// The writer epoch of the bus when the signal was read.
    pub epoch: u64,
    /// `SignalRecord::signal_id`.
    pub id: u64,
}

/// A signal as the gateway sees it.
#[derive(Debug, Clone, Copy)]
pub struct GatewaySignal {
    /// Identity.
    pub key: SignalKey,
    /// The symbol.
    pub slot: Slot,
    /// Index into the configuration's `[pairs]`, if the symbol is mapped.
    pub pair: Option<u16>,
    /// `SignalRecord::strategy_id`.
    pub strategy: u32,
    /// What to do.
    pub action: Action,
    /// Entry, stop and target prices (0: none) at the symbol's price scale.
    pub entry_px: i64,
    /// Stop.
    pub stop_px: i64,
    /// Target.
    pub target_px: i64,
    /// 0..1.
    pub confidence: Value,
    /// Suggested size at the symbol's size scale (0: none).
    pub size: i64,
    /// `SignalRecord::local_ns`: when it was published (for a hand-made signal) or when
    /// the message that triggered it was received.
    pub local_ns: i64,
    /// When the gateway read it, ns since the Unix epoch.
    pub read_ns: i64,
}

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Long.
    Long,
    /// Short.
    Short,
}

impl Side {
    /// `long` / `short`, as FreqTrade spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// Why a signal was not traded. Every one is counted and logged with the signal id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rejection {
    /// Read before (journal) or already acted on.
    Duplicate,
    /// Older than `risk.max_signal_age_ms`.
    Stale,
    /// The kill switch (file or HTTP) is on.
    KillSwitch,
    /// Equity fell `risk.max_drawdown` below its peak: entries stopped.
    Drawdown,
    /// No `[pairs]` entry for the symbol.
    UnknownPair,
    /// Weekend mode and the pair is not crypto.
    Weekend,
    /// A position on the symbol is open (one per pair, as FreqTrade holds them).
    PositionOpen,
    /// Within `risk.cooldown_s` of the last entry of this strategy on this symbol.
    Cooldown,
    /// `risk.max_open_positions` reached.
    MaxOpenPositions,
    /// `risk.max_correlated_positions` reached in the symbol's correlated group.
    Correlated,
    /// `risk.max_notional_per_symbol` leaves no room.
    MaxNotionalSymbol,
    /// `risk.max_notional_total` leaves no room.
    MaxNotionalTotal,
    /// `risk.max_strategy_risk` leaves no room.
    StrategyRisk,
    /// The sizing method gave nothing to stake.
    ZeroSize,
    /// An exit for a symbol with no open position.
    NoPosition,
}

impl Rejection {
    /// Every reason, in code order.
    pub const ALL: [Rejection; 15] = [
        Rejection::Duplicate,
        Rejection::Stale,
        Rejection::KillSwitch,
        Rejection::Drawdown,
        Rejection::UnknownPair,
        Rejection::Weekend,
        Rejection::PositionOpen,
        Rejection::Cooldown,
        Rejection::MaxOpenPositions,
        Rejection::Correlated,
        Rejection::MaxNotionalSymbol,
        Rejection::MaxNotionalTotal,
        Rejection::StrategyRisk,
        Rejection::ZeroSize,
        Rejection::NoPosition,
    ];

    /// The name logs, journal and summary use.
    pub const fn name(self) -> &'static str {
        match self {
            Rejection::Duplicate => "duplicate",
            Rejection::Stale => "stale",
            Rejection::KillSwitch => "kill_switch",
            Rejection::Drawdown => "drawdown",
            Rejection::UnknownPair => "unknown_pair",
            Rejection::Weekend => "weekend",
            Rejection::PositionOpen => "position_open",
            Rejection::Cooldown => "cooldown",
            Rejection::MaxOpenPositions => "max_open_positions",
            Rejection::Correlated => "correlated",
            Rejection::MaxNotionalSymbol => "max_notional_per_symbol",
            Rejection::MaxNotionalTotal => "max_notional_total",
            Rejection::StrategyRisk => "max_strategy_risk",
            Rejection::ZeroSize => "zero_size",
            Rejection::NoPosition => "no_position",
        }
    }
}

/// What the risk engine asks the executor to do.
#[derive(Debug, Clone, Copy)]
pub enum OrderKind {
    /// Open a position.
    Enter {
        /// Direction.
        side: Side,
        /// Quote currency to commit.
        stake: Value,
        /// Base quantity at `price`.
        qty: Value,
        /// The price it was sized at (entry or the touch; 0: none known, a market order
        /// sized by its stake alone, `qty` 0 too).
        price: Value,
        /// Limit price for a limit order (the signal's entry), else 0.
        limit: Value,
    },
    /// Close the position `entry` opened.
    Exit {
        /// The entry signal of the position.
        entry: SignalKey,
        /// Direction of the position being closed.
        side: Side,
        /// Its quantity.
        qty: Value,
    },
}

/// An accepted signal, for the executor.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    /// The signal.
    pub signal: GatewaySignal,
    /// The order.
    pub kind: OrderKind,
    /// The pair (index into `[pairs]`).
    pub pair: u16,
    /// Best bid and ask mantissas when decided (paper fills; 0 when unknown).
    pub bid: i64,
    /// Ask.
    pub ask: i64,
}

/// A decision on one signal, from the signal thread to the executor thread.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// Trade it.
    Order(Order),
    /// Do not.
    Rejected(GatewaySignal, Rejection),
}

/// What became of an order, from the executor thread back to the risk engine.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The entry filled (FreqTrade: the trade is open).
    Opened {
        /// The entry signal.
        entry: SignalKey,
        /// Filled quantity (base).
        qty: Value,
        /// Fill price.
        price: Value,
    },
    /// The entry did not happen.
    EntryFailed {
        /// The entry signal.
        entry: SignalKey,
    },
    /// The position closed.
    Closed {
        /// The entry signal of the position.
        entry: SignalKey,
        /// Realised profit after fees, quote currency.
        pnl: Value,
    },
    /// The exit did not happen: the position stays open.
    ExitFailed {
        /// The entry signal of the position.
        entry: SignalKey,
    },
}
