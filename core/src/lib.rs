//! flowcore's market-data core: no I/O, no clocks, no threads.
//!
//! Exact decimal mantissas ([`decimal`]), the instrument table ([`instrument`]), normalised
//! events ([`event`]), order books ([`book`]) with venue sequencing ([`sequencer`]), trade continuity ([`trade_seq`]),
//! one-second CVD bars ([`bars`]), imbalance ([`imbalance`]) and the engine that ties them
//! together on the core thread ([`engine`]). Everything here takes events and returns
//! events, so live and replay runs compute the same thing.
//!
//! May depend on no other crate of ours, and on computation crates only (`fixed`,
//! `thiserror`): no sockets, files, threads or clocks (checked by `tests/tests/layout.rs`).
#![forbid(unsafe_code)]

pub mod bars;
pub mod book;
pub mod counters;
pub mod decimal;
pub mod engine;
pub mod event;
pub mod imbalance;
pub mod indicators;
pub mod instrument;
pub mod sequencer;
pub mod strategy;
pub mod timeframe;
pub mod trade_seq;
pub mod trade_window;
pub mod venue_stats;
