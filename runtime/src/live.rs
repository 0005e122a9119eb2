//! A live run (`flowcore run`): feed threads ([`crate::feed`]) into the core thread, which
//! drives the engine and writes the outputs.
//!
//! ```text
//! feed thread (per [[feed]]):  WebSocket per symbol --> dialect parse --+--> rtrb ring --> core thread:
//!   REST snapshots and trade history (as the engine asks) -------------+     books, bars, imbalance --> JSONL
//!   stream breaks (marker lines) --------------------------------------+          |
//!   every frame, answer and marker --> byte ring --> recorder thread (--record)   |
//!                  ^--------------- engine requests: snapshot, history (rtrb) <---+
//! ```
//! With `pipeline.mode = "inline"` there are no feed threads: the core thread polls every
//! feed's io_uring loop a round at a time and applies each message's events as soon as it is
//! parsed ([`run_inline`]); the rest is the same.
//!
//! The core thread is the same [`Engine`] replay drives, fed the same events in the same
//! per-venue order, so `flowcore replay` of the `--record` output reproduces the run's bars
//! and tops bit for bit. Feed threads stamp each message on arrival with a TSC clock
//! (quanta) converted to epoch nanoseconds, strictly increasing within a thread.
//!
//! Nothing is dropped between threads: a full ring makes the producer wait, and the wait is
//! counted.

use crate::clock::EpochClock;
use crate::config::{IdleStrategy, PipelineMode, RunConfig, TransportKind, UringRecv};
use crate::feed::{
    spawn_feed, start_inline_feed, FeedHandle, FeedSpawn, FeedStats, InlineFeed, LiveCounters,
    Round, PARK_TIMEOUT,
};
use crate::handoff::{drain, producer_finished};
use crate::pin::pin;
use crate::recorder::{RecordSummary, Recorder};
use crate::stages::{core_log, StageLog};
use crate::strategies::strategy_set;
use anyhow::Context;
use flowcore_core::engine::{Engine, EngineCounters, FeedRequest};
use flowcore_core::event::{EventKind, MarketEvent};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_core::strategy::SignalCounters;
use flowcore_feeds::transport::uring::{self, UringConfig};
use flowcore_outputs::health::{HealthRow, VenueFeedCounters};
use flowcore_outputs::{CoreSink, Outputs};
use flowcore_shm::BusConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// io_uring enters made by the feed threads (submits and completion harvests: the
    /// syscalls of the receive path, besides `uring_waits`).
    pub uring_enters: u64,
    /// io_uring waits of parked feed threads (the idle step of `idle = "park"`).
    pub uring_waits: u64,
    /// Open-interest answers applied.
    pub open_interest_polls: u64,
    /// Open-interest polls that failed or could not be read (the next poll is the retry).
    pub open_interest_errors: u64,
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
    /// What the recorder wrote (with `--record`).
    pub record: Option<RecordSummary>,
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
    /// What the strategies' signals came to.
    pub signals: SignalCounters,
}

