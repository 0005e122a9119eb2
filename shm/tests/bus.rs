//! The bus within one process: round trips, reader positions, lapping, writer restarts,
//! the writer lock, and every way a file can be refused.

use flowcore_core::bars::{AggregateId, BarKey};
use flowcore_core::engine::{Engine, EngineSink};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentId, InstrumentTable};
use flowcore_core::strategy::StrategyId;
use flowcore_core::venue_stats::{StatsRow, VenueStats};
use flowcore_shm::abi::{
    flags, BarRecord, Record, StatsRecord, StrategyRecord, SymbolRecord, HEADER_SIZE,
    STRATEGY_SLOTS,
};
use flowcore_shm::publish::stats_from_record;
use flowcore_shm::{
    text, writer_alive, BusConfig, BusReader, BusWriter, Capacities, Idle, MappedFile, Publisher,
    ReadFrom, RingReader, RingWriter, ShmError,
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

/// With a group, the lock file is the group's to read like every stream file (a reader of
/// that group probes the writer's liveness through it), even where an earlier writer left
/// it owner-only.
#[test]
fn a_groups_reader_can_probe_the_writer_lock() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("lock-group");
    std::fs::create_dir_all(&dir.0).unwrap();
    let lock = dir.0.join(flowcore_shm::LOCK_FILE);
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Our own group: chown to it is allowed for any user.
    let gid = std::fs::metadata(&dir.0).unwrap().gid();
    let mut config = small(&dir);
    config.permissions.group = Some(gid);
    let _w = BusWriter::create(&config, &symbols()).unwrap();
    for name in [flowcore_shm::LOCK_FILE, "bars.ring"] {
        let meta = std::fs::metadata(dir.0.join(name)).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, gid), "{name}");
    }
    assert!(writer_alive(&dir.0));
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

fn engine() -> Engine {
    Engine::new(
        InstrumentTable::binance_defaults(),
        ImbalanceConfig::default(),
        None,
    )
    .unwrap()
}

#[test]
fn stats_rows_read_back_as_published_with_each_field_present_or_not() {
    let dir = TempDir::new("stats");
    let engine = engine();
    let mut p = Publisher::create(&small(&dir), &engine).unwrap();
    let full = VenueStats {
        mark_px: Some(6_012_345_000_000),
        index_px: Some(-1),
        open_interest: Some(0),
        funding_rate: Some(-7_500),
        next_funding_ms: Some(1_723_104_000_000),
        updated_ns: Some(1_723_100_000_123_456_789),
    };
    let rows = [
        StatsRow {
            inst: InstrumentId(1),
            ts_ms: 1_723_100_000_000,
            stats: full,
        },
        StatsRow {
            inst: InstrumentId(2),
            ts_ms: 1_723_100_001_000,
            stats: VenueStats {
                open_interest: Some(42),
                updated_ns: Some(5),
                ..VenueStats::default()
            },
        },
        StatsRow {
            inst: InstrumentId(0),
            ts_ms: 0,
            stats: VenueStats::default(),
        },
    ];
    for row in &rows {
        p.stats(row);
    }
    assert_eq!(p.published(), 3);
    let mut r = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    let ring = r.stats.as_mut().expect("a stats ring");
    let got: Vec<StatsRecord> = std::iter::from_fn(|| ring.try_read()).collect();
    assert_eq!(got.len(), rows.len());
    for (rec, row) in got.iter().zip(&rows) {
        assert_eq!(stats_from_record(rec, row.inst), *row);
        assert_eq!(rec.symbol_id, u32::from(row.inst.0));
        assert!(rec.publish_ns > 0);
    }
    // Zero is a value: presence is in the flags, never in the field.
    assert_eq!(got[0].flags, 0b11_1111);
    assert_eq!(got[0].open_interest, 0);
    assert_eq!(
        got[1].flags,
        flags::STATS_HAS_OPEN_INTEREST | flags::STATS_HAS_LOCAL_NS
    );
    assert_eq!((got[1].mark_px, got[1].funding_rate), (0, 0));
    assert_eq!(got[2].flags, 0);
    // As many slots as the tops ring, whatever the capacities.
    assert_eq!(ring.header().capacity, small(&dir).capacities.tops);
}

