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
//! After a break, history from `last + 1` is asked for at once, and again after every
//! answer until the stream is back: while the connection is down (or the venue refuses
//! it), the history is the feed, and trades made meanwhile come back before the
//! reconnected stream decides anything.

use crate::event::Trade;

/// A quiet market after a break: once the venue's exchange time is this far past the
/// break, and the history answered empty to a request made after the stream came back
/// (every trade up to the answer is counted, every later one comes by the stream), the
/// bars stop waiting for a trade to prove continuity. A history that still brings trades
/// keeps them waiting, and so does an empty answer asked for while the stream was down:
/// trades made between that answer and the stream's return would be in neither (seen in
/// a mixed-fault run: a quiet COIN-M lost 21 trades as late). Without a history, the
/// seconds until the stream came back are flagged incomplete this long after it did.
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
    /// Held trades follow on: count them (see [`TradeSequencer::take_held`]); once the
    /// sequencer no longer holds, let the bars close.
    Filled,
    /// The hole cannot be filled: bars up to and including the second of `through_ns` may
    /// miss trades. Count the held trades and let the bars close.
    GaveUp {
        /// Trade time of the first trade after the hole.
        through_ns: i64,
    },
}

/// What the trade history has said since a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakHistory {
    /// Nothing that proves the time between the break and the stream's return.
    Unproven,
    /// An answer asked for after the stream resumed held no trade: no trade was missed
    /// (those made before the answer would be in it, those after come by the stream).
    Quiet,
    /// Refused: only the stream can tell, and the time before it resumed stays unknown.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Continuous,
    /// The connection broke; `since_ms` is the venue's exchange time then. `retry` grows
    /// with each empty answer (the history is polled more slowly while nothing trades).
    AfterBreak {
        since_ms: i64,
        /// Venue time of the first stream event after the break: the successor connection
        /// is up, and every trade from then on comes by the stream.
        resumed_ms: Option<i64>,
        /// What the history has proven of the time in between.
        history: BreakHistory,
        retry: u8,
    },
    /// Trades are missing between `last_id` and the first held trade.
    Hole {
        empty_answers: u8,
    },
}

/// One instrument's trade continuity. See the module docs.
#[derive(Debug, Clone)]
pub struct TradeSequencer {
    last_id: Option<u64>,
    state: State,
    /// Trades after a hole, in id order.
    held: Vec<Trade>,
    /// The first `releasable` held trades follow on: [`Self::take_held`] hands them out.
    releasable: usize,
    /// The history answer being read while a hole is open.
    answer: Vec<Trade>,
    /// More than [`MAX_HELD`] trades came behind a hole.
    overflowed: bool,
    /// Trades the history brought that the stream had not.
    backfilled: u64,
    /// The connection broke while a hole was open (at this venue time): once the hole is
    /// filled, the stream is still to be proven.
    break_during_hole: Option<i64>,
    /// A history answer is on its way.
    in_flight: bool,
    /// The request on its way was asked for after the stream resumed from a break: an
    /// empty answer to it proves the quiet (one asked before proves nothing of the trades
    /// made between its answer and the stream's return).
    asked_after_resume: bool,
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
            releasable: 0,
            answer: Vec::new(),
            overflowed: false,
            backfilled: 0,
            break_during_hole: None,
            in_flight: false,
            asked_after_resume: false,
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

    /// Trades the history brought that the stream had not, so far.
    pub fn backfilled(&self) -> u64 {
        self.backfilled
    }

