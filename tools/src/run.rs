//! `flowcore run`: live market data through the threaded pipeline.
//!
//! ```text
//! feed thread (per [[feed]]):  WebSocket per symbol --> dialect parse --+--> rtrb ring --> core thread:
//!   REST snapshots and trade history (as the engine asks) -------------+     books, bars, imbalance --> JSONL
//!   stream breaks (marker lines) --------------------------------------+          |
//!   every frame, answer and marker --> byte ring --> recorder thread (--record)   |
//!                  ^--------------- engine requests: snapshot, history (rtrb) <---+
//! ```
//! The core thread is the same [`Engine`] replay drives, fed the same events in the same
//! per-venue order, so `flowcore replay` of the `--record` output reproduces the run's bars
//! and tops bit for bit. Feed threads stamp each message on arrival with a TSC clock
//! (quanta) converted to epoch nanoseconds, strictly increasing within a thread.
//!
//! Nothing is dropped between threads: a full ring makes the producer wait, and the wait is
//! counted.

use crate::backoff::Backoff;
use crate::feed_uring::feed_main_uring;
use crate::handoff::{drain, producer_finished, BatchWriter};
use crate::health::{FeedCounters, HealthRow, VenueFeedCounters};
use crate::link::{Link, LinkAction, LinkCounters, LINK_TICK};
use crate::outputs::{CoreSink, Outputs};
use crate::recorder::{RecordWriter, Recorder};
use crate::rest::{fetch, RestAnswer, RestRequest};
use crate::run_config::{FeedConfig, IdleStrategy, RunConfig, TransportKind, UringRecv};
use anyhow::Context;
use flowcore_core::engine::{Engine, EngineCounters, FeedRequest};
use flowcore_core::event::{MarketEvent, SessionEvent};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use flowcore_feeds::binance::{Control, Parsed};
use flowcore_feeds::bybit::session::BybitSubscriber;
use flowcore_feeds::marker_line;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::tungstenite::WsTransport;
use flowcore_feeds::transport::uring::{self, UringConfig};
use flowcore_feeds::transport::{TlsSettings, Transport, TransportError};
use flowcore_feeds::venue_session::VenueSession;
use flowcore_shm::BusConfig;
use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Receive timestamps: a TSC clock anchored once to the system's epoch time.
#[derive(Debug, Clone)]
pub struct EpochClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor_epoch_ns: i64,
    last: i64,
}

impl EpochClock {
    /// Anchors a new clock to the current system time.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let anchor_raw = clock.raw();
        let anchor_epoch_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Self {
            clock,
            anchor_raw,
            anchor_epoch_ns,
            last: i64::MIN,
        }
    }

    /// Nanoseconds since the epoch, strictly greater than this clock's previous reading
    /// (so that replay, which orders by it, sees a thread's messages in arrival order).
    #[inline]
    pub fn now(&mut self) -> i64 {
        let elapsed = self.clock.delta_as_nanos(self.anchor_raw, self.clock.raw());
        let ns = self.anchor_epoch_ns.saturating_add(elapsed as i64);
        self.last = ns.max(self.last.saturating_add(1));
        self.last
    }
}

impl Default for EpochClock {
    fn default() -> Self {
        Self::new()
    }
}

/// What a run counted.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// WebSocket messages and REST snapshots received.
    pub messages: u64,
    /// Messages refused by the dialect parser (counted, skipped).
    pub parse_errors: u64,
    /// Subscribe replies and other control messages.
    pub control_messages: u64,
    /// REST snapshots applied.
    pub snapshots: u64,
    /// Failed snapshot requests (retried).
    pub snapshot_errors: u64,
    /// Trade-history answers applied.
    pub histories: u64,
    /// Failed trade-history requests (retried a few times, then refused).
    pub history_errors: u64,
    /// Connections lost (reconnected unless stopping).
    pub disconnects: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Times a feed waited for room in its event ring.
    pub ring_waits: u64,
    /// Times a feed waited for room in its record ring.
    pub record_waits: u64,
    /// Connections replaced make before break, in step (nothing lost or doubled).
    pub rotations: u64,
    /// Replacements that could not get in step and ended as a stream break.
    pub rotation_breaks: u64,
    /// Connections dropped because they fell silent (no data, ping or pong).
    pub stalls: u64,
    /// `serverShutdown` notices received (each starts a replacement).
    pub shutdown_notices: u64,
    /// Lines written by the recorder.
    pub recorded_lines: u64,
    /// Engine counters.
    pub engine: EngineCounters,
    /// Trades for an already final second.
    pub late_trades: u64,
    /// Bar rows and tops rows written.
    pub bars: u64,
    /// Tops rows written.
    pub tops: u64,
    /// The transport the feeds used (after any fallback).
    pub transport: Option<TransportKind>,
    /// The last health record of the whole pipeline, then of each venue, with the lag
    /// percentiles of the whole run.
    pub health: Vec<HealthRow>,
}

