//! The `flowcore` command-line tool, as a library so tests and benches drive the same code.
#![forbid(unsafe_code)]

mod backoff;
pub mod bybit_synth;
pub mod demo;
mod feed_uring;
pub mod handoff;
pub mod health;
pub mod instruments;
pub mod jsonl;
mod link;
pub mod outputs;
pub mod recorder;
pub mod recording;
pub mod replay;
mod rest;
pub mod run;
pub mod run_config;
pub mod shm_tail;
pub mod sim;
pub mod sim_faults;
