//! The core-thread engine: books, sequencing, bars, imbalance and per-second tops.
//!
//! One engine owns every book (no locks: one writer thread), consumes normalised
//! [`MarketEvent`]s in arrival order and writes final bars and tops to a sink.
//!
//! ```text
//! MarketEvent --> Engine::on_event --+--> BookSequencer + OrderBook --> TopRow (per second)
//!                                    +--> BarEngine ------------------> Bar (per second)
//! end of input --> Engine::finish ----> open bars and last tops flushed
//! ```
//!
//! Driving loop:
//! ```
//! use flowcore_core::engine::{Engine, EngineSink, TopRow};
//! use flowcore_core::bars::Bar;
//! use flowcore_core::instrument::InstrumentTable;
//! #[derive(Default)]
//! struct Collect { bars: Vec<Bar>, tops: Vec<TopRow> }
//! impl flowcore_core::bars::BarSink for Collect { fn bar(&mut self, b: &Bar) { self.bars.push(*b) } }
//! impl EngineSink for Collect { fn top(&mut self, t: &TopRow) { self.tops.push(*t) } }
//! let table = InstrumentTable::binance_defaults();
//! let mut engine = Engine::new(table, Default::default(), None).unwrap();
//! let mut out = Collect::default();
//! // for event in parsed_events { engine.on_event(&event, &mut out); }
//! engine.finish(&mut out);
//! assert!(out.bars.is_empty());
//! ```

use crate::bars::{second_of, BarConfigError, BarEngine, BarSink};
use crate::book::{OrderBook, PriceLevel};
use crate::event::{
    BatchKind, BookBegin, BookSide, BookTicker, EventKind, Level, MarketEvent, SessionEvent, Trade,
};
use crate::imbalance::{obi_l1, ImbalanceConfig};
use crate::instrument::{InstrumentId, InstrumentTable, Venue};
use crate::sequencer::{BookSequencer, DiffAction, SnapshotAction, SyncRule};
use crate::trade_seq::{BackfillRequest, Resolution, TradeSequencer, TradeVerdict};
use crate::trade_window::{TradeWindow, WindowVerdict};
use crate::venue_stats::{StatsBook, StatsRow, StatsSink, VenueStats};

/// What the engine asks of the session that feeds an instrument (and what the session
/// asks its venue's REST API on its own timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedRequest {
    /// Fetch a REST depth snapshot.
    Snapshot(InstrumentId),
    /// Fetch the venue's trade history.
    Trades(InstrumentId, BackfillRequest),
    /// Poll the instrument's open interest (never raised by the engine: a feed session
    /// polls on its configured interval).
    OpenInterest(InstrumentId),
}

impl FeedRequest {
    /// The instrument it concerns.
    pub fn inst(&self) -> InstrumentId {
        match *self {
            FeedRequest::Snapshot(inst)
            | FeedRequest::Trades(inst, _)
            | FeedRequest::OpenInterest(inst) => inst,
        }
    }
}

/// The sampled top of a synced book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopSample {
    /// Best bid, if any.
    pub bid: Option<PriceLevel>,
    /// Best ask, if any.
    pub ask: Option<PriceLevel>,
    /// Level-1 imbalance at [`crate::imbalance::OBI_SCALE`].
    pub obi_l1: Option<i64>,
    /// Depth-weighted imbalance at [`crate::imbalance::OBI_SCALE`].
    pub obi: Option<i64>,
}

/// One book's state at the end of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopRow {
    /// The book's instrument.
    pub inst: InstrumentId,
    /// Start of the second, ms since the epoch.
    pub ts_ms: i64,
    /// `None` while the book is not synced: no top is published from an unsynced book.
    pub top: Option<TopSample>,
}

/// Receives final bars, per-second tops and per-second venue statistics.
pub trait EngineSink: BarSink {
    /// One per-second book row.
    fn top(&mut self, row: &TopRow);

    /// A trade the engine counted, in the order it counts them: as it arrives, or once the
    /// trade-id hole it was held behind is settled (then `local_ns` is the receive time of
    /// the message that settled it). Duplicates never come here. Ignored unless a sink
    /// wants them (the bus's `trades.ring`).
    fn trade(&mut self, inst: InstrumentId, trade: &Trade, local_ns: i64) {
        let _ = (inst, trade, local_ns);
    }

