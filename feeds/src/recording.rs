//! The shared recording format: one message per line, `<local_receive_ns> <raw JSON>`,
//! plain or gzip (by the `.gz` suffix or the gzip magic bytes); where a recording comes
//! from ([`Input`], a `VENUE=FILE` argument) and how fast it is played back ([`Pace`]).
//! Replay, the simulator and the benches read recordings through this module.

use crate::journal::{is_journal, JournalError, JournalIndex, StreamReader, TornTail};
use flate2::read::MultiGzDecoder;
use flowcore_core::instrument::Venue;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a recording line was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Reading failed.
    #[error("reading recording: {0}")]
    Io(#[from] io::Error),
    /// A line without a leading integer timestamp and a space.
    #[error("line {line}: expected `<local_receive_ns> <json>`")]
    BadLine {
        /// 1-based line number.
        line: u64,
    },
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The file could not be opened.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Bytes read from a file at a time, and the starting size of the line buffer (it doubles
/// for a longer line).
const READ_CHUNK: usize = 1 << 16;

/// Reads one recording line by line: a text file through its own buffer, each line handed
/// out where it lies in that buffer (no copy), or one stream of a journal.
pub struct RecordingReader {
    inner: Box<dyn Read + Send>,
    journal: Option<StreamReader>,
    /// Bytes read from `inner`; `buf[start..end]` is not yet handed out as lines.
    /// `0 <= start <= scanned <= end <= buf.len()`.
    buf: Vec<u8>,
    /// Start of the first line not yet returned.
    start: usize,
    /// `buf[start..scanned]` holds no newline (already searched).
    scanned: usize,
    /// End of the bytes read.
    end: usize,
    /// `inner` is at its end.
    eof: bool,
    /// Where the last line's JSON sits in `buf`.
    json: std::ops::Range<usize>,
    line: u64,
}

impl std::fmt::Debug for RecordingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingReader")
            .field("line", &self.line)
            .finish()
    }
}

impl RecordingReader {
    /// Opens a file, decompressing gzip when the file starts with the gzip magic.
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut file, &mut magic)?;
        // The bytes read to look are put back in front, not sought back: a pipe works too.
        let file = io::Cursor::new(magic).take(n as u64).chain(file);
        let inner: Box<dyn Read + Send> = if magic[..n] == [0x1f, 0x8b] {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                READ_CHUNK, file,
            )))
        } else {
            // Read straight into the line buffer: no buffer in between.
            Box::new(file)
        };
        Ok(Self::from_reader(inner))
    }

    /// Reads a recording from any reader (tests feed edited recordings this way).
    pub fn from_reader(inner: Box<dyn Read + Send>) -> Self {
        Self {
            inner,
            journal: None,
            // Allocated at the first read (a journal's reader never reads).
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            end: 0,
            eof: false,
            json: 0..0,
            line: 0,
        }
    }

    /// Reads a whole (possibly gzipped) file into memory.
    ///
    /// # Errors
    /// When the file cannot be read or decompressed.
    pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut reader = Self::open(path)?;
        reader.inner.read_to_end(&mut out)?;
        Ok(out)
    }

    /// The next line as `(local_receive_ns, json)`, or `None` at the end. Blank lines are
    /// skipped.
    ///
    /// # Errors
    /// [`RecordingError`] for I/O failures and lines without a timestamp.
    pub fn next_line(&mut self) -> Result<Option<(i64, &[u8])>, RecordingError> {
        if let Some(stream) = &mut self.journal {
            self.line += 1;
            let Some((ts, _)) = stream.next_line()? else {
                return Ok(None);
            };
            return Ok(Some((ts, self.current())));
        }
        loop {
            let Some(line) = self.split_line()? else {
                return Ok(None);
            };
            self.line += 1;
            let Some((ts, json)) = line_json(&self.buf[line.clone()], self.line)? else {
                continue;
            };
            self.json = line.start + json.start..line.start + json.end;
            return Ok(Some((ts, &self.buf[self.json.clone()])));
        }
    }

    /// The next line's place in `buf`, without its newline; `None` at the end of the input.
    /// Reads more when the line does not end in the buffer, moving the unread bytes to its
    /// front first (and doubling it when they fill it).
    fn split_line(&mut self) -> io::Result<Option<std::ops::Range<usize>>> {
        loop {
            debug_assert!(self.start <= self.scanned && self.scanned <= self.end);
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let line = self.start..self.scanned + i;
                self.start = line.end + 1;
                self.scanned = self.start;
                return Ok(Some(line));
            }
            self.scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                // The last line has no newline.
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some(line));
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.scanned, self.end) = (self.end - self.start, self.end - self.start);
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize((2 * self.buf.len()).max(READ_CHUNK), 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The JSON of the last line [`Self::next_line`] returned (empty before the first),
    /// so a caller can hold a line without copying it.
    pub fn current(&self) -> &[u8] {
        match &self.journal {
            Some(stream) => stream.current(),
            None => &self.buf[self.json.clone()],
        }
    }

    /// 1-based number of the last line read.
    pub fn line_number(&self) -> u64 {
        self.line
    }
}

