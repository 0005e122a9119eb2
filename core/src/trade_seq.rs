//! Trade continuity per instrument: no trade counted twice, none lost without saying so.
//!
//! Binance trade ids (`t`) are consecutive per symbol, so the ids themselves tell whether a
//! trade is new, already counted (an overlapping connection, a history answer that runs
//! into the live stream) or preceded by a hole (trades missed while a connection was down).
//! Sans-IO like [`crate::sequencer`]: the sequencer sees trades and session events and
//! answers with verdicts and backfill requests; the engine owns the bars and the session
//! fetches the venue's REST trade history.
//!
//! ```text
//!            trade id > last + 1: hold it, ask for history from last + 1
//! Continuous ---------------------------------------------------------> Hole
//!     ^  ^                                                               |
//!     |  +---- history reaches the held trades (or is refused: -------+--+
//!     |        the seconds in between are flagged incomplete)
//!     |  next trade follows on (or a quiet market, see QUIET_RELEASE_MS)
//!     +---------------------------------------- AfterBreak <-- the connection broke
//! ```
//! After a break, history from `last + 1` is asked for at once: trades made while the
//! connection was down come back before the reconnected stream decides anything.

use crate::event::Trade;

/// A quiet market after a break: once the venue's exchange time is this far past the
/// break and the history has answered, the bars stop waiting for a trade to prove
/// continuity.
pub const QUIET_RELEASE_MS: i64 = 10_000;

/// How often an empty history answer is asked again while a hole is open (the venue's
/// history can lag its stream by a moment).
pub const EMPTY_ANSWER_RETRIES: u8 = 5;

/// Trades held behind a hole before the hole is given up as incomplete.
pub const MAX_HELD: usize = 1 << 20;

/// What to do with one trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeVerdict {
    /// New and in order: count it.
    Count,
    /// Already counted (or behind a hole it cannot belong to): drop it.
    Duplicate,
    /// The first trade past a newly found hole: held (as [`Self::Held`]), and the trade
    /// history asked for.
    Hole,
    /// Ahead of a hole: kept by the sequencer until the hole is filled or given up.
    Held,
}

/// A request for the venue's trade history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackfillRequest {
    /// The first trade id wanted.
    pub from_id: u64,
    /// 0 for a first request, then 1, 2...: the session waits longer before each retry.
    pub retry: u8,
}

/// How a history answer or refusal left the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Still waiting (for the next stream trade, or for another answer).
    Waiting,
    /// Continuity is proven: count the held trades (see [`TradeSequencer::take_held`]) and
    /// let the bars close.
    Filled,
    /// The hole cannot be filled: bars up to and including the second of `through_ns` may
    /// miss trades. Count the held trades and let the bars close.
    GaveUp {
        /// Trade time of the first trade after the hole.
        through_ns: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Continuous,
    /// The connection broke; `since_ms` is the venue's exchange time then.
    AfterBreak { since_ms: i64 },
    /// Trades are missing between `last_id` and the first held trade.
    Hole { empty_answers: u8 },
}

/// One instrument's trade continuity. See the module docs.
#[derive(Debug, Clone)]
pub struct TradeSequencer {
    last_id: Option<u64>,
    state: State,
    /// Trades after a hole, in id order.
    held: Vec<Trade>,
    /// A history answer is on its way.
    in_flight: bool,
    /// Not yet taken by the session.
    request: Option<BackfillRequest>,
}

impl Default for TradeSequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl TradeSequencer {
    /// A sequencer that has seen nothing.
    pub const fn new() -> Self {
        Self {
            last_id: None,
            state: State::Continuous,
            held: Vec::new(),
            in_flight: false,
            request: None,
        }
    }

    /// True while the instrument's bars must not close by the watermark alone.
    pub fn is_holding(&self) -> bool {
        self.state != State::Continuous
    }