    /// One per-second statistics row (see [`crate::venue_stats`]); ignored unless a sink
    /// wants them.
    fn stats(&mut self, row: &StatsRow) {
        let _ = row;
    }
}

/// An [`EngineSink`] seen as a [`StatsSink`].
struct StatsOf<'a, S>(&'a mut S);

impl<S: EngineSink> StatsSink for StatsOf<'_, S> {
    #[inline]
    fn stats(&mut self, row: &StatsRow) {
        self.0.stats(row);
    }
}

crate::counters! {
    /// Engine counters, per venue (health records) and in total (the run summary).
    pub struct EngineCounters {
        /// Events consumed.
        pub events: u64,
        /// Continuity breaks detected.
        pub gaps: u64,
        /// Snapshot requests raised (one per gap, plus one per rejected snapshot).
        pub resync_requests: u64,
        /// Snapshots refused because they were older than the buffered diffs.
        pub snapshots_rejected: u64,
        /// Diffs applied.
        pub diffs_applied: u64,
        /// Batches that left a book crossed (best bid >= best ask).
        pub crossed_books: u64,
        /// Level events outside a batch, or a batch opened before the last one ended.
        pub framing_errors: u64,
        /// bookTicker messages checked against a book at the same update id.
        pub ticker_checks: u64,
        /// ... of which disagreed with the book's best bid/ask.
        pub ticker_mismatches: u64,
        /// Trades dropped because their id was already counted.
        pub duplicate_trades: u64,
        /// Holes in trade ids found (each is backfilled or flagged incomplete).
        pub trade_gaps: u64,
        /// Trades counted from the venue's trade history.
        pub backfilled_trades: u64,
        /// Holes given up: their seconds' bars are `complete: false`.
        pub unfilled_trade_gaps: u64,
        /// Connections that ended without being asked to.
        pub stream_breaks: u64,
        /// Trade-history requests the venue refused.
        pub backfills_refused: u64,
        /// Times the diffs buffered for a snapshot that did not come filled the reserved
        /// buffer and were dropped (the snapshot, when it comes, is then too old and asked
        /// again).
        pub buffer_overflows: u64,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    Idle,
    Apply,
    Skip,
    Buffer,
    LoadSnapshot,
}

#[derive(Debug)]
struct BookSlot {
    book: OrderBook,
    seq: BookSequencer,
    batch: Batch,
    /// Diffs received while no book could apply them, oldest first.
    pending: Vec<BookBegin>,
    /// Their levels, concatenated in the same order.
    pending_levels: Vec<Level>,
    /// Next second whose top row is due; `None` before the first diff.
    next_top_sec: Option<i64>,
    /// Second of the latest diff's `E`.
    last_diff_sec: Option<i64>,
    /// True once a synced row was written: rows follow every second from then on.
    tops_started: bool,
    /// A snapshot was asked for and has not arrived yet.
    snapshot_asked: bool,
    /// bookTickers ahead of the book, waiting for it to reach their update id.
    early_tickers: [Option<BookTicker>; EARLY_TICKERS],
    /// Next slot of `early_tickers` to overwrite (monotonic; index modulo the length).
    early_next: usize,
}

/// bookTickers kept while the book catches up (spot sends ~10 per depth diff).
const EARLY_TICKERS: usize = 32;

/// How an instrument's trades are known to be complete: by consecutive ids, a hole filled
/// from the venue's trade history (Binance), or by a window of recent ids, with no history
/// to ask (Bybit). What both do after a break goes through here, once.
#[derive(Debug, Clone)]
enum TradeContinuity {
    ById(TradeSequencer),
    Window(TradeWindow),
}

impl TradeContinuity {
    fn for_venue(venue: Venue) -> Self {
        if venue.has_consecutive_trade_ids() {
            Self::ById(TradeSequencer::new())
        } else {
            Self::Window(TradeWindow::new())
        }
    }

    fn is_holding(&self) -> bool {
        match self {
            Self::ById(seq) => seq.is_holding(),
            Self::Window(window) => window.is_holding(),
        }
    }

    fn on_break(&mut self, now_ms: i64) {
        match self {
            Self::ById(seq) => seq.on_break(now_ms),
            Self::Window(window) => window.on_break(),
        }
    }

    fn on_stream_event(&mut self, exch_ms: i64) {
        match self {
            Self::ById(seq) => seq.on_stream_event(exch_ms),
            Self::Window(window) => window.on_stream_event(exch_ms),
        }
    }

    fn release_if_quiet(&mut self, now_ms: i64) -> Option<Resolution> {
        match self {
            Self::ById(seq) => seq.release_if_quiet(now_ms),
            Self::Window(window) => window.release_if_quiet(now_ms),
        }
    }

    /// The end of the input: a hole still open is given up.
    fn finish(&mut self) -> Resolution {
        match self {
            Self::ById(seq) => seq.finish(),
            Self::Window(window) => window.finish(),
        }
    }

    /// The sequencer by id: what only a trade history has (backfills, held trades).
    fn by_id(&mut self) -> Option<&mut TradeSequencer> {
        match self {
            Self::ById(seq) => Some(seq),
            Self::Window(_) => None,
        }
    }
}

/// The engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    table: InstrumentTable,
    books: Vec<BookSlot>,
    /// Trade continuity per instrument.
    trades: Vec<TradeContinuity>,
    /// The venue's statistics per instrument (mark price, open interest, funding).
    stats: StatsBook,
    /// Per instrument: inside a trade-history answer.
    in_backfill: Vec<bool>,
    /// Instruments whose bars are held open.
    holding: usize,
    /// Requests for the session, oldest first.
    requests: Vec<FeedRequest>,
    /// Receive time of the event being applied.
    local_ts: i64,
    bars: BarEngine,
    imbalance: ImbalanceConfig,
    /// Per venue.
    counters: [EngineCounters; Venue::ALL.len()],
}

