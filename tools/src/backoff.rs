//! Exponential backoff for reconnects and REST retries.

use std::time::Duration;

/// Delays that double from `initial` up to a ceiling, and start over after a success.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    initial: Duration,
    next: Duration,
}

/// No wait grows past this.
const CEILING: Duration = Duration::from_secs(5);

impl Backoff {
    /// Starting at `initial`.
    pub(crate) fn new(initial: Duration) -> Self {
        Self {
            initial,
            next: initial,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(CEILING);
        delay
    }

    /// An attempt succeeded: the next failure waits `initial` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100));
        let waits: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