/// A line (without its newline) as `(local_receive_ns, where its JSON is in it)`; `None`
/// for a blank line.
#[inline]
fn line_json(
    line: &[u8],
    number: u64,
) -> Result<Option<(i64, std::ops::Range<usize>)>, RecordingError> {
    let line = trim_end(line);
    if line.is_empty() {
        return Ok(None);
    }
    let (ts, space) = parse_timestamp(line).ok_or(RecordingError::BadLine { line: number })?;
    Ok(Some((ts, space + 1..line.len())))
}

/// A plain recording whole in memory and in place: a file mapped (not read), or an
/// in-memory recording shared. Its lines ([`Lines`]) are ranges of these bytes, valid as
/// long as they are, so one thread can find lines while another parses the ones before.
#[derive(Debug)]
pub enum WholeRecording {
    /// A plain file, mapped read-only.
    Mapped(memmap2::Mmap),
    /// An in-memory recording.
    Memory(Arc<[u8]>),
    /// An empty file (which cannot be mapped).
    Empty,
}

/// What [`WholeRecording::release_before`] gives back at a time: the span a reader must be
/// past before pages go, and the spans they go in (whole pages on any page size up to 2 MiB).
pub const RELEASE_SPAN: usize = 2 << 20;

impl WholeRecording {
    /// Tells the kernel the mapped pages wholly before `offset`, less [`RELEASE_SPAN`], are
    /// done with, a span at a time: `released` is how far earlier calls went (start at 0;
    /// updated). The bytes stay what they were: reading them again maps them again.
    ///
    /// Why: a mapped page's table entry is set up when first read and torn down when the
    /// map goes. Unmapping the BTC set's 54 MB at the end of a replay took 3 ms on one
    /// thread after the parse was over (2026-12-07); released as the lines are found, that
    /// work is done by the thread finding them, beside the engine's, instead of after it.
    /// The span of slack covers lines found but not yet parsed (a few hundred KiB at most).
    #[allow(unsafe_code)]
    pub fn release_before(&self, offset: usize, released: &mut usize) {
        let WholeRecording::Mapped(map) = self else {
            return;
        };
        let end = offset.saturating_sub(RELEASE_SPAN) / RELEASE_SPAN * RELEASE_SPAN;
        if end <= *released || end > map.len() {
            return;
        }
        // SAFETY: `MADV_DONTNEED` on a shared, read-only file mapping drops the range's
        // page table entries only: the page cache keeps the file's bytes, and a later read
        // maps them again, the same bytes (the map's own premise, that nobody modifies the
        // file, is all it rests on; see `map_plain`). No `&[u8]` into the map sees a change,
        // so the advice is not one of those that lose data (private or anonymous memory).
        // The range is inside the map and starts on a page boundary (a multiple of
        // `RELEASE_SPAN` from the map's page-aligned start).
        let done = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                *released,
                end - *released,
            )
        };
        // Advice refused costs nothing but the saving; the map is torn down whole at the end.
        if done.is_ok() {
            *released = end;
        }
    }
}

impl std::ops::Deref for WholeRecording {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            WholeRecording::Mapped(map) => map,
            WholeRecording::Memory(bytes) => bytes,
            WholeRecording::Empty => &[],
        }
    }
}

