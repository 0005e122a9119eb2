//! TLS for a byte stream someone else moves, sans-IO: rustls's unbuffered client, fed the
//! received ciphertext and drained of ciphertext to send.
//!
//! ```text
//! received ciphertext --> TlsClient::on_received --> plaintext of each record --> on_plaintext
//! plaintext to send ----> TlsClient::encrypt ------> TlsClient::outgoing ------> socket
//! ```
//!
//! rustls decrypts records in place in the buffer it is given. A chunk is processed where it
//! lies (the io_uring provided buffer); only the tail of a record cut by the chunk's end is
//! copied, to be completed by the next one ([`TlsCounters::straddle_bytes`]).
//!
//! Known cost, upstream: rustls 0.23 still copies each record's plaintext into a `Vec` of
//! its own before lending it out (an allocation per record; rustls PR #2746 removes it for
//! the next release). It is measured by the zero-allocation test, not hidden.

use super::outbox::Outbox;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};
use std::sync::Arc;

/// Why the TLS layer failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The server name is not a valid DNS name or address.
    #[error("server name {0:?} is not valid for TLS")]
    ServerName(String),
    /// rustls refused the peer (certificate, alert, decrypt error...).
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// The record keys are used up (never in practice).
    #[error("TLS record keys exhausted")]
    Exhausted,
}

/// Where the TLS session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsState {
    /// Handshake under way.
    Handshaking,
    /// Application data flows.
    Open,
    /// The peer sent close_notify.
    PeerClosed,
}

/// What the layer copied, for the transport's accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    /// Plaintext records received.
    pub records: u64,
    /// Ciphertext bytes copied because a record straddled two chunks.
    pub straddle_bytes: u64,
}

/// The largest record rustls accepts (5-byte header, 18431 body), so the carry buffer
/// always has room for one.
const MAX_RECORD: usize = 5 + 18_431;

/// One TLS client session.
pub struct TlsClient {
    conn: UnbufferedClientConnection,
    state: TlsState,
    /// Received ciphertext not yet consumed by rustls: the tail of the last chunk. rustls
    /// may have rewritten it in place (decrypted or joined handshake fragments), so it is
    /// kept byte for byte and only appended to.
    carry: Vec<u8>,
    /// Ciphertext to send.
    out: Outbox,
    close_queued: bool,
    counters: TlsCounters,
}

