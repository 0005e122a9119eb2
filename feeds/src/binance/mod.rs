//! Binance market-data dialects: spot, USD-M and COIN-M futures.
//!
//! The three share one message grammar (combined-stream wrapper, `trade`, `aggTrade`,
//! `bookTicker`, `depthUpdate`, REST depth snapshot, subscribe replies) and differ in a few
//! fields: futures trades carry `X` (only `MARKET` is taker flow), futures diffs carry `pu`,
//! futures bookTickers carry `E`. Each dialect is a file stating those differences
//! ([`spot`], [`usdm`], [`coinm`]); the grammar lives here once.
//!
//! ```text
//! frame bytes --> BinanceParser::parse --> MarketEvent* (emitted through a callback)
//!                                     \--> Control (subscribe reply) / ParseError (counted)
//! ```
//!
//! Messages laid out as Binance sends them take a schema-specific fast path (`fast.rs`);
//! anything else (other key orders, whitespace, unknown fields, errors) takes the generic
//! scanner below, which also produces the precise error. Both give identical events.
//!
//! Sans-IO and allocation-free after construction: the parser keeps one scratch buffer
//! of levels, so a depth batch is emitted only once every level parsed (never half a batch).

pub mod coinm;
mod fast;
mod history;
pub mod session;
pub mod spot;
pub mod usdm;

use crate::book_batch::{emit_batch, read_levels};
use crate::fields::{decimal, emit_stats, required, string, time_ms, uint, SymbolCache};
use crate::json::{parse_u64, Kind, Raw, Scanner};
use crate::parsed::{Control, Parsed};
use crate::shaped_decimal::Shape;
use crate::ParseError;
use core::marker::PhantomData;
use core::num::NonZeroU64;
use flowcore_core::event::{
    maybe_ns, Aggressor, BatchKind, BookBegin, BookSide, BookTicker, EventKind, Level, MarketEvent,
    MaybeNanos, Nanos, StatField, Trade, TradeSource, FUNDING_RATE_SCALE, STAT_PRICE_SCALE,
};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};

/// What one Binance API family changes in the shared grammar.
pub trait BinanceDialect: core::fmt::Debug {
    /// The venue these messages come from.
    const VENUE: Venue;
    /// Diffs carry `pu` and follow the futures sequencing rule.
    const HAS_PREV_UPDATE_ID: bool;
    /// Trades carry `X`; only `MARKET` counts as taker flow.
    const HAS_EXECUTION_TYPE: bool;
}

/// Raw values of every key any Binance market message uses; filled in one pass.
#[derive(Debug, Default, Clone, Copy)]
struct Fields<'a> {
    e: Option<Raw<'a>>,
    big_e: Option<Raw<'a>>,
    big_t: Option<Raw<'a>>,
    s: Option<Raw<'a>>,
    t: Option<Raw<'a>>,
    a: Option<Raw<'a>>,
    p: Option<Raw<'a>>,
    q: Option<Raw<'a>>,
    m: Option<Raw<'a>>,
    x: Option<Raw<'a>>,
    u: Option<Raw<'a>>,
    big_u: Option<Raw<'a>>,
    pu: Option<Raw<'a>>,
    b: Option<Raw<'a>>,
    big_b: Option<Raw<'a>>,
    big_a: Option<Raw<'a>>,
    last_update_id: Option<Raw<'a>>,
    bids: Option<Raw<'a>>,
    asks: Option<Raw<'a>>,
    result: Option<Raw<'a>>,
    error: Option<Raw<'a>>,
    id: Option<Raw<'a>>,
    stream: Option<Raw<'a>>,
    data: Option<Raw<'a>>,
    /// `markPriceUpdate`: index price and funding rate.
    i: Option<Raw<'a>>,
    r: Option<Raw<'a>>,
    /// REST open interest: `openInterest`, `symbol`, `time`.
    open_interest: Option<Raw<'a>>,
    symbol: Option<Raw<'a>>,
    time: Option<Raw<'a>>,
}

impl<'a> Fields<'a> {
    /// Scans a whole message. A `data` object (the combined-stream wrapper) is walked in
    /// place into `data`, so the payload is read once.
    /// Both are filled in place: they are large, and moving them per message would cost
    /// more than the scan.
    fn scan(
        bytes: &'a [u8],
        top: &mut Fields<'a>,
        data: &mut Fields<'a>,
    ) -> Result<(), ParseError> {
        let mut scanner = Scanner::new(bytes);
        Self::scan_object(&mut scanner, top, Some(data))?;
        scanner.finish()?;
        Ok(())
    }

