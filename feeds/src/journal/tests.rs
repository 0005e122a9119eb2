use super::format::{list_segments, SEGMENT_HEADER};
use super::*;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowcore-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn small(compress: bool) -> JournalOptions {
    JournalOptions {
        segment_bytes: MIN_SEGMENT_BYTES,
        compress,
    }
}

/// Frame `i` of a stream: sizes vary from a few bytes to a fifth of a segment.
fn frame(stream: usize, i: usize) -> Vec<u8> {
    let len = 1 + (i * 7919 + stream * 31) % 13_000;
    (0..len)
        .map(|k| b'a' + ((k + i + stream) % 26) as u8)
        .collect()
}

/// Writes `n` frames round-robin over two streams; what each stream should read back.
fn write_two_streams(journal: &mut JournalWriter, n: usize) -> Vec<Vec<(i64, Vec<u8>)>> {
    let ids = [
        journal.open_stream("binance-spot_btcusdt", 10).unwrap(),
        journal.open_stream("binance-usdm_btcusdt", 11).unwrap(),
    ];
    let mut want = vec![Vec::new(), Vec::new()];
    for i in 0..n {
        let s = i % 2;
        let bytes = frame(s, i);
        let (a, b) = bytes.split_at(bytes.len() / 3);
        let kind = if i % 50 == 0 {
            RecordKind::Rest
        } else {
            RecordKind::Frame
        };
        assert!(journal
            .append(kind, ids[s], 1_000 + i as i64, [a, b])
            .unwrap());
        want[s].push((1_000 + i as i64, bytes));
    }
    want
}

fn read_stream(index: &std::sync::Arc<JournalIndex>, id: u32) -> Vec<(i64, Vec<u8>)> {
    let mut reader = index.stream(id);
    let mut got = Vec::new();
    while let Some((ts, bytes)) = reader.next_line().unwrap() {
        got.push((ts, bytes.to_vec()));
    }
    got
}