impl TlsClient {
    /// A session to `host` (SNI and certificate name) whose ClientHello is ready in
    /// [`Self::outgoing`].
    ///
    /// # Errors
    /// [`TlsError`] for a host that is no server name, or a config rustls refuses.
    pub fn new(config: Arc<rustls::ClientConfig>, host: &str) -> Result<Self, TlsError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::ServerName(host.to_string()))?;
        let mut this = Self {
            conn: UnbufferedClientConnection::new(config, name)?,
            state: TlsState::Handshaking,
            carry: Vec::with_capacity(2 * MAX_RECORD),
            out: Outbox::new(Vec::with_capacity(4096)),
            close_queued: false,
            counters: TlsCounters::default(),
        };
        this.drive(&mut [], &mut |_| {}, None)?;
        Ok(this)
    }

    /// Where the session is.
    pub fn state(&self) -> TlsState {
        self.state
    }

    /// Copy counters.
    pub fn counters(&self) -> TlsCounters {
        self.counters
    }

    /// Takes the next received chunk of ciphertext (decrypted in place: it is mutable for
    /// that) and hands the plaintext of every record it completes to `on_plaintext`.
    ///
    /// # Errors
    /// [`TlsError`]: the connection must be dropped.
    pub fn on_received(
        &mut self,
        chunk: &mut [u8],
        on_plaintext: &mut dyn FnMut(&[u8]),
    ) -> Result<(), TlsError> {
        if self.carry.is_empty() {
            let used = self.drive(chunk, on_plaintext, None)?;
            let rest = &chunk[used..];
            self.counters.straddle_bytes += rest.len() as u64;
            self.carry.extend_from_slice(rest);
        } else {
            self.counters.straddle_bytes += chunk.len() as u64;
            self.carry.extend_from_slice(chunk);
            let mut carry = std::mem::take(&mut self.carry);
            let result = self.drive(&mut carry, on_plaintext, None);
            if let Ok(used) = result {
                carry.drain(..used);
            }
            self.carry = carry;
            result?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` into [`Self::outgoing`]; returns false (and encrypts nothing)
    /// while the handshake is not done.
    ///
    /// # Errors
    /// [`TlsError`] from rustls.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<bool, TlsError> {
        if self.state != TlsState::Open || plaintext.is_empty() || self.close_queued {
            return Ok(false);
        }
        let mut sent = false;
        self.drive(&mut [], &mut |_| {}, Some((plaintext, &mut sent)))?;
        Ok(sent)
    }

    /// Queues close_notify (once).
    ///
    /// # Errors
    /// [`TlsError`] from rustls.
    pub fn close(&mut self) -> Result<(), TlsError> {
        if self.close_queued || self.state == TlsState::Handshaking {
            return Ok(());
        }
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
        if let ConnectionState::WriteTraffic(mut w) = state? {
            write_grown(self.out.buffer(), |buf| w.queue_close_notify(buf))?;
            self.close_queued = true;
        }
        Ok(())
    }

    /// Ciphertext waiting to be sent.
    pub fn outgoing(&self) -> &[u8] {
        self.out.pending()
    }

    /// The first `n` bytes of [`Self::outgoing`] were sent.
    pub fn consume_outgoing(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// Runs rustls over `incoming` until it needs more bytes; returns how many of them it
    /// consumed. With `send`, encrypts that plaintext once rustls allows application data.
    fn drive(
        &mut self,
        incoming: &mut [u8],
        on_plaintext: &mut dyn FnMut(&[u8]),
        mut send: Option<(&[u8], &mut bool)>,
    ) -> Result<usize, TlsError> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut incoming[used..]);
            let mut done = false;
            match state? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record?;
                        self.counters.records += 1;
                        on_plaintext(record.payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    write_grown(self.out.buffer(), |buf| match encode.encode(buf) {
                        Ok(n) => Ok(n),
                        Err(EncodeError::InsufficientSize(e)) => {
                            Err(EncryptError::InsufficientSize(e))
                        }
                        Err(EncodeError::AlreadyEncoded) => Ok(0),
                    })?;
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // The bytes are in `out` already; the driver sends them whenever.
                    transmit.done();
                }
                ConnectionState::BlockedHandshake => done = true,
                ConnectionState::WriteTraffic(mut write) => {
                    self.state = TlsState::Open;
                    if let Some((plaintext, sent_flag)) = send.take() {
                        encrypt_into(&mut write, plaintext, self.out.buffer())?;
                        *sent_flag = true;
                    }
                    done = true;
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.state = TlsState::PeerClosed;
                    done = true;
                }
                // ReadEarlyData is server-only; the enum is non-exhaustive.
                _ => done = true,
            }
            used += discard;
            if done {
                return Ok(used);
            }
        }
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // rustls's connection has no Debug; its state is what matters.
        f.debug_struct("TlsClient")
            .field("state", &self.state)
            .field("carry", &self.carry.len())
            .field("outgoing", &self.outgoing().len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn encrypt_into(
    write: &mut WriteTraffic<'_, rustls::client::ClientConnectionData>,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), TlsError> {
    write_grown(out, |buf| write.encrypt(plaintext, buf))
}

/// Appends to `out` what `write` puts into its spare room, growing the room as rustls asks.
fn write_grown(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), TlsError> {
    let len = out.len();
    let mut room = 1024;
    loop {
        out.resize(len + room, 0);
        match write(&mut out[len..]) {
            Ok(n) => {
                out.truncate(len + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                room = required_size;
            }
            Err(_) => {
                out.truncate(len);
                return Err(TlsError::Exhausted);
            }
        }
    }
}
