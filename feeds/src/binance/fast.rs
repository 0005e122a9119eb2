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

use super::{is_untagged_book_ticker, shape, BinanceDialect, BinanceParser};
use crate::fields::exchange_ms_to_ns;
use crate::parsed::Parsed;
use crate::shaped_decimal::Shape;
use crate::swar;
use core::num::NonZeroU64;
use flowcore_core::decimal::POW10;
use flowcore_core::event::{
    maybe_ns, Aggressor, BatchKind, BookBegin, BookSide, BookTicker, EventKind, Level, MarketEvent,
    Nanos, Trade, TradeSource,
};
use flowcore_core::instrument::InstrumentId;

/// The first `N` bytes of `bytes`, zeros after its end: a window the value readers can run
/// over without a bounds check per byte (a zero is neither a digit nor a quote, so they stop
/// where they would at the end).
#[inline]
fn zero_padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut window = [0; N];
    let n = bytes.len().min(N);
    window[..n].copy_from_slice(&bytes[..n]);
    window
}

/// A byte cursor whose every read either succeeds or gives up (`None`).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first key of a combined-stream message's payload
    /// (`{"stream":"..","data":{`), and the stream's name.
    #[inline]
    fn in_combined_stream(msg: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let mut c = Cursor { buf: msg, pos: 0 };
        c.lit(b"{\"stream\":")?;
        let stream = c.string()?;
        c.lit(b",\"data\":{")?;
        Some((c, stream))
    }

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
        while let Some(word) = swar::load(self.buf, self.pos) {
            if let Some(at) = swar::first_special(word) {
                self.pos += at;
                break;
            }
            self.pos += 8;
        }
        loop {
            match self.byte()? {
                b'"' => return Some(&self.buf[start..self.pos - 1]),
                b'\\' | 0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// A one- or two-byte key and its `:`, as a code for a `match` (see [`key_code`]);
    /// longer keys and escapes give up.
    #[inline]
    fn key(&mut self) -> Option<u16> {
        let head = self.buf.get(self.pos..self.pos + 5)?;
        let (code, len) = match head {
            [b'"', k, b'"', b':', _] => (key_code(&[*k]), 4),
            [b'"', k1, k2, b'"', b':'] if k1.is_ascii_alphabetic() => (key_code(&[*k1, *k2]), 5),
            _ => return None,
        };
        self.pos += len;
        Some(code)
    }

    /// A non-negative integer of at most 19 digits, followed by `,` `}` or `]`.
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            // Wraps past 19 digits, which the count below refuses (19 always fit a u64).
            v = v.wrapping_mul(10).wrapping_add((d - b'0') as u64);
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

    /// A quoted unsigned decimal read straight into a mantissa at `scale` (the rules of
    /// [`flowcore_core::decimal::parse_mantissa`]; a sign, an exponent or anything else
    /// unusual gives up).
    #[inline]
    fn decimal(&mut self, scale: u8) -> Option<i64> {
        if let Some((v, end)) = self.decimal_plain(scale) {
            self.pos = end;
            return Some(v);
        }
        self.decimal_bytewise(scale)
    }

    /// [`Self::decimal`], first at the shape `shape` remembers for this field (see
    /// [`crate::shaped_decimal`]); a value of another shape is read as usual and its shape
    /// remembered.
    #[inline]
    fn decimal_shaped(&mut self, scale: u8, shape: &mut Shape) -> Option<i64> {
        if !Shape::READS {
            return self.decimal(scale);
        }
        if self.buf.get(self.pos) == Some(&b'"') {
            if let Some(v) = shape.read(&self.word_at(self.pos + 1), scale) {
                self.pos += shape.len() + 2;
                return Some(v);
            }
        }
        self.read_learning_shape(shape, scale, 1, |c| c.decimal(scale))
    }

    /// The sixteen bytes from `at`, zeros past the message's end.
    #[inline]
    fn word_at(&self, at: usize) -> [u8; 16] {
        let text = self.buf.get(at..).unwrap_or_default();
        if let Some(word) = text.first_chunk::<16>() {
            return *word;
        }
        // Near the end (a spot book ticker's last value, USD-M's last time): the message's
        // last sixteen bytes shifted down to `at`, rather than a copy (a `memcpy` call).
        if let Some(last) = self.buf.last_chunk::<16>() {
            let skip = (16 - text.len()) as u32;
            return (u128::from_le_bytes(*last)
                .checked_shr(8 * skip)
                .unwrap_or(0))
            .to_le_bytes();
        }
        zero_padded(text)
    }

    /// [`Self::uint`] at the shape `shape` remembers for this field, as
    /// [`Self::decimal_shaped`] does for decimals.
    #[inline]
    fn uint_shaped(&mut self, shape: &mut Shape) -> Option<u64> {
        if !Shape::READS {
            return self.uint();
        }
        if let Some(v) = shape.read_integer(&self.word_at(self.pos)) {
            self.pos += shape.len();
            return Some(v);
        }
        self.read_learning_shape(shape, 0, 0, Self::uint)
    }

    /// [`Self::time_ms`] at the field's shape.
    #[inline]
    fn time_ms_shaped(&mut self, shape: &mut Shape) -> Option<Nanos> {
        exchange_ms_to_ns(self.uint_shaped(shape)?)
    }

    /// A value read by `read`, its shape at `scale` remembered (its text without the
    /// `quotes` bytes on each side): out of line, so that the shaped reads stay small enough
    /// to inline.
    #[cold]
    #[inline(never)]
    fn read_learning_shape<T>(
        &mut self,
        shape: &mut Shape,
        scale: u8,
        quotes: usize,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let start = self.pos;
        let v = read(self)?;
        if let Some(learnt) = Shape::of(&self.buf[start + quotes..self.pos - quotes], scale) {
            *shape = learnt;
        }
        Some(v)
    }

    /// [`Self::decimal`] for the shape exchanges send: 1 to 18 significant digits, then
    /// optionally `.` and 1 or more fraction digits (zeros past the scale). One tight loop
    /// per part, no overflow checks (18 digits always fit); `None` for anything else, which
    /// the bytewise reader then decides with the full rules.
    ///
    /// Measured and not taken (2026-12-06, whole one-thread replay of the BTC set): a
    /// word-at-a-time reader, each part's digits counted by bit tricks and converted by three
    /// multiplies with no loop over bytes, took 100-101 ms against 95-96 ms with these loops.
    /// Exchanges send one shape per field, so the loops' exits are predicted and the CPU runs
    /// ahead; the word reader's loads wait on each other (where the fraction starts depends on
    /// the integer's digit count).
    ///
    /// Measured and not taken (2026-12-07, same runs, cachegrind and best of 11): SSE4.1, the
    /// sixteen bytes after the quote in one load, quote and point found by compare and
    /// movemask, one `pshufb` placing each kept digit, three multiply-adds. Called through a
    /// runtime feature check it was not inlined: 86.7 vs 80.5 ms. Inlined in a build for
    /// x86-64-v2: 881 M vs 938 M instructions for the whole replay (~27 fewer for each of the
    /// 2.1 M values), and still 86.9 vs 80.3 ms. The same steps in a `u128` without
    /// intrinsics: ~200 instructions a value, 105 ms. Every word reader so far made the
    /// cursor's next position come out of the value's bytes (load, compare, movemask, count),
    /// where the loops' exits are predicted and the CPU starts the next field early; that is
    /// the likeliest cause (no hardware counters on this VM to prove it), and the shaped
    /// reader that came of it bears it out: the same shuffle and multiply-adds, the length
    /// taken from the field's last value and checked by a predicted branch, is 9% faster than
    /// these loops ([`Self::decimal_shaped`], [`crate::shaped_decimal`]). These loops read the
    /// values of a new shape.
    #[inline]
    fn decimal_plain(&self, scale: u8) -> Option<(i64, usize)> {
        // A fixed window lets the loops run without a bounds check per byte; a value in the
        // last bytes of a message is read from a zero-padded copy.
        const WINDOW: usize = 24;
        let rest = self.buf.get(self.pos..)?;
        let padded;
        let w: &[u8; WINDOW] = match rest.first_chunk() {
            Some(w) => w,
            None => {
                padded = zero_padded(rest);
                &padded
            }
        };
        if w[0] != b'"' {
            return None;
        }
        let digit = |i: usize| w[i].wrapping_sub(b'0');
        let mut v: u64 = 0;
        let mut i = 1;
        while i < WINDOW - 1 && digit(i) < 10 {
            v = v.wrapping_mul(10).wrapping_add(digit(i) as u64);
            i += 1;
        }
        let int_digits = i - 1;
        let mut frac_digits = 0;
        if w[i] == b'.' {
            i += 1;
            let frac_start = i;
            let kept_end = (frac_start + scale as usize).min(WINDOW - 1);
            while i < kept_end && digit(i) < 10 {
                v = v.wrapping_mul(10).wrapping_add(digit(i) as u64);
                i += 1;
            }
            frac_digits = i - frac_start;
            // Digits past the scale must all be zero: never rounded.
            while i < WINDOW - 1 && w[i] == b'0' {
                i += 1;
            }
            if i == frac_start {
                return None;
            }
        }
        if int_digits == 0 || int_digits + frac_digits > 18 || w[i] != b'"' {
            return None;
        }
        let pad = *POW10.get(scale as usize - frac_digits)?;
        Some(((v as i64).checked_mul(pad)?, self.pos + i + 1))
    }

    #[inline]
    fn decimal_bytewise(&mut self, scale: u8) -> Option<i64> {
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

/// A key of one or two bytes as one number, so that keys are matched as integers.
const fn key_code(key: &[u8]) -> u16 {
    match key {
        [k] => *k as u16,
        [k1, k2] => u16::from_be_bytes([*k1, *k2]),
        _ => 0,
    }
}

const K_E: u16 = key_code(b"e");
const K_BIG_E: u16 = key_code(b"E");
const K_BIG_T: u16 = key_code(b"T");
const K_S: u16 = key_code(b"s");
const K_T: u16 = key_code(b"t");
const K_P: u16 = key_code(b"p");
const K_Q: u16 = key_code(b"q");
const K_M: u16 = key_code(b"m");
const K_BIG_M: u16 = key_code(b"M");
const K_BIG_X: u16 = key_code(b"X");
const K_PS: u16 = key_code(b"ps");
const K_U: u16 = key_code(b"u");
const K_BIG_U: u16 = key_code(b"U");
const K_PU: u16 = key_code(b"pu");
const K_BIG_B: u16 = key_code(b"B");
const K_BIG_A: u16 = key_code(b"A");
const K_B: u16 = key_code(b"b");
const K_A: u16 = key_code(b"a");

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
        let (mut c, stream) = Cursor::in_combined_stream(msg)?;
        let mut p = Payload::default();
        let mut scales = None;
        let mut inst = None;
        self.levels.clear();
        loop {
            let key = c.key()?;
            match key {
                K_E => p.e = Some(c.string()?),
                K_BIG_E => {
                    p.big_e = Some(c.time_ms_shaped(&mut self.integer_shapes[shape::EVENT_TIME])?)
                }
                K_BIG_T => {
                    p.big_t =
                        Some(c.time_ms_shaped(&mut self.integer_shapes[shape::TRANSACTION_TIME])?)
                }
                K_S => {
                    let s = c.string()?;
                    let id = self.instrument(s).ok()?;
                    let i = self.table.get(id);
                    scales = Some((i.price_scale, i.size_scale));
                    inst = Some(id);
                }
                K_T => p.trade_id = Some(c.uint_shaped(&mut self.integer_shapes[shape::TRADE_ID])?),
                K_P => {
                    let shapes = &mut self.decimal_shapes[inst?.index()];
                    p.px = Some(c.decimal_shaped(scales?.0, &mut shapes[shape::TRADE_PX])?)
                }
                K_Q => {
                    let shapes = &mut self.decimal_shapes[inst?.index()];
                    p.qty = Some(c.decimal_shaped(scales?.1, &mut shapes[shape::TRADE_QTY])?)
                }
                K_M => p.maker = Some(c.boolean()?),
                K_BIG_M => {
                    c.boolean()?;
                }
                K_BIG_X => p.x = Some(c.string()?),
                // COIN-M's pair (`ps`) and newer USD-M status fields: known, unused.
                K_PS => {
                    c.string()?;
                }
                K_U => p.u = Some(c.uint_shaped(&mut self.integer_shapes[shape::LAST_UPDATE_ID])?),
                K_BIG_U => {
                    p.big_u = Some(c.uint_shaped(&mut self.integer_shapes[shape::FIRST_UPDATE_ID])?)
                }
                K_PU => {
                    p.pu = Some(c.uint_shaped(&mut self.integer_shapes[shape::PREVIOUS_UPDATE_ID])?)
                }
                K_BIG_B => p.bid_qty = Some(c.decimal(scales?.1)?),
                K_BIG_A => p.ask_qty = Some(c.decimal(scales?.1)?),
                K_B | K_A => {
                    let is_bid = key == K_B;
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
                            self.read_levels(&mut c, side, inst?)?;
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

    /// A bookTicker laid out as Binance sends it, read straight through: spot's
    /// `{"stream":"..@bookTicker","data":{"u":..,"s":..,"b":..,"B":..,"a":..,"A":..}}` and
    /// USD-M's with `"e":"bookTicker",` first and `,"T":..,"E":..` last. Three messages in four
    /// are book tickers; [`Self::parse_fast`] reads them too, a key at a time, with a branch
    /// on each key and every value kept as an option until the end. `None` (nothing emitted)
    /// for any other layout, which `parse_fast` then reads; the same events for this one.
    #[inline]
    pub(super) fn parse_book_ticker(
        &mut self,
        local_ts: Nanos,
        msg: &[u8],
        emit: &mut impl FnMut(MarketEvent),
    ) -> Option<Parsed> {
        let (mut c, stream) = Cursor::in_combined_stream(msg)?;
        if !stream.ends_with(b"@bookTicker") {
            return None;
        }
        let tagged = c.lit(b"\"e\":\"bookTicker\",").is_some();
        c.lit(b"\"u\":")?;
        let update_id = c.uint_shaped(&mut self.integer_shapes[shape::LAST_UPDATE_ID])?;
        c.lit(b",\"s\":")?;
        let inst = self.instrument(c.string()?).ok()?;
        let i = self.table.get(inst);
        let (ps, ss) = (i.price_scale, i.size_scale);
        let shapes = &mut self.decimal_shapes[inst.index()];
        c.lit(b",\"b\":")?;
        let bid_px = c.decimal_shaped(ps, &mut shapes[shape::TICKER_BID_PX])?;
        c.lit(b",\"B\":")?;
        let bid_qty = c.decimal_shaped(ss, &mut shapes[shape::TICKER_BID_QTY])?;
        c.lit(b",\"a\":")?;
        let ask_px = c.decimal_shaped(ps, &mut shapes[shape::TICKER_ASK_PX])?;
        c.lit(b",\"A\":")?;
        let ask_qty = c.decimal_shaped(ss, &mut shapes[shape::TICKER_ASK_QTY])?;
        let exch_ts = if tagged {
            c.lit(b",\"T\":")?;
            c.time_ms_shaped(&mut self.integer_shapes[shape::TRANSACTION_TIME])?;
            c.lit(b",\"E\":")?;
            maybe_ns(c.time_ms_shaped(&mut self.integer_shapes[shape::EVENT_TIME])?)
        } else {
            None
        };
        c.lit(b"}}")?;
        if c.pos != msg.len() {
            return None;
        }
        emit(MarketEvent {
            inst,
            local_ts,
            kind: EventKind::BookTicker(BookTicker {
                update_id,
                bid_px,
                bid_qty,
                ask_px,
                ask_qty,
                exch_ts,
            }),
        });
        Some(Parsed::Events(1))
    }

    /// A REST depth snapshot as Binance sends it, read in one pass: `{"lastUpdateId":N,`
    /// then on futures `"E":..,"T":..,`, then `"bids":[..],"asks":[..]}` (trailing
    /// whitespace allowed, as the generic path allows it). The generic path scans each
    /// level array once to skip it and again to read it; here every byte is read once.
    pub(super) fn parse_fast_snapshot(
        &mut self,
        inst: InstrumentId,
        local_ts: Nanos,
        msg: &[u8],
        emit: &mut impl FnMut(MarketEvent),
    ) -> Option<Parsed> {
        let mut c = Cursor { buf: msg, pos: 0 };
        c.lit(b"{\"lastUpdateId\":")?;
        let id = c.uint()?;
        c.lit(b",")?;
        let mut exch_ts = None;
        if c.lit(b"\"E\":").is_some() {
            exch_ts = maybe_ns(c.time_ms()?);
            c.lit(b",\"T\":")?;
            c.time_ms()?;
            c.lit(b",")?;
        }
        self.levels.clear();
        c.lit(b"\"bids\":")?;
        self.read_levels(&mut c, BookSide::Bid, inst)?;
        c.lit(b",\"asks\":")?;
        self.read_levels(&mut c, BookSide::Ask, inst)?;
        c.lit(b"}")?;
        if !msg[c.pos..]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            return None;
        }
        self.emit_batch(inst, local_ts, BookBegin::snapshot(id, exch_ts), emit)
    }

    /// Reads `[["px","qty"],...]` into the scratch buffer.
    #[inline]
    fn read_levels(
        &mut self,
        c: &mut Cursor<'_>,
        side: BookSide,
        inst: InstrumentId,
    ) -> Option<()> {
        let i = self.table.get(inst);
        let (ps, ss) = (i.price_scale, i.size_scale);
        let shapes = &mut self.decimal_shapes[inst.index()];
        if c.byte()? != b'[' {
            return None;
        }
        if c.peek()? == b']' {
            c.pos += 1;
            return Some(());
        }
        loop {
            c.lit(b"[")?;
            let (px_at, qty_at) = match side {
                BookSide::Bid => (shape::BID_LEVEL_PX, shape::BID_LEVEL_QTY),
                BookSide::Ask => (shape::ASK_LEVEL_PX, shape::ASK_LEVEL_QTY),
            };
            let px = c.decimal_shaped(ps, &mut shapes[px_at])?;
            c.lit(b",")?;
            let qty = c.decimal_shaped(ss, &mut shapes[qty_at])?;
            c.lit(b"]")?;
            // The generic path refuses these, with its error.
            if qty < 0 || px <= 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_core::decimal::parse_mantissa;
    use proptest::prelude::*;

    /// `text` quoted, with `pad` bytes of JSON-ish context on each side so the word reads
    /// meet every distance from the buffer's ends.
    fn quoted(text: &str, before: usize, after: usize) -> (Vec<u8>, usize) {
        let mut buf = b"{\"p\":".repeat(4)[..before].to_vec();
        let at = buf.len();
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
        buf.extend_from_slice(&b",\"q\":\"1\"}".repeat(3)[..after]);
        (buf, at)
    }

    /// The real REST snapshots (data/samples, see data/PROVENANCE.md) read by the one-pass
    /// reader give exactly the generic path's events (which a leading space sends them to).
    #[test]
    fn rest_snapshots_read_in_one_pass_equal_the_generic_path() {
        use crate::binance::{spot::BinanceSpot, usdm::BinanceUsdm};
        use flowcore_core::instrument::{InstrumentTable, Venue};
        fn both<D: BinanceDialect>(venue: Venue, body: &[u8]) -> (usize, Vec<MarketEvent>) {
            let table = InstrumentTable::binance_defaults();
            let inst = table.find(venue, b"BTCUSDT").unwrap();
            let mut parser = BinanceParser::<D>::new(table);
            let mut fast = Vec::new();
            let parsed = parser.parse_fast_snapshot(inst, 5, body, &mut |e| fast.push(e));
            assert!(parsed.is_some(), "{venue}: the one-pass reader gave up");
            let mut generic = Vec::new();
            let spaced = [b" ".as_slice(), body].concat();
            assert!(parser
                .parse_fast_snapshot(inst, 5, &spaced, &mut |_| ())
                .is_none());
            parser
                .parse(5, &spaced, Some(inst), &mut |e| generic.push(e))
                .unwrap();
            assert_eq!(fast, generic, "{venue}");
            (fast.len(), fast)
        }
        let (spot, _) = both::<BinanceSpot>(
            Venue::BinanceSpot,
            include_bytes!("../../../data/samples/binance_spot_rest_depth_snapshot_limit1000.json"),
        );
        let (usdm, events) = both::<BinanceUsdm>(
            Venue::BinanceUsdm,
            include_bytes!("../../../data/samples/binance_usdm_rest_depth_snapshot_limit1000.json"),
        );
        assert_eq!((spot, usdm), (2002, 2002), "begin, 2 x 1000 levels, end");
        assert!(matches!(events[0].kind, EventKind::BookBegin(b) if b.exch_ts.is_some()));
    }

    /// A bookTicker message of `venue`'s layout (BTCUSDT's scales: price 2, size 8 on spot
    /// and 3 on USD-M).
    fn book_ticker(usdm: bool, u: u64, mantissas: [i64; 4], time_ms: u64) -> String {
        use flowcore_core::decimal::Fixed;
        let ss = if usdm { 3 } else { 8 };
        let [b, bq, a, aq] = mantissas;
        let (px, sz) = (
            |m: i64| Fixed::new(m as i128, 2),
            |m: i64| Fixed::new(m as i128, ss),
        );
        let (tag, times) = if usdm {
            (
                "\"e\":\"bookTicker\",",
                format!(",\"T\":{time_ms},\"E\":{}", time_ms + 3),
            )
        } else {
            ("", String::new())
        };
        format!(
            "{{\"stream\":\"btcusdt@bookTicker\",\"data\":{{{tag}\"u\":{u},\"s\":\"BTCUSDT\",\
             \"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\"{times}}}}}",
            px(b),
            sz(bq),
            px(a),
            sz(aq)
        )
    }

    /// [`BinanceParser::parse_book_ticker`]'s events for `msg`, then [`BinanceParser::parse_fast`]'s.
    fn straight_and_keyed(
        usdm: bool,
        msg: &[u8],
    ) -> (Option<Vec<MarketEvent>>, Option<Vec<MarketEvent>>) {
        use crate::binance::{spot::BinanceSpot, usdm::BinanceUsdm};
        use flowcore_core::instrument::InstrumentTable;
        fn run<D: BinanceDialect>(
            msg: &[u8],
        ) -> (Option<Vec<MarketEvent>>, Option<Vec<MarketEvent>>) {
            let mut parser = BinanceParser::<D>::new(InstrumentTable::binance_defaults());
            let (mut straight, mut keyed) = (Vec::new(), Vec::new());
            let a = parser.parse_book_ticker(7, msg, &mut |e| straight.push(e));
            let b = parser.parse_fast(7, msg, &mut |e| keyed.push(e));
            (a.map(|_| straight), b.map(|_| keyed))
        }
        if usdm {
            run::<BinanceUsdm>(msg)
        } else {
            run::<BinanceSpot>(msg)
        }
    }

    #[test]
    fn other_layouts_of_a_book_ticker_are_left_to_the_keyed_reader() {
        let msg = book_ticker(
            true,
            5,
            [6_180_020, 2_507, 6_180_030, 2_510],
            1_723_161_256_313,
        );
        let variants = [
            msg.replace(",\"s\":", ", \"s\":"),
            msg.replace("\"T\"", "\"X\""),
            msg.replace("\"e\":\"bookTicker\",", "")
                .replace("@bookTicker", "@ticker"),
            msg.replace(",\"E\"", ",\"x\":1,\"E\""),
            msg.replace("\"u\":5,\"s\":\"BTCUSDT\"", "\"s\":\"BTCUSDT\",\"u\":5"),
        ];
        for variant in variants {
            let (straight, _) = straight_and_keyed(true, variant.as_bytes());
            assert_eq!(straight, None, "{variant}");
        }
        let (straight, keyed) = straight_and_keyed(true, msg.as_bytes());
        assert!(straight.is_some() && straight == keyed, "{msg}");
    }

    /// Reads `count` values of `body` (one separator byte after each) with the shaped and
    /// the plain reader side by side: the same values, the cursors at the same places.
    fn read_alike<'a, T: PartialEq + std::fmt::Debug>(
        body: &'a [u8],
        count: usize,
        mut shaped: impl FnMut(&mut Cursor<'a>, &mut Shape) -> Option<T>,
        mut plain: impl FnMut(&mut Cursor<'a>) -> Option<T>,
    ) -> Result<(), TestCaseError> {
        let mut shape = Shape::default();
        let mut a = Cursor { buf: body, pos: 0 };
        let mut b = Cursor { buf: body, pos: 0 };
        for i in 0..count {
            let want = plain(&mut b);
            let stop = want.is_none();
            prop_assert_eq!(shaped(&mut a, &mut shape), want, "value {}", i);
            prop_assert_eq!(a.pos, b.pos, "value {}", i);
            if stop {
                break;
            }
            a.pos += 1;
            b.pos += 1;
        }
        Ok(())
    }

    #[test]
    fn a_word_is_the_next_sixteen_bytes_then_zeros() {
        let bytes: Vec<u8> = (1..=40).collect();
        for len in 0..=bytes.len() {
            let c = Cursor {
                buf: &bytes[..len],
                pos: 0,
            };
            for at in 0..=len + 1 {
                let mut want = [0u8; 16];
                let text = bytes[..len].get(at..).unwrap_or_default();
                let n = text.len().min(16);
                want[..n].copy_from_slice(&text[..n]);
                assert_eq!(c.word_at(at), want, "{len} bytes, at {at}");
            }
        }
    }

    /// Two symbols on one connection, their prices of different lengths: each keeps its
    /// own shapes (with one set per field, every value would miss and be learnt anew).
    #[test]
    fn each_instrument_keeps_its_shapes() {
        use crate::binance::spot::BinanceSpot;
        use flowcore_core::instrument::{InstrumentTable, Venue};
        let table = InstrumentTable::binance_defaults();
        let btc = table.find(Venue::BinanceSpot, b"BTCUSDT").unwrap();
        let eth = table.find(Venue::BinanceSpot, b"ETHUSDT").unwrap();
        let mut parser = BinanceParser::<BinanceSpot>::new(table);
        let ticker = |symbol: &str, px: &str| {
            format!(
                "{{\"stream\":\"{}@bookTicker\",\"data\":{{\"u\":400900217,\"s\":\"{symbol}\",\
                 \"b\":\"{px}\",\"B\":\"1.50000000\",\"a\":\"{px}\",\"A\":\"2.00000000\"}}}}",
                symbol.to_lowercase()
            )
        };
        let mut events = 0;
        for _ in 0..3 {
            for msg in [
                ticker("BTCUSDT", "61837.63000000"),
                ticker("ETHUSDT", "2612.71000000"),
            ] {
                let parsed = parser.parse_book_ticker(7, msg.as_bytes(), &mut |_| events += 1);
                assert!(parsed.is_some(), "{msg}");
            }
        }
        assert_eq!(events, 6);
        if Shape::READS {
            let bid_px =
                |inst: InstrumentId| parser.decimal_shapes[inst.index()][shape::TICKER_BID_PX];
            assert_eq!((bid_px(btc).len(), bid_px(eth).len()), (14, 13));
        }
    }

    proptest! {
        /// The straight read of a book ticker gives the keyed reader's event, on both
        /// layouts, for any values (a zero or an 18-digit mantissa included).
        #[test]
        fn book_tickers_read_straight_equal_the_keyed_reader(
            usdm: bool,
            u in 0u64..10_000_000_000_000_000_000,
            mantissas in proptest::array::uniform4(prop_oneof![Just(0i64), 0i64..1_000_000_000, 0i64..999_999_999_999_999_999]),
            time_ms in 1_500_000_000_000u64..2_000_000_000_000,
        ) {
            let msg = book_ticker(usdm, u, mantissas, time_ms);
            let (straight, keyed) = straight_and_keyed(usdm, msg.as_bytes());
            prop_assert!(keyed.is_some(), "{}", msg);
            prop_assert_eq!(straight, keyed, "{}", msg);
        }

        /// Values read at their field's last shape come out as read without it, the cursor
        /// where it would be; runs of one shape, shapes changing, values near the end.
        #[test]
        fn shaped_reads_equal_plain_reads(
            texts in proptest::collection::vec(
                prop_oneof![
                    "[0-9]{5}\\.[0-9]{8}",
                    "[0-9]\\.[0-9]{3}",
                    "[0-9]{1,6}(\\.[0-9]{1,9})?",
                    "[0-9.e-]{0,4}",
                ],
                1..40,
            ),
            scale in 0u8..=8,
        ) {
            let body = texts.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(",");
            read_alike(
                body.as_bytes(),
                texts.len(),
                |c, shape| c.decimal_shaped(scale, shape),
                |c| c.decimal(scale),
            )?;
        }

        /// Integers read at their field's last shape come out as read without it.
        #[test]
        fn shaped_integers_equal_plain_reads(
            texts in proptest::collection::vec(
                prop_oneof!["[0-9]{13}", "[0-9]{1,21}", "[0-9]{0,3}[x.]?"],
                1..40,
            ),
            ends in proptest::collection::vec("[,}\\]]", 40),
        ) {
            let mut body = String::new();
            for (text, end) in texts.iter().zip(&ends) {
                body.push_str(text);
                body.push_str(end);
            }
            read_alike(body.as_bytes(), texts.len(), Cursor::uint_shaped, Cursor::uint)?;
        }

        /// Word-wise and bytewise readers together follow `parse_mantissa` exactly.
        #[test]
        fn decimal_follows_parse_mantissa(
            text in "[0-9]{0,19}(\\.[0-9]{0,20})?|[0-9.ex-]{0,12}|0\\.[0-9]{0,6}0{0,14}",
            scale in 0u8..=18,
            before in 0usize..20,
            after in 0usize..27,
        ) {
            let (buf, at) = quoted(&text, before, after);
            let mut c = Cursor { buf: &buf, pos: at };
            let want = parse_mantissa(text.as_bytes(), scale).ok().filter(|_| !text.starts_with('-'));
            let got = c.decimal(scale);
            prop_assert_eq!(got, want, "{:?} at scale {}", text, scale);
            if got.is_some() {
                prop_assert_eq!(c.pos, at + text.len() + 2);
            }
        }

        #[test]
        fn uint_reads_digits_up_to_a_delimiter(
            digits in "[0-9]{0,21}",
            end in "[,}\\]x]",
            before in 0usize..20,
            after in 0usize..20,
        ) {
            let mut buf = b"{\"u\":".repeat(4)[..before].to_vec();
            let at = buf.len();
            buf.extend_from_slice(digits.as_bytes());
            buf.extend_from_slice(end.as_bytes());
            buf.extend_from_slice(&b"0123456789".repeat(2)[..after]);
            let mut c = Cursor { buf: &buf, pos: at };
            let want = (end != "x" && (1..=19).contains(&digits.len()))
                .then(|| digits.parse::<u64>().unwrap());
            prop_assert_eq!(c.uint(), want, "{:?}", digits);
        }
    }
}
