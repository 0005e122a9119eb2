//! The bus within one process: round trips, reader positions, lapping, writer restarts,
//! the writer lock, and every way a file can be refused.

use flowcore_shm::abi::{BarRecord, Record, SymbolRecord, HEADER_SIZE};
use flowcore_shm::{
    writer_alive, BusConfig, BusReader, BusWriter, Capacities, Idle, MappedFile, ReadFrom,
    RingReader, RingWriter, ShmError,
};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// A fresh directory under /dev/shm (tmpfs, as in production), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("flowcore-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small(dir: &TempDir) -> BusConfig {
    let mut c = BusConfig::new(&dir.0);
    c.capacities = Capacities {
        bars: 8,
        tops: 8,
        trades: 8,
        bbo: 8,
        health: 8,
        signals: 8,
    };
    c
}

fn symbols() -> Vec<SymbolRecord> {
    (0..3)
        .map(|k| SymbolRecord {
            symbol_id: k,
            symbol: flowcore_shm::padded(&format!("SYM{k}")),
            price_scale: 2,
            ..bytemuck::Zeroable::zeroed()
        })
        .collect()
}

fn bar(seq: i64) -> BarRecord {
    BarRecord {
        ts_ms: seq * 1000,
        cvd: -seq,
        trades: seq as u32,
        ..bytemuck::Zeroable::zeroed()
    }
}

#[test]
fn records_round_trip_in_order_from_each_start_position() {
    let dir = TempDir::new("roundtrip");
    let mut w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    for s in 0..5 {
        w.bars.publish(&bar(s));
    }
    let mut oldest = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    let mut latest = BusReader::open(&dir.0, ReadFrom::Latest).unwrap();
    let mut next = BusReader::open(&dir.0, ReadFrom::Next).unwrap();
    assert_eq!(oldest.symbols.len(), 3);
    assert_eq!(
        flowcore_shm::text(&oldest.symbol(2).unwrap().symbol),
        "SYM2"
    );
    let got: Vec<i64> = std::iter::from_fn(|| oldest.bars.try_read())
        .map(|b| b.ts_ms)
        .collect();
    assert_eq!(got, [0, 1000, 2000, 3000, 4000]);
    assert_eq!(latest.bars.try_read().map(|b| b.ts_ms), Some(4000));
    assert_eq!(latest.bars.try_read(), None);
    assert_eq!(next.bars.try_read(), None);
    w.bars.publish(&bar(5));
    assert_eq!(next.bars.try_read(), Some(bar(5)));
    assert_eq!(latest.bars.try_read(), Some(bar(5)));
    assert_eq!(oldest.bars.stats().lapped, 0);
}

#[test]
fn a_lapped_reader_skips_to_the_oldest_record_and_counts_the_loss() {
    let dir = TempDir::new("lapped");
    let mut w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    let mut r = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    for s in 0..20 {
        w.bars.publish(&bar(s));
    }
    let got: Vec<i64> = std::iter::from_fn(|| r.bars.try_read())
        .map(|b| -b.cvd)
        .collect();
    // Capacity 8: records 12..20 are still there, 0..12 were overwritten.
    assert_eq!(got, (12..20).collect::<Vec<_>>());
    assert_eq!(r.bars.stats().lapped, 12);
}

#[test]
fn a_reader_follows_a_restarted_writer_to_its_new_file() {
    let dir = TempDir::new("restart");
    let config = small(&dir);
    let mut w = BusWriter::create(&config, &symbols()).unwrap();
    w.bars.publish(&bar(1));
    let first_epoch = w.epoch();
    let mut r = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    assert_eq!(r.bars.try_read(), Some(bar(1)));
    drop(w);
    assert!(!writer_alive(&dir.0));
    let mut w = BusWriter::create(&config, &symbols()).unwrap();
    assert!(w.epoch() > first_epoch);
    assert!(writer_alive(&dir.0));
    w.bars.publish(&bar(7));
    // The old mapping stays valid and simply shows nothing new.
    assert_eq!(r.bars.try_read(), None);
    assert_eq!(
        r.bars
            .read_blocking(Idle::Yield, Some(Duration::from_secs(5))),
        Some(bar(7))
    );
    assert_eq!(r.bars.stats().restarts, 1);
    assert_eq!(r.bars.header().writer_epoch, w.epoch());
}

