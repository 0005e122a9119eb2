//! Strategies: the [`Strategy`] interface, the [`Signal`] it makes, the settings it is
//! built from ([`params`]), the classic methods ([`classic`]), SqueezeFlow's CVD method
//! ([`squeeze`]), the order-book "smart money" method ([`smart_money`]) and the [`StrategySet`] that
//! runs a configuration's instances on the core thread. No I/O: the same calls come from
//! a live run, a replay and a backtest.

pub mod classic;
mod join;
pub mod params;
mod set;
mod signal;
pub mod smart_money;
pub mod squeeze;

pub use join::{SeriesJoin, JOIN_STEPS};
pub use params::{ParamError, ParamValue, Params};
pub use set::{Constructor, SignalCounters, StrategySet, StrategySpec, REGISTRY};
pub use signal::{
    fraction_mantissa, Action, Signal, Strategy, StrategyId, SymbolContext, Tier,
    SIGNAL_FRACTION_SCALE,
};
