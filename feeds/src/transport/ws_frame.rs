//! RFC 6455 framing for the client side, sans-IO: received bytes in, messages and control
//! frames out; outgoing frames (masked, as a client must) into a byte buffer.
//!
//! ```text
//! stream bytes --> WsFrameDecoder::feed --+--> WsEvent::Message(payload)   (data, whole message)
//!  (chunks of any size)                   +--> WsEvent::Ping / Pong / Close (control)
//! encode_frame(opcode, payload, mask) --> bytes to send
//! ```
//!
//! Frames are decoded **in place** where the chunk holds all of one: the message payload
//! handed on borrows the caller's buffer. Only two things are copied, and both are counted in
//! [`WsFrameCounters`]: the bytes of a frame that straddles two chunks (kept until its end
//! arrives), and the payloads of a fragmented message (joined into one).
//!
//! A client refuses masked frames (RFC 6455 5.1); the server role, for test peers, requires
//! them and unmasks into a scratch buffer.
//!
//! ```
//! use flowcore_feeds::transport::ws_frame::{encode_frame, Opcode, WsEvent, WsFrameDecoder};
//! // What a server sends: an unmasked text frame, split across two reads.
//! let mut wire = Vec::new();
//! encode_frame(&mut wire, Opcode::Text, true, br#"{"e":"trade"}"#, None);
//! let mut decoder = WsFrameDecoder::new(1 << 20);
//! let (first, second) = wire.split_at(5);
//! let mut got = Vec::new();
//! decoder.feed(first, &mut |ev| if let WsEvent::Message { payload, .. } = ev { got.push(payload.to_vec()) }).unwrap();
//! decoder.feed(second, &mut |ev| if let WsEvent::Message { payload, .. } = ev { got.push(payload.to_vec()) }).unwrap();
//! assert_eq!(got, vec![br#"{"e":"trade"}"#.to_vec()]);
//! ```

/// Frame opcodes (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text.
    Text = 0x1,
    /// Binary.
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// What a server's frames may do wrong. Each one fails the connection (RFC 6455 7.1.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsProtocolError {
    /// A message (or one frame of it) longer than the configured maximum. Seen in the
    /// header, before any of its payload is buffered.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Bytes announced so far (the frame's length plus fragments already joined).
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A text message that is not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// Anything else the RFC forbids; the text says which rule.
    #[error("protocol violation: {0}")]
    Violation(&'static str),
}

/// One thing a server said.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A whole data message.
    Message {
        /// True for a text message (already checked to be UTF-8).
        text: bool,
        /// Its payload, borrowed from the chunk or from the decoder's join buffer.
        payload: &'a [u8],
    },
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong (unsolicited ones are allowed and ignored).
    Pong(&'a [u8]),
    /// The server's close frame: echo it, then expect the TCP close.
    Close {
        /// The status code, if the frame had one.
        code: Option<u16>,
        /// The reason text (UTF-8 checked).
        reason: &'a [u8],
    },
}

/// What decoding cost, for the copy accounting the transport reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsFrameCounters {
    /// Frames decoded.
    pub frames: u64,
    /// Data messages delivered.
    pub messages: u64,
    /// Data messages delivered straight from the caller's chunk (no copy).
    pub messages_in_place: u64,
    /// Bytes copied because a frame straddled two chunks.
    pub straddle_bytes: u64,
    /// Bytes copied to join the fragments of a message.
    pub join_bytes: u64,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: Opcode,
    /// Header bytes, 2 ..= 14.
    header_len: usize,
    payload_len: u64,
    mask: Option<[u8; 4]>,
}

