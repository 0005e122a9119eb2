//! Where the core thread's results go: JSONL files, health records and, with `--shm DIR`, the shared-memory
//! bus. Replay and run share this, so both publish exactly the same records.

use crate::health::{HealthMonitor, HealthRow, VenueFeedCounters};
use crate::jsonl::{JsonlSink, RowFormat};
use flowcore_core::bars::{Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::MarketEvent;
use flowcore_core::instrument::Venue;
use flowcore_shm::{BusConfig, Publisher, ShmError};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

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
}

impl std::fmt::Debug for Outputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("bars", &self.bars.is_some())
            .field("tops", &self.tops.is_some())
            .field("health", &self.health.is_some())
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
            jsonl: JsonlSink::new(format, outputs.bars, outputs.tops).with_health(outputs.health),
            shm,
            health: HealthMonitor::new(venues),
        })
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
        if let Some(ts_ms) = self.health.observe(ev, engine) {
            self.close_health(ts_ms, engine, &feeds(), |_| {});
        }
    }

    /// After `engine` finished: the last second's health records. Returns each source's
    /// final counters with its lag over the whole run (the run summary's figures).
    pub fn finish(&mut self, engine: &Engine, feeds: &VenueFeedCounters) -> Vec<HealthRow> {
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
    }
}

impl EngineSink for CoreSink<'_> {
    fn top(&mut self, row: &TopRow) {
        self.jsonl.top(row);
        if let Some(shm) = &mut self.shm {
            shm.top(row);
        }
    }
}

/// Buffered JSONL files for [`Outputs`], each optional.
#[derive(Debug, Default)]
pub struct OutputFiles {
    bars: Option<BufWriter<File>>,
    tops: Option<BufWriter<File>>,
    health: Option<BufWriter<File>>,
}

impl OutputFiles {
    /// Creates the files that have a path.
    ///
    /// # Errors
    /// When one cannot be created (its path named).
    pub fn create(
        bars: Option<&Path>,
        tops: Option<&Path>,
        health: Option<&Path>,
    ) -> Result<Self, OutputError> {
        let create = |path: Option<&Path>| {
            path.map(|p| {
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
            bars: create(bars)?,
            tops: create(tops)?,
            health: create(health)?,
        })
    }

    /// The files as outputs of a run or replay.
    pub fn outputs(&mut self) -> Outputs<'_> {
        Outputs {
            bars: self.bars.as_mut().map(|w| w as &mut dyn Write),
            tops: self.tops.as_mut().map(|w| w as &mut dyn Write),
            health: self.health.as_mut().map(|w| w as &mut dyn Write),
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
        ] {
            if let Some(w) = w {
                w.flush()
                    .map_err(|source| OutputError::Write { what, source })?;
            }
        }
        Ok(())
    }
}
