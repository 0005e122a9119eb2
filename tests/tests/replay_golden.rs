//! `flowcore replay` against the independent Python `decimal` computation (tests/golden).

use flowcore_core::instrument::Venue::{BinanceCoinm, BinanceSpot, BinanceUsdm};
use flowcore_tests::{
    assert_rows_eq, btc_inputs, data_file, file, golden, lines, memory, run, ts_of,
};

#[test]
fn btc_bars_and_tops_equal_the_golden_computation() {
    let out = run(btc_inputs());
    assert_rows_eq("BTC bars", &out.bars, &golden("bars_btc.jsonl"));
    assert_rows_eq("BTC tops", &out.tops, &golden("tops_btc.jsonl"));
    assert_eq!(out.summary.parse_errors, 0);
    assert_eq!(out.summary.engine.gaps, 0);
    assert!(
        out.bars.iter().any(|r| r.contains("\"agg-perp\""))
            && out.bars.iter().any(|r| r.contains("\"agg-spot\""))
    );
}

#[test]
fn eth_bars_and_tops_equal_the_golden_computation() {
    let out = run(vec![
        file(BinanceSpot, "spot_ethusdt_20240808.txt.gz"),
        file(BinanceSpot, "spot_ethusdt_20240809.txt.gz"),
        file(BinanceUsdm, "usdm_ethusdt_20240808.txt.gz"),
    ]);
    assert_rows_eq("ETH bars", &out.bars, &golden("bars_eth.jsonl"));
    assert_rows_eq("ETH tops", &out.tops, &golden("tops_eth.jsonl"));
}

#[test]
fn replay_is_bit_identical_twice() {
    let a = run(btc_inputs());
    let b = run(btc_inputs());
    assert_eq!(a.bars, b.bars);
    assert_eq!(a.tops, b.tops);
}

/// Depth-built best bid/ask equals the venue's bookTicker wherever both are at the same `u`.
#[test]
fn book_equals_book_ticker_at_the_same_update_id() {
    let spot = run(vec![
        file(BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
        file(BinanceSpot, "spot_btcusdt_20240809.txt.gz"),
    ]);
    assert!(
        spot.summary.engine.ticker_checks >= 1000,
        "only {} spot comparisons",
        spot.summary.engine.ticker_checks
    );
    assert_eq!(spot.summary.engine.ticker_mismatches, 0);
    let usdm = run(vec![file(BinanceUsdm, "usdm_btcusdt_20240808.txt.gz")]);
    assert!(
        usdm.summary.engine.ticker_checks >= 600,
        "only {} USD-M comparisons",
        usdm.summary.engine.ticker_checks
    );
    assert_eq!(usdm.summary.engine.ticker_mismatches, 0);
}

/// The 0809 file has no snapshot: its book can only be the 0808 book carried on.
#[test]
fn the_0809_files_continue_the_0808_books() {
    let both = run(vec![
        file(BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
        file(BinanceSpot, "spot_btcusdt_20240809.txt.gz"),
    ]);
    let midnight = 1_723_161_600_000;
    let after: Vec<_> = both.tops.iter().filter(|r| ts_of(r) >= midnight).collect();
    assert!(after.len() > 290, "{} rows after midnight", after.len());
    assert!(after.iter().all(|r| r.ends_with("\"synced\":true}")));
    assert_eq!(both.summary.engine.gaps, 0);
    // Alone, the 0809 file never syncs: the continuation above came from the 0808 book.
    let alone = run(vec![file(BinanceSpot, "spot_btcusdt_20240809.txt.gz")]);
    assert!(alone.tops.is_empty());
}

/// A dropped depth event unsyncs the book and stops tops; a snapshot made by the golden
/// script (from the unmodified recording) and injected later resyncs it.
#[test]
fn a_dropped_diff_unsyncs_until_an_injected_snapshot() {
    const DROP_LINE: usize = 3289; // depth event #300 of the file
    const INJECT_AFTER: usize = 7344; // depth event #600, local ts 1723161314064767607
    let mut edited = lines("spot_btcusdt_20240808.txt.gz");
    assert!(
        edited[DROP_LINE].contains("@depth")
            && edited[INJECT_AFTER].starts_with("1723161314064767607 ")
    );
    let snapshot = std::fs::read_to_string(
        flowcore_tests::repo().join("tests/golden/spot_btcusdt_snapshot_1723161314064767607.json"),
    )
    .expect("golden snapshot");
    edited.insert(
        INJECT_AFTER + 1,
        format!("1723161314064767607 {}", snapshot.trim()),
    );
    let drop_ts: i64 = edited[DROP_LINE]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    edited.remove(DROP_LINE);

    let out = run(vec![memory(BinanceSpot, &edited)]);
    assert_eq!(out.summary.engine.gaps, 1);
    let unsynced: Vec<_> = out
        .tops
        .iter()
        .filter(|r| r.ends_with("\"synced\":false}"))
        .collect();
    assert!(unsynced.len() >= 20, "{} unsynced rows", unsynced.len());
    assert!(unsynced
        .iter()
        .all(|r| r.contains("\"bid_px\":null") && r.contains("\"obi\":null")));
    // Exchange time runs ~1.27 s ahead of the recorder's local clock.
    let first_unsynced = unsynced.iter().map(|r| ts_of(r)).min().unwrap();
    assert!((first_unsynced - drop_ts / 1_000_000).abs() < 3_000);

    // From the second after the snapshot on, every row equals the unmodified golden rows.
    let want: Vec<String> = golden("tops_btc.jsonl")
        .into_iter()
        .filter(|r| r.contains("\"binance-spot\""))
        .collect();
    let resynced_from = unsynced.iter().map(|r| ts_of(r)).max().unwrap() + 1000;
    let tail = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| ts_of(r) >= resynced_from && ts_of(r) < 1_723_161_600_000)
            .cloned()
            .collect()
    };
    let got_tail = tail(&out.tops);
    assert!(got_tail.len() > 200, "{} rows after resync", got_tail.len());
    assert_rows_eq("tops after resync", &got_tail, &tail(&want));
}

