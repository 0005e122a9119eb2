//! Binance spot (`stream.binance.com`): diffs carry `U`/`u` only and follow the spot
//! sequencing rule; trades have no `X` (every spot trade is taker flow); bookTicker has no
//! event time.

use super::BinanceDialect;
use flowcore_core::instrument::Venue;

/// The Binance spot dialect.
#[derive(Debug, Clone, Copy)]
pub struct BinanceSpot;

impl BinanceDialect for BinanceSpot {
    const VENUE: Venue = Venue::BinanceSpot;
    const HAS_PREV_UPDATE_ID: bool = false;
    const HAS_EXECUTION_TYPE: bool = false;
}