/// Levels buffered per book before a snapshot, reserved up front.
const RESERVED_PENDING_LEVELS: usize = 64 * 1024;

/// Diffs buffered per book before a snapshot, reserved up front (100 s of spot's
/// `depth@100ms`, 50 s of futures' `depth@0ms` at their average rates).
const RESERVED_PENDING_DIFFS: usize = 1024;

impl Engine {
    /// An engine over `table`. `members` restricts the aggregates to the instruments that
    /// take part in the run (every instrument of the table when `None`), and only their
    /// books get their room reserved up front (the others' grow if levels come).
    ///
    /// # Errors
    /// [`BarConfigError`] when an instrument's scales do not fit the aggregates.
    pub fn new(
        table: InstrumentTable,
        imbalance: ImbalanceConfig,
        members: Option<&[InstrumentId]>,
    ) -> Result<Self, BarConfigError> {
        let bars = BarEngine::new(&table, members)?;
        let books = table
            .iter()
            .map(|(id, inst)| {
                // Room is reserved for the run's instruments; the others' books work the
                // same and grow if levels ever come (a replay of two instruments made nine
                // full books: ~30 maps and ~90 page faults of its start and end, 2026-12-07).
                let expected = members.is_none_or(|m| m.contains(&id));
                let reserve = |n: usize| if expected { n } else { 0 };
                BookSlot {
                    book: if expected {
                        OrderBook::new()
                    } else {
                        OrderBook::unexpected()
                    },
                    seq: BookSequencer::new(match inst.venue {
                        Venue::BinanceSpot => SyncRule::BinanceSpot,
                        Venue::BinanceUsdm | Venue::BinanceCoinm => SyncRule::BinanceFutures,
                        Venue::BybitSpot | Venue::BybitLinear => SyncRule::BybitTopic,
                    }),
                    batch: Batch::Idle,
                    pending: Vec::with_capacity(reserve(RESERVED_PENDING_DIFFS)),
                    pending_levels: Vec::with_capacity(reserve(RESERVED_PENDING_LEVELS)),
                    next_top_sec: None,
                    last_diff_sec: None,
                    tops_started: false,
                    snapshot_asked: false,
                    early_tickers: [None; EARLY_TICKERS],
                    early_next: 0,
                }
            })
            .collect();
        Ok(Self {
            trades: table
                .iter()
                .map(|(_, inst)| TradeContinuity::for_venue(inst.venue))
                .collect(),
            in_backfill: vec![false; table.len()],
            stats: StatsBook::new(&table),
            holding: 0,
            requests: Vec::with_capacity(64),
            local_ts: 0,
            table,
            books,
            bars,
            imbalance,
            counters: [EngineCounters::default(); Venue::ALL.len()],
        })
    }

