//! The `flowcore` command-line tool: argument parsing and config loading (`main.rs`,
//! [`instruments`]), and the commands that are only wiring and printing: [`demo`] (the
//! simulator, a live run and a bus reader together), [`shm_tail`] (a bus printed live),
//! [`manual_signal`] (`flowcore signal`), [`backtest`] (`flowcore backtest`, its HTML
//! [`report`]) and [`bench_e2e`] (`flowcore bench e2e`: processes against a conventional
//! stack).
//! A library as well, so tests drive the same code.
//!
//! Owns nothing another crate needs: the pipeline is `flowcore-runtime`, the outputs
//! `flowcore-outputs`, the simulator `flowcore-sim`. May depend on every crate; none
//! depends on it except the tests and benches.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod bench_e2e;
pub mod demo;
pub mod instruments;
pub mod manual_signal;
pub mod report;
pub mod shm_tail;
pub mod strategy_stats;
pub mod sweep;
