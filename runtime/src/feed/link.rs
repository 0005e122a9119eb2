//! One symbol's connections over time, sans-IO: which connection feeds the pipeline, when a
//! silent one is probed or dropped, and how a connection is replaced before the venue's
//! lifetime limit (or its `serverShutdown` notice) cuts it: make before break.
//!
//! ```text
//!            rotate_after, or a serverShutdown notice
//! primary ----------------------------------------------> connect a standby
//!    | forwarded                                              | held (not forwarded)
//!    v                                                        v
//!  pipeline <-- the held messages after the meeting point <-- in step: both delivered the
//!               (then the standby is the primary and the      same message; the old one
//!                old one is closed politely)                  is retired
//! ```
//!
//! Both connections carry the same streams in the same order, so the moment one delivers a
//! message the other already delivered, they are in step there: everything the standby
//! holds past that message is new, everything before it was forwarded. A handover that
//! does not get in step (a standby that never catches up, a venue that frames messages
//! differently per connection) ends as a stream break: the pipeline's trade continuity
//! and book resync take over, as after any disconnect. A quiet market offers no meeting
//! point: once both connections have been open and silent for [`QUIET_HANDOVER`], the
//! venue's next message goes to both, and the standby takes over as it is. (Should a
//! message the old connection had in flight for that long be lost after all, the trade
//! ids and the book's update ids still catch it: a hole or a gap, never silence.)
//!
//! Both transports drive a [`Link`]: the io_uring feed with its connection ids, the tokio
//! feed with ids of its own. Liveness is the transport's activity counter, looked at by
//! [`Link::tick`] (see [`StallWatch`]).

use flowcore_core::event::SessionEvent;
use flowcore_feeds::marker_line;
use flowcore_feeds::transport::liveness::{Liveness, StallWatch};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often transports call [`Link::tick`].
pub(crate) const LINK_TICK: Duration = Duration::from_millis(100);
/// The primary's messages a handover remembers: how far behind a standby may be when
/// it meets the primary.
const RECENT_OLD: usize = 4096;
/// Messages a standby may hold before the handover gives up.
const MAX_HELD: usize = 20_000;
/// Time a standby has to get in step (from its connect) before the handover gives up.
const HANDOVER_LIMIT: Duration = Duration::from_secs(20);
/// Silence on both connections, from the standby's opening, after which the standby
/// takes over without a meeting point (a quiet market has none to offer).
const QUIET_HANDOVER: Duration = Duration::from_secs(1);
/// Wait before another standby after one failed.
const STANDBY_RETRY: Duration = Duration::from_secs(5);

/// Matches a new connection's messages against the old one's.
#[derive(Debug, Default)]
struct Handover {
    /// The standby's messages not yet known to have been forwarded.
    held: VecDeque<Vec<u8>>,
    /// The primary's latest forwarded messages, oldest first.
    recent_old: VecDeque<Vec<u8>>,
}

/// Where a handover stands after a message.
#[derive(Debug, PartialEq, Eq)]
enum Meeting {
    /// Not in step yet.
    Apart,
    /// In step: the standby's held messages past the meeting point are new.
    Ahead,
    /// In step, the standby behind: it will deliver these again (forwarded already).
    Behind(VecDeque<Vec<u8>>),
}

impl Handover {
    /// The primary forwarded `bytes`.
    fn on_old(&mut self, bytes: &[u8]) -> Meeting {
        if let Some(k) = self.held.iter().position(|m| m == bytes) {
            self.held.drain(..=k);
            return Meeting::Ahead;
        }
        if self.recent_old.len() == RECENT_OLD {
            self.recent_old.pop_front();
        }
        self.recent_old.push_back(bytes.to_vec());
        Meeting::Apart
    }

    /// The standby delivered `bytes`.
    fn on_new(&mut self, bytes: &[u8]) -> Meeting {
        if let Some(j) = self.recent_old.iter().rposition(|m| m == bytes) {
            // It and everything held before it were forwarded; so were the primary's
            // messages after it, which the standby is yet to deliver.
            self.held.clear();
            return Meeting::Behind(self.recent_old.split_off(j + 1));
        }
        self.held.push_back(bytes.to_vec());
        Meeting::Apart
    }
}