#[test]
fn strategy_names_are_published_once_at_their_ids_and_the_rest_counted() {
    let dir = TempDir::new("strategies");
    let engine = engine();
    let instruments = engine.table().len() as u32;
    let mut p = Publisher::create(&small(&dir), &engine).unwrap();
    let mut r = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    assert_eq!(r.strategy(0), None, "empty until the strategies are known");
    let long = "a_name_longer_than_thirty_two_bytes";
    let instances = [
        (
            StrategyId(0),
            "ema_cross",
            BarKey::Instrument(InstrumentId(1)),
        ),
        (
            StrategyId(1),
            "squeeze_flow",
            BarKey::Aggregate(AggregateId(1)),
        ),
        (StrategyId(2), long, BarKey::Instrument(InstrumentId(0))),
        (StrategyId(255), "rsi", BarKey::Instrument(InstrumentId(0))),
        (StrategyId(256), "macd", BarKey::Instrument(InstrumentId(0))),
    ];
    assert_eq!(p.strategies(instances), 2);
    assert_eq!(p.strategies_refused(), 2);
    assert_eq!(p.published(), 3);
    let name = |r: &mut BusReader, id| r.strategy(id).map(|s| text(&s.name).to_owned());
    assert_eq!(name(&mut r, 0).as_deref(), Some("ema_cross"));
    assert_eq!(name(&mut r, 1).as_deref(), Some("squeeze_flow"));
    assert_eq!(name(&mut r, 2), None, "a cut name would be another's");
    assert_eq!(name(&mut r, 255).as_deref(), Some("rsi"));
    assert_eq!(name(&mut r, 256), None);
    assert_eq!(name(&mut r, 3), None);
    let squeeze: StrategyRecord = r.strategy(1).unwrap();
    assert_eq!(
        (squeeze.strategy_id, squeeze.symbol_id),
        (1, instruments + 1),
        "aggregates after the instruments, as in signals"
    );
    assert_eq!(r.strategy(0).unwrap().symbol_id, 1);
    assert_eq!(r.strategies.as_ref().unwrap().capacity(), STRATEGY_SLOTS);
}

#[test]
fn a_bus_of_an_older_writer_without_stats_or_strategies_still_opens() {
    let dir = TempDir::new("older");
    let mut w = BusWriter::create(&small(&dir), &symbols()).unwrap();
    w.bars.publish(&bar(3));
    std::fs::remove_file(dir.0.join("stats.ring")).unwrap();
    std::fs::remove_file(dir.0.join("strategies.table")).unwrap();
    let mut r = BusReader::open(&dir.0, ReadFrom::Oldest).unwrap();
    assert!(r.stats.is_none() && r.strategies.is_none());
    assert_eq!(r.strategy(0), None);
    assert_eq!(r.bars.try_read(), Some(bar(3)));
    // Another file missing is a start in progress, not an older writer.
    std::fs::remove_file(dir.0.join("tops.ring")).unwrap();
    assert!(matches!(
        BusReader::open(&dir.0, ReadFrom::Oldest),
        Err(ShmError::Io { .. })
    ));
}

#[test]
fn an_optional_file_of_another_epoch_is_a_start_in_progress() {
    let dir = TempDir::new("optional-epoch");
    let config = small(&dir);
    let w = BusWriter::create(&config, &symbols()).unwrap();
    let old = dir.0.join("old-stats.ring");
    std::fs::copy(dir.0.join("stats.ring"), &old).unwrap();
    drop(w);
    let _w = BusWriter::create(&config, &symbols()).unwrap();
    std::fs::rename(&old, dir.0.join("stats.ring")).unwrap();
    assert!(matches!(
        BusReader::open(&dir.0, ReadFrom::Oldest),
        Err(ShmError::MixedEpochs(_))
    ));
}
