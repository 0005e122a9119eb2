//! The TOML configuration of `flowcore run`: feeds, pinning, idle strategy.
//!
//! ```toml
//! [pipeline]                  # optional
//! mode = "threaded"           # threaded (the default: a thread per feed, and the core thread)
//!                             # | inline (every feed, the engine and the publisher on the core
//!                             # thread: for a machine of 2 cores or a venue or two; io_uring only)
//! idle = "spin"               # spin (the default: pinned production) | spin-yield | park
//! transport = "io_uring"      # io_uring (the default; tokio where io_uring is unavailable) | tokio
//! uring_recv = "multishot"    # multishot (provided buffers) | plain (one receive per connection)
//! uring_task_work = "deferred" # deferred (an io_uring_enter per batch of arrivals: the lowest
//!                             # latency measured) | signalled (no syscall per message; the
//!                             # kernel interrupts the spinning thread instead)
//! max_message = 16777216      # largest WebSocket message accepted, bytes (both transports)
//! core_cpu = 1                # pin the core thread (books, bars); absent: not pinned
//! ring_capacity = 65536       # events per feed ring
//! shm = "/dev/shm/flowcore"   # publish to the shared-memory bus (shm/ABI.md); absent: off
//! member_timeout_ms = 10000   # an aggregate goes on without a member silent this long
//!                             # (receive time; docs/REPLAY.md "Aggregates")
//!
//! [record]                    # optional: what --record DIR (or dir here) writes
//! format = "journal"          # journal (the default: preallocated mapped segments, see
//!                             # flowcore_feeds::journal) | text (`<ns> <json>` lines, a file a connection)
//! segment_mb = 256            # journal segment size; at least twice pipeline.max_message
//! compress = false            # zstd each journal segment once sealed
//! dir = "recordings/today"    # optional: record every run of this config
//!
//! [[feed]]
//! venue = "binance-usdm"     # binance-spot | binance-usdm | binance-coinm | bybit-spot | bybit-linear
//! symbols = ["BTCUSDT"]
//! ws_url = "wss://fstream.binance.com/public"   # optional, the venue's by default
//! rest_url = "https://fapi.binance.com"         # optional
//! tls_ca_file = "local-ca.pem"                  # optional extra trusted CA
//! streams = ["trade", "bookTicker", "depth@0ms"] # optional, these are the futures defaults
//!                                               # (Bybit: topics, ["orderbook.50", "publicTrade"])
//! cpu = 0                                       # optional pin of this feed's thread
//! api_key_env = "BINANCE_API_KEY"  # optional: the trade history (backfill after a disconnect)
//!                                  # needs a key on futures; or api_key = "..." in the file
//! stall_timeout_ms = 10000         # optional: silence (no data, no ping, no pong) after which
//!                                  # a connection is dropped; a ping probes it halfway
//! rotate_after_ms = 85500000       # optional: replace each connection, make before break,
//!                                  # this long after it opened (default: 15 min before the
//!                                  # venue's 24 h limit; Bybit: never, it sets no limit)
//! ping_interval_ms = 20000         # optional, Bybit: the client's {"op":"ping"} interval
//! count_block_trades = false       # optional, Bybit: block trades (BT) in bars (replay
//!                                  # the recording with --count-block-trades to match)
//! open_interest_s = 10             # optional, Binance futures: poll each symbol's REST open
//!                                  # interest this often (default: never)
//!
//! [[feed]]                         # venue statistics: add "markPrice@1s" to a COIN-M feed's
//! venue = "binance-usdm"           # streams; USD-M serves it only on /market, so it takes a
//! symbols = ["BTCUSDT"]            # feed of its own there, whose disconnects (a feed of no
//! ws_url = "wss://fstream.binance.com/market"   # trade or book stream) break no book
//! streams = ["markPrice@1s"]
//! ```

use crate::strategies::{parse_strategies, StrategyConfig};
use anyhow::{bail, Context};
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_feeds::binance::session::{ROTATE_AHEAD, STALL_AFTER};
use flowcore_feeds::bybit::session::PING_EVERY;
use flowcore_feeds::journal::JournalOptions;
use flowcore_feeds::transport::tungstenite::MAX_MESSAGE;
use flowcore_feeds::transport::uring::TaskWork;
use flowcore_feeds::venue_session::VenueSession;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a thread does when it finds nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdleStrategy {
    /// Busy-poll: lowest latency, burns the core (production, pinned).
    Spin,
    /// Spin a while, then yield the core to others.
    SpinYield,
    /// Sleep briefly (200 µs): for tests, CI and shared machines.
    Park,
}

