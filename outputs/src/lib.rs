//! Where the core thread's results go, the same for a live run, a replay and (later) a
//! backtest: bar, tops and health rows as JSONL ([`jsonl`]), health per feed once a second
//! ([`health`]), and the sink that writes both and publishes to the shared-memory bus
//! ([`sink`]).
//!
//! ```text
//! Engine --bars, tops, events--> CoreSink --> JSONL writers (bars, tops, health)
//!                                         \--> flowcore_shm::Publisher (--shm DIR)
//! ```
//! Owns: the JSONL row formats (docs/REPLAY.md specifies them), the health records.
//! May depend on `flowcore-core` and `flowcore-shm`; never on the feeds (`flowcore-feeds`),
//! the runtime or the CLI: outputs see engine results and counters, not venues' bytes.
#![forbid(unsafe_code)]

pub mod health;
pub mod jsonl;
pub mod sink;

pub use sink::{CoreSink, OutputError, OutputFiles, OutputPaths, Outputs};
