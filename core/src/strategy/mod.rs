//! Strategies: the [`Strategy`] interface, the [`Signal`] it makes, the settings it is
//! built from ([`params`]), the classic methods ([`classic`]) and the [`StrategySet`] that
//! runs a configuration's instances on the core thread. No I/O: the same calls come from
//! a live run, a replay and a backtest.

pub mod classic;
pub mod params;
mod set;
mod signal;

pub use params::{ParamError, ParamValue, Params};
pub use set::{Constructor, SignalCounters, StrategySet, StrategySpec, REGISTRY};
pub use signal::{
    fraction_mantissa, Action, Signal, Strategy, StrategyId, Tier, SIGNAL_FRACTION_SCALE,
};
