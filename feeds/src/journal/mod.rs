//! The binary journal `flowcore run --record` writes on a bare-metal box: every frame,
//! REST answer and session marker as received, with its receive time and the connection
//! (stream) it came on, in fixed-size preallocated segments written through a memory map.
//!
//! ```text
//! feed threads --(byte rings)--> recorder thread --> JournalWriter --> 00000000.fcj
//!                                                      | seal, rotate   00000001.fcj
//!                                                      '--> zstd thread 00000000.fcj.zst
//! replay / backtest <-- StreamReader (one per stream) <-- JournalIndex (checked once)
//! ```
//!
//! The layout is in [`format`]. A journal is read as streams: each is one connection's
//! lines, the same lines a text recording file holds, so replay treats a stream like a
//! file (see `recording::Source::Journal`).
//!
//! ```
//! use flowcore_feeds::journal::{JournalIndex, JournalOptions, JournalWriter, RecordKind};
//! let dir = std::env::temp_dir().join(format!("journal-doc-{}", std::process::id()));
//! let (mut journal, repaired) = JournalWriter::open(&dir, JournalOptions::default()).unwrap();
//! assert!(repaired.is_none());
//! let spot = journal.open_stream("binance-spot_btcusdt", 1).unwrap();
//! journal.append(RecordKind::Frame, spot, 2, [b"{\"e\":\"trade\"}", b""]).unwrap();
//! journal.finish().unwrap();
//!
//! let index = JournalIndex::open(&dir).unwrap();
//! let mut lines = index.stream(index.streams()[0].id);
//! assert_eq!(lines.next_line().unwrap(), Some((2, &b"{\"e\":\"trade\"}"[..])));
//! assert_eq!(lines.next_line().unwrap(), None);
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```
#![allow(unsafe_code)] // mapping the open segment (writer.rs), each block with its reason

mod error;
pub mod format;
mod reader;
mod writer;

pub use error::JournalError;
pub use format::{is_journal, RecordKind};
pub use reader::{JournalIndex, StreamInfo, StreamReader, TornTail};
pub use writer::{JournalOptions, JournalStats, JournalWriter, Repair, MIN_SEGMENT_BYTES};

#[cfg(test)]
mod tests;
