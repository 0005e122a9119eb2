//! Normalised market events: what dialect parsers produce and the engine consumes.
//!
//! Every event is small, `Copy` and fixed size so it can cross an SPSC ring by value.
//! A depth update or snapshot can carry hundreds of levels (35 KB seen on spot), so it is
//! not one struct: it is framed as
//!
//! ```text
//! BookBegin{kind, U, u, pu, levels} -> Level x levels -> BookEnd
//! ```
//!
//! and a consumer never samples a book between `BookBegin` and `BookEnd`.

use crate::instrument::InstrumentId;
use core::num::{NonZeroI64, NonZeroU64};

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// An exchange time that a message may lack (spot bookTicker, spot REST snapshots).
/// Zero is never a real exchange time, so the niche keeps events within a cache line.
pub type MaybeNanos = Option<NonZeroI64>;

/// Wraps an exchange time in ns as [`MaybeNanos`] (0 means absent).
#[inline]
pub const fn maybe_ns(ns: Nanos) -> MaybeNanos {
    NonZeroI64::new(ns)
}

/// Converts exchange milliseconds to [`Nanos`].
#[inline]
pub const fn ms_to_ns(ms: i64) -> Nanos {
    ms * 1_000_000
}

/// The aggressor (taker) side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggressor {
    /// The taker bought: adds to CVD.
    Buy,
    /// The taker sold: subtracts from CVD.
    Sell,
}

/// A side of an order book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// Buy orders, best = highest price.
    Bid,
    /// Sell orders, best = lowest price.
    Ask,
}

/// Which trade stream a trade came from: a feed uses one kind, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradeSource {
    /// Every individual fill (`@trade`).
    Trade,
    /// Fills aggregated by taker order and price (`@aggTrade`).
    AggTrade,
}

/// One public trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// Venue trade id (`t`), or the aggregate id (`a`) for aggTrade.
    pub trade_id: u64,
    /// Price mantissa at the instrument's price scale.
    pub px: i64,
    /// Quantity mantissa at the instrument's size scale (contracts for inverse futures).
    pub qty: i64,
    /// Taker side.
    pub aggressor: Aggressor,
    /// Trade time `T`: the key that buckets bars.
    pub trade_ts: Nanos,
    /// Event time `E`, when the venue sent it.
    pub exch_ts: Nanos,
    /// False for fills that are not taker flow (futures `X` other than `MARKET`, such as
    /// `INSURANCE_FUND`): they are excluded from bars entirely.
    pub is_taker_flow: bool,
    /// Which stream it came from.
    pub source: TradeSource,
}

/// Best bid and ask as the venue publishes them (`@bookTicker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker {
    /// Book update id `u` this top belongs to.
    pub update_id: u64,
    /// Best bid price mantissa.
    pub bid_px: i64,
    /// Best bid size mantissa.
    pub bid_qty: i64,
    /// Best ask price mantissa.
    pub ask_px: i64,
    /// Best ask size mantissa.
    pub ask_qty: i64,
    /// Event time `E` (futures only; spot bookTicker carries no time).
    pub exch_ts: MaybeNanos,
}

/// Whether a level batch replaces the book or updates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// A diff (`depthUpdate`): absolute quantities per level, zero deletes.
    Diff,
    /// A full snapshot (REST depth): the book becomes exactly these levels.
    Snapshot,
}

/// Opens a batch of [`Level`] events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookBegin {
    /// Diff or snapshot.
    pub kind: BatchKind,
    /// First update id in the diff (`U`); for a snapshot, its `lastUpdateId`.
    pub first_update_id: u64,
    /// Last update id in the diff (`u`); for a snapshot, its `lastUpdateId`.
    pub last_update_id: u64,
    /// The previous diff's `u` (`pu`, futures only; never 0 on Binance, and the niche
    /// keeps the event within a cache line).
    pub prev_update_id: Option<NonZeroU64>,
    /// Event time `E` (none on spot REST snapshots).
    pub exch_ts: MaybeNanos,
    /// How many [`Level`] events follow before [`EventKind::BookEnd`].
    pub levels: u32,
}