impl RunSummary {
    /// Adds a feed's counters.
    fn add_feed(&mut self, s: &FeedStats) {
        self.messages += s.messages;
        self.parse_errors += s.parse_errors;
        self.control_messages += s.control_messages;
        self.snapshots += s.snapshots;
        self.snapshot_errors += s.snapshot_errors;
        self.histories += s.histories;
        self.history_errors += s.history_errors;
        self.open_interest_polls += s.open_interest_polls;
        self.uring_enters += s.uring_enters;
        self.uring_waits += s.uring_waits;
        self.open_interest_errors += s.open_interest_errors;
        self.disconnects += s.disconnects;
        self.connect_errors += s.connect_errors;
        self.ring_waits += s.ring_waits;
        self.record_waits += s.record_waits;
        self.rotations += s.rotations;
        self.rotation_breaks += s.rotation_breaks;
        self.stalls += s.stalls;
        self.shutdown_notices += s.shutdown_notices;
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
    /// Save per-message stage stamps in this folder when the run ends
    /// ([`crate::stages`]: `feed-N.txt` per feed, `core.txt`): for `flowcore bench e2e`.
    pub stage_log: Option<PathBuf>,
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
        stage_log,
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
    engine.set_member_timeout_ms(config.member_timeout_ms);
    // Before any thread starts: a bus that cannot be created ends the run here.
    let shm = shm.or_else(|| config.shm.clone().map(BusConfig::new));
    let venues: Vec<Venue> = config.feeds.iter().map(|f| f.venue).collect();
    let mut sink = CoreSink::create(&engine, &venues, outputs, shm.as_ref())?;
    if !config.strategies.is_empty() {
        sink = sink.with_strategies(strategy_set(&config.strategies, &engine)?);
    }
    let record = record.or_else(|| config.record.dir.clone());
    let (recorder, mut record_writers) = match &record {
        Some(dir) => {
            let (r, w) = Recorder::start(dir, config.record.format, config.feeds.len())
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
        task_work: config.uring_task_work.task_work(),
        max_message: config.max_message,
        ..UringConfig::default()
    };
    let clock = EpochClock::new();
    let spawns = config
        .feeds
        .iter()
        .enumerate()
        .map(|(index, feed)| FeedSpawn {
            index,
            feed: feed.clone(),
            table: table.clone(),
            transport,
            uring: uring_config.clone(),
            idle: config.idle,
            snapshot_limit: config.snapshot_limit,
            max_message: config.max_message,
            ring_capacity: config.ring_capacity,
            clock: clock.clone(),
            recorder: record_writers[index].take(),
            stop: stop.clone(),
            exit_on_close: options_exit_on_close,
            stage_log: stage_log.clone(),
        });
    let mut core = Core {
        engine: &mut engine,
        sink: &mut sink,
        stages: stage_log.as_ref().map(|dir| StageLog::new(core_log(dir))),
    };
    let deadline = duration.map(|d| Instant::now() + d);
    let feed_stats = match config.mode {
        PipelineMode::Threaded => {
            let mut feeds = Vec::new();
            for spawn in spawns {
                feeds.push(spawn_feed(spawn).context("starting a feed thread")?);
            }
            drop(record_writers);
            pin(config.core_cpu, "core");
            run_threaded(feeds, &mut core, config.idle, deadline, &stop)?
        }
        PipelineMode::Inline => {
            if transport != TransportKind::IoUring {
                anyhow::bail!(
                    "pipeline.mode = \"inline\" runs on io_uring, which is unavailable here"
                );
            }
            // The feeds' rings and drivers are made on the thread that polls them; pinned
            // after, so that their REST helper threads do not inherit the engine's core.
            let mut feeds = Vec::new();
            for spawn in spawns {
                match start_inline_feed(spawn) {
                    Ok(feed) => feeds.push(Some(feed)),
                    Err(_) => anyhow::bail!("a feed could not start (said above)"),
                }
            }
            pin(config.core_cpu, "core");
            drop(record_writers);
            run_inline(feeds, &mut core, config.idle, deadline, &stop)?
        }
    };
    core.engine.finish(core.sink);
    if let Some(log) = &core.stages {
        log.save();
    }
    let mut summary = RunSummary::default();
    let mut feed_counters = VenueFeedCounters::default();
    for (s, feed) in feed_stats.iter().zip(&config.feeds) {
        feed_counters[feed.venue.index()] += s.feed_counters();
        summary.add_feed(s);
    }
    if let Some(recorder) = recorder {
        let record = recorder.finish().context("--record")?;
        summary.recorded_lines = record.lines;
        summary.record = Some(record);
    }
    summary.health = sink.finish(&engine, &feed_counters);
    if let Some(e) = sink.jsonl.take_error() {
        return Err(e).context("writing output");
    }
    summary.transport = Some(transport);
    summary.engine = engine.counters();
    summary.late_trades = engine.bars().counters().late_trades;
    (summary.bars, summary.tops) = sink.jsonl.rows();
    summary.signals = sink.strategies().map(|s| s.counters()).unwrap_or_default();
    Ok(summary)
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

/// The engine's side of the pipeline, on the core thread: what each event goes through.
struct Core<'a, 'w> {
    engine: &'a mut Engine,
    sink: &'a mut CoreSink<'w>,
    /// Stage stamps of each trade, for the end-to-end bench.
    stages: Option<StageLog>,
}

impl Core<'_, '_> {
    /// Applies one event and publishes what it changed; the engine's requests go to
    /// `requests` (they concern the instrument of the event that raised them: this feed's),
    /// or wait in `unsent` while it is full.
    #[inline]
    fn apply(
        &mut self,
        ev: &MarketEvent,
        live: &[Arc<LiveCounters>],
        requests: &mut rtrb::Producer<FeedRequest>,
        unsent: &mut Vec<FeedRequest>,
    ) {
        let picked = match (&self.stages, &ev.kind) {
            (Some(log), EventKind::Trade(_)) => Some(log.raw()),
            _ => None,
        };
        self.engine.on_event(ev, self.sink);
        if let (Some(log), Some(picked)) = (&mut self.stages, picked) {
            log.push(ev.local_ts, picked, log.raw());
        }
        self.sink
            .after_event(ev, self.engine, || LiveCounters::per_venue(live));
        while let Some(request) = self.engine.pop_request() {
            if requests.push(request).is_err() {
                unsent.push(request);
            }
        }
    }

    /// Stops the run when its output failed.
    fn check_output(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        if let Some(e) = self.sink.jsonl.take_error() {
            stop.store(true, Ordering::Relaxed);
            return Err(e).context("writing output");
        }
        Ok(())
    }
}

/// `pipeline.mode = "threaded"`: the core thread drains the feed threads' rings until every
/// feed has ended, then joins them.
fn run_threaded(
    feeds: Vec<FeedHandle>,
    core: &mut Core<'_, '_>,
    idle: IdleStrategy,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<FeedStats>> {
    let live: Vec<Arc<LiveCounters>> = feeds.iter().map(|f| f.live.clone()).collect();
    let mut rings = Vec::new();
    let mut threads = Vec::new();
    for f in feeds {
        rings.push(CoreFeed {
            events: f.events,
            requests: f.requests,
            unsent_requests: Vec::new(),
        });
        threads.push(f.thread);
    }
    let mut idle_rounds = 0u32;
    loop {
        let mut moved = false;
        for feed in &mut rings {
            moved |= feed.drain(core, &live);
        }
        core.check_output(stop)?;
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
        idle.wait(idle_rounds);
        idle_rounds = idle_rounds.saturating_add(1);
    }
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a feed thread panicked"))
        })
        .collect()
}

/// `pipeline.mode = "inline"`: this thread polls every feed a round at a time and applies
/// each message's events as soon as it is parsed, until every feed has ended.
fn run_inline(
    mut feeds: Vec<Option<InlineFeed>>,
    core: &mut Core<'_, '_>,
    idle: IdleStrategy,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<FeedStats>> {
    let live: Vec<Arc<LiveCounters>> = feeds.iter().flatten().map(|f| f.live.clone()).collect();
    let mut stats = vec![None; feeds.len()];
    let mut idle_rounds = 0u32;
    loop {
        let mut moved = false;
        for (slot, stats) in feeds.iter_mut().zip(&mut stats) {
            let Some(feed) = slot else { continue };
            let InlineFeed {
                feed: uring,
                requests,
                unsent_requests: unsent,
                ..
            } = feed;
            let round = uring.round(&mut |events| {
                for ev in events {
                    core.apply(ev, &live, requests, unsent);
                }
            });
            moved |= round == Round::Busy;
            unsent.retain(|&request| requests.push(request).is_err());
            if round == Round::Ended {
                if let Some(feed) = slot.take() {
                    *stats = Some(feed.feed.finish());
                }
            }
        }
        core.check_output(stop)?;
        if feeds.iter().all(Option::is_none) {
            break;
        }
        if moved {
            idle_rounds = 0;
            continue;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        let mut running = feeds.iter_mut().flatten();
        match (running.next(), running.next()) {
            // Parked in the kernel until a completion arrives: with one feed left, a message
            // wakes the thread at once. With several, parking on one would leave the others
            // waiting for its timeout: they share the idle strategy's short sleep. A driver
            // that fails to wait (said on stderr) fails its next round too, which ends it.
            (Some(only), None) if idle == IdleStrategy::Park => {
                only.feed.park(PARK_TIMEOUT);
            }
            _ => {
                idle.wait(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            }
        }
    }
    Ok(stats.into_iter().map(Option::unwrap_or_default).collect())
}

/// The core thread's end of one feed thread.
struct CoreFeed {
    events: rtrb::Consumer<MarketEvent>,
    requests: rtrb::Producer<FeedRequest>,
    /// Requests the ring had no room for, sent on the next pass.
    unsent_requests: Vec<FeedRequest>,
}

impl CoreFeed {
    /// Applies every event waiting in the ring; true when there was any.
    fn drain(&mut self, core: &mut Core<'_, '_>, live: &[Arc<LiveCounters>]) -> bool {
        self.unsent_requests
            .retain(|&request| self.requests.push(request).is_err());
        let (requests, unsent) = (&mut self.requests, &mut self.unsent_requests);
        let (applied, _) = drain(&mut self.events, |ev| {
            core.apply(ev, live, requests, unsent);
            true
        });
        applied > 0
    }
}
