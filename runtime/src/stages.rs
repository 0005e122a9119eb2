//! Per-message stage stamps for the end-to-end bench (`flowcore bench e2e`, through
//! [`crate::live::RunOptions::stage_log`]): off unless asked for, and then written to
//! memory reserved at the start (no allocation, no syscall per message) and saved when
//! the run ends.
//!
//! Stamps are raw TSC readings (`quanta::Clock::raw`): the same counter in every process
//! on the machine, so the bench lines them up with the sender's send times and the shm
//! reader's sightings, and turns differences into nanoseconds once. Rows are keyed by the
//! message's receive timestamp (`local_ns`), unique within a feed:
//! - a feed writes `local_ns received parsed` for each WebSocket frame (received: the
//!   frame decoded, as the feed stamps it; parsed: its events made);
//! - the engine's thread writes `local_ns picked applied` for each trade (picked: the engine
//!   takes the event up; applied: book, bars and strategies done and the trade on the bus).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Rows kept at most per log (24 bytes each); later ones are counted, not kept.
pub(crate) const STAGE_ROWS: usize = 1 << 21;

/// One thread's stage stamps, saved to a file of text rows when the run ends.
#[derive(Debug)]
pub(crate) struct StageLog {
    clock: quanta::Clock,
    path: PathBuf,
    rows: Vec<[u64; 3]>,
    /// Rows that found the log full.
    pub(crate) dropped: u64,
}

impl StageLog {
    /// A log saved to `path`, its rows reserved now.
    pub fn new(path: PathBuf) -> Self {
        // Written once through, so that the pages are there before the first message (no
        // page fault every 170 rows on the path being timed). Not with zeros: a zeroed
        // allocation comes as untouched pages of the kernel's, faulted in on first write.
        let mut rows = Vec::with_capacity(STAGE_ROWS);
        rows.resize(STAGE_ROWS, [u64::MAX; 3]);
        // The stores must happen though nothing reads them back.
        std::hint::black_box(&mut rows);
        rows.clear();
        Self {
            clock: quanta::Clock::new(),
            path,
            rows,
            dropped: 0,
        }
    }

    /// The TSC now.
    #[inline]
    pub fn raw(&self) -> u64 {
        self.clock.raw()
    }

    /// Keeps a row while there is room.
    #[inline]
    pub fn push(&mut self, local_ns: i64, a: u64, b: u64) {
        if self.rows.len() < self.rows.capacity() {
            self.rows.push([local_ns as u64, a, b]);
        } else {
            self.dropped += 1;
        }
    }

    /// Writes the rows (`local_ns a b` a line); says on stderr when it cannot.
    pub fn save(&self) {
        if let Err(e) = self.write(&self.path) {
            eprintln!("run: stage log {}: {e}", self.path.display());
        }
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for [local_ns, a, b] in &self.rows {
            writeln!(out, "{local_ns} {a} {b}")?;
        }
        if self.dropped > 0 {
            eprintln!(
                "run: stage log {}: {} rows did not fit",
                path.display(),
                self.dropped
            );
        }
        out.flush()
    }
}

/// Where feed `index`'s log is saved in the folder `dir`.
pub fn feed_log(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("feed-{index}.txt"))
}

/// Where the engine thread's log is saved in the folder `dir`.
pub fn core_log(dir: &Path) -> PathBuf {
    dir.join("core.txt")
}

/// Reads a saved log back: `(local_ns, a, b)` rows.
///
/// # Errors
/// When the file cannot be read or a line is not three numbers.
pub fn read_stage_log(path: &Path) -> anyhow::Result<Vec<(i64, u64, u64)>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.split(' ').map(str::parse::<u64>);
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Ok(t)), Some(Ok(a)), Some(Ok(b)), None) => Ok((t as i64, a, b)),
                _ => anyhow::bail!("{} line {}: not a stage row", path.display(), i + 1),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_the_file_and_a_full_log_counts() {
        let dir = std::env::temp_dir().join(format!("flowcore-stages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("core.txt");
        let mut log = StageLog::new(path.clone());
        let t0 = log.raw();
        log.push(1_700_000_000_000_000_001, t0, t0 + 5);
        log.push(-1, 7, 8);
        log.save();
        let rows = read_stage_log(&path).unwrap();
        assert_eq!(
            rows,
            [
                (1_700_000_000_000_000_001, t0, t0 + 5),
                (-1i64 as u64 as i64, 7, 8)
            ]
        );
        log.rows.truncate(0);
        log.rows.shrink_to(0);
        log.push(3, 4, 5);
        assert_eq!(log.dropped, 1);
        std::fs::write(&path, "1 2\n").unwrap();
        assert!(read_stage_log(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
