//! A writer process publishing as fast as it can into a small ring, and readers in another
//! process (one keeping up, one made slow so that it is lapped): every record carries a
//! checksum, and no record that fails it may ever be returned.

use flowcore_shm::abi::BarRecord;
use flowcore_shm::{BusConfig, BusReader, BusWriter, Capacities, Idle, ReadFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RECORDS: u64 = 1_000_000;
const DIR_ENV: &str = "FLOWCORE_SHM_CHILD_DIR";

/// Record `seq`: every field a different function of `seq`, `trades` a checksum over them.
fn record(seq: u64) -> BarRecord {
    let mix = |k: u64| (seq.wrapping_add(k)).wrapping_mul(0x9e37_79b9_7f4a_7c15) as i64;
    let mut r = BarRecord {
        ts_ms: seq as i64,
        symbol_id: (seq % 7) as u32,
        flags: 1,
        open: mix(1),
        high: mix(2),
        low: mix(3),
        close: mix(4),
        buy_qty: mix(5),
        sell_qty: mix(6),
        delta: mix(7),
        cvd: mix(8),
        vwap: mix(9),
        buy_notional: mix(10),
        sell_notional: mix(11),
        trades: 0,
        members: 0,
        publish_ns: mix(12),
    };
    r.trades = checksum(&r);
    r
}

fn checksum(r: &BarRecord) -> u32 {
    let mut c = *r;
    c.trades = 0;
    let words: &[u64] = bytemuck::cast_slice(core::slice::from_ref(&c));
    let h = words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
        (h ^ w).wrapping_mul(0x100_0000_01b3)
    });
    (h ^ (h >> 32)) as u32
}

fn config(dir: &Path) -> BusConfig {
    let mut c = BusConfig::new(dir);
    c.capacities = Capacities {
        bars: 256,
        tops: 8,
        trades: 8,
        bbo: 8,
        health: 8,
        signals: 8,
    };
    c
}

/// The writer process: runs only when the parent test starts it.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut w = BusWriter::create(&config(&dir), &[]).unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    // Readers open the bus, then touch `go`. A parent that died never does: give up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("go").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 0..RECORDS {
        w.bars.publish(&record(seq));
    }
    // The end marker.
    w.bars.publish(&BarRecord {
        ts_ms: -1,
        ..bytemuck::Zeroable::zeroed()
    });
    // Stay alive until the readers are done so the lock and files stay.
    while !dir.join("done").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the writer if the test fails before it ends (it holds the test's output pipe).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the test `child` of this binary as the writer process for a fresh directory, and
/// waits until it says it is ready.
fn start_writer(name: &str, child: &str) -> (PathBuf, KillOnDrop) {
    let dir = std::env::temp_dir().join(format!("flowcore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", child, "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, &dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while !dir.join("ready").exists() {
        assert!(child.0.try_wait().unwrap().is_none(), "writer exited early");
        std::thread::sleep(Duration::from_millis(2));
    }
    (dir, child)
}

struct Seen {
    received: u64,
    lapped: u64,
    torn: u64,
}

fn follow(dir: PathBuf, slow: bool) -> Seen {
    let mut bus = BusReader::open(&dir, ReadFrom::Oldest).unwrap();
    let mut received = 0u64;
    let mut last: i64 = -1;
    loop {
        let r = bus
            .bars
            .read_blocking(Idle::Yield, Some(Duration::from_secs(30)))
            .expect("the writer stopped publishing before its end marker");
        if r.ts_ms == -1 {
            break;
        }
        assert_eq!(r.trades, checksum(&r), "torn record accepted: {r:?}");
        assert_eq!(
            r,
            record(r.ts_ms as u64),
            "record does not match its sequence"
        );
        assert!(r.ts_ms > last, "out of order: {} after {last}", r.ts_ms);
        last = r.ts_ms;
        received += 1;
        if slow && received.is_multiple_of(20_000) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let s = bus.bars.stats();
    Seen {
        received,
        lapped: s.lapped,
        torn: s.torn,
    }
}

#[test]
fn readers_in_another_process_never_accept_a_torn_record() {
    let (dir, mut child) = start_writer("xproc", "child_writer");
    let readers: Vec<_> = [false, true]
        .map(|slow| {
            let dir = dir.clone();
            std::thread::spawn(move || follow(dir, slow))
        })
        .into_iter()
        .collect();
    // Both readers have opened before the writer starts (opening takes a few ms).
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(dir.join("go"), b"").unwrap();
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    std::fs::write(dir.join("done"), b"").unwrap();
    assert!(child.0.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
    for (i, s) in seen.iter().enumerate() {
        eprintln!(
            "reader {i}: received {} lapped {} torn copies refused {}",
            s.received, s.lapped, s.torn
        );
        // Nothing vanishes unaccounted: every record was either read or counted as lapped.
        assert_eq!(s.received + s.lapped, RECORDS, "reader {i}");
    }
    assert!(
        seen[1].lapped > 0,
        "the slow reader was never lapped: the test lost its point"
    );
}

/// A writer that publishes, then hangs until killed.
#[test]
fn child_writer_that_gets_killed() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut w = BusWriter::create(&config(&dir), &[]).unwrap();
    for seq in 0..100 {
        w.bars.publish(&record(seq));
    }
    std::fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_writer_is_seen_dead_and_a_new_writer_is_followed() {
    let (dir, mut child) = start_writer("crash", "child_writer_that_gets_killed");
    let mut bus = BusReader::open(&dir, ReadFrom::Oldest).unwrap();
    assert!(bus.writer_alive());
    assert!(
        BusWriter::create(&config(&dir), &[]).is_err(),
        "a second writer while the first lives"
    );
    let old_epoch = bus.epoch();
    for seq in 0..100 {
        assert_eq!(bus.bars.try_read(), Some(record(seq)));
    }
    // SIGKILL: no destructor, no cleanup; the kernel drops the lock.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(
        !bus.writer_alive(),
        "the lock of a killed writer is released"
    );
    let mut w = BusWriter::create(&config(&dir), &[]).unwrap();
    assert!(w.epoch() > old_epoch);
    w.bars.publish(&record(500));
    let got = bus
        .bars
        .read_blocking(Idle::Yield, Some(Duration::from_secs(5)));
    assert_eq!(got, Some(record(500)));
    assert_eq!(bus.bars.stats().restarts, 1);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}
