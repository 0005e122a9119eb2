//! Appends records to the open segment through a writable memory map, seals and rotates
//! it when full, and cuts a torn tail off the last segment when a journal is opened again.
//! One thread owns a writer (the recorder thread): nothing here is on a feed's path.

use super::error::JournalError;
use super::format::{
    list_segments, padded, scan, segment_path, write_record, RecordKind, SegmentHeader,
    RECORD_HEADER, SEGMENT_HEADER,
};
use super::reader::TornTail;
use memmap2::{MmapMut, MmapOptions};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Smallest segment accepted: a header and a few records.
pub const MIN_SEGMENT_BYTES: usize = 64 << 10;

/// How a journal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Bytes preallocated per segment (a record larger than a segment is refused, counted).
    pub segment_bytes: usize,
    /// Compress each segment with zstd once sealed, on a thread of its own.
    pub compress: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 256 << 20,
            compress: false,
        }
    }
}

/// What opening a journal found at the end of its last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Where the tail tore; everything from there on was cut off.
    pub tail: TornTail,
    /// Whole records kept in that segment.
    pub records: u64,
}

/// What a writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records appended (stream opens and closes included).
    pub records: u64,
    /// Their bytes, headers and padding included.
    pub bytes: u64,
    /// Segments made.
    pub segments: u64,
    /// Records refused as larger than a segment.
    pub oversized: u64,
    /// Segments compressed.
    pub compressed: u64,
    /// Bytes of those segments before and after compression.
    pub compressed_from: u64,
    /// See `compressed_from`.
    pub compressed_to: u64,
}

struct OpenSegment {
    path: PathBuf,
    file: File,
    map: MmapMut,
    header: SegmentHeader,
    /// Bytes in use: header and records; the next record goes here. Always a multiple
    /// of 8, in `SEGMENT_HEADER..=map.len()`.
    len: usize,
}

impl OpenSegment {
    /// Writes a record after the last; the bytes it took, or `None` when it does not fit.
    fn try_push(
        &mut self,
        kind: RecordKind,
        stream: u32,
        local_ns: i64,
        payload: [&[u8]; 2],
    ) -> Option<usize> {
        let need = padded(RECORD_HEADER + payload[0].len() + payload[1].len());
        let out = self.map.get_mut(self.len..self.len + need)?;
        write_record(out, kind, stream, local_ns, payload);
        self.len += need;
        self.header.records += 1;
        Some(need)
    }
}

type Compressor = (
    mpsc::Sender<PathBuf>,
    JoinHandle<io::Result<(u64, u64, u64)>>,
);

/// Appends to the journal in one folder.
pub struct JournalWriter {
    dir: PathBuf,
    options: JournalOptions,
    current: Option<OpenSegment>,
    next_index: u64,
    next_stream: u32,
    /// Streams opened and not closed, with their names and open times: written again at
    /// the head of every new segment.
    live: Vec<(u32, String, i64)>,
    compressor: Option<Compressor>,
    stats: JournalStats,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("next_index", &self.next_index)
            .field("stats", &self.stats)
            .finish()
    }
}

