//! Bytes queued for a socket: appended at the back, sent from the front.

/// A send queue. The driver sends [`Outbox::pending`] and reports with [`Outbox::consume`];
/// producers append to [`Outbox::buffer`].
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    /// Bytes of `bytes` already sent, `0..=bytes.len()`.
    sent: usize,
}

impl Outbox {
    /// A queue holding `bytes`.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, sent: 0 }
    }

    /// What is still to be sent.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.sent..]
    }

    /// The first `n` bytes of [`Self::pending`] were sent.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.bytes.len() - self.sent);
        self.sent += n;
        if self.sent == self.bytes.len() {
            self.bytes.clear();
            self.sent = 0;
        }
    }

    /// The queue's storage, to append to (never to remove from).
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}
