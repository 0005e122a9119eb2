//! One-second CVD bars per instrument and per (base asset, market kind) aggregate.
//!
//! Sans-IO and clock-free: bars are bucketed by the exchange's trade time and closed only by
//! exchange time, so live and replay produce the same bars from the same events.
//!
//! ```text
//! Trade ---------> BarEngine::on_trade ----> bars of this instrument (+ aggregates)
//! exchange time -> BarEngine::on_watermark -> bars of every instrument of that venue
//! end of input --> BarEngine::finish ------> open bars flushed with complete = false
//! ```
//!
//! Closing rule (docs/REPLAY.md): bar S is final when the same instrument trades at or
//! after S+1 s, or when its venue's exchange-time watermark reaches S+1.5 s. A trade for a
//! final second is late: counted, never added.
//!
//! An aggregate second is written once every member has made it final, except a member
//! that has sent nothing for the member timeout ([`MEMBER_TIMEOUT_MS`] by default) while
//! the others went on, on the receive clock (the recording's in replay): it is left out of
//! the seconds after its last, its open bar is closed as incomplete so that its last trades
//! still count, and the rows say which members they hold (`members`) and `complete: false`.
//! A dead feed never stalls the aggregates; a member that comes back joins the next second
//! not yet written.

use crate::decimal::{pow10_i128, round_div_half_even};
use crate::event::{Aggressor, Nanos, Trade, TradeSource};
use crate::instrument::{ContractSize, InstrumentId, InstrumentTable, MarketKind, Venue};
use std::collections::VecDeque;

/// Decimal digits of aggregate quantities (base units).
pub const AGG_QTY_SCALE: u8 = 8;
/// Decimal digits of aggregate notionals (quote units).
pub const AGG_NOTIONAL_SCALE: u8 = 10;
/// How far the venue watermark must pass a second's end before it closes, in ms.
pub const WATERMARK_GRACE_MS: i64 = 500;
/// By default, an aggregate leaves out a member silent this long (receive time, ms) while
/// its other members went on.
pub const MEMBER_TIMEOUT_MS: i64 = 10_000;

/// Identifies a cross-venue aggregate: index into [`BarEngine::aggregates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AggregateId(pub u16);

/// A cross-venue aggregate: every instrument of one base asset and market kind.
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// Base asset, e.g. `BTC`.
    pub base: String,
    /// Spot or perpetual.
    pub kind: MarketKind,
    /// Member instruments (those of `instruments` that take part in the run).
    pub members: Vec<InstrumentId>,
    /// Every instrument of the table with this base and kind, in table order: bit `i` of
    /// a bar's [`Bar::members`] is `instruments[i]` (the first 64), the same in every run
    /// on the same table.
    pub instruments: Vec<InstrumentId>,
}

impl Aggregate {
    /// The `venue` label in output: `agg-spot` or `agg-perp`.
    pub fn label(&self) -> &'static str {
        match self.kind {
            MarketKind::Spot => "agg-spot",
            MarketKind::Perpetual => "agg-perp",
        }
    }
}

/// Whose bar this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKey {
    /// One instrument on one venue.
    Instrument(InstrumentId),
    /// A cross-venue aggregate.
    Aggregate(AggregateId),
}

/// Open, high, low and close, as price mantissas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ohlc {
    /// First trade price (previous close for an empty bar).
    pub open: i64,
    /// Highest trade price.
    pub high: i64,
    /// Lowest trade price.
    pub low: i64,
    /// Last trade price.
    pub close: i64,
}

