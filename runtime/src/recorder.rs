//! `--record DIR`: every received frame and REST snapshot, with its receive timestamp, in
//! the shared recording format (`<local_ns> <raw>` a line, one file per connection), so
//! that `flowcore replay` of the files reproduces the run.
//!
//! Feed threads do not write files: each pushes its lines into its own byte ring (rtrb),
//! and one recorder thread drains the rings into the files. A full ring makes the feed
//! wait (counted), it never drops a line. Opening a file (once per connection) goes through
//! a channel, off the per-message path.

use crate::config::IdleStrategy;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Bytes per feed's record ring: room for bursts of the largest frames.
pub const RING_BYTES: usize = 16 << 20;
const HEADER: usize = 8;

/// A feed thread's end of the recorder.
#[derive(Debug)]
pub struct RecordWriter {
    ring: rtrb::Producer<u8>,
    opens: mpsc::Sender<(u32, PathBuf)>,
    next_file: Arc<AtomicU32>,
    dir: PathBuf,
    /// Times a line waited for room in the ring.
    pub waits: u64,
    /// Lines handed over.
    pub lines: u64,
    /// Lines larger than the whole ring, refused (the transport's message limit keeps
    /// frames far below it).
    pub oversized: u64,
}

impl RecordWriter {
    /// Names a new file in the recording folder; returns its id for [`Self::line`].
    pub fn open(&mut self, name: &str) -> u32 {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{name}_{id:03}.txt"));
        // The recorder outlives every writer: a send only fails when it is gone, and then
        // its error is reported when the run joins it.
        let _ = self.opens.send((id, path));
        id
    }

    /// Hands one line to the recorder, waiting while the ring is full.
    pub fn line(&mut self, file: u32, local_ts: i64, bytes: &[u8], idle: IdleStrategy) {
        let mut digits = [0u8; 20];
        let ts = format_i64(local_ts, &mut digits);
        let body = ts.len() + 1 + bytes.len() + 1;
        let need = HEADER + body;
        if need > RING_BYTES {
            self.oversized += 1;
            return;
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
            .chain((body as u32).to_le_bytes());
        let line = ts
            .iter()
            .copied()
            .chain([b' '])
            .chain(bytes.iter().copied())
            .chain([b'\n']);
        if let Ok(chunk) = self.ring.write_chunk_uninit(need) {
            chunk.fill_from_iter(header.chain(line));
        }
        self.lines += 1;
    }
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

/// The recorder thread and the writers of its feeds.
#[derive(Debug)]
pub struct Recorder {
    handle: JoinHandle<io::Result<u64>>,
}

impl Recorder {
    /// Starts the recorder for `feeds` feed threads writing into `dir` (created if needed).
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn start(dir: &Path, feeds: usize) -> io::Result<(Recorder, Vec<RecordWriter>)> {
        std::fs::create_dir_all(dir)?;
        let (opens_tx, opens_rx) = mpsc::channel();
        let next_file = Arc::new(AtomicU32::new(0));
        let mut consumers = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..feeds {
            let (producer, consumer) = rtrb::RingBuffer::new(RING_BYTES);
            consumers.push(consumer);
            writers.push(RecordWriter {
                ring: producer,
                opens: opens_tx.clone(),
                next_file: next_file.clone(),
                dir: dir.to_path_buf(),
                waits: 0,
                lines: 0,
                oversized: 0,
            });
        }
        drop(opens_tx);
        let handle = std::thread::Builder::new()
            .name("flowcore-recorder".into())
            .spawn(move || drain(consumers, opens_rx))?;
        Ok((Recorder { handle }, writers))
    }

    /// Waits until every writer is dropped and every line is on disk; lines written.
    ///
    /// # Errors
    /// The first I/O error of the recorder thread.
    pub fn finish(self) -> io::Result<u64> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("the recorder thread panicked"))?
    }
}

fn drain(
    mut rings: Vec<rtrb::Consumer<u8>>,
    opens: mpsc::Receiver<(u32, PathBuf)>,
) -> io::Result<u64> {
    let mut files: Vec<Option<BufWriter<File>>> = Vec::new();
    let mut lines = 0u64;
    let open = |files: &mut Vec<Option<BufWriter<File>>>, (id, path): (u32, PathBuf)| {
        let file = File::create(&path)?;
        let id = id as usize;
        if files.len() <= id {
            files.resize_with(id + 1, || None);
        }
        files[id] = Some(BufWriter::with_capacity(1 << 20, file));
        io::Result::Ok(())
    };
    loop {
        while let Ok(request) = opens.try_recv() {
            open(&mut files, request)?;
        }
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
                let id = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
                // The writer announced the file before its first line.
                while files.get(id).is_none_or(Option::is_none) {
                    match opens.recv() {
                        Ok(request) => open(&mut files, request)?,
                        Err(_) => return Err(io::Error::other("a line for a file never opened")),
                    }
                }
                let entry = ring.read_chunk(HEADER + len).map_err(io::Error::other)?;
                let (a, b) = entry.as_slices();
                let file = files[id].as_mut().expect("opened above");
                if a.len() >= HEADER {
                    file.write_all(&a[HEADER..])?;
                    file.write_all(b)?;
                } else {
                    file.write_all(&b[HEADER - a.len()..])?;
                }
                entry.commit_all();
                lines += 1;
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
    for file in files.iter_mut().flatten() {
        file.flush()?;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_their_files_in_order() {
        let dir = std::env::temp_dir().join(format!("flowcore-recorder-{}", std::process::id()));
        let (recorder, mut writers) = Recorder::start(&dir, 2).unwrap();
        let a = writers[0].open("a");
        let b = writers[1].open("b");
        for i in 0..20_000i64 {
            writers[0].line(a, i, b"{\"x\":1}", IdleStrategy::Park);
            writers[1].line(b, -i, &vec![b'y'; (i % 300) as usize], IdleStrategy::Park);
        }
        drop(writers);
        assert_eq!(recorder.finish().unwrap(), 40_000);
        let text_a = std::fs::read_to_string(dir.join(format!("a_{a:03}.txt"))).unwrap();
        let text_b = std::fs::read_to_string(dir.join(format!("b_{b:03}.txt"))).unwrap();
        for (i, line) in text_a.lines().enumerate() {
            assert_eq!(line, format!("{i} {{\"x\":1}}"));
        }
        for (i, line) in text_b.lines().enumerate() {
            let want = format!("{} {}", -(i as i64), "y".repeat(i % 300));
            assert_eq!(line, want);
        }
        assert_eq!(text_a.lines().count(), 20_000);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
