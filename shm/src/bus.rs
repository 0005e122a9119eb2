//! A bus directory: the writer's lock and every stream file of one writer start.

use crate::abi::{
    BarRecord, BboRecord, Book20Record, HealthRecord, SignalRecord, StatsRecord, StrategyRecord,
    SymbolRecord, TopRecord, TradeRecord, STRATEGY_SLOTS,
};
use crate::error::ShmError;
use crate::file::Permissions;
use crate::ring::{ReadFrom, RingReader, RingWriter};
use crate::table::{TableReader, TableWriter};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The default bus directory.
pub const DEFAULT_DIR: &str = "/dev/shm/flowcore";

/// Name of the lock file a writer holds an exclusive `flock` on while it lives.
pub const LOCK_FILE: &str = "writer.lock";

/// Ring capacities (records; powers of two). The stats ring has no entry of its own: see
/// [`Capacities::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// Bars (128-byte slots).
    pub bars: u64,
    /// Tops (128-byte slots).
    pub tops: u64,
    /// Trades (64-byte slots).
    pub trades: u64,
    /// Best bid/ask (64-byte slots).
    pub bbo: u64,
    /// Health (256-byte slots).
    pub health: u64,
    /// Signals (256-byte slots).
    pub signals: u64,
}

impl Default for Capacities {
    /// About 56 MB in all: hours of bars and tops, minutes of trades and bbo at peak rates.
    fn default() -> Self {
        Self {
            bars: 1 << 16,
            tops: 1 << 16,
            trades: 1 << 18,
            bbo: 1 << 18,
            health: 1 << 12,
            signals: 1 << 14,
        }
    }
}

impl Capacities {
    /// The stats ring's capacity: the tops ring's. Both carry at most one record per
    /// instrument per second (stats only for seconds in which a statistic changed), so the
    /// same capacity holds at least as many seconds of stats as of tops, and a bus made
    /// small for one purpose (`flowcore signal`) keeps it small too.
    pub const fn stats(&self) -> u64 {
        self.tops
    }
}

/// Where and how a writer creates its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// The bus directory ([`DEFAULT_DIR`] by default; any tmpfs directory: hugetlbfs is not
    /// supported yet, file sizes are not rounded to its page size).
    pub dir: PathBuf,
    /// Ring sizes.
    pub capacities: Capacities,
    /// File permissions.
    pub permissions: Permissions,
}

impl BusConfig {
    /// Default capacities and owner-only files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            capacities: Capacities::default(),
            permissions: Permissions::default(),
        }
    }
}

