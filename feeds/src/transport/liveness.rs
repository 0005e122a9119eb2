//! Stall detection: a connection that is open but silent is as dead as a closed one, and
//! TCP alone can take many minutes to say so.
//!
//! Sans-IO: the transport hands [`StallWatch::check`] a counter that moves whenever the
//! peer shows life (bytes, frames: data, pings and pongs alike) and the time; the watch
//! answers what to do. A quiet connection is first probed with a ping (a live server
//! answers at once, so a quiet market is not mistaken for a dead link), then declared
//! stalled.
//!
//! ```text
//! activity moved ----------------------------------------> Alive
//! quiet for stall_after / 2 (once per quiet spell) -------> Probe   (send a ping)
//! quiet for stall_after ----------------------------------> Stalled (close, reconnect)
//! ```

use std::time::{Duration, Instant};

/// What a connection's silence calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Nothing to do.
    Alive,
    /// Quiet for a while: send a ping.
    Probe,
    /// Quiet for too long, even after a ping: drop the connection.
    Stalled,
}

/// Watches one connection's activity counter.
#[derive(Debug, Clone)]
pub struct StallWatch {
    stall_after: Duration,
    seen: u64,
    since: Instant,
    probed: bool,
}

impl StallWatch {
    /// A watch for a connection opened at `now`, stalled after `stall_after` of silence.
    pub fn new(stall_after: Duration, now: Instant) -> Self {
        Self {
            stall_after,
            seen: 0,
            since: now,
            probed: false,
        }
    }

    /// Looks at the connection's activity counter at `now`.
    pub fn check(&mut self, activity: u64, now: Instant) -> Liveness {
        if activity != self.seen {
            self.seen = activity;
            self.since = now;
            self.probed = false;
            return Liveness::Alive;
        }
        let quiet = now.saturating_duration_since(self.since);
        if quiet >= self.stall_after {
            Liveness::Stalled
        } else if quiet >= self.stall_after / 2 && !self.probed {
            self.probed = true;
            Liveness::Probe
        } else {
            Liveness::Alive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_connection_is_probed_once_then_stalled() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = StallWatch::new(Duration::from_millis(1000), t0);
        assert_eq!(w.check(0, ms(100)), Liveness::Alive);
        assert_eq!(w.check(0, ms(499)), Liveness::Alive);
        assert_eq!(w.check(0, ms(500)), Liveness::Probe);
        assert_eq!(
            w.check(0, ms(700)),
            Liveness::Alive,
            "one probe per quiet spell"
        );
        assert_eq!(w.check(0, ms(1000)), Liveness::Stalled);
    }

    #[test]
    fn any_activity_restarts_the_clock_and_rearms_the_probe() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = StallWatch::new(Duration::from_millis(1000), t0);
        assert_eq!(w.check(0, ms(600)), Liveness::Probe);
        // The pong arrives.
        assert_eq!(w.check(8, ms(650)), Liveness::Alive);
        assert_eq!(w.check(8, ms(1100)), Liveness::Alive);
        assert_eq!(
            w.check(8, ms(1150)),
            Liveness::Probe,
            "probed again after new life"
        );
        assert_eq!(w.check(8, ms(1640)), Liveness::Alive);
        assert_eq!(w.check(8, ms(1650)), Liveness::Stalled);
    }
}