    fn scan_object(
        scanner: &mut Scanner<'a>,
        f: &mut Fields<'a>,
        mut data: Option<&mut Fields<'a>>,
    ) -> Result<(), ParseError> {
        scanner.object_in_place::<ParseError>(|key, s| {
            if key == b"data" && s.peek_byte() == Some(b'{') {
                if let Some(data) = data.as_deref_mut() {
                    let at = s.pos();
                    Self::scan_object(s, data, None)?;
                    f.data = Some(Raw {
                        kind: Kind::Object,
                        bytes: &[],
                        at,
                    });
                    return Ok(());
                }
            }
            let value = s.value()?;
            let slot = match key {
                b"e" => &mut f.e,
                b"E" => &mut f.big_e,
                b"T" => &mut f.big_t,
                b"s" => &mut f.s,
                b"t" => &mut f.t,
                b"a" => &mut f.a,
                b"p" => &mut f.p,
                b"q" => &mut f.q,
                b"m" => &mut f.m,
                b"X" => &mut f.x,
                b"u" => &mut f.u,
                b"U" => &mut f.big_u,
                b"pu" => &mut f.pu,
                b"b" => &mut f.b,
                b"B" => &mut f.big_b,
                b"A" => &mut f.big_a,
                b"lastUpdateId" => &mut f.last_update_id,
                b"bids" => &mut f.bids,
                b"asks" => &mut f.asks,
                b"result" => &mut f.result,
                b"error" => &mut f.error,
                b"id" => &mut f.id,
                b"stream" => &mut f.stream,
                b"data" => &mut f.data,
                b"i" => &mut f.i,
                b"r" => &mut f.r,
                b"openInterest" => &mut f.open_interest,
                b"symbol" => &mut f.symbol,
                b"time" => &mut f.time,
                _ => return Ok(()),
            };
            *slot = Some(value);
            Ok(())
        })?;
        Ok(())
    }
}

/// The message types of the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageType {
    Trade,
    AggTrade,
    BookTicker,
    DepthUpdate,
    /// Futures `<symbol>@markPrice[@1s]`: mark and index price, funding.
    MarkPrice,
}

/// Spot bookTicker carries no `e`: it is recognised by its stream name or by its shape
/// (`u`, `B` and `A` present). Both paths classify with this.
fn is_untagged_book_ticker(
    stream: Option<&[u8]>,
    has_u: bool,
    has_bid_qty: bool,
    has_ask_qty: bool,
) -> bool {
    stream.is_some_and(|s| s.ends_with(b"@bookTicker")) || (has_u && has_bid_qty && has_ask_qty)
}

/// An optional event time `E` (spot bookTicker and spot snapshots have none).
fn optional_time(field: Option<Raw<'_>>) -> Result<MaybeNanos, ParseError> {
    field.map_or(Ok(None), |_| Ok(maybe_ns(time_ms(field, "E")?)))
}

fn boolean(field: Option<Raw<'_>>, name: &'static str) -> Result<bool, ParseError> {
    let raw = required(field, name)?;
    match (raw.kind, raw.bytes) {
        (Kind::Bool, b"true") => Ok(true),
        (Kind::Bool, _) => Ok(false),
        _ => Err(ParseError::WrongType(name)),
    }
}

