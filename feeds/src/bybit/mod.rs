//! Bybit v5 public market data: spot and linear (USDT perpetual) dialects.
//!
//! Both share one grammar: a message is an object with `topic` (`publicTrade.SYM`,
//! `orderbook.N.SYM`, `tickers.SYM`), `type` (`snapshot` or `delta`), `ts` (the venue's
//! send time, ms) and `data`, in any key order (spot puts `ts` before `type`, linear after);
//! or a reply to the client's `op` (`subscribe`, `ping`). The dialects differ in a few
//! facts ([`spot`], [`linear`]): spot trade ids are decimal numbers, linear ones UUIDs.
//!
//! ```text
//! publicTrade.SYM   data: [{T, s, S, v, p, i, BT, ...}, ...]  -> Trade per element
//! orderbook.N.SYM   data: {s, b, a, u, seq}, type snapshot     -> BookBegin(Snapshot, u)..BookEnd
//!                                            type delta        -> BookBegin(Diff, u)..BookEnd
//! {"op":"subscribe","success":..}, {"op":"pong"|"ping",...}    -> Control
//! ```
//!
//! A message is emitted whole or not at all: trades and levels go to scratch buffers
//! reserved up front and are emitted once every one of them parsed. Quantity 0 deletes a
//! level; the engine's [`flowcore_core::sequencer::SyncRule::BybitTopic`] checks that each
//! delta's `u` follows the previous message's.
//!
//! Block trades (`BT: true`) are negotiated off the book: they are excluded from bars
//! unless [`BybitParser::count_block_trades`] is set.

pub mod linear;
pub mod session;
pub mod spot;

use crate::book_batch::{emit_batch, read_levels};
use crate::fields::{decimal, emit_stats, required, string, time_ms, uint, SymbolCache};
use crate::json::{parse_u64, Kind, Raw, Scanner};
use crate::parsed::{Control, Parsed};
use crate::ParseError;
use core::marker::PhantomData;
use flowcore_core::event::{
    maybe_ns, Aggressor, BatchKind, BookBegin, BookSide, EventKind, Level, MarketEvent, Nanos,
    StatField, Trade, TradeSource, FUNDING_RATE_SCALE, STAT_PRICE_SCALE,
};
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};

/// What one Bybit category changes in the shared grammar.
pub trait BybitDialect: core::fmt::Debug {
    /// The venue these messages come from.
    const VENUE: Venue;
    /// Trade ids `i` are decimal numbers (spot); otherwise UUIDs (linear), which are folded
    /// to 64 bits (they only need to tell trades apart, not order them).
    const NUMERIC_TRADE_IDS: bool;
}

/// The top-level keys of a Bybit message.
#[derive(Debug, Default, Clone, Copy)]
struct Envelope<'a> {
    topic: Option<Raw<'a>>,
    kind: Option<Raw<'a>>,
    ts: Option<Raw<'a>>,
    data: Option<Raw<'a>>,
    op: Option<Raw<'a>>,
    success: Option<Raw<'a>>,
    ret_msg: Option<Raw<'a>>,
    req_id: Option<Raw<'a>>,
}

impl<'a> Envelope<'a> {
    fn scan(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let mut e = Self::default();
        let mut scanner = Scanner::new(bytes);
        scanner.object::<ParseError>(|key, value| {
            let slot = match key {
                b"topic" => &mut e.topic,
                b"type" => &mut e.kind,
                b"ts" => &mut e.ts,
                b"data" => &mut e.data,
                b"op" => &mut e.op,
                b"success" => &mut e.success,
                b"ret_msg" => &mut e.ret_msg,
                b"req_id" => &mut e.req_id,
                _ => return Ok(()),
            };
            *slot = Some(value);
            Ok(())
        })?;
        scanner.finish()?;
        Ok(e)
    }
}

/// The keys of an `orderbook` message's `data`.
#[derive(Debug, Default, Clone, Copy)]
struct BookData<'a> {
    s: Option<Raw<'a>>,
    b: Option<Raw<'a>>,
    a: Option<Raw<'a>>,
    u: Option<Raw<'a>>,
}

/// The keys of one `publicTrade` element.
#[derive(Debug, Default, Clone, Copy)]
struct TradeData<'a> {
    big_t: Option<Raw<'a>>,
    s: Option<Raw<'a>>,
    big_s: Option<Raw<'a>>,
    v: Option<Raw<'a>>,
    p: Option<Raw<'a>>,
    i: Option<Raw<'a>>,
    bt: Option<Raw<'a>>,
}

