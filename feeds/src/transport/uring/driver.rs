//! The io_uring event loop of one feed thread: connections, their operations, completions.
//!
//! Buffer ownership, operation by operation (io_uring's `push` contract):
//! - Connect reads `Conn::addr` (boxed, so it does not move) until its completion.
//! - Send reads `Conn::send_buf` until its completion; at most one send per connection is in
//!   flight, and the buffer is not touched (so never reallocated) meanwhile.
//! - A plain receive writes `Conn::recv_buf` (boxed) until its completion; one at a time.
//! - A multishot receive writes provided buffers, which are the kernel's until a completion
//!   names them (see [`super::buf_ring`]).
//!
//! A connection's slot is freed only once none of its operations is in flight, so no
//! completion ever refers to memory that is gone; the generation in `user_data` makes a
//! completion for an older occupant of the slot harmless. The ring is the first field of
//! [`UringDriver`], so on drop the kernel lets go of everything before it is freed.

use super::buf_ring::ProvidedBuffers;
use super::config::{TaskWork, UringConfig};
use crate::transport::ws_client::WsState;
use crate::transport::ws_session::WsSession;
use crate::transport::{Endpoint, TransportError};
use io_uring::{cqueue, opcode, squeue, types, EnterFlags, IoUring};
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Instant;

/// A connection of a driver: its slot, and which occupant of the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

/// What a connection did, as seen by [`UringDriver::poll`]'s caller.
#[derive(Debug)]
pub enum UringEvent<'a> {
    /// The WebSocket upgrade succeeded: messages follow.
    Open,
    /// A whole data message, borrowed from the receive buffer.
    Message(&'a [u8]),
    /// The connection is gone and its id is free: `Ok` after a close handshake (either
    /// side's), an error otherwise.
    Closed(Result<(), TransportError>),
}

/// What a driver counted; the copy counters say how often bytes did not go straight
/// from the kernel's buffer to the parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringCounters {
    /// Receive completions that carried bytes.
    pub receives: u64,
    /// Bytes received (ciphertext on TLS connections).
    pub bytes_received: u64,
    /// Multishot receives re-armed because the provided buffers ran out (ENOBUFS).
    pub buffer_exhaustions: u64,
    /// Send operations submitted.
    pub sends: u64,
    /// Data messages delivered.
    pub messages: u64,
    /// Of those, delivered straight from the chunk the kernel (or TLS) produced.
    pub messages_in_place: u64,
    /// Bytes copied: frames and TLS records cut by a chunk boundary, fragment joins.
    pub copied_bytes: u64,
    /// Pings received, and pongs sent (only the latest ping of a batch is answered).
    pub pings: u64,
    /// Pongs sent.
    pub pongs: u64,
    /// Enter calls made (submits and completion harvests).
    pub enters: u64,
    /// Waits in the kernel for a completion ([`UringDriver::wait`]: the idle step of a
    /// parked thread, not a busy-polling one's).
    pub waits: u64,
    /// TLS records decrypted.
    pub tls_records: u64,
}

/// Operation kinds, the top byte of `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Connect = 1,
    Recv = 2,
    Send = 3,
    Cancel = 4,
}

fn user_data(op: Op, id: ConnId) -> u64 {
    (op as u64) << 56 | u64::from(id.generation & 0xFF_FFFF) << 32 | u64::from(id.slot)
}

fn split_user_data(data: u64) -> (u8, ConnId) {
    (
        (data >> 56) as u8,
        ConnId {
            slot: data as u32,
            generation: (data >> 32) as u32 & 0xFF_FFFF,
        },
    )
}

/// Builds a ring for one polling thread: single issuer, with deferred task work where the
/// kernel has it (6.1+) and `task_work` asks for it; a plain ring otherwise.
pub(super) fn new_ring(entries: u32, task_work: TaskWork) -> std::io::Result<IoUring> {
    let mut builder = IoUring::builder();
    builder.setup_single_issuer().setup_cqsize(entries * 8);
    if task_work == TaskWork::Deferred {
        builder
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_taskrun_flag();
    }
    let tuned = builder.build(entries);
    match tuned {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(entries * 8).build(entries)
        }
        other => other,
    }
}

