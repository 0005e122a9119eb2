//! A two-thread replay writes the same bytes as a one-thread replay: rows in the order
//! written, health rows with their per-second message and error counts, and the summary;
//! the parse shared by both threads at full speed (lines copied out of gzip recordings, or
//! read in place from whole ones), reading and parsing on one thread and the engine on the
//! other when paced. A failed output
//! and a bad line stop both threads with the error, a bad line after what came before it.

use flowcore_core::instrument::Venue;
use flowcore_feeds::recording::{Input, RecordingReader, Source};
use flowcore_outputs::Outputs;
use flowcore_runtime::config::IdleStrategy;
use flowcore_runtime::replay::{replay, ReplayOptions, ReplayThreads};
use flowcore_tests::{btc_inputs, lines, memory, options, replay_written, temp_dir, Written};
use std::io::Write;
use std::path::Path;

fn replay_with(inputs: Vec<Input>, threads: ReplayThreads) -> Written {
    replay_written(ReplayOptions {
        threads,
        ..options(inputs)
    })
}

/// The BTC set, with the spot 0808 file edited: garbage lines and subscribe replies among the
/// real ones, so counted refusals land in the middle of busy seconds.
fn inputs_with_refusals() -> Vec<Input> {
    let mut spot = lines("spot_btcusdt_20240808.txt.gz");
    for i in (1000..spot.len()).step_by(211).rev() {
        let ts: i64 = spot[i][..spot[i].find(' ').expect("ts")]
            .parse()
            .expect("ts");
        let garbage = match i % 4 {
            0 => r#"{"stream":"btcusdt@trade","data":{"e":"trade","#,
            1 => r#"{"stream":"btcusdt@nope","data":{"e":"nope"}}"#,
            2 => "not json at all",
            // A subscribe reply: a control message, counted apart.
            _ => r#"{"result":null,"id":7}"#,
        };
        spot.insert(i, format!("{ts} {garbage}"));
    }
    let mut inputs = btc_inputs();
    inputs[0] = memory(Venue::BinanceSpot, &spot);
    inputs
}

/// [`inputs_with_refusals`] with every recording whole: in memory, or as plain files in
/// `dir` (mapped). Two threads then share the parse (`shared_parse`).
fn whole_inputs_with_refusals(dir: Option<&Path>) -> Vec<Input> {
    inputs_with_refusals()
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let bytes = match &input.source {
                Source::Path(p) => RecordingReader::read_all(p).expect("bundled recording"),
                Source::Memory(m) => m.to_vec(),
                Source::Journal { .. } => unreachable!("no journal here"),
            };
            let source = match dir {
                None => Source::Memory(bytes.into()),
                Some(dir) => {
                    let path = dir.join(format!("{i}.txt"));
                    std::fs::write(&path, bytes).expect("plain copy");
                    Source::Path(path)
                }
            };
            Input { source, ..input }
        })
        .collect()
}

#[test]
fn two_threads_write_the_same_bytes_as_one() {
    let one = replay_with(inputs_with_refusals(), ReplayThreads::One);
    // Comparisons only mean something if there is a lot to compare.
    assert!(one.summary.parse_errors >= 100, "{:?}", one.summary);
    assert!(one.summary.control_messages >= 40, "{:?}", one.summary);
    assert!(one.summary.tops > 1000 && one.summary.bars > 2000);
    let health_rows = one.health.iter().filter(|&&b| b == b'\n').count();
    assert!(health_rows > 1000, "{health_rows} health rows");
    for idle in [IdleStrategy::SpinYield, IdleStrategy::Park] {
        let two = replay_with(inputs_with_refusals(), ReplayThreads::Two(idle));
        assert_eq!(two.summary, one.summary, "{idle:?}");
        assert!(two.bars == one.bars, "{idle:?}: bar rows differ");
        assert!(two.tops == one.tops, "{idle:?}: tops rows differ");
        assert!(two.health == one.health, "{idle:?}: health rows differ");
    }
}

