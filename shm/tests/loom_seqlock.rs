//! Loom explores the interleavings (and the weak-memory reorderings loom models) of one
//! writer and one reader running the very `seqlock::write` and `seqlock::read` the mapped
//! files use, on loom's atomics. The invariant: a read reported stable is never torn.

use core::sync::atomic::Ordering;
use flowcore_shm::seqlock::{self, ring_stamps, SlotRead, Word};
use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;

/// loom's atomic as a [`Word`] (a local type, so the impl is allowed here).
struct LoomWord(AtomicU64);

impl Word for LoomWord {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order)
    }
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order)
    }
}

/// One slot of a one-slot ring: every record lands in the same slot.
struct Slot {
    stamp: LoomWord,
    payload: [LoomWord; 2],
}

/// Record `n`'s payload: words that only agree with each other when copied untorn.
fn payload(n: u64) -> [u64; 2] {
    [n * 7 + 1, !n]
}

#[test]
fn a_stable_read_is_never_torn() {
    // Two writes against two reads; the preemption bound keeps the search to seconds while
    // still covering a read that overlaps either write at any point.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let slot = Arc::new(Slot {
            stamp: LoomWord(AtomicU64::new(0)),
            payload: [0, 0].map(|v| LoomWord(AtomicU64::new(v))),
        });
        let writer = {
            let slot = slot.clone();
            loom::thread::spawn(move || {
                for n in 0..2 {
                    let (busy, done) = ring_stamps(n);
                    seqlock::write(&slot.stamp, &slot.payload, &payload(n), busy, done);
                }
            })
        };
        let mut out = [0u64; 2];
        for _ in 0..2 {
            if let SlotRead::Stable(stamp) = seqlock::read(&slot.stamp, &slot.payload, &mut out) {
                if stamp == 0 {
                    assert_eq!(out, [0, 0], "never written");
                } else {
                    let n = stamp / 2 - 1;
                    assert_eq!(out, payload(n), "stamp {stamp} with a torn payload");
                }
            }
        }
        writer.join().unwrap();
    });
}
