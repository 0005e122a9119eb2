//! The recorder as a feed thread sees it, and as a disk sees it: every bundled BTC message
//! (spot, USD-M, COIN-M) handed to `--record`, one connection per file.
//!
//! Rows, all in the same run on the same messages:
//! - the feed thread's cost per message (hdrhistogram of batches of 64, ns a message) for the
//!   journal, the journal with zstd, and the text format through the same byte rings,
//!   against the baseline a straightforward program uses: the feed thread writes
//!   `format!("{ts} {json}\n")` into a `BufWriter<File>` itself;
//! - the whole recording: messages and MiB a second from the first hand-over until every
//!   byte is in its file (`finish`), and the bytes on disk.
//!
//! `cargo bench -p flowcore-benches --bench recorder`; under `cargo test` a short pass
//! checks that the journal reads back every message.

use flowcore_benches::{full_run, load, report, BatchTimer, BTC_FILES};
use flowcore_feeds::journal::{JournalIndex, JournalOptions, RecordKind};
use flowcore_runtime::config::{IdleStrategy, RecordFormat};
use flowcore_runtime::recorder::Recorder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

const BATCH: usize = 64;

struct Outcome {
    feed: BatchTimer,
    wall_s: f64,
    disk_bytes: u64,
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "flowcore-bench-recorder-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(messages: &[flowcore_benches::Message], format: RecordFormat, name: &str) -> Outcome {
    let dir = fresh(name);
    let (recorder, mut writers) = Recorder::start(&dir, format, 1).unwrap();
    let writer = &mut writers[0];
    let idle = IdleStrategy::SpinYield;
    let files: Vec<u32> = BTC_FILES
        .iter()
        .map(|(venue, file)| writer.open(&format!("{}_{file}", venue.name()), 0, idle))
        .collect();
    let mut feed = BatchTimer::default();
    let start = Instant::now();
    for batch in messages.chunks(BATCH) {
        feed.time(batch.len(), || {
            for m in batch {
                writer.line(files[m.file], m.ts, RecordKind::Frame, &m.json, idle);
            }
        });
    }
    drop(writers);
    let summary = recorder.finish().unwrap();
    let wall_s = start.elapsed().as_secs_f64();
    assert_eq!(summary.lines, messages.len() as u64);
    if let RecordFormat::Journal(_) = format {
        let index = JournalIndex::open(&dir).unwrap();
        let lines: u64 = index.streams().iter().map(|s| s.lines).sum();
        assert_eq!(
            lines,
            messages.len() as u64,
            "the journal holds every message"
        );
    }
    let disk_bytes = dir_bytes(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    Outcome {
        feed,
        wall_s,
        disk_bytes,
    }
}

/// The baseline: the feed thread formats and writes each line itself.
fn record_inline(messages: &[flowcore_benches::Message]) -> Outcome {
    let dir = fresh("inline");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<_> = BTC_FILES
        .iter()
        .map(|(venue, file)| {
            let f =
                std::fs::File::create(dir.join(format!("{}_{file}.txt", venue.name()))).unwrap();
            std::io::BufWriter::with_capacity(1 << 20, f)
        })
        .collect();
    let mut feed = BatchTimer::default();
    let start = Instant::now();
    for batch in messages.chunks(BATCH) {
        feed.time(batch.len(), || {
            for m in batch {
                let line = format!("{} {}\n", m.ts, String::from_utf8_lossy(&m.json));
                files[m.file].write_all(line.as_bytes()).unwrap();
            }
        });
    }
    for f in &mut files {
        f.flush().unwrap();
    }
    drop(files);
    let wall_s = start.elapsed().as_secs_f64();
    let disk_bytes = dir_bytes(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    Outcome {
        feed,
        wall_s,
        disk_bytes,
    }
}

fn main() {
    let mut messages = load(&BTC_FILES);
    if !full_run() {
        messages.truncate(5_000);
    }
    let payload: u64 = messages.iter().map(|m| m.json.len() as u64).sum();
    let journal = |compress| {
        RecordFormat::Journal(JournalOptions {
            segment_bytes: 64 << 20,
            compress,
        })
    };
    let rounds = if full_run() { 3 } else { 1 };
    for round in 0..rounds {
        let baseline = record_inline(&messages);
        let rows = [
            ("journal", record(&messages, journal(false), "journal")),
            ("journal+zstd", record(&messages, journal(true), "zstd")),
            (
                "text via rings",
                record(&messages, RecordFormat::Text, "text"),
            ),
        ];
        println!(
            "recorder round {round}: {} messages, {:.1} MiB of frames",
            messages.len(),
            payload as f64 / (1 << 20) as f64
        );
        for (name, o) in &rows {
            report(
                &format!("recorder {name}: feed thread ns per message"),
                &o.feed,
                &baseline.feed,
                "inline BufWriter",
            );
        }
        for (name, o) in rows
            .iter()
            .chain([("inline BufWriter (baseline)", baseline)].iter())
        {
            println!(
                "  whole {name:<28} {:>6.2} M msgs/s  {:>7.1} MiB/s of frames  {:>6.1} MiB on disk",
                messages.len() as f64 / o.wall_s / 1e6,
                payload as f64 / o.wall_s / (1 << 20) as f64,
                o.disk_bytes as f64 / (1 << 20) as f64
            );
        }
    }
}
