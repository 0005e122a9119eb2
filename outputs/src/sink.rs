//! Where the core thread's results go: JSONL files, health records and, with `--shm DIR`, the shared-memory
//! bus. Replay and run share this, so both publish exactly the same records.

use crate::health::{HealthMonitor, HealthRow, VenueFeedCounters};
use crate::jsonl::{JsonlSink, RowFormat};
use flowcore_core::bars::{Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::{MarketEvent, Trade};
use flowcore_core::instrument::{InstrumentId, Venue};
use flowcore_core::strategy::{Signal, StrategySet};
use flowcore_core::venue_stats::StatsRow;
use flowcore_shm::{BusConfig, Publisher, ShmError};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Why an output could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The shared-memory bus could not be created.
    #[error("shared memory bus {}: {source}", dir.display())]
    Bus {
        /// The bus directory.
        dir: PathBuf,
        /// Why.
        source: ShmError,
    },
    /// A JSONL file could not be created.
    #[error("creating {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing rows failed.
    #[error("writing {what}: {source}")]
    Write {
        /// Which rows: bars, tops or health.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// Where rows go; each is optional.
#[derive(Default)]
pub struct Outputs<'w> {
    /// Bar rows.
    pub bars: Option<&'w mut dyn Write>,
    /// Tops rows.
    pub tops: Option<&'w mut dyn Write>,
    /// Health rows, one per second per source.
    pub health: Option<&'w mut dyn Write>,
    /// Signal rows.
    pub signals: Option<&'w mut dyn Write>,
    /// Venue statistics rows.
    pub stats: Option<&'w mut dyn Write>,
}

impl std::fmt::Debug for Outputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("bars", &self.bars.is_some())
            .field("tops", &self.tops.is_some())
            .field("health", &self.health.is_some())
            .field("signals", &self.signals.is_some())
            .field("stats", &self.stats.is_some())
            .finish()
    }
}

/// The engine's sink: JSONL rows, health records and, optionally, the bus.
#[derive(Debug)]
pub struct CoreSink<'w> {
    /// JSONL rows.
    pub jsonl: JsonlSink<'w, 'w>,
    /// The bus, with `--shm`.
    pub shm: Option<Publisher>,
    health: HealthMonitor,
    /// The run's strategies, fed the bars and tops.
    strategies: Option<StrategySet>,
    /// Their names, by strategy id.
    names: Vec<&'static str>,
    /// Signals made while the engine consumed the current event (reserved once).
    pending: Vec<Signal>,
    /// Local receive time of the last event seen.
    last_local_ns: i64,
}

impl<'w> CoreSink<'w> {
    /// Rows of `engine`'s instruments to `outputs`, health records for the pipeline and
    /// each of `venues`, and records to a new bus in `shm` if given.
    ///
    /// # Errors
    /// When the bus cannot be created (its directory named in the message).
    pub fn create(
        engine: &Engine,
        venues: &[Venue],
        outputs: Outputs<'w>,
        shm: Option<&BusConfig>,
    ) -> Result<Self, OutputError> {
        let shm = shm
            .map(|c| {
                Publisher::create(c, engine).map_err(|source| OutputError::Bus {
                    dir: c.dir.clone(),
                    source,
                })
            })
            .transpose()?;
        let format = RowFormat::new(engine.table(), engine.bars());
        Ok(Self {
            jsonl: JsonlSink::new(format, outputs.bars, outputs.tops)
                .with_health(outputs.health)
                .with_signals(outputs.signals)
                .with_stats(outputs.stats),
            shm,
            health: HealthMonitor::new(venues),
            strategies: None,
            names: Vec::new(),
            pending: Vec::new(),
            last_local_ns: 0,
        })
    }

    /// Runs `strategies` on the bars and tops: their signals go to the signal rows and the
    /// bus, stamped with the receive time of the message whose event triggered them.
    pub fn with_strategies(mut self, strategies: StrategySet) -> Self {
        self.names = strategies.instances().map(|(_, name, _)| name).collect();
        if let Some(shm) = &mut self.shm {
            shm.strategies(strategies.instances());
        }
        self.pending = Vec::with_capacity(64);
        self.strategies = Some(strategies);
        self
    }

    /// The strategies, when there are any: their counters.
    pub fn strategies(&self) -> Option<&StrategySet> {
        self.strategies.as_ref()
    }

    /// Hands on the signals made while the engine consumed the last event.
    fn flush_signals(&mut self, local_ns: i64) {
        for s in self.pending.drain(..) {
            let name = self.names.get(s.strategy.0 as usize).copied();
            self.jsonl.signal(name, local_ns, &s);
            if let Some(shm) = &mut self.shm {
                shm.signal(&s, local_ns);
            }
        }
    }

    /// Publishes what `ev` changed (after `engine` consumed it), and the health records
    /// each time the exchange clock enters a new second (`feeds` is asked only then).
    #[inline]
    pub fn after_event(
        &mut self,
        ev: &MarketEvent,
        engine: &Engine,
        feeds: impl FnOnce() -> VenueFeedCounters,
    ) {
        if let Some(shm) = &mut self.shm {
            shm.on_event(ev, engine);
        }
        self.last_local_ns = ev.local_ts;
        if !self.pending.is_empty() {
            self.flush_signals(ev.local_ts);
        }
        if let Some(ts_ms) = self.health.observe(ev, engine) {
            if self.jsonl.writes_health() || self.shm.is_some() {
                self.close_health(ts_ms, engine, &feeds(), |_| {});
            } else {
                self.health.close_second_unread();
            }
        }
    }