impl IdleStrategy {
    /// Waits once; `idle_rounds` counts consecutive empty polls.
    #[inline]
    pub fn wait(self, idle_rounds: u32) {
        match self {
            IdleStrategy::Spin => std::hint::spin_loop(),
            IdleStrategy::SpinYield if idle_rounds < 1000 => std::hint::spin_loop(),
            IdleStrategy::SpinYield => std::thread::yield_now(),
            IdleStrategy::Park => std::thread::park_timeout(std::time::Duration::from_micros(200)),
        }
    }
}

/// How the pipeline is laid out on threads: `pipeline.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineMode {
    /// A thread per `[[feed]]` (reading and parsing) handing events to the core thread
    /// (engine, strategies, outputs) through rings: the feeds and the engine work at once,
    /// each pinned to a core of its own.
    Threaded,
    /// Every feed, the engine and the publisher on one thread (the core thread): no
    /// hand-off between cores and no thread waking another. For a machine with fewer cores
    /// than feeds plus one, where spinning threads share cores and wait on scheduler ticks.
    /// io_uring only.
    Inline,
}

/// How feed threads read their sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TransportKind {
    /// io_uring, no async runtime (the default).
    #[serde(rename = "io_uring")]
    IoUring,
    /// tokio-tungstenite on a current-thread runtime per feed: the portable path.
    #[serde(rename = "tokio")]
    Tokio,
}

/// How the io_uring transport receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UringRecv {
    /// Multishot receives into a ring of provided buffers.
    Multishot,
    /// One plain receive at a time into each connection's own buffer.
    Plain,
}

/// How the io_uring transport's completions are finished: `pipeline.uring_task_work`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UringTaskWork {
    /// Deferred to the thread's next `io_uring_enter` (an enter per batch of arrivals).
    Deferred,
    /// Signalled to the thread (no syscall; an interrupt of the spinning thread instead).
    Signalled,
}

impl UringTaskWork {
    /// The transport's setting.
    pub fn task_work(self) -> TaskWork {
        match self {
            UringTaskWork::Deferred => TaskWork::Deferred,
            UringTaskWork::Signalled => TaskWork::Signalled,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    pipeline: RawPipeline,
    #[serde(default)]
    feed: Vec<RawFeed>,
    #[serde(default)]
    record: RawRecord,
    /// Read by [`crate::strategies::parse_strategies`].
    #[serde(default)]
    strategy: Vec<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    mode: Option<PipelineMode>,
    idle: Option<IdleStrategy>,
    core_cpu: Option<usize>,
    ring_capacity: Option<usize>,
    snapshot_limit: Option<u32>,
    shm: Option<PathBuf>,
    transport: Option<TransportKind>,
    uring_recv: Option<UringRecv>,
    uring_task_work: Option<UringTaskWork>,
    max_message: Option<usize>,
    member_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    format: Option<RecordFormatName>,
    segment_mb: Option<usize>,
    compress: Option<bool>,
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RecordFormatName {
    Journal,
    Text,
}

/// What `--record` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// The binary journal (the default).
    Journal(JournalOptions),
    /// The text recording format, a file per connection.
    Text,
}

/// The `[record]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// The format.
    pub format: RecordFormat,
    /// Record every run here (`--record DIR` overrides it).
    pub dir: Option<PathBuf>,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            format: RecordFormat::Journal(JournalOptions::default()),
            dir: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    venue: String,
    symbols: Vec<String>,
    ws_url: Option<String>,
    rest_url: Option<String>,
    tls_ca_file: Option<PathBuf>,
    streams: Option<Vec<String>>,
    cpu: Option<usize>,
    api_key: Option<String>,
    api_key_env: Option<String>,
    stall_timeout_ms: Option<u64>,
    rotate_after_ms: Option<u64>,
    ping_interval_ms: Option<u64>,
    count_block_trades: Option<bool>,
    open_interest_s: Option<u64>,
}

/// One `[[feed]]`: a venue and its symbols, one connection per symbol.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// The venue.
    pub venue: Venue,
    /// The venue's endpoints and session.
    pub session: VenueSession,
    /// Symbols, upper case, each known to the instrument table.
    pub symbols: Vec<String>,
    /// WebSocket base URL.
    pub ws_url: String,
    /// REST base URL.
    pub rest_url: String,
    /// Extra trusted CA (PEM), resolved against the config file's folder.
    pub tls_ca_file: Option<PathBuf>,
    /// Streams per symbol (`trade`, `bookTicker`, `depth@100ms`...).
    pub streams: Vec<String>,
    /// Pin this feed's thread to that core.
    pub cpu: Option<usize>,
    /// Sent as `X-MBX-APIKEY` with trade-history requests (public market data needs no
    /// secret; futures history needs a key).
    pub api_key: Option<String>,
    /// Silence after which a connection is dropped as stalled.
    pub stall_timeout: Duration,
    /// Age at which a connection is replaced, make before break (`Duration::MAX`: never).
    pub rotate_after: Duration,
    /// Interval of the client's own pings (Bybit).
    pub ping_interval: Duration,
    /// Count block trades (`BT: true`, Bybit) as taker flow in bars.
    pub count_block_trades: bool,
    /// Poll each symbol's open interest over REST this often (Binance futures; `None`:
    /// never). The answers are venue statistics, recorded like snapshots.
    pub open_interest_every: Option<Duration>,
}

