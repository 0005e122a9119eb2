//! Replay's parse shared by two threads: a helper thread finds the messages (the merge of the
//! recordings) and parses batches of them ahead of the engine's thread; the engine's thread
//! applies the batches in order, and parses a batch itself whenever it reaches one the
//! helper has not begun.
//!
//! ```text
//! helper thread: next() -> fill batch slots (K ahead) -> claim the first unclaimed one, parse it there
//! engine thread: take the slots in order: parsed? apply its events; not begun? parse it here
//!                the helper is on it? parse a later one into its slot meanwhile
//! ```
//! A fixed split of the work (one thread parses, the other applies) is as fast as its
//! slower side, and which side is slower changes within a recording (depth-heavy stretches
//! load the parse, ticker-heavy ones the engine): on the BTC set each side waited 2-16 ms for
//! the other. Here neither waits but for one batch in flight: a fast engine side parses more
//! itself, a slow one leaves the parse to the helper. What the engine's thread parses itself
//! goes straight into the engine, with no copy through a slot.
//!
//! Two rules keep the engine's thread from waiting, each measured with its waits timed
//! (BTC set, 2026-12-06): the helper leaves the batch after the engine's current one alone
//! (taking it, it kept the engine's thread waiting at every batch while applying was the
//! faster side: 5-25 ms of waits, the engine's thread parsing 3-23% of the batches), and an
//! engine's thread that finds the helper on its next batch parses a later one into its slot
//! (this took the remaining 5-10 ms of waits at a busy batch to none). What waiting is left
//! is the VM taking a core away (single waits of ~0.6 ms). Batches of 32 and 64 messages
//! measured alike; 16 was slower (more claims crossing between the cores).
//!
//! Each slot carries a tag, `(position + 1) << 2 | state`. The helper fills the slot of
//! position `p` (state `FILLED`) once the engine's thread took position `p - K` out (the
//! `taken` counter); either thread then claims it with a compare-and-swap from `FILLED`, the
//! helper to `PARSING` (then `DONE`), the engine's thread to `TAKEN`. Whoever holds the claim
//! is the only one touching the slot's batch until the engine's thread moves past it. The
//! batch sits behind a mutex all the same, which the claim makes uncontended (two atomic
//! operations a batch, no `unsafe`); a broken claim would show as a failed `try_lock`, not as
//! a data race.
//!
//! The output is the same whoever parses a batch: the parsers keep no state from one
//! message to the next (only caches), and batches are applied in the order they were found.

use crate::config::IdleStrategy;
use crate::handoff::{Handoff, HandoffSink, ReadOutcome};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Messages in a batch: one claim each.
pub const BATCH: usize = 32;
/// Batch slots: how far the helper can find and parse ahead of the engine's thread. 32
/// measured as fast as 64 (BTC set, 2026-12-07: best 45.8-46.5 ms against 46.8-50.2 in one
/// round, alike in the next) and faults in ~500 pages fewer (each slot's events grow to its
/// largest batch's); 16 was slower (47.7-52.0 ms).
pub const SLOTS: usize = 32;
/// Events a batch has room for from the start (162 KiB): a batch of the BTC set's has 150
/// at the median, 900 at p99 and 2,200 at most (a depth message is an event a level; a
/// snapshot is two thousand). Room for 1,024 was outgrown by the batches holding a
/// snapshot, each growth a copy into fresh pages (~250 page faults of a replay's ~3,100);
/// grown a push at a time from empty, the copies were many more. Pages of the room a batch
/// never reaches are never touched (a vector this large is mapped on its own).
const BATCH_EVENTS: usize = 2304;

const TAKEN: u64 = 0;
const FILLED: u64 = 1;
const PARSING: u64 = 2;
const DONE: u64 = 3;

#[inline]
fn tag(position: u64, state: u64) -> u64 {
    ((position + 1) << 2) | state
}

/// Parses one message into a sink; each thread has its own.
pub trait ParseWork {
    /// Where a message is: what the helper finds.
    type Item: Copy + Send;
    /// Parses `item` into `sink`; false when the sink refused it (the engine side stopped).
    /// `bytes` are what the finder copied into the item's batch (for inputs that do not stay
    /// in place, such as a decompressed stream; empty for mapped ones).
    fn parse(&mut self, item: Self::Item, bytes: &[u8], sink: &mut impl HandoffSink) -> bool;
}

/// One batch in flight: its tag on a cache line of its own, its messages and (when the
/// helper parsed them) their events.
#[repr(align(64))]
struct Slot<W> {
    tag: AtomicU64,
    batch: Mutex<Batch<W>>,
}