    /// The venue's latest statistics of `inst` (Bybit linear `tickers`, Binance futures
    /// `markPrice` and open interest).
    pub fn stats(&self, inst: InstrumentId) -> &VenueStats {
        self.stats.get(inst)
    }

    /// Sets how long an aggregate waits for a silent member before it goes on without it
    /// (exchange time; see [`crate::bars`]).
    pub fn set_member_timeout_ms(&mut self, ms: i64) {
        self.bars.set_member_timeout_ms(ms);
    }

    /// The instrument table.
    pub fn table(&self) -> &InstrumentTable {
        &self.table
    }

    /// The bar engine (aggregate definitions, bar counters).
    pub fn bars(&self) -> &BarEngine {
        &self.bars
    }

    /// Counters so far, every venue.
    pub fn counters(&self) -> EngineCounters {
        Venue::ALL.iter().map(|&v| self.venue_counters(v)).sum()
    }

    /// Counters so far of one venue's instruments.
    pub fn venue_counters(&self, venue: Venue) -> EngineCounters {
        let backfilled_trades = (self.table.iter())
            .filter(|(_, inst)| inst.venue == venue)
            .map(|(id, _)| match &self.trades[id.index()] {
                TradeContinuity::ById(seq) => seq.backfilled(),
                TradeContinuity::Window(_) => 0,
            })
            .sum();
        EngineCounters {
            backfilled_trades,
            ..self.counters[venue.index()]
        }
    }

    /// The counters of `inst`'s venue.
    #[inline]
    fn count(&mut self, inst: InstrumentId) -> &mut EngineCounters {
        &mut self.counters[self.table.get(inst).venue.index()]
    }

    /// The live book of an instrument (unsynced books may be empty or partial).
    pub fn book(&self, inst: InstrumentId) -> &OrderBook {
        &self.books[inst.index()].book
    }

    /// True when the instrument's book is synced.
    pub fn is_synced(&self, inst: InstrumentId) -> bool {
        self.books[inst.index()].seq.is_synced()
    }

    /// True inside a trade-history answer for `inst` (its trades are old news, not live flow).
    pub fn is_backfilling(&self, inst: InstrumentId) -> bool {
        self.in_backfill[inst.index()]
    }

    /// Takes the oldest request for the session (snapshots, trade history), if any. Live
    /// runs act on them; replay has the answers in its recording and ignores them.
    #[inline]
    pub fn pop_request(&mut self) -> Option<FeedRequest> {
        if self.requests.is_empty() {
            return None;
        }
        Some(self.requests.remove(0))
    }

    /// Consumes one event.
    #[inline]
    pub fn on_event(&mut self, ev: &MarketEvent, sink: &mut impl EngineSink) {
        self.count(ev.inst).events += 1;
        self.local_ts = ev.local_ts;
        if let EventKind::Level(level) = &ev.kind {
            // Most events are levels (741 k of the BTC set's 1.76 M). A level carries no
            // exchange time, and the `BookBegin` of its message, received at the same
            // time, already marked the instrument seen: nothing in `on_other_event`
            // concerns it. (A stray level outside any batch is a framing error, no sign of
            // life.) Kept small enough to inline into the caller's loop: a call an event
            // into the whole of `on_other_event` cost ~25 instructions a level.
            self.on_level(ev.inst, level);
            return;
        }
        self.on_other_event(ev, sink);
    }