impl FeedConfig {
    /// True when the feed's streams carry trades or the book, whose continuity a broken
    /// connection ends. A feed of statistics only (`markPrice@1s` on USD-M's `/market`
    /// path, beside the `/public` feed of the same symbols) breaks nothing when it drops.
    pub fn carries_market_flow(&self) -> bool {
        self.streams.iter().any(|s| {
            let kind = s.split('@').next().unwrap_or("");
            matches!(kind, "trade" | "aggTrade" | "bookTicker" | "depth")
                || kind.starts_with("orderbook")
                || kind.starts_with("publicTrade")
        })
    }
}

/// The whole run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Feeds, each its own thread (threaded mode).
    pub feeds: Vec<FeedConfig>,
    /// Threads: a thread per feed, or all on the core thread.
    pub mode: PipelineMode,
    /// Idle strategy of every pipeline thread.
    pub idle: IdleStrategy,
    /// Pin the core thread to that core.
    pub core_cpu: Option<usize>,
    /// Events per feed ring (a power of two is not required).
    pub ring_capacity: usize,
    /// Levels per side asked of REST snapshots.
    pub snapshot_limit: u32,
    /// Publish to the shared-memory bus in this directory.
    pub shm: Option<PathBuf>,
    /// How feed threads read their sockets.
    pub transport: TransportKind,
    /// How the io_uring transport receives.
    pub uring_recv: UringRecv,
    /// How the io_uring transport's completions are finished.
    pub uring_task_work: UringTaskWork,
    /// Largest WebSocket message accepted, in bytes.
    pub max_message: usize,
    /// The `[[strategy]]` tables.
    pub strategies: Vec<StrategyConfig>,
    /// The `[record]` table.
    pub record: RecordConfig,
    /// How long an aggregate waits for a silent member (receive time, ms).
    pub member_timeout_ms: i64,
}

