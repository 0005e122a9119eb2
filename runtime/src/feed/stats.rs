//! What a feed thread counts: its own [`FeedStats`], and the part of them the core thread's
//! health records show, published through [`LiveCounters`] without a lock.

use flowcore_core::instrument::Venue;
use flowcore_outputs::health::{FeedCounters, VenueFeedCounters};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Per feed thread counters, summed into [`crate::live::RunSummary`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeedStats {
    pub(crate) messages: u64,
    pub(crate) parse_errors: u64,
    pub(crate) control_messages: u64,
    pub(crate) snapshots: u64,
    pub(crate) snapshot_errors: u64,
    pub(crate) histories: u64,
    pub(crate) history_errors: u64,
    pub(crate) open_interest_polls: u64,
    pub(crate) open_interest_errors: u64,
    /// io_uring enters (submits and completion harvests) and parked waits, on io_uring.
    pub(crate) uring_enters: u64,
    pub(crate) uring_waits: u64,
    pub(crate) disconnects: u64,
    pub(crate) connect_errors: u64,
    pub(crate) ring_waits: u64,
    pub(crate) record_waits: u64,
    pub(crate) rotations: u64,
    pub(crate) rotation_breaks: u64,
    pub(crate) stalls: u64,
    pub(crate) shutdown_notices: u64,
}

impl FeedStats {
    /// The counters health records carry.
    pub(crate) fn feed_counters(&self) -> FeedCounters {
        FeedCounters {
            messages: self.messages,
            parse_errors: self.parse_errors,
            ring_waits: self.ring_waits,
            reconnects: self.disconnects,
            stalls: self.stalls,
            rotations: self.rotations,
        }
    }
}

/// A feed thread's counters as the core thread sees them, for the health records: stored
/// after every message with relaxed stores (a view a second old is all health needs), so
/// the feed never waits on the core thread.
#[derive(Debug)]
pub(crate) struct LiveCounters {
    venue: Venue,
    messages: AtomicU64,
    parse_errors: AtomicU64,
    ring_waits: AtomicU64,
    reconnects: AtomicU64,
    stalls: AtomicU64,
    rotations: AtomicU64,
}

impl LiveCounters {
    pub(crate) fn new(venue: Venue) -> Self {
        Self {
            venue,
            messages: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
            ring_waits: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        }
    }

    pub(crate) fn store(&self, s: &FeedStats) {
        let store = |cell: &AtomicU64, v| cell.store(v, Ordering::Relaxed);
        store(&self.messages, s.messages);
        store(&self.parse_errors, s.parse_errors);
        store(&self.ring_waits, s.ring_waits);
        store(&self.reconnects, s.disconnects);
        store(&self.stalls, s.stalls);
        store(&self.rotations, s.rotations);
    }

    pub(crate) fn load(&self) -> FeedCounters {
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        FeedCounters {
            messages: load(&self.messages),
            parse_errors: load(&self.parse_errors),
            ring_waits: load(&self.ring_waits),
            reconnects: load(&self.reconnects),
            stalls: load(&self.stalls),
            rotations: load(&self.rotations),
        }
    }

    /// The sum over every feed of each venue.
    pub(crate) fn per_venue(all: &[Arc<LiveCounters>]) -> VenueFeedCounters {
        let mut out = VenueFeedCounters::default();
        for c in all {
            out[c.venue.index()] += c.load();
        }
        out
    }
}