struct Batch<W> {
    work: Vec<W>,
    /// Message bytes the finder copied for this batch's items.
    bytes: Vec<u8>,
    events: Vec<Handoff>,
}

impl<W> Slot<W> {
    /// The batch, for the thread holding the slot's claim.
    fn claimed(&self) -> MutexGuard<'_, Batch<W>> {
        self.batch
            .try_lock()
            .expect("a claimed batch is nobody else's")
    }
}

/// What both threads see besides the slots, each on a cache line of its own.
#[derive(Default)]
struct Progress {
    /// Positions the engine's thread took out: their slots can be filled again.
    taken: Padded<AtomicU64>,
    /// How many batches there are, once the helper found the last (`u64::MAX` before).
    total: Padded<AtomicU64>,
    /// The engine's thread stopped: the helper stops too.
    stopped: Padded<AtomicBool>,
    /// The helper returned or panicked.
    helper_gone: Padded<AtomicBool>,
}

#[derive(Default)]
#[repr(align(64))]
struct Padded<T>(T);

/// The helper's sink: its batch's events, in order.
struct Collect<'a>(&'a mut Vec<Handoff>);

impl HandoffSink for Collect<'_> {
    #[inline]
    fn event(&mut self, ev: flowcore_core::event::MarketEvent) {
        self.0.push(Handoff::Event(ev));
    }

    #[inline]
    fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
        self.0.push(Handoff::Read { source, outcome });
        true
    }
}

/// Sets a flag when dropped, also in a panic: the helper says it is gone, the engine's side
/// that it stopped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Feeds every item of `next`, parsed, to `sink` in order, sharing the parse with a helper
/// thread as the module doc says: `next` and `helper` run there, `own` and `sink` here.
/// `next` may copy the message into the batch's bytes it is given (appending; the item then
/// says where), for inputs whose lines do not stay in place.
/// Stops when the sink refuses a message; returns the first error of `next` once
/// everything found before it was parsed and applied.
pub fn share_parse<P: ParseWork + Send, E: Send>(
    idle: IdleStrategy,
    next: impl FnMut(&mut Vec<u8>) -> Result<Option<P::Item>, E> + Send,
    mut own: P,
    helper: P,
    sink: &mut impl HandoffSink,
) -> Result<(), E> {
    let slots: Vec<Slot<P::Item>> = (0..SLOTS)
        .map(|_| Slot {
            tag: AtomicU64::new(0),
            batch: Mutex::new(Batch {
                work: Vec::with_capacity(BATCH),
                bytes: Vec::new(),
                events: Vec::with_capacity(BATCH_EVENTS),
            }),
        })
        .collect();
    let progress = Progress::default();
    progress.total.0.store(u64::MAX, Ordering::Relaxed);
    let (slots, progress) = (&slots[..], &progress);
    std::thread::scope(|scope| {
        let helper_thread = std::thread::Builder::new()
            .name("flowcore-replay-parser".into())
            .spawn_scoped(scope, move || {
                let _gone = SetOnDrop(&progress.helper_gone.0);
                find_and_parse(idle, slots, progress, next, helper)
            })
            .expect("starting the replay parser thread");
        {
            // Also when the engine's side panics: the helper must stop for the scope to
            // end, or the panic would become a hang.
            let _stop = SetOnDrop(&progress.stopped.0);
            apply_in_order(idle, slots, progress, &mut own, sink);
        }
        helper_thread
            .join()
            .expect("the replay parser thread panicked")
    })
}

/// The helper: fills the slots ahead of the engine's thread, and parses the first batch
/// nobody claimed, until every batch is found and claimed or the engine's thread stops.
fn find_and_parse<P: ParseWork, E>(
    idle: IdleStrategy,
    slots: &[Slot<P::Item>],
    progress: &Progress,
    mut next: impl FnMut(&mut Vec<u8>) -> Result<Option<P::Item>, E>,
    mut parser: P,
) -> Result<(), E> {
    let k = slots.len() as u64;
    let mut result = Ok(());
    let mut ended = false;
    let (mut filled, mut to_parse) = (0u64, 0u64);
    let mut rounds = 0u32;
    while !progress.stopped.0.load(Ordering::Acquire) {
        let taken = progress.taken.0.load(Ordering::Acquire);
        if !ended && filled < taken + k {
            let slot = &slots[(filled % k) as usize];
            // Position `filled - k` of this slot was taken out: nobody claims it again.
            let mut batch = slot.claimed();
            let Batch { work, bytes, .. } = &mut *batch;
            work.clear();
            bytes.clear();
            while work.len() < BATCH {
                match next(bytes) {
                    Ok(Some(item)) => work.push(item),
                    Ok(None) => ended = true,
                    Err(e) => {
                        // What was found before it is still parsed and applied.
                        result = Err(e);
                        ended = true;
                    }
                }
                if ended {
                    break;
                }
            }
            let found = !work.is_empty();
            drop(batch);
            if found {
                slot.tag.store(tag(filled, FILLED), Ordering::Release);
                filled += 1;
            }
            if ended {
                progress.total.0.store(filled, Ordering::Release);
            }
            continue;
        }
        // The batch after the one the engine's thread is on is left to it: were the helper
        // to claim it, an engine side that applies faster than the helper parses would wait
        // at every batch instead of parsing one itself.
        to_parse = to_parse.max(taken + 2);
        if to_parse < filled {
            parse_into_slot(&slots[(to_parse % k) as usize], to_parse, &mut parser);
            to_parse += 1;
            rounds = 0;
            continue;
        }
        if ended {
            break;
        }
        // Everything found is claimed and no slot is free: the engine's thread is behind.
        idle.wait(rounds);
        rounds = rounds.saturating_add(1);
    }
    result
}

