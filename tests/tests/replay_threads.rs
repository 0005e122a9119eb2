//! A two-thread replay (reader and parser on one thread, engine on the other) writes the
//! same bytes as a one-thread replay: rows in the order written, health rows with their
//! per-second message and error counts, and the summary. And a failed output stops both
//! threads with the error.

use flowcore_core::instrument::Venue;
use flowcore_feeds::recording::Input;
use flowcore_outputs::Outputs;
use flowcore_runtime::config::IdleStrategy;
use flowcore_runtime::replay::{replay, ReplayOptions, ReplayThreads};
use flowcore_tests::{btc_inputs, lines, memory, options, replay_written, Written};
use std::io::Write;

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
    for threads in [
        ReplayThreads::One,
        ReplayThreads::Two(IdleStrategy::SpinYield),
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
            ..options(btc_inputs())
        };
        let err = replay(options, outputs).expect_err("the tops output fails");
        assert!(
            format!("{err:#}").contains("disk full"),
            "{threads:?}: {err:#}"
        );
    }
}