    /// After `engine` finished: the last second's health records. Returns each source's
    /// final counters with its lag over the whole run (the run summary's figures).
    pub fn finish(&mut self, engine: &Engine, feeds: &VenueFeedCounters) -> Vec<HealthRow> {
        // Bars flushed at the end of input: no event triggered them, the last one did.
        self.flush_signals(self.last_local_ns);
        let mut last = Vec::new();
        match self.health.open_second_end() {
            Some(ts_ms) => self.close_health(ts_ms, engine, feeds, |row| last.push(*row)),
            // No message carried an exchange time: counters only, nothing to publish.
            None => self
                .health
                .close_second(0, engine, feeds, |row| last.push(*row)),
        }
        for row in &mut last {
            row.lag = self.health.run_lag(row.source);
        }
        last
    }

    fn close_health(
        &mut self,
        ts_ms: i64,
        engine: &Engine,
        feeds: &VenueFeedCounters,
        mut also: impl FnMut(&HealthRow),
    ) {
        let (jsonl, shm) = (&mut self.jsonl, &mut self.shm);
        self.health.close_second(ts_ms, engine, feeds, |row| {
            jsonl.health(row);
            if let Some(shm) = shm {
                shm.health(row.to_record());
            }
            also(row);
        });
    }
}

impl BarSink for CoreSink<'_> {
    fn bar(&mut self, bar: &Bar) {
        self.jsonl.bar(bar);
        if let Some(shm) = &mut self.shm {
            shm.bar(bar);
        }
        if let Some(strategies) = &mut self.strategies {
            let pending = &mut self.pending;
            strategies.on_bar(bar, &mut |s| pending.push(*s));
        }
    }
}

impl EngineSink for CoreSink<'_> {
    #[inline]
    fn trade(&mut self, inst: InstrumentId, trade: &Trade, local_ns: i64) {
        if let Some(shm) = &mut self.shm {
            shm.trade(inst, trade, local_ns);
        }
    }

    fn top(&mut self, row: &TopRow) {
        self.jsonl.top(row);
        if let Some(shm) = &mut self.shm {
            shm.top(row);
        }
        if let Some(strategies) = &mut self.strategies {
            let pending = &mut self.pending;
            strategies.on_top(row, &mut |s| pending.push(*s));
        }
    }

    fn stats(&mut self, row: &StatsRow) {
        self.jsonl.stats(row);
        if let Some(shm) = &mut self.shm {
            shm.stats(row);
        }
        if let Some(strategies) = &mut self.strategies {
            let pending = &mut self.pending;
            strategies.on_stats(row, &mut |s| pending.push(*s));
        }
    }
}

/// Buffered JSONL files for [`Outputs`], each optional.
#[derive(Debug, Default)]
pub struct OutputFiles {
    bars: Option<BufWriter<File>>,
    tops: Option<BufWriter<File>>,
    health: Option<BufWriter<File>>,
    signals: Option<BufWriter<File>>,
    stats: Option<BufWriter<File>>,
}

/// Where each kind of row is written; each is optional.
#[derive(Debug, Clone, Default)]
pub struct OutputPaths {
    /// Bars.
    pub bars: Option<PathBuf>,
    /// Per-second book tops.
    pub tops: Option<PathBuf>,
    /// Per-second health rows.
    pub health: Option<PathBuf>,
    /// Signals.
    pub signals: Option<PathBuf>,
    /// Per-second venue statistics.
    pub stats: Option<PathBuf>,
}

impl OutputFiles {
    /// Creates the files that have a path.
    ///
    /// # Errors
    /// When one cannot be created (its path named).
    pub fn create(paths: &OutputPaths) -> Result<Self, OutputError> {
        let create = |path: &Option<PathBuf>| {
            path.as_deref()
                .map(|p| {
                    File::create(p)
                        .map(|f| BufWriter::with_capacity(1 << 16, f))
                        .map_err(|source| OutputError::Create {
                            path: p.to_path_buf(),
                            source,
                        })
                })
                .transpose()
        };
        Ok(Self {
            bars: create(&paths.bars)?,
            tops: create(&paths.tops)?,
            health: create(&paths.health)?,
            signals: create(&paths.signals)?,
            stats: create(&paths.stats)?,
        })
    }

    /// The files as outputs of a run or replay.
    pub fn outputs(&mut self) -> Outputs<'_> {
        Outputs {
            bars: self.bars.as_mut().map(|w| w as &mut dyn Write),
            tops: self.tops.as_mut().map(|w| w as &mut dyn Write),
            health: self.health.as_mut().map(|w| w as &mut dyn Write),
            signals: self.signals.as_mut().map(|w| w as &mut dyn Write),
            stats: self.stats.as_mut().map(|w| w as &mut dyn Write),
        }
    }

    /// Flushes every file.
    ///
    /// # Errors
    /// When writing fails.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        for (w, what) in [
            (&mut self.bars, "bars"),
            (&mut self.tops, "tops"),
            (&mut self.health, "health"),
            (&mut self.signals, "signals"),
            (&mut self.stats, "stats"),
        ] {
            if let Some(w) = w {
                w.flush()
                    .map_err(|source| OutputError::Write { what, source })?;
            }
        }
        Ok(())
    }
}
