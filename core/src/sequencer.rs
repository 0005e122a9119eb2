//! Book sequencers: decide, per diff and snapshot, whether a local book may apply it.
//!
//! Sans-IO: the sequencer sees only update ids and answers with an action; the engine owns
//! the book, the buffer and the resync request. The rules quote Binance's "How to manage a
//! local order book correctly" procedures as `shared/PROTOCOLS.md` states them:
//!
//! Spot (<https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>):
//! > Buffer; fetch the snapshot; if `lastUpdateId` < the first buffered `U`, fetch again.
//! > Drop buffered events with `u <= lastUpdateId`; the first kept event must satisfy
//! > `U <= lastUpdateId + 1 <= u`. Then per event: `u < local` -> ignore; `U > local + 1` ->
//! > gap: drop the book and resync; else set each level to the absolute quantity (zero
//! > deletes), `local = u`.
//!
//! USD-M / COIN-M futures
//! (<https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly>):
//! > Drop buffered events with `u < lastUpdateId` (strict, unlike spot); the first kept
//! > event must satisfy `U <= lastUpdateId <= u`; afterwards every event's `pu` must equal
//! > the previous event's `u`, otherwise resync from a new snapshot.
//!
//! ```text
//!            diff: Buffer            snapshot accepted           first kept diff
//! AwaitingSnapshot ---------> AwaitingFirst{lastUpdateId} ------------------> Synced{u}
//!        ^   (snapshot older than the buffer: Rejected)                          |
//!        +---------------------------- Gap ------------------------------------+
//! ```

use core::num::NonZeroU64;

/// Which venue procedure to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRule {
    /// Binance spot: `U`/`u` continuity, `U <= local + 1`.
    BinanceSpot,
    /// Binance USD-M and COIN-M: strict `u < lastUpdateId` drop, then the `pu` chain.
    BinanceFutures,
    /// Bybit v5 `orderbook.N` topics: the stream itself sends snapshots (at subscribe, after
    /// a venue restart with `u == 1`, and every few seconds on level 1), each a complete
    /// book; every delta's `u` is exactly one above the previous message's.
    BybitTopic,
}

/// Where a book stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No usable book: diffs are buffered until a snapshot arrives.
    AwaitingSnapshot,
    /// A snapshot is loaded; diffs up to it are stale and the first one after must bridge it.
    AwaitingFirst {
        /// The snapshot's `lastUpdateId`.
        snapshot_id: u64,
    },
    /// Every diff up to `last_update_id` is applied.
    Synced {
        /// `u` of the last applied diff.
        last_update_id: u64,
    },
}

/// The sequencer's answer for one diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffAction {
    /// Apply the levels.
    Apply,
    /// Stale (already in the book): skip the levels.
    Skip,
    /// No book yet: keep the diff for after the snapshot.
    Buffer,
    /// Continuity broken: clear the book, keep this diff buffered, request a snapshot.
    Gap,
}

/// The sequencer's answer for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// Load it, then replay the buffered diffs through [`BookSequencer::on_diff`].
    Load,
    /// Load it and drop the buffered diffs: they came before it in the same stream (Bybit),
    /// whatever their ids (a restarted venue counts from 1 again).
    Replace,
    /// Older than the first buffered diff: ignore it and fetch another.
    Reject,
}

/// Update-id bookkeeping of one book.
///
/// # Examples
/// ```
/// use flowcore_core::sequencer::{BookSequencer, DiffAction, SnapshotAction, SyncRule};
/// let mut seq = BookSequencer::new(SyncRule::BinanceSpot);
/// assert_eq!(seq.on_diff(100, 105, None), DiffAction::Buffer);
/// assert_eq!(seq.on_snapshot(103, Some(100)), SnapshotAction::Load);
/// assert_eq!(seq.on_diff(100, 105, None), DiffAction::Apply); // replayed from the buffer
/// assert_eq!(seq.on_diff(106, 110, None), DiffAction::Apply);
/// assert_eq!(seq.on_diff(112, 115, None), DiffAction::Gap);
/// ```
#[derive(Debug, Clone)]
pub struct BookSequencer {
    rule: SyncRule,
    state: SyncState,
}