/// A trade line with its trade id `"t"` one higher.
fn with_next_trade_id(line: &str) -> String {
    let at = line.find("\"t\":").expect("a trade id") + 4;
    let len = line[at..].find(',').expect("more fields");
    let id: u64 = line[at..at + len].parse().expect("a number");
    format!("{}{}{}", &line[..at], id + 1, &line[at + len..])
}

/// A non-`MARKET` futures trade is not taker flow: every bar field stays as it was.
#[test]
fn an_insurance_fund_trade_leaves_every_bar_unchanged() {
    let original = lines("usdm_btcusdt_20240808.txt.gz");
    let base = run(vec![memory(BinanceUsdm, &original)]);
    let mut edited = original.clone();
    let at = edited
        .iter()
        .position(|l| l.contains("@trade") && l.contains("\"X\":\"MARKET\""))
        .unwrap()
        + 5000;
    let at = at
        + edited[at..]
            .iter()
            .position(|l| l.contains("@trade"))
            .unwrap();
    // The fill takes the next trade id, as on the venue: every later trade moves up one.
    for line in edited[at + 1..].iter_mut().filter(|l| l.contains("@trade")) {
        *line = with_next_trade_id(line);
    }
    let injected = with_next_trade_id(&edited[at])
        .replace("\"X\":\"MARKET\"", "\"X\":\"INSURANCE_FUND\"")
        .replace("\"q\":\"", "\"q\":\"12");
    assert_ne!(injected, edited[at]);
    edited.insert(at + 1, injected);
    let out = run(vec![memory(BinanceUsdm, &edited)]);
    assert_eq!(out.summary.non_taker_trades, 1);
    assert_rows_eq("bars with an INSURANCE_FUND trade", &out.bars, &base.bars);
}

