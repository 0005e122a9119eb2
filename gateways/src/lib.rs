//! The execution gateway: reads signals from one or more shared-memory buses, decides on
//! each with a risk engine and a sizing method, journals every decision and order intent,
//! and carries orders out through FreqTrade's REST API, paper fills, or a decision log.
//!
//! Sans-IO where it can be ([`risk`], [`sizing`], [`paper`], [`market`]: [`backtest`]
//! runs the same code); the I/O lives in [`source`] (buses), [`journal`], [`http`] and
//! [`freqtrade`] with [`freqtrade_events`], wired by [`gateway::run`].
//!
//! May depend on `flowcore-core` and `flowcore-shm` (signals and market state arrive on the
//! bus); never on the feeds, the runtime or the CLI.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod config;
pub mod executor;
pub mod freqtrade;
pub mod freqtrade_events;
pub mod gateway;
pub mod http;
pub mod journal;
pub mod market;
pub mod order;
pub mod paper;
pub mod risk;
pub mod sizing;
pub mod source;

pub use config::GatewayConfig;
pub use gateway::{run, GatewaySummary, RunControl};