#[test]
fn whole_recordings_write_the_same_bytes_as_read_ones() {
    let one = replay_with(inputs_with_refusals(), ReplayThreads::One);
    assert!(one.summary.parse_errors >= 100 && one.summary.tops > 1000);
    let dir = temp_dir("replay-plain");
    for (what, inputs) in [
        ("in memory", whole_inputs_with_refusals(None)),
        ("mapped", whole_inputs_with_refusals(Some(&dir))),
    ] {
        for threads in [
            ReplayThreads::One,
            ReplayThreads::Two(IdleStrategy::SpinYield),
            ReplayThreads::Two(IdleStrategy::Park),
        ] {
            let whole = replay_with(inputs.clone(), threads);
            assert_eq!(whole.summary, one.summary, "{what}, {threads:?}");
            assert!(
                whole.bars == one.bars,
                "{what}, {threads:?}: bar rows differ"
            );
            assert!(
                whole.tops == one.tops,
                "{what}, {threads:?}: tops rows differ"
            );
            assert!(
                whole.health == one.health,
                "{what}, {threads:?}: health rows differ"
            );
        }
    }
}

#[test]
fn a_line_without_a_timestamp_stops_every_replay_with_its_number() {
    let mut spot = lines("spot_btcusdt_20240808.txt.gz");
    spot.truncate(5_000);
    spot.insert(3_000, "no timestamp here".into());
    let usdm = lines("usdm_btcusdt_20240808.txt.gz");
    // Read (gzip beside it) and whole in memory: each path stops at the line with what came
    // before it applied, the same rows whatever the threads.
    let gzip = || {
        vec![
            memory(Venue::BinanceSpot, &spot),
            btc_inputs().swap_remove(2),
        ]
    };
    let whole = || {
        vec![
            memory(Venue::BinanceSpot, &spot),
            memory(Venue::BinanceUsdm, &usdm),
        ]
    };
    let mut first: Option<(Vec<u8>, Vec<u8>)> = None;
    for (inputs, threads) in [
        (gzip(), ReplayThreads::One),
        (gzip(), ReplayThreads::Two(IdleStrategy::SpinYield)),
        (whole(), ReplayThreads::One),
        (whole(), ReplayThreads::Two(IdleStrategy::SpinYield)),
        (whole(), ReplayThreads::Two(IdleStrategy::Park)),
    ] {
        let (mut bars, mut tops) = (Vec::new(), Vec::new());
        let outputs = Outputs {
            bars: Some(&mut bars),
            tops: Some(&mut tops),
            ..Outputs::default()
        };
        let err = replay(
            ReplayOptions {
                threads,
                ..options(inputs)
            },
            outputs,
        )
        .expect_err("a line without a timestamp");
        assert!(
            format!("{err:#}").contains("line 3001"),
            "{threads:?}: {err:#}"
        );
        assert!(
            !tops.is_empty(),
            "{threads:?}: nothing applied before the bad line"
        );
        match &first {
            None => first = Some((bars, tops)),
            Some((b, t)) => assert!(
                *b == bars && *t == tops,
                "{threads:?}: rows before the bad line differ"
            ),
        }
    }
}

/// Accepts `budget` bytes, then fails every write.
struct FailingAfter {
    budget: usize,
}

impl Write for FailingAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.budget {
            return Err(std::io::Error::other("disk full"));
        }
        self.budget -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_output_stops_either_replay_with_its_error() {
    for (threads, inputs) in [
        (ReplayThreads::One, btc_inputs()),
        (ReplayThreads::Two(IdleStrategy::SpinYield), btc_inputs()),
        // Whole in memory: the engine's thread reads, the other parses.
        (
            ReplayThreads::Two(IdleStrategy::SpinYield),
            whole_inputs_with_refusals(None),
        ),
    ] {
        let mut tops = FailingAfter { budget: 100_000 };
        let outputs = Outputs {
            bars: None,
            tops: Some(&mut tops),
            health: None,
            signals: None,
            stats: None,
        };
        let options = ReplayOptions {
            threads,
            ..options(inputs)
        };
        let err = replay(options, outputs).expect_err("the tops output fails");
        assert!(
            format!("{err:#}").contains("disk full"),
            "{threads:?}: {err:#}"
        );
    }
}
