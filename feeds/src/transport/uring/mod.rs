//! WebSocket connections read through io_uring by one thread, with no async runtime.
//!
//! ```text
//!            +------------------------ UringDriver::poll (one feed thread) ----------------+
//! kernel --> | multishot recv into provided buffers --> WsSession (TLS, frames) --> events |
//!            | (or plain recv into a connection's own buffer, UringConfig::multishot=false)|
//! kernel <-- | send of each connection's queued bytes (upgrade, pongs, subscribe, close)   |
//!            +-----------------------------------------------------------------------------+
//! ```
//!
//! One driver owns many connections. [`UringDriver::poll`] never blocks: it submits what is
//! queued, collects completions (entering the kernel with GETEVENTS only when there is
//! something to submit or the kernel flagged deferred work) and hands each whole message to
//! the caller, borrowed from the buffer the kernel filled. A busy-polling thread calls it
//! in a loop; an idle strategy decides what to do when it returns `false`.
//!
//! Ring set-up, and why: SINGLE_ISSUER + DEFER_TASKRUN (completions are posted only inside
//! `io_uring_enter` with GETEVENTS, on this thread, with no interrupts) and TASKRUN_FLAG
//! (so the poll loop sees in shared memory when entering would post something). No SQPOLL:
//! it needs a core of its own, which a 2-core box does not have, and did not lower latency
//! in published tests. Kernels that refuse the flags get a plain ring.

mod buf_ring;
mod driver;

pub use buf_ring::ProvidedBuffers;
pub use driver::{ConnId, UringCounters, UringDriver, UringEvent};

use std::time::Duration;

/// How a driver receives.
#[derive(Debug, Clone)]
pub struct UringConfig {
    /// Multishot receives into a shared ring of provided buffers (the default). `false`
    /// forces the plain path: one receive at a time into each connection's own buffer.
    pub multishot: bool,
    /// Provided buffers (a power of two, at most 32768).
    pub buffers: u16,
    /// Bytes per provided buffer, and of a connection's own buffer on the plain path.
    pub buffer_size: usize,
    /// Largest WebSocket message accepted.
    pub max_message: usize,
    /// A connection attempt (TCP, TLS and upgrade) longer than this fails.
    pub connect_timeout: Duration,
}

impl Default for UringConfig {
    fn default() -> Self {
        Self {
            multishot: true,
            buffers: 256,
            buffer_size: 16 * 1024,
            max_message: super::tungstenite::MAX_MESSAGE,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Checks that this process may use io_uring with what the driver needs (setup, a buffer
/// ring, a submit): false under `kernel.io_uring_disabled`, a seccomp filter that blocks
/// it, or a kernel older than 5.19.
///
/// # Errors
/// The reason, for the log line that announces the fallback.
pub fn probe() -> std::io::Result<()> {
    let mut uring = driver::new_ring(8)?;
    let buffers = ProvidedBuffers::register(&uring, 0, 2, 64)?;
    let nop = io_uring::opcode::Nop::new().build().user_data(1);
    // SAFETY: a Nop points at no memory.
    unsafe { uring.submission().push(&nop) }
        .map_err(|_| std::io::Error::other("submission queue full"))?;
    let result = uring.submit_and_wait(1).map(drop);
    // The ring first: the kernel lets go of the buffers before they are unmapped.
    drop(uring);
    drop(buffers);
    result
}