impl JournalWriter {
    /// Opens (or creates) the journal in `dir` to append to. A last segment left open by
    /// a run that ended without sealing it is scanned: whole records are kept, a torn tail
    /// is cut off (returned as a [`Repair`]), and it is sealed. New records go into a new
    /// segment, with stream ids after those already in the journal.
    ///
    /// # Errors
    /// When the folder or a segment cannot be read or written, or a segment is not a
    /// journal segment of this version.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
    ) -> Result<(Self, Option<Repair>), JournalError> {
        if options.segment_bytes < MIN_SEGMENT_BYTES || options.segment_bytes > u32::MAX as usize {
            return Err(JournalError::SegmentSize(options.segment_bytes));
        }
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))? {
            let path = entry.map_err(|e| JournalError::io(dir, e))?.path();
            // A compression that a crash interrupted: the raw segment is still there.
            if path.extension().is_some_and(|e| e == "tmp") {
                std::fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
            }
        }
        let segments = list_segments(dir).map_err(|e| JournalError::io(dir, e))?;
        let mut writer = Self {
            dir: dir.to_path_buf(),
            options,
            current: None,
            next_index: segments.last().map_or(0, |s| s.index + 1),
            next_stream: 0,
            live: Vec::new(),
            compressor: None,
            stats: JournalStats::default(),
        };
        if options.compress {
            writer.compressor = Some(start_compressor()?);
        }
        let mut repair = None;
        if let Some(last) = segments.last() {
            let (next_stream, found) = if last.compressed {
                let header = super::reader::read_segment(last)?;
                (header.0.next_stream, None)
            } else {
                seal_leftover(&last.path)?
            };
            writer.next_stream = next_stream;
            repair = found;
        }
        if let Some((tx, _)) = &writer.compressor {
            // Raw sealed segments (the leftover just sealed, or one whose compression a
            // crash interrupted) are compressed now.
            for s in list_segments(dir).map_err(|e| JournalError::io(dir, e))? {
                if !s.compressed {
                    let _ = tx.send(s.path);
                }
            }
        }
        // The first segment is made (allocated, mapped, its pages faulted in) now, before
        // the run's feeds start, not on the recorder thread when the first frames arrive.
        writer.rotate()?;
        Ok((writer, repair))
    }

    /// Starts a stream named `name` (`<venue>_<symbol>`); its id for [`Self::append`].
    ///
    /// # Errors
    /// When a new segment cannot be made.
    pub fn open_stream(&mut self, name: &str, local_ns: i64) -> Result<u32, JournalError> {
        let id = self.next_stream;
        self.next_stream += 1;
        self.live.push((id, name.to_owned(), local_ns));
        self.append(RecordKind::StreamOpen, id, local_ns, [name.as_bytes(), &[]])?;
        Ok(id)
    }

    /// Ends a stream: it is not announced again in later segments.
    ///
    /// # Errors
    /// When a new segment cannot be made.
    pub fn close_stream(&mut self, id: u32, local_ns: i64) -> Result<(), JournalError> {
        self.live.retain(|(s, ..)| *s != id);
        self.append(RecordKind::StreamClose, id, local_ns, [&[], &[]])
            .map(drop)
    }

    /// Appends one record whose payload comes in two pieces; `false` when it is larger
    /// than a segment can hold (counted in [`JournalStats::oversized`]).
    ///
    /// # Errors
    /// When a full segment cannot be sealed or a new one made.
    pub fn append(
        &mut self,
        kind: RecordKind,
        stream: u32,
        local_ns: i64,
        payload: [&[u8]; 2],
    ) -> Result<bool, JournalError> {
        let need = padded(RECORD_HEADER + payload[0].len() + payload[1].len());
        if need > self.options.segment_bytes - SEGMENT_HEADER {
            self.stats.oversized += 1;
            return Ok(false);
        }
        let mut used = self
            .current
            .as_mut()
            .and_then(|s| s.try_push(kind, stream, local_ns, payload));
        if used.is_none() {
            self.rotate()?;
            used = self
                .current
                .as_mut()
                .and_then(|s| s.try_push(kind, stream, local_ns, payload));
        }
        // A fresh segment's table of open streams left no room for it.
        let Some(used) = used else {
            self.stats.oversized += 1;
            return Ok(false);
        };
        self.stats.records += 1;
        self.stats.bytes += used as u64;
        Ok(true)
    }

    /// Pushes what is written to the file (msync), waiting for the disk.
    ///
    /// # Errors
    /// When the kernel reports a write-back error.
    pub fn flush(&self) -> Result<(), JournalError> {
        if let Some(s) = &self.current {
            s.map.flush().map_err(|e| JournalError::io(&s.path, e))?;
        }
        Ok(())
    }

    /// What the writer did so far.
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// Seals the open segment, waits for compression to end, and returns the counts.
    ///
    /// # Errors
    /// When sealing or compressing fails.
    pub fn finish(mut self) -> Result<JournalStats, JournalError> {
        let streams: Vec<u32> = self.live.iter().map(|(id, ..)| *id).collect();
        let now = self.live.iter().map(|(.., ts)| *ts).max().unwrap_or(0);
        for id in streams {
            self.close_stream(id, now)?;
        }
        self.seal()?;
        if let Some((tx, handle)) = self.compressor.take() {
            drop(tx);
            let (n, from, to) = handle
                .join()
                .map_err(|_| JournalError::io(&self.dir, io::Error::other("compressor panicked")))?
                .map_err(|e| JournalError::io(&self.dir, e))?;
            self.stats.compressed += n;
            self.stats.compressed_from += from;
            self.stats.compressed_to += to;
        }
        Ok(self.stats)
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        self.seal()?;
        let index = self.next_index;
        self.next_index += 1;
        let path = segment_path(&self.dir, index, false);
        let capacity = self.options.segment_bytes;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, e))?;
        preallocate(&file, capacity as u64).map_err(|e| JournalError::io(&path, e))?;
        // SAFETY: the file was created just now by this writer (create_new) and only this
        // writer maps or resizes it until it is sealed (the map is dropped before the file is
        // cut to its sealed length). Another process truncating it meanwhile would fault the
        // recorder thread, as with any mapped file; the journal folder is ours alone.
        // `populate` faults the pages in now, so that appending takes no page faults.
        let mut map = unsafe { MmapOptions::new().populate().map_mut(&file) }
            .map_err(|e| JournalError::io(&path, e))?;
        let header = SegmentHeader {
            index,
            capacity: capacity as u64,
            created_ns: now_ns,
            sealed_len: 0,
            records: 0,
            next_stream: self.next_stream,
        };
        map[..SEGMENT_HEADER].copy_from_slice(&header.encode());
        self.current = Some(OpenSegment {
            path,
            file,
            map,
            header,
            len: SEGMENT_HEADER,
        });
        self.stats.segments += 1;
        let segment = self.current.as_mut().expect("just made");
        for (id, name, ts) in &self.live {
            let pushed = segment.try_push(RecordKind::StreamOpen, *id, *ts, [name.as_bytes(), &[]]);
            let Some(used) = pushed else { break };
            self.stats.records += 1;
            self.stats.bytes += used as u64;
        }
        Ok(())
    }

    /// Seals the open segment: its header says how long it is, the file is cut to that
    /// length, and it goes to the compressor.
    fn seal(&mut self) -> Result<(), JournalError> {
        let Some(mut segment) = self.current.take() else {
            return Ok(());
        };
        segment.header.sealed_len = segment.len as u64;
        segment.header.next_stream = self.next_stream;
        segment.map[..SEGMENT_HEADER].copy_from_slice(&segment.header.encode());
        let io = |e| JournalError::io(&segment.path, e);
        segment.map.flush_async().map_err(io)?;
        drop(segment.map);
        segment.file.set_len(segment.len as u64).map_err(io)?;
        if let Some((tx, _)) = &self.compressor {
            let _ = tx.send(segment.path);
        }
        Ok(())
    }
}