/// The header at the start of `bytes`: `Ok(None)` when more bytes are needed to know it.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, WsProtocolError> {
    let [b0, b1, ..] = *bytes else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        // No extension was negotiated, so RSV1-3 must be clear.
        return Err(WsProtocolError::Violation("reserved bits set"));
    }
    let opcode =
        Opcode::from_bits(b0 & 0x0F).ok_or(WsProtocolError::Violation("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let (len_bytes, short_len) = match b1 & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
    if bytes.len() < header_len {
        return Ok(None);
    }
    let payload_len = match short_len {
        Some(n) => n,
        None => {
            let mut be = [0u8; 8];
            be[8 - len_bytes..].copy_from_slice(&bytes[2..2 + len_bytes]);
            let n = u64::from_be_bytes(be);
            if n >> 63 != 0 {
                return Err(WsProtocolError::Violation(
                    "64-bit length with the top bit set",
                ));
            }
            n
        }
    };
    if opcode.is_control() && (!fin || payload_len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(WsProtocolError::Violation(
            "control frame fragmented or longer than 125 bytes",
        ));
    }
    let mask = masked.then(|| {
        let at = 2 + len_bytes;
        [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
    });
    Ok(Some(Header {
        fin,
        opcode,
        header_len,
        payload_len,
        mask,
    }))
}

/// Room reserved up front for a frame cut by a chunk boundary: more than any Binance
/// message (depth diffs reach 35 KB), so that the steady state never grows it.
const STRADDLE_CAPACITY: usize = 64 * 1024;

/// The longest payload of a control frame (ping, pong, close): RFC 6455 5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The header length that the bytes so far announce: 2 until the second byte is there.
fn header_len_so_far(bytes: &[u8]) -> usize {
    match bytes {
        [_, b1, ..] => {
            let ext = match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
        }
        _ => 2,
    }
}

/// Decodes a peer's frame stream into [`WsEvent`]s.
#[derive(Debug)]
pub struct WsFrameDecoder {
    max_message: usize,
    /// Decoding a client's frames (masked) rather than a server's (unmasked).
    server_role: bool,
    /// Unmasked payload of the current frame, server role only.
    unmasked: Vec<u8>,
    /// The start of a frame that straddles chunks: from its first byte up to what has
    /// arrived, never more than the one frame (bounded by 14 header bytes + `max_message`).
    straddle: Vec<u8>,
    /// The fragments joined so far of a fragmented message; `None` outside one.
    joining: Option<bool>,
    joined: Vec<u8>,
    counters: WsFrameCounters,
}

impl WsFrameDecoder {
    /// A client's decoder of a server's frames, refusing messages over `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            server_role: false,
            unmasked: Vec::new(),
            straddle: Vec::with_capacity(STRADDLE_CAPACITY),
            joining: None,
            joined: Vec::new(),
            counters: WsFrameCounters::default(),
        }
    }

    /// A server's decoder of a client's (masked) frames: for test peers.
    pub fn server(max_message: usize) -> Self {
        Self {
            server_role: true,
            ..Self::new(max_message)
        }
    }

    /// What decoding has cost so far.
    pub fn counters(&self) -> WsFrameCounters {
        self.counters
    }

    /// Decodes every frame completed by `chunk`, the next bytes of the stream, calling `on`
    /// for each event. Frames wholly inside `chunk` are decoded in place; a frame cut at its
    /// end is kept (copied) until the next chunk completes it.
    ///
    /// # Errors
    /// The first [`WsProtocolError`]; the connection must then be failed, and the decoder
    /// not fed again.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        on: &mut dyn FnMut(WsEvent<'_>),
    ) -> Result<(), WsProtocolError> {
        if !self.straddle.is_empty() {
            chunk = self.complete_straddle(chunk, on)?;
        }
        while let Some(header) = parse_header(chunk)? {
            let total = self.frame_len(&header)?;
            if chunk.len() < total {
                break;
            }
            let (frame, rest) = chunk.split_at(total);
            self.on_frame(header, frame, true, on)?;
            chunk = rest;
        }
        self.counters.straddle_bytes += chunk.len() as u64;
        self.straddle.extend_from_slice(chunk);
        Ok(())
    }

    /// Header plus payload bytes of the frame, refusing oversized messages up front.
    fn frame_len(&self, header: &Header) -> Result<usize, WsProtocolError> {
        let joined = if header.opcode == Opcode::Continuation {
            self.joined.len() as u64
        } else {
            0
        };
        let size = joined.saturating_add(header.payload_len);
        if size > self.max_message as u64 {
            return Err(WsProtocolError::MessageTooLarge {
                size,
                max: self.max_message,
            });
        }
        Ok(header.header_len + header.payload_len as usize)
    }

    /// Moves bytes from `chunk` into the straddle buffer until it holds a whole frame (then
    /// decodes it) or `chunk` runs out; returns what is left of `chunk`.
    fn complete_straddle<'c>(
        &mut self,
        mut chunk: &'c [u8],
        on: &mut dyn FnMut(WsEvent<'_>),
    ) -> Result<&'c [u8], WsProtocolError> {
        loop {
            let want = match parse_header(&self.straddle)? {
                Some(header) => self.frame_len(&header)?,
                // Not even the header yet: take no more than the header, which no frame is
                // shorter than (taking more could run past a short frame's end).
                None => header_len_so_far(&self.straddle),
            };
            let take = want.saturating_sub(self.straddle.len()).min(chunk.len());
            // Progress on every round, or the loop would spin: `want` never falls below
            // what the straddle already holds.
            debug_assert!(take > 0 || chunk.is_empty(), "straddle overran its frame");
            let (taken, rest) = chunk.split_at(take);
            self.straddle.extend_from_slice(taken);
            self.counters.straddle_bytes += take as u64;
            chunk = rest;
            if let Some(header) = parse_header(&self.straddle)? {
                if self.straddle.len() == self.frame_len(&header)? {
                    let mut frame = std::mem::take(&mut self.straddle);
                    let result = self.on_frame(header, &frame, false, on);
                    frame.clear();
                    self.straddle = frame;
                    result?;
                    return Ok(chunk);
                }
            }
            if chunk.is_empty() {
                return Ok(chunk);
            }
        }
    }

    /// One whole frame, header included.
    fn on_frame(
        &mut self,
        header: Header,
        frame: &[u8],
        in_place: bool,
        on: &mut dyn FnMut(WsEvent<'_>),
    ) -> Result<(), WsProtocolError> {
        self.counters.frames += 1;
        let mut payload = &frame[header.header_len..];
        let mut unmasked = std::mem::take(&mut self.unmasked);
        match (header.mask, self.server_role) {
            (None, false) => {}
            (Some(mask), true) => {
                unmasked.clear();
                unmasked.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
                payload = &unmasked;
            }
            (Some(_), false) => {
                return Err(WsProtocolError::Violation("masked frame from a server"))
            }
            (None, true) => return Err(WsProtocolError::Violation("unmasked frame from a client")),
        }
        let in_place = in_place && !self.server_role;
        let result = self.on_payload(header, payload, in_place, on);
        self.unmasked = unmasked;
        result
    }

    /// The payload of one whole frame, unmasked.
    fn on_payload(
        &mut self,
        header: Header,
        payload: &[u8],
        in_place: bool,
        on: &mut dyn FnMut(WsEvent<'_>),
    ) -> Result<(), WsProtocolError> {
        match header.opcode {
            Opcode::Text | Opcode::Binary if self.joining.is_some() => Err(
                WsProtocolError::Violation("new data frame inside a fragmented message"),
            ),
            Opcode::Text | Opcode::Binary if header.fin => {
                let text = header.opcode == Opcode::Text;
                deliver(text, payload, &mut self.counters, in_place, on)
            }
            Opcode::Text | Opcode::Binary => {
                self.joining = Some(header.opcode == Opcode::Text);
                self.join(payload);
                Ok(())
            }
            Opcode::Continuation => {
                let Some(text) = self.joining else {
                    return Err(WsProtocolError::Violation(
                        "continuation outside a fragmented message",
                    ));
                };
                self.join(payload);
                if header.fin {
                    self.joining = None;
                    let mut joined = std::mem::take(&mut self.joined);
                    let result = deliver(text, &joined, &mut self.counters, false, on);
                    joined.clear();
                    self.joined = joined;
                    result?;
                }
                Ok(())
            }
            Opcode::Ping => {
                on(WsEvent::Ping(payload));
                Ok(())
            }
            Opcode::Pong => {
                on(WsEvent::Pong(payload));
                Ok(())
            }
            Opcode::Close => {
                let (code, reason) = match payload.len() {
                    0 => (None, &payload[..0]),
                    1 => return Err(WsProtocolError::Violation("close frame of one byte")),
                    _ => (
                        Some(u16::from_be_bytes([payload[0], payload[1]])),
                        &payload[2..],
                    ),
                };
                if std::str::from_utf8(reason).is_err() {
                    return Err(WsProtocolError::InvalidUtf8);
                }
                on(WsEvent::Close { code, reason });
                Ok(())
            }
        }
    }

    fn join(&mut self, payload: &[u8]) {
        self.counters.join_bytes += payload.len() as u64;
        self.joined.extend_from_slice(payload);
    }
}

fn deliver(
    text: bool,
    payload: &[u8],
    counters: &mut WsFrameCounters,
    in_place: bool,
    on: &mut dyn FnMut(WsEvent<'_>),
) -> Result<(), WsProtocolError> {
    if text && std::str::from_utf8(payload).is_err() {
        return Err(WsProtocolError::InvalidUtf8);
    }
    counters.messages += 1;
    counters.messages_in_place += u64::from(in_place);
    on(WsEvent::Message { text, payload });
    Ok(())
}

/// Appends one frame to `out`. A client masks every frame (`mask: Some`); a server (the
/// tests' peers) does not.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.push(u8::from(fin) << 7 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        }
    }
}

