//! A provided-buffer ring: memory the kernel fills for multishot receives, handed back one
//! buffer at a time once its bytes have been parsed.
//!
//! Ownership, as io_uring's contract wants it stated: every buffer in `slab` belongs to the
//! kernel from the moment its entry is published (the tail store) until a completion names
//! its id; from then it belongs to us until [`ProvidedBuffers::recycle`] publishes it
//! again. The ring entries themselves are written only by us and read by the kernel.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::sync::atomic::{AtomicU16, Ordering};

/// `count` buffers of `size` bytes registered as buffer group `group`.
#[derive(Debug)]
pub struct ProvidedBuffers {
    group: u16,
    /// Entries, a power of two.
    count: u16,
    size: usize,
    /// The ring of entries: page aligned, `count * 16` bytes, from mmap.
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    /// The buffers, `count * size` bytes; `u8` storage never moves once allocated.
    slab: Box<[u8]>,
    /// Our copy of the tail; free running, entries are indexed `tail & (count - 1)`.
    tail: u16,
    /// Buffers recycled since the tail was last published.
    unpublished: u16,
    /// Buffers currently ours (named by a completion, not yet recycled); at most `count`.
    held: u16,
}

impl ProvidedBuffers {
    /// Allocates and registers the ring; every buffer starts out the kernel's.
    ///
    /// # Errors
    /// When `count` is not a power of two, the mmap fails, or the kernel refuses the
    /// registration (EINVAL before Linux 5.19).
    pub fn register(uring: &IoUring, group: u16, count: u16, size: usize) -> std::io::Result<Self> {
        if !count.is_power_of_two() || count > 32768 || size == 0 || size > u32::MAX as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "buffer ring: count must be a power of two up to 32768, size 1..4 GiB",
            ));
        }
        let ring_bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping with no address hint has no preconditions;
        // the result is checked against MAP_FAILED before use.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut this = Self {
            group,
            count,
            size,
            ring: ring.cast(),
            ring_bytes,
            slab: vec![0u8; usize::from(count) * size].into_boxed_slice(),
            tail: 0,
            unpublished: 0,
            held: count,
        };
        // SAFETY: `ring` is page aligned (mmap), zeroed, `count` entries long, and lives
        // until Drop, which comes after the IoUring's (the driver drops its ring first,
        // see UringDriver's field order), so the kernel never reads freed memory.
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(this.ring as u64, count, group, 0)?;
        }
        for bid in 0..count {
            this.recycle(bid);
        }
        this.publish();
        Ok(this)
    }

    /// The buffer group id to name in receives.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// Buffers we hold (named by a completion and not yet recycled).
    pub fn held(&self) -> u16 {
        self.held
    }

    /// Takes buffer `bid`, which a completion just handed to us, and returns its first
    /// `len` bytes. It stays ours until [`Self::recycle`].
    ///
    /// # Panics
    /// If `bid` or `len` is out of range (a kernel that broke its contract).
    pub fn take(&mut self, bid: u16, len: usize) -> &mut [u8] {
        assert!(
            bid < self.count && len <= self.size,
            "buffer {bid} len {len}"
        );
        debug_assert!(self.held < self.count);
        self.held += 1;
        let start = usize::from(bid) * self.size;
        &mut self.slab[start..start + len]
    }

    /// Gives buffer `bid` back to the kernel (seen after the next [`Self::publish`]).
    /// Each id must be recycled once per completion that named it.
    pub fn recycle(&mut self, bid: u16) {
        debug_assert!(self.held > 0, "recycling more buffers than were handed out");
        let index = usize::from(self.tail & (self.count - 1));
        let addr = self.slab[usize::from(bid) * self.size..].as_mut_ptr() as u64;
        // SAFETY: `index < count`, so the entry lies inside the mapping; the kernel reads
        // entries only up to the published tail, and this one is past it until publish().
        // The setters leave `resv` alone, which for entry 0 is the shared tail.
        let entry = unsafe { &mut *self.ring.add(index) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.unpublished += 1;
        self.held -= 1;
    }

    /// Makes the recycled buffers visible to the kernel.
    pub fn publish(&mut self) {
        if self.unpublished == 0 {
            return;
        }
        // SAFETY: the tail is the u16 at byte 14 of entry 0, inside the mapping, 2-aligned;
        // the kernel reads it concurrently, so it is accessed only atomically here.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.ring).cast_mut()) };
        // Release: the entries written by recycle() are visible before the new tail.
        tail.store(self.tail, Ordering::Release);
        self.unpublished = 0;
    }
}

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in register() with this length and is unmapped once;
        // the kernel no longer reads it (the ring was dropped first or the group
        // unregistered: see `register`).
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_bytes);
        }
    }
}