#[derive(Debug)]
struct Conn<K> {
    key: K,
    /// When its WebSocket opened.
    opened_at: Option<Instant>,
    stall: StallWatch,
    /// Dropped as stalled; its close is on its way.
    dropped: bool,
}

#[derive(Debug)]
struct Standby<K> {
    conn: Conn<K>,
    handover: Handover,
    since: Instant,
    /// Either connection delivered a message since the standby opened.
    heard: bool,
}

/// What [`Link::tick`] asks of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkAction<K> {
    /// Open a standby connection, then report it with [`Link::standby_connecting`] (or
    /// [`Link::standby_failed`]).
    ConnectStandby,
    /// Send a ping on this connection.
    Ping(K),
    /// Drop this connection at once: it is stalled, or replaced without getting in step.
    /// Its close is reported as usual.
    Drop(K),
    /// Close this connection politely: it was replaced in step. Its close is reported as
    /// usual.
    Retire(K),
}

/// What a connection's end means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The primary is gone and nothing replaces it: a disconnect (reconnect as usual).
    Primary,
    /// The primary is gone mid-handover; the standby took over after a stream break.
    PrimaryReplaced,
    /// A standby failed before it got in step; another is tried later.
    Standby,
    /// A replaced connection finished closing: the rotation is done.
    Retired,
    /// Not a connection of this link.
    Unknown,
}

flowcore_core::counters! {
    /// Counts of what a link did.
    pub(crate) struct LinkCounters {
        /// Connections replaced in step (nothing lost, nothing doubled).
        pub(crate) rotations: u64,
        /// Handovers that ended as a stream break.
        pub(crate) rotation_breaks: u64,
        /// Connections dropped as stalled.
        pub(crate) stalls: u64,
        /// Pings sent to quiet connections.
        pub(crate) probes: u64,
        /// `serverShutdown` notices received.
        pub(crate) shutdown_notices: u64,
    }
}

/// One symbol's connections: a primary that feeds the pipeline and, while it is being
/// replaced, a standby.
#[derive(Debug)]
pub(crate) struct Link<K> {
    primary: Option<Conn<K>>,
    standby: Option<Standby<K>>,
    retiring: Vec<K>,
    /// Messages the primary (a standby that met its predecessor from behind) will
    /// deliver again: dropped as they come, in this order.
    redelivered: VecDeque<Vec<u8>>,
    stall_after: Duration,
    rotate_after: Duration,
    /// A `serverShutdown` notice asks for a standby now.
    notice: bool,
    /// No standby before then (one just failed).
    standby_not_before: Option<Instant>,
    counters: LinkCounters,
}

impl<K: Copy + Eq> Link<K> {
    /// A link with no connection yet.
    pub(crate) fn new(stall_after: Duration, rotate_after: Duration) -> Self {
        Self {
            primary: None,
            standby: None,
            retiring: Vec::new(),
            redelivered: VecDeque::new(),
            stall_after,
            rotate_after,
            notice: false,
            standby_not_before: None,
            counters: LinkCounters::default(),
        }
    }

    /// What the link counted.
    #[cfg(test)]
    pub(crate) fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// What the link counted since the last call.
    pub(crate) fn take_counters(&mut self) -> LinkCounters {
        core::mem::take(&mut self.counters)
    }

    /// The connection that feeds the pipeline, opened or opening.
    pub(crate) fn primary(&self) -> Option<K> {
        self.primary.as_ref().map(|c| c.key)
    }

    /// The primary's WebSocket is open.
    pub(crate) fn primary_open(&self) -> bool {
        self.primary.as_ref().is_some_and(|c| c.opened_at.is_some())
    }

    /// `key` is one of this link's connections (primary, standby or retiring).
    pub(crate) fn owns(&self, key: K) -> bool {
        self.primary() == Some(key) || self.standby() == Some(key) || self.retiring.contains(&key)
    }

