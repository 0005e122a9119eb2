//! The journal's bytes: segment header, record header, checksum, file names.
//!
//! ```text
//! segment file NNNNNNNN.fcj (preallocated to `capacity` while open, cut to `sealed_len` when sealed)
//! +---------------------------+----------+----------+-----+----------------------------+
//! | segment header (64 bytes) | record 0 | record 1 | ... | zeros (open segment only)  |
//! +---------------------------+----------+----------+-----+----------------------------+
//!
//! segment header, little-endian
//!   0  magic        b"FLOWJRNL"
//!   8  version      u32 = 1
//!  12  header_len   u32 = 64
//!  16  index        u64   the segment's number, the file's name
//!  24  capacity     u64   bytes preallocated
//!  32  created_ns   i64   CLOCK_REALTIME when the segment was made
//!  40  sealed_len   u64   0 while open; bytes of header and records once sealed
//!  48  records      u64   records in the segment (set at the seal)
//!  56  next_stream  u32   one past the highest stream id of the journal so far
//!  60  reserved     u32
//!
//! record, at an 8-byte aligned offset, followed by zero padding up to the next multiple of 8
//!   0  len          u32   header and payload bytes (>= 24); 0: nothing written here yet
//!   4  crc          u32   CRC-32 (IEEE) of `len` (its 4 bytes) and bytes 8..len
//!   8  kind         u8    RecordKind
//!   9  reserved     [u8; 3]
//!  12  stream       u32   the connection the record belongs to
//!  16  local_ns     i64   receive time (CLOCK_REALTIME)
//!  24  payload      len - 24 bytes: the frame, REST body or marker as received; the
//!                         stream's name for StreamOpen
//! ```
//!
//! `len` is written after the rest of the record, so a record is either whole or, after a
//! crash between the two (or a power loss with pages written back out of order), fails its
//! checksum: that is the torn tail the writer cuts off when it opens the journal again.

use std::path::{Path, PathBuf};

/// The first 8 bytes of every segment.
pub const MAGIC: [u8; 8] = *b"FLOWJRNL";
/// The layout version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the segment header.
pub const SEGMENT_HEADER: usize = 64;
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 24;
/// Records start at multiples of this.
pub const ALIGN: usize = 8;
/// File suffix of a segment.
pub const SUFFIX: &str = "fcj";
/// File suffix of a segment compressed with zstd when it was sealed.
pub const ZSTD_SUFFIX: &str = "fcj.zst";

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A stream (one connection of one instrument) begins: the payload is its name,
    /// `<venue>_<symbol>`. Repeated at the head of every segment for each live stream, so a
    /// segment can be read without those before it.
    StreamOpen = 1,
    /// A WebSocket message as received.
    Frame = 2,
    /// A REST answer body (a depth snapshot, a trade-history page).
    Rest = 3,
    /// A session marker the feed inserted (`{"flowcore":"stream_break"}`...).
    Marker = 4,
    /// The stream ended (its instrument moved to a new connection, or the run ended).
    StreamClose = 5,
}

impl RecordKind {
    /// Every kind, in code order.
    pub const ALL: [RecordKind; 5] = [
        RecordKind::StreamOpen,
        RecordKind::Frame,
        RecordKind::Rest,
        RecordKind::Marker,
        RecordKind::StreamClose,
    ];

    /// The kind of a code, `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// The kind's name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::StreamOpen => "stream_open",
            RecordKind::Frame => "frame",
            RecordKind::Rest => "rest",
            RecordKind::Marker => "marker",
            RecordKind::StreamClose => "stream_close",
        }
    }

    /// Whether replay reads the record as a line of its stream.
    pub fn is_line(self) -> bool {
        matches!(
            self,
            RecordKind::Frame | RecordKind::Rest | RecordKind::Marker
        )
    }
}

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's number.
    pub index: u64,
    /// Bytes preallocated.
    pub capacity: u64,
    /// When it was made (CLOCK_REALTIME ns).
    pub created_ns: i64,
    /// 0 while open, else the bytes of header and records.
    pub sealed_len: u64,
    /// Records, set at the seal.
    pub records: u64,
    /// One past the highest stream id of the journal so far.
    pub next_stream: u32,
}

