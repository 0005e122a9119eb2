//! Replays the committed `cargo fuzz` corpus (fuzz/corpus/<target>) through the same code
//! the fuzz targets run: every input must be handled without a panic.

use flowcore_core::instrument::Venue;

fn replay_corpus(target: &str, venue: Venue) {
    let dir = flowcore_tests::repo().join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        flowcore_feeds::fuzzing::drive(venue, &std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} corpus files");
}

#[test]
fn binance_spot_corpus() {
    replay_corpus("binance_spot", Venue::BinanceSpot);
}

#[test]
fn binance_usdm_corpus() {
    replay_corpus("binance_usdm", Venue::BinanceUsdm);
}

#[test]
fn binance_coinm_corpus() {
    replay_corpus("binance_coinm", Venue::BinanceCoinm);
}
