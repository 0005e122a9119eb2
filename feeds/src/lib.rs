//! Venue dialects: sans-IO parsers from exchange bytes to [`flowcore_core::event`] events.
//! [`transport`] gets the bytes off the network (io_uring by default, tokio-tungstenite);
//! [`recording`] reads them back from the shared recording format.
//!
//! May depend on `flowcore-core` only: never on the bus (`flowcore-shm`), the outputs or
//! the runtime. Unsafe code only in the io_uring transport, where each block says why.
#![deny(unsafe_code)]

pub mod binance;
mod book_batch;
pub mod bybit;
mod fields;
pub mod fuzzing;
pub mod journal;
pub mod json;
pub mod parsed;
pub mod parser;
pub mod recording;
mod shaped_decimal;
mod swar;
pub mod transport;
pub mod venue_session;

use flowcore_core::decimal::DecimalError;
use flowcore_core::event::SessionEvent;

/// Why a message was refused. Every refusal is counted by the caller and the next message
/// is parsed as usual (a lost depth diff shows up as a sequence gap); none panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not well-formed JSON.
    #[error("malformed JSON: {0}")]
    Json(#[from] json::JsonError),
    /// A field the message type requires is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field {0:?} has the wrong type")]
    WrongType(&'static str),
    /// An integer field is not a non-negative integer that fits.
    #[error("field {0:?} is not a valid integer")]
    BadInteger(&'static str),
    /// A price or size that the instrument's scale cannot hold exactly.
    #[error("field {field:?}: {source}")]
    Decimal {
        /// The field.
        field: &'static str,
        /// What was wrong with it.
        source: DecimalError,
    },
    /// A symbol not in the instrument table (or a snapshot with no instrument given).
    #[error("unknown instrument")]
    UnknownInstrument,
    /// An event type this dialect does not know.
    #[error("unknown message type")]
    UnknownMessage,
    /// A book level priced at zero or below: no venue's book has one.
    #[error("field {0:?}: a level priced at zero or below")]
    NonPositivePrice(&'static str),
    /// More levels than a batch can count.
    #[error("message too large")]
    TooLarge,
}

impl ParseError {
    /// Shifts a JSON error position found in a sub-slice to the whole message.
    pub(crate) fn offset_by(self, base: usize) -> Self {
        use json::JsonError::*;
        match self {
            ParseError::Json(UnexpectedEnd(at)) => ParseError::Json(UnexpectedEnd(at + base)),
            ParseError::Json(UnexpectedByte { byte, at }) => ParseError::Json(UnexpectedByte {
                byte,
                at: at + base,
            }),
            ParseError::Json(Trailing(at)) => ParseError::Json(Trailing(at + base)),
            other => other,
        }
    }
}

/// The marker line a session writes, to its recording and through its parser, for a
/// [`SessionEvent`] that no venue message carries (a broken connection, a refused
/// history request): live and replay then see the event at the same place.
pub fn marker_line(event: SessionEvent) -> Option<&'static [u8]> {
    match event {
        SessionEvent::StreamBreak => Some(STREAM_BREAK_MARKER),
        SessionEvent::BackfillRefused => Some(BACKFILL_REFUSED_MARKER),
        SessionEvent::BackfillBegin | SessionEvent::BackfillEnd { .. } => None,
    }
}

/// The session event of a marker line, `None` for anything else.
pub fn session_marker(msg: &[u8]) -> Option<SessionEvent> {
    match msg {
        STREAM_BREAK_MARKER => Some(SessionEvent::StreamBreak),
        BACKFILL_REFUSED_MARKER => Some(SessionEvent::BackfillRefused),
        _ => None,
    }
}

const STREAM_BREAK_MARKER: &[u8] = br#"{"flowcore":"stream_break"}"#;
const BACKFILL_REFUSED_MARKER: &[u8] = br#"{"flowcore":"backfill_refused"}"#;

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_nothing_else_is_one() {
        for event in [SessionEvent::StreamBreak, SessionEvent::BackfillRefused] {
            assert_eq!(session_marker(marker_line(event).unwrap()), Some(event));
        }
        assert_eq!(session_marker(br#"{"flowcore":"other"}"#), None);
        assert_eq!(session_marker(br#"{"e":"trade"}"#), None);
    }
}
