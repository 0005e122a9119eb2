//! The exchange simulator behind `flowcore sim`, its fault plans and the synthetic Bybit
//! stream: a Binance and Bybit market on loopback serving recordings over real WebSockets
//! and HTTP, for the CLI, the tests and the benches.
//!
//! ```text
//! recordings (feeds::recording) --> server (play, paced) --> WebSocket / REST clients
//!                  faults: a plan of drops, gaps, stalls... --^
//! bybit_synth: a seeded synthetic Bybit recording, for venues with none bundled
//! ```
//! Owns: [`server`] (the simulator, with the Binance futures statistics it synthesises:
//! mark price and open interest), [`faults`] (what it injects), [`bybit_synth`].
//! May depend on `flowcore-core` and `flowcore-feeds` (dialects, transports' TLS and
//! socket helpers, the recording format); never on the bus (`flowcore-shm`), the runtime,
//! the outputs or the CLI: a simulator is an exchange, it knows nothing of our pipeline.
#![forbid(unsafe_code)]

mod bybit;
pub mod bybit_synth;
pub mod faults;
mod market_flow;
pub mod server;
mod state;
mod venue_stats;

pub use server::{run_sim, SimOptions, DEFAULT_CLIENT_BUFFER};
pub use state::SimSummary;