    /// The last trade id counted.
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// Judges one trade, from the stream or from a history answer.
    pub fn on_trade(&mut self, trade: &Trade) -> TradeVerdict {
        let id = trade.trade_id;
        let Some(last) = self.last_id else {
            self.last_id = Some(id);
            return TradeVerdict::Count;
        };
        if id <= last {
            return TradeVerdict::Duplicate;
        }
        match self.state {
            State::Hole { .. } => {
                let first_held = self.held.first().map_or(u64::MAX, |t| t.trade_id);
                let last_held = self.held.last().map_or(0, |t| t.trade_id);
                if id < first_held {
                    // Inside the hole: history filling it (ids the venue's history leaves
                    // out, such as futures insurance-fund fills, simply never come).
                    self.last_id = Some(id);
                    TradeVerdict::Count
                } else if id > last_held {
                    if self.held.len() < MAX_HELD {
                        self.held.push(*trade);
                    }
                    TradeVerdict::Held
                } else {
                    TradeVerdict::Duplicate
                }
            }
            State::AfterBreak { .. } | State::Continuous if id == last + 1 => {
                self.last_id = Some(id);
                if !self.in_flight {
                    // Continuity is proven once no answer can still add to it.
                    self.state = State::Continuous;
                }
                TradeVerdict::Count
            }
            State::AfterBreak { .. } | State::Continuous => {
                self.state = State::Hole { empty_answers: 0 };
                self.held.push(*trade);
                self.ask(last + 1, 0);
                TradeVerdict::Hole
            }
        }
    }

    /// The connection carrying the trades broke at venue time `now_ms`: hold the bars and
    /// ask for the trades made meanwhile.
    pub fn on_break(&mut self, now_ms: i64) {
        let Some(last) = self.last_id else { return };
        if self.state == State::Continuous {
            self.state = State::AfterBreak { since_ms: now_ms };
            self.ask(last + 1, 0);
        }
    }

    /// A history answer ended; `answer_last_id` is the largest id it held.
    pub fn on_backfill_end(&mut self, answer_last_id: Option<u64>) -> Resolution {
        self.in_flight = false;
        let last = self.last_id.unwrap_or(0);
        match self.state {
            State::Continuous => Resolution::Waiting,
            State::AfterBreak { .. } => Resolution::Waiting,
            State::Hole { empty_answers } => {
                let first_held = self.held.first().map_or(u64::MAX, |t| t.trade_id);
                // The history reached the held trades: nothing else is missing.
                if answer_last_id.is_some_and(|id| id + 1 >= first_held) || last + 1 >= first_held
                {
                    self.state = State::Continuous;
                    return Resolution::Filled;
                }
                match answer_last_id {
                    Some(id) if id >= last => self.ask(last.max(id) + 1, 0),
                    _ if empty_answers < EMPTY_ANSWER_RETRIES => {
                        self.state = State::Hole {
                            empty_answers: empty_answers + 1,
                        };
                        self.ask(last + 1, empty_answers + 1);
                    }
                    _ => return self.give_up(),
                }
                Resolution::Waiting
            }
        }
    }

    /// The venue refused the history (no API key, too old, persistent errors).
    pub fn on_backfill_refused(&mut self) -> Resolution {
        self.in_flight = false;
        match self.state {
            State::Hole { .. } => self.give_up(),
            _ => Resolution::Waiting,
        }
    }

    /// A quiet market after a break: at venue time `now_ms`, with no answer pending and
    /// [`QUIET_RELEASE_MS`] passed, the bars stop waiting. True when released.
    pub fn release_if_quiet(&mut self, now_ms: i64) -> bool {
        match self.state {
            State::AfterBreak { since_ms }
                if !self.in_flight && now_ms - since_ms >= QUIET_RELEASE_MS =>
            {
                self.state = State::Continuous;
                true
            }
            _ => false,
        }
    }

    /// The end of the input: an open hole is given up, a break stops waiting.
    pub fn finish(&mut self) -> Resolution {
        self.in_flight = false;
        match self.state {
            State::Hole { .. } => self.give_up(),
            _ => {
                self.state = State::Continuous;
                Resolution::Filled
            }
        }
    }

