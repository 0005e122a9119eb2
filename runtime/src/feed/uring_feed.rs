//! A feed thread on io_uring: one [`UringDriver`] owns the thread's connections (one per
//! symbol) and is polled in a loop with no async runtime; REST snapshots and trade history,
//! which are rare and slow, are fetched by a helper thread and handed back through a channel.
//!
//! ```text
//! feed thread:  loop { driver.poll -> on_message -> event ring;  REST answers -> on_message;
//!                      engine requests -> helper;  reconnect timers;  idle.wait when nothing moved }
//! helper thread (tokio, off the hot path): REST GET with retries -> channel -> feed thread
//! ```

use super::backoff::Backoff;
use super::link::{Ended, Link, LinkAction, LINK_TICK};
use super::rest::{fetch, RestAnswer, RestRequest};
use super::stats::FeedStats;
use super::thread::{bybit_subscriber, refused, subscriber_texts, FeedThread, SNAPSHOT_GRACE};
use crate::config::IdleStrategy;
use flowcore_core::engine::FeedRequest;
use flowcore_core::event::{MarketEvent, SessionEvent};
use flowcore_core::instrument::InstrumentId;
use flowcore_feeds::bybit::session::BybitSubscriber;
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::net::client_config;
use flowcore_feeds::transport::uring::{ConnId, UringConfig, UringDriver, UringEvent};
use flowcore_feeds::transport::{TlsSettings, TransportError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One symbol's connections: reconnected with backoff, replaced before their lifetime ends.
struct Stream {
    symbol: String,
    inst: InstrumentId,
    url: String,
    parser: VenueParser,
    link: Link<ConnId>,
    /// The primary got past its upgrade.
    opened: bool,
    /// Some connection of this stream ever did.
    ever_opened: bool,
    /// When to try again while there is no primary.
    retry_at: Instant,
    backoff: Backoff,
    /// Closed cleanly by the server with `exit_on_close`: not reconnected.
    finished: bool,
    /// Bybit: what the connection says to the venue.
    subscriber: Option<BybitSubscriber>,
}

/// What the helper says of a REST request.
enum Fetched {
    /// An attempt failed (counted by the feed thread); the helper may retry.
    Failure,
    /// The request ended.
    Answer(RestAnswer),
}

/// REST requests fetched on a helper thread: requests go in through a tokio channel (the
/// helper sleeps in its runtime until one comes), answers come back through a std channel
/// that the feed thread polls without blocking.
struct RestFetcher {
    requests: Option<tokio::sync::mpsc::UnboundedSender<RestRequest>>,
    replies: mpsc::Receiver<(FeedRequest, Fetched)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RestFetcher {
    fn start(tls: TlsSettings, stop: Arc<AtomicBool>) -> std::io::Result<Self> {
        let (requests, mut request_rx) = tokio::sync::mpsc::unbounded_channel::<RestRequest>();
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
                    while let Some(rest) = request_rx.recv().await {
                        let (tls, stop, reply) = (tls.clone(), stop.clone(), reply_tx.clone());
                        tokio::task::spawn_local(async move {
                            let request = rest.request;
                            let answer = fetch(&rest, &tls, &stop, |_| {
                                let _ = reply.send((request, Fetched::Failure));
                            })
                            .await;
                            let _ = reply.send((request, Fetched::Answer(answer)));
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

    fn request(&self, rest: RestRequest) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(rest);
        }
    }
}

impl Drop for RestFetcher {
    fn drop(&mut self) {
        // Closing the request channel ends the helper's loop (and its fetches with it).
        self.requests = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What one round of a feed's loop came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Round {
    /// Something moved: a message, a connect or close, a REST answer.
    Busy,
    /// Nothing moved: the caller idles ([`UringFeed::park`] or its idle strategy).
    Quiet,
    /// The feed is done: stopped, or every stream ended for good.
    Ended,
}

/// One feed's connections on an io_uring driver, polled a round at a time: by the feed's
/// own thread ([`feed_main_uring`]), or with `pipeline.mode = "inline"` by the one thread
/// that also runs the engine ([`crate::live`]).
pub(crate) struct UringFeed {
    thread: FeedThread,
    requests: rtrb::Consumer<FeedRequest>,
    stop: Arc<AtomicBool>,
    exit_on_close: bool,
    tls: Arc<rustls::ClientConfig>,
    driver: UringDriver,
    fetcher: RestFetcher,
    rest_parser: VenueParser,
    streams: Vec<Stream>,
    all_ended: Option<Instant>,
    stopping: Option<Instant>,
    /// Connections to close once the poll lets go of the driver (replaced ones), and what
    /// link ticks ask for: both empty in steady state.
    retire: Vec<ConnId>,
    actions: Vec<(usize, LinkAction<ConnId>)>,
    /// Texts to send once the poll lets go of the driver (Bybit subscriptions and pings).
    outbox: Vec<(ConnId, String)>,
    next_tick: Instant,
    rounds: u32,
    /// The previous round moved nothing: the loop is idling (spinning or parked).
    quiet: bool,
}

impl UringFeed {
    /// Sets up the feed's driver, TLS and REST helper; `Err` gives the thread's counters
    /// back after saying what failed.
    pub(crate) fn start(
        thread: FeedThread,
        requests: rtrb::Consumer<FeedRequest>,
        stop: Arc<AtomicBool>,
        exit_on_close: bool,
        uring_config: UringConfig,
    ) -> Result<Self, Box<FeedStats>> {
        let feed = thread.feed.clone();
        let tls_settings = TlsSettings {
            extra_ca_file: feed.tls_ca_file.clone(),
        };
        let tls = match client_config(&tls_settings) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("run: {}: {e}", feed.venue);
                return Err(Box::new(thread.stats));
            }
        };
        let driver = match UringDriver::new(uring_config) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("run: {}: io_uring: {e}", feed.venue);
                return Err(Box::new(thread.stats));
            }
        };
        let fetcher = match RestFetcher::start(tls_settings, stop.clone()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("run: {}: REST helper: {e}", feed.venue);
                return Err(Box::new(thread.stats));
            }
        };
        let rest_parser = VenueParser::new(feed.venue, thread.table.clone());
        let now = Instant::now();
        let streams: Vec<Stream> = feed
            .symbols
            .iter()
            .filter_map(|symbol| {
                let inst = thread.table.find(feed.venue, symbol.as_bytes())?;
                Some(Stream {
                    symbol: symbol.clone(),
                    inst,
                    url: feed
                        .session
                        .connect_url(&feed.ws_url, symbol, &feed.streams),
                    parser: VenueParser::new(feed.venue, thread.table.clone())
                        .counting_block_trades(feed.count_block_trades),
                    link: Link::new(feed.stall_timeout, feed.rotate_after),
                    opened: false,
                    ever_opened: false,
                    retry_at: now,
                    backoff: Backoff::new(Duration::from_millis(100)),
                    finished: false,
                    subscriber: bybit_subscriber(&feed, symbol),
                })
            })
            .collect();
        Ok(Self {
            thread,
            requests,
            stop,
            exit_on_close,
            tls,
            driver,
            fetcher,
            rest_parser,
            streams,
            all_ended: None,
            stopping: None,
            retire: Vec::with_capacity(8),
            actions: Vec::with_capacity(8),
            outbox: Vec::with_capacity(8),
            next_tick: now,
            rounds: 0,
            quiet: false,
        })
    }

    /// The feed's idle strategy.
    pub(crate) fn idle(&self) -> IdleStrategy {
        self.thread.idle
    }

    /// Polls the connections once, then runs what is due: reconnects, link ticks, engine
    /// requests and REST answers. With inline events ([`super::thread::EventOut::Inline`]) each message's
    /// events go to `deliver` as soon as it is parsed, so a burst of messages in one poll
    /// does not hold the first one's events back.
    pub(crate) fn round(&mut self, deliver: &mut dyn FnMut(&[MarketEvent])) -> Round {
        let Self {
            thread,
            requests,
            stop,
            exit_on_close,
            tls,
            driver,
            fetcher,
            rest_parser,
            streams,
            all_ended,
            stopping,
            retire,
            actions,
            outbox,
            next_tick,
            rounds,
            quiet,
        } = self;
        let exit_on_close = *exit_on_close;
        // For messages only (the venue is Copy: no Rc clone per round).
        let venue = thread.feed.venue;
        if stop.load(Ordering::Relaxed) && stopping.is_none() {
            *stopping = Some(Instant::now());
            for s in streams.iter() {
                for id in s.link.primary().into_iter().chain(s.link.standby()) {
                    driver.close(id);
                }
            }
        }
        if stopping.is_none() {
            for s in streams.iter_mut() {
                // The clock is read only for a stream waiting to reconnect.
                if s.link.primary().is_none() && !s.finished && Instant::now() >= s.retry_at {
                    match driver.connect(&s.url, Some(tls.clone())) {
                        Ok(id) => s.link.primary_connecting(id, Instant::now()),
                        Err(e) => {
                            thread.stats.connect_errors += 1;
                            eprintln!("run: {venue} {}: connect: {e}", s.symbol);
                            s.retry_at = Instant::now() + s.backoff.next_delay();
                        }
                    }
                }
            }
        }
        let polled = driver.poll(&mut |id, event| {
            let Some(s) = streams.iter_mut().find(|s| s.link.owns(id)) else {
                return;
            };
            let Stream {
                link, parser, inst, ..
            } = s;
            let mut notice = false;
            let mut forward = thread.forwarder(parser, *inst, &mut notice);
            match event {
                UringEvent::Open => {
                    drop(forward);
                    if s.link.on_open(id, Instant::now()) {
                        s.opened = true;
                        s.ever_opened = true;
                        s.backoff.reset();
                        thread.open_record_file(s.inst, &s.symbol);
                        if let Some(subscriber) = &mut s.subscriber {
                            let texts = subscriber.on_open(Instant::now());
                            outbox.extend(texts.into_iter().map(|t| (id, t)));
                            // A resubscribe asked for meanwhile is answered by this one.
                            thread.resubscribe.remove(&s.inst);
                        }
                    }
                }
                UringEvent::Message(bytes) => {
                    retire.extend(link.on_message(id, bytes, &mut forward));
                    drop(forward);
                    thread.deliver_inline(deliver);
                    if notice {
                        link.on_shutdown_notice();
                    }
                }
                UringEvent::Closed(result) => {
                    let the_end = stopping.is_some() || exit_on_close && result.is_ok();
                    if the_end && link.primary() == Some(id) {
                        // We stop, or the server ended the stream: a standby has nothing to
                        // take over.
                        retire.extend(link.abandon_standby());
                    }
                    let ended = link.on_closed(id, &mut forward);
                    drop(forward);
                    match ended {
                        Ended::Primary => {
                            on_primary_closed(thread, s, result, exit_on_close, stopping.is_some())
                        }
                        Ended::PrimaryReplaced => {
                            thread.stats.disconnects += 1;
                            s.opened = s.link.primary_open();
                            if let Err(e) = result {
                                eprintln!("run: {venue} {}: {e}; the standby takes over", s.symbol);
                            }
                        }
                        Ended::Standby if stopping.is_none() => {
                            thread.stats.connect_errors += 1;
                            s.link.standby_failed(Instant::now());
                        }
                        Ended::Standby => {}
                        Ended::Retired | Ended::Unknown => {}
                    }
                }
            }
        });
        for id in retire.drain(..) {
            driver.close(id);
        }
        for (id, text) in outbox.drain(..) {
            driver.send_text(id, &text);
        }
        // Liveness and rotation: looked at every 100 ms, the clock read once per 256
        // rounds of a busy loop or per idle round (parked rounds included), never per
        // message.
        *rounds = rounds.wrapping_add(1);
        if stopping.is_none() && (rounds.is_multiple_of(256) || *quiet) {
            let now = Instant::now();
            if now >= *next_tick {
                *next_tick = now + LINK_TICK;
                for rest in thread.open_interest_polls(now) {
                    fetcher.request(rest);
                }
                for (i, s) in streams.iter_mut().enumerate() {
                    let Stream {
                        link, parser, inst, ..
                    } = s;
                    let mut notice = false;
                    link.tick(
                        now,
                        &mut |id| driver.received_bytes(id),
                        &mut thread.forwarder(parser, *inst, &mut notice),
                        &mut |a| actions.push((i, a)),
                    );
                    thread.count_link(link.take_counters());
                    if let (Some(subscriber), Some(id)) = (&mut s.subscriber, s.link.primary()) {
                        if s.opened {
                            let resubscribe = thread.resubscribe.remove(&s.inst);
                            let texts = subscriber_texts(subscriber, resubscribe);
                            outbox.extend(texts.into_iter().map(|t| (id, t)));
                        }
                    }
                }
                for (id, text) in outbox.drain(..) {
                    driver.send_text(id, &text);
                }
                for (i, action) in actions.drain(..) {
                    let s = &mut streams[i];
                    match action {
                        LinkAction::ConnectStandby => {
                            match driver.connect(&s.url, Some(tls.clone())) {
                                Ok(id) => s.link.standby_connecting(id, now),
                                Err(e) => {
                                    thread.stats.connect_errors += 1;
                                    eprintln!("run: {venue} {}: standby: {e}", s.symbol);
                                    s.link.standby_failed(now);
                                }
                            }
                        }
                        LinkAction::Ping(id) => driver.ping(id),
                        LinkAction::Drop(id) => driver.abort(id, TransportError::Timeout),
                        LinkAction::Retire(id) => driver.close(id),
                    }
                }
            }
        }
        // Markers of closed connections and link ticks.
        thread.deliver_inline(deliver);
        let progressed = match polled {
            Ok(p) => p,
            Err(e) => {
                eprintln!("run: {venue}: io_uring: {e}");
                return Round::Ended;
            }
        };
        while let Ok(request) = requests.pop() {
            if let Some(rest) = thread.rest_request(request) {
                fetcher.request(rest);
            }
        }
        let mut replied = false;
        while let Ok((request, fetched)) = fetcher.replies.try_recv() {
            replied = true;
            match fetched {
                Fetched::Failure => thread.on_rest_error(request),
                Fetched::Answer(answer) => {
                    thread.on_rest_answer(rest_parser, request, answer);
                }
            }
            thread.deliver_inline(deliver);
        }
        if let Some(since) = *stopping {
            // Close frames get a moment to be exchanged; then the feed ends regardless.
            if driver.connections() == 0 || since.elapsed() > Duration::from_secs(1) {
                return Round::Ended;
            }
        } else if streams.iter().all(|s| s.finished) {
            // Every stream ended for good: wait for snapshots still on their way (a fetch
            // that keeps failing gets a grace period: its server may be gone too).
            let ended = *all_ended.get_or_insert_with(Instant::now);
            if thread.fetching.is_empty() || ended.elapsed() > SNAPSHOT_GRACE {
                return Round::Ended;
            }
        }
        *quiet = !(progressed || replied);
        if *quiet {
            Round::Quiet
        } else {
            // Connects, closes and snapshots change counters outside on_message.
            thread.publish_stats();
            Round::Busy
        }
    }

    /// Parks in the kernel until a completion arrives or `timeout` passes: a message wakes
    /// the thread at once. False when the driver failed (said on stderr): the feed ends.
    pub(crate) fn park(&mut self, timeout: Duration) -> bool {
        match self.driver.wait(timeout) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("run: {}: io_uring: {e}", self.thread.feed.venue);
                false
            }
        }
    }

    /// Stops the REST helper and returns the feed's counters.
    pub(crate) fn finish(self) -> FeedStats {
        let Self {
            mut thread,
            driver,
            fetcher,
            mut streams,
            ..
        } = self;
        drop(fetcher);
        let counters = driver.counters();
        thread.stats.uring_enters = counters.enters;
        thread.stats.uring_waits = counters.waits;
        for s in &mut streams {
            thread.count_link(s.link.take_counters());
        }
        thread.publish_stats();
        if let Some(log) = &thread.stages {
            log.save();
        }
        thread.stats
    }
}