#[derive(Debug)]
struct Slot {
    /// Bumped when the slot is freed; 24 bits are carried in `user_data`.
    generation: u32,
    conn: Option<Box<Conn>>,
}

#[derive(Debug)]
struct Conn {
    socket: Socket,
    /// Read by the kernel while the connect is in flight.
    addr: Box<SockAddr>,
    session: WsSession,
    /// Until the upgrade completes.
    deadline: Option<Instant>,
    connected: bool,
    announced_open: bool,
    /// Written by the kernel while a plain receive is in flight.
    recv_buf: Box<[u8]>,
    /// Read by the kernel while a send is in flight; `send_done` bytes of it are sent.
    send_buf: Vec<u8>,
    send_done: usize,
    // Operations in flight: the slot is freed only when all are false.
    connect_in_flight: bool,
    recv_in_flight: bool,
    send_in_flight: bool,
    /// Set once the connection is ending: its result, reported when the slot is freed.
    ending: Option<Result<(), TransportError>>,
    /// The socket was shut down (which completes an armed receive).
    shut_down: bool,
    /// Bytes received since the last `after_batch`.
    touched: bool,
    /// Bytes received so far: moves whenever the peer shows life (data, pings, pongs).
    received: u64,
}

impl Conn {
    fn busy(&self) -> bool {
        self.connect_in_flight || self.recv_in_flight || self.send_in_flight
    }

    fn end(&mut self, result: Result<(), TransportError>) {
        if self.ending.is_none() {
            self.ending = Some(result);
        }
    }
}

/// Fills masking keys and handshake nonces from the OS.
fn os_random(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        // Masking protects intermediaries, not us; a failed source must not stop a feed.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(17);
        }
    }
}

/// One thread's io_uring and the connections it owns.
pub struct UringDriver {
    // First field, dropped first: see the module docs.
    uring: IoUring,
    buffers: Option<ProvidedBuffers>,
    config: UringConfig,
    slots: Vec<Slot>,
    /// Completions copied out of the queue, so that handling them may push new entries.
    completions: Vec<(u64, i32, u32)>,
    counters: UringCounters,
    /// Counters of connections already gone.
    gone: UringCounters,
}

impl std::fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // IoUring has no Debug; what the driver holds is what matters.
        f.debug_struct("UringDriver")
            .field("config", &self.config)
            .field("connections", &self.connections())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The provided buffer group of every driver (one group per ring).
const BUFFER_GROUP: u16 = 0;

impl UringDriver {
    /// A ring with room for `UringConfig::buffers` buffers.
    ///
    /// # Errors
    /// When io_uring is unavailable (see [`probe`]) or memory runs out.
    pub fn new(config: UringConfig) -> std::io::Result<Self> {
        let uring = new_ring(256, config.task_work)?;
        let cq_entries = uring.params().cq_entries() as usize;
        let buffers = if config.multishot {
            Some(ProvidedBuffers::register(
                &uring,
                BUFFER_GROUP,
                config.buffers,
                config.buffer_size,
            )?)
        } else {
            None
        };
        Ok(Self {
            uring,
            buffers,
            config,
            slots: Vec::new(),
            // As many as the completion queue holds: one harvest never grows it.
            completions: Vec::with_capacity(cq_entries),
            counters: UringCounters::default(),
            gone: UringCounters::default(),
        })
    }

