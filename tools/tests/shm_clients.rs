//! The C and Python bus clients (written from shm/ABI.md alone) against a live
//! `flowcore replay --shm` run: what they print equals the replay's own JSONL rows.

use flowcore_core::engine::{Engine, EngineSink};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_core::venue_stats::{StatsRow, VenueStats};
use flowcore_outputs::jsonl::write_stats_row;
use flowcore_shm::{BusConfig, Publisher};
use flowcore_tools::demo::private_bus_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A bus directory on tmpfs when there is one, removed when dropped (a failed test's too:
/// /dev/shm is memory, and test machines are kept between runs).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = private_bus_dir(&format!("clients-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// Compiles the C example with the system compiler.
fn compile_c_example(out: &Path) -> PathBuf {
    let exe = out.join("tail_bars");
    let status = Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(repo().join("shm/include"))
        .arg(repo().join("shm/examples/c/tail_bars.c"))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "the C example does not compile");
    exe
}

fn shm_tail() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowcore"));
    c.args(["shm-tail", "--from-oldest", "--json"]);
    c
}

fn python_reader() -> Command {
    let mut c = Command::new("python3");
    c.arg(repo().join("shm/python/flowcore_shm.py"));
    c
}

fn assert_same(what: &str, got: &Output, want: &[String]) {
    assert!(
        got.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    let got = sorted_lines(&got.stdout);
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "{what}: first differing row");
    }
}

