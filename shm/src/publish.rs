//! From the engine's outputs to bus records: the one place that knows both.
//!
//! The core thread calls [`Publisher::on_event`] after the engine consumed each event, and
//! passes the publisher as (part of) the engine's sink for bars, tops and venue statistics.
//! Symbol ids are instrument ids, then aggregate ids after the last instrument.

use crate::abi::{
    action, flags, health, tier, venue, BarRecord, BboRecord, Book20Record, HealthRecord,
    SignalRecord, StatsRecord, StrategyRecord, SymbolRecord, TopRecord, TradeRecord, BOOK_DEPTH,
    HEALTH_SOURCE_PIPELINE, STRATEGY_NAME_LEN,
};
use crate::bus::{padded, BusConfig, BusWriter};
use crate::error::ShmError;
use flowcore_core::bars::{Bar, BarKey, BarSink, Ohlc, AGG_NOTIONAL_SCALE, AGG_QTY_SCALE};
use flowcore_core::book::PriceLevel;
use flowcore_core::engine::{Engine, EngineSink, TopRow, TopSample};
use flowcore_core::event::{
    Aggressor, BookSide, EventKind, MarketEvent, SessionEvent, Trade, TradeSource,
};
use flowcore_core::indicators::Value;
use flowcore_core::instrument::{ContractSize, InstrumentId, InstrumentTable, MarketKind, Venue};
use flowcore_core::strategy::{fraction_mantissa, Action, Signal, StrategyId, Tier};
use flowcore_core::venue_stats::{StatsRow, VenueStats};
use std::time::{SystemTime, UNIX_EPOCH};

/// Publishes the engine's outputs on a bus.
#[derive(Debug)]
pub struct Publisher {
    bus: BusWriter,
    instruments: u32,
    /// Exchange time of each book's open batch (`BookEnd` carries none).
    batch_exch_ns: Vec<i64>,
    /// Instruments whose `book20.table` slot was written (a stream break rewrites only those).
    book_written: Vec<bool>,
    published: u64,
    saturated: u64,
    /// Strategies not in `strategies.table`: an id past its slots or a name too long.
    strategies_refused: u32,
}

/// The writer's clock: wall time (a vDSO read, no system call).
#[inline]
fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A venue's code in [`SymbolRecord::venue`] and [`HealthRecord::source`].
pub const fn venue_code(v: Venue) -> u16 {
    match v {
        Venue::BinanceSpot => venue::BINANCE_SPOT,
        Venue::BinanceUsdm => venue::BINANCE_USDM,
        Venue::BinanceCoinm => venue::BINANCE_COINM,
        Venue::BybitSpot => venue::BYBIT_SPOT,
        Venue::BybitLinear => venue::BYBIT_LINEAR,
    }
}

/// The venue of a code from [`venue_code`] (none for aggregates and unknown codes).
pub fn venue_of_code(code: u16) -> Option<Venue> {
    Venue::ALL.into_iter().find(|&v| venue_code(v) == code)
}

/// One symbol record per instrument of `engine`'s table, then one per aggregate.
pub fn symbol_records(engine: &Engine) -> Vec<SymbolRecord> {
    let table: &InstrumentTable = engine.table();
    let mut out: Vec<SymbolRecord> = table
        .iter()
        .map(|(id, i)| instrument_record(id.0.into(), i))
        .collect();
    for (k, a) in engine.bars().aggregates().iter().enumerate() {
        out.push(SymbolRecord {
            symbol_id: (table.len() + k) as u32,
            venue: match a.kind {
                MarketKind::Spot => venue::AGG_SPOT,
                MarketKind::Perpetual => venue::AGG_PERP,
            },
            market_kind: market_kind(a.kind),
            size_scale: AGG_QTY_SCALE,
            notional_scale: AGG_NOTIONAL_SCALE,
            symbol: padded(&a.base),
            base: padded(&a.base),
            ..bytemuck::Zeroable::zeroed()
        });
    }
    out
}

/// The symbol record of one instrument at symbol id `symbol_id`.
pub fn instrument_record(
    symbol_id: u32,
    i: &flowcore_core::instrument::Instrument,
) -> SymbolRecord {
    let (unit, value, value_scale) = match i.contract {
        ContractSize::Base => (0, 0, 0),
        ContractSize::Quote { mantissa, scale } => (1, mantissa, scale),
    };
    SymbolRecord {
        symbol_id,
        venue: venue_code(i.venue),
        market_kind: market_kind(i.kind),
        contract_unit: unit,
        price_scale: i.price_scale,
        size_scale: i.size_scale,
        notional_scale: i.price_scale + i.size_scale,
        contract_value_scale: value_scale,
        reserved0: 0,
        tick: i.tick,
        lot: i.lot,
        contract_value: value,
        symbol: padded(&i.symbol),
        base: padded(&i.base),
        quote: padded(&i.quote),
    }
}

