//! What the dialect parsers say a message was, the same for every venue: market data (so
//! many events emitted) or a control message (a subscribe reply, a pong, a shutdown
//! notice, a refused request), which the sessions act on.

/// A message that is not market data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `{"result":null,"id":N}`: a (un)subscribe was accepted.
    SubscribeReply {
        /// The request id.
        id: u64,
    },
    /// `{"e":"serverShutdown","E":..}` (bare or in the combined wrapper): the server is
    /// about to go away; open a new connection now, before this one is cut.
    ServerShutdown,
    /// A pong answering the client's ping (Bybit's heartbeat is the client's to send).
    Pong,
    /// `{"error":{..},"id":N}`: a request was refused.
    RequestError {
        /// The request id, when given.
        id: Option<u64>,
    },
}

/// What a message turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Market data: this many events were emitted.
    Events(u32),
    /// A control message (no events).
    Control(Control),
}
