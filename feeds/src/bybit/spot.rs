//! Bybit v5 spot (`stream.bybit.com/v5/public/spot`): trade ids are decimal numbers; `ts`
//! comes before `type`; at most 10 topics per subscribe request.

use super::BybitDialect;
use flowcore_core::instrument::Venue;

/// The Bybit spot dialect.
#[derive(Debug, Clone, Copy)]
pub struct BybitSpot;

impl BybitDialect for BybitSpot {
    const VENUE: Venue = Venue::BybitSpot;
    const NUMERIC_TRADE_IDS: bool = true;
}