    /// The replacement being brought in step.
    pub(crate) fn standby(&self) -> Option<K> {
        self.standby.as_ref().map(|s| s.conn.key)
    }

    /// A new primary connection is opening (after a disconnect, or the first).
    pub(crate) fn primary_connecting(&mut self, key: K, now: Instant) {
        self.redelivered.clear();
        self.primary = Some(Conn {
            key,
            opened_at: None,
            stall: StallWatch::new(self.stall_after, now),
            dropped: false,
        });
    }

    /// A standby connection is opening.
    pub(crate) fn standby_connecting(&mut self, key: K, now: Instant) {
        self.standby = Some(Standby {
            conn: Conn {
                key,
                opened_at: None,
                stall: StallWatch::new(self.stall_after, now),
                dropped: false,
            },
            handover: Handover::default(),
            since: now,
            heard: false,
        });
    }

    /// Gives up the standby (the stream is ending): returns it, for the caller to close.
    /// Its close is not this link's any more.
    pub(crate) fn abandon_standby(&mut self) -> Option<K> {
        self.standby.take().map(|s| s.conn.key)
    }

    /// A standby could not even start; another is tried later.
    pub(crate) fn standby_failed(&mut self, now: Instant) {
        self.standby = None;
        self.standby_not_before = Some(now + STANDBY_RETRY);
    }

    /// A connection's WebSocket opened; true when it is the primary (whose messages now
    /// start a new recording file), false for a standby.
    pub(crate) fn on_open(&mut self, key: K, now: Instant) -> bool {
        if let Some(s) = self.standby.as_mut().filter(|s| s.conn.key == key) {
            s.conn.opened_at = Some(now);
            return false;
        }
        match self.primary.as_mut().filter(|c| c.key == key) {
            Some(c) => {
                c.opened_at = Some(now);
                true
            }
            None => false,
        }
    }

    /// The transport's venue sent a `serverShutdown` notice on some connection.
    pub(crate) fn on_shutdown_notice(&mut self) {
        self.counters.shutdown_notices += 1;
        self.notice = true;
    }

    /// A message from connection `key`: what goes to the pipeline is passed to `forward`
    /// (the message itself, or the standby's held messages once in step). Returns a
    /// connection to close politely: the primary just replaced.
    pub(crate) fn on_message(
        &mut self,
        key: K,
        bytes: &[u8],
        forward: &mut dyn FnMut(&[u8]),
    ) -> Option<K> {
        let meeting = if self.primary.as_ref().is_some_and(|c| c.key == key) {
            if let Some(expected) = self.redelivered.pop_front() {
                if expected == bytes {
                    return None;
                }
                // Not the order its predecessor delivered: what was skipped is unknown.
                self.redelivered.clear();
                self.counters.rotation_breaks += 1;
                if let Some(line) = marker_line(SessionEvent::StreamBreak) {
                    forward(line);
                }
            }
            forward(bytes);
            match self.standby.as_mut() {
                Some(s) => s.handover.on_old(bytes),
                None => return None,
            }
        } else {
            let standby = self.standby.as_mut().filter(|s| s.conn.key == key)?;
            standby.handover.on_new(bytes)
        };
        if let Some(s) = self.standby.as_mut() {
            s.heard |= s.conn.opened_at.is_some();
        }
        match meeting {
            Meeting::Apart => None,
            Meeting::Ahead => {
                self.counters.rotations += 1;
                self.promote(forward)
            }
            Meeting::Behind(redelivered) => {
                self.counters.rotations += 1;
                let old = self.promote(forward);
                self.redelivered = redelivered;
                old
            }
        }
    }