/// Which of the parser's remembered shapes a decimal or integer field of the fast path
/// reads with: each field keeps the shape of its own last value.
mod shape {
    // Decimal fields, a set per instrument (`BinanceParser::decimal_shapes`): prices and
    // sizes differ in length between symbols that share a connection.
    pub(super) const TICKER_BID_PX: usize = 0;
    pub(super) const TICKER_BID_QTY: usize = 1;
    pub(super) const TICKER_ASK_PX: usize = 2;
    pub(super) const TICKER_ASK_QTY: usize = 3;
    pub(super) const BID_LEVEL_PX: usize = 4;
    pub(super) const BID_LEVEL_QTY: usize = 5;
    pub(super) const ASK_LEVEL_PX: usize = 6;
    pub(super) const ASK_LEVEL_QTY: usize = 7;
    pub(super) const TRADE_PX: usize = 8;
    pub(super) const TRADE_QTY: usize = 9;
    pub(super) const DECIMALS: usize = 10;
    // Integer fields, one set (`BinanceParser::integer_shapes`): some come before the
    // symbol, and times are alike across symbols.
    pub(super) const EVENT_TIME: usize = 0;
    pub(super) const TRANSACTION_TIME: usize = 1;
    pub(super) const TRADE_ID: usize = 2;
    pub(super) const FIRST_UPDATE_ID: usize = 3;
    pub(super) const LAST_UPDATE_ID: usize = 4;
    pub(super) const PREVIOUS_UPDATE_ID: usize = 5;
    pub(super) const INTEGERS: usize = 6;
}

/// Parser for one Binance dialect. Holds the instrument table and a reusable level buffer.
#[derive(Debug)]
pub struct BinanceParser<D: BinanceDialect> {
    table: InstrumentTable,
    levels: Vec<Level>,
    symbols: SymbolCache,
    /// Scratch for a trade-history answer (checked whole before anything is emitted).
    history: Vec<Trade>,
    /// Each instrument's decimal fields' last shapes (fast path), by instrument index.
    decimal_shapes: Vec<[Shape; shape::DECIMALS]>,
    /// The integer fields' last shapes (fast path).
    integer_shapes: [Shape; shape::INTEGERS],
    _dialect: PhantomData<D>,
}

impl<D: BinanceDialect> BinanceParser<D> {
    /// Levels reserved for one depth batch (the largest diff seen held ~2,000; a REST
    /// snapshot up to 2 x 5,000).
    pub const RESERVED_LEVELS: usize = 16 * 1024;

    /// A parser resolving symbols against `table`.
    pub fn new(table: InstrumentTable) -> Self {
        Self {
            decimal_shapes: vec![Default::default(); table.len()],
            integer_shapes: Default::default(),
            table,
            levels: Vec::with_capacity(Self::RESERVED_LEVELS),
            symbols: SymbolCache::default(),
            history: Vec::new(),
            _dialect: PhantomData,
        }
    }

    /// The instrument table.
    pub fn table(&self) -> &InstrumentTable {
        &self.table
    }

    fn instrument(&mut self, symbol: &[u8]) -> Result<InstrumentId, ParseError> {
        self.symbols.find(&self.table, D::VENUE, symbol)
    }

    /// Parses one message: a WebSocket text frame, a REST depth snapshot or trade-history
    /// answer, or one of the session's marker lines ([`crate::session_marker`]).
    ///
    /// `snapshot_for` names the instrument a REST answer or marker belongs to (they carry
    /// no symbol); it is ignored for stream messages. Events are passed to `emit` in order;
    /// a depth batch is emitted whole or not at all.
    ///
    /// # Errors
    /// [`ParseError`] for malformed JSON, missing or mistyped fields, inexact decimals,
    /// unknown instruments or message types. Nothing is emitted for a refused message.
    pub fn parse(
        &mut self,
        local_ts: Nanos,
        msg: &[u8],
        snapshot_for: Option<InstrumentId>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        if let Some(parsed) = self.parse_book_ticker(local_ts, msg, emit) {
            return Ok(parsed);
        }
        if let Some(parsed) = self.parse_fast(local_ts, msg, emit) {
            return Ok(parsed);
        }
        if let Some(parsed) = crate::fields::session_marker(local_ts, msg, snapshot_for, emit) {
            return parsed;
        }
        if let Some(inst) = snapshot_for {
            if let Some(parsed) = self.parse_fast_snapshot(inst, local_ts, msg, emit) {
                return Ok(parsed);
            }
        }
        if msg.first() == Some(&b'[') {
            let inst = snapshot_for.ok_or(ParseError::UnknownInstrument)?;
            return self.trade_history(inst, local_ts, msg, emit);
        }
        let mut data = Fields::default();
        let mut top = Fields::default();
        Fields::scan(msg, &mut top, &mut data)?;
        if let Some(raw) = top.data {
            if raw.kind != Kind::Object {
                return Err(ParseError::WrongType("data"));
            }
            let stream = top.stream.filter(|s| s.kind == Kind::Str).map(|s| s.bytes);
            return self.market(local_ts, &data, stream, emit);
        }
        if top.last_update_id.is_some() {
            let inst = snapshot_for.ok_or(ParseError::UnknownInstrument)?;
            return self.snapshot(inst, local_ts, &top, emit);
        }
        if top.open_interest.is_some() {
            return self.open_interest(local_ts, &top, emit);
        }
        if top.result.is_some() && top.id.is_some() {
            return Ok(Parsed::Control(Control::SubscribeReply {
                id: uint(top.id, "id")?,
            }));
        }
        if top.error.is_some() {
            let id = top
                .id
                .filter(|v| v.kind == Kind::Num)
                .and_then(|v| parse_u64(v.bytes));
            return Ok(Parsed::Control(Control::RequestError { id }));
        }
        // A raw stream (`/ws/<stream>`): the object itself is the payload.
        self.market(local_ts, &top, None, emit)
    }

