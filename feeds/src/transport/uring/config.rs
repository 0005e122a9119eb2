//! How an io_uring driver receives: provided buffers or plain receives, sizes, limits.

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
    /// How the kernel finishes a receive's completion (see [`TaskWork`]).
    pub task_work: TaskWork,
}

/// How the kernel runs the task work that turns an arrival into a completion entry: it
/// decides whether a thread that polls its completion queue needs a syscall per arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskWork {
    /// `DEFER_TASKRUN` (with `COOP_TASKRUN`, single issuer): task work waits until the
    /// thread enters the kernel for completions, so every batch of arrivals costs an
    /// `io_uring_enter`, and nothing interrupts the thread. Best for a thread that parks
    /// in `io_uring_enter` anyway (`idle = "park"`).
    #[default]
    Deferred,
    /// The kernel's default: task work is signalled to the thread (an interrupt when it
    /// spins in user space) and runs on its way back to user space, so completions appear
    /// with no syscall at all. For a busy-polling thread.
    Signalled,
}

impl Default for UringConfig {
    fn default() -> Self {
        Self {
            multishot: true,
            buffers: 256,
            buffer_size: 16 * 1024,
            max_message: crate::transport::tungstenite::MAX_MESSAGE,
            connect_timeout: Duration::from_secs(10),
            task_work: TaskWork::Deferred,
        }
    }
}