    /// Opens a connection to `url` (`ws://` or `wss://`; `tls` is required for the latter).
    /// The name is resolved here, before the connection joins the poll loop.
    ///
    /// # Errors
    /// A bad URL, a name that does not resolve, or a socket that cannot be made.
    pub fn connect(
        &mut self,
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<ConnId, TransportError> {
        let endpoint = Endpoint::parse(url)?;
        let addr = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} resolves to no address", endpoint.host),
                ))
            })?;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
        socket.set_tcp_nodelay(true)?;
        let session = WsSession::new(&endpoint, tls, self.config.max_message, os_random)?;
        let recv_buf = if self.config.multishot {
            Box::default()
        } else {
            vec![0u8; self.config.buffer_size].into_boxed_slice()
        };
        let conn = Box::new(Conn {
            socket,
            addr: Box::new(SockAddr::from(addr)),
            session,
            deadline: Some(Instant::now() + self.config.connect_timeout),
            connected: false,
            announced_open: false,
            recv_buf,
            send_buf: Vec::with_capacity(4096),
            send_done: 0,
            connect_in_flight: false,
            recv_in_flight: false,
            send_in_flight: false,
            ending: None,
            shut_down: false,
            touched: false,
            received: 0,
        });
        let slot = match self.slots.iter().position(|s| s.conn.is_none()) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                self.slots.len() - 1
            }
        };
        let id = ConnId {
            slot: slot as u32,
            generation: self.slots[slot].generation & 0xFF_FFFF,
        };
        let conn = self.slots[slot].conn.insert(conn);
        let entry = opcode::Connect::new(
            types::Fd(fd(&conn.socket)),
            conn.addr.as_ptr().cast::<libc::sockaddr>(),
            conn.addr.len(),
        )
        .build()
        .user_data(user_data(Op::Connect, id));
        conn.connect_in_flight = true;
        // SAFETY: the address is boxed inside the connection, whose slot is not freed while
        // `connect_in_flight` is set (cleared by this entry's completion).
        unsafe { push(&mut self.uring, &entry) }?;
        Ok(id)
    }

    /// Queues a text message on an open connection (ignored otherwise).
    pub fn send_text(&mut self, id: ConnId, text: &str) {
        if let Some(conn) = self.conn_mut(id) {
            if let Err(e) = conn.session.send_text(text) {
                conn.end(Err(e.into()));
            }
        }
    }

    /// Bytes received on a connection so far (`None` once it is gone): a caller that
    /// sees it stand still for too long has a stalled connection (see
    /// [`crate::transport::liveness::StallWatch`]).
    pub fn received_bytes(&self, id: ConnId) -> Option<u64> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation & 0xFF_FFFF != id.generation {
            return None;
        }
        slot.conn.as_deref().map(|c| c.received)
    }

    /// Queues a ping on an open connection (ignored otherwise): a live peer answers.
    pub fn ping(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if let Err(e) = conn.session.ping(b"flowcore") {
                conn.end(Err(e.into()));
            }
        }
    }

    /// Ends a connection at once, without the close handshake (a stalled peer would never
    /// answer it); its [`UringEvent::Closed`] carries `why`.
    pub fn abort(&mut self, id: ConnId, why: TransportError) {
        if let Some(conn) = self.conn_mut(id) {
            conn.end(Err(why));
        }
    }

    /// Starts closing a connection: the WebSocket close handshake when it is open, at once
    /// otherwise. Its [`UringEvent::Closed`] follows from [`Self::poll`].
    pub fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            let was_open = conn.session.ws_state() == WsState::Open;
            match conn.session.close(1000) {
                Ok(()) if was_open => conn.deadline = Some(Instant::now() + CLOSE_WAIT),
                Ok(()) => conn.end(Ok(())),
                Err(e) => conn.end(Err(e.into())),
            }
        }
    }

    /// Connections open or opening.
    pub fn connections(&self) -> usize {
        self.slots.iter().filter(|s| s.conn.is_some()).count()
    }

    /// Counters over every connection this driver has had.
    pub fn counters(&self) -> UringCounters {
        let mut c = self.counters;
        add_session_counters(&mut c, &self.gone);
        for conn in self.slots.iter().filter_map(|s| s.conn.as_ref()) {
            add_session_counters(&mut c, &session_counters(&conn.session));
        }
        c
    }

    /// Submits queued work, handles every completion that has arrived and reports what
    /// happened to `on`. Never blocks. Returns true when anything happened.
    ///
    /// # Errors
    /// Only when the ring itself fails (not a connection: those end with
    /// [`UringEvent::Closed`]).
    pub fn poll(&mut self, on: &mut dyn FnMut(ConnId, UringEvent<'_>)) -> std::io::Result<bool> {
        self.housekeeping()?;
        self.enter()?;
        self.completions.clear();
        self.completions.extend(
            self.uring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let progressed = !self.completions.is_empty();
        for i in 0..self.completions.len() {
            let (data, result, flags) = self.completions[i];
            self.on_completion(data, result, flags, on)?;
        }
        if let Some(buffers) = &mut self.buffers {
            buffers.publish();
        }
        for slot in 0..self.slots.len() {
            self.after_batch(slot, on)?;
        }
        // Sends queued by what just arrived (pongs, close echoes) go out now, not on the
        // next round.
        self.enter()?;
        Ok(progressed)
    }

    /// Parks the thread in the kernel until a completion arrives or `timeout` passes: the
    /// idle step of a thread that does not busy-poll. A completion waiting already, or a
    /// signal, returns at once.
    ///
    /// # Errors
    /// Only when the ring itself fails.
    pub fn wait(&mut self, timeout: std::time::Duration) -> std::io::Result<()> {
        self.counters.waits += 1;
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.uring.submitter().submit_with_args(1, &args) {
            Err(e) if e.raw_os_error() != Some(libc::ETIME) => transient_ok(e),
            _ => Ok(()),
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation & 0xFF_FFFF != id.generation {
            return None;
        }
        slot.conn.as_deref_mut()
    }

    /// Deadlines, and the shutdown of ending connections.
    fn housekeeping(&mut self) -> std::io::Result<()> {
        // Read only when some connection has a deadline: an open, quiet set of connections
        // costs the busy loop no clock reads.
        let mut now = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let generation = slot.generation & 0xFF_FFFF;
            let Some(conn) = slot.conn.as_deref_mut() else {
                continue;
            };
            if conn
                .deadline
                .is_some_and(|d| *now.get_or_insert_with(Instant::now) >= d)
            {
                conn.deadline = None;
                conn.end(Err(TransportError::Timeout));
            }
            if conn.ending.is_some() && !conn.shut_down {
                conn.shut_down = true;
                let id = ConnId {
                    slot: i as u32,
                    generation,
                };
                if conn.connect_in_flight {
                    let cancel = opcode::AsyncCancel::new(user_data(Op::Connect, id))
                        .build()
                        .user_data(user_data(Op::Cancel, id));
                    // SAFETY: a cancel points at no memory.
                    unsafe { push(&mut self.uring, &cancel) }?;
                } else {
                    // Completes an armed receive (with 0) and any send; ENOTCONN is fine.
                    let _ = conn.socket.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        Ok(())
    }

    /// Submits what is queued, and posts completions when the kernel has some waiting.
    fn enter(&mut self) -> std::io::Result<()> {
        let (submitter, mut sq, _) = self.uring.split();
        sq.sync();
        if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
            return Ok(());
        }
        let to_submit = sq.len() as u32;
        drop(sq);
        self.counters.enters += 1;
        // SAFETY: no signal mask argument; min_complete 0 makes it return at once.
        let entered = unsafe {
            submitter.enter::<libc::sigset_t>(to_submit, 0, EnterFlags::GETEVENTS.bits(), None)
        };
        entered.map(drop).or_else(transient_ok)
    }

    fn on_completion(
        &mut self,
        data: u64,
        result: i32,
        flags: u32,
        on: &mut dyn FnMut(ConnId, UringEvent<'_>),
    ) -> std::io::Result<()> {
        let (op, id) = split_user_data(data);
        // A provided buffer named by the completion is ours whatever happened to the
        // connection: take it, use it if the connection is alive, give it back.
        let bid = cqueue::buffer_select(flags);
        let Self {
            uring,
            buffers,
            slots,
            counters,
            ..
        } = self;
        let conn = slots
            .get_mut(id.slot as usize)
            .filter(|s| s.generation & 0xFF_FFFF == id.generation)
            .and_then(|s| s.conn.as_deref_mut());
        let Some(conn) = conn else {
            if let (Some(bid), Some(buffers)) = (bid, buffers.as_mut()) {
                buffers.take(bid, 0);
                buffers.recycle(bid);
            }
            return Ok(());
        };
        match op {
            o if o == Op::Connect as u8 => {
                conn.connect_in_flight = false;
                if result < 0 {
                    conn.end(Err(std::io::Error::from_raw_os_error(-result).into()));
                } else {
                    conn.connected = true;
                    arm_receive(uring, buffers.as_ref(), conn, id)?;
                }
            }
            o if o == Op::Recv as u8 => {
                let more = cqueue::more(flags);
                if !more {
                    conn.recv_in_flight = false;
                }
                if result > 0 {
                    counters.receives += 1;
                    counters.bytes_received += result as u64;
                    conn.received += result as u64;
                    let chunk = match (bid, buffers.as_mut()) {
                        (Some(bid), Some(buffers)) => buffers.take(bid, result as usize),
                        _ => &mut conn.recv_buf[..result as usize],
                    };
                    if conn.ending.is_none() {
                        conn.touched = true;
                        let announced = &mut conn.announced_open;
                        // The first frames may come in the same read as the upgrade answer:
                        // the caller hears of the opening before its first message.
                        let received = conn.session.on_received(chunk, &mut |m| {
                            if !std::mem::replace(announced, true) {
                                on(id, UringEvent::Open);
                            }
                            on(id, UringEvent::Message(m));
                        });
                        if let Err(e) = received {
                            conn.end(Err(e.into()));
                        }
                    }
                    if let (Some(bid), Some(buffers)) = (bid, buffers.as_mut()) {
                        buffers.recycle(bid);
                    }
                } else if result == -libc::ENOBUFS {
                    counters.buffer_exhaustions += 1;
                } else if conn.session.finished() {
                    // The server's close frame came first: whatever ends the socket now
                    // (EOF, or a reset because it had closed before our echo arrived)
                    // ends a closed connection.
                    conn.end(Ok(()));
                } else if result == 0 {
                    conn.end(Err(TransportError::Eof));
                } else if result != -libc::ECANCELED {
                    conn.end(Err(std::io::Error::from_raw_os_error(-result).into()));
                }
                if !more && conn.ending.is_none() {
                    arm_receive(uring, buffers.as_ref(), conn, id)?;
                }
            }
            o if o == Op::Send as u8 => {
                conn.send_in_flight = false;
                if result < 0 && conn.session.finished() {
                    // Our close echo met a socket the server had already closed.
                    conn.end(Ok(()));
                } else if result < 0 {
                    conn.end(Err(std::io::Error::from_raw_os_error(-result).into()));
                } else {
                    conn.send_done += result as usize;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Per connection, after the completions: queue what the received bytes call for,
    /// start sends, report the upgrade, and free a slot whose connection has ended.
    fn after_batch(
        &mut self,
        slot: usize,
        on: &mut dyn FnMut(ConnId, UringEvent<'_>),
    ) -> std::io::Result<()> {
        let Self {
            uring,
            slots,
            counters,
            gone,
            ..
        } = self;
        let generation = slots[slot].generation & 0xFF_FFFF;
        let id = ConnId {
            slot: slot as u32,
            generation,
        };
        let Some(conn) = slots[slot].conn.as_deref_mut() else {
            return Ok(());
        };
        if conn.ending.is_none() && std::mem::take(&mut conn.touched) {
            if let Err(e) = conn.session.after_batch() {
                conn.end(Err(e.into()));
            }
            if conn.session.ws_state() != WsState::Upgrading {
                if !std::mem::replace(&mut conn.announced_open, true) {
                    on(id, UringEvent::Open);
                }
                if conn.session.ws_state() == WsState::Open {
                    conn.deadline = None;
                }
            }
            if conn.session.finished() && conn.session.outgoing().is_empty() && !conn.send_in_flight
            {
                // The close handshake is done: the server closes TCP, or we do.
                conn.end(Ok(()));
            }
        }
        if conn.ending.is_none() && conn.connected && !conn.send_in_flight {
            if conn.send_done == conn.send_buf.len() {
                conn.send_buf.clear();
                conn.send_done = 0;
                let pending = conn.session.outgoing();
                if !pending.is_empty() {
                    conn.send_buf.extend_from_slice(pending);
                    let n = pending.len();
                    conn.session.consume_outgoing(n);
                }
            }
            if conn.send_done < conn.send_buf.len() {
                let rest = &conn.send_buf[conn.send_done..];
                let entry = opcode::Send::new(
                    types::Fd(fd(&conn.socket)),
                    rest.as_ptr(),
                    rest.len() as u32,
                )
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(Op::Send, id));
                conn.send_in_flight = true;
                counters.sends += 1;
                // SAFETY: `send_buf` is not touched while `send_in_flight` is set, and the
                // slot is not freed before the completion clears it.
                unsafe { push(uring, &entry) }?;
            }
        }
        if conn.ending.is_some() && !conn.busy() && conn.shut_down {
            let conn = slots[slot].conn.take().expect("checked above");
            slots[slot].generation = slots[slot].generation.wrapping_add(1);
            add_session_counters(gone, &session_counters(&conn.session));
            let result = conn.ending.expect("checked above");
            on(id, UringEvent::Closed(result));
        }
        Ok(())
    }
}

/// An enter that failed only for now (a signal, a full completion queue that the next
/// harvest drains) is no error of the ring.
fn transient_ok(e: std::io::Error) -> std::io::Result<()> {
    match e.raw_os_error() {
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY) => Ok(()),
        _ => Err(e),
    }
}

/// How long our close frame waits for the server's before the socket is closed anyway.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn fd(socket: &Socket) -> i32 {
    use std::os::fd::AsRawFd;
    socket.as_raw_fd()
}

/// Arms the connection's receive: multishot on the provided buffers, or one plain receive
/// into its own buffer.
fn arm_receive(
    uring: &mut IoUring,
    buffers: Option<&ProvidedBuffers>,
    conn: &mut Conn,
    id: ConnId,
) -> std::io::Result<()> {
    let entry = match buffers {
        Some(buffers) => opcode::RecvMulti::new(types::Fd(fd(&conn.socket)), buffers.group())
            .build()
            .user_data(user_data(Op::Recv, id)),
        None => opcode::Recv::new(
            types::Fd(fd(&conn.socket)),
            conn.recv_buf.as_mut_ptr(),
            conn.recv_buf.len() as u32,
        )
        .build()
        .user_data(user_data(Op::Recv, id)),
    };
    conn.recv_in_flight = true;
    // SAFETY: provided buffers are the kernel's until a completion names them; a plain
    // receive writes `recv_buf`, boxed in the connection, whose slot is not freed while
    // `recv_in_flight` is set.
    unsafe { push(uring, &entry) }
}

/// Pushes an entry, submitting first if the queue is full.
///
/// # Safety
/// Whatever `entry` points at must stay valid until its completion.
unsafe fn push(uring: &mut IoUring, entry: &squeue::Entry) -> std::io::Result<()> {
    // SAFETY: the caller guarantees the pointed-to memory outlives the operation.
    if unsafe { uring.submission().push(entry) }.is_ok() {
        return Ok(());
    }
    uring.submit()?;
    // SAFETY: as above.
    unsafe { uring.submission().push(entry) }
        .map_err(|_| std::io::Error::other("io_uring submission queue full after a submit"))
}

fn session_counters(session: &WsSession) -> UringCounters {
    let frames = session.frame_counters();
    let control = session.control_counters();
    UringCounters {
        messages: frames.messages,
        messages_in_place: frames.messages_in_place,
        copied_bytes: frames.straddle_bytes
            + frames.join_bytes
            + session.tls_counters().straddle_bytes,
        pings: control.pings,
        pongs: control.pongs_sent,
        tls_records: session.tls_counters().records,
        ..UringCounters::default()
    }
}

fn add_session_counters(to: &mut UringCounters, c: &UringCounters) {
    to.messages += c.messages;
    to.messages_in_place += c.messages_in_place;
    to.copied_bytes += c.copied_bytes;
    to.pings += c.pings;
    to.pongs += c.pongs;
    to.tls_records += c.tls_records;
}

/// Checks that this process may use io_uring with what the driver needs (setup, a buffer
/// ring, a submit): false under `kernel.io_uring_disabled`, a seccomp filter that blocks
/// it, or a kernel older than 5.19.
///
/// # Errors
/// The reason, for the log line that announces the fallback.
pub fn probe() -> std::io::Result<()> {
    let mut uring = new_ring(8, TaskWork::Deferred)?;
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
