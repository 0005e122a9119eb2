//! Health records per feed: their lag percentiles against an independent computation from
//! the recordings, and the shape a reader relies on (one record per source per second,
//! cumulative counters, venues adding up to the pipeline).

use flowcore_core::instrument::Venue;
use flowcore_tests::{check_health_rows, file, recording, run};
use std::io::{BufRead, BufReader};

/// Every `local - E` of a recording, ns, straight from its lines (serde_json, no flowcore
/// parser): stream messages with an event time (spot bookTicker has none; a futures REST
/// snapshot has one, but a REST answer's age is not stream lag).
fn lags(name: &str) -> Vec<i64> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(recording(name)).unwrap());
    let mut out = Vec::new();
    for line in BufReader::new(gz).lines() {
        let line = line.unwrap();
        let (local, json) = line.split_once(' ').unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let data = v.get("data").unwrap_or(&v);
        if data.get("lastUpdateId").is_some() {
            continue;
        }
        if let Some(e) = data.get("E").and_then(serde_json::Value::as_i64) {
            out.push(local.parse::<i64>().unwrap() - e * 1_000_000);
        }
    }
    out
}

/// The value of rank `ceil(q * n)` among the sorted lags.
fn exact(sorted: &[i64], q: f64) -> i64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn replay_lag_percentiles_per_venue_match_an_independent_computation() {
    let sets = [
        (Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
        (Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz"),
        (Venue::BinanceCoinm, "coinm_btcusd_perp_20240808.txt.gz"),
    ];
    let out = run(sets.iter().map(|&(v, name)| file(v, name)).collect());
    let last = &out.summary.health;
    assert_eq!(last.len(), 4, "the pipeline and three venues: {last:?}");
    let mut all = Vec::new();
    for (venue, name) in sets {
        let mut want = lags(name);
        want.sort_unstable();
        all.extend_from_slice(&want);
        let got = last.iter().find(|r| r.source == Some(venue)).unwrap().lag;
        eprintln!(
            "{venue}: {} samples, p50 {} (exact {}), p99 {} ({}), p99.9 {} ({}), max {} ({})",
            got.samples,
            got.p50,
            exact(&want, 0.5),
            got.p99,
            exact(&want, 0.99),
            got.p999,
            exact(&want, 0.999),
            got.max,
            want[want.len() - 1]
        );
        assert_eq!(
            got.samples,
            want.len() as u64,
            "{venue}: one sample per message with E"
        );
        let close = |got: i64, want: i64| got.abs_diff(want) <= want.unsigned_abs() / 100 + 1_000;
        for (q, g) in [(0.5, got.p50), (0.99, got.p99), (0.999, got.p999)] {
            assert!(close(g, exact(&want, q)), "{venue} q {q}: {g}");
        }
        assert!(close(got.max, want[want.len() - 1]), "{venue} max");
        // The recorder's clock ran about 1.27 s behind the exchange (data/SOURCES.md).
        assert!((-1_300_000_000..-1_200_000_000).contains(&got.p50));
    }
    all.sort_unstable();
    let pipeline = last[0].lag;
    assert_eq!(pipeline.samples, all.len() as u64);
    assert!(pipeline.p50.abs_diff(exact(&all, 0.5)) <= exact(&all, 0.5).unsigned_abs() / 100);

    let rows = check_health_rows(
        &out.health,
        &[Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BinanceCoinm],
    );
    assert!(rows > 300, "{rows} seconds of health");
    // The last records are the summary's counters.
    let tail: Vec<serde_json::Value> = out.health[out.health.len() - 4..]
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert_eq!(tail[0]["messages"], out.summary.messages);
    assert_eq!(tail[0]["events"], out.summary.engine.events);
    for (row, (venue, name)) in tail[1..].iter().zip(sets) {
        assert_eq!(row["source"], venue.name());
        let lines = flowcore_tests::recording_lines(name);
        assert_eq!(row["messages"], lines, "{venue}: every line read");
    }
}

/// A Bybit message of many trades (or a `tickers` of many fields) is one lag sample, as
/// every other message: samples = the synthetic stream's messages less its book snapshot
/// (which carries no stream time).
#[test]
fn a_message_of_many_events_is_one_lag_sample() {
    use flowcore_sim::bybit_synth::{generate, SynthOptions};
    let stream = generate(&SynthOptions::new(
        Venue::BybitLinear,
        5,
        1_723_161_255_000,
        20,
    ))
    .unwrap();
    let many = stream
        .lines
        .iter()
        .filter(|l| l.matches("\"i\":").count() > 1 || l.contains("\"openInterest\""))
        .count();
    assert!(many > 10, "{many} messages of several events");
    let out = run(vec![flowcore_tests::memory(
        Venue::BybitLinear,
        &stream.lines,
    )]);
    let row = out
        .summary
        .health
        .iter()
        .find(|r| r.source == Some(Venue::BybitLinear))
        .unwrap();
    assert_eq!(row.lag.samples, stream.lines.len() as u64 - 1);
}
