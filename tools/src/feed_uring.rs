//! A feed thread on io_uring: one [`UringDriver`] owns the thread's connections (one per
//! symbol) and is polled in a loop with no async runtime; REST snapshots, which are rare and
//! slow, are fetched by a helper thread and handed back through a channel.
//!
//! ```text
//! feed thread:  loop { driver.poll -> on_message -> event ring;  snapshot replies -> on_message;
//!                      resync requests -> helper;  reconnect timers;  idle.wait when nothing moved }
//! helper thread (tokio, off the hot path): REST GET with retries -> channel -> feed thread
//! ```

use crate::backoff::Backoff;
use crate::run::{get_until_ok, refused, FeedStats, FeedThread, SNAPSHOT_GRACE};
use crate::run_config::IdleStrategy;
use flowcore_core::instrument::InstrumentId;
use flowcore_feeds::binance::session::{combined_stream_url, market, snapshot_url};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::net::client_config;
use flowcore_feeds::transport::uring::{ConnId, UringConfig, UringDriver, UringEvent};
use flowcore_feeds::transport::TlsSettings;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One symbol's connection, reconnected with backoff.
struct Stream {
    symbol: String,
    inst: InstrumentId,
    url: String,
    parser: VenueParser,
    id: Option<ConnId>,
    /// The connection got past its upgrade.
    opened: bool,
    /// Some connection of this stream ever did.
    ever_opened: bool,
    /// When to try again while `id` is `None`.
    retry_at: Instant,
    backoff: Backoff,
    /// No connection has delivered a message yet: the first one asks for the snapshot.
    first_message: bool,
    /// Closed cleanly by the server with `exit_on_close`: not reconnected.
    finished: bool,
}

/// What the helper says of a snapshot request.
enum Fetched {
    /// An attempt failed (counted by the feed thread); the helper retries.
    Failure,
    /// The body arrived.
    Body(Vec<u8>),
    /// The run stopped before a body arrived.
    Stopped,
}

/// REST snapshots fetched on a helper thread: requests go in through a tokio channel (the
/// helper sleeps in its runtime until one comes), answers come back through a std channel
/// that the feed thread polls without blocking.
struct SnapshotFetcher {
    requests: Option<tokio::sync::mpsc::UnboundedSender<(InstrumentId, String)>>,
    replies: mpsc::Receiver<(InstrumentId, Fetched)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotFetcher {
    fn start(tls: TlsSettings, stop: Arc<AtomicBool>) -> std::io::Result<Self> {
        let (requests, mut request_rx) =
            tokio::sync::mpsc::unbounded_channel::<(InstrumentId, String)>();
        let (reply_tx, replies) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("flowcore-rest".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    eprintln!("run: REST helper: no runtime");
                    return;
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    while let Some((inst, url)) = request_rx.recv().await {
                        let (tls, stop, reply) = (tls.clone(), stop.clone(), reply_tx.clone());
                        tokio::task::spawn_local(async move {
                            let body = get_until_ok(&url, &tls, &stop, |_| {
                                let _ = reply.send((inst, Fetched::Failure));
                            })
                            .await;
                            let _ =
                                reply.send((inst, body.map_or(Fetched::Stopped, Fetched::Body)));
                        });
                    }
                });
            })?;
        Ok(Self {
            requests: Some(requests),
            replies,
            handle: Some(handle),
        })
    }

    fn request(&self, inst: InstrumentId, url: String) {
        if let Some(requests) = &self.requests {
            let _ = requests.send((inst, url));
        }
    }
}