/// Maps a plain recording file. `None` for what cannot be mapped or is not plain: a pipe
/// or other special file, a gzip file.
///
/// Mapping instead of reading takes the kernel's copy out of the page cache away (6% of a
/// one-thread replay of the BTC set), and the lines stay where they are for another thread.
#[allow(unsafe_code)]
fn map_plain(path: &Path) -> io::Result<Option<WholeRecording>> {
    // Looked at before opening: opening a FIFO waits for its writer.
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Some(WholeRecording::Empty));
    }
    // SAFETY: the map is read-only, but shared with the file: the `&[u8]` it gives stays
    // what it was only while nobody modifies the file's bytes or truncates it. A recording
    // is replayed at rest (the recorder writes journals, which are not mapped here);
    // appending meanwhile is harmless (the map keeps its length); truncating it under a
    // replay would end the process with SIGBUS when a dropped page is read, as for any
    // mapped file (said in docs/REPLAY.md).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    if map.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    Ok(Some(WholeRecording::Mapped(map)))
}

/// The lines of a [`WholeRecording`], each as its local receive time and the range of its
/// JSON in the recording's bytes. The same lines, timestamps and errors as
/// [`RecordingReader::next_line`].
#[derive(Debug)]
pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    /// From the first line of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            line: 0,
        }
    }

    /// The next line as `(local_receive_ns, JSON range)`, or `None` at the end.
    ///
    /// # Errors
    /// [`RecordingError::BadLine`] for a line without a timestamp.
    #[inline]
    pub fn next_line(&mut self) -> Result<Option<(i64, std::ops::Range<usize>)>, RecordingError> {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let rest = &self.bytes[start..];
            let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            self.pos = start + len + 1;
            self.line += 1;
            if let Some((ts, json)) = line_json(&rest[..len], self.line)? {
                return Ok(Some((ts, start + json.start..start + json.end)));
            }
        }
        Ok(None)
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}

/// A line's leading `<local_receive_ns> ` as (timestamp, index of the space). A
/// nanosecond stamp of today (19 digits) is read eight digits at a time; up to 19 plain
/// digits one at a time; anything else (a sign, 20 digits or more, a value past
/// `i64::MAX`) is left to `i64`'s parser, which decides as before.
#[inline]
fn parse_timestamp(line: &[u8]) -> Option<(i64, usize)> {
    if let Some(ts) = nineteen_digits(line) {
        return Some((ts, 19));
    }
    let mut ts: u64 = 0;
    for (i, &b) in line.iter().enumerate() {
        match b {
            // At most 19 digits: below 10^19 < u64::MAX, no overflow.
            b'0'..=b'9' if i < 19 => ts = ts * 10 + u64::from(b - b'0'),
            b' ' if i > 0 => match i64::try_from(ts) {
                Ok(ts) => return Some((ts, i)),
                Err(_) => break,
            },
            _ => break,
        }
    }
    let space = line.iter().position(|&b| b == b' ')?;
    let ts = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
    Some((ts, space))
}

/// `line` starting with exactly 19 digits and a space, below `i64::MAX`: the value.
/// 19 digits a line one after another were 4% of a one-thread replay (a multiply-add
/// chain); two words of eight and three more take a few instructions each.
#[inline]
fn nineteen_digits(line: &[u8]) -> Option<i64> {
    let head: &[u8; 20] = line.get(..20)?.try_into().ok()?;
    if head[19] != b' ' {
        return None;
    }
    let hi = eight_digits(u64::from_le_bytes(head[..8].try_into().ok()?))?;
    let mid = eight_digits(u64::from_le_bytes(head[8..16].try_into().ok()?))?;
    let mut lo = 0;
    for &b in &head[16..19] {
        if !b.is_ascii_digit() {
            return None;
        }
        lo = lo * 10 + u64::from(b - b'0');
    }
    // hi < 10^8: the sum is below 10^19 < u64::MAX.
    i64::try_from(hi * 100_000_000_000 + mid * 1000 + lo).ok()
}

/// Eight ASCII digits read as a little-endian word, first digit lowest: their value, or
/// `None` if one is not a digit.
#[inline]
fn eight_digits(word: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each byte 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    if word & (0xF0 * ONES) != 0x30 * ONES || (word + 6 * ONES) & (0xF0 * ONES) != 0x30 * ONES {
        return None;
    }
    let v = word - 0x30 * ONES;
    // Pairs, then quads, then the eight (the first digit is the lowest byte).
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Reads into `buf` until it is full or the reader ends; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where a recording comes from.
#[derive(Clone)]
pub enum Source {
    /// A file (gzip or plain).
    Path(PathBuf),
    /// An in-memory recording (tests edit recordings this way).
    Memory(Arc<[u8]>),
    /// One stream (connection) of a journal.
    Journal {
        /// The journal, checked.
        index: Arc<JournalIndex>,
        /// The stream's id.
        stream: u32,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Memory(m) => write!(f, "<{} bytes in memory>", m.len()),
            Source::Journal { index, stream } => {
                let name = index.streams().iter().find(|s| s.id == *stream);
                let name = name.map_or("?", |s| s.name.as_str());
                write!(f, "{} stream {stream} ({name})", index.dir().display())
            }
        }
    }
}