#[test]
fn c_and_python_readers_follow_a_live_replay_exactly() {
    let dir = scratch("live");
    let bus = dir.join("bus");
    let c_exe = compile_c_example(&dir);
    let data = repo().join("data/binance");
    // Paced so that the readers join while the writer is still publishing.
    let mut writer = Command::new(env!("CARGO_BIN_EXE_flowcore"))
        .arg("replay")
        .arg("--shm")
        .arg(&bus)
        .args(["--pace", "150x", "--bars-out"])
        .arg(dir.join("bars.jsonl"))
        .arg("--tops-out")
        .arg(dir.join("tops.jsonl"))
        .arg(format!(
            "binance-spot={}",
            data.join("spot_btcusdt_20240808.txt.gz").display()
        ))
        .arg(format!(
            "binance-usdm={}",
            data.join("usdm_btcusdt_20240808.txt.gz").display()
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(bus.join("bars.ring").exists() && bus.join("tops.ring").exists()) {
        assert!(
            Instant::now() < deadline,
            "the writer never created its bus"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let spawn = |mut c: Command| {
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut py = python_reader();
    py.arg(&bus)
        .args(["--from-oldest", "--json", "--streams", "bars,tops"]);
    let py = spawn(py);
    let mut c = Command::new(&c_exe);
    c.arg(&bus).args(["--streams", "bars,tops"]);
    let c = spawn(c);
    let writer_was_live = writer.try_wait().unwrap().is_none();
    assert!(writer.wait().unwrap().success());
    assert!(
        writer_was_live,
        "the readers started after the writer had finished"
    );
    let py = py.wait_with_output().unwrap();
    let c = c.wait_with_output().unwrap();
    let mut want = sorted_lines(&std::fs::read(dir.join("bars.jsonl")).unwrap());
    want.extend(sorted_lines(
        &std::fs::read(dir.join("tops.jsonl")).unwrap(),
    ));
    want.sort();
    assert!(want.len() > 1500);
    assert_same("python reader", &py, &want);
    assert_same("C example", &c, &want);
}

#[test]
fn the_clients_refuse_a_newer_abi_version_clearly() {
    let dir = scratch("newer");
    let bus = dir.join("bus");
    let data = repo().join("data/binance");
    let status = Command::new(env!("CARGO_BIN_EXE_flowcore"))
        .arg("replay")
        .arg("--shm")
        .arg(&bus)
        .arg(format!(
            "binance-usdm={}",
            data.join("usdm_btcusdt_20240808.txt.gz").display()
        ))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // ABI version 2 in every file (offset 8, little-endian u32).
    for entry in std::fs::read_dir(&bus).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.len() >= 256 {
            bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let c_exe = compile_c_example(&dir);
    let mut py = python_reader();
    let py = py
        .arg(&bus)
        .args(["--from-oldest", "--json"])
        .output()
        .unwrap();
    let c = Command::new(&c_exe).arg(&bus).output().unwrap();
    let rust = Command::new(env!("CARGO_BIN_EXE_flowcore"))
        .args(["shm-tail", "--from-oldest"])
        .arg(&bus)
        .output()
        .unwrap();
    for (who, out) in [("python", &py), ("C", &c), ("shm-tail", &rust)] {
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "{who} read a newer ABI");
        assert!(
            out.stdout.is_empty(),
            "{who} printed records of a newer ABI"
        );
        assert!(
            err.contains("version") && err.contains('2'),
            "{who} says why: {err}"
        );
    }
}

#[test]
fn the_python_and_c_readers_decode_signals_as_the_signal_rows() {
    let dir = scratch("signals");
    let bus = dir.join("bus");
    let data = repo().join("data/binance");
    let status = Command::new(env!("CARGO_BIN_EXE_flowcore"))
        .arg("replay")
        .arg("--shm")
        .arg(&bus)
        .arg("--strategies")
        .arg(repo().join("config/strategies/short.toml"))
        .arg("--signals-out")
        .arg(dir.join("signals.jsonl"))
        .arg(format!(
            "binance-spot={}",
            data.join("spot_btcusdt_20240808.txt.gz").display()
        ))
        .arg(format!(
            "binance-spot={}",
            data.join("spot_btcusdt_20240809.txt.gz").display()
        ))
        .arg(format!(
            "binance-usdm={}",
            data.join("usdm_btcusdt_20240808.txt.gz").display()
        ))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut py = python_reader();
    let py = py
        .arg(&bus)
        .args(["--from-oldest", "--json", "--streams", "signals"])
        .output()
        .unwrap();
    let c = Command::new(compile_c_example(&dir))
        .arg(&bus)
        .args(["--streams", "signals"])
        .output()
        .unwrap();
    let rust = shm_tail()
        .args(["--streams", "signals"])
        .arg(&bus)
        .output()
        .unwrap();
    // Whole rows: the strategy's name comes from strategies.table.
    let want = sorted_lines(&std::fs::read(dir.join("signals.jsonl")).unwrap());
    assert!(want.len() >= 4, "{want:?}");
    assert!(
        want.iter().all(|r| r.contains(",\"strategy\":\"")),
        "every row names its strategy: {want:?}"
    );
    assert_same("python reader", &py, &want);
    assert_same("C example", &c, &want);
    assert_same("shm-tail", &rust, &want);
    // The bus of a writer older than strategies.table: the same signals, without names.
    std::fs::remove_file(bus.join("strategies.table")).unwrap();
    let py = python_reader()
        .arg(&bus)
        .args(["--from-oldest", "--json", "--streams", "signals"])
        .output()
        .unwrap();
    let c = Command::new(dir.join("tail_bars"))
        .arg(&bus)
        .args(["--streams", "signals"])
        .output()
        .unwrap();
    for (who, out) in [("python reader", py), ("C example", c)] {
        assert!(out.status.success(), "{who} without strategies.table");
        let rows = sorted_lines(&out.stdout);
        assert_eq!(rows.len(), want.len(), "{who} without strategies.table");
        assert!(rows.iter().all(|r| !r.contains("\"strategy\":")), "{who}");
    }
}

/// Hand-made rows (no recording carries venue statistics yet): every field set, none set,
/// negative and zero values, a COIN-M symbol whose open interest is in whole contracts.
fn stats_rows(table: &InstrumentTable) -> Vec<StatsRow> {
    let usdm = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let coinm = table.find(Venue::BinanceCoinm, b"BTCUSD_PERP").unwrap();
    let full = VenueStats {
        mark_px: Some(6_012_345_678_901),
        index_px: Some(6_011_000_000_000),
        open_interest: Some(81_234_567),
        funding_rate: Some(-12_345),
        next_funding_ms: Some(1_723_132_800_000),
        updated_ns: Some(1_723_104_000_500_000_000),
    };
    vec![
        StatsRow {
            inst: usdm,
            ts_ms: 1_723_104_000_000,
            stats: full,
        },
        StatsRow {
            inst: usdm,
            ts_ms: 1_723_104_001_000,
            stats: VenueStats {
                funding_rate: Some(0),
                open_interest: Some(0),
                ..full
            },
        },
        StatsRow {
            inst: coinm,
            ts_ms: 1_723_104_000_000,
            stats: VenueStats {
                mark_px: Some(1),
                open_interest: Some(4_567_890),
                updated_ns: Some(7),
                ..VenueStats::default()
            },
        },
        StatsRow {
            inst: coinm,
            ts_ms: 1_723_104_002_000,
            stats: VenueStats::default(),
        },
    ]
}

#[test]
fn every_reader_prints_the_bus_stats_as_the_stats_rows_and_nothing_without_the_ring() {
    let dir = scratch("stats");
    let bus = dir.join("bus");
    let table = InstrumentTable::binance_defaults();
    let engine = Engine::new(table.clone(), ImbalanceConfig::default(), None).unwrap();
    let rows = stats_rows(&table);
    let mut publisher = Publisher::create(&BusConfig::new(&bus), &engine).unwrap();
    for row in &rows {
        publisher.stats(row);
    }
    // The writer is gone: every reader reads up to the end and stops.
    drop(publisher);
    let mut text = String::new();
    for row in &rows {
        let i = table.get(row.inst);
        write_stats_row(&mut text, i.venue.name(), &i.symbol, i.size_scale, row);
    }
    let want = sorted_lines(text.as_bytes());
    assert_eq!(want.len(), rows.len());
    let c_exe = compile_c_example(&dir);
    let read = |bus: &Path| {
        let py = python_reader()
            .arg(bus)
            .args(["--from-oldest", "--json", "--streams", "stats"])
            .output()
            .unwrap();
        let c = Command::new(&c_exe)
            .arg(bus)
            .args(["--streams", "stats"])
            .output()
            .unwrap();
        let rust = shm_tail()
            .args(["--streams", "stats"])
            .arg(bus)
            .output()
            .unwrap();
        [("python reader", py), ("C example", c), ("shm-tail", rust)]
    };
    for (who, out) in read(&bus) {
        assert_same(who, &out, &want);
    }
    // The bus of a writer older than stats.ring and strategies.table: no stats, no error.
    std::fs::remove_file(bus.join("stats.ring")).unwrap();
    std::fs::remove_file(bus.join("strategies.table")).unwrap();
    for (who, out) in read(&bus) {
        assert_same(&format!("{who} without stats.ring"), &out, &[]);
    }
}
