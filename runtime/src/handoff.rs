//! Handing events from a parsing thread to the engine's thread in batches, through an rtrb
//! ring: a paced replay on two threads ([`two_threads`]; at full speed replay shares the
//! parse instead, [`crate::shared_parse`]), and a live run's feed threads ([`BatchWriter`]
//! with a batch per message, [`drain`] on the core thread).
//!
//! ```text
//! reader thread: merge -> parse --Handoff batches--> rtrb ring --> engine thread: engine -> outputs
//! ```
//! In replay each message's events cross followed by a [`Handoff::Read`] that says where the
//! message came from and how its parse went. The engine side counts messages from those
//! records, so the counters it publishes sit at the same points of the event stream whatever
//! the threads' timing: a one-thread and a two-thread replay write the same bytes (tested).
//!
//! Items cross in batches, not one by one. Replay bench, BTC set (1.76 M events; parse
//! ~47 ms, engine ~52 ms, one thread ~100 ms), 2026-11-22, 4,096-slot ring (295 KB):
//! - one `push`/`pop` per event: 68-70 ms; the ring's indices bounce between the cores at
//!   every event;
//! - a batch per message (as live): 53-55 ms;
//! - batches of [`BATCH`] (replay): 53-56 ms, the slower side's time; more robust than a
//!   batch per message, which once measured 96 ms in a run where the others did not move.
//!
//! These are quiet runs. When the VM's second core is contended, two threads take 75-93 ms
//! and a batch per message is no longer clearly ahead of a push per event.
//!
//! Measured once while choosing (not in the bench): batches of 64 through a 16,384-slot ring
//! (1.2 MB) took 86 ms, the slots coming back from memory; the engine side taking a quarter
//! of the ring at a time instead of all that is there, 59-81 ms.
//!
//! The ring has 16,384 slots since 2026-12-06, measured on the whole `flowcore replay`
//! process (plain files: spot BTCUSDT 08 + 09, USD-M BTCUSDT 08, 193,528 messages), where
//! the reader thread (file reading + parse) is the slower side. Best of 12, twice, in
//! alternation, with the reader's busy time (wall clock less its full-ring waits):
//!
//! | slots | whole process | reader busy |
//! | --- | --- | --- |
//! | 4,096 (295 KB) | 63.7 ms, 63.7 ms | 57 ms |
//! | 8,192 | 61.4 ms, 63.2 ms | 55-56 ms |
//! | 16,384 (1.2 MB) | 59.0 ms, 58.3 ms | 51-52 ms |
//! | 65,536 | 65.2 ms, 59.7 ms | 53-56 ms |
//!
//! With more slack the reader rarely finds the ring full and the engine side finds it
//! empty less often (1,450 waits against 2,500); likely also because the reader's writes
//! land on slots the engine's core read long before, not a moment ago (not measured).
//! Batches of 32, 128 and 256 through 16,384 slots were within noise of 64. The replay
//! bench, the same day, twice alternating with a 4,096-slot build: two threads 67.9-68.0 ms
//! with 16,384 slots against 76.6-76.7 ms with 4,096 (one thread 124-126 ms in both).
//!
//! Measured and not taken (2026-12-06, whole process, 25 runs each in alternation): a
//! depth message's levels packed three to a slot (instrument and time written once, the
//! engine side unpacking the same events) took 59.1 ms best on two threads against 55.3 ms.
//! The copies saved were cheap bulk moves; the reader, the slower side, paid a check per
//! level to extend the open run. Also measured, same day, after the book's window, with
//! the engine's thread finding the lines and the other parsing them: levels through a ring of their own (24 bytes each,
//! a marker in this ring where each run goes; 82 MB of handoffs down to ~47 MB), 55.8-56.3
//! ms best against 56.6-57.7 ms in three quiet rounds, medians within noise, and gzip 2-3%
//! slower: not worth a second ring and its protocol.

use crate::config::IdleStrategy;
use flowcore_core::event::MarketEvent;

/// Ring slots (1.2 MB of handoffs): measured on the whole replay process (see the module doc).
pub const RING_CAPACITY: usize = 16_384;

/// Handoffs written to the ring at once: far fewer index updates for the other core to see.
pub const BATCH: usize = 64;

/// What crosses from the reader thread to the engine thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Handoff {
    /// One event of the message being read.
    Event(MarketEvent),
    /// The message whose events came before is done.
    Read {
        /// The caller's index of the input it came from.
        source: u32,
        /// What its parse gave.
        outcome: ReadOutcome,
    },
}

// The record rides in the event's spare tag values: a handoff costs the ring no more than an event.
const _: () = assert!(
    core::mem::size_of::<Handoff>() == core::mem::size_of::<MarketEvent>(),
    "Handoff outgrew MarketEvent"
);

/// How the parser took one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Market events (maybe none).
    Market,
    /// A subscribe reply or other control message.
    Control,
    /// Refused: malformed, unknown instrument or type.
    Refused,
}

/// Where a reader puts what it parsed: straight into the engine side (one thread) or into
/// the ring ([`HandoffWriter`]).
pub trait HandoffSink {
    /// One event of the message being read.
    fn event(&mut self, ev: MarketEvent);
    /// The message is done. Returns false when the engine side stopped (an output failed):
    /// the reader should stop too.
    fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool;
}

