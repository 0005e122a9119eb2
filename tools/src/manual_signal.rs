//! `flowcore signal`: one hand-made signal on a bus of its own, for an operator's manual
//! entry or exit and for driving the gateway in tests.
//!
//! Each call is a writer start (a new epoch) of that bus. So that a gateway that has not
//! yet read the previous signal still gets it, the signals already in the bus are carried
//! into the new files with their ids and stamps (the gateway knows a carried signal by its
//! id and `local_ns` and does not act on it twice). Ids are the publish time in
//! microseconds, or one more than the last id on the bus: unique and increasing across
//! calls, so FreqTrade's `enter_tag` never repeats.

use anyhow::{bail, Context};
use flowcore_core::decimal::parse_mantissa;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_shm::abi::{action, tier, SignalRecord, SymbolRecord, SIGNAL_FRACTION_SCALE};
use flowcore_shm::publish::instrument_record;
use flowcore_shm::{BusConfig, BusReader, BusWriter, Capacities, ReadFrom};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Signals a manual bus keeps (and carries into each new epoch).
pub const MANUAL_SIGNALS: u64 = 1024;

/// Strategy ids of hand-made signals have this bit set (the engine's are small indexes).
pub const MANUAL_STRATEGY_BIT: u32 = 1 << 31;

/// What to publish.
#[derive(Debug, Clone)]
pub struct ManualSignal {
    /// The venue.
    pub venue: Venue,
    /// Its symbol.
    pub symbol: String,
    /// `long`, `short` or `exit`.
    pub action: String,
    /// Decimal prices as typed (`61000.5`).
    pub entry: Option<String>,
    /// Stop.
    pub stop: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// 0..1, decimal as typed.
    pub confidence: String,
    /// Decimal size in base units.
    pub size: Option<String>,
    /// A name for the strategy field (`manual`).
    pub strategy: String,
}

/// A bus for signals only: `signals` slots in its signal ring, the smallest rings elsewhere.
pub fn signal_bus_config(dir: &Path, signals: u64) -> BusConfig {
    let mut config = BusConfig::new(dir);
    config.capacities = Capacities {
        bars: 64,
        tops: 64,
        trades: 64,
        bbo: 64,
        health: 64,
        signals,
    };
    config
}

/// The strategy id of a hand-made signal's name: FNV-1a, top bit set.
pub fn manual_strategy_id(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h | MANUAL_STRATEGY_BIT
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Publishes `s` on the bus in `dir`; returns the signal id.
///
/// # Errors
/// An unknown symbol, a price that does not fit the symbol's scale, a bus another live
/// writer holds.
pub fn publish(dir: &Path, table: &InstrumentTable, s: &ManualSignal) -> anyhow::Result<u64> {
    let id = table
        .find(s.venue, s.symbol.as_bytes())
        .with_context(|| format!("--symbol {} is not an instrument of {}", s.symbol, s.venue))?;
    let inst = table.get(id);
    let code = match s.action.as_str() {
        "long" => action::ENTER_LONG,
        "short" => action::ENTER_SHORT,
        "exit" => action::EXIT,
        other => bail!("--action {other}: long, short or exit"),
    };
    let confidence = parse_mantissa(s.confidence.as_bytes(), SIGNAL_FRACTION_SCALE)
        .ok()
        .filter(|c| (0..=10i64.pow(u32::from(SIGNAL_FRACTION_SCALE))).contains(c))
        .with_context(|| format!("--confidence {}: a decimal in 0..=1", s.confidence))?;
    let price = |what: &str, v: &Option<String>| -> anyhow::Result<i64> {
        v.as_deref().map_or(Ok(0), |t| {
            parse_mantissa(t.as_bytes(), inst.price_scale).map_err(|e| {
                anyhow::anyhow!("--{what} {t}: {e:?} at {} decimals", inst.price_scale)
            })
        })
    };
    let entry_px = price("entry", &s.entry)?;
    let stop_px = price("stop", &s.stop)?;
    let take_profit_px = price("target", &s.target)?;
    let size = s.size.as_deref().map_or(Ok(0), |t| {
        parse_mantissa(t.as_bytes(), inst.size_scale)
            .map_err(|e| anyhow::anyhow!("--size {t}: {e:?} at {} decimals", inst.size_scale))
    })?;
    // What the bus holds now, carried forward with its symbols (ids unchanged: the new
    // symbol, if new, goes after them).
    let (mut symbols, carried): (Vec<SymbolRecord>, Vec<SignalRecord>) =
        match BusReader::open(dir, ReadFrom::Oldest) {
            Ok(mut r) => {
                let signals = std::iter::from_fn(|| r.signals.try_read()).collect();
                (r.symbols.clone(), signals)
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
    let record = instrument_record(0, inst);
    let symbol_id = match symbols
        .iter()
        .position(|r| r.venue == record.venue && r.symbol == record.symbol)
    {
        Some(k) => k as u32,
        None => {
            symbols.push(SymbolRecord {
                symbol_id: symbols.len() as u32,
                ..record
            });
            (symbols.len() - 1) as u32
        }
    };
    let local_ns = now_ns();
    let last = carried.iter().map(|r| r.signal_id).max().unwrap_or(0);
    let signal_id = ((local_ns / 1_000) as u64).max(last + 1);
    let config = signal_bus_config(dir, MANUAL_SIGNALS);
    let mut bus = BusWriter::create(&config, &symbols)
        .with_context(|| format!("creating the signal bus {}", dir.display()))?;
    for r in &carried {
        bus.signals.publish(r);
    }
    bus.signals.publish(&SignalRecord {
        signal_id,
        exch_ns: local_ns,
        local_ns,
        symbol_id,
        strategy_id: manual_strategy_id(&s.strategy),
        action: code,
        tier: tier::FAST,
        record_version: 1,
        reason_bits: 0,
        entry_px,
        stop_px,
        take_profit_px,
        confidence,
        score: 0,
        size,
        spot_cvd: 0,
        perp_cvd: 0,
        ..bytemuck::Zeroable::zeroed()
    });
    bus.heartbeat(local_ns as u64);
    Ok(signal_id)
}