impl BookBegin {
    /// A REST snapshot's batch: `lastUpdateId` as both update ids, the level count filled
    /// in when the batch is emitted.
    pub fn snapshot(last_update_id: u64, exch_ts: MaybeNanos) -> Self {
        Self {
            kind: BatchKind::Snapshot,
            first_update_id: last_update_id,
            last_update_id,
            prev_update_id: None,
            exch_ts,
            levels: 0,
        }
    }
}

/// One price level of the current batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Bid or ask.
    pub side: BookSide,
    /// Price mantissa.
    pub px: i64,
    /// New absolute quantity mantissa; zero deletes the level.
    pub qty: i64,
}

/// What the session (not the venue's stream) tells the engine about an instrument. Each
/// comes from a message (a REST answer, or a marker line the session writes to the
/// recording where it has no message), so replaying a recording gives them back in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The connection carrying the instrument ended without being asked to: trades and
    /// diffs may have been missed until its successor's stream.
    StreamBreak,
    /// A REST trade-history answer begins: the `Trade` events up to `BackfillEnd` are from it.
    BackfillBegin,
    /// The trade-history answer ended.
    BackfillEnd {
        /// The largest trade id it held; `None` when it was empty.
        last_id: Option<NonZeroU64>,
    },
    /// The venue refused the trade history (no API key, too old, errors past retrying).
    BackfillRefused,
}

/// Scale of [`VenueStat::value`] for [`StatField::FundingRate`]: `0.0001` is `10_000`.
pub const FUNDING_RATE_SCALE: u8 = 8;

/// Scale of [`VenueStat::value`] for [`StatField::MarkPrice`] and [`StatField::IndexPrice`]:
/// eight decimals for every instrument, because index prices are averages that do not sit
/// on the tick (Binance sends `"i":"11784.62659091"`).
pub const STAT_PRICE_SCALE: u8 = 8;

/// Which venue statistic a [`VenueStat`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatField {
    /// Mark price, at [`STAT_PRICE_SCALE`].
    MarkPrice,
    /// Index price, at [`STAT_PRICE_SCALE`].
    IndexPrice,
    /// Open interest, at the instrument's size scale (contracts or base units as the venue
    /// counts them).
    OpenInterest,
    /// Funding rate per interval, at [`FUNDING_RATE_SCALE`].
    FundingRate,
    /// Next funding time, Unix ms.
    NextFundingMs,
}

/// One venue statistic that is neither book nor trade (Bybit linear `tickers`, Binance
/// futures `markPrice` and the REST open interest: mark and index price, open interest,
/// funding), carried for strategies. A message brings only the fields that changed (or it
/// has), one event each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueStat {
    /// What it is.
    pub field: StatField,
    /// Its new value (scale: see [`StatField`]).
    pub value: i64,
    /// The venue's time of the message.
    pub exch_ts: Option<NonZeroI64>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A public trade.
    Trade(Trade),
    /// Best bid/ask.
    BookTicker(BookTicker),
    /// Start of a level batch.
    BookBegin(BookBegin),
    /// One level of the open batch.
    Level(Level),
    /// End of the open batch: the book may be sampled again.
    BookEnd,
    /// Connection and backfill news.
    Session(SessionEvent),
    /// A venue statistic (mark price, open interest, funding).
    Stat(VenueStat),
}

/// A normalised event for one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketEvent {
    /// The instrument it concerns.
    pub inst: InstrumentId,
    /// Local receive time of the message that carried it (the recording's value in replay).
    pub local_ts: Nanos,
    /// The payload.
    pub kind: EventKind,
}

impl MarketEvent {
    /// The venue's event time, where the message carried one. Drives bar finality (except a
    /// statistic's: see [`crate::engine::Engine::on_event`]).
    #[inline]
    pub fn exch_ts(&self) -> Option<Nanos> {
        match &self.kind {
            EventKind::Trade(t) => Some(t.exch_ts),
            EventKind::BookTicker(b) => b.exch_ts.map(NonZeroI64::get),
            EventKind::BookBegin(b) if b.kind == BatchKind::Diff => b.exch_ts.map(NonZeroI64::get),
            EventKind::Stat(s) => s.exch_ts.map(NonZeroI64::get),
            _ => None,
        }
    }
}

// Events cross rings by value: 72 bytes today (a 48-byte payload, its tag, instrument and
// local time). Growing it costs ring throughput; this check makes that a decision.
const _: () = assert!(
    core::mem::size_of::<MarketEvent>() <= 72,
    "MarketEvent grew"
);