    /// Takes the held trades after [`Resolution::Filled`] or [`Resolution::GaveUp`], in id
    /// order; the caller counts them.
    pub fn take_held(&mut self) -> std::vec::Drain<'_, Trade> {
        if let Some(t) = self.held.last() {
            self.last_id = Some(self.last_id.map_or(t.trade_id, |l| l.max(t.trade_id)));
        }
        self.held.drain(..)
    }

    /// The history request not yet taken by the session.
    pub fn take_request(&mut self) -> Option<BackfillRequest> {
        self.request.take()
    }

    fn ask(&mut self, from_id: u64, retry: u8) {
        if !self.in_flight {
            self.in_flight = true;
            self.request = Some(BackfillRequest { from_id, retry });
        }
    }

    fn give_up(&mut self) -> Resolution {
        self.state = State::Continuous;
        let through_ns = self.held.first().map_or(0, |t| t.trade_ts);
        Resolution::GaveUp { through_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Aggressor, TradeSource};

    fn trade(id: u64) -> Trade {
        Trade {
            trade_id: id,
            px: 100,
            qty: 1,
            aggressor: Aggressor::Buy,
            trade_ts: id as i64 * 1_000_000,
            exch_ts: id as i64 * 1_000_000,
            is_taker_flow: true,
            source: TradeSource::Trade,
        }
    }

    #[test]
    fn duplicates_are_dropped_and_consecutive_ids_counted() {
        let mut s = TradeSequencer::new();
        assert_eq!(s.on_trade(&trade(10)), TradeVerdict::Count);
        assert_eq!(s.on_trade(&trade(11)), TradeVerdict::Count);
        assert_eq!(s.on_trade(&trade(11)), TradeVerdict::Duplicate);
        assert_eq!(s.on_trade(&trade(5)), TradeVerdict::Duplicate);
        assert!(!s.is_holding() && s.take_request().is_none());
    }

    #[test]
    fn a_hole_is_held_until_history_reaches_it() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(10));
        assert_eq!(s.on_trade(&trade(14)), TradeVerdict::Hole);
        assert_eq!(s.on_trade(&trade(15)), TradeVerdict::Held);
        assert_eq!(s.on_trade(&trade(15)), TradeVerdict::Duplicate);
        assert!(s.is_holding());
        assert_eq!(
            s.take_request(),
            Some(BackfillRequest {
                from_id: 11,
                retry: 0
            })
        );
        // The answer runs into the held trades: 14 is a duplicate of a held one.
        for (id, want) in [
            (11, TradeVerdict::Count),
            (12, TradeVerdict::Count),
            (13, TradeVerdict::Count),
            (14, TradeVerdict::Duplicate),
        ] {
            assert_eq!(s.on_trade(&trade(id)), want, "id {id}");
        }
        assert_eq!(s.on_backfill_end(Some(14)), Resolution::Filled);
        let held: Vec<u64> = s.take_held().map(|t| t.trade_id).collect();
        assert_eq!(held, [14, 15]);
        assert_eq!(s.last_id(), Some(15));
        assert!(!s.is_holding());
        assert_eq!(s.on_trade(&trade(16)), TradeVerdict::Count);
    }

    #[test]
    fn a_short_answer_asks_again_from_where_it_ended() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1));
        s.on_trade(&trade(3000));
        assert_eq!(s.take_request().map(|r| r.from_id), Some(2));
        for id in 2..1002 {
            assert_eq!(s.on_trade(&trade(id)), TradeVerdict::Count);
        }
        assert_eq!(s.on_backfill_end(Some(1001)), Resolution::Waiting);
        assert_eq!(s.take_request().map(|r| r.from_id), Some(1002));
    }

    #[test]
    fn refused_or_empty_history_gives_the_hole_up_with_its_extent() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1));
        s.on_trade(&trade(9));
        assert_eq!(
            s.on_backfill_refused(),
            Resolution::GaveUp {
                through_ns: 9_000_000
            }
        );
        assert_eq!(s.take_held().count(), 1);
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1));
        s.on_trade(&trade(9));
        for retry in 1..=EMPTY_ANSWER_RETRIES {
            assert_eq!(s.take_request().map(|r| r.retry), Some(retry - 1));
            assert_eq!(s.on_backfill_end(None), Resolution::Waiting);
        }
        assert!(s.take_request().is_some());
        assert!(matches!(s.on_backfill_end(None), Resolution::GaveUp { .. }));
    }

    #[test]
    fn a_break_asks_at_once_and_the_next_trade_proves_continuity() {
        let mut s = TradeSequencer::new();
        s.on_break(0);
        assert!(!s.is_holding(), "nothing to prove before the first trade");
        s.on_trade(&trade(7));
        s.on_break(1_000);
        assert!(s.is_holding());
        assert_eq!(s.take_request().map(|r| r.from_id), Some(8));
        // Trades made while the connection was down come back in the answer.
        assert_eq!(s.on_trade(&trade(8)), TradeVerdict::Count);
        assert!(s.is_holding(), "the answer is not complete yet");
        assert_eq!(s.on_backfill_end(Some(8)), Resolution::Waiting);
        assert_eq!(s.on_trade(&trade(9)), TradeVerdict::Count);
        assert!(!s.is_holding());
    }

    #[test]
    fn a_quiet_market_releases_after_a_break_once_the_history_answered() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(7));
        s.on_break(1_000);
        assert!(!s.release_if_quiet(1_000 + QUIET_RELEASE_MS), "answer pending");
        s.on_backfill_end(None);
        assert!(!s.release_if_quiet(1_000 + QUIET_RELEASE_MS - 1));
        assert!(s.release_if_quiet(1_000 + QUIET_RELEASE_MS));
        assert!(!s.is_holding());
    }
}
