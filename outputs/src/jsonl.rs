//! JSONL rows for bars, tops, health and signals (docs/REPLAY.md "Output"): decimals as
//! strings at their instrument's scale, keys in a fixed order.

use crate::health::HealthRow;
use flowcore_core::bars::{Bar, BarEngine, BarKey, BarSink, AGG_NOTIONAL_SCALE, AGG_QTY_SCALE};
use flowcore_core::book::PriceLevel;
use flowcore_core::decimal::Fixed;
use flowcore_core::engine::{EngineSink, TopRow};
use flowcore_core::event::{FUNDING_RATE_SCALE, STAT_PRICE_SCALE};
use flowcore_core::imbalance::OBI_SCALE;
use flowcore_core::instrument::InstrumentTable;
use flowcore_core::strategy::{fraction_mantissa, Signal, SIGNAL_FRACTION_SCALE};
use flowcore_core::venue_stats::StatsRow;
use std::fmt::Write as _;
use std::io::Write;

/// A decimal as a JSON string, or null.
struct Opt<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "\"{v}\""),
            None => f.write_str("null"),
        }
    }
}

/// An integer as a JSON number, or null.
struct OptNum(Option<i64>);

impl std::fmt::Display for OptNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("null"),
        }
    }
}

/// Formats rows; holds the names and scales it needs (the engine is busy while it runs).
#[derive(Debug, Clone)]
pub struct RowFormat {
    table: InstrumentTable,
    /// (`agg-spot`/`agg-perp`, base asset) per aggregate id.
    aggregates: Vec<(&'static str, String)>,
}

impl RowFormat {
    /// Names for the instruments of `table` and the aggregates of `bars`.
    pub fn new(table: &InstrumentTable, bars: &BarEngine) -> Self {
        let aggregates = bars
            .aggregates()
            .iter()
            .map(|a| (a.label(), a.base.clone()))
            .collect();
        Self {
            table: table.clone(),
            aggregates,
        }
    }

    /// Appends one bar row (with newline) to `out`.
    pub fn bar(&self, out: &mut String, bar: &Bar) {
        write_bar(out, &self.table, &self.aggregates, bar);
    }

    /// Appends one tops row (with newline) to `out`.
    pub fn top(&self, out: &mut String, row: &TopRow) {
        write_top(out, &self.table, row);
    }

    /// Appends one venue statistics row (with newline) to `out`.
    pub fn stats(&self, out: &mut String, row: &StatsRow) {
        let i = self.table.get(row.inst);
        write_stats_row(out, i.venue.name(), &i.symbol, i.size_scale, row);
    }

    /// Appends one signal row (with newline) to `out`: `strategy` is the instance's name,
    /// `local_ns` the receive time of the message that triggered it.
    pub fn signal(&self, out: &mut String, strategy: Option<&str>, local_ns: i64, s: &Signal) {
        let (venue, symbol, scales) = match s.key {
            BarKey::Instrument(id) => {
                let i = self.table.get(id);
                (
                    i.venue.name(),
                    i.symbol.as_str(),
                    RowScales::of(i.price_scale, i.size_scale),
                )
            }
            BarKey::Aggregate(a) => {
                let (label, base) = &self.aggregates[a.0 as usize];
                let scales = RowScales {
                    price: 0,
                    size: AGG_QTY_SCALE,
                    notional: AGG_NOTIONAL_SCALE,
                };
                (*label, base.as_str(), scales)
            }
        };
        SignalRow {
            venue,
            symbol,
            scales,
            strategy,
            local_ns,
            confidence: fraction_mantissa(s.confidence),
            score: fraction_mantissa(s.score),
            signal: s,
        }
        .write(out);
    }
}

/// One signal row's contents: the signal, where it is about, and its fractions as the
/// mantissas that leave the core (so a bus reader, which has only those, prints the same).
#[derive(Debug)]
pub struct SignalRow<'a> {
    /// Venue name, or `agg-spot`/`agg-perp`.
    pub venue: &'a str,
    /// Venue symbol, or the base asset for aggregates.
    pub symbol: &'a str,
    /// The symbol's scales (aggregates have no prices: theirs are 0 and print as null).
    pub scales: RowScales,
    /// The instance's name; left out when not known (a bus reader knows only the id).
    pub strategy: Option<&'a str>,
    /// Local receive time of the message that triggered it.
    pub local_ns: i64,
    /// Confidence at [`SIGNAL_FRACTION_SCALE`].
    pub confidence: i64,
    /// Score at [`SIGNAL_FRACTION_SCALE`].
    pub score: i64,
    /// The rest of the signal (its own `confidence` and `score` are not read).
    pub signal: &'a Signal,
}

