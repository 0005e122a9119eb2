//! A feed thread's state, shared by its connection tasks: both transports
//! ([`super::tokio_feed`], [`super::uring_feed`]) stamp, record, parse and hand on each
//! message through [`FeedThread::on_message`], so they produce the same events.

use super::link::LinkCounters;
use super::rest::{RestAnswer, RestRequest};
use super::stats::{FeedStats, LiveCounters};
use crate::clock::EpochClock;
use crate::config::{FeedConfig, IdleStrategy};
use crate::handoff::BatchWriter;
use crate::recorder::RecordWriter;
use crate::stages::StageLog;
use flowcore_core::engine::FeedRequest;
use flowcore_core::event::{MarketEvent, SessionEvent};
use flowcore_core::instrument::{InstrumentId, InstrumentTable};
use flowcore_feeds::bybit::session::BybitSubscriber;
use flowcore_feeds::journal::RecordKind;
use flowcore_feeds::marker_line;
use flowcore_feeds::parsed::{Control, Parsed};
use flowcore_feeds::parser::VenueParser;
use flowcore_feeds::transport::TransportError;
use flowcore_feeds::venue_session::VenueSession;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A feed thread's state, shared by its connection tasks (one thread, no locks).
pub(crate) struct FeedThread {
    pub(crate) feed: Rc<FeedConfig>,
    pub(crate) table: InstrumentTable,
    /// Where each message's events go when it ends.
    pub(super) events: EventOut,
    pub(super) recorder: Option<RecordWriter>,
    pub(super) clock: EpochClock,
    pub(crate) idle: IdleStrategy,
    pub(crate) snapshot_limit: u32,
    /// Largest WebSocket message accepted.
    pub(crate) max_message: usize,
    pub(crate) stats: FeedStats,
    /// `stats` as the core thread sees them.
    pub(super) live: Arc<LiveCounters>,
    /// Record file of each instrument's current connection.
    pub(super) files: Vec<(InstrumentId, u32)>,
    /// REST requests in flight.
    pub(crate) fetching: HashSet<FeedRequest>,
    /// Instruments whose book topics their connection is to subscribe again (Bybit).
    pub(crate) resubscribe: HashSet<InstrumentId>,
    /// When each symbol's open interest is next polled (with `open_interest_s`).
    pub(crate) open_interest_due: Option<Instant>,
    /// Stage stamps of each frame, for the end-to-end bench.
    pub(super) stages: Option<StageLog>,
}