/// A final one-second bar. Quantities are at the instrument's size scale (aggregates:
/// [`AGG_QTY_SCALE`]); notionals at price + size scale (aggregates: [`AGG_NOTIONAL_SCALE`]).
/// Sums are `i128` because they are sums; events stay `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Instrument or aggregate.
    pub key: BarKey,
    /// Start of the second, ms since the epoch.
    pub ts_ms: i64,
    /// Prices; `None` for aggregates.
    pub ohlc: Option<Ohlc>,
    /// Taker buy quantity.
    pub buy_qty: i128,
    /// Taker sell quantity.
    pub sell_qty: i128,
    /// `buy_qty - sell_qty`.
    pub delta: i128,
    /// Sum of `delta` over this and every earlier bar of the series.
    pub cvd: i128,
    /// Number of trades.
    pub trades: u32,
    /// Volume-weighted price at the price scale; `None` when empty or for aggregates.
    pub vwap: Option<i64>,
    /// Quote notional bought by takers.
    pub buy_notional: i128,
    /// Quote notional sold by takers.
    pub sell_notional: i128,
    /// False when the bar may miss trades (first bar of a series, flushed at the end; an
    /// aggregate's that left a member out).
    pub complete: bool,
    /// Aggregates: the members whose bars it holds, bit `i` for [`Aggregate::instruments`]`[i]`;
    /// 0 for an instrument's own bar.
    pub members: u64,
}

/// Receives final bars in the order they become final.
pub trait BarSink {
    /// One final bar.
    fn bar(&mut self, bar: &Bar);
}