    /// [`Self::on_event`] for every kind but a level, its counting done. Never inlined, so
    /// that `on_event` stays small enough to be.
    #[inline(never)]
    fn on_other_event(&mut self, ev: &MarketEvent, sink: &mut impl EngineSink) {
        match &ev.kind {
            EventKind::Trade(trade) => self.on_trade(ev.inst, trade, sink),
            EventKind::BookTicker(bt) => self.check_ticker(ev.inst, bt),
            EventKind::BookBegin(begin) => self.on_book_begin(ev.inst, begin, sink),
            EventKind::Level(level) => {
                self.on_level(ev.inst, level);
                return;
            }
            EventKind::BookEnd => self.on_book_end(ev.inst),
            EventKind::Session(session) => self.on_session(ev.inst, session, sink),
            EventKind::Stat(stat) => {
                let now_ms = self.bars.watermark_ms(self.table.get(ev.inst).venue);
                let sink = &mut StatsOf(sink);
                self.stats.on_stat(ev.inst, ev.local_ts, stat, now_ms, sink);
            }
        }
        // Statistics do not move the clock that closes bars: they may come over another
        // connection (USD-M `/market`) or REST (open interest, dated by the server's clock),
        // ahead of trades the stream has not delivered yet.
        let stream_ts = match ev.kind {
            EventKind::Stat(_) => None,
            _ => {
                // Alive for its aggregates, on the receive clock (the recording's in replay):
                // feeds replayed or caught up at speed run apart in exchange time, and only
                // a member that stopped arriving is dead.
                self.bars.seen(ev.inst, ev.local_ts.div_euclid(1_000_000));
                ev.exch_ts()
            }
        };
        if let Some(ts) = stream_ts {
            let venue = self.table.get(ev.inst).venue;
            let ms = ts.div_euclid(1_000_000);
            if self.holding > 0 && !self.in_backfill[ev.inst.index()] {
                // A stream event (snapshots carry no exchange time here, history trades
                // come inside a backfill): after a break, the stream is back.
                self.trades[ev.inst.index()].on_stream_event(ms);
            }
            self.bars.on_watermark(venue, ms, sink);
            if self.holding > 0 {
                self.release_quiet(venue, sink);
            }
        }
    }

    /// Flushes open bars (incomplete) and the tops up to the last diff's second.
    pub fn finish(&mut self, sink: &mut impl EngineSink) {
        for i in 0..self.trades.len() {
            // A hole still open at the end is given up; held bars close as far as the
            // watermark reached.
            let inst = InstrumentId(i as u16);
            if self.trades[i].is_holding() {
                let resolution = self.trades[i].finish();
                self.resolve(inst, resolution, sink);
            }
        }
        for i in 0..self.books.len() {
            let inst = InstrumentId(i as u16);
            if let Some(last) = self.books[i].last_diff_sec {
                self.write_tops_until(inst, last + 1, sink);
            }
        }
        self.stats.finish(&mut StatsOf(sink));
        self.bars.finish(sink);
    }

    fn on_trade(&mut self, inst: InstrumentId, trade: &Trade, sink: &mut impl EngineSink) {
        match &mut self.trades[inst.index()] {
            TradeContinuity::Window(window) => {
                let verdict = window.on_trade(trade);
                if verdict != WindowVerdict::Duplicate {
                    sink.trade(inst, trade, self.local_ts);
                }
                match verdict {
                    WindowVerdict::Count => self.bars.on_trade(inst, trade, sink),
                    WindowVerdict::Duplicate => self.count(inst).duplicate_trades += 1,
                    WindowVerdict::CountAfterBreak { through_ns } => {
                        // No history to fill the break from: its seconds may miss trades.
                        // They are flagged before this trade rolls the bars on, and the
                        // bars close only once it is counted.
                        self.count(inst).unfilled_trade_gaps += 1;
                        self.bars.mark_incomplete(inst, second_of(through_ns));
                        self.bars.on_trade(inst, trade, sink);
                        self.release(inst, sink);
                    }
                }
            }
            TradeContinuity::ById(seq) => {
                let was_holding = seq.is_holding();
                let verdict = seq.on_trade(trade, self.in_backfill[inst.index()]);
                match verdict {
                    TradeVerdict::Count => {
                        sink.trade(inst, trade, self.local_ts);
                        let still_holding = seq.is_holding();
                        self.bars.on_trade(inst, trade, sink);
                        if was_holding && !still_holding {
                            self.release(inst, sink);
                        }
                    }
                    TradeVerdict::Duplicate => self.count(inst).duplicate_trades += 1,
                    TradeVerdict::Hole => {
                        self.count(inst).trade_gaps += 1;
                        self.hold(inst);
                    }
                    TradeVerdict::Held => {}
                }
                self.collect_backfill_request(inst);
            }
        }
    }

