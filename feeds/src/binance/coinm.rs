//! Binance COIN-M futures (`dstream.binance.com`): the USD-M grammar with a `ps` (pair)
//! field, and quantities in contracts (BTCUSD_PERP: 100 USD each), which the instrument
//! table's contract size converts for aggregates.

use super::BinanceDialect;
use flowcore_core::instrument::Venue;

/// The Binance COIN-M futures dialect.
#[derive(Debug, Clone, Copy)]
pub struct BinanceCoinm;

impl BinanceDialect for BinanceCoinm {
    const VENUE: Venue = Venue::BinanceCoinm;
    const HAS_PREV_UPDATE_ID: bool = true;
    const HAS_EXECUTION_TYPE: bool = true;
}