impl SignalRow<'_> {
    /// Appends the row (docs/REPLAY.md "Signals") with a newline.
    pub fn write(&self, out: &mut String) {
        let s = self.signal;
        let scales = self.scales;
        let px = |v: i64| Opt((v != 0).then(|| Fixed::new(v as i128, scales.price)));
        let fraction = |v: i64| Fixed::new(v as i128, SIGNAL_FRACTION_SCALE);
        let cvd = |v: i128| Fixed::new(v, AGG_QTY_SCALE);
        let _ = write!(out, "{{\"id\":{},\"strategy_id\":{},", s.id, s.strategy.0);
        if let Some(name) = self.strategy {
            let _ = write!(out, "\"strategy\":\"{name}\",");
        }
        let _ = writeln!(
            out,
            "\"venue\":\"{}\",\"symbol\":\"{}\",\"exch_ns\":{},\"local_ns\":{},\
             \"action\":\"{}\",\"tier\":\"{}\",\"reason_bits\":{},\"entry\":{},\"stop\":{},\
             \"target\":{},\"confidence\":\"{}\",\"score\":\"{}\",\"size\":{},\"spot_cvd\":\"{}\",\
             \"perp_cvd\":\"{}\"}}",
            self.venue,
            self.symbol,
            s.exch_ns,
            self.local_ns,
            s.action.name(),
            s.tier.name(),
            s.reason_bits,
            px(s.entry_px),
            px(s.stop_px),
            px(s.target_px),
            fraction(self.confidence),
            fraction(self.score),
            Opt((s.size != 0).then(|| Fixed::new(s.size as i128, scales.size))),
            cvd(s.spot_cvd),
            cvd(s.perp_cvd),
        );
    }
}

fn write_bar(
    out: &mut String,
    table: &InstrumentTable,
    aggregates: &[(&'static str, String)],
    bar: &Bar,
) {
    match bar.key {
        BarKey::Instrument(id) => {
            let i = table.get(id);
            let scales = RowScales::of(i.price_scale, i.size_scale);
            write_bar_row(out, i.venue.name(), &i.symbol, scales, bar);
        }
        BarKey::Aggregate(a) => {
            let (label, base) = &aggregates[a.0 as usize];
            let scales = RowScales {
                price: 0,
                size: AGG_QTY_SCALE,
                notional: AGG_NOTIONAL_SCALE,
            };
            write_bar_row(out, label, base, scales, bar);
        }
    }
}

/// The decimal scales a row prints at.
#[derive(Debug, Clone, Copy)]
pub struct RowScales {
    /// Prices.
    pub price: u8,
    /// Quantities, delta, CVD.
    pub size: u8,
    /// Notionals.
    pub notional: u8,
}

impl RowScales {
    /// An instrument's scales: notionals at price + size scale.
    pub fn of(price: u8, size: u8) -> Self {
        Self {
            price,
            size,
            notional: price + size,
        }
    }
}

/// Appends one bar row (docs/REPLAY.md "Output") for `venue`/`symbol` at `scales`.
pub fn write_bar_row(out: &mut String, venue: &str, symbol: &str, scales: RowScales, bar: &Bar) {
    let px = |v: Option<i64>| Opt(v.map(|m| Fixed::new(m as i128, scales.price)));
    let qty = |v: i128| Fixed::new(v, scales.size);
    let notional = |v: i128| Fixed::new(v, scales.notional);
    let _ = writeln!(
        out,
        "{{\"venue\":\"{venue}\",\"symbol\":\"{symbol}\",\"ts\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\
         \"buy_qty\":\"{}\",\"sell_qty\":\"{}\",\"delta\":\"{}\",\"cvd\":\"{}\",\"trades\":{},\"vwap\":{},\
         \"buy_notional\":\"{}\",\"sell_notional\":\"{}\",\"complete\":{}{}}}",
        bar.ts_ms,
        px(bar.ohlc.map(|o| o.open)),
        px(bar.ohlc.map(|o| o.high)),
        px(bar.ohlc.map(|o| o.low)),
        px(bar.ohlc.map(|o| o.close)),
        qty(bar.buy_qty),
        qty(bar.sell_qty),
        qty(bar.delta),
        qty(bar.cvd),
        bar.trades,
        px(bar.vwap),
        notional(bar.buy_notional),
        notional(bar.sell_notional),
        bar.complete,
        AggregateMembers(bar),
    );
}

/// `,"members":N` on an aggregate's row (its member mask), nothing on an instrument's.
struct AggregateMembers<'a>(&'a Bar);

impl std::fmt::Display for AggregateMembers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.key {
            BarKey::Aggregate(_) => write!(f, ",\"members\":{}", self.0.members),
            BarKey::Instrument(_) => Ok(()),
        }
    }
}