    /// Judges one trade, from the stream or (`from_history`) from a history answer: only
    /// the stream proves that it follows on after a break.
    pub fn on_trade(&mut self, trade: &Trade, from_history: bool) -> TradeVerdict {
        let id = trade.trade_id;
        let Some(last) = self.last_id else {
            self.last_id = Some(id);
            return TradeVerdict::Count;
        };
        if id <= last {
            return TradeVerdict::Duplicate;
        }
        match self.state {
            // A history answer is merged into the held trades when it ends.
            State::Hole { .. } if from_history => {
                self.answer.push(*trade);
                TradeVerdict::Held
            }
            State::Hole { .. } => self.hold_trade(trade),
            State::AfterBreak { .. } | State::Continuous if id == last + 1 => {
                self.last_id = Some(id);
                self.backfilled += u64::from(from_history);
                if !from_history {
                    // Continuity is proven (an answer still on its way only repeats).
                    self.state = State::Continuous;
                }
                TradeVerdict::Count
            }
            State::AfterBreak { .. } | State::Continuous => {
                // A hole; in a history answer, perhaps only ids the history leaves out
                // (futures insurance-fund fills), which the answer's end settles. History
                // proves nothing of the stream: after a break, it stays to be proven.
                if let (State::AfterBreak { since_ms, .. }, true) = (self.state, from_history) {
                    self.break_during_hole.get_or_insert(since_ms);
                }
                self.state = State::Hole { empty_answers: 0 };
                self.held.push(*trade);
                self.ask(last + 1, 0);
                TradeVerdict::Hole
            }
        }
    }

    /// Keeps a stream trade behind the hole, in id order, once.
    fn hold_trade(&mut self, trade: &Trade) -> TradeVerdict {
        let id = trade.trade_id;
        match self.held.last() {
            Some(t) if t.trade_id >= id => {
                // Rare: behind the newest held trade (a second hole closing from the stream).
                match self.held.binary_search_by_key(&id, |t| t.trade_id) {
                    Ok(_) => return TradeVerdict::Duplicate,
                    Err(at) => self.held.insert(at, *trade),
                }
            }
            _ if self.held.len() < MAX_HELD => self.held.push(*trade),
            // Past the cap the trade is lost; the hole is given up at its next answer.
            _ => self.overflowed = true,
        }
        TradeVerdict::Held
    }

    /// The connection carrying the trades broke at venue time `now_ms`: hold the bars and
    /// ask for the trades made meanwhile.
    pub fn on_break(&mut self, now_ms: i64) {
        let Some(last) = self.last_id else { return };
        match self.state {
            State::Continuous => self.after_break(now_ms, last),
            State::Hole { .. } => {
                self.break_during_hole.get_or_insert(now_ms);
            }
            State::AfterBreak { .. } => {}
        }
    }

    fn after_break(&mut self, since_ms: i64, last: u64) {
        self.state = State::AfterBreak {
            since_ms,
            resumed_ms: None,
            history: BreakHistory::Unproven,
            retry: 0,
        };
        self.ask(last + 1, 0);
    }

    /// An event of the stream itself (not a history answer, not a REST snapshot) at venue
    /// time `exch_ms`: after a break, the first one says the successor connection is up.
    pub fn on_stream_event(&mut self, exch_ms: i64) {
        if let State::AfterBreak {
            resumed_ms: resumed @ None,
            ..
        } = &mut self.state
        {
            *resumed = Some(exch_ms);
        }
    }

    /// A hole is closed (filled or given up): the stream is continuous again, unless it
    /// broke meanwhile.
    fn hole_closed(&mut self) {
        self.state = State::Continuous;
        if let Some(since_ms) = self.break_during_hole.take() {
            // The held trades end where that connection did: what came after is unknown.
            let last = self
                .held
                .last()
                .map(|t| t.trade_id)
                .or(self.last_id)
                .unwrap_or(0);
            self.after_break(since_ms, last);
        }
    }

