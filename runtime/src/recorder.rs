//! `--record DIR`: every received frame, REST answer and session marker, with its receive
//! timestamp and the connection it came on, so that `flowcore replay` of the recording
//! reproduces the run. Two formats ([`RecordFormat`]): the binary journal (the default;
//! preallocated memory-mapped segments, `flowcore_feeds::journal`) or the text recording
//! format (`<local_ns> <raw>` a line, one file per connection).
//!
//! Feed threads do not write files: each pushes entries into its own byte ring (rtrb), and
//! one recorder thread drains the rings into the recording. A connection's start and end
//! travel through the same ring as its lines, so they stay in order. A full ring makes the
//! feed wait (counted), it never drops a line.

use crate::config::{IdleStrategy, RecordFormat};
use flowcore_feeds::journal::{JournalStats, JournalWriter, RecordKind, Repair};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes per feed's record ring: room for bursts of the largest frames.
pub const RING_BYTES: usize = 16 << 20;
/// A ring entry: file id u32, payload length u32, receive time i64, kind u8, payload.
const HEADER: usize = 17;

/// A feed thread's end of the recorder.
#[derive(Debug)]
pub struct RecordWriter {
    ring: rtrb::Producer<u8>,
    next_file: Arc<AtomicU32>,
    /// Times an entry waited for room in the ring.
    pub waits: u64,
    /// Lines handed over.
    pub lines: u64,
    /// Lines larger than the whole ring, refused (the transport's message limit keeps
    /// frames far below it).
    pub oversized: u64,
}

impl RecordWriter {
    /// Starts a new file (text) or stream (journal) named `name` (`<venue>_<symbol>`);
    /// its id for [`Self::line`].
    pub fn open(&mut self, name: &str, local_ts: i64, idle: IdleStrategy) -> u32 {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.push(id, local_ts, RecordKind::StreamOpen, name.as_bytes(), idle);
        id
    }

    /// Ends a file or stream: nothing more is written to it.
    pub fn close(&mut self, file: u32, local_ts: i64, idle: IdleStrategy) {
        self.push(file, local_ts, RecordKind::StreamClose, &[], idle);
    }

    /// Hands one line to the recorder, waiting while the ring is full.
    pub fn line(
        &mut self,
        file: u32,
        local_ts: i64,
        kind: RecordKind,
        bytes: &[u8],
        idle: IdleStrategy,
    ) {
        if self.push(file, local_ts, kind, bytes, idle) {
            self.lines += 1;
        }
    }

    fn push(
        &mut self,
        file: u32,
        local_ts: i64,
        kind: RecordKind,
        bytes: &[u8],
        idle: IdleStrategy,
    ) -> bool {
        let need = HEADER + bytes.len();
        if need > RING_BYTES {
            self.oversized += 1;
            return false;
        }
        let mut rounds = 0;
        while self.ring.slots() < need {
            self.waits += u64::from(rounds == 0);
            idle.wait(rounds);
            rounds = rounds.saturating_add(1);
        }
        let header = file
            .to_le_bytes()
            .into_iter()
            .chain((bytes.len() as u32).to_le_bytes())
            .chain(local_ts.to_le_bytes())
            .chain([kind as u8]);
        if let Ok(chunk) = self.ring.write_chunk_uninit(need) {
            chunk.fill_from_iter(header.chain(bytes.iter().copied()));
        }
        true
    }
}

/// What the recorder wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Lines (frames, REST answers, markers) written.
    pub lines: u64,
    /// The journal's counts (`None` for text).
    pub journal: Option<JournalStats>,
    /// A torn tail cut off the journal this run appended to.
    pub repaired: Option<Repair>,
}

/// The recorder thread and the writers of its feeds.
#[derive(Debug)]
pub struct Recorder {
    handle: JoinHandle<io::Result<RecordSummary>>,
}