/// Malformed lines are counted and skipped; the rest of the recording still replays.
#[test]
fn malformed_lines_are_counted_not_fatal() {
    let mut edited = lines("spot_btcusdt_20240808.txt.gz");
    let ts = edited[100].split(' ').next().unwrap().to_owned();
    for junk in [
        "{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\"",
        "not json at all",
        "{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1,\"s\":\"BTCUSDT\",\"t\":1,\"p\":\"1.001\",\"q\":\"1\",\"T\":1,\"m\":true}}",
        "{\"stream\":\"xrpusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1,\"s\":\"XRPUSDT\",\"t\":1,\"p\":\"1\",\"q\":\"1\",\"T\":1,\"m\":true}}",
        "{\"stream\":\"btcusdt@kline\",\"data\":{\"e\":\"kline\",\"s\":\"BTCUSDT\"}}",
    ] {
        edited.insert(101, format!("{ts} {junk}"));
    }
    let out = run(vec![memory(BinanceSpot, &edited)]);
    assert_eq!(out.summary.parse_errors, 5);
    let clean = run(vec![memory(
        BinanceSpot,
        &lines("spot_btcusdt_20240808.txt.gz"),
    )]);
    assert_eq!(out.bars, clean.bars);
}

/// A recorded mixed-fault run (data/faults, see PROVENANCE.md): COIN-M broke at
/// 23:54:09.7, the trade history answered empty while the connection was still down, 21
/// trades were made at 23:54:10-12, and the new connection's book tickers then carried the
/// venue's clock past the quiet time before the history brought them. The bars must wait
/// for an answer asked after the stream came back: every second equals the golden
/// computation over the full recording, with no trade late.
#[test]
fn an_empty_history_answer_from_before_the_reconnect_does_not_close_the_bars() {
    let inputs = (1..=4)
        .map(|i| {
            data_file(
                BinanceCoinm,
                &format!("faults/coinm_quiet_break_{i}.txt.gz"),
            )
        })
        .collect();
    let out = run(inputs);
    assert_eq!(out.summary.late_trades, 0);
    assert_eq!(out.summary.engine.unfilled_trade_gaps, 0);
    assert!(out.summary.engine.backfilled_trades > 0);
    // Every bar field but the CVD (which starts from zero here) equals the golden bar of the
    // same second, between the first and the last, partly recorded, seconds.
    let without_cvd = |row: &str| {
        let mut v: serde_json::Value = serde_json::from_str(row).unwrap();
        let ts = v["ts"].as_i64().unwrap();
        v.as_object_mut().unwrap().remove("cvd");
        (ts, v)
    };
    let ours: Vec<_> = out
        .bars
        .iter()
        .filter(|r| r.contains("\"venue\":\"binance-coinm\""))
        .map(|r| without_cvd(r))
        .collect();
    let first = ours.iter().map(|(ts, _)| *ts).min().unwrap();
    let last = ours.iter().map(|(ts, _)| *ts).max().unwrap();
    let golden: std::collections::HashMap<i64, serde_json::Value> = golden("bars_btc.jsonl")
        .iter()
        .filter(|r| r.contains("\"venue\":\"binance-coinm\""))
        .map(|r| without_cvd(r))
        .collect();
    let mut compared = 0;
    for (ts, bar) in ours.iter().filter(|(ts, _)| *ts > first && *ts < last) {
        assert_eq!(Some(bar), golden.get(ts), "second {ts}");
        compared += 1;
    }
    // 23:52:30 to 23:54:24 less the 67 s the connection was refused.
    assert!(compared > 100, "{compared} seconds compared");
}

/// A snapshot that never comes: the diffs buffered for it stay within what was reserved
/// (dropped and counted past it), and the bars, which need no book, are unchanged.
#[test]
fn diffs_buffered_for_a_snapshot_that_never_comes_stay_bounded() {
    let all = lines("spot_btcusdt_20240808.txt.gz");
    let without: Vec<String> = all
        .iter()
        .filter(|l| l.contains("\"stream\""))
        .cloned()
        .collect();
    assert_eq!(
        all.len() - without.len(),
        1,
        "one REST snapshot in the recording"
    );
    let out = run(vec![memory(BinanceSpot, &without)]);
    let with = run(vec![memory(BinanceSpot, &all)]);
    // Every 1,024 diffs buffered, the next one finds the buffer full.
    let diffs = without.iter().filter(|l| l.contains("@depth")).count() as u64;
    assert!(diffs > 3_000, "{diffs} diffs");
    assert_eq!(out.summary.engine.buffer_overflows, (diffs - 1) / 1024);
    assert_eq!(with.summary.engine.buffer_overflows, 0);
    assert_eq!(out.bars, with.bars);
}
