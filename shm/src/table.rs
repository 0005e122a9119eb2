//! Latest-value tables: slot `k` holds the latest record for key `k` (a symbol id).

use crate::abi::{FileKind, Record};
use crate::error::ShmError;
use crate::file::{MappedFile, Permissions};
use crate::seqlock::SlotRead;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;
use std::path::Path;

/// Overwrites the latest record per key.
#[derive(Debug)]
pub struct TableWriter<R: Record> {
    file: MappedFile,
    updates: u64,
    _record: PhantomData<R>,
}

impl<R: Record> TableWriter<R> {
    /// Creates the table file with `capacity` keys.
    pub fn create(
        dir: &Path,
        capacity: u64,
        epoch: u64,
        now_ns: u64,
        permissions: Permissions,
    ) -> Result<Self, ShmError> {
        debug_assert_eq!(R::STREAM.kind(), FileKind::Table);
        let file = MappedFile::create::<R>(dir, capacity, epoch, now_ns, permissions)?;
        Ok(Self {
            file,
            updates: 0,
            _record: PhantomData,
        })
    }

    /// Replaces the record of `key`.
    #[inline]
    pub fn update(&mut self, key: u32, record: &R) -> Result<(), ShmError> {
        let capacity = self.file.header().capacity;
        if u64::from(key) >= capacity {
            return Err(ShmError::KeyOutOfRange {
                key: key.into(),
                capacity,
            });
        }
        let last = self.file.stamp(key.into());
        self.file.store(key.into(), record, last + 1, last + 2);
        self.updates += 1;
        self.file.write_seq().store(self.updates, Ordering::Release);
        Ok(())
    }

    /// Stores the writer's clock in the header.
    pub fn heartbeat(&self, now_ns: u64) {
        self.file.heartbeat().store(now_ns, Ordering::Release);
    }
}

/// Reads the latest records of a table.
#[derive(Debug)]
pub struct TableReader<R: Record> {
    file: MappedFile,
    torn: u64,
    _record: PhantomData<R>,
}

/// A writer that died inside a slot leaves its stamp odd; a reader gives up after this
/// many attempts instead of spinning forever.
const MAX_ATTEMPTS: u32 = 1 << 20;

impl<R: Record> TableReader<R> {
    /// Opens and validates the table of `R` under `dir`.
    pub fn open(dir: &Path) -> Result<Self, ShmError> {
        Ok(Self {
            file: MappedFile::open::<R>(dir)?,
            torn: 0,
            _record: PhantomData,
        })
    }

    /// Number of keys.
    pub fn capacity(&self) -> u64 {
        self.file.header().capacity
    }

    /// The latest record of `key` and its version (which grows with every update), or
    /// `None` if the key was never written (or is outside the table).
    pub fn read(&mut self, key: u32) -> Option<(R, u64)> {
        if u64::from(key) >= self.capacity() {
            return None;
        }
        let mut out: R = bytemuck::Zeroable::zeroed();
        for _ in 0..MAX_ATTEMPTS {
            match self.file.load(key.into(), &mut out) {
                SlotRead::Stable(0) => return None,
                SlotRead::Stable(s) => return Some((out, s / 2)),
                SlotRead::Busy(_) => {
                    self.torn += 1;
                    core::hint::spin_loop();
                }
            }
        }
        None
    }

    /// Copies refused because the writer was inside the slot.
    pub fn torn(&self) -> u64 {
        self.torn
    }

    /// The file's header.
    pub fn header(&self) -> &crate::abi::FileHeader {
        self.file.header()
    }

    /// True when a restarted writer replaced the file (see [`MappedFile::replaced`]).
    pub fn replaced(&self) -> bool {
        self.file.replaced()
    }
}
