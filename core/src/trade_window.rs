//! Trade continuity where trade ids do not count up (Bybit: linear ids are UUIDs, spot ids
//! skip), so that the ids tell a repeat from a new trade but never what is missing.
//!
//! - **Repeats**: the last [`WINDOW`] ids of the instrument are kept in a small
//!   open-addressed set; a trade whose id is among them is dropped (an overlapping
//!   connection, a venue resend).
//! - **Breaks**: no trade history to recover from, so a break holds the bars until the
//!   stream is back, and the seconds from the break through the first trade after it are
//!   flagged incomplete. In a quiet market, [`QUIET_RELEASE_MS`] of venue time after the
//!   stream's first event ends the wait, flagging the seconds through that event.
//!
//! Sans-IO like [`crate::trade_seq`]: it judges trades and session events, the engine owns
//! the bars.

use crate::event::Trade;
use crate::trade_seq::{Resolution, QUIET_RELEASE_MS};

/// Trade ids remembered per instrument: far more than one connection overlap or resend
/// repeats (Bybit sends at most 1024 trades a message).
pub const WINDOW: usize = 4096;
const SLOTS: usize = WINDOW * 2;
const MASK: usize = SLOTS - 1;
/// The empty slot; id 0 is remembered apart.
const EMPTY: u64 = 0;

/// What to do with one trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowVerdict {
    /// New: count it.
    Count,
    /// Seen within the window: drop it.
    Duplicate,
    /// New, and the first since a break: count it, and flag the bars from the break
    /// through the second of `through_ns` incomplete.
    CountAfterBreak {
        /// Trade time of this trade.
        through_ns: i64,
    },
}

/// The last [`WINDOW`] ids, in arrival order and in a linear-probing set.
#[derive(Debug, Clone)]
struct RecentIds {
    order: Box<[u64]>,
    /// Next slot of `order` to write (and, once full, the oldest id).
    next: usize,
    full: bool,
    slots: Box<[u64]>,
    has_zero: bool,
}

impl RecentIds {
    /// Empty, with no room yet: the engine keeps a window for every instrument of its table
    /// whose venue needs one, and most see no trade in a run (96 KiB each, ~80 page faults
    /// of a replay's start, 2026-12-07). The room comes with the first id.
    fn new() -> Self {
        Self {
            order: Box::default(),
            next: 0,
            full: false,
            slots: Box::default(),
            has_zero: false,
        }
    }

    #[cold]
    fn make_room(&mut self) {
        self.order = vec![0; WINDOW].into_boxed_slice();
        self.slots = vec![EMPTY; SLOTS].into_boxed_slice();
    }

    fn home(id: u64) -> usize {
        // Fibonacci hashing: folded UUIDs and counters alike spread over the slots.
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
    }

    /// Remembers `id`; false when it was already remembered.
    fn insert(&mut self, id: u64) -> bool {
        if self.order.is_empty() {
            self.make_room();
        }
        if id == EMPTY {
            if self.has_zero {
                return false;
            }
            self.has_zero = true;
        } else {
            let mut i = Self::home(id);
            loop {
                match self.slots[i] {
                    EMPTY => break,
                    s if s == id => return false,
                    _ => i = (i + 1) & MASK,
                }
            }
            self.slots[i] = id;
        }
        if self.full {
            let oldest = self.order[self.next];
            self.forget(oldest);
        }
        self.order[self.next] = id;
        self.next = (self.next + 1) % WINDOW;
        self.full |= self.next == 0;
        true
    }

