//! flowcore's shared-memory bus: market state and signals for any process, no broker.
//!
//! A writer (`flowcore run` or `flowcore replay --shm DIR`) owns a directory of files
//! (`/dev/shm/flowcore` by default): append-only rings of bars, tops, trades, best bid/ask,
//! health, signals and venue statistics, and latest-value tables of symbols, strategies and
//! top-20 books. Each record sits in a 64-byte aligned slot guarded by a sequence stamp, so
//! readers in any language read without locks and without ever writing shared memory. The byte-level contract is
//! `shm/ABI.md`; [`abi`] is the same as code, checked at compile time.
//!
//! May depend on `flowcore-core` only (the engine it publishes from): never on the feeds.
//!
//! ```no_run
//! use flowcore_shm::{BusReader, Idle, ReadFrom};
//! let mut bus = BusReader::open("/dev/shm/flowcore".as_ref(), ReadFrom::Latest)?;
//! while let Some(bar) = bus.bars.read_blocking(Idle::Yield, None) {
//!     let sym = bus.symbol(bar.symbol_id).map(|s| flowcore_shm::text(&s.symbol));
//!     println!("{:?} {} cvd {}", sym, bar.ts_ms, bar.cvd);
//! }
//! # Ok::<(), flowcore_shm::ShmError>(())
//! ```

pub mod abi;
mod bus;
mod error;
mod file;
mod idle;
pub mod publish;
mod ring;
pub mod seqlock;
mod table;

pub use bus::{
    padded, text, writer_alive, BusConfig, BusReader, BusWriter, Capacities, DEFAULT_DIR, LOCK_FILE,
};
pub use error::ShmError;
pub use file::{MappedFile, Permissions};
pub use idle::Idle;
pub use publish::Publisher;
pub use ring::{ReadFrom, ReaderStats, RingReader, RingWriter};
pub use table::{TableReader, TableWriter};