/// Per feed thread counters, summed into [`RunSummary`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeedStats {
    pub(crate) messages: u64,
    pub(crate) parse_errors: u64,
    pub(crate) control_messages: u64,
    pub(crate) snapshots: u64,
    pub(crate) snapshot_errors: u64,
    pub(crate) histories: u64,
    pub(crate) history_errors: u64,
    pub(crate) disconnects: u64,
    pub(crate) connect_errors: u64,
    pub(crate) ring_waits: u64,
    pub(crate) record_waits: u64,
    pub(crate) rotations: u64,
    pub(crate) rotation_breaks: u64,
    pub(crate) stalls: u64,
    pub(crate) shutdown_notices: u64,
}

impl FeedStats {
    /// The counters health records carry.
    fn feed_counters(&self) -> FeedCounters {
        FeedCounters {
            messages: self.messages,
            parse_errors: self.parse_errors,
            ring_waits: self.ring_waits,
            reconnects: self.disconnects,
            stalls: self.stalls,
            rotations: self.rotations,
        }
    }
}

/// A feed thread's counters as the core thread sees them, for the health records: stored
/// after every message with relaxed stores (a view a second old is all health needs), so
/// the feed never waits on the core thread.
#[derive(Debug)]
struct LiveCounters {
    venue: Venue,
    messages: AtomicU64,
    parse_errors: AtomicU64,
    ring_waits: AtomicU64,
    reconnects: AtomicU64,
    stalls: AtomicU64,
    rotations: AtomicU64,
}

impl LiveCounters {
    fn new(venue: Venue) -> Self {
        Self {
            venue,
            messages: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            ring_waits: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        }
    }

    fn store(&self, s: &FeedStats) {
        let store = |cell: &AtomicU64, v| cell.store(v, Ordering::Relaxed);
        store(&self.messages, s.messages);
        store(&self.parse_errors, s.parse_errors);
        store(&self.ring_waits, s.ring_waits);
        store(&self.reconnects, s.disconnects);
        store(&self.stalls, s.stalls);
        store(&self.rotations, s.rotations);
    }

    fn load(&self) -> FeedCounters {
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        FeedCounters {
            messages: load(&self.messages),
            parse_errors: load(&self.parse_errors),
            ring_waits: load(&self.ring_waits),
            reconnects: load(&self.reconnects),
            stalls: load(&self.stalls),
            rotations: load(&self.rotations),
        }
    }

    /// The sum over every feed of each venue.
    fn per_venue(all: &[Arc<LiveCounters>]) -> VenueFeedCounters {
        let mut out = VenueFeedCounters::default();
        for c in all {
            out[c.venue.index()] += c.load();
        }
        out
    }
}

/// Everything a run needs besides its outputs.
#[derive(Debug)]
pub struct RunOptions {
    /// Feeds and pipeline settings.
    pub config: RunConfig,
    /// Instruments.
    pub table: InstrumentTable,
    /// Imbalance settings for tops.
    pub imbalance: ImbalanceConfig,
    /// Stop after this long (then flush open bars); `None`: until every feed has ended.
    pub duration: Option<Duration>,
    /// Record every frame and snapshot here.
    pub record: Option<PathBuf>,
    /// Set to stop the run from outside (a signal handler, a test).
    pub stop: Arc<AtomicBool>,
    /// End a connection for good when its server closes it cleanly, or refuses the
    /// reconnect after a disconnect (the server is gone), instead of reconnecting: for a
    /// simulator that closes at the end of its recordings. (Its close frame can be lost to a
    /// reset when our last pong reaches a socket it has already closed.)
    pub exit_on_close: bool,
    /// Publish to the shared-memory bus too (`--shm DIR`, or `pipeline.shm` in the config).
    pub shm: Option<BusConfig>,
}

