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
mod config;
mod driver;

pub use buf_ring::ProvidedBuffers;
pub use config::{TaskWork, UringConfig};
pub use driver::{probe, ConnId, UringCounters, UringDriver, UringEvent};
