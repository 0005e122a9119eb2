//! The pipeline that turns venues' bytes into engine results, live and from recordings,
//! for every command that runs it (`run`, `replay`, `demo`, and the gateway, backtests and
//! end-to-end benchmark to come):
//!
//! ```text
//! live:   feed threads (feed/: io_uring | tokio, link, REST) --rtrb, a batch per message--+
//! replay: recordings (feeds::recording) --reader/parser thread--rtrb, batches (handoff)----+
//!                                                                                          v
//!                            core thread: flowcore_core::Engine --> flowcore_outputs::CoreSink
//! ```
//! Owns: the live feed runtime ([`feed`], [`recorder`], [`clock`], [`pin`]), the hand-off
//! between threads ([`handoff`], and replay's parse shared by two threads: [`shared_parse`]), the run's configuration schema ([`config`]), the live run
//! ([`live`]) and the replay ([`replay`]). Both drive the same engine with the same events
//! in the same order, which is what makes a replay of a `--record`ing equal the run.
//!
//! May depend on `flowcore-core`, `flowcore-feeds`, `flowcore-shm` and `flowcore-outputs`;
//! never on the gateways, the simulator or the CLI (`flowcore-tools`).
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
mod feed;
pub mod handoff;
pub mod live;
pub mod pin;
pub mod recorder;
pub mod replay;
pub mod shared_parse;
pub mod stages;
pub mod strategies;