fn write_top(out: &mut String, table: &InstrumentTable, row: &TopRow) {
    let i = table.get(row.inst);
    write_top_row(
        out,
        i.venue.name(),
        &i.symbol,
        RowScales::of(i.price_scale, i.size_scale),
        row,
    );
}

/// Appends one tops row (docs/REPLAY.md "Output") for `venue`/`symbol` at `scales`.
pub fn write_top_row(out: &mut String, venue: &str, symbol: &str, scales: RowScales, row: &TopRow) {
    let level = |l: Option<Option<PriceLevel>>| {
        let l = l.flatten();
        (
            Opt(l.map(|l| Fixed::new(l.px as i128, scales.price))),
            Opt(l.map(|l| Fixed::new(l.qty as i128, scales.size))),
        )
    };
    let (bid_px, bid_qty) = level(row.top.map(|t| t.bid));
    let (ask_px, ask_qty) = level(row.top.map(|t| t.ask));
    let obi = |v: Option<Option<i64>>| Opt(v.flatten().map(|m| Fixed::new(m as i128, OBI_SCALE)));
    let _ = writeln!(
        out,
        "{{\"venue\":\"{venue}\",\"symbol\":\"{symbol}\",\"ts\":{},\"bid_px\":{bid_px},\"bid_qty\":{bid_qty},\"ask_px\":{ask_px},\
         \"ask_qty\":{ask_qty},\"obi_l1\":{},\"obi\":{},\"synced\":{}}}",
        row.ts_ms,
        obi(row.top.map(|t| t.obi_l1)),
        obi(row.top.map(|t| t.obi)),
        row.top.is_some(),
    );
}

/// Appends one venue statistics row (docs/REPLAY.md "Venue statistics") for `venue`/`symbol`,
/// open interest at `size_scale`: each field null until the venue sent it.
pub fn write_stats_row(
    out: &mut String,
    venue: &str,
    symbol: &str,
    size_scale: u8,
    row: &StatsRow,
) {
    let s = &row.stats;
    let px = |v: Option<i64>| Opt(v.map(|m| Fixed::new(m as i128, STAT_PRICE_SCALE)));
    let _ =
        writeln!(
        out,
        "{{\"venue\":\"{venue}\",\"symbol\":\"{symbol}\",\"ts\":{},\"mark_px\":{},\"index_px\":{},\
         \"open_interest\":{},\"funding_rate\":{},\"next_funding_ms\":{}}}",
        row.ts_ms,
        px(s.mark_px),
        px(s.index_px),
        Opt(s.open_interest.map(|m| Fixed::new(m as i128, size_scale))),
        Opt(s.funding_rate.map(|m| Fixed::new(m as i128, FUNDING_RATE_SCALE))),
        OptNum(s.next_funding_ms),
    );
}

/// Appends one health row (docs/REPLAY.md "Health"): counters, then the second's lag
/// percentiles in ns (null without samples).
pub fn write_health_row(out: &mut String, row: &HealthRow) {
    let (f, e, l) = (&row.feed, &row.engine, &row.lag);
    let lag = |v: i64| OptNum((l.samples > 0).then_some(v));
    let _ = writeln!(
        out,
        "{{\"ts\":{},\"source\":\"{}\",\"messages\":{},\"events\":{},\"parse_errors\":{},\"gaps\":{},\
         \"resyncs\":{},\"crossed_books\":{},\"reconnects\":{},\"stalls\":{},\"rotations\":{},\
         \"late_trades\":{},\"backfilled_trades\":{},\"duplicate_trades\":{},\"unfilled_trade_gaps\":{},\
         \"ring_waits\":{},\"clock_behind\":{},\"lag_samples\":{},\"lag_p50_ns\":{},\"lag_p99_ns\":{},\
         \"lag_p999_ns\":{},\"lag_max_ns\":{}}}",
        row.ts_ms,
        row.source_name(),
        f.messages,
        e.events,
        f.parse_errors,
        e.gaps,
        e.resync_requests,
        e.crossed_books,
        f.reconnects,
        f.stalls,
        f.rotations,
        row.late_trades,
        e.backfilled_trades,
        e.duplicate_trades,
        e.unfilled_trade_gaps,
        f.ring_waits,
        row.clock_behind,
        l.samples,
        lag(l.p50),
        lag(l.p99),
        lag(l.p999),
        lag(l.max),
    );
}