/// Why segment bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    #[error("shorter than a segment header")]
    Short,
    /// Not a journal segment.
    #[error("not a flowcore journal segment (magic {0:?})")]
    Magic([u8; 8]),
    /// A layout this code does not read.
    #[error("journal layout version {0}, this build reads {VERSION}")]
    Version(u32),
    /// A header length other than this version's.
    #[error("segment header of {0} bytes, expected {SEGMENT_HEADER}")]
    HeaderLen(u32),
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut b = [0u8; SEGMENT_HEADER];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(SEGMENT_HEADER as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.capacity.to_le_bytes());
        b[32..40].copy_from_slice(&self.created_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.sealed_len.to_le_bytes());
        b[48..56].copy_from_slice(&self.records.to_le_bytes());
        b[56..60].copy_from_slice(&self.next_stream.to_le_bytes());
        b
    }

    /// Reads a header from the start of a segment.
    ///
    /// # Errors
    /// [`HeaderError`] when the bytes are not a segment this version reads.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < SEGMENT_HEADER {
            return Err(HeaderError::Short);
        }
        let magic: [u8; 8] = b[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(HeaderError::Magic(magic));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let header_len = u32_at(b, 12);
        if header_len as usize != SEGMENT_HEADER {
            return Err(HeaderError::HeaderLen(header_len));
        }
        Ok(Self {
            index: u64_at(b, 16),
            capacity: u64_at(b, 24),
            created_ns: u64_at(b, 32) as i64,
            sealed_len: u64_at(b, 40),
            records: u64_at(b, 48),
            next_stream: u32_at(b, 56),
        })
    }
}

/// A record read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it holds.
    pub kind: RecordKind,
    /// The stream it belongs to.
    pub stream: u32,
    /// Receive time.
    pub local_ns: i64,
    /// The bytes.
    pub payload: &'a [u8],
}

/// What lies at an offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    /// A whole record, and the offset of the next.
    Record(Record<'a>, usize),
    /// Nothing written from here on (a zero `len`, or the end of the bytes).
    End,
    /// Bytes that are not a whole record: a torn write, or damage.
    Torn(&'static str),
}

/// Reads the record at `offset` (a multiple of [`ALIGN`], at least [`SEGMENT_HEADER`]).
pub fn read_slot(data: &[u8], offset: usize) -> Slot<'_> {
    debug_assert!(offset.is_multiple_of(ALIGN) && offset >= SEGMENT_HEADER);
    if offset + 4 > data.len() {
        return Slot::End;
    }
    let len = u32_at(data, offset) as usize;
    if len == 0 {
        return Slot::End;
    }
    if len < RECORD_HEADER {
        return Slot::Torn("record length below the header's");
    }
    if offset + len > data.len() {
        return Slot::Torn("record runs past the segment");
    }
    let rec = &data[offset..offset + len];
    if u32_at(rec, 4) != crc(len as u32, &rec[8..]) {
        return Slot::Torn("checksum mismatch");
    }
    let Some(kind) = RecordKind::from_code(rec[8]) else {
        return Slot::Torn("unknown record kind");
    };
    let record = Record {
        kind,
        stream: u32_at(rec, 12),
        local_ns: u64_at(rec, 16) as i64,
        payload: &rec[RECORD_HEADER..],
    };
    Slot::Record(record, offset + padded(len))
}

/// Where a scan of a segment's records stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Offset after the last whole record.
    pub end: usize,
    /// Why the bytes there are not a record, when they are not zeros or the end of `data`.
    pub torn: Option<&'static str>,
}

/// Calls `each` on every whole record of a segment's `data` from the first, and says where
/// they stop.
pub fn scan<'a>(data: &'a [u8], mut each: impl FnMut(Record<'a>)) -> ScanEnd {
    let mut at = SEGMENT_HEADER;
    loop {
        match read_slot(data, at) {
            Slot::Record(r, next) => {
                each(r);
                at = next;
            }
            Slot::End => {
                return ScanEnd {
                    end: at,
                    torn: None,
                }
            }
            Slot::Torn(why) => {
                return ScanEnd {
                    end: at,
                    torn: Some(why),
                }
            }
        }
    }
}