    fn on_session(
        &mut self,
        inst: InstrumentId,
        session: &SessionEvent,
        sink: &mut impl EngineSink,
    ) {
        match *session {
            SessionEvent::StreamBreak => {
                self.count(inst).stream_breaks += 1;
                let venue = self.table.get(inst).venue;
                let now_ms = self.bars.watermark_ms(venue).unwrap_or(0);
                self.trades[inst.index()].on_break(now_ms);
                if self.trades[inst.index()].is_holding() {
                    self.hold(inst);
                }
                // The book missed diffs: it is unsynced (tops say so) until the successor
                // connection's first diff asks for a snapshot. A batch cut by the break
                // ends here.
                self.reset_book(inst);
                self.books[inst.index()].batch = Batch::Idle;
            }
            SessionEvent::BackfillBegin => self.in_backfill[inst.index()] = true,
            SessionEvent::BackfillEnd { last_id } => {
                self.in_backfill[inst.index()] = false;
                if let Some(seq) = self.trades[inst.index()].by_id() {
                    let resolution = seq.on_backfill_end(last_id.map(|id| id.get()));
                    self.resolve(inst, resolution, sink);
                }
            }
            SessionEvent::BackfillRefused => {
                self.count(inst).backfills_refused += 1;
                if let Some(seq) = self.trades[inst.index()].by_id() {
                    let resolution = seq.on_backfill_refused();
                    self.resolve(inst, resolution, sink);
                }
            }
        }
        self.collect_backfill_request(inst);
    }

    /// Acts on a trade sequencer's (or window's) resolution: counts the held trades and
    /// lets the bars close, flagging the seconds of a given-up hole.
    fn resolve(&mut self, inst: InstrumentId, resolution: Resolution, sink: &mut impl EngineSink) {
        match resolution {
            Resolution::Waiting => return,
            Resolution::Filled => {}
            Resolution::GaveUp { through_ns } => {
                self.count(inst).unfilled_trade_gaps += 1;
                self.bars.mark_incomplete(inst, second_of(through_ns));
            }
        }
        if let Some(seq) = self.trades[inst.index()].by_id() {
            for trade in seq.take_held() {
                sink.trade(inst, &trade, self.local_ts);
                self.bars.on_trade(inst, &trade, sink);
            }
        }
        if !self.trades[inst.index()].is_holding() {
            self.release(inst, sink);
        }
    }

    fn hold(&mut self, inst: InstrumentId) {
        if !self.bars.is_held(inst) {
            self.holding += 1;
            self.bars.hold(inst);
        }
    }

    fn release(&mut self, inst: InstrumentId, sink: &mut impl EngineSink) {
        if self.bars.is_held(inst) {
            self.holding -= 1;
            self.bars.release(inst, sink);
        }
    }

    /// Releases the held bars of a venue's instruments whose market went quiet after a break.
    fn release_quiet(&mut self, venue: Venue, sink: &mut impl EngineSink) {
        let Some(now_ms) = self.bars.watermark_ms(venue) else {
            return;
        };
        for i in 0..self.trades.len() {
            let inst = InstrumentId(i as u16);
            if self.table.get(inst).venue != venue {
                continue;
            }
            if let Some(resolution) = self.trades[i].release_if_quiet(now_ms) {
                self.resolve(inst, resolution, sink);
            }
        }
    }

    fn collect_backfill_request(&mut self, inst: InstrumentId) {
        let request = self.trades[inst.index()]
            .by_id()
            .and_then(|seq| seq.take_request());
        if let Some(request) = request {
            self.requests.push(FeedRequest::Trades(inst, request));
        }
    }

    /// Asks for a snapshot unless one is already on its way (one that arrives too old is
    /// rejected and asked again).
    fn request_snapshot(&mut self, inst: InstrumentId) {
        let slot = &mut self.books[inst.index()];
        if !core::mem::replace(&mut slot.snapshot_asked, true) {
            self.requests.push(FeedRequest::Snapshot(inst));
        }
    }

    /// Checks the book against the venue's own best bid/ask where both describe the same
    /// update id. On spot the ticker for update `u` usually arrives before the diff that
    /// ends at `u`, so tickers ahead of the book wait in a small ring until it catches up.
    fn check_ticker(&mut self, inst: InstrumentId, bt: &BookTicker) {
        let slot = &mut self.books[inst.index()];
        let last = match slot.seq.state() {
            crate::sequencer::SyncState::Synced { last_update_id } if slot.batch == Batch::Idle => {
                last_update_id
            }
            _ => return,
        };
        if bt.update_id == last {
            self.compare_ticker(inst, bt);
        } else if bt.update_id > last {
            let slot = &mut self.books[inst.index()];
            slot.early_tickers[slot.early_next % EARLY_TICKERS] = Some(*bt);
            slot.early_next += 1;
        }
    }

