//! Append-only rings: one writer publishes records, readers follow at their own pace.

use crate::abi::{FileKind, Record};
use crate::error::ShmError;
use crate::file::{MappedFile, Permissions};
use crate::idle::Idle;
use crate::seqlock::{ring_stamps, SlotRead};
use core::marker::PhantomData;
use core::sync::atomic::Ordering;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Publishes records of type `R` into `DIR/<stream file>`.
#[derive(Debug)]
pub struct RingWriter<R: Record> {
    file: MappedFile,
    seq: u64,
    mask: u64,
    _record: PhantomData<R>,
}

impl<R: Record> RingWriter<R> {
    /// Creates the ring file (see [`MappedFile::create`]); `capacity` a power of two.
    pub fn create(
        dir: &Path,
        capacity: u64,
        epoch: u64,
        now_ns: u64,
        permissions: Permissions,
    ) -> Result<Self, ShmError> {
        debug_assert_eq!(R::STREAM.kind(), FileKind::Ring);
        let file = MappedFile::create::<R>(dir, capacity, epoch, now_ns, permissions)?;
        Ok(Self {
            file,
            seq: 0,
            mask: capacity - 1,
            _record: PhantomData,
        })
    }

    /// Publishes one record: a few cache lines of stores, no allocation, no system call.
    #[inline]
    pub fn publish(&mut self, record: &R) {
        let (busy, done) = ring_stamps(self.seq);
        self.file.store(self.seq & self.mask, record, busy, done);
        self.seq += 1;
        self.file.write_seq().store(self.seq, Ordering::Release);
    }

    /// Records published so far.
    pub fn published(&self) -> u64 {
        self.seq
    }

    /// Stores the writer's clock in the header. The writer does so with each health record
    /// only, so a stale heartbeat means no exchange second closed: whether the writer is
    /// alive is `writer.lock`'s to say.
    pub fn heartbeat(&self, now_ns: u64) {
        self.file.heartbeat().store(now_ns, Ordering::Release);
    }
}

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest record still in the ring.
    Oldest,
    /// The most recent record, then everything after it.
    Latest,
    /// Only records published after the reader opened.
    Next,
}

/// What a reader has seen go wrong, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Records overwritten before this reader got to them (it was lapped).
    pub lapped: u64,
    /// Copies discarded because the writer was inside the slot (torn reads refused).
    pub torn: u64,
    /// Writer restarts followed (a new file with a new epoch at the path).
    pub restarts: u64,
}

/// Follows a ring of `R` without writing to shared memory.
#[derive(Debug)]
pub struct RingReader<R: Record> {
    file: MappedFile,
    dir: PathBuf,
    next: u64,
    mask: u64,
    stats: ReaderStats,
    _record: PhantomData<R>,
}

impl<R: Record> RingReader<R> {
    /// Opens and validates the ring of `R` under `dir`.
    pub fn open(dir: &Path, from: ReadFrom) -> Result<Self, ShmError> {
        let file = MappedFile::open::<R>(dir)?;
        let mut reader = Self {
            mask: file.header().capacity - 1,
            file,
            dir: dir.to_path_buf(),
            next: 0,
            stats: ReaderStats::default(),
            _record: PhantomData,
        };
        reader.seek(from);
        Ok(reader)
    }

    /// Moves to `from`.
    pub fn seek(&mut self, from: ReadFrom) {
        let written = self.file.write_seq().load(Ordering::Acquire);
        self.next = match from {
            ReadFrom::Oldest => written.saturating_sub(self.file.header().capacity),
            ReadFrom::Latest => written.saturating_sub(1),
            ReadFrom::Next => written,
        };
    }

    /// The next record, or `None` when the reader is caught up. Never blocks, never
    /// returns a torn record; when lapped it skips to the oldest record still there and
    /// counts what it missed in [`Self::stats`].
    #[inline]
    pub fn try_read(&mut self) -> Option<R> {
        let mut out: R = bytemuck::Zeroable::zeroed();
        loop {
            let (_, done) = ring_stamps(self.next);
            match self.file.load(self.next & self.mask, &mut out) {
                SlotRead::Stable(s) if s == done => {
                    self.next += 1;
                    return Some(out);
                }
                SlotRead::Stable(s) | SlotRead::Busy(s) if s > done => self.skip_lapped(),
                // The writer finished this very record during the copy: copy again.
                SlotRead::Busy(s) if s == done => self.stats.torn += 1,
                // Not written yet (or being written now).
                _ => return None,
            }
        }
    }

    fn skip_lapped(&mut self) {
        let written = self.file.write_seq().load(Ordering::Acquire);
        let oldest = written
            .saturating_sub(self.file.header().capacity)
            .max(self.next + 1);
        self.stats.lapped += oldest - self.next;
        self.next = oldest;
    }

    /// The next record, waiting with `idle` until one comes or `timeout` passes. While
    /// idle it checks every 50 ms whether a restarted writer replaced the file, and then
    /// follows the new file from its start.
    pub fn read_blocking(&mut self, idle: Idle, timeout: Option<Duration>) -> Option<R> {
        let start = Instant::now();
        let mut checked = start;
        let mut polls = 0u32;
        loop {
            if let Some(r) = self.try_read() {
                return Some(r);
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) {
                let now = Instant::now();
                if timeout.is_some_and(|t| now - start >= t) {
                    return None;
                }
                if now - checked >= Duration::from_millis(50) {
                    checked = now;
                    let _ = self.follow_restart();
                }
            }
            idle.wait();
        }
    }

    /// If a restarted writer replaced the file, maps the new one and reads it from its
    /// first record. Returns whether it did. One `stat` per call.
    pub fn follow_restart(&mut self) -> Result<bool, ShmError> {
        if !self.replaced() {
            return Ok(false);
        }
        let file = MappedFile::open::<R>(&self.dir)?;
        if file.header().writer_epoch == self.file.header().writer_epoch {
            return Ok(false);
        }
        self.mask = file.header().capacity - 1;
        self.file = file;
        self.next = 0;
        self.stats.restarts += 1;
        Ok(true)
    }

    /// True when the path now names another file than the one mapped (a writer restart).
    /// One `stat`: call it when idle.
    pub fn replaced(&self) -> bool {
        self.file.replaced()
    }

    /// The sequence number of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Records the writer has published.
    pub fn published(&self) -> u64 {
        self.file.write_seq().load(Ordering::Acquire)
    }

    /// The writer's last heartbeat, ns since the Unix epoch.
    pub fn heartbeat_ns(&self) -> u64 {
        self.file.heartbeat().load(Ordering::Acquire)
    }

    /// What went wrong so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The file's header (epoch, capacity, creation time).
    pub fn header(&self) -> &crate::abi::FileHeader {
        self.file.header()
    }
}