impl FeedThread {
    /// Starts a record file for `inst`'s new connection (with `--record`).
    pub(crate) fn open_record_file(&mut self, inst: InstrumentId, symbol: &str) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        let name = format!("{}_{}", self.feed.venue.name(), symbol.to_ascii_lowercase());
        let ts = self.clock.now();
        // The instrument's lines go to the new connection's file from now on.
        if let Some(at) = self.files.iter().position(|(i, _)| *i == inst) {
            let (_, old) = self.files.swap_remove(at);
            recorder.close(old, ts, self.idle);
        }
        let file = recorder.open(&name, ts, self.idle);
        self.files.push((inst, file));
    }

    /// Makes the counters visible to the core thread's health records.
    pub(crate) fn publish_stats(&self) {
        self.live.store(&self.stats);
    }

    /// Stamps, records, parses and hands on one message; `None` when the parser refused it
    /// (counted), or for the break of a connection that carries no trades or book.
    pub(crate) fn on_message(
        &mut self,
        parser: &mut VenueParser,
        inst: InstrumentId,
        bytes: &[u8],
        snapshot_for: Option<InstrumentId>,
    ) -> Option<Parsed> {
        // The marker compare first: it is a length check for every real message, where the
        // feed's streams would be looked through on each one.
        if flowcore_feeds::session_marker(bytes) == Some(SessionEvent::StreamBreak)
            && !self.feed.carries_market_flow()
        {
            // A statistics-only connection (USD-M `/market`) dropping loses no trade and no
            // diff: the instrument's book and trades live on another feed's connection.
            return None;
        }
        let (ts, received) = self.clock.now_and_raw();
        self.stats.messages += 1;
        if let Some(recorder) = &mut self.recorder {
            if let Some(&(_, file)) = self.files.iter().find(|(i, _)| *i == inst) {
                let kind = match (snapshot_for, flowcore_feeds::session_marker(bytes)) {
                    (_, Some(_)) => RecordKind::Marker,
                    (Some(_), None) => RecordKind::Rest,
                    (None, None) => RecordKind::Frame,
                };
                recorder.line(file, ts, kind, bytes, self.idle);
            }
        }
        let result = match &mut self.events {
            EventOut::Ring(ring) => {
                let result = parser.parse(ts, bytes, snapshot_for, &mut |ev| ring.push(ev));
                // The core is gone only when the run ends: nothing to deliver to.
                let _ = ring.end_message();
                self.stats.ring_waits = ring.full_waits;
                result
            }
            EventOut::Inline(events) => {
                parser.parse(ts, bytes, snapshot_for, &mut |ev| events.push(ev))
            }
        };
        if let (Some(log), None) = (&mut self.stages, snapshot_for) {
            log.push(ts, received, log.raw());
        }
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

    /// Hands the events parsed since the last call to `deliver` (inline mode; nothing
    /// otherwise).
    #[inline]
    pub(crate) fn deliver_inline(&mut self, deliver: &mut dyn FnMut(&[MarketEvent])) {
        if let EventOut::Inline(events) = &mut self.events {
            if !events.is_empty() {
                deliver(events);
                events.clear();
            }
        }
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
            FeedRequest::OpenInterest(_) => self.stats.open_interest_errors += 1,
        }
    }

    /// The open-interest polls due at `now`, one per symbol of the feed, every
    /// `open_interest_s`, the first one interval after the feed starts (its streams are up
    /// by then).
    pub(crate) fn open_interest_polls(&mut self, now: Instant) -> Vec<RestRequest> {
        let Some(every) = self.feed.open_interest_every else {
            return Vec::new();
        };
        if now < *self.open_interest_due.get_or_insert(now + every) {
            return Vec::new();
        }
        self.open_interest_due = Some(now + every);
        let feed = Rc::clone(&self.feed);
        let mut polls = Vec::new();
        for symbol in &feed.symbols {
            if let Some(inst) = self.table.find(feed.venue, symbol.as_bytes()) {
                polls.extend(self.rest_request(FeedRequest::OpenInterest(inst)));
            }
        }
        polls
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
                    (FeedRequest::OpenInterest(_), true) => self.stats.open_interest_polls += 1,
                    (FeedRequest::OpenInterest(_), false) => {
                        self.stats.open_interest_errors += 1;
                    }
                }
            }
            // Only a trade history is given up on, which the engine must hear of; a failed
            // open-interest poll waits for the next one (its error is counted already).
            RestAnswer::Refused => {
                if let FeedRequest::Trades(..) = request {
                    self.on_session(parser, inst, SessionEvent::BackfillRefused);
                }
            }
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
        let rest = RestRequest::new(
            &self.feed,
            &market,
            &self.table,
            self.snapshot_limit,
            request,
        )?;
        self.fetching.insert(request).then_some(rest)
    }
}

/// Where a feed thread's parsed events go.
#[derive(Debug)]
pub(crate) enum EventOut {
    /// To the core thread, a batch per message through the feed's ring.
    Ring(BatchWriter<MarketEvent>),
    /// Kept for the engine on this same thread (`pipeline.mode = "inline"`), which takes
    /// them as soon as the message is parsed ([`FeedThread::deliver_inline`]). No ring: one
    /// message's events (a snapshot of thousands of levels) could outgrow any ring that
    /// only this thread empties. The vector grows to the largest message once.
    Inline(Vec<MarketEvent>),
}

pub(crate) type Shared = Rc<RefCell<FeedThread>>;

/// How long a feed whose connections have all ended waits for snapshots still in flight.
pub(crate) const SNAPSHOT_GRACE: Duration = Duration::from_secs(15);

/// A connection refused: nobody listens there (any more).
pub(crate) fn refused(e: &TransportError) -> bool {
    matches!(e, TransportError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
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