impl BookSequencer {
    /// A sequencer waiting for its first snapshot.
    pub const fn new(rule: SyncRule) -> Self {
        Self {
            rule,
            state: SyncState::AwaitingSnapshot,
        }
    }

    /// The current state.
    pub const fn state(&self) -> SyncState {
        self.state
    }

    /// True once a diff after the snapshot has been applied: the book may be published.
    pub const fn is_synced(&self) -> bool {
        matches!(self.state, SyncState::Synced { .. })
    }

    /// The rule in force.
    pub const fn rule(&self) -> SyncRule {
        self.rule
    }

    /// Decides on a snapshot. `first_buffered` is `U` of the oldest buffered diff.
    pub fn on_snapshot(
        &mut self,
        last_update_id: u64,
        first_buffered: Option<u64>,
    ) -> SnapshotAction {
        if self.rule == SyncRule::BybitTopic {
            // A snapshot in the stream is the book now: deltas buffered before it are older.
            self.state = SyncState::Synced { last_update_id };
            return SnapshotAction::Replace;
        }
        if first_buffered.is_some_and(|first| last_update_id < first) {
            self.state = SyncState::AwaitingSnapshot;
            return SnapshotAction::Reject;
        }
        self.state = SyncState::AwaitingFirst {
            snapshot_id: last_update_id,
        };
        SnapshotAction::Load
    }

    /// Diffs that come before a snapshot are worth keeping: a Binance REST snapshot is
    /// bridged by the diffs buffered meanwhile, a Bybit snapshot replaces the book whole
    /// (buffering for it would only grow memory until it comes).
    pub fn keeps_diffs_before_snapshot(&self) -> bool {
        self.rule != SyncRule::BybitTopic
    }

    /// Decides on a diff with ids `U` (`first`), `u` (`last`) and `pu` (`prev`, futures).
    pub fn on_diff(&mut self, first: u64, last: u64, prev: Option<NonZeroU64>) -> DiffAction {
        let action = match (self.rule, self.state) {
            (_, SyncState::AwaitingSnapshot) => return DiffAction::Buffer,
            (SyncRule::BinanceSpot, SyncState::AwaitingFirst { snapshot_id }) => {
                if last <= snapshot_id {
                    DiffAction::Skip
                } else if first <= snapshot_id + 1 {
                    DiffAction::Apply
                } else {
                    DiffAction::Gap
                }
            }
            (SyncRule::BinanceFutures, SyncState::AwaitingFirst { snapshot_id }) => {
                if last < snapshot_id {
                    DiffAction::Skip
                } else if first <= snapshot_id {
                    DiffAction::Apply
                } else {
                    DiffAction::Gap
                }
            }
            (SyncRule::BinanceSpot, SyncState::Synced { last_update_id }) => {
                if last < last_update_id {
                    DiffAction::Skip
                } else if first > last_update_id + 1 {
                    DiffAction::Gap
                } else {
                    DiffAction::Apply
                }
            }
            (SyncRule::BinanceFutures, SyncState::Synced { last_update_id }) => {
                if prev.map(NonZeroU64::get) == Some(last_update_id) {
                    DiffAction::Apply
                } else {
                    DiffAction::Gap
                }
            }
            (
                SyncRule::BybitTopic,
                SyncState::Synced { last_update_id }
                | SyncState::AwaitingFirst {
                    snapshot_id: last_update_id,
                },
            ) => {
                if last <= last_update_id {
                    DiffAction::Skip
                } else if first == last_update_id + 1 {
                    DiffAction::Apply
                } else {
                    DiffAction::Gap
                }
            }
        };
        match action {
            DiffAction::Apply => {
                self.state = SyncState::Synced {
                    last_update_id: last,
                }
            }
            DiffAction::Gap => self.state = SyncState::AwaitingSnapshot,
            DiffAction::Skip | DiffAction::Buffer => {}
        }
        action
    }

