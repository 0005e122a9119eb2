//! The shared recording format: one message per line, `<local_receive_ns> <raw JSON>`,
//! plain or gzip (by the `.gz` suffix or the gzip magic bytes).

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

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
}

/// Reads one recording line by line into a reused buffer.
pub struct RecordingReader {
    inner: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
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
        let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
        let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let inner: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)))
        } else {
            Box::new(file)
        };
        Ok(Self::from_reader(inner))
    }

    /// Reads a recording from any buffered reader (tests feed edited recordings this way).
    pub fn from_reader(inner: Box<dyn BufRead + Send>) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(1 << 16),
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
        loop {
            self.buf.clear();
            if self.inner.read_until(b'\n', &mut self.buf)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = trim_end(&self.buf);
            if line.is_empty() {
                continue;
            }
            let space = line
                .iter()
                .position(|&b| b == b' ')
                .ok_or(RecordingError::BadLine { line: self.line })?;
            let ts = std::str::from_utf8(&line[..space])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(RecordingError::BadLine { line: self.line })?;
            self.json = space + 1..line.len();
            return Ok(Some((ts, &self.buf[self.json.clone()])));
        }
    }

    /// The JSON of the last line [`Self::next_line`] returned (empty before the first),
    /// so a caller can hold a line without copying it.
    pub fn current(&self) -> &[u8] {
        &self.buf[self.json.clone()]
    }

    /// 1-based number of the last line read.
    pub fn line_number(&self) -> u64 {
        self.line
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}