/// Every stream of one writer start. Holds the directory's writer lock until dropped.
#[derive(Debug)]
pub struct BusWriter {
    /// Final one-second bars.
    pub bars: RingWriter<BarRecord>,
    /// Per-second book tops and imbalance.
    pub tops: RingWriter<TopRecord>,
    /// Trades.
    pub trades: RingWriter<TradeRecord>,
    /// Venue best bid/ask.
    pub bbo: RingWriter<BboRecord>,
    /// Pipeline health.
    pub health: RingWriter<HealthRecord>,
    /// Strategy signals.
    pub signals: RingWriter<SignalRecord>,
    /// Latest top-20 book per symbol.
    pub book20: TableWriter<Book20Record>,
    /// Per-second venue statistics.
    pub stats: RingWriter<StatsRecord>,
    /// What each strategy id means ([`STRATEGY_SLOTS`] keys, empty until the writer's
    /// strategies are known).
    pub strategies: TableWriter<StrategyRecord>,
    epoch: u64,
    _lock: File,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl BusWriter {
    /// Takes the writer lock of `config.dir` (creating the directory) and creates every
    /// stream file anew with a fresh epoch. `symbols[k]` describes symbol id `k`; the
    /// symbol table is written before any other file, so a reader that finds the streams
    /// finds the symbols of the same epoch. The optional streams
    /// ([`StreamId::is_optional`](crate::abi::StreamId::is_optional)) come next, before the
    /// rest: a reader that opens them last and finds one missing while the others agree on
    /// the epoch knows that the writer does not make it (an older writer), not that it is
    /// still to come.
    pub fn create(config: &BusConfig, symbols: &[SymbolRecord]) -> Result<Self, ShmError> {
        let dir = &config.dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(if config.permissions.group.is_some() {
                0o750
            } else {
                0o700
            })
            .create(dir)
            .map_err(|source| ShmError::Io {
                what: "create directory",
                path: dir.clone(),
                source,
            })?;
        let lock = lock_exclusive(dir, config.permissions)?;
        remove_stale_temporaries(dir);
        let now = now_ns();
        // Strictly newer than the epoch of any file left by an earlier writer, so a reader
        // always sees the epoch change even when clocks are coarse.
        let epoch = now.max(previous_epoch(dir) + 1);
        let p = config.permissions;
        let c = &config.capacities;
        let mut table =
            TableWriter::<SymbolRecord>::create(dir, symbols.len().max(1) as u64, epoch, now, p)?;
        for (k, s) in symbols.iter().enumerate() {
            table.update(k as u32, s)?;
        }
        let strategies = TableWriter::create(dir, STRATEGY_SLOTS, epoch, now, p)?;
        let stats = RingWriter::create(dir, c.stats(), epoch, now, p)?;
        Ok(Self {
            bars: RingWriter::create(dir, c.bars, epoch, now, p)?,
            tops: RingWriter::create(dir, c.tops, epoch, now, p)?,
            trades: RingWriter::create(dir, c.trades, epoch, now, p)?,
            bbo: RingWriter::create(dir, c.bbo, epoch, now, p)?,
            health: RingWriter::create(dir, c.health, epoch, now, p)?,
            signals: RingWriter::create(dir, c.signals, epoch, now, p)?,
            book20: TableWriter::create(dir, symbols.len().max(1) as u64, epoch, now, p)?,
            stats,
            strategies,
            epoch,
            _lock: lock,
        })
    }

    /// This writer start's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Stores `now_ns` as every file's heartbeat but the tables that say what ids mean
    /// (`symbols.table`, `strategies.table`).
    pub fn heartbeat(&self, now_ns: u64) {
        self.bars.heartbeat(now_ns);
        self.tops.heartbeat(now_ns);
        self.trades.heartbeat(now_ns);
        self.bbo.heartbeat(now_ns);
        self.health.heartbeat(now_ns);
        self.signals.heartbeat(now_ns);
        self.book20.heartbeat(now_ns);
        self.stats.heartbeat(now_ns);
    }
}

/// The epoch of the symbol table a previous writer left, or 0.
fn previous_epoch(dir: &Path) -> u64 {
    crate::file::MappedFile::open::<SymbolRecord>(dir).map_or(0, |f| f.header().writer_epoch)
}

fn remove_stale_temporaries(dir: &Path) {
    // Only the lock holder creates temporaries, so any left are from a dead writer.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The lock file, readable by the bus's group when it has one (0640, like the stream
/// files): a reader of that group probes the writer's liveness through it, and a lock file
/// it cannot open reads as a dead writer.
fn open_lock(dir: &Path, permissions: Permissions) -> Result<File, ShmError> {
    let path = dir.join(LOCK_FILE);
    let mode = if permissions.group.is_some() {
        0o640
    } else {
        0o600
    };
    let io = |what| {
        let path = path.clone();
        move |source| ShmError::Io { what, path, source }
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(&path)
        .map_err(io("open"))?;
    // A lock file left by an earlier writer keeps its mode and owner: set both.
    if let Some(gid) = permissions.group {
        std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(io("chown"))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io("chmod"))?;
    Ok(file)
}

fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: a plain system call on a descriptor we own; no pointers.
    unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

/// The writer lock. A reader probing liveness holds a shared lock for an instant, so a
/// starting writer retries for a while before it concludes another writer is alive.
fn lock_exclusive(dir: &Path, permissions: Permissions) -> Result<File, ShmError> {
    let file = open_lock(dir, permissions)?;
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        if flock(&file, libc::LOCK_EX) {
            return Ok(file);
        }
        if Instant::now() >= deadline {
            return Err(ShmError::WriterActive(dir.to_path_buf()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a live process holds the writer lock of `dir`. The kernel drops the lock when
/// its holder dies, however it dies: no pid files, no stale state.
pub fn writer_alive(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    if flock(&file, libc::LOCK_SH) {
        flock(&file, libc::LOCK_UN);
        false
    } else {
        true
    }
}

/// Every stream of a bus, for reading.
#[derive(Debug)]
pub struct BusReader {
    /// What each symbol id means.
    pub symbols: Vec<SymbolRecord>,
    /// Bars.
    pub bars: RingReader<BarRecord>,
    /// Tops.
    pub tops: RingReader<TopRecord>,
    /// Trades.
    pub trades: RingReader<TradeRecord>,
    /// Venue best bid/ask.
    pub bbo: RingReader<BboRecord>,
    /// Health.
    pub health: RingReader<HealthRecord>,
    /// Signals.
    pub signals: RingReader<SignalRecord>,
    /// Latest top-20 books.
    pub book20: TableReader<Book20Record>,
    /// Venue statistics; `None` on the bus of a writer older than this stream.
    pub stats: Option<RingReader<StatsRecord>>,
    /// Strategy names; `None` on the bus of a writer older than this table. Read it with
    /// [`BusReader::strategy`] when a signal arrives: the writer fills it after the bus is
    /// created, before its first signal.
    pub strategies: Option<TableReader<StrategyRecord>>,
    dir: PathBuf,
}

/// `Ok(None)` for an optional stream whose file is missing (an older writer).
fn optional<T>(opened: Result<T, ShmError>) -> Result<Option<T>, ShmError> {
    match opened {
        Ok(t) => Ok(Some(t)),
        Err(ShmError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl BusReader {
    /// Opens every stream of `dir`, each positioned at `from`. Fails with
    /// [`ShmError::MixedEpochs`] while a writer is replacing the files; retry then.
    pub fn open(dir: &Path, from: ReadFrom) -> Result<Self, ShmError> {
        let mut table = TableReader::<SymbolRecord>::open(dir)?;
        let symbols = (0..table.capacity() as u32)
            .filter_map(|k| table.read(k).map(|(s, _)| s))
            .collect();
        let reader = Self {
            symbols,
            bars: RingReader::open(dir, from)?,
            tops: RingReader::open(dir, from)?,
            trades: RingReader::open(dir, from)?,
            bbo: RingReader::open(dir, from)?,
            health: RingReader::open(dir, from)?,
            signals: RingReader::open(dir, from)?,
            book20: TableReader::open(dir)?,
            // Last: the writer creates them before the others (see `BusWriter::create`).
            stats: optional(RingReader::open(dir, from))?,
            strategies: optional(TableReader::open(dir))?,
            dir: dir.to_path_buf(),
        };
        let epoch = table.header().writer_epoch;
        let epochs = [
            reader.bars.header().writer_epoch,
            reader.tops.header().writer_epoch,
            reader.trades.header().writer_epoch,
            reader.bbo.header().writer_epoch,
            reader.health.header().writer_epoch,
            reader.signals.header().writer_epoch,
            reader.book20.header().writer_epoch,
        ];
        let optional = [
            reader.stats.as_ref().map(|r| r.header().writer_epoch),
            reader.strategies.as_ref().map(|t| t.header().writer_epoch),
        ];
        if epochs
            .iter()
            .chain(optional.iter().flatten())
            .any(|&e| e != epoch)
        {
            return Err(ShmError::MixedEpochs(dir.to_path_buf()));
        }
        Ok(reader)
    }

    /// [`Self::open`], retrying while a writer is creating the bus (files missing or of
    /// mixed epochs) for up to `wait`; a file that is there but wrong fails at once.
    ///
    /// # Errors
    /// The last [`ShmError`] once `wait` has passed, or at once for a malformed file.
    pub fn open_waiting(dir: &Path, from: ReadFrom, wait: Duration) -> Result<Self, ShmError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::open(dir, from) {
                Err(ShmError::Io { .. } | ShmError::MixedEpochs(_))
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    /// The writer epoch of the files opened.
    pub fn epoch(&self) -> u64 {
        self.bars.header().writer_epoch
    }

    /// The symbol of an id, if the table has it.
    pub fn symbol(&self, id: u32) -> Option<&SymbolRecord> {
        self.symbols.get(id as usize)
    }

    /// The strategy of an id as the table holds it now, if it has it (never for an id
    /// outside the table, or on a bus without one).
    pub fn strategy(&mut self, id: u32) -> Option<StrategyRecord> {
        let (record, _) = self.strategies.as_mut()?.read(id)?;
        Some(record)
    }

    /// Whether the writer of this bus is alive (see [`writer_alive`]).
    pub fn writer_alive(&self) -> bool {
        writer_alive(&self.dir)
    }

    /// The bus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A NUL-padded ABI string as text (up to the first NUL).
pub fn text(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

/// `s` NUL-padded into a fixed ABI field (cut at the field's size).
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}
