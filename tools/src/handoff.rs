//! Replay on two threads: one reads and parses, the other runs the engine, as in a live run.
//!
//! ```text
//! reader thread: merge -> parse --Handoff batches--> rtrb ring --> engine thread: engine -> outputs
//! ```
//! Each message's events cross followed by a [`Handoff::Read`] that says where the message came
//! from and how its parse went. The engine side counts messages from those records, so the
//! counters it publishes sit at the same points of the event stream whatever the threads'
//! timing: a one-thread and a two-thread replay write the same bytes (tested).
//!
//! Events cross in batches ([`BATCH`]), not one by one, and the ring is small on purpose.
//! Measured on the BTC set (replay bench: 1.76 M events, parse ~47 ms, engine ~52 ms, one
//! thread ~100 ms):
//! - one `push`/`pop` per event through a 4,096-slot ring: 101 ms, no faster than one thread;
//!   the ring's indices bounce between the cores at every event;
//! - batches of 64 through a 16,384-slot ring (1.2 MB): 86 ms; slots come back from memory;
//! - batches of 64 through a 4,096-slot ring (295 KB, stays in cache): 53-57 ms, the slower
//!   side's time. The engine side taking a quarter of the ring at a time, not all that is
//!   there, was slower (59-81 ms).

use crate::run_config::IdleStrategy;
use flowcore_core::event::MarketEvent;

/// Ring slots: small enough that the ring stays in cache (see the module doc).
pub const RING_CAPACITY: usize = 4096;

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
    /// Refused: malformed, unknown instrument or type (no events were emitted).
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

/// The reader thread's end of the ring: batches handoffs, waits (counted) while the ring is
/// full.
#[derive(Debug)]
pub struct HandoffWriter {
    ring: rtrb::Producer<Handoff>,
    batch: Vec<Handoff>,
    idle: IdleStrategy,
    /// Messages since the last flush.
    messages: usize,
    /// Flush after this many messages (1 when paced, so nothing waits for a batch to fill).
    flush_every: usize,
    /// Times a flush found the ring full.
    pub full_waits: u64,
}

impl HandoffWriter {
    /// Writes whatever is batched; false when the engine side is gone.
    pub fn flush(&mut self) -> bool {
        let mut rest = &self.batch[..];
        let mut rounds = 0u32;
        while !rest.is_empty() {
            let (_, unwritten) = self.ring.push_partial_slice(rest);
            if unwritten.len() == rest.len() {
                if self.ring.is_abandoned() {
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
        self.messages = 0;
        !self.ring.is_abandoned()
    }
}

impl HandoffSink for HandoffWriter {
    #[inline]
    fn event(&mut self, ev: MarketEvent) {
        // A depth message can carry hundreds of levels: the batch grows to the largest once.
        self.batch.push(Handoff::Event(ev));
    }

    #[inline]
    fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
        self.batch.push(Handoff::Read { source, outcome });
        self.messages += 1;
        if self.batch.len() >= BATCH || self.messages >= self.flush_every {
            return self.flush();
        }
        true
    }
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
                let mut writer = HandoffWriter {
                    ring: producer,
                    batch: Vec::with_capacity(4 * BATCH),
                    idle,
                    messages: 0,
                    flush_every: if paced { 1 } else { usize::MAX },
                    full_waits: 0,
                };
                let out = read(&mut writer);
                writer.flush();
                (out, writer.full_waits)
                // The producer drops here: the engine side drains the rest and ends.
            })
            .expect("starting the replay reader thread");
        let mut rounds = 0u32;
        'run: loop {
            let n = consumer.slots();
            if n == 0 {
                if consumer.is_abandoned() && consumer.is_empty() {
                    break;
                }
                idle.wait(rounds);
                rounds = rounds.saturating_add(1);
                continue;
            }
            rounds = 0;
            let chunk = consumer.read_chunk(n).expect("n slots are there");
            let (a, b) = chunk.as_slices();
            for handoff in a.iter().chain(b) {
                if !apply(handoff) {
                    break 'run;
                }
            }
            chunk.commit_all();
        }
        // Dropping the consumer tells a reader still writing to stop.
        drop(consumer);
        reader.join().expect("the replay reader thread panicked")
    })
}