/// Writes a record at the start of `out` (which must hold [`padded`]`(RECORD_HEADER +
/// payload)` bytes of zeros): everything but `len` first, `len` last. The payload comes in
/// pieces (a ring's two halves).
pub fn write_record(
    out: &mut [u8],
    kind: RecordKind,
    stream: u32,
    local_ns: i64,
    payload: [&[u8]; 2],
) -> usize {
    let len = RECORD_HEADER + payload[0].len() + payload[1].len();
    debug_assert!(out.len() >= padded(len));
    out[8] = kind as u8;
    out[9..12].fill(0);
    out[12..16].copy_from_slice(&stream.to_le_bytes());
    out[16..24].copy_from_slice(&local_ns.to_le_bytes());
    let split = RECORD_HEADER + payload[0].len();
    out[RECORD_HEADER..split].copy_from_slice(payload[0]);
    out[split..len].copy_from_slice(payload[1]);
    let sum = crc(len as u32, &out[8..len]);
    out[4..8].copy_from_slice(&sum.to_le_bytes());
    out[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    padded(len)
}

/// `len` rounded up to [`ALIGN`].
pub fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

fn crc(len: u32, rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(rest);
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A segment file in a journal folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Its number.
    pub index: u64,
    /// Its path.
    pub path: PathBuf,
    /// Compressed with zstd.
    pub compressed: bool,
}

/// The path of segment `index` in `dir`.
pub fn segment_path(dir: &Path, index: u64, compressed: bool) -> PathBuf {
    let suffix = if compressed { ZSTD_SUFFIX } else { SUFFIX };
    dir.join(format!("{index:08}.{suffix}"))
}

/// The segments in `dir`, by number. Where a crash left a segment both raw and compressed,
/// the raw one is listed (the compressed copy is only renamed into place once whole, but
/// the raw one is the original).
///
/// # Errors
/// When the folder cannot be read.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<SegmentFile>> {
    let mut found: Vec<SegmentFile> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (stem, compressed) = if let Some(s) = name.strip_suffix(&format!(".{ZSTD_SUFFIX}")) {
            (s, true)
        } else if let Some(s) = name.strip_suffix(&format!(".{SUFFIX}")) {
            (s, false)
        } else {
            continue;
        };
        let Ok(index) = stem.parse::<u64>() else {
            continue;
        };
        found.push(SegmentFile {
            index,
            path,
            compressed,
        });
    }
    found.sort_by_key(|s| (s.index, s.compressed));
    found.dedup_by_key(|s| s.index);
    Ok(found)
}

/// Whether `dir` holds journal segments.
pub fn is_journal(dir: &Path) -> bool {
    dir.is_dir() && list_segments(dir).is_ok_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_record(payload: &[u8]) -> Vec<u8> {
        let mut seg = vec![0u8; SEGMENT_HEADER + padded(RECORD_HEADER + payload.len()) + 8];
        let half = payload.len() / 2;
        write_record(
            &mut seg[SEGMENT_HEADER..],
            RecordKind::Frame,
            7,
            -5,
            [&payload[..half], &payload[half..]],
        );
        seg
    }

    #[test]
    fn a_record_reads_back_and_any_flipped_byte_is_torn() {
        let seg = one_record(b"{\"e\":\"trade\"}");
        let Slot::Record(r, next) = read_slot(&seg, SEGMENT_HEADER) else {
            panic!("no record");
        };
        assert_eq!(
            (r.kind, r.stream, r.local_ns, r.payload),
            (RecordKind::Frame, 7, -5, &b"{\"e\":\"trade\"}"[..])
        );
        assert_eq!(read_slot(&seg, next), Slot::End);
        let len = RECORD_HEADER + 13;
        for at in SEGMENT_HEADER..SEGMENT_HEADER + len {
            let mut bad = seg.clone();
            bad[at] ^= 0x40;
            assert!(
                matches!(read_slot(&bad, SEGMENT_HEADER), Slot::Torn(_)),
                "byte {at} flipped went unseen"
            );
        }
        // A record whose length word is not written yet is the end, not damage.
        let mut unfinished = seg.clone();
        unfinished[SEGMENT_HEADER..SEGMENT_HEADER + 4].fill(0);
        assert_eq!(read_slot(&unfinished, SEGMENT_HEADER), Slot::End);
        // Cut short: the record runs past the bytes.
        assert!(matches!(
            read_slot(&seg[..SEGMENT_HEADER + 30], SEGMENT_HEADER),
            Slot::Torn(_)
        ));
    }

    #[test]
    fn headers_round_trip_and_foreign_bytes_are_refused() {
        let h = SegmentHeader {
            index: 3,
            capacity: 1 << 20,
            created_ns: 1_700_000_000_000_000_000,
            sealed_len: 4096,
            records: 12,
            next_stream: 9,
        };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
        let mut other = h.encode();
        other[0] = b'X';
        assert!(matches!(
            SegmentHeader::decode(&other),
            Err(HeaderError::Magic(_))
        ));
        let mut newer = h.encode();
        newer[8] = 2;
        assert_eq!(SegmentHeader::decode(&newer), Err(HeaderError::Version(2)));
        assert_eq!(SegmentHeader::decode(&[0; 10]), Err(HeaderError::Short));
    }
}