    /// Removes `id` from the set, shifting later entries of its probe run back so that
    /// lookups never stop at the hole.
    fn forget(&mut self, id: u64) {
        if id == EMPTY {
            self.has_zero = false;
            return;
        }
        let mut hole = Self::home(id);
        while self.slots[hole] != id {
            if self.slots[hole] == EMPTY {
                return;
            }
            hole = (hole + 1) & MASK;
        }
        let mut j = hole;
        loop {
            self.slots[hole] = EMPTY;
            loop {
                j = (j + 1) & MASK;
                let s = self.slots[j];
                if s == EMPTY {
                    return;
                }
                // An entry whose home lies cyclically in (hole, j] is still reachable.
                let home = Self::home(s);
                let reachable = if hole <= j {
                    hole < home && home <= j
                } else {
                    hole < home || home <= j
                };
                if !reachable {
                    self.slots[hole] = s;
                    hole = j;
                    break;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Continuous,
    /// The connection broke; `resumed_ms` is the venue time of the stream's first event
    /// since.
    AfterBreak {
        resumed_ms: Option<i64>,
    },
}

/// One instrument's trade window. See the module docs.
#[derive(Debug, Clone)]
pub struct TradeWindow {
    recent: RecentIds,
    state: State,
    /// Some trade was counted: before the first, a break has nothing to flag.
    seen: bool,
}

impl Default for TradeWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl TradeWindow {
    /// A window that has seen nothing (allocates its 96 KiB up front).
    pub fn new() -> Self {
        Self {
            recent: RecentIds::new(),
            state: State::Continuous,
            seen: false,
        }
    }

    /// True while the instrument's bars must not close by the watermark alone.
    pub fn is_holding(&self) -> bool {
        self.state != State::Continuous
    }

    /// Judges one stream trade.
    pub fn on_trade(&mut self, trade: &Trade) -> WindowVerdict {
        if !self.recent.insert(trade.trade_id) {
            return WindowVerdict::Duplicate;
        }
        self.seen = true;
        match core::mem::replace(&mut self.state, State::Continuous) {
            State::Continuous => WindowVerdict::Count,
            State::AfterBreak { .. } => WindowVerdict::CountAfterBreak {
                through_ns: trade.trade_ts,
            },
        }
    }

    /// The connection carrying the trades broke: hold the bars until the stream is back.
    pub fn on_break(&mut self) {
        if self.seen {
            self.state = State::AfterBreak { resumed_ms: None };
        }
    }

    /// An event of the stream at venue time `exch_ms`: after a break, the first one says
    /// the successor connection is up.
    pub fn on_stream_event(&mut self, exch_ms: i64) {
        if let State::AfterBreak {
            resumed_ms: resumed @ None,
        } = &mut self.state
        {
            *resumed = Some(exch_ms);
        }
    }

    /// A quiet market after a break, at venue time `now_ms`: [`QUIET_RELEASE_MS`] after
    /// the stream came back with no trade, the bars stop waiting, the seconds through its
    /// return given up ([`Resolution::GaveUp`]).
    pub fn release_if_quiet(&mut self, now_ms: i64) -> Option<Resolution> {
        match self.state {
            State::AfterBreak {
                resumed_ms: Some(resumed_ms),
            } if now_ms - resumed_ms >= QUIET_RELEASE_MS => {
                self.state = State::Continuous;
                Some(Resolution::GaveUp {
                    through_ns: resumed_ms.saturating_mul(1_000_000),
                })
            }
            _ => None,
        }
    }

    /// The end of the input: a break stops waiting, its seconds closed as they are (as
    /// [`crate::trade_seq::TradeSequencer::finish`] closes a break without a hole).
    pub fn finish(&mut self) -> Resolution {
        self.state = State::Continuous;
        Resolution::Filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Aggressor, TradeSource};
    use std::collections::{HashSet, VecDeque};

    fn trade(id: u64, ms: i64) -> Trade {
        Trade {
            trade_id: id,
            px: 100,
            qty: 1,
            aggressor: Aggressor::Sell,
            trade_ts: ms * 1_000_000,
            exch_ts: ms * 1_000_000,
            is_taker_flow: true,
            source: TradeSource::Trade,
        }
    }

    /// Against a model (a deque and a hash set) over ids that collide on purpose: small
    /// ranges, multiples of the table size, zero.
    #[test]
    fn the_window_remembers_exactly_the_last_ids() {
        let mut window = RecentIds::new();
        let mut model_order = VecDeque::new();
        let mut model = HashSet::new();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for n in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = match n % 4 {
                0 => x % 6000,
                1 => (x % 64) * SLOTS as u64,
                2 => x,
                _ => n / 3,
            };
            let new = !model.contains(&id);
            assert_eq!(window.insert(id), new, "id {id} at {n}");
            if new {
                model.insert(id);
                model_order.push_back(id);
                if model_order.len() > WINDOW {
                    model.remove(&model_order.pop_front().unwrap());
                }
            }
        }
    }

    #[test]
    fn repeats_are_dropped() {
        let mut w = TradeWindow::new();
        assert_eq!(w.on_trade(&trade(5, 1)), WindowVerdict::Count);
        assert_eq!(w.on_trade(&trade(3, 1)), WindowVerdict::Count);
        assert_eq!(w.on_trade(&trade(5, 1)), WindowVerdict::Duplicate);
    }

    #[test]
    fn a_break_holds_until_the_next_trade_and_flags_through_it() {
        let mut w = TradeWindow::new();
        w.on_break();
        assert!(!w.is_holding(), "nothing counted, nothing to flag");
        w.on_trade(&trade(1, 1_000));
        w.on_break();
        assert!(w.is_holding());
        w.on_stream_event(5_000);
        assert_eq!(w.release_if_quiet(5_000 + QUIET_RELEASE_MS - 1), None);
        assert_eq!(
            w.on_trade(&trade(2, 5_500)),
            WindowVerdict::CountAfterBreak {
                through_ns: 5_500_000_000
            }
        );
        assert!(!w.is_holding());
        assert_eq!(w.on_trade(&trade(3, 5_600)), WindowVerdict::Count);
    }

    #[test]
    fn a_quiet_stream_releases_after_it_resumed() {
        let mut w = TradeWindow::new();
        w.on_trade(&trade(1, 1_000));
        w.on_break();
        assert_eq!(w.release_if_quiet(1_000 + 9 * QUIET_RELEASE_MS), None);
        w.on_stream_event(30_000);
        assert_eq!(
            w.release_if_quiet(30_000 + QUIET_RELEASE_MS),
            Some(Resolution::GaveUp {
                through_ns: 30_000_000_000
            })
        );
        assert!(!w.is_holding());
    }
}