/// The payload of a close frame: the status code, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Msg(bool, Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, Vec<u8>),
    }

    fn decode_in_chunks(
        decoder: &mut WsFrameDecoder,
        wire: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<Got>, WsProtocolError> {
        let mut got = Vec::new();
        let mut rest = wire;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len()).max(1);
            i += 1;
            let (chunk, after) = rest.split_at(n);
            decoder.feed(chunk, &mut |ev| {
                got.push(match ev {
                    WsEvent::Message { text, payload } => Got::Msg(text, payload.to_vec()),
                    WsEvent::Ping(p) => Got::Ping(p.to_vec()),
                    WsEvent::Pong(p) => Got::Pong(p.to_vec()),
                    WsEvent::Close { code, reason } => Got::Close(code, reason.to_vec()),
                })
            })?;
            rest = after;
        }
        Ok(got)
    }

    /// A server's stream with every kind of frame, lengths on all three encodings.
    fn sample_stream() -> (Vec<u8>, Vec<Got>) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        let big: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for payload in [b"x".to_vec(), vec![b'y'; 200], big.clone()] {
            encode_frame(&mut wire, Opcode::Text, true, &payload, None);
            want.push(Got::Msg(true, payload));
        }
        // A fragmented binary message with a ping between its fragments.
        encode_frame(&mut wire, Opcode::Binary, false, b"ab", None);
        encode_frame(&mut wire, Opcode::Ping, true, b"hi", None);
        encode_frame(&mut wire, Opcode::Continuation, false, &[0xFF; 300], None);
        encode_frame(&mut wire, Opcode::Continuation, true, b"z", None);
        want.push(Got::Ping(b"hi".to_vec()));
        let mut joined = b"ab".to_vec();
        joined.extend_from_slice(&[0xFF; 300]);
        joined.push(b'z');
        want.push(Got::Msg(false, joined));
        encode_frame(&mut wire, Opcode::Pong, true, b"", None);
        want.push(Got::Pong(Vec::new()));
        encode_frame(
            &mut wire,
            Opcode::Close,
            true,
            &close_payload(1000, "bye"),
            None,
        );
        want.push(Got::Close(Some(1000), b"bye".to_vec()));
        (wire, want)
    }

    #[test]
    fn any_chunking_gives_the_same_events() {
        let (wire, want) = sample_stream();
        for sizes in [
            vec![wire.len()],
            vec![1],
            vec![2, 3],
            vec![13, 1, 7],
            vec![4096],
            vec![1000, 1, 65_537],
        ] {
            let mut decoder = WsFrameDecoder::new(1 << 20);
            let got = decode_in_chunks(&mut decoder, &wire, &sizes).unwrap();
            assert_eq!(got, want, "chunk sizes {sizes:?}");
            assert!(decoder.straddle.is_empty());
        }
    }

    proptest::proptest! {
        /// Any frames (every length encoding, fragments, control frames between them) cut
        /// into any chunks decode to what the whole stream decodes to.
        #[test]
        fn chunking_never_changes_the_events(
            frames in proptest::collection::vec((0u8..4, 0usize..70_000), 1..12),
            sizes in proptest::collection::vec(1usize..9000, 1..8),
        ) {
            let mut wire = Vec::new();
            let mut fragmenting = false;
            for (i, (kind, len)) in frames.iter().enumerate() {
                let payload: Vec<u8> = (0..*len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
                match kind {
                    0 => encode_frame(&mut wire, Opcode::Ping, true, &payload[..len.min(&125).to_owned()], None),
                    1 if fragmenting => encode_frame(&mut wire, Opcode::Continuation, false, &payload, None),
                    1 => {
                        encode_frame(&mut wire, Opcode::Text, false, &payload, None);
                        fragmenting = true;
                    }
                    _ if fragmenting => {
                        encode_frame(&mut wire, Opcode::Continuation, true, &payload, None);
                        fragmenting = false;
                    }
                    _ => encode_frame(&mut wire, Opcode::Binary, true, &payload, None),
                }
            }
            let whole = decode_in_chunks(&mut WsFrameDecoder::new(1 << 20), &wire, &[wire.len()]);
            let cut = decode_in_chunks(&mut WsFrameDecoder::new(1 << 20), &wire, &sizes);
            proptest::prop_assert_eq!(whole, cut);
        }
    }

    #[test]
    fn a_header_cut_after_one_byte_does_not_swallow_the_next_frames() {
        // Tiny frames, and chunks that cut one after its first byte and then bring many.
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for i in 0..50u8 {
            encode_frame(&mut wire, Opcode::Ping, true, &[i], None);
            want.push(Got::Ping(vec![i]));
        }
        for sizes in [vec![1, 100], vec![4, 97], vec![2, 1, 50]] {
            let mut decoder = WsFrameDecoder::new(100);
            let got = decode_in_chunks(&mut decoder, &wire, &sizes).unwrap();
            assert_eq!(got, want, "chunk sizes {sizes:?}");
        }
    }

    #[test]
    fn whole_frames_are_delivered_in_place_and_only_straddles_are_copied() {
        let (wire, _) = sample_stream();
        let mut decoder = WsFrameDecoder::new(1 << 20);
        decode_in_chunks(&mut decoder, &wire, &[wire.len()]).unwrap();
        let c = decoder.counters();
        assert_eq!((c.messages, c.messages_in_place), (4, 3));
        assert_eq!(c.straddle_bytes, 0);
        assert_eq!(c.join_bytes, 303);
        let mut decoder = WsFrameDecoder::new(1 << 20);
        decode_in_chunks(&mut decoder, &wire, &[1]).unwrap();
        assert_eq!(decoder.counters().messages_in_place, 0);
        assert_eq!(decoder.counters().straddle_bytes, wire.len() as u64);
    }

    #[test]
    fn masks_are_refused_from_servers_required_from_clients_and_undone() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Text, true, b"hello", Some([1, 2, 3, 4]));
        assert_ne!(&wire[6..], b"hello");
        let got = decode_in_chunks(&mut WsFrameDecoder::server(100), &wire, &[3]).unwrap();
        assert_eq!(got, vec![Got::Msg(true, b"hello".to_vec())]);
        assert!(decode_in_chunks(&mut WsFrameDecoder::new(100), &wire, &[3]).is_err());
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Text, true, b"hello", None);
        assert!(decode_in_chunks(&mut WsFrameDecoder::server(100), &wire, &[3]).is_err());
    }

    #[test]
    fn oversized_messages_are_refused_from_the_header() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Binary, true, &[0; 1001], None);
        // Only the header has arrived: the refusal must not wait for the payload.
        let err = decode_in_chunks(&mut WsFrameDecoder::new(1000), &wire[..4], &[4]);
        assert_eq!(
            err,
            Err(WsProtocolError::MessageTooLarge {
                size: 1001,
                max: 1000
            })
        );
        // Fragments that add up to too much.
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Text, false, &[b'a'; 600], None);
        encode_frame(&mut wire, Opcode::Continuation, true, &[b'a'; 600], None);
        let err = decode_in_chunks(&mut WsFrameDecoder::new(1000), &wire, &[7]).unwrap_err();
        assert!(matches!(
            err,
            WsProtocolError::MessageTooLarge { size: 1200, .. }
        ));
    }

    #[test]
    fn violations_are_refused() {
        let cases: [(&str, Vec<u8>); 8] = [
            ("reserved bit", vec![0xC1, 0x00]),
            ("opcode 3", vec![0x83, 0x00]),
            ("fragmented ping", vec![0x09, 0x00]),
            ("long ping", {
                let mut w = Vec::new();
                encode_frame(&mut w, Opcode::Ping, true, &[0; 126], None);
                w
            }),
            ("stray continuation", vec![0x80, 0x00]),
            ("text inside fragments", vec![0x01, 0x01, b'a', 0x81, 0x00]),
            ("one-byte close", vec![0x88, 0x01, 0x03]),
            ("top length bit", {
                let mut w = vec![0x82, 0x7F];
                w.extend_from_slice(&u64::MAX.to_be_bytes());
                w
            }),
        ];
        for (what, wire) in cases {
            let err = decode_in_chunks(&mut WsFrameDecoder::new(1 << 20), &wire, &[1]);
            assert!(
                matches!(err, Err(WsProtocolError::Violation(_))),
                "{what}: {err:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_text_is_refused_but_binary_is_not() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Binary, true, &[0xC3, 0x28], None);
        assert!(decode_in_chunks(&mut WsFrameDecoder::new(100), &wire, &[100]).is_ok());
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Text, true, &[0xC3, 0x28], None);
        assert_eq!(
            decode_in_chunks(&mut WsFrameDecoder::new(100), &wire, &[100]),
            Err(WsProtocolError::InvalidUtf8)
        );
        // A code point split across fragments is fine once joined.
        let mut wire = Vec::new();
        encode_frame(&mut wire, Opcode::Text, false, &[0xC3], None);
        encode_frame(&mut wire, Opcode::Continuation, true, &[0xA9], None);
        let got = decode_in_chunks(&mut WsFrameDecoder::new(100), &wire, &[3]).unwrap();
        assert_eq!(got, vec![Got::Msg(true, "é".as_bytes().to_vec())]);
    }

    #[test]
    fn client_frames_are_masked_with_the_given_key() {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            Opcode::Pong,
            true,
            b"abcd",
            Some([0xFF, 0, 0xFF, 0]),
        );
        assert_eq!(
            out,
            [0x8A, 0x84, 0xFF, 0, 0xFF, 0, !b'a', b'b', !b'c', b'd']
        );
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, true, &[0; 126], Some([0; 4]));
        assert_eq!(&out[..4], &[0x81, 0x80 | 126, 0, 126]);
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, true, &[0; 65_536], Some([0; 4]));
        assert_eq!(&out[..10], &[0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