/// The io_uring feed thread's loop; returns its counters.
pub(crate) fn feed_main_uring(
    thread: FeedThread,
    requests: rtrb::Consumer<FeedRequest>,
    stop: Arc<AtomicBool>,
    exit_on_close: bool,
    uring_config: UringConfig,
) -> FeedStats {
    let mut feed = match UringFeed::start(thread, requests, stop, exit_on_close, uring_config) {
        Ok(f) => f,
        Err(stats) => return *stats,
    };
    let mut idle_rounds = 0u32;
    // Events go to the core thread through the feed's ring: nothing to deliver here.
    let mut no_inline = |_: &[MarketEvent]| {};
    loop {
        match feed.round(&mut no_inline) {
            Round::Ended => break,
            Round::Busy => idle_rounds = 0,
            // Parked in the kernel until a completion arrives, not on a timer. The timeout
            // keeps timers, the stop flag and REST replies (which do not go through the
            // ring) on time.
            Round::Quiet if feed.idle() == IdleStrategy::Park => {
                if !feed.park(PARK_TIMEOUT) {
                    break;
                }
            }
            Round::Quiet => {
                feed.idle().wait(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            }
        }
    }
    feed.finish()
}

/// How long a parked feed sleeps at most: timers, the stop flag and REST answers wake no
/// completion.
pub(crate) const PARK_TIMEOUT: Duration = Duration::from_millis(1);

/// A stream's primary connection ended with nothing to replace it: a disconnect, a failed
/// connect, or the server's clean end.
fn on_primary_closed(
    thread: &mut FeedThread,
    s: &mut Stream,
    result: Result<(), TransportError>,
    exit_on_close: bool,
    stopping: bool,
) {
    let venue = thread.feed.venue;
    if s.opened {
        thread.stats.disconnects += 1;
    } else {
        thread.stats.connect_errors += 1;
    }
    let clean_end = exit_on_close && s.opened && result.is_ok();
    if s.opened && !stopping && !clean_end {
        thread.on_session(&mut s.parser, s.inst, SessionEvent::StreamBreak);
    }
    match result {
        Ok(()) if clean_end => s.finished = true,
        Ok(()) => {}
        Err(e) if exit_on_close && !s.opened && s.ever_opened && refused(&e) => {
            s.finished = true;
        }
        Err(e) if !stopping => {
            eprintln!("run: {venue} {}: {e}; reconnecting", s.symbol);
        }
        Err(_) => {}
    }
    s.opened = false;
    s.retry_at = Instant::now() + s.backoff.next_delay();
}