    /// Forgets the book (after a disconnect): back to waiting for a snapshot.
    pub fn reset(&mut self) {
        self.state = SyncState::AwaitingSnapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DiffAction::*;

    /// (label, rule, snapshot id, diffs as (U, u, pu, expected action)).
    type Case = (
        &'static str,
        SyncRule,
        u64,
        &'static [(u64, u64, Option<u64>, DiffAction)],
    );

    const CASES: &[Case] = &[
        (
            "spot: stale events before the snapshot are skipped",
            SyncRule::BinanceSpot,
            100,
            &[
                (90, 95, None, Skip),
                (96, 100, None, Skip),
                (99, 104, None, Apply),
                (105, 107, None, Apply),
            ],
        ),
        (
            "spot: first kept event may start exactly at lastUpdateId+1",
            SyncRule::BinanceSpot,
            100,
            &[(101, 103, None, Apply)],
        ),
        (
            "spot: first kept event past lastUpdateId+1 is a gap",
            SyncRule::BinanceSpot,
            100,
            &[(102, 103, None, Gap)],
        ),
        (
            "spot: U > local+1 after sync is a gap",
            SyncRule::BinanceSpot,
            100,
            &[
                (100, 104, None, Apply),
                (106, 108, None, Gap),
                (109, 110, None, Buffer),
            ],
        ),
        (
            "spot: u < local is ignored",
            SyncRule::BinanceSpot,
            100,
            &[
                (100, 104, None, Apply),
                (101, 103, None, Skip),
                (105, 105, None, Apply),
            ],
        ),
        (
            "futures: u == lastUpdateId is kept (strict drop)",
            SyncRule::BinanceFutures,
            100,
            &[
                (90, 99, Some(89), Skip),
                (95, 100, Some(99), Apply),
                (101, 120, Some(100), Apply),
            ],
        ),
        (
            "futures: first kept event must cover lastUpdateId",
            SyncRule::BinanceFutures,
            100,
            &[(101, 120, Some(100), Gap)],
        ),
        (
            "futures: the pu chain, not U == u+1",
            SyncRule::BinanceFutures,
            100,
            &[
                (95, 105, Some(94), Apply),
                (130, 140, Some(105), Apply),
                (150, 160, Some(141), Gap),
            ],
        ),
        (
            "bybit: each delta's u is the last one's plus 1; repeats are skipped",
            SyncRule::BybitTopic,
            100,
            &[
                (101, 101, None, Apply),
                (101, 101, None, Skip),
                (102, 102, None, Apply),
                (104, 104, None, Gap),
                (105, 105, None, Buffer),
            ],
        ),
    ];

    #[test]
    fn a_bybit_snapshot_is_the_book_at_once_even_after_a_restart() {
        let mut seq = BookSequencer::new(SyncRule::BybitTopic);
        assert_eq!(seq.on_diff(7, 7, None), Buffer);
        // Buffered deltas came before the snapshot: it loads whatever they were.
        assert_eq!(seq.on_snapshot(50, Some(7)), SnapshotAction::Replace);
        assert!(seq.is_synced(), "a level-1 book repeats snapshots only");
        assert_eq!(seq.on_diff(51, 51, None), Apply);
        // The venue restarted: a snapshot with u == 1 starts the count again.
        assert_eq!(seq.on_snapshot(1, None), SnapshotAction::Replace);
        assert_eq!(seq.on_diff(2, 2, None), Apply);
        assert_eq!(seq.on_diff(2, 2, None), Skip);
    }

    #[test]
    fn procedures_table() {
        for (label, rule, snapshot, diffs) in CASES {
            let mut seq = BookSequencer::new(*rule);
            let want = if *rule == SyncRule::BybitTopic {
                SnapshotAction::Replace
            } else {
                SnapshotAction::Load
            };
            assert_eq!(seq.on_snapshot(*snapshot, None), want, "{label}");
            for (i, (first, last, prev, want)) in diffs.iter().enumerate() {
                let prev = prev.and_then(NonZeroU64::new);
                assert_eq!(
                    seq.on_diff(*first, *last, prev),
                    *want,
                    "{label}: diff #{i}"
                );
            }
        }
    }

    #[test]
    fn snapshot_older_than_the_buffer_is_rejected() {
        let mut seq = BookSequencer::new(SyncRule::BinanceSpot);
        assert_eq!(seq.on_diff(200, 210, None), Buffer);
        assert_eq!(seq.on_snapshot(150, Some(200)), SnapshotAction::Reject);
        assert_eq!(seq.state(), SyncState::AwaitingSnapshot);
        assert_eq!(seq.on_snapshot(205, Some(200)), SnapshotAction::Load);
        assert_eq!(seq.on_diff(200, 210, None), Apply);
        assert!(seq.is_synced());
    }
}