/// A bar sum as an ABI `i64`; one that does not fit saturates and flags the record.
fn narrow(v: i128, f: &mut u32) -> i64 {
    i64::try_from(v).unwrap_or_else(|_| {
        *f |= flags::SATURATED;
        if v < 0 {
            i64::MIN
        } else {
            i64::MAX
        }
    })
}

fn market_kind(kind: MarketKind) -> u8 {
    match kind {
        MarketKind::Spot => 1,
        MarketKind::Perpetual => 2,
    }
}

impl Publisher {
    /// Creates the bus for `engine`'s instruments and aggregates.
    pub fn create(config: &BusConfig, engine: &Engine) -> Result<Self, ShmError> {
        Ok(Self {
            bus: BusWriter::create(config, &symbol_records(engine))?,
            instruments: engine.table().len() as u32,
            batch_exch_ns: vec![0; engine.table().len()],
            book_written: vec![false; engine.table().len()],
            published: 0,
            saturated: 0,
            strategies_refused: 0,
        })
    }

    /// The bus (signals are published through it directly).
    pub fn bus(&mut self) -> &mut BusWriter {
        &mut self.bus
    }

    /// Records published on every stream so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Records whose sums did not fit an `i64` (flagged [`flags::SATURATED`]).
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// Publishes what `ev` changed, after `engine` consumed it: the venue's best bid/ask,
    /// or the top-20 book at the end of a depth batch.
    #[inline]
    pub fn on_event(&mut self, ev: &MarketEvent, engine: &Engine) {
        let symbol_id = u32::from(ev.inst.0);
        match &ev.kind {
            EventKind::BookTicker(b) => self.bus.bbo.publish(&BboRecord {
                exch_ns: b.exch_ts.map_or(0, |t| t.get()),
                local_ns: ev.local_ts,
                symbol_id,
                flags: 0,
                bid_px: b.bid_px,
                bid_qty: b.bid_qty,
                ask_px: b.ask_px,
                ask_qty: b.ask_qty,
            }),
            EventKind::BookBegin(b) => {
                self.batch_exch_ns[ev.inst.index()] = b.exch_ts.map_or(0, |t| t.get());
                return;
            }
            EventKind::BookEnd => self.book20(ev, engine, self.batch_exch_ns[ev.inst.index()]),
            // The engine dropped the book (diffs were missed): readers must not go on
            // trusting the old one until the successor connection's first diff.
            EventKind::Session(SessionEvent::StreamBreak) if self.book_written[ev.inst.index()] => {
                self.book20(ev, engine, 0);
            }
            // Trades go out as the engine counts them (`EngineSink::trade`), venue
            // statistics as per-second rows ([`Publisher::stats`]).
            EventKind::Trade(_)
            | EventKind::Level(_)
            | EventKind::Session(_)
            | EventKind::Stat(_) => return,
        }
        self.published += 1;
    }

    /// Rewrites `ev`'s instrument's top-20 slot with the book as it stands, stamped `exch_ns`.
    fn book20(&mut self, ev: &MarketEvent, engine: &Engine, exch_ns: i64) {
        let mut rec = Book20Record {
            local_ns: ev.local_ts,
            symbol_id: ev.inst.0.into(),
            ..bytemuck::Zeroable::zeroed()
        };
        if engine.is_synced(ev.inst) {
            rec.flags = flags::BOOK_SYNCED;
            let book = engine.book(ev.inst);
            for (side, out, n) in [
                (BookSide::Bid, &mut rec.bids, &mut rec.bid_levels),
                (BookSide::Ask, &mut rec.asks, &mut rec.ask_levels),
            ] {
                for (slot, level) in out.iter_mut().zip(book.levels(side).take(BOOK_DEPTH)) {
                    *slot = [level.px, level.qty];
                    *n += 1;
                }
            }
        }
        rec.exch_ns = exch_ns;
        rec.publish_ns = now_ns();
        // The key is an instrument id, always inside the table the bus was created with.
        let _ = self.bus.book20.update(ev.inst.0.into(), &rec);
        self.book_written[ev.inst.index()] = true;
    }

