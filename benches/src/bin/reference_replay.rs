//! The replay benches' baseline as a whole process, for timing against `flowcore replay`
//! on the same files: `reference-replay VENUE=FILE...` reads the recordings (plain or
//! gzip), merges them by local time, does the reference's work (`serde_json::Value`,
//! `rust_decimal`, `BTreeMap` books, per-second bars and top-10 imbalance) and prints the
//! trades counted and each instrument's CVD.

use flowcore_benches::reference::reference;
use flowcore_core::instrument::Venue;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        let parsed = arg
            .split_once('=')
            .and_then(|(venue, path)| Some((Venue::from_name(venue)?, PathBuf::from(path))));
        match parsed {
            Some(file) => files.push(file),
            None => {
                eprintln!("reference-replay: expected VENUE=FILE, got {arg:?}");
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
