//! `flowcore shm-tail DIR`: prints what a bus carries, as it arrives.
//!
//! With `--json`, bars, tops and venue statistics print exactly as the JSONL rows of
//! `flowcore replay` (docs/REPLAY.md): records are turned back into the engine's rows and
//! printed by the same formatter, so a bus reader's view can be compared with the files
//! byte for byte; health prints as the rows of `--health-out`, signals as the rows of
//! `--signals-out` (their strategy's name from `strategies.table`); trades and best bid/ask
//! print as their own JSON objects.

use flowcore_core::bars::{AggregateId, BarKey};
use flowcore_core::book::PriceLevel;
use flowcore_core::decimal::Fixed;
use flowcore_core::event::{FUNDING_RATE_SCALE, STAT_PRICE_SCALE};
use flowcore_core::instrument::InstrumentId;
use flowcore_core::strategy::SIGNAL_FRACTION_SCALE;
use flowcore_outputs::health::HealthRow;
use flowcore_outputs::jsonl::{
    write_bar_row, write_health_row, write_stats_row, write_top_row, RowScales, SignalRow,
};
use flowcore_shm::abi::{
    flags, venue, BarRecord, BboRecord, HealthRecord, SignalRecord, StatsRecord, SymbolRecord,
    TopRecord, TradeRecord, OBI_SCALE,
};
use flowcore_shm::publish::{
    bar_from_record, signal_from_record, stats_from_record, top_from_record,
};
use flowcore_shm::{text, BusReader, ReadFrom};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Which streams to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stream {
    /// One-second bars.
    Bars,
    /// Per-second book tops and imbalance.
    Tops,
    /// Trades.
    Trades,
    /// Venue best bid/ask.
    Bbo,
    /// Pipeline health.
    Health,
    /// Strategy signals.
    Signals,
    /// Per-second venue statistics (none on the bus of an older writer).
    Stats,
}

/// What `shm-tail` is told.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Streams to print.
    pub streams: Vec<Stream>,
    /// Start position in each ring.
    pub from: ReadFrom,
    /// JSON lines instead of a table.
    pub json: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Keep waiting when the writer is gone (for its restart) instead of ending.
    pub follow: bool,
}

/// Counts of what was printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TailSummary {
    /// Records printed.
    pub records: u64,
    /// Records the tail was lapped on (missed), over every stream.
    pub lapped: u64,
}

/// Name of a symbol record's venue as the JSONL rows spell it.
pub fn venue_name(code: u16) -> &'static str {
    match code {
        venue::BINANCE_SPOT => "binance-spot",
        venue::BINANCE_USDM => "binance-usdm",
        venue::BINANCE_COINM => "binance-coinm",
        venue::BYBIT_SPOT => "bybit-spot",
        venue::BYBIT_LINEAR => "bybit-linear",
        venue::AGG_SPOT => "agg-spot",
        venue::AGG_PERP => "agg-perp",
        _ => "unknown",
    }
}

