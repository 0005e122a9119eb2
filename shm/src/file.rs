//! One mapped bus file: creating it (preallocated, then renamed into place), opening and
//! validating it, and its memory as atomic words.

use crate::abi::{
    slot_size, FileHeader, FileKind, Record, ABI_VERSION, HEADER_SIZE, MAGIC, STAMP_SIZE,
    WRITE_SEQ_OFFSET,
};
use crate::error::ShmError;
use crate::seqlock::{self, SlotRead};
use bytemuck::Pod;
use core::sync::atomic::{AtomicU64, Ordering};
use memmap2::MmapRaw;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Who may open the files a writer creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// `None`: owner only (0600). `Some(gid)`: also readable by that group (0640).
    pub group: Option<u32>,
}

/// A mapped bus file and what its header says.
#[derive(Debug)]
pub struct MappedFile {
    map: MmapRaw,
    header: FileHeader,
    path: PathBuf,
    /// (device, inode) of the file mapped: a writer restart renames a new file over the
    /// path, and a reader compares these to notice.
    identity: (u64, u64),
}

impl MappedFile {
    /// Creates the file for record type `R` with `capacity` slots under `dir`: written to a
    /// temporary name, preallocated (a full file system fails here, not later as SIGBUS on
    /// a page fault), header written, then renamed over any older file. A reader that has
    /// the older file mapped keeps valid memory: a mapped file is never truncated.
    pub fn create<R: Record>(
        dir: &Path,
        capacity: u64,
        epoch: u64,
        created_ns: u64,
        permissions: Permissions,
    ) -> Result<Self, ShmError> {
        let kind = R::STREAM.kind();
        if capacity == 0 || (kind == FileKind::Ring && !capacity.is_power_of_two()) {
            return Err(ShmError::BadCapacity {
                stream: R::STREAM.file_name(),
                capacity,
            });
        }
        let record_size = core::mem::size_of::<R>();
        let slot = slot_size(record_size);
        let file_size = capacity
            .checked_mul(slot as u64)
            .and_then(|s| s.checked_add(HEADER_SIZE as u64))
            .ok_or(ShmError::BadCapacity {
                stream: R::STREAM.file_name(),
                capacity,
            })?;
        let path = dir.join(R::STREAM.file_name());
        let tmp = dir.join(format!(
            ".{}.tmp.{}",
            R::STREAM.file_name(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let io = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| ShmError::Io {
                what,
                path: p,
                source,
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(if permissions.group.is_some() {
                0o640
            } else {
                0o600
            })
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        if let Some(gid) = permissions.group {
            std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(io("chown", &tmp))?;
        }
        allocate(&file, file_size).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            ShmError::NoSpace {
                path: path.clone(),
                bytes: file_size,
                source,
            }
        })?;
        // Populated: the page tables are filled now, not by a fault on the hot path.
        let map = memmap2::MmapOptions::new()
            .populate()
            .map_raw(&file)
            .map_err(io("map", &tmp))?;
        let header = FileHeader {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: HEADER_SIZE as u32,
            kind: kind as u32,
            stream: R::STREAM as u32,
            layout_hash: R::LAYOUT_HASH,
            writer_epoch: epoch,
            capacity,
            record_size: record_size as u32,
            slot_size: slot as u32,
            file_size,
            created_ns,
            record_version: R::VERSION,
            ..bytemuck::Zeroable::zeroed()
        };
        let identity = identity(&file).map_err(io("stat", &tmp))?;
        let mapped = Self {
            map,
            header,
            path: path.clone(),
            identity,
        };
        let words: &[u64] = bytemuck::cast_slice(bytemuck::bytes_of(&header));
        for (cell, &w) in mapped.words(0, HEADER_SIZE / 8).iter().zip(words) {
            cell.store(w, Ordering::Relaxed);
        }
        // The rename publishes the file; nobody has it mapped before.
        std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        Ok(mapped)
    }

    /// Opens and validates the file of record type `R` under `dir`, read-only.
    pub fn open<R: Record>(dir: &Path) -> Result<Self, ShmError> {
        let path = dir.join(R::STREAM.file_name());
        let file = File::open(&path).map_err(|source| ShmError::Io {
            what: "open",
            path: path.clone(),
            source,
        })?;
        let io = |what: &'static str| {
            let path = path.clone();
            move |source| ShmError::Io { what, path, source }
        };
        let size = file.metadata().map_err(io("stat"))?.len();
        if size < HEADER_SIZE as u64 {
            return Err(ShmError::Truncated { path, size });
        }
        let map = memmap2::MmapOptions::new()
            .populate()
            .map_raw_read_only(&file)
            .map_err(io("map"))?;
        let identity = identity(&file).map_err(io("stat"))?;
        let mut mapped = Self {
            map,
            header: bytemuck::Zeroable::zeroed(),
            path,
            identity,
        };
        let mut words = [0u64; HEADER_SIZE / 8];
        for (w, cell) in words.iter_mut().zip(mapped.words(0, HEADER_SIZE / 8)) {
            *w = cell.load(Ordering::Acquire);
        }
        mapped.header = bytemuck::cast(words);
        mapped.validate::<R>(size)?;
        Ok(mapped)
    }

    fn validate<R: Record>(&self, size: u64) -> Result<(), ShmError> {
        let h = &self.header;
        let bad = |why: String| ShmError::BadHeader {
            path: self.path.clone(),
            why,
        };
        if h.magic != MAGIC {
            return Err(bad(format!("magic {:?} is not {:?}", h.magic, MAGIC)));
        }
        if h.abi_version != ABI_VERSION {
            return Err(ShmError::AbiVersion {
                path: self.path.clone(),
                found: h.abi_version,
                supported: ABI_VERSION,
            });
        }
        if h.stream != R::STREAM as u32 || h.kind != R::STREAM.kind() as u32 {
            return Err(bad(format!(
                "stream {} kind {} where {:?} was expected",
                h.stream,
                h.kind,
                R::STREAM
            )));
        }
        if h.layout_hash != R::LAYOUT_HASH
            || h.record_size as usize != core::mem::size_of::<R>()
            || h.record_version != R::VERSION
        {
            return Err(bad(format!(
                "record layout {:#x} v{} ({} bytes) where this reader knows {:#x} v{} ({} bytes)",
                h.layout_hash,
                h.record_version,
                h.record_size,
                R::LAYOUT_HASH,
                R::VERSION,
                core::mem::size_of::<R>()
            )));
        }
        let expected =
            (HEADER_SIZE as u64).saturating_add(h.capacity.saturating_mul(h.slot_size as u64));
        if h.header_size as usize != HEADER_SIZE
            || h.slot_size as usize != slot_size(h.record_size as usize)
            || h.capacity == 0
            || (h.kind == FileKind::Ring as u32 && !h.capacity.is_power_of_two())
            || h.file_size != expected
        {
            return Err(bad(format!(
                "inconsistent sizes: header {}, slot {}, capacity {}, file size {}",
                h.header_size, h.slot_size, h.capacity, h.file_size
            )));
        }
        if size != h.file_size || (self.map.len() as u64) != h.file_size {
            return Err(ShmError::Truncated {
                path: self.path.clone(),
                size,
            });
        }
        if h.writer_epoch == 0 {
            return Err(bad("writer epoch 0".into()));
        }
        Ok(())
    }

    /// The header as it was when the file was created or opened.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The path the file was created at or opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the path now names another file than the one mapped (a writer restarted)
    /// or no file at all. One `stat`: call it when idle, not per record.
    pub fn replaced(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != self.identity,
            Err(_) => true,
        }
    }