impl RunConfig {
    /// Parses and checks a configuration; relative paths are taken from `base_dir`.
    ///
    /// # Errors
    /// A message that names the key and the problem.
    pub fn parse(text: &str, base_dir: &Path, table: &InstrumentTable) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text).context("run configuration")?;
        let strategies = parse_strategies(&raw.strategy).context("run configuration")?;
        if raw.feed.is_empty() {
            bail!("run configuration: no [[feed]]: at least one feed is needed");
        }
        let mut feeds = Vec::new();
        for (i, f) in raw.feed.into_iter().enumerate() {
            let at = |key: &str| format!("feed[{i}].{key}");
            let Some(venue) = Venue::from_name(&f.venue) else {
                let names: Vec<_> = Venue::ALL.iter().map(|v| v.name()).collect();
                bail!(
                    "{}: unknown venue {:?}, expected one of {}",
                    at("venue"),
                    f.venue,
                    names.join(", ")
                );
            };
            if f.symbols.is_empty() {
                bail!("{}: empty, name at least one symbol", at("symbols"));
            }
            let symbols: Vec<String> = f.symbols.iter().map(|s| s.to_ascii_uppercase()).collect();
            for s in &symbols {
                if table.find(venue, s.as_bytes()).is_none() {
                    bail!(
                        "{}: {s:?} is not in the instrument table for {venue}",
                        at("symbols")
                    );
                }
            }
            let m = VenueSession::of(venue);
            let streams = match f.streams {
                Some(s) if s.is_empty() => bail!("{}: empty", at("streams")),
                Some(s) => s,
                None => m.default_streams().iter().map(|s| s.to_string()).collect(),
            };
            for (key, url, schemes) in [
                ("ws_url", &f.ws_url, ["ws://", "wss://"]),
                ("rest_url", &f.rest_url, ["http://", "https://"]),
            ] {
                if let Some(url) = url {
                    if !schemes.iter().any(|s| url.starts_with(s)) {
                        bail!(
                            "{}: {url:?} must start with {}",
                            at(key),
                            schemes.join(" or ")
                        );
                    }
                }
            }
            let tls_ca_file = f.tls_ca_file.map(|p| base_dir.join(p));
            if let Some(p) = &tls_ca_file {
                if !p.is_file() {
                    bail!(
                        "{}: {} is not a readable file",
                        at("tls_ca_file"),
                        p.display()
                    );
                }
            }
            let api_key = match (f.api_key, f.api_key_env) {
                (Some(_), Some(_)) => {
                    bail!("{}: give api_key or api_key_env, not both", at("api_key"))
                }
                (Some(key), None) => Some(key),
                (None, Some(var)) => Some(std::env::var(&var).with_context(|| {
                    format!(
                        "{}: environment variable {var} is not set",
                        at("api_key_env")
                    )
                })?),
                (None, None) => None,
            };
            let stall_timeout = f
                .stall_timeout_ms
                .map_or(STALL_AFTER, Duration::from_millis);
            if stall_timeout < Duration::from_millis(100) {
                bail!("{}: at least 100 ms", at("stall_timeout_ms"));
            }
            let lifetime = m.connection_lifetime().unwrap_or(Duration::MAX);
            let rotate_after = match (f.rotate_after_ms, m.connection_lifetime()) {
                (Some(ms), _) => Duration::from_millis(ms),
                (None, Some(lifetime)) => lifetime.saturating_sub(ROTATE_AHEAD),
                // No lifetime: never rotated.
                (None, None) => Duration::MAX,
            };
            if rotate_after < Duration::from_secs(1)
                || (rotate_after >= lifetime && lifetime != Duration::MAX)
            {
                bail!(
                    "{}: {} ms is outside 1 s up to the venue's connection lifetime ({} s)",
                    at("rotate_after_ms"),
                    rotate_after.as_millis(),
                    lifetime.as_secs()
                );
            }
            let count_block_trades = f.count_block_trades.unwrap_or(false);
            if count_block_trades && matches!(m, VenueSession::Binance(_)) {
                bail!(
                    "{}: {venue}'s trade stream has no block trades",
                    at("count_block_trades")
                );
            }
            let ping_interval = f.ping_interval_ms.map_or(PING_EVERY, Duration::from_millis);
            if ping_interval < Duration::from_millis(100) {
                bail!("{}: at least 100 ms", at("ping_interval_ms"));
            }
            let open_interest_every = match f.open_interest_s {
                None | Some(0) => None,
                Some(secs) => {
                    let VenueSession::Binance(b) = m else {
                        bail!(
                            "{}: {venue} sends open interest on its stream (tickers), no polling",
                            at("open_interest_s")
                        );
                    };
                    if b.open_interest_path.is_none() {
                        bail!("{}: {venue} has no open interest", at("open_interest_s"));
                    }
                    Some(Duration::from_secs(secs))
                }
            };
            feeds.push(FeedConfig {
                session: m,
                venue,
                symbols,
                ws_url: f.ws_url.unwrap_or_else(|| m.ws_url().to_string()),
                rest_url: f.rest_url.unwrap_or_else(|| m.rest_url().to_string()),
                tls_ca_file,
                streams,
                cpu: f.cpu,
                api_key,
                stall_timeout,
                rotate_after,
                ping_interval,
                count_block_trades,
                open_interest_every,
            });
        }
        let ring_capacity = raw.pipeline.ring_capacity.unwrap_or(1 << 16);
        if ring_capacity < 1024 {
            bail!("pipeline.ring_capacity: {ring_capacity} is too small (at least 1024 events)");
        }
        let snapshot_limit = raw.pipeline.snapshot_limit.unwrap_or(1000);
        if !(1..=5000).contains(&snapshot_limit) {
            bail!("pipeline.snapshot_limit: {snapshot_limit} is outside 1..=5000");
        }
        let max_message = raw.pipeline.max_message.unwrap_or(MAX_MESSAGE);
        if !(1024..=1 << 30).contains(&max_message) {
            bail!("pipeline.max_message: {max_message} is outside 1024..=1073741824 bytes");
        }
        let record = parse_record(raw.record, base_dir, max_message)?;
        let mode = raw.pipeline.mode.unwrap_or(PipelineMode::Threaded);
        let transport = raw.pipeline.transport.unwrap_or(TransportKind::IoUring);
        if mode == PipelineMode::Inline {
            if transport != TransportKind::IoUring {
                bail!("pipeline.mode: \"inline\" runs on io_uring only (pipeline.transport = \"tokio\")");
            }
            if let Some(i) = feeds.iter().position(|f| f.cpu.is_some()) {
                bail!(
                    "feed[{i}].cpu: with pipeline.mode = \"inline\" every feed runs on the core \
                     thread; pin it with pipeline.core_cpu"
                );
            }
        }
        let member_timeout_ms = raw
            .pipeline
            .member_timeout_ms
            .map_or(flowcore_core::bars::MEMBER_TIMEOUT_MS, |ms| ms as i64);
        if !(100..=86_400_000).contains(&member_timeout_ms) {
            bail!("pipeline.member_timeout_ms: {member_timeout_ms} is outside 100..=86400000");
        }
        Ok(Self {
            member_timeout_ms,
            feeds,
            mode,
            max_message,
            strategies,
            record,
            idle: raw.pipeline.idle.unwrap_or(IdleStrategy::Spin),
            core_cpu: raw.pipeline.core_cpu,
            ring_capacity,
            snapshot_limit,
            shm: raw.pipeline.shm,
            transport,
            uring_recv: raw.pipeline.uring_recv.unwrap_or(UringRecv::Multishot),
            uring_task_work: raw
                .pipeline
                .uring_task_work
                .unwrap_or(UringTaskWork::Deferred),
        })
    }
}

