//! Starting a feed thread: its rings to and from the core thread, its pinning, and the
//! transport's loop it runs until the run stops; or setting a feed up on the engine's own
//! thread (`pipeline.mode = "inline"`).

use super::stats::{FeedStats, LiveCounters};
use super::thread::{EventOut, FeedThread};
use super::tokio_feed::feed_main;
use super::uring_feed::{feed_main_uring, UringFeed};
use crate::clock::EpochClock;
use crate::config::{FeedConfig, IdleStrategy, TransportKind};
use crate::handoff::BatchWriter;
use crate::pin::pin;
use crate::recorder::RecordWriter;
use crate::stages::{feed_log, StageLog};
use flowcore_core::engine::FeedRequest;
use flowcore_core::event::MarketEvent;
use flowcore_core::instrument::InstrumentTable;
use flowcore_feeds::transport::uring::UringConfig;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What a feed thread is started with.
#[derive(Debug)]
pub(crate) struct FeedSpawn {
    /// The feed's place in the run's `[[feed]]` list (names the thread).
    pub(crate) index: usize,
    pub(crate) feed: FeedConfig,
    pub(crate) table: InstrumentTable,
    /// The transport after any fallback.
    pub(crate) transport: TransportKind,
    pub(crate) uring: UringConfig,
    pub(crate) idle: IdleStrategy,
    pub(crate) snapshot_limit: u32,
    /// Largest WebSocket message accepted.
    pub(crate) max_message: usize,
    /// Events in the ring to the core thread.
    pub(crate) ring_capacity: usize,
    pub(crate) clock: EpochClock,
    /// With `--record`: this feed's end of the recorder.
    pub(crate) recorder: Option<RecordWriter>,
    pub(crate) stop: Arc<AtomicBool>,
    /// See [`crate::live::RunOptions::exit_on_close`].
    pub(crate) exit_on_close: bool,
    /// See [`crate::live::RunOptions::stage_log`].
    pub(crate) stage_log: Option<PathBuf>,
}

impl FeedSpawn {
    /// The feed's state, its parsed events going to `events`.
    fn feed_thread(&mut self, events: EventOut, live: Arc<LiveCounters>) -> FeedThread {
        FeedThread {
            feed: Rc::new(self.feed.clone()),
            table: self.table.clone(),
            events,
            recorder: self.recorder.take(),
            clock: self.clock.clone(),
            idle: self.idle,
            snapshot_limit: self.snapshot_limit,
            max_message: self.max_message,
            stats: FeedStats::default(),
            live,
            files: Vec::new(),
            fetching: HashSet::new(),
            resubscribe: HashSet::new(),
            open_interest_due: None,
            stages: self
                .stage_log
                .as_ref()
                .map(|dir| StageLog::new(feed_log(dir, self.index))),
        }
    }
}

/// A feed run by the engine's own thread (`pipeline.mode = "inline"`, io_uring only): the
/// engine polls it a round at a time and applies what it parsed.
pub(crate) struct InlineFeed {
    /// The feed's connections and state.
    pub(crate) feed: UringFeed,
    /// The engine's requests (snapshots, trade history) to the feed.
    pub(crate) requests: rtrb::Producer<FeedRequest>,
    /// Requests the ring had no room for, sent after the next round.
    pub(crate) unsent_requests: Vec<FeedRequest>,
    /// The feed's counters as the health records show them.
    pub(crate) live: Arc<LiveCounters>,
}

/// Sets up a feed on the calling thread for `pipeline.mode = "inline"`; `Err` with the
/// feed's counters when its driver or TLS could not be set up (said on stderr).
pub(crate) fn start_inline_feed(mut spawn: FeedSpawn) -> Result<InlineFeed, Box<FeedStats>> {
    let (requests, requests_rx) = rtrb::RingBuffer::<FeedRequest>::new(1024);
    let live = Arc::new(LiveCounters::new(spawn.feed.venue));
    let thread = spawn.feed_thread(EventOut::Inline(Vec::with_capacity(4096)), live.clone());
    let feed = UringFeed::start(
        thread,
        requests_rx,
        spawn.stop,
        spawn.exit_on_close,
        spawn.uring,
    )?;
    Ok(InlineFeed {
        feed,
        requests,
        unsent_requests: Vec::new(),
        live,
    })
}

/// The core thread's end of a running feed thread.
#[derive(Debug)]
pub(crate) struct FeedHandle {
    /// The feed's events, a batch per message.
    pub(crate) events: rtrb::Consumer<MarketEvent>,
    /// The engine's requests (snapshots, trade history) to the feed.
    pub(crate) requests: rtrb::Producer<FeedRequest>,
    /// The feed's counters as the health records show them.
    pub(crate) live: Arc<LiveCounters>,
    /// Joined at the end of the run: the feed's counters.
    pub(crate) thread: JoinHandle<FeedStats>,
}

/// Starts a feed thread (pinned where its config says) on the chosen transport.
///
/// # Errors
/// When the thread cannot be spawned.
pub(crate) fn spawn_feed(spawn: FeedSpawn) -> std::io::Result<FeedHandle> {
    let (events_tx, events) = rtrb::RingBuffer::<MarketEvent>::new(spawn.ring_capacity);
    let (requests, requests_rx) = rtrb::RingBuffer::<FeedRequest>::new(1024);
    let live = Arc::new(LiveCounters::new(spawn.feed.venue));
    let thread_live = live.clone();
    let thread = std::thread::Builder::new()
        .name(format!("flowcore-feed-{}", spawn.index))
        .spawn(move || {
            let mut spawn = spawn;
            pin(spawn.feed.cpu, "feed");
            let events = EventOut::Ring(BatchWriter::new(events_tx, spawn.idle, true));
            let thread = spawn.feed_thread(events, thread_live);
            let (stop, exit_on_close) = (spawn.stop, spawn.exit_on_close);
            match spawn.transport {
                TransportKind::IoUring => {
                    feed_main_uring(thread, requests_rx, stop, exit_on_close, spawn.uring)
                }
                TransportKind::Tokio => feed_main(thread, requests_rx, stop, exit_on_close),
            }
        })?;
    Ok(FeedHandle {
        events,
        requests,
        live,
        thread,
    })
}