    /// Looks at the connections' activity and ages at `now`; `activity` gives a
    /// connection's counter (`None`: it is gone). Returns what the transport must do;
    /// a handover that could not get in step ends here, forwarding a stream break and
    /// the standby's held messages.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        activity: &mut dyn FnMut(K) -> Option<u64>,
        forward: &mut dyn FnMut(&[u8]),
        act: &mut dyn FnMut(LinkAction<K>),
    ) {
        for conn in self
            .primary
            .iter_mut()
            .chain(self.standby.iter_mut().map(|s| &mut s.conn))
        {
            let Some(seen) = activity(conn.key).filter(|_| !conn.dropped) else {
                continue;
            };
            match conn.stall.check(seen, now) {
                Liveness::Alive => {}
                Liveness::Probe => {
                    self.counters.probes += 1;
                    act(LinkAction::Ping(conn.key));
                }
                Liveness::Stalled => {
                    conn.dropped = true;
                    self.counters.stalls += 1;
                    act(LinkAction::Drop(conn.key));
                }
            }
        }
        if let Some(s) = &self.standby {
            // Both open and quiet: whatever the venue sends next goes to both, so the
            // standby can take over without a meeting point.
            let quiet = !s.heard
                && s.handover.held.is_empty()
                && s.conn
                    .opened_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= QUIET_HANDOVER);
            if quiet {
                self.counters.rotations += 1;
                if let Some(old) = self.promote(forward) {
                    act(LinkAction::Retire(old));
                }
                return;
            }
            if now.saturating_duration_since(s.since) >= HANDOVER_LIMIT
                || s.handover.held.len() >= MAX_HELD
            {
                self.counters.rotation_breaks += 1;
                if let Some(line) = marker_line(SessionEvent::StreamBreak) {
                    forward(line);
                }
                if let Some(old) = self.promote(forward) {
                    act(LinkAction::Drop(old));
                }
            }
            return;
        }
        let Some(opened_at) = self.primary.as_ref().and_then(|c| c.opened_at) else {
            return;
        };
        let due = self.notice || now.saturating_duration_since(opened_at) >= self.rotate_after;
        if due && self.standby_not_before.is_none_or(|t| now >= t) {
            self.notice = false;
            act(LinkAction::ConnectStandby);
        }
    }

    /// Connection `key` is gone.
    pub(crate) fn on_closed(&mut self, key: K, forward: &mut dyn FnMut(&[u8])) -> Ended {
        if let Some(i) = self.retiring.iter().position(|k| *k == key) {
            self.retiring.swap_remove(i);
            return Ended::Retired;
        }
        if self.standby.as_ref().is_some_and(|s| s.conn.key == key) {
            self.standby = None;
            return Ended::Standby;
        }
        if !self.primary.as_ref().is_some_and(|c| c.key == key) {
            return Ended::Unknown;
        }
        self.primary = None;
        if self.standby.is_none() {
            return Ended::Primary;
        }
        // The old connection died before the two got in step: what it missed is a break.
        self.counters.rotation_breaks += 1;
        if let Some(line) = marker_line(SessionEvent::StreamBreak) {
            forward(line);
        }
        self.promote(forward);
        Ended::PrimaryReplaced
    }

    /// The standby (if any) becomes the primary: its held messages go to the pipeline.
    /// Returns the old primary, now retiring.
    fn promote(&mut self, forward: &mut dyn FnMut(&[u8])) -> Option<K> {
        let Standby {
            conn, mut handover, ..
        } = self.standby.take()?;
        self.redelivered.clear();
        // A notice concerned the connection being replaced.
        self.notice = false;
        for m in handover.held.drain(..) {
            forward(&m);
        }
        let old = self.primary.replace(conn).map(|c| c.key);
        self.retiring.extend(old);
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BREAK: &[u8] = br#"{"flowcore":"stream_break"}"#;

    /// A link with primary 1 open at `t0`, standby 2 connecting.
    fn rotating(t0: Instant) -> Link<u32> {
        let mut link = Link::new(Duration::from_secs(10), Duration::from_secs(60));
        link.primary_connecting(1, t0);
        assert!(link.on_open(1, t0));
        link.standby_connecting(2, t0);
        assert!(!link.on_open(2, t0), "a standby starts no recording file");
        link
    }

    fn feed(link: &mut Link<u32>, out: &mut Vec<Vec<u8>>, key: u32, m: &str) -> Option<u32> {
        link.on_message(key, m.as_bytes(), &mut |b| out.push(b.to_vec()))
    }

    fn strings(out: &[Vec<u8>]) -> Vec<&str> {
        out.iter()
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn a_standby_ahead_of_the_primary_takes_over_at_the_meeting_point() {
        let mut link = rotating(Instant::now());
        let mut out = Vec::new();
        assert_eq!(feed(&mut link, &mut out, 1, "m1"), None);
        assert_eq!(feed(&mut link, &mut out, 2, "m2"), None);
        assert_eq!(feed(&mut link, &mut out, 2, "m3"), None);
        assert_eq!(feed(&mut link, &mut out, 2, "m4"), None);
        assert_eq!(strings(&out), ["m1"], "the standby's messages are held");
        assert_eq!(
            feed(&mut link, &mut out, 1, "m2"),
            Some(1),
            "in step: retire 1"
        );
        assert_eq!(link.primary(), Some(2));
        assert_eq!(
            feed(&mut link, &mut out, 1, "m3"),
            None,
            "the retired one is ignored"
        );
        assert_eq!(feed(&mut link, &mut out, 2, "m5"), None);
        assert_eq!(strings(&out), ["m1", "m2", "m3", "m4", "m5"]);
        assert_eq!(link.on_closed(1, &mut |_| panic!()), Ended::Retired);
        assert_eq!(link.counters().rotations, 1);
    }

    #[test]
    fn a_standby_behind_the_primary_takes_over_once_it_catches_up() {
        let mut link = rotating(Instant::now());
        let mut out = Vec::new();
        for m in ["m1", "m2", "m3", "m4"] {
            assert_eq!(feed(&mut link, &mut out, 1, m), None);
        }
        assert_eq!(feed(&mut link, &mut out, 2, "m3"), Some(1), "in step at m3");
        assert_eq!(
            feed(&mut link, &mut out, 2, "m4"),
            None,
            "forwarded already"
        );
        assert_eq!(feed(&mut link, &mut out, 2, "m5"), None);
        assert_eq!(strings(&out), ["m1", "m2", "m3", "m4", "m5"]);
    }

    #[test]
    fn a_standby_that_trails_the_primary_by_a_message_takes_over_and_skips_the_repeats() {
        // Each connection's batch lands between the other's: the standby never delivers
        // the primary's latest message while it is the latest.
        let mut link = rotating(Instant::now());
        let mut out = Vec::new();
        assert_eq!(feed(&mut link, &mut out, 1, "m1"), None);
        assert_eq!(feed(&mut link, &mut out, 1, "m2"), None);
        assert_eq!(feed(&mut link, &mut out, 1, "m3"), None);
        assert_eq!(
            feed(&mut link, &mut out, 2, "m1"),
            Some(1),
            "in step, behind by two"
        );
        assert_eq!(
            feed(&mut link, &mut out, 1, "m4"),
            None,
            "the retired one is ignored"
        );
        assert_eq!(feed(&mut link, &mut out, 2, "m2"), None);
        assert_eq!(feed(&mut link, &mut out, 2, "m3"), None);
        assert_eq!(feed(&mut link, &mut out, 2, "m4"), None);
        assert_eq!(strings(&out), ["m1", "m2", "m3", "m4"]);
        assert_eq!(link.counters().rotation_breaks, 0);
    }

    #[test]
    fn a_repeat_out_of_order_is_a_break() {
        let mut link = rotating(Instant::now());
        let mut out = Vec::new();
        for m in ["m1", "m2", "m3"] {
            feed(&mut link, &mut out, 1, m);
        }
        assert_eq!(feed(&mut link, &mut out, 2, "m1"), Some(1));
        feed(&mut link, &mut out, 2, "m3");
        assert_eq!(
            out,
            [&b"m1"[..], b"m2", b"m3", BREAK, b"m3"].map(<[u8]>::to_vec),
            "what the standby skipped is unknown: the pipeline hears of a break"
        );
        assert_eq!(link.counters().rotation_breaks, 1);
    }

    #[test]
    fn rotation_is_due_by_age_or_by_notice_and_only_once_open() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut link: Link<u32> = Link::new(Duration::from_secs(10), Duration::from_secs(60));
        let mut acts = Vec::new();
        let mut tick = |link: &mut Link<u32>, now| {
            acts.clear();
            link.tick(
                now,
                &mut |_| Some(now.duration_since(t0).as_secs()),
                &mut |_| panic!("nothing to forward"),
                &mut |a| acts.push(a),
            );
            acts.clone()
        };
        link.primary_connecting(1, t0);
        assert_eq!(tick(&mut link, at(70)), [], "not open: no rotation");
        link.on_open(1, at(70));
        assert_eq!(tick(&mut link, at(129)), []);
        assert_eq!(tick(&mut link, at(130)), [LinkAction::ConnectStandby]);
        link.standby_failed(at(130));
        assert_eq!(tick(&mut link, at(131)), [], "a failed standby waits");
        assert_eq!(tick(&mut link, at(135)), [LinkAction::ConnectStandby]);
        link.standby_connecting(2, at(135));
        link.on_open(2, at(135));
        let mut out = Vec::new();
        feed(&mut link, &mut out, 1, "a");
        assert_eq!(feed(&mut link, &mut out, 2, "a"), Some(1));
        link.on_closed(1, &mut |_| {});
        assert_eq!(tick(&mut link, at(136)), []);
        link.on_shutdown_notice();
        assert_eq!(tick(&mut link, at(137)), [LinkAction::ConnectStandby]);
    }

    #[test]
    fn a_handover_that_never_gets_in_step_ends_as_a_break() {
        let t0 = Instant::now();
        let mut link = rotating(t0);
        let mut out = Vec::new();
        feed(&mut link, &mut out, 1, "old");
        feed(&mut link, &mut out, 2, "new");
        let mut acts = Vec::new();
        link.tick(
            t0 + HANDOVER_LIMIT,
            &mut |_| Some(1),
            &mut |b| out.push(b.to_vec()),
            &mut |a| acts.push(a),
        );
        assert_eq!(acts, [LinkAction::Drop(1)]);
        assert_eq!(out, [b"old".to_vec(), BREAK.to_vec(), b"new".to_vec()]);
        assert_eq!(link.primary(), Some(2));
        assert_eq!(link.on_closed(1, &mut |_| panic!()), Ended::Retired);
        assert_eq!(link.counters().rotation_breaks, 1);
        assert_eq!(link.counters().rotations, 0);
    }

    #[test]
    fn a_primary_lost_mid_handover_hands_over_after_a_break() {
        let mut link = rotating(Instant::now());
        let mut out = Vec::new();
        feed(&mut link, &mut out, 1, "m1");
        feed(&mut link, &mut out, 2, "m3");
        let ended = link.on_closed(1, &mut |b| out.push(b.to_vec()));
        assert_eq!(ended, Ended::PrimaryReplaced);
        assert_eq!(out, [b"m1".to_vec(), BREAK.to_vec(), b"m3".to_vec()]);
        assert_eq!(link.primary(), Some(2));
        assert_eq!(link.standby(), None);
        assert_eq!(link.on_closed(2, &mut |_| {}), Ended::Primary);
    }

    #[test]
    fn a_silent_connection_is_probed_then_dropped_once() {
        let t0 = Instant::now();
        let mut link: Link<u32> = Link::new(Duration::from_secs(10), Duration::from_secs(3600));
        link.primary_connecting(7, t0);
        link.on_open(7, t0);
        let mut acts = Vec::new();
        for s in [1, 5, 6, 10, 11] {
            link.tick(
                t0 + Duration::from_secs(s),
                &mut |_| Some(0),
                &mut |_| {},
                &mut |a| acts.push(a),
            );
        }
        assert_eq!(acts, [LinkAction::Ping(7), LinkAction::Drop(7)]);
        assert_eq!((link.counters().probes, link.counters().stalls), (1, 1));
    }
}