/// Runs the pipeline until `options.duration` passes, `options.stop` is set, or every
/// connection has been closed by its server for good (a simulator at the end of its
/// recordings, with [`RunOptions::exit_on_close`]), writing bar and tops rows as they happen.
///
/// # Errors
/// When a thread cannot start, the output cannot be written or the recorder fails.
pub fn run(options: RunOptions, outputs: Outputs<'_>) -> anyhow::Result<RunSummary> {
    let RunOptions {
        config,
        table,
        imbalance,
        duration,
        record,
        stop,
        exit_on_close: options_exit_on_close,
        shm,
    } = options;
    let mut members = Vec::new();
    for feed in &config.feeds {
        for symbol in &feed.symbols {
            members.push(
                table
                    .find(feed.venue, symbol.as_bytes())
                    .context("symbols are checked with the configuration")?,
            );
        }
    }
    let mut engine =
        Engine::new(table.clone(), imbalance, Some(&members)).context("instrument table")?;
    // Before any thread starts: a bus that cannot be created ends the run here.
    let shm = shm.or_else(|| config.shm.clone().map(BusConfig::new));
    let venues: Vec<Venue> = config.feeds.iter().map(|f| f.venue).collect();
    let mut sink = CoreSink::create(&engine, &venues, outputs, shm.as_ref())?;
    let (recorder, mut record_writers) = match &record {
        Some(dir) => {
            let (r, w) = Recorder::start(dir, config.feeds.len())
                .with_context(|| format!("--record {}", dir.display()))?;
            (Some(r), w.into_iter().map(Some).collect())
        }
        None => (
            None,
            (0..config.feeds.len()).map(|_| None).collect::<Vec<_>>(),
        ),
    };
    let transport = choose_transport(config.transport);
    let uring_config = UringConfig {
        multishot: config.uring_recv == UringRecv::Multishot,
        max_message: config.max_message,
        ..UringConfig::default()
    };
    let clock = EpochClock::new();
    let mut rings = Vec::new();
    let mut live_counters = Vec::new();
    let mut feed_threads = Vec::new();
    for (i, feed) in config.feeds.iter().enumerate() {
        let (events_tx, events_rx) = rtrb::RingBuffer::<MarketEvent>::new(config.ring_capacity);
        let (requests_tx, requests_rx) = rtrb::RingBuffer::<FeedRequest>::new(1024);
        let live = Arc::new(LiveCounters::new(feed.venue));
        live_counters.push(live.clone());
        rings.push(CoreFeed {
            events: events_rx,
            requests: requests_tx,
            unsent_requests: Vec::new(),
        });
        let feed = feed.clone();
        let table = table.clone();
        let stop = stop.clone();
        let recorder = record_writers[i].take();
        let clock = clock.clone();
        let idle = config.idle;
        let snapshot_limit = config.snapshot_limit;
        let config_max_message = config.max_message;
        let exit_on_close = options_exit_on_close;
        let uring_config = uring_config.clone();
        let handle = std::thread::Builder::new()
            .name(format!("flowcore-feed-{i}"))
            .spawn(move || {
                pin(feed.cpu, "feed");
                let thread = FeedThread {
                    feed: Rc::new(feed),
                    table,
                    events: BatchWriter::new(events_tx, idle, true),
                    recorder,
                    clock,
                    idle,
                    snapshot_limit,
                    max_message: config_max_message,
                    stats: FeedStats::default(),
                    live,
                    files: Vec::new(),
                    fetching: HashSet::new(),
                    resubscribe: HashSet::new(),
                };
                match transport {
                    TransportKind::IoUring => {
                        feed_main_uring(thread, requests_rx, stop, exit_on_close, uring_config)
                    }
                    TransportKind::Tokio => feed_main(thread, requests_rx, stop, exit_on_close),
                }
            })
            .context("starting a feed thread")?;
        feed_threads.push(handle);
    }
    drop(record_writers);
    pin(config.core_cpu, "core");
    let deadline = duration.map(|d| Instant::now() + d);
    let mut idle_rounds = 0u32;
    loop {
        let mut moved = false;
        for feed in &mut rings {
            moved |= feed.drain(&mut engine, &mut sink, &live_counters);
        }
        if let Some(e) = sink.jsonl.take_error() {
            stop.store(true, Ordering::Relaxed);
            return Err(e).context("writing output");
        }
        if moved {
            idle_rounds = 0;
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if rings.iter().all(|f| producer_finished(&f.events)) {
            break;
        }
        config.idle.wait(idle_rounds);
        idle_rounds = idle_rounds.saturating_add(1);
    }
    engine.finish(&mut sink);
    let mut summary = RunSummary::default();
    let mut feed_counters = VenueFeedCounters::default();
    for (handle, feed) in feed_threads.into_iter().zip(&config.feeds) {
        let s = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a feed thread panicked"))?;
        feed_counters[feed.venue.index()] += s.feed_counters();
        summary.messages += s.messages;
        summary.parse_errors += s.parse_errors;
        summary.control_messages += s.control_messages;
        summary.snapshots += s.snapshots;
        summary.snapshot_errors += s.snapshot_errors;
        summary.histories += s.histories;
        summary.history_errors += s.history_errors;
        summary.disconnects += s.disconnects;
        summary.connect_errors += s.connect_errors;
        summary.ring_waits += s.ring_waits;
        summary.record_waits += s.record_waits;
        summary.rotations += s.rotations;
        summary.rotation_breaks += s.rotation_breaks;
        summary.stalls += s.stalls;
        summary.shutdown_notices += s.shutdown_notices;
    }
    if let Some(recorder) = recorder {
        summary.recorded_lines = recorder.finish().context("--record")?;
    }
    summary.health = sink.finish(&engine, &feed_counters);
    if let Some(e) = sink.jsonl.take_error() {
        return Err(e).context("writing output");
    }
    summary.transport = Some(transport);
    summary.engine = engine.counters();
    summary.late_trades = engine.bars().counters().late_trades;
    (summary.bars, summary.tops) = sink.jsonl.rows();
    Ok(summary)
}

/// A connection refused: nobody listens there (any more).
pub(crate) fn refused(e: &TransportError) -> bool {
    matches!(e, TransportError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// The configured transport, or tokio with a log line where io_uring cannot be used here.
fn choose_transport(wanted: TransportKind) -> TransportKind {
    if wanted == TransportKind::IoUring {
        if let Err(e) = uring::probe() {
            eprintln!("run: io_uring is unavailable here ({e}); using the tokio transport");
            return TransportKind::Tokio;
        }
    }
    wanted
}

/// Pins the calling thread to `cpu`; false where the machine has no such core or refuses.
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == cpu)
        .is_some_and(core_affinity::set_for_current)
}

fn pin(cpu: Option<usize>, what: &str) {
    if let Some(cpu) = cpu {
        if !pin_current_thread(cpu) {
            eprintln!("run: could not pin the {what} thread to cpu {cpu}; running unpinned");
        }
    }
}

/// The core thread's end of one feed.
struct CoreFeed {
    events: rtrb::Consumer<MarketEvent>,
    requests: rtrb::Producer<FeedRequest>,
    /// Requests the ring had no room for, sent on the next pass.
    unsent_requests: Vec<FeedRequest>,
}

impl CoreFeed {
    /// Applies every event waiting in the ring; true when there was any.
    fn drain(
        &mut self,
        engine: &mut Engine,
        sink: &mut CoreSink<'_>,
        live: &[Arc<LiveCounters>],
    ) -> bool {
        self.unsent_requests
            .retain(|&request| self.requests.push(request).is_err());
        let (requests, unsent) = (&mut self.requests, &mut self.unsent_requests);
        let (applied, _) = drain(&mut self.events, |ev| {
            engine.on_event(ev, sink);
            sink.after_event(ev, engine, || LiveCounters::per_venue(live));
            // Requests concern the instrument of the event that raised them: this feed's.
            while let Some(request) = engine.pop_request() {
                if requests.push(request).is_err() {
                    unsent.push(request);
                }
            }
            true
        });
        applied > 0
    }
}

/// A feed thread's state, shared by its connection tasks (one thread, no locks).
pub(crate) struct FeedThread {
    pub(crate) feed: Rc<FeedConfig>,
    pub(crate) table: InstrumentTable,
    /// Each message's events go out as one batch when it ends.
    events: BatchWriter<MarketEvent>,
    recorder: Option<RecordWriter>,
    clock: EpochClock,
    pub(crate) idle: IdleStrategy,
    pub(crate) snapshot_limit: u32,
    /// Largest WebSocket message accepted.
    max_message: usize,
    pub(crate) stats: FeedStats,
    /// `stats` as the core thread sees them.
    live: Arc<LiveCounters>,
    /// Record file of each instrument's current connection.
    files: Vec<(InstrumentId, u32)>,
    /// REST requests in flight.
    pub(crate) fetching: HashSet<FeedRequest>,
    /// Instruments whose book topics their connection is to subscribe again (Bybit).
    pub(crate) resubscribe: HashSet<InstrumentId>,
}

impl FeedThread {
    /// Starts a record file for `inst`'s new connection (with `--record`).
    pub(crate) fn open_record_file(&mut self, inst: InstrumentId, symbol: &str) {
        let name = format!("{}_{}", self.feed.venue.name(), symbol.to_ascii_lowercase());
        if let Some(file) = self.recorder.as_mut().map(|r| r.open(&name)) {
            self.files.retain(|(i, _)| *i != inst);
            self.files.push((inst, file));
        }
    }

    /// Makes the counters visible to the core thread's health records.
    pub(crate) fn publish_stats(&self) {
        self.live.store(&self.stats);
    }

    /// Stamps, records, parses and hands on one message; `None` when the parser refused it
    /// (counted).
    pub(crate) fn on_message(
        &mut self,
        parser: &mut VenueParser,
        inst: InstrumentId,
        bytes: &[u8],
        snapshot_for: Option<InstrumentId>,
    ) -> Option<Parsed> {
        let ts = self.clock.now();
        self.stats.messages += 1;
        if let Some(recorder) = &mut self.recorder {
            if let Some(&(_, file)) = self.files.iter().find(|(i, _)| *i == inst) {
                recorder.line(file, ts, bytes, self.idle);
            }
        }
        let events = &mut self.events;
        let result = parser.parse(ts, bytes, snapshot_for, &mut |ev| events.push(ev));
        // The core is gone only when the run ends: nothing to deliver to.
        let _ = events.end_message();
        self.stats.ring_waits = events.full_waits;
        let result = match result {
            Ok(parsed) => {
                if let Parsed::Control(_) = parsed {
                    self.stats.control_messages += 1;
                }
                Some(parsed)
            }
            Err(_) => {
                self.stats.parse_errors += 1;
                None
            }
        };
        self.live.store(&self.stats);
        result
    }

    /// [`Self::on_message`] for a [`Link`]'s forwarded messages: sets `notice` when one is
    /// the venue's `serverShutdown`.
    pub(crate) fn forwarder<'a>(
        &'a mut self,
        parser: &'a mut VenueParser,
        inst: InstrumentId,
        notice: &'a mut bool,
    ) -> impl FnMut(&[u8]) + 'a {
        move |bytes| {
            // A stream break the link forwards is a marker line, like the transports'.
            let marker = flowcore_feeds::session_marker(bytes).map(|_| inst);
            let parsed = self.on_message(parser, inst, bytes, marker);
            *notice |= parsed == Some(Parsed::Control(Control::ServerShutdown));
        }
    }

    /// Adds a link's counters to the thread's.
    pub(crate) fn count_link(&mut self, c: LinkCounters) {
        self.stats.rotations += c.rotations;
        self.stats.rotation_breaks += c.rotation_breaks;
        self.stats.stalls += c.stalls;
        self.stats.shutdown_notices += c.shutdown_notices;
    }

    /// Passes a session event that no venue message carries (as its marker line, so that
    /// the recording has it too).
    pub(crate) fn on_session(
        &mut self,
        parser: &mut VenueParser,
        inst: InstrumentId,
        event: SessionEvent,
    ) {
        if let Some(line) = marker_line(event) {
            self.on_message(parser, inst, line, Some(inst));
        }
    }

    /// Counts a failed REST attempt.
    pub(crate) fn on_rest_error(&mut self, request: FeedRequest) {
        match request {
            FeedRequest::Snapshot(_) => self.stats.snapshot_errors += 1,
            FeedRequest::Trades(..) => self.stats.history_errors += 1,
        }
    }

    /// Applies the answer to a REST request.
    pub(crate) fn on_rest_answer(
        &mut self,
        parser: &mut VenueParser,
        request: FeedRequest,
        answer: RestAnswer,
    ) {
        self.fetching.remove(&request);
        let inst = request.inst();
        match answer {
            RestAnswer::Body(body) => {
                let applied = self.on_message(parser, inst, &body, Some(inst)).is_some();
                match (request, applied) {
                    (FeedRequest::Snapshot(_), true) => self.stats.snapshots += 1,
                    (FeedRequest::Snapshot(_), false) => self.stats.snapshot_errors += 1,
                    (FeedRequest::Trades(..), true) => self.stats.histories += 1,
                    (FeedRequest::Trades(..), false) => {
                        // An answer that cannot be read fills nothing: say so, or the
                        // engine would wait for it.
                        self.stats.history_errors += 1;
                        self.on_session(parser, inst, SessionEvent::BackfillRefused);
                    }
                }
            }
            RestAnswer::Refused => self.on_session(parser, inst, SessionEvent::BackfillRefused),
            RestAnswer::Stopped => {}
        }
    }

    /// The REST request for `request`, or `None` when the same one is in flight or the
    /// venue answers it on the stream: a Bybit book is resynced by subscribing again (see
    /// [`Self::resubscribe`]).
    pub(crate) fn rest_request(&mut self, request: FeedRequest) -> Option<RestRequest> {
        let VenueSession::Binance(market) = self.feed.session else {
            if let FeedRequest::Snapshot(inst) = request {
                self.resubscribe.insert(inst);
            }
            return None;
        };
        self.fetching.insert(request).then(|| {
            RestRequest::new(
                &self.feed,
                &market,
                &self.table,
                self.snapshot_limit,
                request,
            )
        })
    }
}