/// Writes bar and tops rows as JSONL as the engine produces them; the first write error
/// is kept for the caller (the engine's sink methods cannot fail).
pub struct JsonlSink<'a, 'w> {
    format: RowFormat,
    bars: Option<&'a mut (dyn Write + 'w)>,
    tops: Option<&'a mut (dyn Write + 'w)>,
    health: Option<&'a mut (dyn Write + 'w)>,
    signals: Option<&'a mut (dyn Write + 'w)>,
    stats: Option<&'a mut (dyn Write + 'w)>,
    line: String,
    /// Rows produced: bars, tops.
    rows: (u64, u64),
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for JsonlSink<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("rows", &self.rows)
            .finish()
    }
}

impl<'a, 'w> JsonlSink<'a, 'w> {
    /// Rows formatted by `format` into `bars` and `tops` (either may be absent); health
    /// rows go nowhere until [`JsonlSink::with_health`].
    pub fn new(
        format: RowFormat,
        bars: Option<&'a mut (dyn Write + 'w)>,
        tops: Option<&'a mut (dyn Write + 'w)>,
    ) -> Self {
        Self {
            format,
            bars,
            tops,
            health: None,
            signals: None,
            stats: None,
            line: String::with_capacity(512),
            rows: (0, 0),
            error: None,
        }
    }

    /// Health rows to `health`.
    pub fn with_health(mut self, health: Option<&'a mut (dyn Write + 'w)>) -> Self {
        self.health = health;
        self
    }

    /// Signal rows to `signals`.
    pub fn with_signals(mut self, signals: Option<&'a mut (dyn Write + 'w)>) -> Self {
        self.signals = signals;
        self
    }

    /// Venue statistics rows to `stats`.
    pub fn with_stats(mut self, stats: Option<&'a mut (dyn Write + 'w)>) -> Self {
        self.stats = stats;
        self
    }

    /// Writes one signal row.
    pub fn signal(&mut self, strategy: Option<&str>, local_ns: i64, s: &Signal) {
        let format = &self.format;
        Self::write_row(
            &mut self.line,
            self.signals.as_deref_mut(),
            &mut self.error,
            |l| format.signal(l, strategy, local_ns, s),
        );
    }

    /// Whether health rows go anywhere.
    pub fn writes_health(&self) -> bool {
        self.health.is_some()
    }

    /// Writes one health row.
    pub fn health(&mut self, row: &HealthRow) {
        Self::write_row(
            &mut self.line,
            self.health.as_deref_mut(),
            &mut self.error,
            |l| write_health_row(l, row),
        );
    }

    /// Rows produced so far: (bars, tops).
    pub fn rows(&self) -> (u64, u64) {
        self.rows
    }

    /// The first write error, taken.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.error.take()
    }

    /// Formats one row into the reused line buffer and writes it, keeping the first error.
    fn write_row(
        line: &mut String,
        out: Option<&mut (dyn Write + '_)>,
        error: &mut Option<std::io::Error>,
        format: impl FnOnce(&mut String),
    ) {
        let Some(w) = out else { return };
        line.clear();
        format(line);
        if let Err(e) = w.write_all(line.as_bytes()) {
            error.get_or_insert(e);
        }
    }
}

impl BarSink for JsonlSink<'_, '_> {
    fn bar(&mut self, bar: &Bar) {
        self.rows.0 += 1;
        let format = &self.format;
        Self::write_row(
            &mut self.line,
            self.bars.as_deref_mut(),
            &mut self.error,
            |l| format.bar(l, bar),
        );
    }
}

impl EngineSink for JsonlSink<'_, '_> {
    fn top(&mut self, row: &TopRow) {
        self.rows.1 += 1;
        let format = &self.format;
        Self::write_row(
            &mut self.line,
            self.tops.as_deref_mut(),
            &mut self.error,
            |l| format.top(l, row),
        );
    }

    fn stats(&mut self, row: &StatsRow) {
        let format = &self.format;
        Self::write_row(
            &mut self.line,
            self.stats.as_deref_mut(),
            &mut self.error,
            |l| format.stats(l, row),
        );
    }
}