impl Drop for SnapshotFetcher {
    fn drop(&mut self) {
        // Closing the request channel ends the helper's loop (and its fetches with it).
        self.requests = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The io_uring feed thread's loop; returns its counters.
pub(crate) fn feed_main_uring(
    mut thread: FeedThread,
    mut requests: rtrb::Consumer<InstrumentId>,
    stop: Arc<AtomicBool>,
    exit_on_close: bool,
    uring_config: UringConfig,
) -> FeedStats {
    let feed = thread.feed.clone();
    let tls_settings = TlsSettings {
        extra_ca_file: feed.tls_ca_file.clone(),
    };
    let tls = match client_config(&tls_settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("run: {}: {e}", feed.venue);
            return thread.stats;
        }
    };
    let mut driver = match UringDriver::new(uring_config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("run: {}: io_uring: {e}", feed.venue);
            return thread.stats;
        }
    };
    let fetcher = match SnapshotFetcher::start(tls_settings, stop.clone()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("run: {}: REST helper: {e}", feed.venue);
            return thread.stats;
        }
    };
    let mut snapshot_parser = VenueParser::new(feed.venue, thread.table.clone());
    let now = Instant::now();
    let mut streams: Vec<Stream> = feed
        .symbols
        .iter()
        .filter_map(|symbol| {
            let inst = thread.table.find(feed.venue, symbol.as_bytes())?;
            Some(Stream {
                symbol: symbol.clone(),
                inst,
                url: combined_stream_url(&feed.ws_url, symbol, &feed.streams),
                parser: VenueParser::new(feed.venue, thread.table.clone()),
                id: None,
                opened: false,
                ever_opened: false,
                retry_at: now,
                backoff: Backoff::new(Duration::from_millis(100)),
                first_message: true,
                finished: false,
            })
        })
        .collect();
    let (table, limit) = (thread.table.clone(), thread.snapshot_limit);
    let snapshot_url_of = |inst: InstrumentId| {
        let symbol = &table.get(inst).symbol;
        snapshot_url(&market(feed.venue), &feed.rest_url, symbol, limit)
    };
    let request_snapshot = |inst: InstrumentId, fetching: &mut HashSet<InstrumentId>| {
        if fetching.insert(inst) {
            fetcher.request(inst, snapshot_url_of(inst));
        }
    };
    let mut all_ended: Option<Instant> = None;
    let mut stopping: Option<Instant> = None;
    let mut idle_rounds = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) && stopping.is_none() {
            stopping = Some(Instant::now());
            for s in &streams {
                if let Some(id) = s.id {
                    driver.close(id);
                }
            }
        }
        if stopping.is_none() {
            for s in streams.iter_mut() {
                // The clock is read only for a stream waiting to reconnect.
                if s.id.is_none() && !s.finished && Instant::now() >= s.retry_at {
                    match driver.connect(&s.url, Some(tls.clone())) {
                        Ok(id) => s.id = Some(id),
                        Err(e) => {
                            thread.stats.connect_errors += 1;
                            eprintln!("run: {} {}: connect: {e}", feed.venue, s.symbol);
                            s.retry_at = Instant::now() + s.backoff.next_delay();
                        }
                    }
                }
            }
        }
        let mut snapshots_wanted: Vec<InstrumentId> = Vec::new();
        let polled = driver.poll(&mut |id, event| {
            let Some(s) = streams.iter_mut().find(|s| s.id == Some(id)) else {
                return;
            };
            match event {
                UringEvent::Open => {
                    s.opened = true;
                    s.ever_opened = true;
                    s.backoff.reset();
                    thread.open_record_file(s.inst, &s.symbol);
                }
                UringEvent::Message(bytes) => {
                    thread.on_message(&mut s.parser, s.inst, bytes, None);
                    // The stream is open and buffering in the engine: now the snapshot.
                    if std::mem::take(&mut s.first_message) {
                        snapshots_wanted.push(s.inst);
                    }
                }
                UringEvent::Closed(result) => {
                    s.id = None;
                    if s.opened {
                        thread.stats.disconnects += 1;
                    } else {
                        thread.stats.connect_errors += 1;
                    }
                    match result {
                        Ok(()) if exit_on_close && s.opened => s.finished = true,
                        Ok(()) => {}
                        Err(e) if exit_on_close && !s.opened && s.ever_opened && refused(&e) => {
                            s.finished = true;
                        }
                        Err(e) if stopping.is_none() => {
                            eprintln!("run: {} {}: {e}; reconnecting", feed.venue, s.symbol);
                        }
                        Err(_) => {}
                    }
                    s.opened = false;
                    s.retry_at = Instant::now() + s.backoff.next_delay();
                }
            }
        });
        let progressed = match polled {
            Ok(p) => p,
            Err(e) => {
                eprintln!("run: {}: io_uring: {e}", feed.venue);
                break;
            }
        };
        for inst in snapshots_wanted {
            request_snapshot(inst, &mut thread.fetching);
        }
        while let Ok(inst) = requests.pop() {
            request_snapshot(inst, &mut thread.fetching);
        }
        let mut replied = false;
        while let Ok((inst, fetched)) = fetcher.replies.try_recv() {
            replied = true;
            match fetched {
                Fetched::Failure => thread.stats.snapshot_errors += 1,
                Fetched::Body(body) => {
                    thread.fetching.remove(&inst);
                    if thread.on_message(&mut snapshot_parser, inst, &body, Some(inst)) {
                        thread.stats.snapshots += 1;
                    } else {
                        thread.stats.snapshot_errors += 1;
                    }
                }
                Fetched::Stopped => {
                    thread.fetching.remove(&inst);
                }
            }
        }
        if let Some(since) = stopping {
            // Close frames get a moment to be exchanged; then the thread ends regardless.
            if driver.connections() == 0 || since.elapsed() > Duration::from_secs(1) {
                break;
            }
        } else if streams.iter().all(|s| s.finished) {
            // Every stream ended for good: wait for snapshots still on their way (a fetch
            // that keeps failing gets a grace period: its server may be gone too).
            let ended = *all_ended.get_or_insert_with(Instant::now);
            if thread.fetching.is_empty() || ended.elapsed() > SNAPSHOT_GRACE {
                break;
            }
        }
        if progressed || replied {
            // Connects, closes and snapshots change counters outside on_message.
            thread.publish_stats();
            idle_rounds = 0;
        } else if thread.idle == IdleStrategy::Park {
            // Parked in the kernel until a completion arrives, not on a timer: a message
            // wakes the thread at once. The timeout keeps timers, the stop flag and REST
            // replies (which do not go through the ring) on time.
            if let Err(e) = driver.wait(Duration::from_millis(1)) {
                eprintln!("run: {}: io_uring: {e}", feed.venue);
                break;
            }
        } else {
            thread.idle.wait(idle_rounds);
            idle_rounds = idle_rounds.saturating_add(1);
        }
    }
    drop(fetcher);
    thread.publish_stats();
    thread.stats
}
