//! The execution gateway (risk limits, sizing, executors, the FreqTrade bridge): not built
//! yet; the gateway issue replaces this placeholder with the crate's skeleton.
//!
//! May depend on `flowcore-core` and `flowcore-shm` (signals and market state arrive on the
//! bus); never on the feeds, the runtime or the CLI.
#![forbid(unsafe_code)]