    fn market(
        &mut self,
        local_ts: Nanos,
        f: &Fields<'_>,
        stream: Option<&[u8]>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        let kind = match f.e.filter(|e| e.kind == Kind::Str).map(|e| e.bytes) {
            Some(b"trade") => MessageType::Trade,
            Some(b"aggTrade") => MessageType::AggTrade,
            Some(b"bookTicker") => MessageType::BookTicker,
            Some(b"depthUpdate") => MessageType::DepthUpdate,
            Some(b"markPriceUpdate") => MessageType::MarkPrice,
            Some(b"serverShutdown") => return Ok(Parsed::Control(Control::ServerShutdown)),
            Some(_) => return Err(ParseError::UnknownMessage),
            None if is_untagged_book_ticker(
                stream,
                f.u.is_some(),
                f.big_b.is_some(),
                f.big_a.is_some(),
            ) =>
            {
                MessageType::BookTicker
            }
            None => return Err(ParseError::UnknownMessage),
        };
        let inst = self.instrument(string(f.s, "s")?)?;
        let scales = {
            let i = self.table.get(inst);
            (i.price_scale, i.size_scale)
        };
        let event = |kind| MarketEvent {
            inst,
            local_ts,
            kind,
        };
        match kind {
            MessageType::MarkPrice => Self::mark_price(inst, local_ts, f, emit),
            MessageType::Trade | MessageType::AggTrade => {
                let (trade_id, source) = if kind == MessageType::Trade {
                    (uint(f.t, "t")?, TradeSource::Trade)
                } else {
                    (uint(f.a, "a")?, TradeSource::AggTrade)
                };
                let is_taker_flow = if D::HAS_EXECUTION_TYPE {
                    // aggTrade has no X on futures: it aggregates market trades only.
                    match f.x {
                        Some(x) => string(Some(x), "X")? == b"MARKET",
                        None if kind == MessageType::AggTrade => true,
                        None => return Err(ParseError::MissingField("X")),
                    }
                } else {
                    true
                };
                let trade = Trade {
                    trade_id,
                    px: decimal(f.p, "p", scales.0)?,
                    qty: decimal(f.q, "q", scales.1)?,
                    aggressor: if boolean(f.m, "m")? {
                        Aggressor::Sell
                    } else {
                        Aggressor::Buy
                    },
                    trade_ts: time_ms(f.big_t, "T")?,
                    exch_ts: time_ms(f.big_e, "E")?,
                    is_taker_flow,
                    source,
                };
                emit(event(EventKind::Trade(trade)));
                Ok(Parsed::Events(1))
            }
            MessageType::BookTicker => {
                let exch_ts = optional_time(f.big_e)?;
                let bt = BookTicker {
                    update_id: uint(f.u, "u")?,
                    bid_px: decimal(f.b, "b", scales.0)?,
                    bid_qty: decimal(f.big_b, "B", scales.1)?,
                    ask_px: decimal(f.a, "a", scales.0)?,
                    ask_qty: decimal(f.big_a, "A", scales.1)?,
                    exch_ts,
                };
                emit(event(EventKind::BookTicker(bt)));
                Ok(Parsed::Events(1))
            }
            MessageType::DepthUpdate => {
                let prev_update_id = if D::HAS_PREV_UPDATE_ID {
                    Some(NonZeroU64::new(uint(f.pu, "pu")?).ok_or(ParseError::BadInteger("pu"))?)
                } else {
                    None
                };
                let begin = BookBegin {
                    kind: BatchKind::Diff,
                    first_update_id: uint(f.big_u, "U")?,
                    last_update_id: uint(f.u, "u")?,
                    prev_update_id,
                    exch_ts: maybe_ns(time_ms(f.big_e, "E")?),
                    levels: 0,
                };
                self.batch(
                    inst,
                    local_ts,
                    begin,
                    required(f.b, "b")?,
                    required(f.a, "a")?,
                    scales,
                    emit,
                )
            }
        }
    }

