//! The shared-memory bus end to end: what replay publishes reads back exactly as its JSONL
//! rows, and the demo (simulator -> live engine -> bus -> reader) shows what the engine wrote.

use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_outputs::Outputs;
use flowcore_runtime::replay::{replay, ReplayOptions};
use flowcore_shm::{BusConfig, BusReader, ReadFrom};
use flowcore_tests::{assert_rows_eq, file, shm_dir, sorted_rows, temp_dir};
use flowcore_tools::shm_tail::{tail, Stream, TailOptions};
use std::time::Duration;

fn tail_rows(dir: &std::path::Path, stream: Stream) -> Vec<String> {
    let mut out = Vec::new();
    let options = TailOptions {
        streams: vec![stream],
        from: ReadFrom::Oldest,
        json: true,
        duration: Some(Duration::from_secs(60)),
        follow: false,
    };
    let s = tail(dir, &options, &mut out).expect("tail");
    assert_eq!(s.lapped, 0);
    sorted_rows(out)
}

#[test]
fn replay_published_bars_tops_health_and_stats_read_back_as_the_jsonl_rows() {
    let dir = shm_dir("replay-shm");
    let (mut bars, mut tops, mut health) = (Vec::new(), Vec::new(), Vec::new());
    let mut stats = Vec::new();
    let options = ReplayOptions {
        shm: Some(BusConfig::new(&dir)),
        ..ReplayOptions::new(
            InstrumentTable::binance_defaults(),
            ImbalanceConfig::default(),
            vec![
                file(Venue::BinanceSpot, "spot_btcusdt_20240808.txt.gz"),
                file(Venue::BinanceUsdm, "usdm_btcusdt_20240808.txt.gz"),
                file(Venue::BinanceCoinm, "coinm_btcusd_perp_20240808.txt.gz"),
            ],
        )
    };
    let outputs = Outputs {
        bars: Some(&mut bars),
        tops: Some(&mut tops),
        health: Some(&mut health),
        signals: None,
        stats: Some(&mut stats),
    };
    let summary = replay(options, outputs).unwrap();
    let (bars, tops, health) = (sorted_rows(bars), sorted_rows(tops), sorted_rows(health));
    let stats = sorted_rows(stats);
    assert!(
        bars.len() > 1000 && tops.len() > 500,
        "{} bars {} tops",
        bars.len(),
        tops.len()
    );
    // Every row, including the aggregates and COIN-M's contract conversion, decimal for decimal.
    assert_rows_eq("bars via shm", &tail_rows(&dir, Stream::Bars), &bars);
    assert_rows_eq("tops via shm", &tail_rows(&dir, Stream::Tops), &tops);
    // Health: the pipeline's and each venue's records, counters and lag percentiles.
    assert!(health.len() > 4 * 300, "{} health rows", health.len());
    assert_rows_eq("health via shm", &tail_rows(&dir, Stream::Health), &health);
    // Venue statistics: none in these recordings yet (tools/tests/shm_clients.rs publishes
    // hand-made rows); rows from recordings that carry them must read back the same.
    assert_rows_eq("stats via shm", &tail_rows(&dir, Stream::Stats), &stats);

    let mut bus = BusReader::open(&dir, ReadFrom::Oldest).unwrap();
    let mut trades = 0u64;
    while bus.trades.try_read().is_some() {
        trades += 1;
    }
    // Trades on the bus: every one parsed, whether or not it counts toward bars.
    let in_bars: u64 = bars
        .iter()
        .filter(|r| r.starts_with("{\"venue\":\"binance"))
        .map(|r| {
            r.split("\"trades\":")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(
        trades >= in_bars && in_bars > 10_000,
        "{trades} trades on the bus, {in_bars} in bars"
    );
    // Every book published a top-20 snapshot with its best levels in order.
    for id in 0..3u32 {
        let sym = bus.symbols.iter().position(|s| {
            flowcore_shm::text(&s.symbol) == if id == 2 { "BTCUSD_PERP" } else { "BTCUSDT" }
                && s.venue == [1, 2, 3][id as usize]
        });
        let sym = sym.expect("symbol in the table") as u32;
        let (book, version) = bus.book20.read(sym).expect("a book20 record");
        assert!(version > 1000, "book {sym} updated {version} times");
        assert_eq!(book.flags & flowcore_shm::abi::flags::BOOK_SYNCED, 1);
        assert_eq!((book.bid_levels, book.ask_levels), (20, 20));
        assert!(book.bids.windows(2).all(|w| w[0][0] > w[1][0]));
        assert!(book.asks.windows(2).all(|w| w[0][0] < w[1][0]));
        assert!(book.bids[0][0] < book.asks[0][0]);
    }
    // The pipeline's last record closes the replay: its counters are the summary's.
    let mut last = None;
    while let Some(h) = bus.health.try_read() {
        if h.source == flowcore_shm::abi::HEALTH_SOURCE_PIPELINE {
            last = Some(h);
        }
    }
    let h = last.expect("health records");
    use flowcore_shm::abi::health::{EVENTS, GAPS, MESSAGES, PUBLISHED};
    assert_eq!(h.counters[GAPS], summary.engine.gaps);
    assert_eq!(h.counters[MESSAGES], summary.messages);
    assert_eq!(h.counters[EVENTS], summary.engine.events);
    assert!(h.counters[PUBLISHED] > 10_000);
    assert!(
        !bus.writer_alive(),
        "the replay's writer lock is released when it ends"
    );
}

#[test]
fn the_demo_shows_from_shared_memory_what_the_live_engine_wrote() {
    let out_dir = temp_dir("demo-out");
    let mut screen = Vec::new();
    let options = flowcore_tools::demo::DemoOptions {
        data: flowcore_tests::repo().join("data/binance"),
        pace: "60x".parse().unwrap(),
        duration: Some(Duration::from_secs(5)),
        shm: None,
        out_dir: Some(out_dir.to_path_buf()),
        strategies: Some(flowcore_tests::repo().join("config/strategies/short.toml")),
    };
    let s = flowcore_tools::demo::demo(options, &mut screen).expect("demo");
    let screen = String::from_utf8(screen).unwrap();
    eprintln!("{screen}");
    let bars = std::fs::read_to_string(out_dir.join("bars.jsonl")).unwrap();
    let tops = std::fs::read_to_string(out_dir.join("tops.jsonl")).unwrap();
    // The reader saw every bar and top the engine wrote, and missed nothing.
    assert_eq!(s.bars, bars.lines().count() as u64);
    assert_eq!(s.tops, tops.lines().count() as u64);
    assert_eq!(s.lapped, 0);
    assert!(s.lines >= 2, "{screen}");
    // Every signal the engine wrote was shown as the bus published it.
    let signals = std::fs::read_to_string(out_dir.join("signals.jsonl")).unwrap();
    assert!(
        s.signals >= 1,
        "no signal in the demo's first minutes: {screen}"
    );
    assert_eq!(s.signals, signals.lines().count() as u64);
    assert_eq!(
        screen.matches("  signal #").count() as u64,
        s.signals,
        "{screen}"
    );
    assert!(s.trades > 1000 && s.run.parse_errors == 0 && s.run.engine.gaps == 0);
    // Signal lines name their strategy (from the bus's strategies table).
    assert!(
        !screen.contains("(strategy ") && screen.contains("  signal #1 ("),
        "{screen}"
    );
    // The venue statistics (USD-M's mark price over /market, its polled open interest) came
    // over the bus, every one the engine wrote, and the table shows them.
    let stats = std::fs::read_to_string(out_dir.join("stats.jsonl")).unwrap();
    assert!(s.stats > 10, "{} statistics records", s.stats);
    assert_eq!(s.stats, stats.lines().count() as u64);
    let last_mark = (stats.lines())
        .rfind(|r| r.contains("\"venue\":\"binance-usdm\""))
        .and_then(|r| r.split("\"mark_px\":\"").nth(1))
        .and_then(|r| r.split('.').next())
        .expect("a USD-M mark price");
    assert!(
        screen.contains(&format!(" {last_mark}.")),
        "{last_mark}: {screen}"
    );
    // Health records carry the feed threads' message counts.
    assert!(
        s.health_messages > 1000 && s.health_messages <= s.run.messages,
        "health says {} messages, the run {}",
        s.health_messages,
        s.run.messages
    );
    // The CVD it shows last is the last aggregate CVD the engine wrote.
    for (label, shown) in [("agg-spot", &s.cvd.0), ("agg-perp", &s.cvd.1)] {
        let last = bars
            .lines()
            .filter(|r| r.contains(&format!("\"venue\":\"{label}\"")))
            .max_by_key(|r| flowcore_tests::ts_of(r))
            .unwrap();
        let cvd = last
            .split("\"cvd\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(shown.as_deref(), Some(cvd), "{label}");
        assert!(screen.contains(cvd), "the screen shows {cvd}");
    }
    assert!(
        screen.contains("spot CVD") && screen.contains("perp CVD") && screen.contains("spot obi")
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn replay_published_signals_read_back_as_the_signal_rows() {
    let dir = shm_dir("replay-signals");
    let path = flowcore_tests::repo().join("config/strategies/short.toml");
    let mut options = flowcore_tests::options(flowcore_tests::btc_inputs());
    options.strategies =
        flowcore_runtime::strategies::load_strategies(&std::fs::read_to_string(path).unwrap())
            .unwrap();
    options.shm = Some(BusConfig::new(&dir));
    let mut signals = Vec::new();
    let outputs = Outputs {
        signals: Some(&mut signals),
        ..Outputs::default()
    };
    let summary = replay(options, outputs).unwrap();
    assert!(summary.signals.emitted >= 4, "{:?}", summary.signals);
    // Whole rows: the bus names each strategy in strategies.table.
    let rows = sorted_rows(signals);
    assert!(
        rows.iter().all(|r| r.contains(",\"strategy\":\"")),
        "{rows:?}"
    );
    assert_eq!(rows.len() as u64, summary.signals.emitted);
    assert_rows_eq("signals via shm", &tail_rows(&dir, Stream::Signals), &rows);
}

/// A stream break drops the published book at once: the `book20.table` slot says unsynced,
/// with no levels, from the break's receive time. (It used to keep the broken stream's last
/// book, flagged synced, until the successor connection's first diff.)
#[test]
fn a_stream_break_marks_the_published_book_unsynced_at_once() {
    let head: Vec<String> = flowcore_tests::lines("usdm_btcusdt_20240808.txt.gz")
        .into_iter()
        .take(400)
        .collect();
    let break_ns = flowcore_tests::line_ts(head.last().unwrap()) + 1;
    let marker = format!("{break_ns} {{\"flowcore\":\"stream_break\"}}");
    let book_after = |lines: &[String], name: &str| {
        let dir = shm_dir(name);
        let options = ReplayOptions {
            shm: Some(BusConfig::new(&dir)),
            ..ReplayOptions::new(
                InstrumentTable::binance_defaults(),
                ImbalanceConfig::default(),
                vec![flowcore_tests::memory(Venue::BinanceUsdm, lines)],
            )
        };
        replay(options, Outputs::default()).unwrap();
        let mut bus = BusReader::open(&dir, ReadFrom::Oldest).unwrap();
        let sym = bus
            .symbols
            .iter()
            .position(|s| flowcore_shm::text(&s.symbol) == "BTCUSDT" && s.venue == 2)
            .expect("USD-M BTCUSDT") as u32;
        let (book, _) = bus.book20.read(sym).expect("a book20 record");
        book
    };
    let synced = book_after(&head, "book-before-break");
    assert_eq!(synced.flags & flowcore_shm::abi::flags::BOOK_SYNCED, 1);
    assert_eq!((synced.bid_levels, synced.ask_levels), (20, 20));
    let broken = book_after(&[head, vec![marker]].concat(), "book-after-break");
    assert_eq!(broken.flags & flowcore_shm::abi::flags::BOOK_SYNCED, 0);
    assert_eq!((broken.bid_levels, broken.ask_levels), (0, 0));
    assert_eq!((broken.local_ns, broken.exch_ns), (break_ns, 0));
}
