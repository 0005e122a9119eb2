//! Fuzzes the Binance spot dialect parser and the engine behind it.
#![no_main]

use flowcore_core::instrument::Venue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flowcore_feeds::fuzzing::drive(Venue::BinanceSpot, data));
