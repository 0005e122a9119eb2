//! Where the core thread's results go: JSONL files and, with `--shm DIR`, the shared-memory
//! bus. Replay and run share this, so both publish exactly the same records.

use crate::jsonl::{JsonlSink, RowFormat};
use anyhow::Context;
use flowcore_core::bars::{second_of, Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::MarketEvent;
use flowcore_shm::abi::health;
use flowcore_shm::{BusConfig, Publisher};
use std::io::Write;

/// Counters the engine does not know (messages and parse errors are counted upstream).
#[derive(Debug, Clone, Copy, Default)]
pub struct PipelineCounters {
    /// Messages received or read.
    pub messages: u64,
    /// Messages that failed to parse.
    pub parse_errors: u64,
    /// Times a feed waited on a full ring.
    pub ring_waits: u64,
    /// Connections re-established.
    pub reconnects: u64,
}

/// The engine's sink: JSONL rows plus, optionally, the bus.
#[derive(Debug)]
pub struct CoreSink<'a, 'w> {
    /// JSONL rows.
    pub jsonl: JsonlSink<'a, 'w>,
    /// The bus, with `--shm`.
    pub shm: Option<Publisher>,
    /// Last exchange second a health record was published for.
    health_sec: i64,
}

impl<'a, 'w> CoreSink<'a, 'w> {
    /// Rows of `engine`'s instruments to `bars`/`tops`, and records to a new bus in
    /// `shm` if given.
    ///
    /// # Errors
    /// When the bus cannot be created (its directory named in the message).
    pub fn create(
        engine: &Engine,
        bars: Option<&'a mut (dyn Write + 'w)>,
        tops: Option<&'a mut (dyn Write + 'w)>,
        shm: Option<&BusConfig>,
    ) -> anyhow::Result<Self> {
        let shm = shm
            .map(|c| {
                Publisher::create(c, engine)
                    .with_context(|| format!("shared memory bus {}", c.dir.display()))
            })
            .transpose()?;
        let format = RowFormat::new(engine.table(), engine.bars());
        Ok(Self {
            jsonl: JsonlSink::new(format, bars, tops),
            shm,
            health_sec: i64::MIN,
        })
    }

    /// Publishes what `ev` changed (after `engine` consumed it), and a health record each
    /// time the exchange clock enters a new second.
    #[inline]
    pub fn after_event(
        &mut self,
        ev: &MarketEvent,
        engine: &Engine,
        counters: impl FnOnce() -> PipelineCounters,
    ) {
        let Some(shm) = &mut self.shm else { return };
        shm.on_event(ev, engine);
        let Some(exch) = ev.exch_ts() else { return };
        let sec = second_of(exch);
        if sec > self.health_sec {
            if self.health_sec != i64::MIN {
                shm.health(sec * 1000, health_counters(engine, counters()));
            }
            self.health_sec = sec;
        }
    }
}

/// The health record's counter array.
pub fn health_counters(engine: &Engine, p: PipelineCounters) -> [u64; 12] {
    let e = engine.counters();
    let mut c = [0u64; 12];
    c[health::MESSAGES] = p.messages;
    c[health::EVENTS] = e.events;
    c[health::GAPS] = e.gaps;
    c[health::RESYNCS] = e.resync_requests;
    c[health::LATE_TRADES] = engine.bars().counters().late_trades;
    c[health::PARSE_ERRORS] = p.parse_errors;
    c[health::CROSSED_BOOKS] = e.crossed_books;
    c[health::RING_FULL_WAITS] = p.ring_waits;
    c[health::RECONNECTS] = p.reconnects;
    c[health::BACKFILLED_TRADES] = e.backfilled_trades;
    c[health::DUPLICATE_TRADES] = e.duplicate_trades;
    c
}

impl BarSink for CoreSink<'_, '_> {
    fn bar(&mut self, bar: &Bar) {
        self.jsonl.bar(bar);
        if let Some(shm) = &mut self.shm {
            shm.bar(bar);
        }
    }
}

impl EngineSink for CoreSink<'_, '_> {
    fn top(&mut self, row: &TopRow) {
        self.jsonl.top(row);
        if let Some(shm) = &mut self.shm {
            shm.top(row);
        }
    }
}
