//! Reads a journal back: an index of its segments and streams, checked once, and a reader
//! per stream that yields its lines in order. Segments are read into memory one at a time
//! (no mapping: a file another process cuts short cannot fault the reader).

use super::error::JournalError;
use super::format::{
    list_segments, read_slot, scan, RecordKind, SegmentFile, SegmentHeader, Slot, SEGMENT_HEADER,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A stream of the journal: one connection of one instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its id in the records.
    pub id: u32,
    /// `<venue>_<symbol>`.
    pub name: String,
    /// Frames, REST answers and markers.
    pub lines: u64,
    /// The segments (positions in the index) that hold its lines, so that its reader skips
    /// the others.
    segments: Vec<usize>,
}

/// Where the journal's last segment stops being whole records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub segment: PathBuf,
    /// Offset of the first byte that is not a whole record.
    pub offset: u64,
    /// Why.
    pub why: &'static str,
}

#[derive(Debug, Clone)]
struct SegmentEntry {
    file: SegmentFile,
    /// Bytes of whole records from the start of the file.
    valid_len: usize,
}

/// A journal folder, checked: every record of every segment was read and its checksum
/// verified when the index was made.
#[derive(Debug)]
pub struct JournalIndex {
    dir: PathBuf,
    segments: Vec<SegmentEntry>,
    streams: Vec<StreamInfo>,
    records: [u64; RecordKind::ALL.len()],
    torn: Option<TornTail>,
}