impl Source {
    /// The recording whole in memory when it is plain text (a file is mapped, an in-memory
    /// one shared); `None` for gzip (read as it decompresses) and journals (read from their
    /// segments).
    ///
    /// # Errors
    /// [`RecordingError::Open`] when the file cannot be opened or mapped.
    pub fn whole(&self) -> Result<Option<WholeRecording>, RecordingError> {
        match self {
            Source::Path(p) => map_plain(p).map_err(|source| RecordingError::Open {
                path: p.clone(),
                source,
            }),
            Source::Memory(m) => Ok(Some(WholeRecording::Memory(Arc::clone(m)))),
            Source::Journal { .. } => Ok(None),
        }
    }

    /// Opens the recording for reading from its first line.
    ///
    /// # Errors
    /// [`RecordingError::Open`] when the file cannot be opened.
    pub fn open(&self) -> Result<RecordingReader, RecordingError> {
        match self {
            Source::Path(p) => RecordingReader::open(p).map_err(|source| RecordingError::Open {
                path: p.clone(),
                source,
            }),
            Source::Memory(m) => Ok(RecordingReader::from_reader(Box::new(
                std::io::Cursor::new(Arc::clone(m)),
            ))),
            Source::Journal { index, stream } => {
                let mut reader = RecordingReader::from_reader(Box::new(io::empty()));
                reader.journal = Some(index.stream(*stream));
                Ok(reader)
            }
        }
    }
}

/// One `VENUE=FILE` argument: a recording and the dialect it is in.
#[derive(Debug, Clone)]
pub struct Input {
    /// The dialect of the file.
    pub venue: Venue,
    /// The file.
    pub source: Source,
}

/// Why a `VENUE=FILE` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// No `=` between venue and file.
    #[error("expected VENUE=FILE, got {0:?}")]
    NoVenue(String),
    /// A `journal=DIR` that is not a readable journal.
    #[error("{arg:?}: {why}")]
    Journal {
        /// The whole argument.
        arg: String,
        /// Why it was refused.
        why: String,
    },
    /// A venue name flowcore does not know.
    #[error("unknown venue {venue:?} in {arg:?}: expected one of {known}")]
    UnknownVenue {
        /// The name given.
        venue: String,
        /// The whole argument.
        arg: String,
        /// The names known, comma-separated.
        known: String,
    },
}

impl Input {
    /// Parses `binance-spot=path/to/file.txt.gz`.
    ///
    /// # Errors
    /// When the venue is unknown or the `=` is missing.
    ///
    /// # Examples
    /// ```
    /// use flowcore_feeds::recording::Input;
    /// let input = Input::parse_arg("binance-usdm=data/usdm.txt.gz").unwrap();
    /// assert_eq!(input.venue.name(), "binance-usdm");
    /// assert!(Input::parse_arg("nasdaq=x.txt").is_err());
    /// ```
    pub fn parse_arg(arg: &str) -> Result<Self, InputError> {
        let Some((venue, path)) = arg.split_once('=') else {
            return Err(InputError::NoVenue(arg.to_owned()));
        };
        let Some(venue) = Venue::from_name(venue) else {
            let names: Vec<_> = Venue::ALL.iter().map(|v| v.name()).collect();
            return Err(InputError::UnknownVenue {
                venue: venue.to_owned(),
                arg: arg.to_owned(),
                known: names.join(", "),
            });
        };
        Ok(Self {
            venue,
            source: Source::Path(PathBuf::from(path)),
        })
    }
}