/// Prints records until the duration ends, or (without `follow`) the writer is gone and
/// every record has been printed.
pub fn tail(dir: &Path, options: &TailOptions, out: &mut dyn Write) -> anyhow::Result<TailSummary> {
    let mut bus = BusReader::open_waiting(dir, options.from, Duration::from_secs(10))?;
    let started = Instant::now();
    let mut summary = TailSummary::default();
    let mut line = String::with_capacity(512);
    let mut last_check = Instant::now();
    let wants = |s: Stream| options.streams.contains(&s);
    loop {
        let mut any = false;
        line.clear();
        if wants(Stream::Bars) {
            while let Some(r) = bus.bars.try_read() {
                format_bar(&mut line, bus.symbol(r.symbol_id), &r, options.json);
                any = true;
            }
        }
        if wants(Stream::Tops) {
            while let Some(r) = bus.tops.try_read() {
                format_top(&mut line, bus.symbol(r.symbol_id), &r, options.json);
                any = true;
            }
        }
        if wants(Stream::Trades) {
            while let Some(r) = bus.trades.try_read() {
                format_trade(&mut line, bus.symbol(r.symbol_id), &r);
                any = true;
            }
        }
        if wants(Stream::Bbo) {
            while let Some(r) = bus.bbo.try_read() {
                format_bbo(&mut line, bus.symbol(r.symbol_id), &r);
                any = true;
            }
        }
        if wants(Stream::Health) {
            while let Some(r) = bus.health.try_read() {
                format_health(&mut line, &r, options.json);
                any = true;
            }
        }
        if wants(Stream::Signals) {
            while let Some(r) = bus.signals.try_read() {
                // Read when the signal is: the writer names a strategy before its first signal.
                let strategy = bus.strategy(r.strategy_id);
                let name = strategy.as_ref().map(|s| text(&s.name));
                format_signal(&mut line, bus.symbol(r.symbol_id), name, &r, options.json);
                any = true;
            }
        }
        if wants(Stream::Stats) {
            while let Some(r) = bus.stats.as_mut().and_then(|s| s.try_read()) {
                format_stats(&mut line, bus.symbol(r.symbol_id), &r, options.json);
                any = true;
            }
        }
        if any {
            summary.records += line.lines().count() as u64;
            out.write_all(line.as_bytes())?;
            out.flush()?;
            continue;
        }
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if last_check.elapsed() >= Duration::from_millis(100) {
            last_check = Instant::now();
            if !bus.writer_alive() {
                if !options.follow {
                    // The writer may have published its last records after our last poll.
                    if !drained(&bus, &options.streams) {
                        continue;
                    }
                    break;
                }
            } else if bus.bars.replaced() {
                // A new writer start: every file and the symbol table are new.
                bus = BusReader::open_waiting(dir, ReadFrom::Oldest, Duration::from_secs(10))?;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let s = [
        Some(bus.bars.stats()),
        Some(bus.tops.stats()),
        Some(bus.trades.stats()),
        Some(bus.bbo.stats()),
        Some(bus.health.stats()),
        Some(bus.signals.stats()),
        bus.stats.as_ref().map(|r| r.stats()),
    ];
    summary.lapped = s.iter().flatten().map(|s| s.lapped).sum();
    Ok(summary)
}

/// True when every ring printed has been read to its end.
fn drained(bus: &BusReader, streams: &[Stream]) -> bool {
    streams.iter().all(|s| match s {
        Stream::Bars => bus.bars.position() >= bus.bars.published(),
        Stream::Tops => bus.tops.position() >= bus.tops.published(),
        Stream::Trades => bus.trades.position() >= bus.trades.published(),
        Stream::Bbo => bus.bbo.position() >= bus.bbo.published(),
        Stream::Health => bus.health.position() >= bus.health.published(),
        Stream::Signals => bus.signals.position() >= bus.signals.published(),
        Stream::Stats => bus
            .stats
            .as_ref()
            .is_none_or(|r| r.position() >= r.published()),
    })
}

fn names(symbol: Option<&SymbolRecord>) -> (&'static str, &str) {
    match symbol {
        Some(s) => (venue_name(s.venue), text(&s.symbol)),
        None => ("unknown", "?"),
    }
}

/// The row scales of a symbol.
fn scales(symbol: Option<&SymbolRecord>) -> RowScales {
    symbol.map_or(RowScales::of(0, 0), |s| RowScales {
        price: s.price_scale,
        size: s.size_scale,
        notional: s.notional_scale,
    })
}

/// A signal as the `--signals-out` row (with the strategy's name when `strategies.table`
/// has it), or a table line.
fn format_signal(
    out: &mut String,
    symbol: Option<&SymbolRecord>,
    strategy: Option<&str>,
    r: &SignalRecord,
    json: bool,
) {
    let (venue, name) = names(symbol);
    let signal = signal_from_record(r, BarKey::Instrument(InstrumentId(r.symbol_id as u16)));
    let row = SignalRow {
        venue,
        symbol: name,
        scales: scales(symbol),
        strategy,
        local_ns: r.local_ns,
        confidence: r.confidence,
        score: r.score,
        signal: &signal,
    };
    if json {
        row.write(out);
    } else {
        let px = signal.entry_px;
        let _ = writeln!(
            out,
            "sig  {} {venue:>13} {name:<11} #{} strategy {} {} {:<11} at {:>12} confidence {} score {}",
            signal.exch_ns / 1_000_000,
            signal.id,
            signal.strategy.0,
            strategy.unwrap_or("?"),
            signal.action.name(),
            Fixed::new(px.into(), row.scales.price),
            Fixed::new(r.confidence.into(), SIGNAL_FRACTION_SCALE),
            Fixed::new(r.score.into(), SIGNAL_FRACTION_SCALE),
        );
    }
}

/// Venue statistics as the `--stats-out` row, or a table line.
fn format_stats(out: &mut String, symbol: Option<&SymbolRecord>, r: &StatsRecord, json: bool) {
    let (venue, name) = names(symbol);
    let size_scale = scales(symbol).size;
    let row = stats_from_record(r, InstrumentId(r.symbol_id as u16));
    if json {
        write_stats_row(out, venue, name, size_scale, &row);
    } else {
        let s = &row.stats;
        let show = |v: Option<i64>, scale| {
            v.map_or("n/a".to_string(), |m| {
                Fixed::new(m.into(), scale).to_string()
            })
        };
        let _ = writeln!(
            out,
            "stat {} {venue:>13} {name:<11} mark {} index {} open interest {} funding {} next {}",
            row.ts_ms,
            show(s.mark_px, STAT_PRICE_SCALE),
            show(s.index_px, STAT_PRICE_SCALE),
            show(s.open_interest, size_scale),
            show(s.funding_rate, FUNDING_RATE_SCALE),
            s.next_funding_ms
                .map_or("n/a".to_string(), |ms| ms.to_string()),
        );
    }
}

fn format_bar(out: &mut String, symbol: Option<&SymbolRecord>, r: &BarRecord, json: bool) {
    let (venue, name) = names(symbol);
    let scales = scales(symbol);
    // The row needs only which kind of symbol it is (an aggregate's row says its members);
    // the id inside the key is the bus's symbol id.
    let is_aggregate = symbol.is_some_and(|s| s.venue >= flowcore_shm::abi::venue::AGG_SPOT);
    let key = if is_aggregate {
        BarKey::Aggregate(AggregateId(r.symbol_id as u16))
    } else {
        BarKey::Instrument(InstrumentId(r.symbol_id as u16))
    };
    let bar = bar_from_record(r, key);
    if json {
        write_bar_row(out, venue, name, scales, &bar);
    } else {
        let close = bar.ohlc.map(|o| Fixed::new(o.close.into(), scales.price));
        let _ = writeln!(
            out,
            "bar  {} {venue:>13} {name:<11} close {:>12} delta {:>14} cvd {:>16} trades {:>5}{}",
            bar.ts_ms,
            close.map_or("n/a".to_string(), |c| c.to_string()),
            Fixed::new(bar.delta, scales.size),
            Fixed::new(bar.cvd, scales.size),
            bar.trades,
            if bar.complete { "" } else { " (incomplete)" },
        );
    }
}

fn format_top(out: &mut String, symbol: Option<&SymbolRecord>, r: &TopRecord, json: bool) {
    let (venue, name) = names(symbol);
    let scales = scales(symbol);
    let row = top_from_record(r, InstrumentId(r.symbol_id as u16));
    if json {
        write_top_row(out, venue, name, scales, &row);
    } else {
        let top = row.top;
        let px = |l: Option<PriceLevel>| {
            l.map_or("n/a".to_string(), |l| {
                Fixed::new(l.px.into(), scales.price).to_string()
            })
        };
        let obi = top.and_then(|t| t.obi).map_or("n/a".to_string(), |v| {
            Fixed::new(v.into(), OBI_SCALE).to_string()
        });
        let _ = writeln!(
            out,
            "top  {} {venue:>13} {name:<11} bid {} ask {} obi {obi}{}",
            row.ts_ms,
            px(top.and_then(|t| t.bid)),
            px(top.and_then(|t| t.ask)),
            if top.is_some() { "" } else { " (unsynced)" },
        );
    }
}

fn format_trade(out: &mut String, symbol: Option<&SymbolRecord>, r: &TradeRecord) {
    let (venue, name) = names(symbol);
    let (ps, qs) = symbol.map_or((0, 0), |s| (s.price_scale, s.size_scale));
    let _ = writeln!(
        out,
        "{{\"stream\":\"trades\",\"venue\":\"{venue}\",\"symbol\":\"{name}\",\"trade_ns\":{},\"local_ns\":{},\
         \"id\":{},\"px\":\"{}\",\"qty\":\"{}\",\"taker\":\"{}\"}}",
        r.trade_ns,
        r.local_ns,
        r.trade_id,
        Fixed::new(r.px.into(), ps),
        Fixed::new(r.qty.into(), qs),
        if r.flags & flags::TRADE_BUYER_TAKER != 0 { "buy" } else { "sell" },
    );
}

fn format_bbo(out: &mut String, symbol: Option<&SymbolRecord>, r: &BboRecord) {
    let (venue, name) = names(symbol);
    let (ps, qs) = symbol.map_or((0, 0), |s| (s.price_scale, s.size_scale));
    let _ = writeln!(
        out,
        "{{\"stream\":\"bbo\",\"venue\":\"{venue}\",\"symbol\":\"{name}\",\"local_ns\":{},\
         \"bid_px\":\"{}\",\"bid_qty\":\"{}\",\"ask_px\":\"{}\",\"ask_qty\":\"{}\"}}",
        r.local_ns,
        Fixed::new(r.bid_px.into(), ps),
        Fixed::new(r.bid_qty.into(), qs),
        Fixed::new(r.ask_px.into(), ps),
        Fixed::new(r.ask_qty.into(), qs),
    );
}

fn format_health(out: &mut String, r: &HealthRecord, json: bool) {
    let Some(row) = HealthRow::from_record(r) else {
        let _ = writeln!(out, "health {} from unknown source {}", r.ts_ms, r.source);
        return;
    };
    if json {
        write_health_row(out, &row);
    } else {
        let lag = if row.lag.samples == 0 {
            "n/a".to_string()
        } else {
            format!("p50 {} ns p99 {} ns", row.lag.p50, row.lag.p99)
        };
        let _ = writeln!(
            out,
            "health {} {:>13} messages {} gaps {} reconnects {} parse errors {} lag {lag}",
            row.ts_ms,
            row.source_name(),
            row.feed.messages,
            row.engine.gaps,
            row.feed.reconnects,
            row.feed.parse_errors,
        );
    }
}
