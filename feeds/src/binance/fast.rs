//! The fast path: a schema-specific reader for Binance messages as Binance sends them.
//!
//! It reads the combined-stream wrapper and a payload of known keys in one pass, parsing
//! each value straight into its type (integers, decimal mantissas, levels into the scratch
//! buffer) with no intermediate field table. It accepts a strict subset of what the generic
//! path ([`super::BinanceParser::parse`]) accepts, and produces exactly the same events for
//! it. Whenever anything is unusual (whitespace, an unknown or repeated key, an escape in a
//! string, keys in an order where a value's scale is not known yet, any malformed byte) it
//! returns `None` before emitting anything and the generic path decides, with its precise
//! error. The differential tests hold the two paths to the same output.

use super::{exchange_ms_to_ns, is_untagged_book_ticker, BinanceDialect, BinanceParser, Parsed};
use core::num::NonZeroU64;
use flowcore_core::decimal::POW10;
use flowcore_core::event::{
    maybe_ns, Aggressor, BatchKind, BookBegin, BookSide, BookTicker, EventKind, Level, MarketEvent,
    Nanos, Trade, TradeSource,
};

/// A byte cursor whose every read either succeeds or gives up (`None`).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.buf.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A string without escapes or control bytes; its content.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.byte()? != b'"' {
            return None;
        }
        let start = self.pos;
        loop {
            match self.byte()? {
                b'"' => return Some(&self.buf[start..self.pos - 1]),
                b'\\' | 0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// A non-negative integer of at most 19 digits, followed by `,` `}` or `]`.
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            v = v * 10 + (d - b'0') as u64;
            self.pos += 1;
        }
        let digits = self.pos - start;
        (1..=19).contains(&digits).then_some(())?;
        matches!(self.peek(), Some(b',' | b'}' | b']')).then_some(v)
    }

    /// An exchange time in ms, as the generic path bounds it.
    #[inline]
    fn time_ms(&mut self) -> Option<Nanos> {
        exchange_ms_to_ns(self.uint()?)
    }

    /// A quoted unsigned decimal read straight into a mantissa at `scale` in one pass (the
    /// rules of [`flowcore_core::decimal::parse_mantissa`]; a sign, an exponent or anything
    /// else unusual gives up).
    #[inline]
    fn decimal(&mut self, scale: u8) -> Option<i64> {
        if self.byte()? != b'"' {
            return None;
        }
        let mut mantissa: i64 = 0;
        let mut digits = 0u32;
        // Fraction digits kept so far; `None` before the point.
        let mut frac: Option<u8> = None;
        loop {
            match self.byte()? {
                d @ b'0'..=b'9' => {
                    digits += 1;
                    let d = (d - b'0') as i64;
                    match frac {
                        Some(kept) if kept == scale => {
                            if d != 0 {
                                return None;
                            }
                            continue;
                        }
                        Some(kept) => frac = Some(kept + 1),
                        None => {}
                    }
                    mantissa = mantissa.checked_mul(10)?.checked_add(d)?;
                }
                b'.' if frac.is_none() => frac = Some(0),
                b'"' => break,
                _ => return None,
            }
        }
        if digits == 0 {
            return None;
        }
        mantissa.checked_mul(POW10[(scale - frac.unwrap_or(0)) as usize])
    }

    #[inline]
    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.lit(b"true").map(|()| true),
            b'f' => self.lit(b"false").map(|()| false),
            _ => None,
        }
    }
}

/// Values of one payload, by key; `None` when absent.
#[derive(Default)]
struct Payload<'a> {
    e: Option<&'a [u8]>,
    big_e: Option<Nanos>,
    big_t: Option<Nanos>,
    trade_id: Option<u64>,
    agg_id: Option<u64>,
    px: Option<i64>,
    qty: Option<i64>,
    maker: Option<bool>,
    x: Option<&'a [u8]>,
    u: Option<u64>,
    big_u: Option<u64>,
    pu: Option<u64>,
    bid_px: Option<i64>,
    bid_qty: Option<i64>,
    ask_px: Option<i64>,
    ask_qty: Option<i64>,
    /// Levels read from `b` and `a` arrays.
    bids_read: bool,
    asks_read: bool,
}

