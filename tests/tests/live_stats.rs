//! Venue statistics and a dead aggregate member, live against `flowcore sim`: Binance
//! futures `markPrice@1s` (USD-M on a `/market` feed of its own, COIN-M on its stream
//! connection) and REST open interest polled every second; the USD-M recording ends a
//! minute in, so its feeds fall silent while spot and COIN-M go on.

use flowcore_core::instrument::Venue;
use flowcore_feeds::recording::{Input, Pace};
use flowcore_outputs::Outputs;
use flowcore_runtime::live::run;
use flowcore_tests::{
    assert_rows_eq, lines_before, memory, options, recorded_inputs, replay_written, rows,
    run_options, sim_options, sorted_rows, start_sim_with, temp_dir, ts_of, SimAddresses,
};

/// The first local time of the bundled BTC recordings (23:54:16).
const START_NS: i64 = 1_723_161_256_000_000_000;
/// USD-M ends here, a minute in; spot and COIN-M at two and a half minutes.
const USDM_END_NS: i64 = START_NS + 60_000_000_000;
const END_NS: i64 = START_NS + 150_000_000_000;
const MEMBER_TIMEOUT_MS: i64 = 1000;

fn cut(venue: Venue, names: &[&str], end_ns: i64) -> Input {
    memory(venue, &lines_before(names, end_ns))
}

fn inputs() -> Vec<Input> {
    vec![
        cut(
            Venue::BinanceSpot,
            &["spot_btcusdt_20240808.txt.gz"],
            END_NS,
        ),
        cut(
            Venue::BinanceUsdm,
            &["usdm_btcusdt_20240808.txt.gz"],
            USDM_END_NS,
        ),
        cut(
            Venue::BinanceCoinm,
            &["coinm_btcusd_perp_20240808.txt.gz"],
            END_NS,
        ),
    ]
}

/// Spot; USD-M's book and trades on `/public` and its mark price and open interest on
/// `/market`; COIN-M's mark price on its stream connection, open interest polled beside it.
fn config(a: &SimAddresses) -> String {
    let (spot_ws, spot_rest) = &a["binance-spot"];
    let (usdm_ws, usdm_rest) = &a["binance-usdm"];
    let (coinm_ws, coinm_rest) = &a["binance-coinm"];
    format!(
        "[pipeline]\nidle = \"park\"\nring_capacity = 4096\nmember_timeout_ms = {MEMBER_TIMEOUT_MS}\n\
         [[feed]]\nvenue = \"binance-spot\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{spot_ws}\"\nrest_url = \"{spot_rest}\"\n\
         [[feed]]\nvenue = \"binance-usdm\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{usdm_ws}/public\"\nrest_url = \"{usdm_rest}\"\n\
         [[feed]]\nvenue = \"binance-usdm\"\nsymbols = [\"BTCUSDT\"]\nws_url = \"{usdm_ws}/market\"\nrest_url = \"{usdm_rest}\"\n\
         streams = [\"markPrice@1s\"]\nopen_interest_s = 1\n\
         [[feed]]\nvenue = \"binance-coinm\"\nsymbols = [\"BTCUSD_PERP\"]\nws_url = \"{coinm_ws}\"\nrest_url = \"{coinm_rest}\"\n\
         streams = [\"trade\", \"bookTicker\", \"depth@0ms\", \"markPrice@1s\"]\nopen_interest_s = 1\n"
    )
}

fn field<'a>(row: &'a str, key: &str) -> &'a str {
    let at = row.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let rest = &row[at..];
    let end = rest.find([',', '}']).expect("value end");
    &rest[..end]
}

fn is_aggregate(row: &str) -> bool {
    row.starts_with("{\"venue\":\"agg-")
}