type Shared = Rc<RefCell<FeedThread>>;

/// How long a feed whose connections have all ended waits for snapshots still in flight.
pub(crate) const SNAPSHOT_GRACE: Duration = Duration::from_secs(15);

fn feed_main(
    thread: FeedThread,
    mut requests: rtrb::Consumer<FeedRequest>,
    stop: Arc<AtomicBool>,
    exit_on_close: bool,
) -> FeedStats {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("run: feed runtime: {e}");
            return thread.stats;
        }
    };
    let feed = thread.feed.clone();
    let shared: Shared = Rc::new(RefCell::new(thread));
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let mut connections = Vec::new();
        for symbol in &feed.symbols {
            let inst = {
                let s = shared.borrow();
                s.table.find(feed.venue, symbol.as_bytes())
            };
            let Some(inst) = inst else { continue };
            connections.push(tokio::task::spawn_local(connection(
                shared.clone(),
                symbol.clone(),
                inst,
                stop.clone(),
                shutdown.clone(),
                exit_on_close,
            )));
        }
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut all_ended: Option<Instant> = None;
        loop {
            tick.tick().await;
            while let Ok(request) = requests.pop() {
                fetch_rest(&shared, request, stop.clone());
            }
            // Done when stopped, or when every connection has ended for good and no
            // snapshot is still on its way (a fetch that keeps failing gets a grace period:
            // its server may be gone with the streams).
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if connections.iter().all(|c| c.is_finished()) {
                let ended = *all_ended.get_or_insert_with(Instant::now);
                if shared.borrow().fetching.is_empty() || ended.elapsed() > SNAPSHOT_GRACE {
                    break;
                }
            }
        }
        // Let each connection send its close frame, briefly.
        let _ = shutdown_tx.send(true);
        for c in connections {
            let _ = tokio::time::timeout(Duration::from_secs(1), c).await;
        }
    });
    let stats = shared.borrow().stats;
    stats
}