impl JournalIndex {
    /// Reads and checks the journal in `dir`. A segment that a run left open (the writer
    /// seals it when it opens the journal again) is read up to its last whole record, and
    /// the first byte after that is reported in [`Self::torn`]; damage anywhere else is an
    /// error.
    ///
    /// # Errors
    /// [`JournalError`] when a segment cannot be read, is not a journal segment, is damaged
    /// before its end, or the folder holds no segment.
    pub fn open(dir: &Path) -> Result<Arc<Self>, JournalError> {
        let files = list_segments(dir).map_err(|e| JournalError::io(dir, e))?;
        if files.is_empty() {
            return Err(JournalError::Empty(dir.to_path_buf()));
        }
        let mut index = Self {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            streams: Vec::new(),
            records: [0; RecordKind::ALL.len()],
            torn: None,
        };
        let last = files.len() - 1;
        let mut by_id: HashMap<u32, usize> = HashMap::new();
        for (i, file) in files.into_iter().enumerate() {
            let (header, data) = read_segment(&file)?;
            let end = if header.sealed_len == 0 {
                data.len()
            } else {
                header.sealed_len as usize
            };
            if end > data.len() {
                return Err(JournalError::Corrupt {
                    path: file.path.clone(),
                    offset: data.len() as u64,
                    why: "file shorter than its sealed length",
                });
            }
            let sealed = header.sealed_len != 0;
            let position = index.segments.len();
            let stop = scan(&data[..end], |r| {
                index.records[r.kind as usize - 1] += 1;
                let known = by_id.get(&r.stream).copied();
                match (r.kind, known) {
                    (RecordKind::StreamOpen, None) => {
                        by_id.insert(r.stream, index.streams.len());
                        index.streams.push(StreamInfo {
                            id: r.stream,
                            name: String::from_utf8_lossy(r.payload).into_owned(),
                            lines: 0,
                            segments: Vec::new(),
                        });
                    }
                    (kind, Some(at)) if kind.is_line() => {
                        let stream = &mut index.streams[at];
                        stream.lines += 1;
                        if stream.segments.last() != Some(&position) {
                            stream.segments.push(position);
                        }
                    }
                    _ => {}
                }
            });
            let at = stop.end;
            let damage = match stop.torn {
                // Only the last segment can have been left open by a run that died mid-write.
                Some(why) if !sealed && i == last => {
                    index.torn = Some(TornTail {
                        segment: file.path.clone(),
                        offset: at as u64,
                        why,
                    });
                    None
                }
                Some(why) => Some(why),
                None if sealed && at < end => Some("zeros before the sealed length"),
                None => None,
            };
            if let Some(why) = damage {
                return Err(JournalError::Corrupt {
                    path: file.path.clone(),
                    offset: at as u64,
                    why,
                });
            }
            index.segments.push(SegmentEntry {
                file,
                valid_len: at,
            });
        }
        index.streams.sort_by_key(|s| s.id);
        Ok(Arc::new(index))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The streams, by id.
    pub fn streams(&self) -> &[StreamInfo] {
        &self.streams
    }

    /// Records of each kind, in [`RecordKind::ALL`] order.
    pub fn records(&self) -> [(RecordKind, u64); RecordKind::ALL.len()] {
        RecordKind::ALL.map(|k| (k, self.records[k as usize - 1]))
    }

    /// Segments.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Where the last segment's records stop being whole, if they do.
    pub fn torn(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// A reader of one stream's lines.
    pub fn stream(self: &Arc<Self>, id: u32) -> StreamReader {
        let segments = self.streams.iter().find(|s| s.id == id);
        StreamReader {
            index: Arc::clone(self),
            stream: id,
            segments: segments.map(|s| s.segments.clone()).unwrap_or_default(),
            segment: 0,
            data: Vec::new(),
            end: 0,
            at: 0,
            line: 0..0,
        }
    }
}

/// One stream's lines, in the order they were received.
#[derive(Debug)]
pub struct StreamReader {
    index: Arc<JournalIndex>,
    stream: u32,
    /// The segments that hold its lines (positions in the index).
    segments: Vec<usize>,
    /// The next of `segments` to load.
    segment: usize,
    data: Vec<u8>,
    /// Whole records end here in `data`.
    end: usize,
    /// The next record's offset in `data`.
    at: usize,
    /// The last line's payload in `data`.
    line: std::ops::Range<usize>,
}

impl StreamReader {
    /// The next line as (receive time, bytes), `None` at the end of the stream.
    ///
    /// # Errors
    /// When a segment cannot be read again or changed since the index was made.
    pub fn next_line(&mut self) -> Result<Option<(i64, &[u8])>, JournalError> {
        loop {
            if self.at >= self.end {
                let Some(&position) = self.segments.get(self.segment) else {
                    return Ok(None);
                };
                let entry = &self.index.segments[position];
                self.segment += 1;
                self.data = read_segment(&entry.file)?.1;
                self.end = entry.valid_len.min(self.data.len());
                self.at = SEGMENT_HEADER;
                continue;
            }
            match read_slot(&self.data[..self.end], self.at) {
                Slot::Record(r, next) => {
                    self.at = next;
                    if r.stream == self.stream && r.kind.is_line() {
                        let start = r.payload.as_ptr() as usize - self.data.as_ptr() as usize;
                        self.line = start..start + r.payload.len();
                        return Ok(Some((r.local_ns, &self.data[self.line.clone()])));
                    }
                }
                Slot::End => self.at = self.end,
                Slot::Torn(why) => {
                    let entry = &self.index.segments[self.segments[self.segment - 1]];
                    return Err(JournalError::Corrupt {
                        path: entry.file.path.clone(),
                        offset: self.at as u64,
                        why,
                    });
                }
            }
        }
    }

    /// The bytes of the last line [`Self::next_line`] returned.
    pub fn current(&self) -> &[u8] {
        &self.data[self.line.clone()]
    }
}

/// A segment's header and bytes (decompressed when it is compressed).
pub(super) fn read_segment(file: &SegmentFile) -> Result<(SegmentHeader, Vec<u8>), JournalError> {
    let raw = std::fs::read(&file.path).map_err(|e| JournalError::io(&file.path, e))?;
    let data = if file.compressed {
        zstd::stream::decode_all(raw.as_slice()).map_err(|e| JournalError::io(&file.path, e))?
    } else {
        raw
    };
    let header =
        SegmentHeader::decode(&data).map_err(|why| JournalError::header(&file.path, why))?;
    if header.index != file.index {
        return Err(JournalError::Corrupt {
            path: file.path.clone(),
            offset: 16,
            why: "segment number differs from the file name",
        });
    }
    Ok((header, data))
}