#[test]
fn statistics_flow_live_equal_the_replay_and_a_dead_member_holds_no_aggregate_back() {
    // 15x: the run lasts 10 s, USD-M is silent for its last 6, six member timeouts.
    let (addresses, sim) = start_sim_with(sim_options(inputs(), Pace::Faster(15.0), 4, None));
    let record = temp_dir("live-stats");
    let (mut bars, mut stats) = (Vec::new(), Vec::new());
    let live = flowcore_runtime::live::RunOptions {
        record: Some(record.to_path_buf()),
        ..run_options(&config(&addresses))
    };
    let outputs = Outputs {
        bars: Some(&mut bars),
        stats: Some(&mut stats),
        ..Outputs::default()
    };
    let summary = run(live, outputs).expect("run");
    let sim = sim.join().unwrap();
    assert_eq!(summary.parse_errors, 0);
    assert!(sim.marks > 200, "{} mark prices served", sim.marks);
    assert!(
        summary.open_interest_polls >= 6,
        "{} open-interest answers, {} failed",
        summary.open_interest_polls,
        summary.open_interest_errors
    );
    let (bars, stats) = (rows(bars), rows(stats));

    // Every perp has mark, index and funding from its stream, and its open interest.
    for (venue, symbol) in [
        ("binance-usdm", "BTCUSDT"),
        ("binance-coinm", "BTCUSD_PERP"),
    ] {
        let of: Vec<&String> = (stats.iter())
            .filter(|r| r.contains(&format!("\"venue\":\"{venue}\",\"symbol\":\"{symbol}\"")))
            .collect();
        assert!(of.len() > 30, "{venue}: {} statistics rows", of.len());
        let last = of.last().unwrap();
        for key in [
            "mark_px",
            "index_px",
            "funding_rate",
            "next_funding_ms",
            "open_interest",
        ] {
            assert_ne!(field(last, key), "null", "{venue} {key}: {last}");
        }
        // One row a second at most, in order.
        assert!(of.windows(2).all(|w| ts_of(w[0]) < ts_of(w[1])), "{venue}");
    }
    assert!(!stats.iter().any(|r| r.contains("binance-spot")));

    // The aggregate went on without USD-M once it fell silent: the seconds after its end
    // hold COIN-M only, are not complete, and were written while the run went on, not
    // flushed at its end.
    let usdm_end_ms = USDM_END_NS / 1_000_000;
    let perp: Vec<(usize, &String)> = (bars.iter().enumerate())
        .filter(|(_, r)| r.starts_with("{\"venue\":\"agg-perp\""))
        .collect();
    let after: Vec<&(usize, &String)> = (perp.iter())
        .filter(|(_, r)| ts_of(r) > usdm_end_ms + 3_000)
        .collect();
    assert!(
        after.len() > 60,
        "{} aggregate seconds after USD-M ended",
        after.len()
    );
    for (_, r) in &after {
        assert_eq!(
            (field(r, "members"), field(r, "complete")),
            ("2", "false"),
            "{r}"
        );
    }
    // Before, both (past the first seconds, which the recordings begin at different times).
    let start_ms = START_NS / 1_000_000;
    let before =
        (perp.iter()).filter(|(_, r)| (start_ms + 5_000..usdm_end_ms - 10_000).contains(&ts_of(r)));
    for (_, r) in before {
        assert_eq!(field(r, "members"), "3", "{r}");
    }
    let late_coinm = (bars.iter())
        .position(|r| {
            r.starts_with("{\"venue\":\"binance-coinm\"") && ts_of(r) >= END_NS / 1_000_000 - 20_000
        })
        .expect("COIN-M bars to the end");
    let early_aggregate = after[10].0;
    assert!(
        early_aggregate < late_coinm,
        "the aggregate waited for the dead member: written at row {early_aggregate}, after \
         COIN-M's row {late_coinm}"
    );

    // Statistics leave the bars alone: every instrument's bar equals a replay of the same
    // data; and a replay of what the run recorded gives back its statistics, row for row.
    let mut replay = options(inputs());
    replay.member_timeout_ms = MEMBER_TIMEOUT_MS;
    let replayed = sorted_rows(replay_written(replay).bars);
    let instruments = |rows: &[String]| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().filter(|r| !is_aggregate(r)).cloned().collect();
        v.sort();
        v
    };
    assert_rows_eq(
        "instrument bars",
        &instruments(&bars),
        &instruments(&replayed),
    );
    let mut again = options(recorded_inputs(&record));
    again.member_timeout_ms = MEMBER_TIMEOUT_MS;
    let again = replay_written(again);
    let mut live_stats = stats.clone();
    live_stats.sort();
    assert_rows_eq(
        "replayed statistics",
        &sorted_rows(again.stats),
        &live_stats,
    );
    std::fs::remove_dir_all(record).unwrap();
}