/// A standby's connect: its key and transport.
type StandbyConnect = Result<(u64, WsTransport), TransportError>;

/// What one turn of a connection task's loop came to.
enum Turn {
    /// Nothing for the loop to do (beyond following the link to a new primary).
    Continue,
    /// The primary ended.
    PrimaryEnded(Result<(), TransportError>),
    /// The standby ended (or failed to connect).
    StandbyEnded,
    /// The standby's connect finished.
    StandbyConnected(u64, Box<WsTransport>),
    /// Time to look at liveness and ages.
    Tick,
    /// The run is stopping.
    Shutdown,
}

/// One symbol's WebSocket, reconnected with backoff until the run stops or the server
/// closes it cleanly (the end of a simulator's recordings), replaced make before break
/// before its lifetime ends, dropped when it falls silent (see [`Link`]).
async fn connection(
    shared: Shared,
    symbol: String,
    inst: InstrumentId,
    stop: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
    exit_on_close: bool,
) {
    let (feed, table, max_message) = {
        let s = shared.borrow();
        (s.feed.clone(), s.table.clone(), s.max_message)
    };
    let url = feed
        .session
        .connect_url(&feed.ws_url, &symbol, &feed.streams);
    let mut subscriber = bybit_subscriber(&feed, &symbol);
    let tls = TlsSettings {
        extra_ca_file: feed.tls_ca_file.clone(),
    };
    let mut parser =
        VenueParser::new(feed.venue, table).counting_block_trades(feed.count_block_trades);
    let mut backoff = Backoff::new(Duration::from_millis(100));
    let mut link: Link<u64> = Link::new(feed.stall_timeout, feed.rotate_after);
    let mut keys = 0u64..;
    let mut tick = tokio::time::interval(LINK_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut first_connection = true;
    'connect: while !stop.load(Ordering::Relaxed) {
        let mut primary = tokio::select! {
            c = WsTransport::connect_with_limit(&url, &tls, max_message) => match c {
                Ok(t) => t,
                Err(e) => {
                    shared.borrow_mut().stats.connect_errors += 1;
                    if exit_on_close && !first_connection && refused(&e) {
                        break 'connect;
                    }
                    eprintln!("run: {} {symbol}: connect: {e}", feed.venue);
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|&s| s) => break 'connect,
        };
        let mut primary_key = keys.next().unwrap_or_default();
        link.primary_connecting(primary_key, Instant::now());
        link.on_open(primary_key, Instant::now());
        backoff.reset();
        shared.borrow_mut().open_record_file(inst, &symbol);
        first_connection = false;
        if let Some(subscriber) = &mut subscriber {
            // A failed send shows as the connection's end on the next read.
            for text in subscriber.on_open(Instant::now()) {
                let _ = primary.send_text(&text).await;
            }
            // A resubscribe asked for meanwhile is answered by this subscription.
            shared.borrow_mut().resubscribe.remove(&inst);
        }
        let mut standby: Option<(u64, WsTransport)> = None;
        let mut connecting: Option<Pin<Box<dyn Future<Output = StandbyConnect>>>> = None;
        loop {
            let mut notice = false;
            let turn = tokio::select! {
                m = primary.next_message() => match m {
                    Ok(Some(bytes)) => {
                        let mut s = shared.borrow_mut();
                        let mut forward = s.forwarder(&mut parser, inst, &mut notice);
                        link.on_message(primary_key, bytes, &mut forward);
                        Turn::Continue
                    }
                    Ok(None) => Turn::PrimaryEnded(Ok(())),
                    Err(e) => Turn::PrimaryEnded(Err(e)),
                },
                (key, m) = async {
                    let (key, t) = standby.as_mut().expect("guarded");
                    (*key, t.next_message().await)
                }, if standby.is_some() => match m {
                    Ok(Some(bytes)) => {
                        let mut s = shared.borrow_mut();
                        let mut forward = s.forwarder(&mut parser, inst, &mut notice);
                        link.on_message(key, bytes, &mut forward);
                        Turn::Continue
                    }
                    Ok(None) | Err(_) => Turn::StandbyEnded,
                },
                c = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    match c {
                        Ok((key, t)) => Turn::StandbyConnected(key, Box::new(t)),
                        Err(e) => {
                            eprintln!("run: {} {symbol}: standby: {e}", feed.venue);
                            Turn::StandbyEnded
                        }
                    }
                },
                _ = tick.tick() => Turn::Tick,
                // A watch, not a polled flag: waiting on it costs no timer per message.
                _ = shutdown.wait_for(|&s| s) => Turn::Shutdown,
            };
            if notice {
                link.on_shutdown_notice();
            }
            let mut forward_notice = false;
            // The primary is gone with nothing to replace it: how it ended.
            let mut lost = None;
            let mut primary_stalled = false;
            match turn {
                Turn::Continue => {}
                Turn::Tick => {
                    let mut actions = Vec::new();
                    {
                        let (p, sb) = (&primary, &standby);
                        let mut s = shared.borrow_mut();
                        link.tick(
                            Instant::now(),
                            &mut |k| {
                                if k == primary_key {
                                    Some(p.frames_received())
                                } else {
                                    sb.as_ref()
                                        .filter(|(sk, _)| *sk == k)
                                        .map(|(_, t)| t.frames_received())
                                }
                            },
                            &mut s.forwarder(&mut parser, inst, &mut forward_notice),
                            &mut |a| actions.push(a),
                        );
                        s.count_link(link.take_counters());
                        s.publish_stats();
                    }
                    if let Some(subscriber) = &mut subscriber {
                        let resubscribe = shared.borrow_mut().resubscribe.remove(&inst);
                        for text in subscriber_texts(subscriber, resubscribe) {
                            let _ = primary.send_text(&text).await;
                        }
                    }
                    for action in actions {
                        match action {
                            LinkAction::ConnectStandby => {
                                let key = keys.next().unwrap_or_default();
                                link.standby_connecting(key, Instant::now());
                                let (url, tls) = (url.clone(), tls.clone());
                                connecting = Some(Box::pin(async move {
                                    WsTransport::connect_with_limit(&url, &tls, max_message)
                                        .await
                                        .map(|t| (key, t))
                                }));
                            }
                            LinkAction::Ping(k) if k == primary_key => {
                                let _ = primary.ping().await;
                            }
                            LinkAction::Ping(k) => {
                                if let Some((_, t)) = standby.as_mut().filter(|(sk, _)| *sk == k) {
                                    let _ = t.ping().await;
                                }
                            }
                            LinkAction::Drop(k)
                                if standby.as_ref().is_some_and(|(sk, _)| *sk == k) =>
                            {
                                standby = None;
                                link.on_closed(k, &mut |_| {});
                                link.standby_failed(Instant::now());
                            }
                            // The primary stalled, or was replaced without getting in
                            // step (which the link has forwarded as a break).
                            LinkAction::Drop(k) => primary_stalled = link.primary() == Some(k),
                            // Replaced in step: closed politely below.
                            LinkAction::Retire(_) => {}
                        }
                    }
                }
                Turn::StandbyConnected(key, t) => {
                    if link.standby() == Some(key) {
                        link.on_open(key, Instant::now());
                        standby = Some((key, *t));
                    }
                }
                Turn::StandbyEnded => {
                    if let Some(key) = standby.take().map(|(k, _)| k).or(link.standby()) {
                        link.on_closed(key, &mut |_| {});
                    }
                    shared.borrow_mut().stats.connect_errors += 1;
                    link.standby_failed(Instant::now());
                }
                Turn::PrimaryEnded(result) => {
                    // The server ended the stream: a standby has nothing to take over.
                    let the_end = exit_on_close && result.is_ok();
                    if let Some((key, t)) = standby.take().filter(|_| !the_end) {
                        let mut s = shared.borrow_mut();
                        s.stats.disconnects += 1;
                        link.on_closed(
                            primary_key,
                            &mut s.forwarder(&mut parser, inst, &mut forward_notice),
                        );
                        drop(s);
                        if let Err(e) = result {
                            eprintln!("run: {} {symbol}: {e}; the standby takes over", feed.venue);
                        }
                        primary = t;
                        primary_key = key;
                    } else {
                        lost = Some(result);
                    }
                }
                Turn::Shutdown => {
                    primary.close().await;
                    if let Some((_, t)) = standby {
                        t.close().await;
                    }
                    break 'connect;
                }
            }
            if forward_notice {
                link.on_shutdown_notice();
            }
            // The link may have moved to the standby (in step, or by giving up).
            if link.primary() != Some(primary_key) && lost.is_none() {
                if let Some((key, t)) = standby.take() {
                    let old = std::mem::replace(&mut primary, t);
                    link.on_closed(primary_key, &mut |_| {});
                    primary_key = key;
                    tokio::task::spawn_local(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(2), old.close()).await;
                    });
                }
            } else if primary_stalled {
                lost = Some(Err(TransportError::Timeout));
            }
            if let Some(result) = lost {
                let done = on_lost_primary(
                    &shared,
                    &mut parser,
                    &mut link,
                    primary_key,
                    inst,
                    result,
                    &feed,
                    &symbol,
                    exit_on_close,
                );
                if done {
                    break 'connect;
                }
                break;
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
    shared.borrow_mut().count_link(link.take_counters());
}

/// The conversation of a Bybit connection for `symbol`; `None` for venues whose streams
/// are named in the URL.
pub(crate) fn bybit_subscriber(feed: &FeedConfig, symbol: &str) -> Option<BybitSubscriber> {
    match feed.session {
        VenueSession::Bybit(m) => Some(BybitSubscriber::new(
            &m,
            symbol,
            &feed.streams,
            feed.ping_interval,
        )),
        VenueSession::Binance(_) => None,
    }
}

/// What a Bybit connection sends at a tick: its ping when due, and the book topics again
/// when the engine asked for a fresh snapshot.
pub(crate) fn subscriber_texts(subscriber: &mut BybitSubscriber, resubscribe: bool) -> Vec<String> {
    let mut texts: Vec<String> = subscriber.ping_due(Instant::now()).into_iter().collect();
    if resubscribe {
        texts.extend(subscriber.resubscribe_books());
    }
    texts
}

/// The primary connection is gone and no standby replaces it: counts it and says the
/// stream broke (unless the server ended it cleanly with `exit_on_close`). True when the
/// connection task is done.
#[allow(clippy::too_many_arguments)]
fn on_lost_primary(
    shared: &Shared,
    parser: &mut VenueParser,
    link: &mut Link<u64>,
    key: u64,
    inst: InstrumentId,
    result: Result<(), TransportError>,
    feed: &FeedConfig,
    symbol: &str,
    exit_on_close: bool,
) -> bool {
    // A standby still connecting goes with it: the reconnect starts afresh.
    if let Some(standby) = link.standby() {
        link.on_closed(standby, &mut |_| {});
    }
    link.on_closed(key, &mut |_| {});
    let mut s = shared.borrow_mut();
    s.stats.disconnects += 1;
    // A clean close: the server ended the stream (a simulator at the end of its
    // recordings). Reconnect unless told not to.
    if result.is_ok() && exit_on_close {
        return true;
    }
    s.on_session(parser, inst, SessionEvent::StreamBreak);
    if let Err(e) = result {
        eprintln!("run: {} {symbol}: {e}; reconnecting", feed.venue);
    }
    false
}

/// Starts a REST request unless the same one is in flight; its answer goes through the
/// feed thread like a message.
fn fetch_rest(shared: &Shared, request: FeedRequest, stop: Arc<AtomicBool>) {
    let Some(rest) = shared.borrow_mut().rest_request(request) else {
        return;
    };
    let tls = TlsSettings {
        extra_ca_file: shared.borrow().feed.tls_ca_file.clone(),
    };
    let shared = shared.clone();
    tokio::task::spawn_local(async move {
        let venue = shared.borrow().feed.venue;
        let mut parser = VenueParser::new(venue, shared.borrow().table.clone());
        let answer = fetch(&rest, &tls, &stop, |_| {
            shared.borrow_mut().on_rest_error(request);
        })
        .await;
        shared
            .borrow_mut()
            .on_rest_answer(&mut parser, request, answer);
    });
}