    /// A history answer ended; `answer_last_id` is the largest id it held. Every trade id
    /// up to it that the answer did not list does not exist for the history (futures
    /// insurance-fund fills), so held trades up to it follow on.
    pub fn on_backfill_end(&mut self, answer_last_id: Option<u64>) -> Resolution {
        self.in_flight = false;
        let last = self.last_id.unwrap_or(0);
        match self.state {
            State::Continuous => Resolution::Waiting,
            State::AfterBreak {
                since_ms,
                resumed_ms,
                retry,
                ..
            } => {
                // No stream trade has proven continuity yet: poll the history again, more
                // slowly while it is empty.
                let retry = if answer_last_id.is_some() {
                    1
                } else {
                    (retry + 1).min(EMPTY_ANSWER_RETRIES)
                };
                let history = if answer_last_id.is_none() && self.asked_after_resume {
                    BreakHistory::Quiet
                } else {
                    BreakHistory::Unproven
                };
                self.state = State::AfterBreak {
                    since_ms,
                    resumed_ms,
                    history,
                    retry,
                };
                self.ask(last + 1, retry);
                Resolution::Waiting
            }
            State::Hole { empty_answers } => {
                self.merge_answer();
                if self.overflowed {
                    return self.give_up();
                }
                // Held trades that follow on, directly or across ids the answer settled.
                let known = answer_last_id.unwrap_or(0);
                let mut next = last + 1;
                let mut releasable = 0;
                for t in &self.held {
                    if t.trade_id > next && t.trade_id > known + 1 {
                        break;
                    }
                    next = t.trade_id + 1;
                    releasable += 1;
                }
                self.releasable = releasable;
                if releasable == self.held.len() {
                    self.hole_closed();
                    return Resolution::Filled;
                }
                let progressed = releasable > 0;
                if progressed || answer_last_id.is_some_and(|id| id > last) {
                    self.state = State::Hole { empty_answers: 0 };
                    self.ask(next, 0);
                } else if empty_answers < EMPTY_ANSWER_RETRIES {
                    self.state = State::Hole {
                        empty_answers: empty_answers + 1,
                    };
                    self.ask(next, empty_answers + 1);
                } else {
                    return self.give_up();
                }
                if progressed {
                    // Count what follows on now; the rest waits for the next answer.
                    Resolution::Filled
                } else {
                    Resolution::Waiting
                }
            }
        }
    }

