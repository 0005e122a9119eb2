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
}

impl Default for UringConfig {
    fn default() -> Self {
        Self {
            multishot: true,
            buffers: 256,
            buffer_size: 16 * 1024,
            max_message: crate::transport::tungstenite::MAX_MESSAGE,
            connect_timeout: Duration::from_secs(10),
        }
    }
}
