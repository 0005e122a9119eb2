//! Exponential backoff with jitter for reconnects and REST retries.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that double from `initial` up to a ceiling, and start over after a success. Each
/// wait is drawn between half and all of its step ("equal jitter"), so that many
/// connections dropped together (a venue restart, a refused reconnect) do not come back in
/// lockstep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    initial: Duration,
    next: Duration,
    /// xorshift64 state, seeded per backoff.
    rng: u64,
}

/// No wait grows past this.
const CEILING: Duration = Duration::from_secs(5);

impl Backoff {
    /// Starting at `initial`.
    pub(crate) fn new(initial: Duration) -> Self {
        // The standard library's per-process random hash keys are enough of a seed here.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            initial,
            next: initial,
            rng: seed | 1,
        }
    }

    /// The wait before the next attempt, between half and all of the current step; the
    /// step after it is twice as long.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(CEILING);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.random() % nanos.saturating_add(1))
    }

    /// An attempt succeeded: the next failure waits about `initial` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_to_the_ceiling_with_jitter_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100));
        let steps = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
        for step in steps {
            let wait = b.next_delay().as_millis() as u64;
            assert!(
                (step / 2..=step).contains(&wait),
                "{wait} ms for a {step} ms step"
            );
        }
        b.reset();
        let wait = b.next_delay();
        assert!(wait >= Duration::from_millis(50) && wait <= Duration::from_millis(100));
    }

    #[test]
    fn backoffs_started_together_spread_out() {
        let waits: std::collections::HashSet<Duration> = (0..16)
            .map(|_| Backoff::new(Duration::from_secs(1)).next_delay())
            .collect();
        assert!(
            waits.len() > 8,
            "16 reconnects drew only {} distinct waits",
            waits.len()
        );
    }
}