/// The statistics of a `tickers` message's `data`.
#[derive(Debug, Default, Clone, Copy)]
struct TickerData<'a> {
    symbol: Option<Raw<'a>>,
    mark_price: Option<Raw<'a>>,
    index_price: Option<Raw<'a>>,
    open_interest: Option<Raw<'a>>,
    funding_rate: Option<Raw<'a>>,
    next_funding_time: Option<Raw<'a>>,
}

/// A UUID (`a9188a0a-82bc-50de-be60-03eedbe3cdd7`: 32 hex digits, dashes anywhere) folded
/// to 64 bits.
fn uuid_id(text: &[u8]) -> Option<u64> {
    let mut v: u128 = 0;
    let mut digits = 0;
    for &c in text {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'-' => continue,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
        digits += 1;
    }
    (digits == 32).then_some((v >> 64) as u64 ^ v as u64)
}

/// Parser for one Bybit dialect: the instrument table and reusable scratch buffers.
#[derive(Debug)]
pub struct BybitParser<D: BybitDialect> {
    table: InstrumentTable,
    levels: Vec<Level>,
    trades: Vec<Trade>,
    symbols: SymbolCache,
    /// Count block trades (`BT: true`) as taker flow; off by default.
    pub count_block_trades: bool,
    _dialect: PhantomData<D>,
}

impl<D: BybitDialect> BybitParser<D> {
    /// Levels reserved for one message (an `orderbook.1000` snapshot is 2 x 1,000).
    pub const RESERVED_LEVELS: usize = 4 * 1024;
    /// Trades reserved for one message (`publicTrade` carries up to 1,024).
    pub const RESERVED_TRADES: usize = 1024;

    /// A parser resolving symbols against `table`.
    pub fn new(table: InstrumentTable) -> Self {
        Self {
            table,
            levels: Vec::with_capacity(Self::RESERVED_LEVELS),
            trades: Vec::with_capacity(Self::RESERVED_TRADES),
            symbols: SymbolCache::default(),
            count_block_trades: false,
            _dialect: PhantomData,
        }
    }

    fn instrument(&mut self, symbol: &[u8]) -> Result<InstrumentId, ParseError> {
        self.symbols.find(&self.table, D::VENUE, symbol)
    }

    /// The instrument of a topic's symbol, which the symbol `data` names (when it names
    /// one) must equal, and its price and size scales.
    fn topic_instrument(
        &mut self,
        named: Option<Raw<'_>>,
        key: &'static str,
        topic_symbol: &[u8],
    ) -> Result<(InstrumentId, (u8, u8)), ParseError> {
        if named.is_some() && string(named, key)? != topic_symbol {
            return Err(ParseError::UnknownInstrument);
        }
        let inst = self.instrument(topic_symbol)?;
        let i = self.table.get(inst);
        Ok((inst, (i.price_scale, i.size_scale)))
    }

    /// Parses one message: a WebSocket text frame or a session marker line
    /// ([`crate::session_marker`], for the instrument `marker_for`). Events go to `emit` in
    /// order, all of a message or none.
    ///
    /// # Errors
    /// [`ParseError`] for malformed JSON, missing or mistyped fields, inexact decimals,
    /// unknown instruments or topics. Nothing is emitted for a refused message.
    pub fn parse(
        &mut self,
        local_ts: Nanos,
        msg: &[u8],
        marker_for: Option<InstrumentId>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        if let Some(parsed) = crate::fields::session_marker(local_ts, msg, marker_for, emit) {
            return parsed;
        }
        let e = Envelope::scan(msg)?;
        if e.op.is_some() {
            return Self::reply(&e);
        }
        let topic = string(e.topic, "topic")?;
        let (family, symbol) = match (
            topic.iter().position(|&c| c == b'.'),
            topic.iter().rposition(|&c| c == b'.'),
        ) {
            (Some(first), Some(last)) => (&topic[..first], &topic[last + 1..]),
            _ => return Err(ParseError::UnknownMessage),
        };
        let exch_ts = time_ms(e.ts, "ts")?;
        let data = required(e.data, "data")?;
        match family {
            b"publicTrade" => self.trades(local_ts, exch_ts, symbol, data, emit),
            b"orderbook" => {
                let kind = match string(e.kind, "type")? {
                    b"snapshot" => BatchKind::Snapshot,
                    b"delta" => BatchKind::Diff,
                    _ => return Err(ParseError::WrongType("type")),
                };
                self.book(local_ts, exch_ts, kind, symbol, data, emit)
            }
            b"tickers" => self.tickers(local_ts, exch_ts, symbol, data, emit),
            _ => Err(ParseError::UnknownMessage),
        }
    }