    /// Publishes a health record (its `publish_ns` stamped here, and for the whole
    /// pipeline's record the count of records published) and the writer heartbeat.
    pub fn health(&mut self, mut record: HealthRecord) {
        if record.source == HEALTH_SOURCE_PIPELINE {
            record.counters[health::PUBLISHED] = self.published;
        }
        let now = now_ns();
        record.publish_ns = now;
        self.bus.health.publish(&record);
        self.bus.heartbeat(now as u64);
        self.published += 1;
    }
}

/// [`SignalRecord::reason_bits`] bit the bus sets when a CVD did not fit an `i64`.
pub const SIGNAL_CVD_SATURATED: u32 = 1 << 31;

impl Publisher {
    /// The symbol id of a bar key: instruments first, then aggregates.
    fn symbol_id(&self, key: BarKey) -> u32 {
        match key {
            BarKey::Instrument(id) => id.0.into(),
            BarKey::Aggregate(a) => self.instruments + u32::from(a.0),
        }
    }

    /// Publishes a strategy's signal; `local_ns` is the local receive time of the message
    /// whose event triggered it (the recording's in replay).
    pub fn signal(&mut self, s: &Signal, local_ns: i64) {
        let mut f = 0;
        let (spot_cvd, perp_cvd) = (narrow(s.spot_cvd, &mut f), narrow(s.perp_cvd, &mut f));
        let saturated = if f != 0 { SIGNAL_CVD_SATURATED } else { 0 };
        self.bus.signals.publish(&SignalRecord {
            signal_id: s.id,
            exch_ns: s.exch_ns,
            local_ns,
            symbol_id: self.symbol_id(s.key),
            strategy_id: s.strategy.0,
            action: match s.action {
                Action::EnterLong => action::ENTER_LONG,
                Action::EnterShort => action::ENTER_SHORT,
                Action::Exit => action::EXIT,
            },
            tier: match s.tier {
                Tier::Fast => tier::FAST,
                Tier::Tactical => tier::TACTICAL,
                Tier::Strategic => tier::STRATEGIC,
            },
            record_version: 1,
            reason_bits: s.reason_bits | saturated,
            entry_px: s.entry_px,
            stop_px: s.stop_px,
            take_profit_px: s.target_px,
            confidence: fraction_mantissa(s.confidence),
            score: fraction_mantissa(s.score),
            size: s.size,
            spot_cvd,
            perp_cvd,
            ..bytemuck::Zeroable::zeroed()
        });
        self.published += 1;
    }
}

impl Publisher {
    /// Writes `strategies.table`: one record per instance, at its strategy id, with its
    /// name and symbol. Call it once, after [`Publisher::create`] and before the first
    /// signal, so that a reader finds every signal's strategy when the signal arrives.
    /// An instance the table cannot hold (an id from [`STRATEGY_SLOTS`] on, a name longer
    /// than [`STRATEGY_NAME_LEN`]) is left out and counted: its signals go out without a
    /// name. Returns how many were left out.
    ///
    /// [`STRATEGY_SLOTS`]: crate::abi::STRATEGY_SLOTS
    pub fn strategies<'a>(
        &mut self,
        instances: impl IntoIterator<Item = (StrategyId, &'a str, BarKey)>,
    ) -> u32 {
        let mut refused = 0;
        for (id, name, key) in instances {
            // A cut name would be another strategy's name, or none: leave it out instead.
            if name.len() > STRATEGY_NAME_LEN {
                refused += 1;
                continue;
            }
            let record = StrategyRecord {
                strategy_id: id.0,
                symbol_id: self.symbol_id(key),
                name: padded(name),
                reserved: [0; 2],
            };
            if self.bus.strategies.update(id.0, &record).is_err() {
                refused += 1;
                continue;
            }
            self.published += 1;
        }
        self.strategies_refused += refused;
        refused
    }

    /// Strategies left out of `strategies.table` (see [`Publisher::strategies`]).
    pub fn strategies_refused(&self) -> u32 {
        self.strategies_refused
    }
}

