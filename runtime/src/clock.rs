//! Receive timestamps for live feeds: a TSC clock (quanta) anchored once to the system's
//! epoch time, strictly increasing within a thread.

/// Receive timestamps: a TSC clock anchored once to the system's epoch time.
#[derive(Debug, Clone)]
pub struct EpochClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor_epoch_ns: i64,
    last: i64,
}

impl EpochClock {
    /// Anchors a new clock to the current system time.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let anchor_raw = clock.raw();
        let anchor_epoch_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Self {
            clock,
            anchor_raw,
            anchor_epoch_ns,
            last: i64::MIN,
        }
    }

    /// Nanoseconds since the epoch, strictly greater than this clock's previous reading
    /// (so that replay, which orders by it, sees a thread's messages in arrival order).
    #[inline]
    pub fn now(&mut self) -> i64 {
        self.now_and_raw().0
    }

    /// [`Self::now`], and the TSC reading it came from (the raw counter is the same in every
    /// process of the machine: the end-to-end bench lines stamps up with it).
    #[inline]
    pub fn now_and_raw(&mut self) -> (i64, u64) {
        let raw = self.clock.raw();
        let elapsed = self.clock.delta_as_nanos(self.anchor_raw, raw);
        let ns = self.anchor_epoch_ns.saturating_add(elapsed as i64);
        self.last = ns.max(self.last.saturating_add(1));
        (self.last, raw)
    }
}

impl Default for EpochClock {
    fn default() -> Self {
        Self::new()
    }
}