    fn compare_ticker(&mut self, inst: InstrumentId, bt: &BookTicker) {
        let book = &self.books[inst.index()].book;
        let same = book.best(BookSide::Bid)
            == Some(PriceLevel {
                px: bt.bid_px,
                qty: bt.bid_qty,
            })
            && book.best(BookSide::Ask)
                == Some(PriceLevel {
                    px: bt.ask_px,
                    qty: bt.ask_qty,
                });
        let counters = self.count(inst);
        counters.ticker_checks += 1;
        if !same {
            counters.ticker_mismatches += 1;
        }
    }

    /// After a diff: compares the waiting ticker of exactly this update id, drops older ones.
    fn check_early_tickers(&mut self, inst: InstrumentId, last: u64) {
        for i in 0..EARLY_TICKERS {
            let slot = &mut self.books[inst.index()];
            let Some(bt) = slot.early_tickers[i] else {
                continue;
            };
            if bt.update_id <= last {
                slot.early_tickers[i] = None;
            }
            if bt.update_id == last {
                self.compare_ticker(inst, &bt);
            }
        }
    }

    fn on_book_begin(&mut self, inst: InstrumentId, begin: &BookBegin, sink: &mut impl EngineSink) {
        if self.books[inst.index()].batch != Batch::Idle {
            // The previous batch never ended: its levels may be partial. Treat as a gap.
            self.count(inst).framing_errors += 1;
            self.gap(inst);
        }
        match begin.kind {
            BatchKind::Diff => {
                if let Some(e) = begin.exch_ts {
                    let sec = second_of(e.get());
                    self.write_tops_until(inst, sec, sink);
                    let slot = &mut self.books[inst.index()];
                    slot.last_diff_sec = Some(slot.last_diff_sec.map_or(sec, |s| s.max(sec)));
                }
                let slot = &mut self.books[inst.index()];
                let action = slot.seq.on_diff(
                    begin.first_update_id,
                    begin.last_update_id,
                    begin.prev_update_id,
                );
                let batch = match action {
                    DiffAction::Apply => {
                        self.count(inst).diffs_applied += 1;
                        Batch::Apply
                    }
                    DiffAction::Skip => Batch::Skip,
                    DiffAction::Buffer => {
                        // The stream is open and buffering: now the snapshot.
                        self.request_snapshot(inst);
                        self.buffer_or_skip(inst)
                    }
                    DiffAction::Gap => {
                        self.gap(inst);
                        self.buffer_or_skip(inst)
                    }
                };
                let slot = &mut self.books[inst.index()];
                slot.batch = batch;
                if slot.batch == Batch::Buffer {
                    // A snapshot that does not come must not grow the buffer without end:
                    // past what was reserved, the buffered diffs go (counted). The snapshot,
                    // when it comes, is older than what is kept, and asked again.
                    let full = slot.pending.len() == slot.pending.capacity()
                        || slot.pending_levels.len() + begin.levels as usize
                            > slot.pending_levels.capacity();
                    if full {
                        slot.pending.clear();
                        slot.pending_levels.clear();
                        self.count(inst).buffer_overflows += 1;
                    }
                    let slot = &mut self.books[inst.index()];
                    slot.pending.push(BookBegin {
                        levels: 0,
                        ..*begin
                    });
                }
            }
            BatchKind::Snapshot => {
                let slot = &mut self.books[inst.index()];
                slot.snapshot_asked = false;
                let first_buffered = slot.pending.first().map(|b| b.first_update_id);
                match slot.seq.on_snapshot(begin.last_update_id, first_buffered) {
                    SnapshotAction::Load => {
                        slot.book.clear();
                        slot.batch = Batch::LoadSnapshot;
                    }
                    SnapshotAction::Replace => {
                        slot.book.clear();
                        slot.pending.clear();
                        slot.pending_levels.clear();
                        slot.batch = Batch::LoadSnapshot;
                    }
                    SnapshotAction::Reject => {
                        slot.batch = Batch::Skip;
                        self.count(inst).snapshots_rejected += 1;
                        self.count(inst).resync_requests += 1;
                        self.request_snapshot(inst);
                    }
                }
            }
        }
    }

