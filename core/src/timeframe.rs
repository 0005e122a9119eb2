//! Longer bars (1m, 5m, 15m, 30m, 1h, 4h, or any whole number of seconds) built from the
//! engine's one-second bars, O(1) per bar.
//!
//! ```text
//! final 1 s bars of one symbol --> Timeframe::push --> a bar of the period when its last second closes
//! ```
//! Periods are aligned to the epoch (a 5m bar starts at a multiple of 300 s). A period's
//! bar is final when its last second's bar arrives; should that second never come (a gap
//! in a series), it is final when the first bar of a later period arrives.

use crate::bars::{Bar, BarKey, Ohlc};

/// A bar of a longer period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodBar {
    /// Whose bar.
    pub key: BarKey,
    /// Start of the period, ms since the epoch.
    pub start_ms: i64,
    /// Prices (`None` for aggregates, or before a series' first trade).
    pub ohlc: Option<Ohlc>,
    /// Taker buy quantity.
    pub buy_qty: i128,
    /// Taker sell quantity.
    pub sell_qty: i128,
    /// CVD at the period's end.
    pub cvd: i128,
    /// Trades.
    pub trades: u32,
    /// One-second bars it was made of.
    pub seconds: u32,
    /// False when a second bar was incomplete, or seconds are missing.
    pub complete: bool,
}

impl PeriodBar {
    /// Taker volume, both sides.
    pub fn volume(&self) -> i128 {
        self.buy_qty + self.sell_qty
    }
}

/// Builds bars of one period for one symbol.
#[derive(Debug, Clone)]
pub struct Timeframe {
    period_ms: i64,
    open: Option<PeriodBar>,
}

impl Timeframe {
    /// Bars of `seconds` seconds (1 passes the one-second bars through).
    ///
    /// # Panics
    /// Never: a period of 0 is taken as 1 second.
    pub fn new(seconds: u32) -> Self {
        Self {
            period_ms: i64::from(seconds.max(1)) * 1000,
            open: None,
        }
    }

    /// Period length in seconds.
    pub fn seconds(&self) -> u32 {
        (self.period_ms / 1000) as u32
    }

    /// Takes the next one-second bar of the symbol; returns the bar of every period that
    /// became final (at most two: a period cut short by a gap, then this bar's own when
    /// it is also its period's last second) through `out`.
    pub fn push(&mut self, bar: &Bar, out: &mut impl FnMut(&PeriodBar)) {
        let start_ms = bar.ts_ms.div_euclid(self.period_ms) * self.period_ms;
        if let Some(open) = self.open.filter(|o| o.start_ms != start_ms) {
            // The period ended without its last second.
            let mut cut = open;
            cut.complete = false;
            out(&cut);
            self.open = None;
        }
        let period = self.open.get_or_insert(PeriodBar {
            key: bar.key,
            start_ms,
            ohlc: None,
            buy_qty: 0,
            sell_qty: 0,
            cvd: bar.cvd,
            trades: 0,
            seconds: 0,
            complete: true,
        });
        period.ohlc = match (period.ohlc, bar.ohlc) {
            (Some(p), Some(b)) => Some(Ohlc {
                open: p.open,
                high: p.high.max(b.high),
                low: p.low.min(b.low),
                close: b.close,
            }),
            (p, b) => b.or(p),
        };
        period.buy_qty += bar.buy_qty;
        period.sell_qty += bar.sell_qty;
        period.cvd = bar.cvd;
        period.trades += bar.trades;
        period.seconds += 1;
        period.complete &= bar.complete;
        if bar.ts_ms + 1000 == start_ms + self.period_ms {
            let mut done = *period;
            done.complete &= done.seconds as i64 * 1000 == self.period_ms;
            out(&done);
            self.open = None;
        }
    }
}