impl BarSink for Publisher {
    fn bar(&mut self, bar: &Bar) {
        let symbol_id = self.symbol_id(bar.key);
        let mut f = 0;
        if bar.complete {
            f |= flags::BAR_COMPLETE;
        }
        let ohlc = bar.ohlc.inspect(|_| f |= flags::BAR_HAS_OHLC);
        let vwap = bar.vwap.inspect(|_| f |= flags::BAR_HAS_VWAP);
        let mut rec = BarRecord {
            ts_ms: bar.ts_ms,
            symbol_id,
            open: ohlc.map_or(0, |o| o.open),
            high: ohlc.map_or(0, |o| o.high),
            low: ohlc.map_or(0, |o| o.low),
            close: ohlc.map_or(0, |o| o.close),
            vwap: vwap.unwrap_or(0),
            trades: bar.trades,
            // Aggregates of more than 32 instruments of one base and kind lose the rest.
            members: bar.members as u32,
            ..bytemuck::Zeroable::zeroed()
        };
        rec.buy_qty = narrow(bar.buy_qty, &mut f);
        rec.sell_qty = narrow(bar.sell_qty, &mut f);
        rec.delta = narrow(bar.delta, &mut f);
        rec.cvd = narrow(bar.cvd, &mut f);
        rec.buy_notional = narrow(bar.buy_notional, &mut f);
        rec.sell_notional = narrow(bar.sell_notional, &mut f);
        if f & flags::SATURATED != 0 {
            self.saturated += 1;
        }
        rec.flags = f;
        rec.publish_ns = now_ns();
        self.bus.bars.publish(&rec);
        self.published += 1;
    }
}

impl EngineSink for Publisher {
    /// Publishes a trade the engine counted: as it arrived, or released once the trade-id
    /// hole it was held behind was settled.
    #[inline]
    fn trade(&mut self, inst: InstrumentId, t: &Trade, local_ns: i64) {
        let mut f = 0;
        if t.aggressor == Aggressor::Buy {
            f |= flags::TRADE_BUYER_TAKER;
        }
        if t.source == TradeSource::AggTrade {
            f |= flags::TRADE_AGGREGATED;
        }
        if !t.is_taker_flow {
            f |= flags::TRADE_NOT_TAKER_FLOW;
        }
        self.bus.trades.publish(&TradeRecord {
            trade_ns: t.trade_ts,
            local_ns,
            symbol_id: u32::from(inst.0),
            flags: f,
            px: t.px,
            qty: t.qty,
            trade_id: t.trade_id,
            publish_ns: now_ns(),
        });
        self.published += 1;
    }

    fn top(&mut self, row: &TopRow) {
        let mut rec = TopRecord {
            ts_ms: row.ts_ms,
            symbol_id: row.inst.0.into(),
            ..bytemuck::Zeroable::zeroed()
        };
        if let Some(t) = row.top {
            rec.flags |= flags::BOOK_SYNCED;
            if let Some(b) = t.bid {
                rec.flags |= flags::TOP_HAS_BID;
                (rec.bid_px, rec.bid_qty) = (b.px, b.qty);
            }
            if let Some(a) = t.ask {
                rec.flags |= flags::TOP_HAS_ASK;
                (rec.ask_px, rec.ask_qty) = (a.px, a.qty);
            }
            if let Some(v) = t.obi_l1 {
                rec.flags |= flags::TOP_HAS_OBI_L1;
                rec.obi_l1 = v;
            }
            if let Some(v) = t.obi {
                rec.flags |= flags::TOP_HAS_OBI;
                rec.obi = v;
            }
        }
        rec.publish_ns = now_ns();
        self.bus.tops.publish(&rec);
        self.published += 1;
    }

    /// Publishes one instrument's venue statistics row (the engine writes a second's row
    /// once the instrument's statistics moved on to a later second).
    fn stats(&mut self, row: &StatsRow) {
        let s = &row.stats;
        let mut f = 0;
        let mut field = |v: Option<i64>, bit: u32| {
            v.map_or(0, |v| {
                f |= bit;
                v
            })
        };
        let mut rec = StatsRecord {
            ts_ms: row.ts_ms,
            symbol_id: row.inst.0.into(),
            mark_px: field(s.mark_px, flags::STATS_HAS_MARK),
            index_px: field(s.index_px, flags::STATS_HAS_INDEX),
            open_interest: field(s.open_interest, flags::STATS_HAS_OPEN_INTEREST),
            funding_rate: field(s.funding_rate, flags::STATS_HAS_FUNDING_RATE),
            next_funding_ms: field(s.next_funding_ms, flags::STATS_HAS_NEXT_FUNDING),
            local_ns: field(s.updated_ns, flags::STATS_HAS_LOCAL_NS),
            ..bytemuck::Zeroable::zeroed()
        };
        rec.flags = f;
        rec.publish_ns = now_ns();
        self.bus.stats.publish(&rec);
        self.published += 1;
    }
}