impl<D: BinanceDialect> BinanceParser<D> {
    /// Tries the fast path; `None` means "ask the generic path" (nothing was emitted).
    #[inline]
    pub(super) fn parse_fast(
        &mut self,
        local_ts: Nanos,
        msg: &[u8],
        emit: &mut impl FnMut(MarketEvent),
    ) -> Option<Parsed> {
        let mut c = Cursor { buf: msg, pos: 0 };
        c.lit(b"{\"stream\":")?;
        let stream = c.string()?;
        c.lit(b",\"data\":{")?;
        let mut p = Payload::default();
        let mut scales = None;
        let mut inst = None;
        self.levels.clear();
        loop {
            let key = c.string()?;
            if c.byte()? != b':' {
                return None;
            }
            match key {
                b"e" => p.e = Some(c.string()?),
                b"E" => p.big_e = Some(c.time_ms()?),
                b"T" => p.big_t = Some(c.time_ms()?),
                b"s" => {
                    let s = c.string()?;
                    let id = self.instrument(s).ok()?;
                    let i = self.table.get(id);
                    scales = Some((i.price_scale, i.size_scale));
                    inst = Some(id);
                }
                b"t" => p.trade_id = Some(c.uint()?),
                b"p" => p.px = Some(c.decimal(scales?.0)?),
                b"q" => p.qty = Some(c.decimal(scales?.1)?),
                b"m" => p.maker = Some(c.boolean()?),
                b"M" => {
                    c.boolean()?;
                }
                b"X" => p.x = Some(c.string()?),
                // COIN-M's pair (`ps`) and newer USD-M status fields: known, unused.
                b"ps" => {
                    c.string()?;
                }
                b"u" => p.u = Some(c.uint()?),
                b"U" => p.big_u = Some(c.uint()?),
                b"pu" => p.pu = Some(c.uint()?),
                b"B" => p.bid_qty = Some(c.decimal(scales?.1)?),
                b"A" => p.ask_qty = Some(c.decimal(scales?.1)?),
                b"b" | b"a" => {
                    let is_bid = key == b"b";
                    match c.peek()? {
                        b'"' => {
                            let v = c.decimal(scales?.0)?;
                            *(if is_bid { &mut p.bid_px } else { &mut p.ask_px }) = Some(v);
                        }
                        b'[' => {
                            // Bids must come first so the batch order matches the generic
                            // path's (bids, then asks); a repeated array bails too.
                            if p.asks_read || (is_bid && p.bids_read) {
                                return None;
                            }
                            let side = if is_bid { BookSide::Bid } else { BookSide::Ask };
                            self.read_levels(&mut c, side, scales?)?;
                            *(if is_bid {
                                &mut p.bids_read
                            } else {
                                &mut p.asks_read
                            }) = true;
                        }
                        b'0'..=b'9' if !is_bid => p.agg_id = Some(c.uint()?),
                        _ => return None,
                    }
                }
                _ => return None,
            }
            match c.byte()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        if c.byte()? != b'}' || c.pos != msg.len() {
            return None;
        }
        let inst = inst?;
        let ev = |kind| MarketEvent {
            inst,
            local_ts,
            kind,
        };
        // The generic path's classification: spot bookTicker has no `e`.
        let is_book_ticker = match p.e {
            Some(e) => e == b"bookTicker",
            None => is_untagged_book_ticker(
                Some(stream),
                p.u.is_some(),
                p.bid_qty.is_some(),
                p.ask_qty.is_some(),
            ),
        };
        match p.e {
            Some(b"trade") if p.agg_id.is_none() && !p.bids_read && !p.asks_read => {
                let is_taker_flow = if D::HAS_EXECUTION_TYPE {
                    p.x? == b"MARKET"
                } else {
                    true
                };
                emit(ev(EventKind::Trade(Trade {
                    trade_id: p.trade_id?,
                    px: p.px?,
                    qty: p.qty?,
                    aggressor: if p.maker? {
                        Aggressor::Sell
                    } else {
                        Aggressor::Buy
                    },
                    trade_ts: p.big_t?,
                    exch_ts: p.big_e?,
                    is_taker_flow,
                    source: TradeSource::Trade,
                })));
                Some(Parsed::Events(1))
            }
            _ if is_book_ticker && !p.bids_read && !p.asks_read => {
                let bt = BookTicker {
                    update_id: p.u?,
                    bid_px: p.bid_px?,
                    bid_qty: p.bid_qty?,
                    ask_px: p.ask_px?,
                    ask_qty: p.ask_qty?,
                    exch_ts: p.big_e.and_then(maybe_ns),
                };
                emit(ev(EventKind::BookTicker(bt)));
                Some(Parsed::Events(1))
            }
            Some(b"depthUpdate") if p.bids_read && p.asks_read => {
                let prev_update_id = if D::HAS_PREV_UPDATE_ID {
                    Some(NonZeroU64::new(p.pu?)?)
                } else {
                    None
                };
                let begin = BookBegin {
                    kind: BatchKind::Diff,
                    first_update_id: p.big_u?,
                    last_update_id: p.u?,
                    prev_update_id,
                    exch_ts: maybe_ns(p.big_e?),
                    levels: 0,
                };
                self.emit_batch(inst, local_ts, begin, emit)
            }
            _ => None,
        }
    }

    /// Reads `[["px","qty"],...]` into the scratch buffer.
    #[inline]
    fn read_levels(
        &mut self,
        c: &mut Cursor<'_>,
        side: BookSide,
        (ps, ss): (u8, u8),
    ) -> Option<()> {
        if c.byte()? != b'[' {
            return None;
        }
        if c.peek()? == b']' {
            c.pos += 1;
            return Some(());
        }
        loop {
            c.lit(b"[")?;
            let px = c.decimal(ps)?;
            c.lit(b",")?;
            let qty = c.decimal(ss)?;
            c.lit(b"]")?;
            if qty < 0 {
                return None;
            }
            self.levels.push(Level { side, px, qty });
            match c.byte()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}
