//! How a reader waits for the next record.

use std::time::Duration;

/// A reader's wait between empty polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Busy-poll with a spin hint: lowest latency, burns its core.
    Spin,
    /// Give the core to other threads between polls (tests, shared machines).
    Yield,
    /// Sleep between polls.
    Sleep(Duration),
}

impl Idle {
    /// One wait.
    #[inline]
    pub fn wait(self) {
        match self {
            Idle::Spin => core::hint::spin_loop(),
            Idle::Yield => std::thread::yield_now(),
            Idle::Sleep(d) => std::thread::sleep(d),
        }
    }
}