impl Recorder {
    /// Starts the recorder for `feeds` feed threads writing into `dir` (created if needed).
    /// A journal already in `dir` is appended to, after its torn tail (if any) is cut off.
    ///
    /// # Errors
    /// When the folder cannot be created or the journal in it cannot be opened.
    pub fn start(
        dir: &Path,
        format: RecordFormat,
        feeds: usize,
    ) -> io::Result<(Recorder, Vec<RecordWriter>)> {
        std::fs::create_dir_all(dir)?;
        let (sink, repaired) = match format {
            RecordFormat::Text => (Sink::Text(dir.to_path_buf(), Vec::new()), None),
            RecordFormat::Journal(options) => {
                let (journal, repaired) =
                    JournalWriter::open(dir, options).map_err(io::Error::other)?;
                (Sink::Journal(Box::new(journal), Vec::new()), repaired)
            }
        };
        let next_file = Arc::new(AtomicU32::new(0));
        let mut consumers = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..feeds {
            let (producer, consumer) = rtrb::RingBuffer::new(RING_BYTES);
            consumers.push(consumer);
            writers.push(RecordWriter {
                ring: producer,
                next_file: next_file.clone(),
                waits: 0,
                lines: 0,
                oversized: 0,
            });
        }
        let handle = std::thread::Builder::new()
            .name("flowcore-recorder".into())
            .spawn(move || {
                let mut summary = drain(consumers, sink)?;
                summary.repaired = repaired;
                Ok(summary)
            })?;
        Ok((Recorder { handle }, writers))
    }

    /// Waits until every writer is dropped and every line is written.
    ///
    /// # Errors
    /// The first I/O error of the recorder thread.
    pub fn finish(self) -> io::Result<RecordSummary> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("the recorder thread panicked"))?
    }
}

/// Where the recorder thread writes; both index their files or streams by the writers'
/// file ids.
enum Sink {
    Text(PathBuf, Vec<Option<BufWriter<File>>>),
    Journal(Box<JournalWriter>, Vec<Option<u32>>),
}