    /// What becomes of a diff while the book waits for a snapshot.
    fn buffer_or_skip(&self, inst: InstrumentId) -> Batch {
        if self.books[inst.index()].seq.keeps_diffs_before_snapshot() {
            Batch::Buffer
        } else {
            Batch::Skip
        }
    }

    #[inline]
    fn on_level(&mut self, inst: InstrumentId, level: &Level) {
        let slot = &mut self.books[inst.index()];
        match slot.batch {
            Batch::Apply | Batch::LoadSnapshot => slot.book.set(level.side, level.px, level.qty),
            Batch::Buffer => {
                slot.pending_levels.push(*level);
                // Count the levels that really arrived, whatever the header announced.
                if let Some(begin) = slot.pending.last_mut() {
                    begin.levels += 1;
                }
            }
            Batch::Skip => {}
            Batch::Idle => self.count(inst).framing_errors += 1,
        }
    }

    fn on_book_end(&mut self, inst: InstrumentId) {
        let slot = &mut self.books[inst.index()];
        let batch = core::mem::replace(&mut slot.batch, Batch::Idle);
        match batch {
            Batch::Apply => {
                let state = slot.seq.state();
                if slot.book.is_crossed() {
                    self.count(inst).crossed_books += 1;
                }
                if let crate::sequencer::SyncState::Synced { last_update_id } = state {
                    self.check_early_tickers(inst, last_update_id);
                }
            }
            Batch::LoadSnapshot => self.replay_pending(inst),
            Batch::Buffer | Batch::Skip => {}
            Batch::Idle => self.count(inst).framing_errors += 1,
        }
    }

    /// After a snapshot: runs the buffered diffs through the sequencer in order.
    fn replay_pending(&mut self, inst: InstrumentId) {
        let slot = &mut self.books[inst.index()];
        let mut level_at = 0usize;
        let mut consumed = 0usize;
        let mut gap = false;
        let mut applied = 0;
        for begin in &slot.pending {
            let levels = &slot.pending_levels[level_at..level_at + begin.levels as usize];
            match slot.seq.on_diff(
                begin.first_update_id,
                begin.last_update_id,
                begin.prev_update_id,
            ) {
                DiffAction::Apply => {
                    applied += 1;
                    for l in levels {
                        slot.book.set(l.side, l.px, l.qty);
                    }
                }
                DiffAction::Skip => {}
                DiffAction::Gap | DiffAction::Buffer => {
                    gap = true;
                    break;
                }
            }
            level_at += begin.levels as usize;
            consumed += 1;
        }
        slot.pending.drain(..consumed);
        slot.pending_levels.drain(..level_at);
        self.count(inst).diffs_applied += applied;
        if gap {
            self.count(inst).gaps += 1;
            self.count(inst).resync_requests += 1;
            self.books[inst.index()].book.clear();
            self.request_snapshot(inst);
        } else if self.books[inst.index()].book.is_crossed() {
            self.count(inst).crossed_books += 1;
        }
    }

    fn gap(&mut self, inst: InstrumentId) {
        self.count(inst).gaps += 1;
        self.count(inst).resync_requests += 1;
        self.reset_book(inst);
        self.request_snapshot(inst);
    }

    /// Drops a book and what it buffered: it waits for a snapshot again.
    fn reset_book(&mut self, inst: InstrumentId) {
        let slot = &mut self.books[inst.index()];
        slot.seq.reset();
        slot.book.clear();
        slot.pending.clear();
        slot.pending_levels.clear();
    }

    /// Writes the rows of every second before `until_sec` that is due.
    fn write_tops_until(&mut self, inst: InstrumentId, until_sec: i64, sink: &mut impl EngineSink) {
        let slot = &mut self.books[inst.index()];
        let mut sec = *slot.next_top_sec.get_or_insert(until_sec);
        if sec >= until_sec {
            return;
        }
        let synced = slot.seq.is_synced();
        slot.tops_started |= synced;
        if slot.tops_started {
            let top = synced.then(|| TopSample {
                bid: slot.book.best(BookSide::Bid),
                ask: slot.book.best(BookSide::Ask),
                obi_l1: obi_l1(&slot.book),
                obi: self.imbalance.obi(&slot.book),
            });
            while sec < until_sec {
                sink.top(&TopRow {
                    inst,
                    ts_ms: sec * 1000,
                    top,
                });
                sec += 1;
            }
        }
        slot.next_top_sec = Some(until_sec);
    }
}