/// Parses the recordings of a command line: `VENUE=FILE` ([`Input::parse_arg`]) or
/// `journal=DIR`, which stands for every stream of the journal in that folder, each with
/// the venue its name begins with. A journal whose last segment ends in a torn record is
/// read up to it, and the torn tail is reported in the second value.
///
/// # Errors
/// [`InputError`] for an unknown venue, a missing `=`, or a journal that cannot be read.
pub fn parse_inputs<S: AsRef<str>>(args: &[S]) -> Result<(Vec<Input>, Vec<TornTail>), InputError> {
    let mut inputs = Vec::new();
    let mut torn = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        let Some(dir) = arg.strip_prefix("journal=") else {
            inputs.push(Input::parse_arg(arg)?);
            continue;
        };
        let (streams, tail) = journal_inputs(Path::new(dir), arg)?;
        inputs.extend(streams);
        torn.extend(tail);
    }
    Ok((inputs, torn))
}

/// Every stream of the journal in `dir` as an input (`arg` names it in errors), and its torn
/// tail if it has one.
fn journal_inputs(dir: &Path, arg: &str) -> Result<(Vec<Input>, Option<TornTail>), InputError> {
    let refuse = |why: String| InputError::Journal {
        arg: arg.to_owned(),
        why,
    };
    let index = JournalIndex::open(dir).map_err(|e| refuse(e.to_string()))?;
    let inputs = index
        .streams()
        .iter()
        .map(|stream| {
            let venue = venue_of(&stream.name).ok_or_else(|| {
                refuse(format!("stream {:?}: no venue of that name", stream.name))
            })?;
            Ok(Input {
                venue,
                source: Source::Journal {
                    index: Arc::clone(&index),
                    stream: stream.id,
                },
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((inputs, index.torn().cloned()))
}

/// The venue a recording's name (`<venue>_<symbol>...`) begins with.
fn venue_of(name: &str) -> Option<Venue> {
    Venue::ALL.iter().copied().find(|v| {
        name.strip_prefix(v.name())
            .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// The recordings `flowcore run --record DIR` wrote: a journal, or text files named
/// `<venue>_<symbol>_NNN.txt`, in the order they were opened.
///
/// # Errors
/// When the folder cannot be read or holds neither.
pub fn recorded_inputs(dir: &Path) -> Result<Vec<Input>, InputError> {
    let arg = dir.display().to_string();
    if is_journal(dir) {
        return journal_inputs(dir, &arg).map(|(inputs, _)| inputs);
    }
    let refuse = |why: String| InputError::Journal {
        arg: arg.clone(),
        why,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| refuse(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut inputs = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let venue =
            venue_of(name).ok_or_else(|| refuse(format!("{name}: no venue of that name")))?;
        inputs.push(Input {
            venue,
            source: Source::Path(path),
        });
    }
    if inputs.is_empty() {
        return Err(refuse("no journal and no recording files in it".into()));
    }
    Ok(inputs)
}

/// How fast a recording is played back (the simulator, a paced replay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// At the recorded inter-arrival times.
    Recorded,
    /// This many times faster than recorded.
    Faster(f64),
    /// As fast as the consumer takes it (the simulator: as its slowest client reads).
    Asap,
}

impl Pace {
    /// When a message recorded at `ts` is due, counted from the start of play at
    /// `first_ts`; `None` for `asap`.
    pub fn offset(self, first_ts: i64, ts: i64) -> Option<Duration> {
        let speed = match self {
            Pace::Recorded => 1.0,
            Pace::Faster(f) => f,
            Pace::Asap => return None,
        };
        Some(Duration::from_secs_f64(
            (ts - first_ts).max(0) as f64 / 1e9 / speed,
        ))
    }
}

impl std::str::FromStr for Pace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "recorded" => Ok(Pace::Recorded),
            "asap" => Ok(Pace::Asap),
            _ => match s.strip_suffix('x').map(str::parse::<f64>) {
                Some(Ok(f)) if f > 0.0 && f.is_finite() => Ok(Pace::Faster(f)),
                _ => Err(format!(
                    "pace {s:?}: expected recorded, asap or a speed-up like 10x"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_parse_and_refuse() {
        assert_eq!("10x".parse::<Pace>(), Ok(Pace::Faster(10.0)));
        assert_eq!("asap".parse::<Pace>(), Ok(Pace::Asap));
        assert!("0x".parse::<Pace>().is_err() && "fast".parse::<Pace>().is_err());
        assert_eq!(
            Pace::Faster(2.0).offset(1_000, 2_000_001_000),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn lines_without_a_timestamp_are_refused_with_their_number() {
        let text: &[u8] = b"1 {}\n\nnope {}\n";
        let mut reader = RecordingReader::from_reader(Box::new(text));
        assert_eq!(reader.next_line().unwrap(), Some((1, &b"{}"[..])));
        let e = reader.next_line().unwrap_err();
        assert!(matches!(e, RecordingError::BadLine { line: 3 }), "{e}");
    }

    const TWO_LINES: &[u8] = b"1 {\"a\":1}\n2 {\"b\":2}\n";

    /// A folder of this test's own holding [`TWO_LINES`] as `plain.txt` and `plain.txt.gz`.
    fn two_line_files(name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("flowcore-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain.txt");
        std::fs::write(&plain, TWO_LINES).unwrap();
        let gz = dir.join("plain.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, TWO_LINES).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        (dir, plain, gz)
    }

    #[test]
    fn files_plain_gzip_short_and_from_a_pipe_read_the_same_lines() {
        let (dir, plain, gz) = two_line_files("recording");
        let text = TWO_LINES;
        let one_byte = dir.join("one.txt");
        std::fs::write(&one_byte, b"x").unwrap();
        let lines = |path: &Path| {
            let mut r = RecordingReader::open(path).unwrap();
            let mut out = Vec::new();
            while let Some((ts, json)) = r.next_line().unwrap() {
                out.push((ts, json.to_vec()));
            }
            out
        };
        let want = vec![(1, b"{\"a\":1}".to_vec()), (2, b"{\"b\":2}".to_vec())];
        assert_eq!(lines(&plain), want);
        assert_eq!(lines(&gz), want);
        // Shorter than the magic: read, then refused as a line without a timestamp.
        let mut r = RecordingReader::open(&one_byte).unwrap();
        assert!(matches!(
            r.next_line(),
            Err(RecordingError::BadLine { line: 1 })
        ));
        // A FIFO cannot seek: the two bytes looked at come back in front.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
            };
            assert_eq!(lines(&fifo), want);
            writer.join().unwrap();
        } else {
            eprintln!("mkfifo unavailable: the pipe case was not run");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every line `next` gives (time and JSON), then its first error (if any).
    fn drain_lines(
        mut next: impl FnMut() -> Result<Option<(i64, Vec<u8>)>, RecordingError>,
    ) -> (Vec<(i64, Vec<u8>)>, Option<String>) {
        let mut out = Vec::new();
        loop {
            match next() {
                Ok(Some(line)) => out.push(line),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    /// The lines of `text` as the reader gives them.
    fn read_by_reader(text: &[u8]) -> (Vec<(i64, Vec<u8>)>, Option<String>) {
        let mut reader =
            RecordingReader::from_reader(Box::new(std::io::Cursor::new(text.to_vec())));
        drain_lines(|| Ok(reader.next_line()?.map(|(ts, json)| (ts, json.to_vec()))))
    }

    /// The same, through [`Lines`] over the bytes in place.
    fn read_in_place(text: &[u8]) -> (Vec<(i64, Vec<u8>)>, Option<String>) {
        let mut lines = Lines::new(text);
        drain_lines(|| {
            Ok(lines
                .next_line()?
                .map(|(ts, json)| (ts, text[json].to_vec())))
        })
    }

    #[test]
    fn lines_in_place_are_the_readers_lines() {
        for text in [
            &b""[..],
            b"\n\n",
            b"1 {}",
            b"1 {}\n2 {\"a\":1}\n",
            b"1 {}\r\n\r\n\n2 x\r\n3 y",
            b"1 {}\n\nnope {}\n4 {}\n",
            b"1 {}\n 2 {}\n",
            b"17231612539370857680 {}\n",
            b"1723161253937085768 {\"stream\":\"x\"}\n-5 {}\n",
        ] {
            assert_eq!(
                read_in_place(text),
                read_by_reader(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // Long lines across the reader's buffer refills.
        let long: Vec<u8> = (0..300u32)
            .flat_map(|i| format!("{i} {}\n", "x".repeat((i as usize * 977) % 90_000)).into_bytes())
            .collect();
        assert_eq!(read_in_place(&long), read_by_reader(&long));
    }

    #[test]
    fn plain_files_and_memory_are_whole_gzip_and_pipes_are_not() {
        let (dir, plain, gz) = two_line_files("whole");
        let text = TWO_LINES;
        let empty = dir.join("empty.txt");
        std::fs::write(&empty, b"").unwrap();
        let whole = |source: Source| source.whole().unwrap().map(|w| w.to_vec());
        assert_eq!(whole(Source::Path(plain)), Some(text.to_vec()), "mapped");
        assert_eq!(whole(Source::Path(empty)), Some(Vec::new()));
        assert_eq!(
            whole(Source::Memory(text.to_vec().into())),
            Some(text.to_vec())
        );
        assert_eq!(
            whole(Source::Path(gz)),
            None,
            "gzip is read as it decompresses"
        );
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(whole(Source::Path(fifo)), None, "a pipe is read");
        }
        assert!(Source::Path(dir.join("missing")).whole().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eight_digit_words_read_as_their_digits() {
        for (label, digits) in [
            ("zeros", *b"00000000"),
            ("nines", *b"99999999"),
            ("a stamp", *b"17231612"),
            ("ascending", *b"01234567"),
        ] {
            let want: u64 = std::str::from_utf8(&digits).unwrap().parse().unwrap();
            assert_eq!(
                eight_digits(u64::from_le_bytes(digits)),
                Some(want),
                "{label}"
            );
        }
        // Each position with each byte that is not a digit.
        for pos in 0..8 {
            for b in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                let mut digits = *b"12345678";
                digits[pos] = b;
                assert_eq!(eight_digits(u64::from_le_bytes(digits)), None, "{pos} {b}");
            }
        }
    }

    #[test]
    fn timestamps_read_as_i64_parses_them() {
        let cases: &[(&str, &[u8])] = &[
            ("19 digits", b"1723161253937085768 {}"),
            ("i64::MAX", b"9223372036854775807 {}"),
            ("past i64::MAX", b"9223372036854775808 {}"),
            ("20 digits", b"10000000000000000000 {}"),
            ("leading zeros", b"0000000000000000000042 {}"),
            ("a sign", b"+5 {}"),
            ("negative", b"-5 {}"),
            ("no digits", b" {}"),
            ("no space", b"123"),
            ("a letter", b"12a {}"),
            ("zero", b"0 x"),
            ("19 digits, no space", b"1723161253937085768{}"),
            ("19 digits, a letter", b"172316125393708576x {}"),
            ("19 digits, a colon", b"17231612:3937085768 {}"),
            ("19 digits, a slash", b"1723161253937085/68 {}"),
            ("19 zeros", b"0000000000000000000 {}"),
            ("19 nines", b"9999999999999999999 {}"),
            ("18 digits", b"172316125393708576 {}"),
        ];
        for (label, line) in cases {
            let space = line.iter().position(|&b| b == b' ');
            let expected = space.and_then(|space| {
                let ts = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
                Some((ts, space))
            });
            assert_eq!(parse_timestamp(line), expected, "{label}");
        }
    }

    /// Lines across the reader's buffer edges, longer than its buffer, blank ones, CRLF ends
    /// and a last line without a newline come out as `BufRead::lines` would split them.
    #[test]
    fn lines_split_across_reads_come_out_whole() {
        /// Hands out at most 7 bytes a read, as a pipe might.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let long = "x".repeat(3 * READ_CHUNK + 5);
        let mut text = String::new();
        for i in 0..2000 {
            match i % 5 {
                0 => text += &format!("{i} {{\"a\":{i}}}\n"),
                1 => text += &format!("{i} {long}\n"),
                2 => text += "\r\n",
                3 => text += &format!("{i} crlf\r\n"),
                _ => text += &format!("{i} {}\n", "y".repeat(i)),
            }
        }
        text += "7 last";
        let expected: Vec<(i64, String)> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (ts, json) = l.split_once(' ').unwrap();
                (ts.parse().unwrap(), json.to_owned())
            })
            .collect();
        let bytes: &'static [u8] = Box::leak(text.clone().into_bytes().into_boxed_slice());
        for reader in [
            RecordingReader::from_reader(Box::new(bytes)),
            RecordingReader::from_reader(Box::new(Trickle(bytes))),
        ] {
            let mut reader = reader;
            let mut got = Vec::new();
            while let Some((ts, json)) = reader.next_line().unwrap() {
                let json = String::from_utf8(json.to_vec()).unwrap();
                assert_eq!(reader.current(), json.as_bytes());
                got.push((ts, json));
            }
            assert_eq!(got.len(), expected.len());
            assert!(got == expected);
            assert_eq!(reader.line_number(), 2001);
        }
    }
}