    /// `n` words from byte `offset`, as atomics.
    ///
    /// # Panics
    /// If the range is not inside the mapping or `offset` is not 8-byte aligned: callers
    /// pass offsets derived from a validated header.
    pub fn words(&self, offset: usize, n: usize) -> &[AtomicU64] {
        assert!(offset.is_multiple_of(8) && offset + n * 8 <= self.map.len());
        // SAFETY: the range is inside the mapping (checked above), which lives as long as
        // `self` (never unmapped or truncated while mapped: writers rename new files in
        // place instead). The mapping is page aligned and `offset` a multiple of 8, so each
        // word is aligned; `AtomicU64` has the size and alignment of `u64` and any bit
        // pattern is valid. Other processes touch this memory only through atomic
        // operations of the same width, so no non-atomic access ever races. A read-only
        // mapping is only ever loaded from (readers never store).
        unsafe { core::slice::from_raw_parts(self.map.as_ptr().add(offset).cast::<AtomicU64>(), n) }
    }

    /// The header's `write_seq` cell.
    pub fn write_seq(&self) -> &AtomicU64 {
        &self.words(WRITE_SEQ_OFFSET, 1)[0]
    }

    /// The header's `heartbeat_ns` cell.
    pub fn heartbeat(&self) -> &AtomicU64 {
        &self.words(WRITE_SEQ_OFFSET + 8, 1)[0]
    }

    /// Stores `record` in slot `index` under the stamps `busy` then `done` (the slot
    /// protocol, [`seqlock::write`]). Only the file's single writer calls this.
    #[inline]
    pub(crate) fn store<R: Pod>(&self, index: u64, record: &R, busy: u64, done: u64) {
        let (stamp, slot) = self.slot(index);
        let words = bytemuck::cast_slice(core::slice::from_ref(record));
        seqlock::write(stamp, slot, words, busy, done);
    }

    /// Copies slot `index` into `out` and says whether the copy is consistent
    /// ([`seqlock::read`]).
    #[inline]
    pub(crate) fn load<R: Pod>(&self, index: u64, out: &mut R) -> SlotRead {
        let (stamp, slot) = self.slot(index);
        seqlock::read(
            stamp,
            slot,
            bytemuck::cast_slice_mut(core::slice::from_mut(out)),
        )
    }

    /// The stamp of slot `index`. For the writer, whose own last store it is.
    #[inline]
    pub(crate) fn stamp(&self, index: u64) -> u64 {
        self.slot(index).0.load(Ordering::Relaxed)
    }

    /// Slot `index`: its stamp and its payload words.
    #[inline]
    fn slot(&self, index: u64) -> (&AtomicU64, &[AtomicU64]) {
        let slot = self.header.slot_size as usize;
        let at = HEADER_SIZE + index as usize * slot;
        let words = self.words(at, slot / 8);
        let (stamp, rest) = words.split_first().expect("a slot has a stamp");
        (stamp, &rest[..(self.header.record_size as usize) / 8])
    }
}

const _: () = assert!(STAMP_SIZE == 8);

fn identity(file: &File) -> std::io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Reserves `len` bytes of backing store for `file` (tmpfs and most file systems).
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: a plain system call on a file descriptor we own, with no pointers.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