/// The engine's bar a [`BarRecord`] carries: the inverse of [`Publisher`]'s bars (`key` is
/// the caller's: a record names its series by symbol id only).
pub fn bar_from_record(r: &BarRecord, key: BarKey) -> Bar {
    let has = |bit| r.flags & bit != 0;
    Bar {
        key,
        ts_ms: r.ts_ms,
        ohlc: has(flags::BAR_HAS_OHLC).then_some(Ohlc {
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
        }),
        buy_qty: r.buy_qty.into(),
        sell_qty: r.sell_qty.into(),
        delta: r.delta.into(),
        cvd: r.cvd.into(),
        trades: r.trades,
        vwap: has(flags::BAR_HAS_VWAP).then_some(r.vwap),
        buy_notional: r.buy_notional.into(),
        sell_notional: r.sell_notional.into(),
        complete: has(flags::BAR_COMPLETE),
        members: r.members.into(),
    }
}

/// The signal a [`SignalRecord`] carries: the inverse of [`Publisher::signal`] (`key` is
/// the caller's). Confidence and score come back as the nearest [`Value`] of their
/// mantissas at [`crate::abi::SIGNAL_FRACTION_SCALE`]; print the record's mantissas, not these, to
/// show exactly what was published. [`SIGNAL_CVD_SATURATED`] is cleared from the reasons.
pub fn signal_from_record(r: &SignalRecord, key: BarKey) -> Signal {
    let fraction = |m: i64| Value::from_num(m) / Value::from_num(1_000_000_000i64);
    let mut s = Signal::new(
        key,
        r.exch_ns,
        match r.action {
            action::ENTER_LONG => Action::EnterLong,
            action::ENTER_SHORT => Action::EnterShort,
            _ => Action::Exit,
        },
        match r.tier {
            tier::FAST => Tier::Fast,
            tier::STRATEGIC => Tier::Strategic,
            _ => Tier::Tactical,
        },
    );
    s.id = r.signal_id;
    s.strategy = StrategyId(r.strategy_id);
    s.reason_bits = r.reason_bits & !SIGNAL_CVD_SATURATED;
    s.entry_px = r.entry_px;
    s.stop_px = r.stop_px;
    s.target_px = r.take_profit_px;
    s.confidence = fraction(r.confidence);
    s.score = fraction(r.score);
    s.size = r.size;
    s.spot_cvd = r.spot_cvd.into();
    s.perp_cvd = r.perp_cvd.into();
    s
}

/// The statistics row a [`StatsRecord`] carries: the inverse of [`Publisher::stats`].
pub fn stats_from_record(r: &StatsRecord, inst: InstrumentId) -> StatsRow {
    let field = |v: i64, bit: u32| (r.flags & bit != 0).then_some(v);
    StatsRow {
        inst,
        ts_ms: r.ts_ms,
        stats: VenueStats {
            mark_px: field(r.mark_px, flags::STATS_HAS_MARK),
            index_px: field(r.index_px, flags::STATS_HAS_INDEX),
            open_interest: field(r.open_interest, flags::STATS_HAS_OPEN_INTEREST),
            funding_rate: field(r.funding_rate, flags::STATS_HAS_FUNDING_RATE),
            next_funding_ms: field(r.next_funding_ms, flags::STATS_HAS_NEXT_FUNDING),
            updated_ns: field(r.local_ns, flags::STATS_HAS_LOCAL_NS),
        },
    }
}

/// The engine's tops row a [`TopRecord`] carries: the inverse of [`Publisher`]'s tops.
pub fn top_from_record(r: &TopRecord, inst: InstrumentId) -> TopRow {
    let has = |bit| r.flags & bit != 0;
    TopRow {
        inst,
        ts_ms: r.ts_ms,
        top: has(flags::BOOK_SYNCED).then(|| TopSample {
            bid: has(flags::TOP_HAS_BID).then_some(PriceLevel {
                px: r.bid_px,
                qty: r.bid_qty,
            }),
            ask: has(flags::TOP_HAS_ASK).then_some(PriceLevel {
                px: r.ask_px,
                qty: r.ask_qty,
            }),
            obi_l1: has(flags::TOP_HAS_OBI_L1).then_some(r.obi_l1),
            obi: has(flags::TOP_HAS_OBI).then_some(r.obi),
        }),
    }
}