impl Sink {
    fn entry(
        &mut self,
        file: usize,
        ts: i64,
        kind: RecordKind,
        body: [&[u8]; 2],
    ) -> io::Result<()> {
        match (self, kind) {
            (Sink::Text(dir, files), RecordKind::StreamOpen) => {
                let name = String::from_utf8_lossy(&[body[0], body[1]].concat()).into_owned();
                let out = File::create(dir.join(format!("{name}_{file:03}.txt")))?;
                *slot(files, file) = Some(BufWriter::with_capacity(1 << 20, out));
            }
            (Sink::Text(_, files), RecordKind::StreamClose) => {
                if let Some(mut out) = slot(files, file).take() {
                    out.flush()?;
                }
            }
            (Sink::Text(_, files), _) => {
                let out = slot(files, file)
                    .as_mut()
                    .ok_or_else(|| io::Error::other("a line for a file never opened"))?;
                let mut digits = [0u8; 20];
                out.write_all(format_i64(ts, &mut digits))?;
                out.write_all(b" ")?;
                out.write_all(body[0])?;
                out.write_all(body[1])?;
                out.write_all(b"\n")?;
            }
            (Sink::Journal(journal, streams), RecordKind::StreamOpen) => {
                let name = String::from_utf8_lossy(&[body[0], body[1]].concat()).into_owned();
                let id = journal.open_stream(&name, ts).map_err(io::Error::other)?;
                *slot(streams, file) = Some(id);
            }
            (Sink::Journal(journal, streams), RecordKind::StreamClose) => {
                if let Some(id) = slot(streams, file).take() {
                    journal.close_stream(id, ts).map_err(io::Error::other)?;
                }
            }
            (Sink::Journal(journal, streams), kind) => {
                let id = slot(streams, file)
                    .ok_or_else(|| io::Error::other("a line for a stream never opened"))?;
                // Refused only when larger than a segment, which the configuration rules out
                // (record.segment_mb holds two of the largest messages); counted regardless.
                journal
                    .append(kind, id, ts, body)
                    .map_err(io::Error::other)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> io::Result<Option<JournalStats>> {
        match self {
            Sink::Text(_, files) => {
                for mut out in files.into_iter().flatten() {
                    out.flush()?;
                }
                Ok(None)
            }
            Sink::Journal(journal, _) => journal.finish().map(Some).map_err(io::Error::other),
        }
    }
}

fn slot<T>(v: &mut Vec<Option<T>>, i: usize) -> &mut Option<T> {
    if v.len() <= i {
        v.resize_with(i + 1, || None);
    }
    &mut v[i]
}

fn drain(mut rings: Vec<rtrb::Consumer<u8>>, mut sink: Sink) -> io::Result<RecordSummary> {
    let mut lines = 0u64;
    loop {
        let mut moved = false;
        for ring in &mut rings {
            while ring.slots() >= HEADER {
                // Peek at the header: the chunk is not committed, so it stays in the ring.
                let mut h = [0u8; HEADER];
                {
                    let header = ring.read_chunk(HEADER).map_err(io::Error::other)?;
                    let (a, b) = header.as_slices();
                    h[..a.len()].copy_from_slice(a);
                    h[a.len()..].copy_from_slice(b);
                }
                let file = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
                let len = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) as usize;
                let ts = i64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
                let kind = RecordKind::from_code(h[16])
                    .ok_or_else(|| io::Error::other("a ring entry of no known kind"))?;
                let entry = ring.read_chunk(HEADER + len).map_err(io::Error::other)?;
                let (a, b) = entry.as_slices();
                let body = if a.len() >= HEADER {
                    [&a[HEADER..], b]
                } else {
                    [&b[HEADER - a.len()..], &[][..]]
                };
                sink.entry(file, ts, kind, body)?;
                entry.commit_all();
                lines += u64::from(kind.is_line());
                moved = true;
            }
        }
        if !moved {
            if rings.iter().all(|r| r.is_abandoned() && r.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let journal = sink.finish()?;
    Ok(RecordSummary {
        lines,
        journal,
        repaired: None,
    })
}

fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_feeds::journal::{JournalIndex, JournalOptions, MIN_SEGMENT_BYTES};

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flowcore-recorder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Two feeds, each with two connections one after the other; returns what each of the
    /// four files or streams should hold, in open order.
    /// A file's or stream's lines: (receive time, bytes).
    type Lines = Vec<(i64, Vec<u8>)>;

    fn record(dir: &Path, format: RecordFormat) -> (RecordSummary, Vec<Lines>) {
        let (recorder, mut writers) = Recorder::start(dir, format, 2).unwrap();
        let park = IdleStrategy::Park;
        let mut want = Vec::new();
        for round in 0..2i64 {
            let a = writers[0].open("binance-spot_btcusdt", round, park);
            let b = writers[1].open("binance-usdm_btcusdt", round, park);
            let (mut wa, mut wb) = (Vec::new(), Vec::new());
            for i in 0..10_000i64 {
                let ts = round * 100_000 + i;
                writers[0].line(a, ts, RecordKind::Frame, b"{\"x\":1}", park);
                let y = vec![b'y'; (i % 300) as usize + 1];
                writers[1].line(b, -ts, RecordKind::Rest, &y, park);
                wa.push((ts, b"{\"x\":1}".to_vec()));
                wb.push((-ts, y));
            }
            writers[0].close(a, round, park);
            writers[1].close(b, round, park);
            want.push(wa);
            want.push(wb);
        }
        drop(writers);
        (recorder.finish().unwrap(), want)
    }

    #[test]
    fn text_lines_reach_their_files_in_order() {
        let dir = temp("text");
        let (summary, want) = record(&dir, RecordFormat::Text);
        assert_eq!(summary.lines, 40_000);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort_by_key(|p| p.to_str().unwrap().rsplit('_').next().unwrap().to_string());
        assert_eq!(names.len(), 4);
        for (path, want) in names.iter().zip(&want) {
            let text = std::fs::read_to_string(path).unwrap();
            let got: Vec<(i64, Vec<u8>)> = text
                .lines()
                .map(|l| {
                    let (ts, json) = l.split_once(' ').unwrap();
                    (ts.parse().unwrap(), json.as_bytes().to_vec())
                })
                .collect();
            assert_eq!(&got, want, "{}", path.display());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn journal_streams_hold_their_lines_in_order_across_segments() {
        let dir = temp("journal");
        let options = JournalOptions {
            segment_bytes: MIN_SEGMENT_BYTES,
            compress: false,
        };
        let (summary, want) = record(&dir, RecordFormat::Journal(options));
        assert_eq!(summary.lines, 40_000);
        let stats = summary.journal.unwrap();
        assert!(stats.segments > 10 && stats.oversized == 0, "{stats:?}");
        let index = JournalIndex::open(&dir).unwrap();
        // Stream ids follow the order the recorder met the opens in, which interleaves the
        // feeds as it pleases; each feed's own connections keep their order.
        for (name, wants) in [
            ("binance-spot_btcusdt", [&want[0], &want[2]]),
            ("binance-usdm_btcusdt", [&want[1], &want[3]]),
        ] {
            let streams: Vec<_> = index.streams().iter().filter(|s| s.name == name).collect();
            assert_eq!(streams.len(), 2, "{name}");
            for (stream, want) in streams.into_iter().zip(wants) {
                let mut reader = index.stream(stream.id);
                let mut got = Vec::new();
                while let Some((ts, bytes)) = reader.next_line().unwrap() {
                    got.push((ts, bytes.to_vec()));
                }
                assert_eq!(&got, want, "stream {}", stream.id);
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