    /// Merges the answer's trades into the held ones (both in id order), once each.
    fn merge_answer(&mut self) {
        if self.answer.is_empty() {
            return;
        }
        let held = core::mem::take(&mut self.held);
        let mut merged = Vec::with_capacity(held.len() + self.answer.len());
        let (mut a, mut b) = (
            held.into_iter().peekable(),
            self.answer.drain(..).peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.trade_id < y.trade_id => a.next(),
                (Some(x), Some(y)) if x.trade_id > y.trade_id => {
                    self.backfilled += 1;
                    b.next()
                }
                (Some(_), Some(_)) => {
                    b.next();
                    a.next()
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => {
                    self.backfilled += 1;
                    b.next()
                }
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.held = merged;
    }

    /// The venue refused the history (no API key, too old, persistent errors).
    pub fn on_backfill_refused(&mut self) -> Resolution {
        self.in_flight = false;
        match self.state {
            State::Hole { .. } => self.give_up(),
            State::AfterBreak {
                since_ms,
                resumed_ms,
                retry,
                ..
            } => {
                // No polling without a history; the stream alone decides from here.
                self.state = State::AfterBreak {
                    since_ms,
                    resumed_ms,
                    history: BreakHistory::Refused,
                    retry,
                };
                Resolution::Waiting
            }
            State::Continuous => Resolution::Waiting,
        }
    }

    /// A quiet market after a break, at venue time `now_ms`: the bars stop waiting for a
    /// stream trade to prove continuity once [`QUIET_RELEASE_MS`] passed and
    /// - the history, asked after the stream resumed, answered empty: nothing was missed
    ///   ([`Resolution::Filled`]);
    /// - or the history was refused: the seconds until the stream resumed may miss trades
    ///   ([`Resolution::GaveUp`] through that second).
    ///
    /// `None` while the bars still wait.
    pub fn release_if_quiet(&mut self, now_ms: i64) -> Option<Resolution> {
        let State::AfterBreak {
            since_ms,
            resumed_ms: Some(resumed_ms),
            history,
            ..
        } = self.state
        else {
            return None;
        };
        let resolution = match history {
            BreakHistory::Quiet if now_ms - since_ms >= QUIET_RELEASE_MS => Resolution::Filled,
            BreakHistory::Refused if now_ms - resumed_ms >= QUIET_RELEASE_MS => {
                Resolution::GaveUp {
                    through_ns: resumed_ms.saturating_mul(1_000_000),
                }
            }
            _ => return None,
        };
        self.state = State::Continuous;
        Some(resolution)
    }

    /// The end of the input: an open hole is given up, a break stops waiting.
    pub fn finish(&mut self) -> Resolution {
        self.in_flight = false;
        match self.state {
            State::Hole { .. } => {
                self.break_during_hole = None;
                self.give_up()
            }
            _ => {
                self.state = State::Continuous;
                Resolution::Filled
            }
        }
    }

    /// Takes the held trades that [`Resolution::Filled`] or [`Resolution::GaveUp`] made
    /// countable, in id order; the caller counts them.
    pub fn take_held(&mut self) -> std::vec::Drain<'_, Trade> {
        let n = core::mem::take(&mut self.releasable).min(self.held.len());
        if let Some(t) = self.held[..n].last() {
            self.last_id = Some(self.last_id.map_or(t.trade_id, |l| l.max(t.trade_id)));
        }
        self.held.drain(..n)
    }

    /// The history request not yet taken by the session.
    pub fn take_request(&mut self) -> Option<BackfillRequest> {
        self.request.take()
    }

    fn ask(&mut self, from_id: u64, retry: u8) {
        if !self.in_flight {
            self.in_flight = true;
            self.asked_after_resume = matches!(
                self.state,
                State::AfterBreak {
                    resumed_ms: Some(_),
                    ..
                }
            );
            self.request = Some(BackfillRequest { from_id, retry });
        }
    }

    fn give_up(&mut self) -> Resolution {
        self.merge_answer();
        self.overflowed = false;
        self.hole_closed();
        self.releasable = self.held.len();
        // The first trade after the last hole among the held ones: bars up to its second
        // may miss trades.
        let mut prev = self.last_id.unwrap_or(0);
        let mut through_ns = 0;
        for t in &self.held {
            if t.trade_id > prev + 1 {
                through_ns = t.trade_ts;
            }
            prev = t.trade_id;
        }
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

    /// A sequencer that counted trade 7, then lost its stream at venue time 1 s.
    fn broken_after_trade_7() -> TradeSequencer {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(7), false);
        s.on_break(1_000);
        s
    }

    #[test]
    fn duplicates_are_dropped_and_consecutive_ids_counted() {
        let mut s = TradeSequencer::new();
        assert_eq!(s.on_trade(&trade(10), false), TradeVerdict::Count);
        assert_eq!(s.on_trade(&trade(11), false), TradeVerdict::Count);
        assert_eq!(s.on_trade(&trade(11), false), TradeVerdict::Duplicate);
        assert_eq!(s.on_trade(&trade(5), false), TradeVerdict::Duplicate);
        assert!(!s.is_holding() && s.take_request().is_none());
    }

    #[test]
    fn a_hole_is_held_until_history_reaches_it() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(10), false);
        assert_eq!(s.on_trade(&trade(14), false), TradeVerdict::Hole);
        assert_eq!(s.on_trade(&trade(15), false), TradeVerdict::Held);
        assert_eq!(s.on_trade(&trade(15), false), TradeVerdict::Duplicate);
        assert!(s.is_holding());
        assert_eq!(
            s.take_request(),
            Some(BackfillRequest {
                from_id: 11,
                retry: 0
            })
        );
        // The answer runs into the held trades; it is merged when it ends.
        for id in [11, 12, 13, 14] {
            assert_eq!(s.on_trade(&trade(id), true), TradeVerdict::Held, "id {id}");
        }
        assert_eq!(s.on_backfill_end(Some(14)), Resolution::Filled);
        let held: Vec<u64> = s.take_held().map(|t| t.trade_id).collect();
        assert_eq!(held, [11, 12, 13, 14, 15]);
        assert_eq!(s.backfilled(), 3, "14 was held from the stream already");
        assert_eq!(s.last_id(), Some(15));
        assert!(!s.is_holding());
        assert_eq!(s.on_trade(&trade(16), false), TradeVerdict::Count);
    }

    #[test]
    fn a_short_answer_asks_again_from_where_it_ended() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1), false);
        s.on_trade(&trade(3000), false);
        assert_eq!(s.take_request().map(|r| r.from_id), Some(2));
        for id in 2..1002 {
            s.on_trade(&trade(id), true);
        }
        // What follows on is counted now, and the rest asked for.
        assert_eq!(s.on_backfill_end(Some(1001)), Resolution::Filled);
        assert_eq!(s.take_held().count(), 1000);
        assert!(s.is_holding());
        assert_eq!(s.take_request().map(|r| r.from_id), Some(1002));
        for id in 1002..3000 {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(2999)), Resolution::Filled);
        assert_eq!(s.take_held().count(), 1999);
        assert!(!s.is_holding());
        assert_eq!(s.last_id(), Some(3000));
    }

    #[test]
    fn a_second_hole_behind_the_held_trades_is_filled_too() {
        // The stream breaks again while a hole is open: its successor's trades leave a
        // second hole among the held ones (seen in a fault run: 315..379 lost).
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(10), false);
        s.on_trade(&trade(20), false);
        assert_eq!(s.take_request().map(|r| r.from_id), Some(11));
        s.on_trade(&trade(21), false);
        s.on_break(0);
        s.on_trade(&trade(40), false);
        s.on_trade(&trade(41), false);
        // The answer asked before the break covers both holes, in part.
        for id in 11..=30 {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(30)), Resolution::Filled);
        let counted: Vec<u64> = s.take_held().map(|t| t.trade_id).collect();
        assert_eq!(counted, (11..=30).collect::<Vec<_>>());
        assert!(s.is_holding(), "31..39 still missing");
        assert_eq!(s.take_request().map(|r| r.from_id), Some(31));
        for id in 31..=45 {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(45)), Resolution::Filled);
        assert_eq!(s.take_held().count(), 15);
        assert!(s.is_holding(), "the stream broke after 41: not proven yet");
        assert_eq!(s.on_trade(&trade(46), false), TradeVerdict::Count);
        assert!(!s.is_holding());
    }

    #[test]
    fn a_break_while_a_hole_is_open_keeps_the_bars_held_after_it() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(10), false);
        s.on_trade(&trade(20), false);
        s.take_request();
        s.on_break(5_000);
        for id in 11..=19 {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(19)), Resolution::Filled);
        assert_eq!(s.take_held().count(), 10);
        // The hole is filled, but the stream that delivered 20 is gone: what came after
        // it is asked for, and the bars stay held until a stream trade follows on.
        assert!(s.is_holding());
        assert_eq!(s.take_request().map(|r| r.from_id), Some(21));
        assert_eq!(s.on_trade(&trade(21), false), TradeVerdict::Count);
        assert!(!s.is_holding());
    }

    #[test]
    fn ids_the_history_leaves_out_are_settled_by_its_answer() {
        // Futures history lists market trades only: 12 (an insurance-fund fill) never
        // comes, and the answer reaching 14 says so.
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(10), false);
        s.on_trade(&trade(15), false);
        for id in [11, 13, 14] {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(14)), Resolution::Filled);
        assert_eq!(s.take_held().count(), 4);
        assert!(!s.is_holding());
        // The same skip in an answer polled after a break settles the ids, but the stream
        // is still to be proven.
        s.on_break(0);
        s.take_request();
        for id in [16, 18] {
            s.on_trade(&trade(id), true);
        }
        assert_eq!(s.on_backfill_end(Some(18)), Resolution::Filled);
        assert_eq!(
            s.take_held().count(),
            1,
            "16 followed on and was counted at once"
        );
        assert!(s.is_holding());
        assert_eq!(s.take_request().map(|r| r.from_id), Some(19));
        assert_eq!(s.on_trade(&trade(19), false), TradeVerdict::Count);
        assert!(!s.is_holding());
    }

    #[test]
    fn refused_or_empty_history_gives_the_hole_up_with_its_extent() {
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1), false);
        s.on_trade(&trade(9), false);
        s.on_trade(&trade(10), false);
        assert_eq!(
            s.on_backfill_refused(),
            Resolution::GaveUp {
                through_ns: 9_000_000
            }
        );
        assert_eq!(s.take_held().count(), 2);
        assert!(!s.is_holding());
        let mut s = TradeSequencer::new();
        s.on_trade(&trade(1), false);
        s.on_trade(&trade(9), false);
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
        s.on_trade(&trade(7), false);
        s.on_break(1_000);
        assert!(s.is_holding());
        assert_eq!(s.take_request().map(|r| r.from_id), Some(8));
        // Trades made while the connection was down come back in the answer, and the
        // history is polled again while the stream is not back, more slowly when empty.
        assert_eq!(s.on_trade(&trade(8), true), TradeVerdict::Count);
        assert!(s.is_holding(), "history does not prove the stream is back");
        assert_eq!(s.on_backfill_end(Some(8)), Resolution::Waiting);
        assert_eq!(
            s.take_request(),
            Some(BackfillRequest {
                from_id: 9,
                retry: 1
            })
        );
        assert_eq!(s.on_backfill_end(None), Resolution::Waiting);
        assert_eq!(
            s.take_request(),
            Some(BackfillRequest {
                from_id: 9,
                retry: 2
            })
        );
        assert!(s.is_holding());
        assert_eq!(s.on_trade(&trade(9), false), TradeVerdict::Count);
        assert!(!s.is_holding());
        // The answer still on its way repeats what the stream brings.
        assert_eq!(s.on_trade(&trade(9), false), TradeVerdict::Duplicate);
        assert_eq!(s.on_backfill_end(Some(9)), Resolution::Waiting);
        assert_eq!(s.take_request(), None);
    }

    #[test]
    fn a_quiet_market_releases_after_a_break_once_the_history_answered() {
        let mut s = broken_after_trade_7();
        s.on_stream_event(1_200);
        // The first request went out before the stream resumed: a new one is asked.
        s.on_backfill_end(None);
        assert!(s.take_request().is_some());
        let quiet = 1_000 + QUIET_RELEASE_MS;
        assert_eq!(s.release_if_quiet(quiet), None, "no answer yet");
        s.on_backfill_end(Some(8));
        assert!(s.take_request().is_some());
        assert_eq!(s.release_if_quiet(quiet), None, "the history brings trades");
        s.on_backfill_end(None);
        assert_eq!(s.release_if_quiet(quiet - 1), None);
        assert_eq!(s.release_if_quiet(quiet), Some(Resolution::Filled));
        assert!(!s.is_holding());
    }

    /// The mixed-fault run that lost 21 COIN-M trades: the history answered empty while
    /// the connection was still down, trades were made before the stream came back, and
    /// the quiet stream's book events then released the bars before any trade showed the
    /// hole.
    #[test]
    fn an_empty_answer_from_before_the_stream_resumed_proves_nothing() {
        let mut s = broken_after_trade_7();
        assert!(s.take_request().is_some());
        assert_eq!(s.on_backfill_end(None), Resolution::Waiting);
        // Trades 8 and 9 are made now, then the stream is back (book events only).
        s.on_stream_event(3_000);
        assert_eq!(s.release_if_quiet(1_000 + 2 * QUIET_RELEASE_MS), None);
        assert!(s.is_holding());
        // The next answer, asked after the stream resumed, brings them.
        assert_eq!(s.take_request().map(|r| r.from_id), Some(8));
        assert_eq!(s.on_trade(&trade(8), true), TradeVerdict::Count);
        assert_eq!(s.on_trade(&trade(9), true), TradeVerdict::Count);
        assert_eq!(s.on_backfill_end(Some(9)), Resolution::Waiting);
        assert!(s.take_request().is_some());
        assert_eq!(s.on_backfill_end(None), Resolution::Waiting);
        assert_eq!(
            s.release_if_quiet(1_000 + 2 * QUIET_RELEASE_MS),
            Some(Resolution::Filled)
        );
    }

    #[test]
    fn a_refused_history_flags_the_seconds_until_the_stream_resumed() {
        let mut s = broken_after_trade_7();
        assert!(s.take_request().is_some());
        assert_eq!(s.on_backfill_refused(), Resolution::Waiting);
        assert_eq!(
            s.release_if_quiet(1_000 + 5 * QUIET_RELEASE_MS),
            None,
            "the stream is not back: nothing is known"
        );
        s.on_stream_event(4_000);
        assert_eq!(s.release_if_quiet(4_000 + QUIET_RELEASE_MS - 1), None);
        assert_eq!(
            s.release_if_quiet(4_000 + QUIET_RELEASE_MS),
            Some(Resolution::GaveUp {
                through_ns: 4_000_000_000
            })
        );
        assert!(!s.is_holding());
    }
}