crate::counters! {
    /// Counters of the bar engine, per venue and in total.
    pub struct BarCounters {
        /// Trades whose second was already final.
        pub late_trades: u64,
        /// Trades that are not taker flow (`X` != MARKET), excluded.
        pub non_taker_trades: u64,
        /// Trades from the second trade stream kind of an instrument, ignored.
        pub other_source_trades: u64,
        /// Member bars for aggregate seconds already written without them (a member back
        /// after its timeout), left out of the aggregate.
        pub late_member_bars: u64,
        /// Times an aggregate left a silent member out.
        pub members_timed_out: u64,
        /// Trades added to bars.
        pub trades: u64,
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Accum {
    ohlc: Option<Ohlc>,
    buy_qty: i128,
    sell_qty: i128,
    trades: u32,
    px_qty: i128,
    buy_notional: i128,
    sell_notional: i128,
    agg_buy: i128,
    agg_sell: i128,
    agg_buy_notional: i128,
    agg_sell_notional: i128,
}

/// How one instrument's numbers convert into bar and aggregate units.
#[derive(Debug, Clone, Copy)]
struct Units {
    /// Multiply `px * qty` (linear) or `qty * contract` (inverse) by this to get the bar
    /// notional at price + size scale.
    notional_mul: i128,
    /// `Some(contract mantissa)` for inverse instruments.
    inverse_contract: Option<i128>,
    /// Linear: multiply qty by this to get base at AGG_QTY_SCALE.
    agg_qty_mul: i128,
    /// Inverse: numerator factor for base = qty * this / px.
    agg_inverse_num: i128,
    /// Multiply the bar notional by this to get AGG_NOTIONAL_SCALE.
    agg_notional_mul: i128,
}

#[derive(Debug, Clone)]
struct Series {
    venue: Venue,
    units: Units,
    aggregate: Option<AggregateId>,
    /// The first second not yet final; `None` before the first trade.
    open_sec: Option<i64>,
    /// True while `open_sec` is the series' first second.
    first_bar: bool,
    last_close: Option<i64>,
    cvd: i128,
    acc: Accum,
    source: Option<TradeSource>,
    /// Trades may still arrive for the open second and later ones (a connection broke, a
    /// hole is being filled from the venue's history): the watermark does not close them.
    held: bool,
    /// Receive time (ms) of the instrument's latest stream event; `None` before the first.
    last_seen_ms: Option<i64>,
    /// Its bit in its aggregate's member mask (0 past 64 instruments).
    agg_bit: u64,
    /// Its aggregate goes on without it (silent past the member timeout) until it is seen.
    left_out: bool,
    /// Bars up to this second may miss trades (a hole that could not be filled).
    incomplete_through: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct AggSlot {
    acc: Accum,
    complete_members: u16,
    /// Bits of the members whose bars it holds.
    members: u64,
}

#[derive(Debug, Clone)]
struct AggState {
    /// Second of `slots[0]`; `None` until the first member bar is final.
    base_sec: Option<i64>,
    /// True once a second was written: `base_sec` then only grows, and a member bar for a
    /// second before it is late.
    written: bool,
    /// Receive time (ms) a member was first seen at: a member never seen is silent since.
    first_seen_ms: Option<i64>,
    slots: VecDeque<AggSlot>,
    cvd: i128,
}

/// Why a bar engine could not be built for a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarConfigError {
    /// Scales too fine for the aggregate scales.
    #[error("instrument {symbol}: scales too fine for aggregate scales 8/10")]
    ScaleTooFine {
        /// The instrument.
        symbol: String,
    },
    /// An inverse contract whose value has more decimals than the price scale.
    #[error("instrument {symbol}: contract size scale above price scale")]
    ContractScale {
        /// The instrument.
        symbol: String,
    },
}

/// Builds, closes and aggregates one-second bars.
#[derive(Debug, Clone)]
pub struct BarEngine {
    series: Vec<Series>,
    aggregates: Vec<Aggregate>,
    agg_state: Vec<AggState>,
    /// Per venue: largest exchange time seen, ms.
    watermark_ms: [Option<i64>; Venue::ALL.len()],
    /// Per venue.
    counters: [BarCounters; Venue::ALL.len()],
    /// A member silent this long (receive time, ms) is left out of its aggregate.
    member_timeout_ms: i64,
}

impl BarEngine {
    /// A bar engine for every instrument of `table`; `members` limits the aggregates to the
    /// instruments that take part in the run (all of them when `None`). There is one
    /// aggregate per (base asset, market kind) of the table, in the order of the table's
    /// first instrument of each, members or not: their ids are the same in every run on
    /// the same table.
    ///
    /// # Errors
    /// [`BarConfigError`] when an instrument's scales do not fit the aggregate scales.
    pub fn new(
        table: &InstrumentTable,
        members: Option<&[InstrumentId]>,
    ) -> Result<Self, BarConfigError> {
        let mut aggregates: Vec<Aggregate> = Vec::new();
        let mut series = Vec::with_capacity(table.len());
        for (id, inst) in table.iter() {
            let ps = inst.price_scale as u32;
            let ss = inst.size_scale as u32;
            let too_fine = || BarConfigError::ScaleTooFine {
                symbol: inst.symbol.clone(),
            };
            let agg_notional_mul = pow10_i128(
                (AGG_NOTIONAL_SCALE as u32)
                    .checked_sub(ps + ss)
                    .ok_or_else(too_fine)?,
            );
            let units = match inst.contract {
                ContractSize::Base => Units {
                    notional_mul: 1,
                    inverse_contract: None,
                    agg_qty_mul: pow10_i128(
                        (AGG_QTY_SCALE as u32)
                            .checked_sub(ss)
                            .ok_or_else(too_fine)?,
                    ),
                    agg_inverse_num: 0,
                    agg_notional_mul,
                },
                ContractSize::Quote { mantissa, scale } => {
                    let cs = scale as u32;
                    let notional_mul = pow10_i128(ps.checked_sub(cs).ok_or_else(|| {
                        BarConfigError::ContractScale {
                            symbol: inst.symbol.clone(),
                        }
                    })?);
                    Units {
                        notional_mul,
                        inverse_contract: Some(mantissa as i128),
                        agg_qty_mul: 0,
                        // base * 10^8 = qty * c * 10^(8 + ps - cs) / px
                        agg_inverse_num: mantissa as i128
                            * pow10_i128(AGG_QTY_SCALE as u32 + ps - cs),
                        agg_notional_mul,
                    }
                }
            };
            // Every (base, kind) of the table has its aggregate, in table order, whether or
            // not the run has a member of it: aggregate ids (and so the bus's symbol ids)
            // depend on the instrument table only, never on which feeds a run has.
            let at = aggregates
                .iter()
                .position(|a| a.base == inst.base && a.kind == inst.kind)
                .unwrap_or_else(|| {
                    aggregates.push(Aggregate {
                        base: inst.base.clone(),
                        kind: inst.kind,
                        members: Vec::new(),
                        instruments: Vec::new(),
                    });
                    aggregates.len() - 1
                });
            let slot = aggregates[at].instruments.len();
            aggregates[at].instruments.push(id);
            let agg_bit = if slot < 64 { 1u64 << slot } else { 0 };
            let joins = members.is_none_or(|m| m.contains(&id));
            let aggregate = joins.then(|| {
                aggregates[at].members.push(id);
                AggregateId(at as u16)
            });
            series.push(Series {
                venue: inst.venue,
                units,
                aggregate,
                open_sec: None,
                first_bar: true,
                last_close: None,
                cvd: 0,
                acc: Accum::default(),
                source: None,
                held: false,
                incomplete_through: None,
                last_seen_ms: None,
                agg_bit,
                left_out: false,
            });
        }
        let agg_state = aggregates
            .iter()
            .map(|_| AggState {
                base_sec: None,
                written: false,
                first_seen_ms: None,
                slots: VecDeque::with_capacity(64),
                cvd: 0,
            })
            .collect();
        Ok(Self {
            series,
            aggregates,
            agg_state,
            watermark_ms: [None; Venue::ALL.len()],
            counters: [BarCounters::default(); Venue::ALL.len()],
            member_timeout_ms: MEMBER_TIMEOUT_MS,
        })
    }

    /// Sets how long a silent member waits before its aggregates go on without it
    /// (receive time, ms; [`MEMBER_TIMEOUT_MS`] by default).
    pub fn set_member_timeout_ms(&mut self, ms: i64) {
        self.member_timeout_ms = ms.max(0);
    }

    /// An event of the instrument's stream was received at `local_ms` (the recording's
    /// time in replay): it is alive for its aggregate.
    #[inline]
    pub fn seen(&mut self, inst: InstrumentId, local_ms: i64) {
        let s = &mut self.series[inst.index()];
        if s.last_seen_ms.is_none_or(|t| t < local_ms) {
            s.last_seen_ms = Some(local_ms);
            s.left_out = false;
        }
        if let Some(agg) = s.aggregate {
            self.agg_state[agg.0 as usize]
                .first_seen_ms
                .get_or_insert(local_ms);
        }
    }

    /// The aggregates, indexed by [`AggregateId`].
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    /// Counters so far, every venue.
    pub fn counters(&self) -> BarCounters {
        self.counters.iter().copied().sum()
    }

    /// Counters so far of one venue's instruments.
    pub fn venue_counters(&self, venue: Venue) -> BarCounters {
        self.counters[venue.index()]
    }

    /// Adds a trade (or counts it late / excluded), closing earlier seconds first.
    pub fn on_trade(&mut self, inst: InstrumentId, trade: &Trade, sink: &mut impl BarSink) {
        let v = self.series[inst.index()].venue.index();
        if !trade.is_taker_flow {
            self.counters[v].non_taker_trades += 1;
            return;
        }
        let s = &mut self.series[inst.index()];
        match s.source {
            None => s.source = Some(trade.source),
            Some(src) if src != trade.source => {
                self.counters[v].other_source_trades += 1;
                return;
            }
            Some(_) => {}
        }
        let sec = trade.trade_ts.div_euclid(1_000_000_000);
        match s.open_sec {
            None => s.open_sec = Some(sec),
            Some(open) if sec < open => {
                self.counters[v].late_trades += 1;
                return;
            }
            Some(open) if sec > open => self.close_through(inst, sec - 1, sink),
            Some(_) => {}
        }
        let s = &mut self.series[inst.index()];
        let (px, qty) = (trade.px as i128, trade.qty as i128);
        let u = s.units;
        let notional = match u.inverse_contract {
            None => px * qty * u.notional_mul,
            Some(contract) => qty * contract * u.notional_mul,
        };
        let agg_qty = match u.inverse_contract {
            None => qty * u.agg_qty_mul,
            Some(_) => round_div_half_even(qty * u.agg_inverse_num, px),
        };
        let acc = &mut s.acc;
        acc.ohlc = Some(match acc.ohlc {
            None => Ohlc {
                open: trade.px,
                high: trade.px,
                low: trade.px,
                close: trade.px,
            },
            Some(o) => Ohlc {
                open: o.open,
                high: o.high.max(trade.px),
                low: o.low.min(trade.px),
                close: trade.px,
            },
        });
        acc.trades += 1;
        acc.px_qty += px * qty;
        match trade.aggressor {
            Aggressor::Buy => {
                acc.buy_qty += qty;
                acc.buy_notional += notional;
                acc.agg_buy += agg_qty;
                acc.agg_buy_notional += notional * u.agg_notional_mul;
            }
            Aggressor::Sell => {
                acc.sell_qty += qty;
                acc.sell_notional += notional;
                acc.agg_sell += agg_qty;
                acc.agg_sell_notional += notional * u.agg_notional_mul;
            }
        }
        self.counters[v].trades += 1;
    }

    /// Advances a venue's exchange-time watermark (ms) and closes every second it passed.
    pub fn on_watermark(&mut self, venue: Venue, exch_ms: i64, sink: &mut impl BarSink) {
        let wm = &mut self.watermark_ms[venue.index()];
        if wm.is_some_and(|w| w >= exch_ms) {
            return;
        }
        *wm = Some(exch_ms);
        let last_final = last_final_second(exch_ms);
        for i in 0..self.series.len() {
            if self.series[i].venue == venue && !self.series[i].held {
                self.close_through(InstrumentId(i as u16), last_final, sink);
            }
        }
    }

    /// Keeps an instrument's bars open past the watermark until [`Self::release`]: trades
    /// for them may still come (from the venue's history after a disconnect).
    pub fn hold(&mut self, inst: InstrumentId) {
        self.series[inst.index()].held = true;
    }

    /// True while [`Self::hold`] keeps the instrument's bars open.
    pub fn is_held(&self, inst: InstrumentId) -> bool {
        self.series[inst.index()].held
    }

    /// Ends a [`Self::hold`]: closes what the venue's watermark has passed meanwhile.
    pub fn release(&mut self, inst: InstrumentId, sink: &mut impl BarSink) {
        let s = &mut self.series[inst.index()];
        if !core::mem::replace(&mut s.held, false) {
            return;
        }
        if let Some(wm) = self.watermark_ms[s.venue.index()] {
            self.close_through(inst, last_final_second(wm), sink);
        }
    }

    /// Flags an instrument's bars up to and including second `through_sec` as possibly
    /// missing trades (`complete: false`, and so their aggregates).
    pub fn mark_incomplete(&mut self, inst: InstrumentId, through_sec: i64) {
        let s = &mut self.series[inst.index()];
        s.incomplete_through = Some(
            s.incomplete_through
                .map_or(through_sec, |t| t.max(through_sec)),
        );
    }

    /// Emits every open bar as incomplete (end of input or a clean stop), then every
    /// aggregate second still waiting.
    pub fn finish(&mut self, sink: &mut impl BarSink) {
        for i in 0..self.series.len() {
            // The open second holds trades unless the watermark already closed the last
            // traded one; no empty bar is invented past the data.
            if let (Some(open), true) = (self.series[i].open_sec, self.series[i].acc.trades > 0) {
                self.emit_open(InstrumentId(i as u16), false, sink);
                self.series[i].open_sec = Some(open + 1);
            }
        }
        for a in 0..self.aggregates.len() {
            self.emit_aggregates(AggregateId(a as u16), true, sink);
        }
    }

    fn close_through(&mut self, inst: InstrumentId, last_final: i64, sink: &mut impl BarSink) {
        while let Some(open) = self.series[inst.index()].open_sec {
            if open > last_final {
                break;
            }
            self.emit_open(inst, true, sink);
            self.series[inst.index()].open_sec = Some(open + 1);
        }
    }

    /// Emits the bar of `open_sec` and resets the accumulator (does not advance `open_sec`).
    fn emit_open(&mut self, inst: InstrumentId, closed: bool, sink: &mut impl BarSink) {
        let s = &mut self.series[inst.index()];
        let Some(sec) = s.open_sec else { return };
        let acc = core::mem::take(&mut s.acc);
        let complete =
            closed && !s.first_bar && s.incomplete_through.is_none_or(|through| sec > through);
        s.first_bar = false;
        let ohlc = acc.ohlc.or(s.last_close.map(|c| Ohlc {
            open: c,
            high: c,
            low: c,
            close: c,
        }));
        if let Some(o) = acc.ohlc {
            s.last_close = Some(o.close);
        }
        let delta = acc.buy_qty - acc.sell_qty;
        s.cvd += delta;
        let volume = acc.buy_qty + acc.sell_qty;
        let bar = Bar {
            key: BarKey::Instrument(inst),
            ts_ms: sec * 1000,
            ohlc,
            buy_qty: acc.buy_qty,
            sell_qty: acc.sell_qty,
            delta,
            cvd: s.cvd,
            trades: acc.trades,
            vwap: (volume != 0).then(|| round_div_half_even(acc.px_qty, volume) as i64),
            buy_notional: acc.buy_notional,
            sell_notional: acc.sell_notional,
            complete,
            members: 0,
        };
        sink.bar(&bar);
        if let Some(agg) = s.aggregate {
            let bit = s.agg_bit;
            self.add_to_aggregate(agg, sec, &acc, complete, bit, sink);
        }
    }

    fn add_to_aggregate(
        &mut self,
        agg: AggregateId,
        sec: i64,
        acc: &Accum,
        complete: bool,
        bit: u64,
        sink: &mut impl BarSink,
    ) {
        let st = &mut self.agg_state[agg.0 as usize];
        let mut base = *st.base_sec.get_or_insert(sec);
        if sec < base && st.written {
            // Written without this member, which was silent past its timeout (an empty
            // bar of its silence loses nothing).
            if acc.trades > 0 {
                let venue = self.series[self.aggregates[agg.0 as usize].members[0].index()].venue;
                self.counters[venue.index()].late_member_bars += 1;
            }
            return;
        }
        if sec < base {
            // A member that started earlier than the one that closed first: the aggregate
            // grows at the front. Nothing below `base` was emitted yet, because emission
            // waits for every member to close a second.
            for _ in sec..base {
                st.slots.push_front(AggSlot::default());
            }
            base = sec;
            st.base_sec = Some(sec);
        }
        let at = (sec - base) as usize;
        if st.slots.len() <= at {
            st.slots.resize(at + 1, AggSlot::default());
        }
        let slot = &mut st.slots[at];
        slot.acc.agg_buy += acc.agg_buy;
        slot.acc.agg_sell += acc.agg_sell;
        slot.acc.agg_buy_notional += acc.agg_buy_notional;
        slot.acc.agg_sell_notional += acc.agg_sell_notional;
        slot.acc.trades += acc.trades;
        slot.complete_members += complete as u16;
        slot.members |= bit;
        self.emit_aggregates(agg, false, sink);
    }

    /// Members of `agg` silent for the member timeout while another went on: their open
    /// bar (if it holds trades) is closed as incomplete, once, and they stop holding the
    /// aggregate back. A held member (its connection broke, a hole waits for the venue's
    /// history) is closed the same way: a history that comes later than the timeout brings
    /// late trades (counted) rather than a stalled aggregate.
    fn timed_out_members(&mut self, agg: AggregateId, sink: &mut impl BarSink) -> u64 {
        let members = &self.aggregates[agg.0 as usize].members;
        let now = members
            .iter()
            .filter_map(|m| self.series[m.index()].last_seen_ms)
            .max();
        let Some(now) = now else { return 0 };
        let mut out = 0;
        // Past 64 members an aggregate waits for every one, as without a timeout.
        for i in 0..members.len().min(64) {
            let m = self.aggregates[agg.0 as usize].members[i];
            let s = &self.series[m.index()];
            // A member never seen is silent since the aggregate's first member was.
            let since = (s.last_seen_ms)
                .or(self.agg_state[agg.0 as usize].first_seen_ms)
                .unwrap_or(now);
            if now.saturating_sub(since) <= self.member_timeout_ms {
                continue;
            }
            out |= 1 << i;
            let venue = s.venue.index();
            if !core::mem::replace(&mut self.series[m.index()].left_out, true) {
                self.counters[venue].members_timed_out += 1;
            }
            let s = &self.series[m.index()];
            if s.acc.trades > 0 {
                // Its last trades count, in a bar that says it may miss some.
                let open = s.open_sec.expect("trades in an open second");
                self.emit_open(m, false, sink);
                self.series[m.index()].open_sec = Some(open + 1);
            }
        }
        out
    }

    /// Emits aggregate seconds from the front while every member has closed them (or all
    /// of them when `flush`).
    fn emit_aggregates(&mut self, agg: AggregateId, flush: bool, sink: &mut impl BarSink) {
        let timed_out = if flush {
            0
        } else {
            self.timed_out_members(agg, sink)
        };
        let members = &self.aggregates[agg.0 as usize].members;
        let count = members.len();
        // The last second every live member has made final (a member that has not
        // started blocks: it could still begin inside any second).
        let mut ready = i64::MAX;
        for (i, m) in members.iter().enumerate() {
            if timed_out & (1 << i) != 0 {
                continue;
            }
            match self.series[m.index()].open_sec {
                Some(open) => ready = ready.min(open - 1),
                None => ready = i64::MIN,
            }
        }
        let st = &mut self.agg_state[agg.0 as usize];
        let Some(mut base) = st.base_sec else { return };
        while !st.slots.is_empty() && (flush || base <= ready) {
            let slot = st.slots.pop_front().expect("checked non-empty");
            st.written = true;
            let delta = slot.acc.agg_buy - slot.acc.agg_sell;
            st.cvd += delta;
            sink.bar(&Bar {
                key: BarKey::Aggregate(agg),
                ts_ms: base * 1000,
                ohlc: None,
                buy_qty: slot.acc.agg_buy,
                sell_qty: slot.acc.agg_sell,
                delta,
                cvd: st.cvd,
                trades: slot.acc.trades,
                vwap: None,
                buy_notional: slot.acc.agg_buy_notional,
                sell_notional: slot.acc.agg_sell_notional,
                complete: slot.complete_members as usize == count,
                members: slot.members,
            });
            base += 1;
        }
        st.base_sec = Some(base);
    }

    /// The exchange-time watermark of a venue, ms.
    pub fn watermark_ms(&self, venue: Venue) -> Option<i64> {
        self.watermark_ms[venue.index()]
    }
}

/// The last second a venue watermark (ms) makes final: second S is final when
/// (S+1)*1000 + grace <= watermark.
pub(crate) fn last_final_second(watermark_ms: i64) -> i64 {
    (watermark_ms - WATERMARK_GRACE_MS).div_euclid(1000) - 1
}

/// Second (since the epoch) that an exchange time in ns falls in.
#[inline]
pub fn second_of(ts: Nanos) -> i64 {
    ts.div_euclid(1_000_000_000)
}
