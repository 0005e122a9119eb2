//! One bus the gateway reads: joined late (retried until its writer has made it), followed
//! across writer restarts (a new epoch: the bus is opened again and read from the start of
//! the new files), signals read from the oldest still in the ring so none published while
//! the gateway was down is missed (the journal says which were seen; the age limit refuses
//! old ones), quotes and bars from the latest on. A signal is one signal by its id in its
//! epoch, and by its (id, local_ns) fingerprint across epochs: a writer that carries its
//! signals into a new epoch (`flowcore signal` does) does not make them new.

use crate::journal::RECENT;
use crate::market::{MarketState, Slot};
use crate::order::{GatewaySignal, SignalKey};
use flowcore_core::indicators::Value;
use flowcore_core::strategy::Action;
use flowcore_shm::abi::{action, venue, SignalRecord};
use flowcore_shm::publish::venue_of_code;
use flowcore_shm::{text, BusReader, ReadFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a missing bus is looked for, and a present one checked for a restart, while
/// idle (each check is a `stat` or an `open`: never per record).
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Records of one stream taken per poll, so one busy stream cannot starve the others.
const BATCH: usize = 256;

/// What a bus source has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Times the bus was opened (the first join and each writer restart).
    pub opens: u64,
    /// Signals read.
    pub signals: u64,
    /// Signals skipped because the journal had them.
    pub replayed: u64,
    /// Signals of a symbol id the bus's table does not have (counted, dropped).
    pub unknown_symbol: u64,
    /// Signals with an action code this gateway does not know.
    pub unknown_action: u64,
    /// Records the rings overwrote before we read them.
    pub lapped: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct BusSource {
    /// Index in the configuration's `buses`.
    pub index: u16,
    /// The directory.
    pub dir: PathBuf,
    /// The directory as text (the journal's bus name).
    pub name: String,
    reader: Option<BusReader>,
    slots: Vec<Slot>,
    pairs: Vec<Option<u16>>,
    seen_max: u64,
    /// (id, local_ns) of the last signals seen, a ring of `RECENT`.
    recent: Vec<(u64, i64)>,
    recent_head: usize,
    checked: Instant,
    /// Counts.
    pub counters: SourceCounters,
}

/// The `venue:SYMBOL` name of a symbol record (aggregates: `spot-aggregate:BTC`).
pub fn symbol_name(venue_code: u16, symbol: &str) -> String {
    let v = match venue_code {
        venue::AGG_SPOT => "spot-aggregate",
        venue::AGG_PERP => "perp-aggregate",
        c => venue_of_code(c).map_or("unknown", |v| v.name()),
    };
    format!("{v}:{symbol}")
}

impl BusSource {
    /// A source for `dir`; nothing is opened yet. `recent` is what the journal has of
    /// this bus's last signals (see [`crate::journal::JournalState::recent`]).
    pub fn new(index: u16, dir: PathBuf, recent: &[(u64, i64)]) -> Self {
        let mut ring = Vec::with_capacity(RECENT);
        ring.extend_from_slice(&recent[recent.len().saturating_sub(RECENT)..]);
        Self {
            recent_head: ring.len() % RECENT,
            recent: ring,
            index,
            name: dir.display().to_string(),
            dir,
            reader: None,
            slots: Vec::new(),
            pairs: Vec::new(),
            seen_max: 0,
            checked: Instant::now() - CHECK_EVERY,
            counters: SourceCounters::default(),
        }
    }

    /// The writer epoch of the open bus.
    pub fn epoch(&self) -> Option<u64> {
        self.reader.as_ref().map(BusReader::epoch)
    }

    /// Opens the bus if it is not, or again if its writer restarted. At most once per
    /// [`CHECK_EVERY`]; call it periodically, never per record. `seen` is the journal's highest signal id seen for
    /// (bus, epoch); `pair_of(venue, symbol)` maps a symbol to a `[pairs]` index.
    pub fn maintain(
        &mut self,
        market: &mut MarketState,
        seen: impl Fn(&str, u64) -> u64,
        pair_of: impl Fn(&str, &str) -> Option<usize>,
    ) {
        if self.checked.elapsed() < CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let stale = match &self.reader {
            None => true,
            Some(r) => r.signals.replaced(),
        };
        if !stale {
            return;
        }
        let Ok(mut reader) = BusReader::open(&self.dir, ReadFrom::Oldest) else {
            return;
        };
        if let Some(old) = &self.reader {
            if old.epoch() == reader.epoch() {
                return;
            }
        }
        reader.tops.seek(ReadFrom::Latest);
        reader.bbo.seek(ReadFrom::Latest);
        reader.bars.seek(ReadFrom::Latest);
        reader.trades.seek(ReadFrom::Next);
        reader.health.seek(ReadFrom::Next);
        self.slots.clear();
        self.pairs.clear();
        for s in &reader.symbols {
            let symbol = text(&s.symbol);
            let name = symbol_name(s.venue, symbol);
            self.slots
                .push(market.slot(&name, text(&s.base), s.price_scale, s.size_scale));
            let venue_name = name.split_once(':').map_or("", |x| x.0);
            self.pairs
                .push(pair_of(venue_name, symbol).and_then(|i| u16::try_from(i).ok()));
        }
        self.seen_max = seen(&self.name, reader.epoch());
        self.counters.opens += 1;
        self.reader = Some(reader);
    }

    /// Takes what the bus has: quotes and bars into `market`, then signals to `on_signal`.
    /// Returns whether anything was read.
    #[inline]
    pub fn poll(
        &mut self,
        market: &mut MarketState,
        now_ns: impl Fn() -> i64,
        mut on_signal: impl FnMut(GatewaySignal, &mut MarketState),
    ) -> bool {
        let Some(r) = self.reader.as_mut() else {
            return false;
        };
        let slot = |slots: &[Slot], id: u32| slots.get(id as usize).copied();
        let mut work = false;
        for _ in 0..BATCH {
            let Some(b) = r.bbo.try_read() else { break };
            work = true;
            if let Some(s) = slot(&self.slots, b.symbol_id) {
                market.quote(s, b.bid_px, b.ask_px);
            }
        }
        for _ in 0..BATCH {
            let Some(t) = r.tops.try_read() else { break };
            work = true;
            if let Some(s) = slot(&self.slots, t.symbol_id) {
                market.quote(s, t.bid_px, t.ask_px);
            }
        }
        for _ in 0..BATCH {
            let Some(b) = r.bars.try_read() else { break };
            work = true;
            if let Some(s) = slot(&self.slots, b.symbol_id) {
                if b.flags & flowcore_shm::abi::flags::BAR_HAS_OHLC != 0 {
                    market.close(s, b.ts_ms, b.close);
                }
            }
        }
        let epoch = r.epoch();
        for _ in 0..BATCH {
            let Some(rec) = r.signals.try_read() else {
                break;
            };
            work = true;
            self.counters.signals += 1;
            let fingerprint = (rec.signal_id, rec.local_ns);
            if rec.signal_id <= self.seen_max || self.recent.contains(&fingerprint) {
                self.counters.replayed += 1;
                continue;
            }
            self.seen_max = rec.signal_id;
            if self.recent.len() < RECENT {
                self.recent.push(fingerprint);
            } else {
                self.recent[self.recent_head] = fingerprint;
                self.recent_head = (self.recent_head + 1) % RECENT;
            }
            let Some(s) = slot(&self.slots, rec.symbol_id) else {
                self.counters.unknown_symbol += 1;
                continue;
            };
            let Some(signal) = signal(self.index, &self.pairs, &rec, epoch, s, now_ns()) else {
                self.counters.unknown_action += 1;
                continue;
            };
            on_signal(signal, market);
        }
        self.counters.lapped = r.signals.stats().lapped + r.bbo.stats().lapped;
        work
    }
}

fn signal(
    index: u16,
    pairs: &[Option<u16>],
    r: &SignalRecord,
    epoch: u64,
    slot: Slot,
    now_ns: i64,
) -> Option<GatewaySignal> {
    let action = match r.action {
        action::ENTER_LONG => Action::EnterLong,
        action::ENTER_SHORT => Action::EnterShort,
        action::EXIT => Action::Exit,
        _ => return None,
    };
    let scale = Value::from_num(10i64.pow(u32::from(flowcore_shm::abi::SIGNAL_FRACTION_SCALE)));
    Some(GatewaySignal {
        key: SignalKey {
            bus: index,
            epoch,
            id: r.signal_id,
        },
        slot,
        pair: pairs.get(r.symbol_id as usize).copied().flatten(),
        strategy: r.strategy_id,
        action,
        entry_px: r.entry_px,
        stop_px: r.stop_px,
        target_px: r.take_profit_px,
        confidence: Value::from_num(r.confidence) / scale,
        size: r.size,
        local_ns: r.local_ns,
        read_ns: now_ns,
    })
}