    /// `tickers.SYM`: the statistics present in `data` (a delta carries only what changed),
    /// one [`VenueStat`] each. Fields that are not statistics (`bid1Price`, `lastPrice`,
    /// 24 h figures) are skipped: the book and the trades carry them exactly.
    fn tickers(
        &mut self,
        local_ts: Nanos,
        exch_ts: Nanos,
        topic_symbol: &[u8],
        data: Raw<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        if data.kind != Kind::Object {
            return Err(ParseError::WrongType("data"));
        }
        let mut f = TickerData::default();
        Scanner::new(data.bytes)
            .object::<ParseError>(|key, value| {
                let slot = match key {
                    b"symbol" => &mut f.symbol,
                    b"markPrice" => &mut f.mark_price,
                    b"indexPrice" => &mut f.index_price,
                    b"openInterest" => &mut f.open_interest,
                    b"fundingRate" => &mut f.funding_rate,
                    b"nextFundingTime" => &mut f.next_funding_time,
                    _ => return Ok(()),
                };
                *slot = Some(value);
                Ok(())
            })
            .map_err(|e| e.offset_by(data.at))?;
        let (inst, (_, size_scale)) = self.topic_instrument(f.symbol, "symbol", topic_symbol)?;
        // Every present field is read before any is emitted: all or nothing.
        fn present(raw: Option<Raw<'_>>) -> Option<Raw<'_>> {
            // Bybit sends `""` for a statistic it has no value for.
            raw.filter(|r| !(r.kind == Kind::Str && r.bytes.is_empty()))
        }
        let mut stats = [None; 5];
        let decimals = [
            (
                f.mark_price,
                StatField::MarkPrice,
                "markPrice",
                STAT_PRICE_SCALE,
            ),
            (
                f.index_price,
                StatField::IndexPrice,
                "indexPrice",
                STAT_PRICE_SCALE,
            ),
            (
                f.open_interest,
                StatField::OpenInterest,
                "openInterest",
                size_scale,
            ),
            (
                f.funding_rate,
                StatField::FundingRate,
                "fundingRate",
                FUNDING_RATE_SCALE,
            ),
        ];
        for (slot, (raw, field, name, scale)) in stats.iter_mut().zip(decimals) {
            if let Some(raw) = present(raw) {
                *slot = Some((field, decimal(Some(raw), name, scale)?));
            }
        }
        if let Some(raw) = present(f.next_funding_time) {
            // A string on Bybit (`"1786320000000"`), a number is taken too.
            let ms = match raw.kind {
                Kind::Str => parse_u64(raw.bytes),
                _ => uint(Some(raw), "nextFundingTime").ok(),
            }
            .and_then(|ms| i64::try_from(ms).ok())
            .ok_or(ParseError::BadInteger("nextFundingTime"))?;
            stats[4] = Some((StatField::NextFundingMs, ms));
        }
        let n = emit_stats(inst, local_ts, maybe_ns(exch_ts), stats, emit);
        Ok(Parsed::Events(n))
    }

    /// A reply to one of the client's requests.
    fn reply(e: &Envelope<'_>) -> Result<Parsed, ParseError> {
        let op = string(e.op, "op")?;
        // Spot answers a ping with `"op":"pong"`, linear with `"op":"ping"` and
        // `"ret_msg":"pong"`: both are a pong.
        let ret_msg = e.ret_msg.filter(|r| r.kind == Kind::Str).map(|r| r.bytes);
        if op == b"pong" || (op == b"ping" && ret_msg == Some(b"pong")) {
            return Ok(Parsed::Control(Control::Pong));
        }
        let id = e
            .req_id
            .filter(|r| r.kind == Kind::Str)
            .and_then(|r| parse_u64(r.bytes));
        match (op, e.success.map(|s| (s.kind, s.bytes))) {
            (b"subscribe" | b"unsubscribe", Some((Kind::Bool, b"true"))) => {
                Ok(Parsed::Control(Control::SubscribeReply {
                    id: id.unwrap_or(0),
                }))
            }
            (b"subscribe" | b"unsubscribe", Some((Kind::Bool, _))) => {
                Ok(Parsed::Control(Control::RequestError { id }))
            }
            _ => Err(ParseError::UnknownMessage),
        }
    }

    fn trades(
        &mut self,
        local_ts: Nanos,
        exch_ts: Nanos,
        topic_symbol: &[u8],
        data: Raw<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        if data.kind != Kind::Array {
            return Err(ParseError::WrongType("data"));
        }
        let inst = self.instrument(topic_symbol)?;
        let scales = {
            let i = self.table.get(inst);
            (i.price_scale, i.size_scale)
        };
        let count_block_trades = self.count_block_trades;
        let trades = &mut self.trades;
        trades.clear();
        let mut scanner = Scanner::new(data.bytes);
        scanner
            .array::<ParseError>(|s| {
                let mut f = TradeData::default();
                s.object::<ParseError>(|key, value| {
                    let slot = match key {
                        b"T" => &mut f.big_t,
                        b"s" => &mut f.s,
                        b"S" => &mut f.big_s,
                        b"v" => &mut f.v,
                        b"p" => &mut f.p,
                        b"i" => &mut f.i,
                        b"BT" => &mut f.bt,
                        _ => return Ok(()),
                    };
                    *slot = Some(value);
                    Ok(())
                })?;
                if f.s.is_some() && string(f.s, "s")? != topic_symbol {
                    return Err(ParseError::UnknownInstrument);
                }
                let id_text = string(f.i, "i")?;
                let trade_id = if D::NUMERIC_TRADE_IDS {
                    parse_u64(id_text)
                } else {
                    uuid_id(id_text)
                }
                .ok_or(ParseError::BadInteger("i"))?;
                let block = match f.bt.map(|b| (b.kind, b.bytes)) {
                    None => false,
                    Some((Kind::Bool, b)) => b == b"true",
                    Some(_) => return Err(ParseError::WrongType("BT")),
                };
                let aggressor = match string(f.big_s, "S")? {
                    b"Buy" => Aggressor::Buy,
                    b"Sell" => Aggressor::Sell,
                    _ => return Err(ParseError::WrongType("S")),
                };
                if trades.len() == trades.capacity() {
                    return Err(ParseError::TooLarge);
                }
                trades.push(Trade {
                    trade_id,
                    px: decimal(f.p, "p", scales.0)?,
                    qty: decimal(f.v, "v", scales.1)?,
                    aggressor,
                    trade_ts: time_ms(f.big_t, "T")?,
                    exch_ts,
                    is_taker_flow: !block || count_block_trades,
                    source: TradeSource::Trade,
                });
                Ok(())
            })
            .map_err(|e| e.offset_by(data.at))?;
        for trade in &self.trades {
            emit(MarketEvent {
                inst,
                local_ts,
                kind: EventKind::Trade(*trade),
            });
        }
        Ok(Parsed::Events(self.trades.len() as u32))
    }

    fn book(
        &mut self,
        local_ts: Nanos,
        exch_ts: Nanos,
        kind: BatchKind,
        topic_symbol: &[u8],
        data: Raw<'_>,
        emit: &mut impl FnMut(MarketEvent),
    ) -> Result<Parsed, ParseError> {
        if data.kind != Kind::Object {
            return Err(ParseError::WrongType("data"));
        }
        let mut f = BookData::default();
        let mut scanner = Scanner::new(data.bytes);
        scanner
            .object::<ParseError>(|key, value| {
                let slot = match key {
                    b"s" => &mut f.s,
                    b"b" => &mut f.b,
                    b"a" => &mut f.a,
                    b"u" => &mut f.u,
                    _ => return Ok(()),
                };
                *slot = Some(value);
                Ok(())
            })
            .map_err(|e| e.offset_by(data.at))?;
        let (inst, scales) = self.topic_instrument(f.s, "s", topic_symbol)?;
        let update_id = uint(f.u, "u")?;
        self.levels.clear();
        read_levels(
            &mut self.levels,
            BookSide::Bid,
            required(f.b, "b")?,
            "b",
            scales,
        )?;
        read_levels(
            &mut self.levels,
            BookSide::Ask,
            required(f.a, "a")?,
            "a",
            scales,
        )?;
        let begin = BookBegin {
            kind,
            first_update_id: update_id,
            last_update_id: update_id,
            prev_update_id: None,
            exch_ts: maybe_ns(exch_ts),
            levels: 0,
        };
        emit_batch(&self.levels, inst, local_ts, begin, emit).ok_or(ParseError::TooLarge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_fold_and_anything_else_is_refused() {
        let a = uuid_id(b"a9188a0a-82bc-50de-be60-03eedbe3cdd7").unwrap();
        let b = uuid_id(b"a9188a0a82bc50debe6003eedbe3cdd7").unwrap();
        assert_eq!(a, b, "dashes do not matter");
        assert_eq!(a, 0xa9188a0a82bc50de ^ 0xbe6003eedbe3cdd7);
        assert_ne!(a, uuid_id(b"a9188a0a-82bc-50de-be60-03eedbe3cdd8").unwrap());
        for bad in [
            &b"a9188a0a"[..],
            b"g9188a0a-82bc-50de-be60-03eedbe3cdd7",
            b"",
        ] {
            assert_eq!(uuid_id(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }
}