/// A producer's end of a ring that writes in batches: the other core sees one index update
/// per batch instead of one per item. Waits (counted) while the ring is full. Replay's reader
/// ([`HandoffWriter`]) and a live run's feed threads (a batch per message) write through it.
#[derive(Debug)]
pub struct BatchWriter<T> {
    ring: rtrb::Producer<T>,
    batch: Vec<T>,
    idle: IdleStrategy,
    /// Flush when each message ends; otherwise once the batch holds [`BATCH`] items.
    per_message: bool,
    /// Times a flush found the ring full.
    pub full_waits: u64,
}

/// The replay reader's writer.
pub type HandoffWriter = BatchWriter<Handoff>;

impl<T: Copy> BatchWriter<T> {
    /// Writes to `ring`, flushing at the end of each message with `per_message` (it is
    /// visible as soon as it ends), else every [`BATCH`] items; waits with `idle` while the
    /// ring is full.
    pub fn new(ring: rtrb::Producer<T>, idle: IdleStrategy, per_message: bool) -> Self {
        Self {
            ring,
            batch: Vec::with_capacity(4 * BATCH),
            idle,
            per_message,
            full_waits: 0,
        }
    }

    /// Adds one item to the batch.
    #[inline]
    pub fn push(&mut self, item: T) {
        // A depth message can carry thousands of levels: the batch grows to the largest once.
        self.batch.push(item);
    }

    /// A message ended: flushes when due. False when the consumer is gone.
    #[inline]
    pub fn end_message(&mut self) -> bool {
        if self.per_message || self.batch.len() >= BATCH {
            return self.flush();
        }
        true
    }

    /// Writes whatever is batched; false when the consumer is gone.
    pub fn flush(&mut self) -> bool {
        let mut rest = &self.batch[..];
        let mut rounds = 0u32;
        while !rest.is_empty() {
            let (_, unwritten) = self.ring.push_partial_slice(rest);
            if unwritten.len() == rest.len() {
                if self.ring.is_abandoned() {
                    // Nobody will read them.
                    self.batch.clear();
                    return false;
                }
                self.full_waits += u64::from(rounds == 0);
                self.idle.wait(rounds);
                rounds = rounds.saturating_add(1);
            } else {
                rounds = 0;
            }
            rest = unwritten;
        }
        self.batch.clear();
        !self.ring.is_abandoned()
    }
}

impl HandoffSink for HandoffWriter {
    #[inline]
    fn event(&mut self, ev: MarketEvent) {
        self.push(Handoff::Event(ev));
    }

    #[inline]
    fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
        self.push(Handoff::Read { source, outcome });
        self.end_message()
    }
}

/// Applies the items waiting in `ring`, in order, and frees their slots, all in one read
/// of the ring's indices. Stops at the first item `apply` refuses (returns false).
/// Returns the items applied and whether one was refused.
#[inline]
pub fn drain<T>(ring: &mut rtrb::Consumer<T>, mut apply: impl FnMut(&T) -> bool) -> (usize, bool) {
    let n = ring.slots();
    if n == 0 {
        return (0, false);
    }
    let chunk = ring.read_chunk(n).expect("n slots are there");
    let (a, b) = chunk.as_slices();
    let mut applied = 0;
    for item in a.iter().chain(b) {
        if !apply(item) {
            chunk.commit(applied);
            return (applied, true);
        }
        applied += 1;
    }
    chunk.commit_all();
    (applied, false)
}

/// True once the producer is gone and all it wrote was consumed.
pub fn producer_finished<T>(ring: &rtrb::Consumer<T>) -> bool {
    if !ring.is_abandoned() {
        return false;
    }
    // `is_abandoned` is a relaxed load of the Arc's count; the fence makes the producer's
    // last writes visible before the emptiness check (rtrb's docs, mgeier/rtrb#114).
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    ring.is_empty()
}

/// Runs `read` on a new thread and feeds each of its handoffs, in order, to `apply` on this
/// one; `apply` returns false to stop both. Returns what `read` returned (its thread is joined
/// first) and the writer's full-ring waits.
///
/// `paced` flushes after every message: a paced reader sleeps between messages, and its
/// events must not sit in a half-filled batch meanwhile.
pub fn two_threads<T: Send>(
    idle: IdleStrategy,
    paced: bool,
    read: impl FnOnce(&mut HandoffWriter) -> T + Send,
    mut apply: impl FnMut(&Handoff) -> bool,
) -> (T, u64) {
    let (producer, mut consumer) = rtrb::RingBuffer::new(RING_CAPACITY);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("flowcore-replay-reader".into())
            .spawn_scoped(scope, move || {
                let mut writer = HandoffWriter::new(producer, idle, paced);
                let out = read(&mut writer);
                writer.flush();
                (out, writer.full_waits)
                // The producer drops here: the engine side drains the rest and ends.
            })
            .expect("starting the replay reader thread");
        let mut rounds = 0u32;
        loop {
            match drain(&mut consumer, &mut apply) {
                (_, true) => break,
                (0, _) if producer_finished(&consumer) => break,
                (0, _) => {
                    idle.wait(rounds);
                    rounds = rounds.saturating_add(1);
                }
                _ => rounds = 0,
            }
        }
        // Dropping the consumer tells a reader still writing to stop.
        drop(consumer);
        reader.join().expect("the replay reader thread panicked")
    })
}