    /// `markPriceUpdate`: `p` mark, `i` index, `r` funding rate and `T` next funding time
    /// (`""` and `0` on delivery contracts: absent). `P`, the estimated settle price, is
    /// not kept. Every value is read before any is emitted.
    fn mark_price(
        inst: InstrumentId,
        local_ts: Nanos,
        f: &Fields<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        let exch_ts = maybe_ns(time_ms(f.big_e, "E")?);
        let mut stats = [
            Some((StatField::MarkPrice, decimal(f.p, "p", STAT_PRICE_SCALE)?)),
            Some((StatField::IndexPrice, decimal(f.i, "i", STAT_PRICE_SCALE)?)),
            None,
            None,
        ];
        if let Some(r) = f.r.filter(|r| !(r.kind == Kind::Str && r.bytes.is_empty())) {
            stats[2] = Some((
                StatField::FundingRate,
                decimal(Some(r), "r", FUNDING_RATE_SCALE)?,
            ));
        }
        let next_funding = uint(f.big_t, "T")?;
        if next_funding != 0 {
            let ms = i64::try_from(next_funding).map_err(|_| ParseError::BadInteger("T"))?;
            stats[3] = Some((StatField::NextFundingMs, ms));
        }
        Ok(Parsed::Events(emit_stats(
            inst, local_ts, exch_ts, stats, emit,
        )))
    }

    /// A REST open-interest answer (`/fapi/v1/openInterest`, `/dapi/v1/openInterest`):
    /// `openInterest` at the instrument's size scale (base units on USD-M, contracts on
    /// COIN-M), dated by `time`.
    fn open_interest(
        &mut self,
        local_ts: Nanos,
        f: &Fields<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        let inst = self.instrument(string(f.symbol, "symbol")?)?;
        let size_scale = self.table.get(inst).size_scale;
        let value = decimal(f.open_interest, "openInterest", size_scale)?;
        let exch_ts = maybe_ns(time_ms(f.time, "time")?);
        let stats = [Some((StatField::OpenInterest, value))];
        Ok(Parsed::Events(emit_stats(
            inst, local_ts, exch_ts, stats, emit,
        )))
    }

    fn snapshot(
        &mut self,
        inst: InstrumentId,
        local_ts: Nanos,
        f: &Fields<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        let i = self.table.get(inst);
        let scales = (i.price_scale, i.size_scale);
        let id = uint(f.last_update_id, "lastUpdateId")?;
        let begin = BookBegin::snapshot(id, optional_time(f.big_e)?);
        self.batch(
            inst,
            local_ts,
            begin,
            required(f.bids, "bids")?,
            required(f.asks, "asks")?,
            scales,
            emit,
        )
    }

    /// Parses both level arrays into the scratch buffer, then emits the framed batch.
    #[allow(clippy::too_many_arguments)] // one call site per batch kind; a struct would only rename them
    #[allow(clippy::too_many_arguments)]
    fn batch(
        &mut self,
        inst: InstrumentId,
        local_ts: Nanos,
        begin: BookBegin,
        bids: Raw<'_>,
        asks: Raw<'_>,
        scales: (u8, u8),
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        self.levels.clear();
        read_levels(&mut self.levels, BookSide::Bid, bids, "b", scales)?;
        read_levels(&mut self.levels, BookSide::Ask, asks, "a", scales)?;
        self.emit_batch(inst, local_ts, begin, emit)
            .ok_or(ParseError::TooLarge)
    }

    /// [`emit_batch`] of the scratch buffer.
    fn emit_batch(
        &self,
        inst: InstrumentId,
        local_ts: Nanos,
        begin: BookBegin,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Option<Parsed> {
        emit_batch(&self.levels, inst, local_ts, begin, emit)
    }
}
