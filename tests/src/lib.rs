//! Helpers for the cross-crate tests: bundled data paths and replay into memory.

use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_tools::recording::RecordingReader;
use flowcore_tools::replay::{replay, Input, ReplaySummary, Source};
use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A bundled recording under `data/binance/`.
pub fn recording(name: &str) -> PathBuf {
    repo().join("data/binance").join(name)
}

/// The decompressed lines of a bundled recording.
pub fn lines(name: &str) -> Vec<String> {
    let bytes = RecordingReader::read_all(&recording(name)).expect("bundled recording");
    String::from_utf8(bytes)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A `VENUE=FILE` input from a bundled recording.
pub fn file(venue: Venue, name: &str) -> Input {
    Input {
        venue,
        source: Source::Path(recording(name)),
    }
}

/// An input from edited lines.
pub fn memory(venue: Venue, lines: &[String]) -> Input {
    Input {
        venue,
        source: Source::Memory((lines.join("\n") + "\n").into_bytes().into()),
    }
}

/// What a replay wrote.
#[derive(Debug)]
pub struct Output {
    /// Bar rows, sorted.
    pub bars: Vec<String>,
    /// Tops rows, sorted.
    pub tops: Vec<String>,
    /// Counters.
    pub summary: ReplaySummary,
}

/// Replays with the bundled instrument table and default imbalance, rows sorted.
pub fn run(inputs: Vec<Input>) -> Output {
    let mut bars = Vec::new();
    let mut tops = Vec::new();
    let summary = replay(
        InstrumentTable::binance_defaults(),
        ImbalanceConfig::default(),
        inputs,
        Some(&mut bars),
        Some(&mut tops),
    )
    .expect("replay");
    let sorted = |v: Vec<u8>| {
        let mut rows: Vec<String> = String::from_utf8(v)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect();
        rows.sort();
        rows
    };
    Output {
        bars: sorted(bars),
        tops: sorted(tops),
        summary,
    }
}

/// A committed golden file's rows, sorted.
pub fn golden(name: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(repo().join("tests/golden").join(name)).expect("golden file");
    let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
    rows.sort();
    rows
}

/// Asserts two row sets are equal, reporting the first differences readably.
pub fn assert_rows_eq(what: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
    let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
    panic!(
        "{what}: {} rows, want {}\nmissing (first 3): {missing:#?}\nunexpected (first 3): {extra:#?}",
        got.len(),
        want.len()
    );
}

/// The `"ts"` of a JSONL row.
pub fn ts_of(row: &str) -> i64 {
    let at = row.find("\"ts\":").expect("ts") + 5;
    row[at..]
        .split(',')
        .next()
        .expect("ts value")
        .parse()
        .expect("ts number")
}