/// Seals a raw segment a run left open; its `next_stream`, and the repair if its tail was
/// torn. A sealed segment is left as it is.
fn seal_leftover(path: &Path) -> Result<(u32, Option<Repair>), JournalError> {
    let mut bytes = std::fs::read(path).map_err(|e| JournalError::io(path, e))?;
    let mut header =
        SegmentHeader::decode(&bytes).map_err(|why| JournalError::header(path, why))?;
    if header.sealed_len != 0 {
        return Ok((header.next_stream, None));
    }
    let mut records = 0;
    let mut next_stream = header.next_stream;
    let stop = scan(&bytes, |r| {
        records += 1;
        if r.kind == RecordKind::StreamOpen {
            next_stream = next_stream.max(r.stream + 1);
        }
    });
    let at = stop.end;
    let repair = stop.torn.map(|why| Repair {
        tail: TornTail {
            segment: path.to_path_buf(),
            offset: at as u64,
            why,
        },
        records,
    });
    header.sealed_len = at as u64;
    header.records = records;
    header.next_stream = next_stream;
    bytes[..SEGMENT_HEADER].copy_from_slice(&header.encode());
    bytes.truncate(at);
    // Written to a new file and renamed over the old one: a crash here leaves either.
    let tmp = path.with_extension("fcj.seal.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| JournalError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| JournalError::io(path, e))?;
    Ok((next_stream, repair))
}

/// Reserves the segment's blocks now (an NVMe write into a hole would allocate them on the
/// recorder's time); file systems without fallocate get a sparse file.
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(len) else {
        return Err(io::Error::other("segment larger than off_t"));
    };
    // SAFETY: posix_fallocate reads no memory of ours; the descriptor is open for writing.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len as u64),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

fn start_compressor() -> Result<Compressor, JournalError> {
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let handle = std::thread::Builder::new()
        .name("flowcore-journal-zstd".into())
        .spawn(move || {
            let (mut n, mut from, mut to) = (0u64, 0u64, 0u64);
            for path in rx {
                let (a, b) = compress(&path)?;
                n += 1;
                from += a;
                to += b;
            }
            Ok((n, from, to))
        })
        .map_err(|e| JournalError::io(Path::new("."), e))?;
    Ok((tx, handle))
}

/// Compresses a sealed segment next to itself, renames the copy into place once whole,
/// then removes the original.
fn compress(path: &Path) -> io::Result<(u64, u64)> {
    let raw = std::fs::read(path)?;
    let packed = zstd::bulk::compress(&raw, 3)?;
    let done = path.with_extension(super::format::ZSTD_SUFFIX);
    let tmp = path.with_extension("fcj.zst.tmp");
    std::fs::write(&tmp, &packed)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &done)?;
    std::fs::remove_file(path)?;
    Ok((raw.len() as u64, packed.len() as u64))
}
