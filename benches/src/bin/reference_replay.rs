//! The replay benches' baseline as a whole process, for timing against `flowcore replay`
//! on the same files: `reference-replay VENUE=FILE...` reads the recordings (plain or
//! gzip), merges them by local time, does the reference's work (`serde_json::Value`,
//! `rust_decimal`, `BTreeMap` books, per-second bars and top-10 imbalance) and prints the
//! trades counted and each instrument's CVD.

use flowcore_benches::reference::reference;
use flowcore_feeds::recording::{Input, Source};

fn main() -> std::process::ExitCode {
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        // The same `VENUE=FILE` arguments as `flowcore replay`'s.
        match Input::parse_arg(&arg) {
            Ok(Input {
                venue,
                source: Source::Path(path),
            }) => files.push((venue, path)),
            Ok(_) => {
                eprintln!("reference-replay: {arg:?} names no file");
                return std::process::ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("reference-replay: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let messages = match flowcore_benches::load_paths(&files) {
        Ok(messages) => messages,
        Err(e) => {
            eprintln!("reference-replay: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (trades, cvd) = reference(&messages);
    println!("{} messages, {trades} trades", messages.len());
    for (instrument, cvd) in cvd {
        println!("{instrument} cvd {cvd}");
    }
    std::process::ExitCode::SUCCESS
}
