//! The slot protocol: a sequence stamp guarding a payload of 64-bit words (a seqlock).
//!
//! One writer, any number of readers, no reader ever writes. The writer makes the stamp odd,
//! stores the payload, then makes the stamp even with release ordering; a reader loads the
//! stamp with acquire, copies the payload with atomic loads, fences, and loads the stamp
//! again: the copy is good only when both loads saw the same even stamp (Boehm, "Can
//! seqlocks get along with programming language memory models?", 2012, figure 6).
//!
//! The code is generic over [`Word`] so that the loom model (`shm/tests/loom_seqlock.rs`)
//! runs these very functions on loom's atomics, while the mapped files run them on
//! `std`'s.

use core::sync::atomic::{AtomicU64, Ordering};

/// A 64-bit atomic cell and the fence of the same memory model.
pub trait Word {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// A memory fence.
    fn fence(order: Ordering);
}

impl Word for AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
    #[inline(always)]
    fn fence(order: Ordering) {
        core::sync::atomic::fence(order)
    }
}

/// Stores `payload` under `stamp`, which reads `busy` (odd) while the payload is written and
/// `done` (even, greater than any stamp this slot had) afterwards. Single writer only.
#[inline]
pub fn write<W: Word>(stamp: &W, slot: &[W], payload: &[u64], busy: u64, done: u64) {
    debug_assert!(!busy.is_multiple_of(2) && done.is_multiple_of(2) && slot.len() >= payload.len());
    stamp.store(busy, Ordering::Relaxed);
    // Orders the odd stamp before every payload store: a reader that sees any new word
    // then sees the stamp changed on its second load.
    W::fence(Ordering::Release);
    for (cell, &v) in slot.iter().zip(payload) {
        cell.store(v, Ordering::Relaxed);
    }
    stamp.store(done, Ordering::Release);
}

/// What a read of one slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRead {
    /// `out` holds a consistent copy of the payload stored under this (even) stamp.
    Stable(u64),
    /// The writer was inside the slot (odd stamp, or the stamp moved during the copy);
    /// `out` holds garbage. Carries the stamp seen last.
    Busy(u64),
}

/// Copies the slot's payload into `out` and says whether the copy is consistent.
#[inline]
pub fn read<W: Word>(stamp: &W, slot: &[W], out: &mut [u64]) -> SlotRead {
    let before = stamp.load(Ordering::Acquire);
    if !before.is_multiple_of(2) {
        return SlotRead::Busy(before);
    }
    for (v, cell) in out.iter_mut().zip(slot) {
        *v = cell.load(Ordering::Relaxed);
    }
    // Orders the payload loads before the second stamp load: if any of them saw a store of
    // a later write, the stamp load sees that write's odd (or later) stamp.
    W::fence(Ordering::Acquire);
    let after = stamp.load(Ordering::Relaxed);
    if after == before {
        SlotRead::Stable(before)
    } else {
        SlotRead::Busy(after)
    }
}

/// The stamps a ring uses for record `seq`: busy `2 seq + 1`, done `2 seq + 2`. A slot
/// that never held a record reads 0.
#[inline]
pub const fn ring_stamps(seq: u64) -> (u64, u64) {
    (2 * seq + 1, 2 * seq + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_read_back_and_an_odd_stamp_is_busy() {
        let stamp = AtomicU64::new(0);
        let slot: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
        let mut out = [0u64; 4];
        let (busy, done) = ring_stamps(7);
        write(&stamp, &slot, &[1, 2, 3, 4], busy, done);
        assert_eq!(read(&stamp, &slot, &mut out), SlotRead::Stable(16));
        assert_eq!(out, [1, 2, 3, 4]);
        stamp.store(17, Ordering::Relaxed);
        assert_eq!(read(&stamp, &slot, &mut out), SlotRead::Busy(17));
    }
}