#[test]
fn a_second_writer_is_refused_while_the_first_lives() {
    let dir = TempDir::new("lock");
    let w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    match BusWriter::create(&small(&dir), &symbols()) {
        Err(ShmError::WriterActive(d)) => assert_eq!(d, dir.0),
        other => panic!("expected WriterActive, got {other:?}"),
    }
    drop(w);
    BusWriter::create(&small(&dir), &symbols()).unwrap();
}

#[test]
fn files_are_private_and_stale_leftovers_never_stop_a_start() {
    let dir = TempDir::new("stale");
    std::fs::create_dir_all(&dir.0).unwrap();
    // A dead writer's temporary and a garbage file where a ring belongs.
    std::fs::write(dir.0.join(".bars.ring.tmp.999999"), b"junk").unwrap();
    std::fs::write(dir.0.join("bars.ring"), b"not a ring").unwrap();
    std::fs::write(dir.0.join("symbols.table"), b"x").unwrap();
    let _w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    assert!(!dir.0.join(".bars.ring.tmp.999999").exists());
    let mode = std::fs::metadata(dir.0.join("bars.ring"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
}

/// Copies the bars ring to a scratch directory with `patch` applied, and opens it.
fn open_patched(name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> Result<(), ShmError> {
    let dir = TempDir::new(name);
    let mut w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    w.bars.publish(&bar(1));
    let mut bytes = std::fs::read(dir.0.join("bars.ring")).unwrap();
    let copy = TempDir::new(&format!("{name}-copy"));
    std::fs::create_dir_all(&copy.0).unwrap();
    patch(&mut bytes);
    std::fs::write(copy.0.join("bars.ring"), &bytes).unwrap();
    RingReader::<BarRecord>::open(&copy.0, ReadFrom::Oldest).map(|_| ())
}

#[test]
fn damaged_or_foreign_files_are_refused_with_the_reason() {
    assert!(open_patched("intact", |_| {}).is_ok());
    match open_patched("truncated", |b| b.truncate(b.len() - 64)) {
        Err(ShmError::Truncated { .. }) => {}
        other => panic!("truncated: {other:?}"),
    }
    match open_patched("short", |b| b.truncate(100)) {
        Err(ShmError::Truncated { size: 100, .. }) => {}
        other => panic!("short: {other:?}"),
    }
    match open_patched("magic", |b| b[0] ^= 0xff) {
        Err(ShmError::BadHeader { why, .. }) => assert!(why.contains("magic"), "{why}"),
        other => panic!("magic: {other:?}"),
    }
    match open_patched("newer", |b| b[8..12].copy_from_slice(&2u32.to_le_bytes())) {
        Err(
            e @ ShmError::AbiVersion {
                found: 2,
                supported: 1,
                ..
            },
        ) => {
            assert!(e.to_string().contains("supports version 1"), "{e}")
        }
        other => panic!("newer: {other:?}"),
    }
    match open_patched("layout", |b| b[24] ^= 1) {
        Err(ShmError::BadHeader { why, .. }) => assert!(why.contains("layout"), "{why}"),
        other => panic!("layout: {other:?}"),
    }
    match open_patched("capacity", |b| {
        b[40..48].copy_from_slice(&6u64.to_le_bytes())
    }) {
        Err(ShmError::BadHeader { why, .. }) => assert!(why.contains("capacity"), "{why}"),
        other => panic!("capacity: {other:?}"),
    }
    assert_eq!(HEADER_SIZE, 256);
}

#[test]
fn a_file_system_without_room_fails_at_creation_with_a_clear_error() {
    let dir = TempDir::new("nospace");
    std::fs::create_dir_all(&dir.0).unwrap();
    // 2^40 slots of 128 bytes: far beyond any tmpfs, refused by fallocate up front.
    match RingWriter::<BarRecord>::create(&dir.0, 1 << 40, 1, 1, Default::default()) {
        Err(e @ ShmError::NoSpace { .. }) => assert!(e.to_string().contains("reserve"), "{e}"),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(
        std::fs::read_dir(&dir.0).unwrap().next().is_none(),
        "no file left behind"
    );
    // A mapped file of another stream is refused by type too.
    let _ = BarRecord::LAYOUT_HASH;
    assert!(MappedFile::open::<SymbolRecord>(&dir.0).is_err());
}