fn parse_record(
    raw: RawRecord,
    base_dir: &Path,
    max_message: usize,
) -> anyhow::Result<RecordConfig> {
    let dir = raw.dir.map(|d| base_dir.join(d));
    let format = match raw.format.unwrap_or(RecordFormatName::Journal) {
        RecordFormatName::Text => {
            if raw.segment_mb.is_some() || raw.compress.is_some() {
                bail!("record.segment_mb and record.compress are for format = \"journal\"");
            }
            RecordFormat::Text
        }
        RecordFormatName::Journal => {
            let mb = raw.segment_mb.unwrap_or(256);
            if !(1..4096).contains(&mb) {
                bail!("record.segment_mb: {mb} is outside 1..=4095");
            }
            if mb << 20 < 2 * max_message {
                bail!(
                    "record.segment_mb: {mb} MiB cannot hold two of the largest messages \
                     (pipeline.max_message = {max_message} bytes)"
                );
            }
            RecordFormat::Journal(JournalOptions {
                segment_bytes: mb << 20,
                compress: raw.compress.unwrap_or(false),
            })
        }
    };
    Ok(RecordConfig { format, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<RunConfig> {
        RunConfig::parse(text, Path::new("."), &InstrumentTable::binance_defaults())
    }

    #[test]
    fn defaults_follow_the_venue() {
        let c = parse("[[feed]]\nvenue = \"binance-usdm\"\nsymbols = [\"btcusdt\"]\n").unwrap();
        let f = &c.feeds[0];
        assert_eq!(f.symbols, ["BTCUSDT"]);
        assert_eq!(f.ws_url, "wss://fstream.binance.com/public");
        assert_eq!(f.streams, ["trade", "bookTicker", "depth@0ms"]);
        assert_eq!(c.idle, IdleStrategy::Spin);
        assert_eq!(c.mode, PipelineMode::Threaded);
        assert_eq!(c.transport, TransportKind::IoUring);
        assert_eq!(c.uring_recv, UringRecv::Multishot);
        assert_eq!(f.stall_timeout, Duration::from_secs(10));
        assert_eq!(f.rotate_after, Duration::from_secs(23 * 3600 + 45 * 60));
    }

    #[test]
    fn a_bybit_feed_subscribes_pings_and_never_rotates_by_default() {
        let text = "[[feed]]\nvenue = \"bybit-linear\"\nsymbols = [\"btcusdt\"]\n";
        let c =
            RunConfig::parse(text, Path::new("."), &InstrumentTable::bundled_defaults()).unwrap();
        let f = &c.feeds[0];
        assert!(matches!(f.session, VenueSession::Bybit(_)));
        assert_eq!(f.ws_url, "wss://stream.bybit.com/v5/public/linear");
        assert_eq!(f.streams, ["orderbook.50", "publicTrade", "tickers"]);
        assert_eq!(f.ping_interval, Duration::from_secs(20));
        assert_eq!(f.rotate_after, Duration::MAX);
        let with = format!("{text}rotate_after_ms = 3600000\nping_interval_ms = 5000\n");
        let c =
            RunConfig::parse(&with, Path::new("."), &InstrumentTable::bundled_defaults()).unwrap();
        assert_eq!(c.feeds[0].rotate_after, Duration::from_secs(3600));
        assert_eq!(c.feeds[0].ping_interval, Duration::from_secs(5));
        assert!(!c.feeds[0].count_block_trades);
        let with = format!("{text}count_block_trades = true\n");
        let c =
            RunConfig::parse(&with, Path::new("."), &InstrumentTable::bundled_defaults()).unwrap();
        assert!(c.feeds[0].count_block_trades);
    }

    #[test]
    fn bundled_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for name in [
            "run-binance-btc-eth.toml",
            "run-binance-bybit.toml",
            "run-sim-local.toml",
        ] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let c = RunConfig::parse(&text, &dir, &InstrumentTable::bundled_defaults())
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!c.feeds.is_empty());
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[[feed]]\nvenue = \"kraken\"\nsymbols = [\"X\"]\n", "feed[0].venue"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"DOGEUSDT\"]\n", "feed[0].symbols"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"http://x\"\n", "feed[0].ws_url"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nspeed = 1\n", "speed"),
            ("[pipeline]\nidle = \"nap\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "idle"),
            ("[pipeline]\ntransport = \"epoll\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "transport"),
            ("[pipeline]\nmode = \"inline\"\ntransport = \"tokio\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "pipeline.mode"),
            ("[pipeline]\nmode = \"inline\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\ncpu = 0\n", "feed[0].cpu"),
            ("[pipeline]\nmode = \"single\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "mode"),
            ("[pipeline]\nuring_task_work = \"eager\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "uring_task_work"),
            ("[pipeline]\nmember_timeout_ms = 5\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "pipeline.member_timeout_ms"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nopen_interest_s = 5\n", "feed[0].open_interest_s"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nrotate_after_ms = 90000000\n", "feed[0].rotate_after_ms"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nstall_timeout_ms = 5\n", "feed[0].stall_timeout_ms"),
            ("[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\ncount_block_trades = true\n", "feed[0].count_block_trades"),
            ("[pipeline]\nmax_message = 10\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "pipeline.max_message"),
            ("[record]\nsegment_mb = 16\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "record.segment_mb"),
            ("[record]\nformat = \"text\"\ncompress = true\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "record.compress"),
            ("[record]\nformat = \"csv\"\n[[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\n", "format"),
            ("", "no [[feed]]"),
        ];
        for (text, key) in cases {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(key), "{err:?} should name {key:?}");
        }
    }
}