/// Claims the FILLED batch of `position` for `state` (the helper's `PARSING`, the engine's
/// thread's `TAKEN`): true for one claimant only, whoever comes second sees the tag changed.
#[inline]
fn claim<W>(slot: &Slot<W>, position: u64, state: u64) -> bool {
    slot.tag
        .compare_exchange(
            tag(position, FILLED),
            tag(position, state),
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Claims the batch of `position` when nobody has, parses it into its slot and marks it
/// DONE; false when it was claimed already.
fn parse_into_slot<P: ParseWork>(slot: &Slot<P::Item>, position: u64, parser: &mut P) -> bool {
    if !claim(slot, position, PARSING) {
        return false;
    }
    // The claim is ours: the engine's thread applies this batch only once it sees DONE,
    // stored after the batch is let go.
    let mut batch = slot.claimed();
    let Batch {
        work,
        bytes,
        events,
    } = &mut *batch;
    events.clear();
    let mut collect = Collect(events);
    for &item in work.iter() {
        parser.parse(item, bytes, &mut collect);
    }
    drop(batch);
    slot.tag.store(tag(position, DONE), Ordering::Release);
    true
}

/// The engine's thread: takes the batches in order into `sink`, parsing those the helper has
/// not begun. Returns when all are taken, the sink refused a message, or the helper is gone
/// with a batch unfinished (its join says why).
fn apply_in_order<P: ParseWork>(
    idle: IdleStrategy,
    slots: &[Slot<P::Item>],
    progress: &Progress,
    own: &mut P,
    sink: &mut impl HandoffSink,
) {
    let k = slots.len() as u64;
    let mut taken = 0u64;
    let mut rounds = 0u32;
    loop {
        let slot = &slots[(taken % k) as usize];
        let t = slot.tag.load(Ordering::Acquire);
        let go_on = if t == tag(taken, DONE) {
            // The helper let the batch go before storing DONE, and claims it no more.
            apply(&slot.claimed().events, sink)
        } else if t == tag(taken, FILLED) && claim(slot, taken, TAKEN) {
            let batch = slot.claimed();
            batch
                .work
                .iter()
                .all(|&item| own.parse(item, &batch.bytes, sink))
        } else {
            if t == tag(taken, PARSING) && parse_ahead(slots, taken, own) {
                // Instead of waiting for the helper: a later batch, parsed into its slot.
                rounds = 0;
                continue;
            }
            // Not found yet, or the helper is parsing it and nothing after it is left.
            let gone = progress.helper_gone.0.load(Ordering::Acquire);
            if taken == progress.total.0.load(Ordering::Acquire) {
                return;
            }
            if gone {
                // All the helper did before it went is visible now: a batch it finished
                // reads DONE. One it left PARSING or unfound stays so (its join says why).
                if slot.tag.load(Ordering::Acquire) == t {
                    return;
                }
                continue;
            }
            idle.wait(rounds);
            rounds = rounds.saturating_add(1);
            continue;
        };
        rounds = 0;
        taken += 1;
        progress.taken.0.store(taken, Ordering::Release);
        if !go_on {
            return;
        }
    }
}

/// Parses the first batch after `taken` that nobody claimed, into its slot; false when
/// there is none.
fn parse_ahead<P: ParseWork>(slots: &[Slot<P::Item>], taken: u64, parser: &mut P) -> bool {
    let k = slots.len() as u64;
    for position in taken + 1..taken + k {
        let slot = &slots[(position % k) as usize];
        let t = slot.tag.load(Ordering::Acquire);
        if t >> 2 < position + 1 {
            // Not found yet: nor is anything after it.
            return false;
        }
        if t == tag(position, FILLED) && parse_into_slot(slot, position, parser) {
            return true;
        }
    }
    false
}

/// Applies a batch parsed into its slot; false when the sink refused a message.
#[inline]
fn apply(events: &[Handoff], sink: &mut impl HandoffSink) -> bool {
    for handoff in events {
        match *handoff {
            Handoff::Event(ev) => sink.event(ev),
            Handoff::Read { source, outcome } => {
                if !sink.read(source, outcome) {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_core::event::{BookSide, EventKind, Level, MarketEvent};
    use flowcore_core::instrument::InstrumentId;

    /// Item `n` parses to `n % 4` level events carrying `n`, then its end record. Stretches of
    /// items where the parse is slow, where applying is slow, and where either dawdles at
    /// random make batches change hands in many orders: the helper far ahead, the engine's
    /// thread catching up and parsing, and both at the same batch.
    struct Numbers {
        rng: u64,
        /// Panic at this thread's first parse.
        panic: bool,
    }

    impl Numbers {
        fn new(seed: u64) -> Self {
            Self {
                rng: seed | 1,
                panic: false,
            }
        }
    }

    #[derive(PartialEq)]
    enum Side {
        Parse,
        Apply,
    }

    fn dawdle(n: u32, side: Side, rng: &mut u64) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let spins = match (n / (6 * BATCH as u32)) % 3 {
            0 if side == Side::Parse => 300,
            1 if side == Side::Apply => 300,
            2 => (*rng % 64).saturating_sub(48) * 40,
            _ => 0,
        };
        for _ in 0..spins {
            std::hint::spin_loop();
        }
    }

    /// An item is where its number lies in the batch's bytes (as the finder copies a line).
    impl ParseWork for Numbers {
        type Item = usize;

        fn parse(&mut self, at: usize, bytes: &[u8], sink: &mut impl HandoffSink) -> bool {
            assert!(!self.panic, "the parser's planted panic");
            let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            dawdle(n, Side::Parse, &mut self.rng);
            for j in 0..n % 4 {
                sink.event(MarketEvent {
                    inst: InstrumentId(0),
                    local_ts: i64::from(n),
                    kind: EventKind::Level(Level {
                        side: BookSide::Bid,
                        px: i64::from(n),
                        qty: i64::from(j),
                    }),
                });
            }
            let outcome = if n.is_multiple_of(7) {
                ReadOutcome::Control
            } else {
                ReadOutcome::Market
            };
            sink.read(n, outcome)
        }
    }

    /// What reached the engine's side, in order; refuses the message `refuse_at`.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<Handoff>,
        refuse_at: Option<u32>,
        rng: u64,
    }

    impl HandoffSink for Recorder {
        fn event(&mut self, ev: MarketEvent) {
            self.seen.push(Handoff::Event(ev));
        }

        fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
            self.seen.push(Handoff::Read { source, outcome });
            dawdle(source, Side::Apply, &mut self.rng);
            self.refuse_at != Some(source)
        }
    }

    /// Every item's handoffs in order, parsed on one thread.
    fn expected(items: u32) -> Vec<Handoff> {
        let mut sink = Recorder::default();
        let mut parser = Numbers::new(1);
        for n in 0..items {
            parser.parse(0, &n.to_le_bytes(), &mut sink);
        }
        sink.seen
    }

    /// Copies `n` into the batch's bytes: the item says where.
    fn found(n: u32, bytes: &mut Vec<u8>) -> usize {
        bytes.extend_from_slice(&n.to_le_bytes());
        bytes.len() - 4
    }

    fn counting_to(items: u32) -> impl FnMut(&mut Vec<u8>) -> Result<Option<usize>, String> + Send {
        let mut n = 0;
        move |bytes| {
            n += 1;
            Ok((n <= items).then(|| found(n - 1, bytes)))
        }
    }

    #[test]
    fn every_item_is_applied_once_in_order_whoever_parses_it() {
        // Many rounds of the slots; not a multiple of the batch: the last batch is short.
        let items = (8 * SLOTS * BATCH) as u32 + 5;
        let want = expected(items);
        for (seed, idle) in [
            (3, IdleStrategy::SpinYield),
            (5, IdleStrategy::Spin),
            (7, IdleStrategy::Park),
            (11, IdleStrategy::SpinYield),
        ] {
            let mut sink = Recorder {
                rng: seed * 13,
                ..Recorder::default()
            };
            share_parse(
                idle,
                counting_to(items),
                Numbers::new(seed),
                Numbers::new(seed * 31),
                &mut sink,
            )
            .unwrap();
            assert!(sink.seen == want, "seed {seed}: out of order or lost");
        }
        // Nothing to parse: returns at once.
        let mut sink = Recorder::default();
        let nothing = share_parse(
            IdleStrategy::SpinYield,
            counting_to(0),
            Numbers::new(1),
            Numbers::new(2),
            &mut sink,
        );
        assert_eq!((nothing, sink.seen.len()), (Ok(()), 0));
    }

    #[test]
    fn an_error_comes_after_everything_found_before_it() {
        let mut n = 0u32;
        let next = move |bytes: &mut Vec<u8>| {
            n += 1;
            if n > 1000 {
                Err(format!("bad line {n}"))
            } else {
                Ok(Some(found(n - 1, bytes)))
            }
        };
        let mut sink = Recorder::default();
        let result = share_parse(
            IdleStrategy::SpinYield,
            next,
            Numbers::new(3),
            Numbers::new(4),
            &mut sink,
        );
        assert_eq!(result, Err("bad line 1001".to_string()));
        assert!(sink.seen == expected(1000));
    }

    #[test]
    fn a_refusing_sink_stops_both_threads_at_that_message() {
        let items = (4 * SLOTS * BATCH) as u32;
        let mut sink = Recorder {
            refuse_at: Some(777),
            ..Recorder::default()
        };
        let result = share_parse(
            IdleStrategy::SpinYield,
            counting_to(items),
            Numbers::new(3),
            Numbers::new(4),
            &mut sink,
        );
        assert_eq!(result, Ok(()));
        assert!(
            sink.seen == expected(778),
            "stops right after the refused message"
        );
    }

    #[test]
    fn a_filled_batch_is_claimed_once() {
        let slot = Slot {
            tag: AtomicU64::new(tag(5, FILLED)),
            batch: Mutex::new(Batch::<usize> {
                work: Vec::new(),
                bytes: Vec::new(),
                events: Vec::new(),
            }),
        };
        assert!(!claim(&slot, 4, TAKEN), "another position's claim");
        assert!(claim(&slot, 5, TAKEN));
        assert!(!claim(&slot, 5, PARSING) && !claim(&slot, 5, TAKEN));
        // Both threads at once, over and over: one claim succeeds each time.
        for position in 0..2_000u64 {
            slot.tag.store(tag(position, FILLED), Ordering::Release);
            let wins: u32 = std::thread::scope(|s| {
                let helper = s.spawn(|| u32::from(claim(&slot, position, PARSING)));
                let own = u32::from(claim(&slot, position, TAKEN));
                own + helper.join().unwrap()
            });
            assert_eq!(wins, 1, "position {position}");
        }
    }

    #[test]
    fn an_engine_side_that_panics_ends_the_call_with_its_panic() {
        // A sink that panics at message 500: the helper must stop, or the call never returns.
        struct Panicking(Recorder);
        impl HandoffSink for Panicking {
            fn event(&mut self, ev: MarketEvent) {
                self.0.event(ev);
            }
            fn read(&mut self, source: u32, outcome: ReadOutcome) -> bool {
                assert!(source != 500, "the sink's planted panic");
                self.0.read(source, outcome)
            }
        }
        // On a thread of its own, so that a hang fails the test instead of holding it.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                share_parse(
                    IdleStrategy::SpinYield,
                    counting_to(100 * BATCH as u32),
                    Numbers::new(3),
                    Numbers::new(4),
                    &mut Panicking(Recorder::default()),
                )
            }));
            done.send(run).unwrap();
        });
        let run = outcome
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("share_parse returns (here with a panic) instead of hanging");
        let message = run.expect_err("the sink's panic reaches the caller");
        assert_eq!(
            message.downcast_ref::<&str>(),
            Some(&"the sink's planted panic")
        );
    }

    #[test]
    fn a_helper_that_panics_ends_the_call_with_its_panic() {
        let helper = Numbers {
            panic: true,
            ..Numbers::new(5)
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // The engine's side is slow, so the helper gets to parse.
            let mut sink = Recorder {
                rng: 99,
                ..Recorder::default()
            };
            share_parse(
                IdleStrategy::SpinYield,
                counting_to(100 * BATCH as u32),
                Numbers::new(3),
                helper,
                &mut sink,
            )
        }));
        let message = run.expect_err("the helper's panic reaches the caller");
        let message = message.downcast_ref::<String>().expect("expect's message");
        assert!(
            message.starts_with("the replay parser thread panicked"),
            "{message}"
        );
    }
}