#[test]
fn streams_read_back_across_rotated_segments_and_each_segment_names_its_streams() {
    let dir = temp("rotate");
    let (mut journal, repaired) = JournalWriter::open(&dir, small(false)).unwrap();
    assert_eq!(repaired, None);
    let want = write_two_streams(&mut journal, 600);
    let stats = journal.finish().unwrap();
    assert!(stats.segments > 20, "{stats:?}");
    let index = JournalIndex::open(&dir).unwrap();
    assert_eq!(index.segments() as u64, stats.segments);
    assert_eq!(index.torn(), None);
    let names: Vec<_> = index
        .streams()
        .iter()
        .map(|s| (s.id, s.name.as_str(), s.lines))
        .collect();
    assert_eq!(
        names,
        [
            (0, "binance-spot_btcusdt", 300),
            (1, "binance-usdm_btcusdt", 300)
        ]
    );
    assert_eq!(read_stream(&index, 0), want[0]);
    assert_eq!(read_stream(&index, 1), want[1]);
    // Sealed segments are cut to their records; the journal holds no preallocated slack.
    let on_disk: u64 = list_segments(&dir)
        .unwrap()
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum();
    assert_eq!(
        on_disk,
        stats.bytes + SEGMENT_HEADER as u64 * stats.segments
    );

    // Without its first half (retention deleted it), the journal still knows both streams.
    let segments = list_segments(&dir).unwrap();
    for s in &segments[..segments.len() / 2] {
        std::fs::remove_file(&s.path).unwrap();
    }
    let rest = JournalIndex::open(&dir).unwrap();
    assert_eq!(rest.streams().len(), 2);
    let tail = read_stream(&rest, 1);
    assert!(!tail.is_empty() && want[1].ends_with(&tail));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_tail_is_reported_by_the_reader_and_cut_off_when_the_journal_is_opened_again() {
    let dir = temp("torn");
    let (mut journal, _) = JournalWriter::open(&dir, small(false)).unwrap();
    let want = write_two_streams(&mut journal, 40);
    // The run dies: no seal, the last segment keeps its preallocated length.
    drop(journal);
    let last = list_segments(&dir).unwrap().pop().unwrap();
    let bytes = std::fs::read(&last.path).unwrap();
    assert_eq!(bytes.len(), MIN_SEGMENT_BYTES);
    let clean = JournalIndex::open(&dir).unwrap();
    assert_eq!(
        clean.torn(),
        None,
        "an unsealed segment is not torn by itself"
    );
    assert_eq!(read_stream(&clean, 0), want[0]);

    // Damage the last record's payload: a write the crash cut short.
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER;
    while let format::Slot::Record(_, next) = format::read_slot(&bytes, at) {
        offsets.push(at);
        at = next;
    }
    let torn_at = *offsets.last().unwrap();
    let mut damaged = bytes.clone();
    damaged[torn_at + 30] ^= 1;
    std::fs::write(&last.path, &damaged).unwrap();

    let index = JournalIndex::open(&dir).unwrap();
    let torn = index.torn().expect("torn tail seen");
    assert_eq!(
        (torn.offset, torn.why),
        (torn_at as u64, "checksum mismatch")
    );
    let lost_stream = (want[0].len() + want[1].len() - 1) % 2;
    let mut expect = want.clone();
    expect[lost_stream].pop();
    assert_eq!(read_stream(&index, 0), expect[0]);
    assert_eq!(read_stream(&index, 1), expect[1]);

    let (mut again, repair) = JournalWriter::open(&dir, small(false)).unwrap();
    let repair = repair.expect("repaired");
    assert_eq!(repair.tail.offset, torn_at as u64);
    assert_eq!(repair.records as usize, offsets.len() - 1);
    assert_eq!(std::fs::metadata(&last.path).unwrap().len(), torn_at as u64);
    let third = again.open_stream("bybit-linear_btcusdt", 5_000).unwrap();
    assert_eq!(third, 2, "stream ids go on after the journal's");
    again
        .append(RecordKind::Frame, third, 5_001, [b"x", b""])
        .unwrap();
    again.finish().unwrap();
    let index = JournalIndex::open(&dir).unwrap();
    assert_eq!(index.torn(), None);
    assert_eq!(read_stream(&index, 2), [(5_001, b"x".to_vec())]);
    assert_eq!(read_stream(&index, 1), expect[1]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn damage_inside_a_sealed_segment_is_an_error_naming_the_file_and_offset() {
    let dir = temp("damage");
    let (mut journal, _) = JournalWriter::open(&dir, small(false)).unwrap();
    write_two_streams(&mut journal, 100);
    journal.finish().unwrap();
    let first = &list_segments(&dir).unwrap()[0];
    let mut bytes = std::fs::read(&first.path).unwrap();
    bytes[SEGMENT_HEADER + 200] ^= 0xff;
    std::fs::write(&first.path, &bytes).unwrap();
    let e = JournalIndex::open(&dir).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, JournalError::Corrupt { .. }) && text.contains("00000000.fcj"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn compressed_segments_read_back_the_same_and_oversized_records_are_counted() {
    let dir = temp("zstd");
    let (mut journal, _) = JournalWriter::open(&dir, small(true)).unwrap();
    let want = write_two_streams(&mut journal, 300);
    let huge = vec![b'z'; MIN_SEGMENT_BYTES];
    assert!(!journal
        .append(RecordKind::Frame, 0, 9, [&huge, b""])
        .unwrap());
    let stats = journal.finish().unwrap();
    assert_eq!(stats.oversized, 1);
    assert_eq!(stats.compressed, stats.segments);
    assert!(stats.compressed_to * 3 < stats.compressed_from, "{stats:?}");
    let files = list_segments(&dir).unwrap();
    assert!(files.iter().all(|s| s.compressed), "{files:?}");
    let index = JournalIndex::open(&dir).unwrap();
    assert_eq!(read_stream(&index, 0), want[0]);
    assert_eq!(read_stream(&index, 1), want[1]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn foreign_files_and_sizes_are_refused_with_their_reason() {
    let dir = temp("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(
        JournalIndex::open(&dir),
        Err(JournalError::Empty(_))
    ));
    std::fs::write(dir.join("00000000.fcj"), vec![7u8; 100]).unwrap();
    let e = JournalIndex::open(&dir).unwrap_err();
    assert!(
        e.to_string().contains("not a flowcore journal segment"),
        "{e}"
    );
    let tiny = JournalOptions {
        segment_bytes: 1000,
        compress: false,
    };
    assert!(matches!(
        JournalWriter::open(&dir, tiny),
        Err(JournalError::SegmentSize(1000))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}
