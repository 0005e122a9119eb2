//! Venue statistics per instrument (mark and index price, open interest, funding) and their
//! per-second rows.
//!
//! Sans-IO and clock-free. A row depends only on the order of the instrument's own
//! statistics, never on how other connections' messages interleave with them, so a run and
//! a replay of what it recorded write the same rows as long as an instrument's statistics
//! come over one connection (Bybit `tickers`; Binance `markPrice` with the open-interest
//! polls on the same feed).
//!
//! ```text
//! Stat event --> StatsBook::on_stat --> latest values; their second is open
//!                                  \--> the open row first, when the event is of a later second
//! end of input -> StatsBook::finish --> every open row
//! ```
//!
//! A row for second `S` carries every field's latest value at the end of `S` (`None` for a
//! field the venue has not sent yet). Only seconds in which something changed have a row,
//! written when the instrument's next statistic belongs to a later second (with
//! `markPrice@1s`, a second later). A statistic dated before the last second written (an
//! open-interest answer stamped before the stream's latest mark price) still updates the
//! values, and goes out in the row of the second after the last one written.

use crate::event::{Nanos, StatField, VenueStat};
use crate::instrument::{InstrumentId, InstrumentTable};

/// The latest venue statistics of one instrument, each `None` until the venue sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VenueStats {
    /// Mark price (at [`crate::event::STAT_PRICE_SCALE`]).
    pub mark_px: Option<i64>,
    /// Index price (at [`crate::event::STAT_PRICE_SCALE`]).
    pub index_px: Option<i64>,
    /// Open interest (the instrument's size scale: contracts or base units as the venue
    /// counts them).
    pub open_interest: Option<i64>,
    /// Funding rate per interval (at [`crate::event::FUNDING_RATE_SCALE`]).
    pub funding_rate: Option<i64>,
    /// Next funding time (Unix ms).
    pub next_funding_ms: Option<i64>,
    /// Local receive time of the last update.
    pub updated_ns: Option<i64>,
}

impl VenueStats {
    fn apply(&mut self, local_ts: Nanos, stat: &VenueStat) {
        let slot = match stat.field {
            StatField::MarkPrice => &mut self.mark_px,
            StatField::IndexPrice => &mut self.index_px,
            StatField::OpenInterest => &mut self.open_interest,
            StatField::FundingRate => &mut self.funding_rate,
            StatField::NextFundingMs => &mut self.next_funding_ms,
        };
        *slot = Some(stat.value);
        self.updated_ns = Some(local_ts);
    }
}

/// One instrument's statistics at the end of a second in which they changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRow {
    /// The instrument.
    pub inst: InstrumentId,
    /// Start of the second, ms since the epoch.
    pub ts_ms: i64,
    /// The values at the end of that second.
    pub stats: VenueStats,
}

/// Receives final statistics rows in the order they become final.
pub trait StatsSink {
    /// One row.
    fn stats(&mut self, row: &StatsRow);
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    latest: VenueStats,
    /// The second whose row is not written yet.
    open_sec: Option<i64>,
    /// The last second written; `None` before the first row.
    written_sec: Option<i64>,
}

/// The latest statistics of every instrument and their per-second rows. See the module docs.
#[derive(Debug, Clone)]
pub struct StatsBook {
    slots: Vec<Slot>,
}

impl StatsBook {
    /// Empty statistics for every instrument of `table`.
    pub fn new(table: &InstrumentTable) -> Self {
        Self {
            slots: vec![Slot::default(); table.len()],
        }
    }

    /// The latest values of `inst`.
    pub fn get(&self, inst: InstrumentId) -> &VenueStats {
        &self.slots[inst.index()].latest
    }

    /// Applies one statistic. `now_ms` is the venue's exchange-time watermark, which dates a
    /// statistic that carries no time of its own; with neither, the value is kept and no row
    /// is opened for it.
    pub fn on_stat(
        &mut self,
        inst: InstrumentId,
        local_ts: Nanos,
        stat: &VenueStat,
        now_ms: Option<i64>,
        sink: &mut impl StatsSink,
    ) {
        let sec = match (stat.exch_ts, now_ms) {
            (Some(ts), _) => Some(ts.get().div_euclid(1_000_000_000)),
            (None, Some(ms)) => Some(ms.div_euclid(1000)),
            (None, None) => None,
        };
        let slot = &mut self.slots[inst.index()];
        if let Some(sec) = sec {
            // Never a second already written: a late value joins the next one.
            let sec = slot.written_sec.map_or(sec, |w| sec.max(w + 1));
            match slot.open_sec {
                Some(open) if open < sec => {
                    Self::write(slot, inst, sink);
                    slot.open_sec = Some(sec);
                }
                Some(_) => {}
                None => slot.open_sec = Some(sec),
            }
        }
        slot.latest.apply(local_ts, stat);
    }

    /// Writes every open row (end of input).
    pub fn finish(&mut self, sink: &mut impl StatsSink) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.open_sec.is_some() {
                Self::write(slot, InstrumentId(i as u16), sink);
                slot.open_sec = None;
            }
        }
    }

    fn write(slot: &mut Slot, inst: InstrumentId, sink: &mut impl StatsSink) {
        let Some(sec) = slot.open_sec else { return };
        slot.written_sec = Some(sec);
        sink.stats(&StatsRow {
            inst,
            ts_ms: sec * 1000,
            stats: slot.latest,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::Venue;
    use core::num::NonZeroI64;

    #[derive(Default)]
    struct Rows(Vec<StatsRow>);
    impl StatsSink for Rows {
        fn stats(&mut self, row: &StatsRow) {
            self.0.push(*row);
        }
    }

    fn stat(field: StatField, value: i64, exch_ms: i64) -> VenueStat {
        VenueStat {
            field,
            value,
            exch_ts: NonZeroI64::new(exch_ms * 1_000_000),
        }
    }

    /// A book of the bundled table, and its USD-M and COIN-M BTC perpetuals.
    fn book() -> (StatsBook, InstrumentId, InstrumentId) {
        let table = InstrumentTable::binance_defaults();
        let usdm = table.find(Venue::BinanceUsdm, b"BTCUSDT").expect("bundled");
        let coinm = table
            .find(Venue::BinanceCoinm, b"BTCUSD_PERP")
            .expect("bundled");
        (StatsBook::new(&table), usdm, coinm)
    }

    #[test]
    fn a_row_per_second_with_the_values_at_its_end() {
        let (mut book, inst, other) = book();
        let mut rows = Rows::default();
        let mut apply = |inst, local, field, value, ms, rows: &mut Rows| {
            book.on_stat(inst, local, &stat(field, value, ms), None, rows);
        };
        apply(inst, 1, StatField::MarkPrice, 10, 1_000, &mut rows);
        apply(inst, 2, StatField::MarkPrice, 11, 1_900, &mut rows);
        apply(inst, 3, StatField::OpenInterest, 7, 1_950, &mut rows);
        assert!(rows.0.is_empty(), "second 1 is still open");
        // A later second's value writes second 1 first, without itself.
        apply(inst, 4, StatField::MarkPrice, 12, 2_100, &mut rows);
        assert_eq!(rows.0.len(), 1);
        let first = rows.0[0];
        assert_eq!((first.inst, first.ts_ms), (inst, 1_000));
        assert_eq!(first.stats.mark_px, Some(11));
        assert_eq!(first.stats.open_interest, Some(7));
        assert_eq!(first.stats.funding_rate, None);
        assert_eq!(first.stats.updated_ns, Some(3));
        // Another instrument's statistics write nothing of this one's.
        apply(other, 5, StatField::MarkPrice, 1, 9_000, &mut rows);
        assert_eq!(rows.0.len(), 1);
        book.finish(&mut rows);
        let rest: Vec<_> = rows.0[1..].iter().map(|r| (r.inst, r.ts_ms)).collect();
        assert_eq!(rest, [(inst, 2_000), (other, 9_000)]);
        assert_eq!(rows.0[1].stats.mark_px, Some(12));
        book.finish(&mut rows);
        assert_eq!(rows.0.len(), 3, "nothing was open");
    }

    #[test]
    fn a_late_value_goes_into_the_next_second_never_a_written_one() {
        let (mut book, inst, _) = book();
        let mut rows = Rows::default();
        book.on_stat(
            inst,
            1,
            &stat(StatField::MarkPrice, 10, 5_000),
            None,
            &mut rows,
        );
        book.on_stat(
            inst,
            2,
            &stat(StatField::MarkPrice, 10, 6_000),
            None,
            &mut rows,
        );
        book.on_stat(
            inst,
            3,
            &stat(StatField::OpenInterest, 3, 4_200),
            None,
            &mut rows,
        );
        book.finish(&mut rows);
        let seconds: Vec<_> = rows.0.iter().map(|r| r.ts_ms).collect();
        assert_eq!(seconds, [5_000, 6_000]);
        assert_eq!(rows.0[1].stats.open_interest, Some(3), "joined second 6");
        assert_eq!(book.get(inst).mark_px, Some(10));
    }

    #[test]
    fn a_value_without_a_time_takes_the_watermark_or_opens_no_row() {
        let (mut book, inst, _) = book();
        let mut rows = Rows::default();
        let untimed = VenueStat {
            field: StatField::FundingRate,
            value: 5,
            exch_ts: None,
        };
        book.on_stat(inst, 1, &untimed, None, &mut rows);
        book.finish(&mut rows);
        assert!(rows.0.is_empty());
        assert_eq!(book.get(inst).funding_rate, Some(5));
        book.on_stat(inst, 2, &untimed, Some(8_250), &mut rows);
        book.finish(&mut rows);
        assert_eq!(rows.0.len(), 1);
        assert_eq!(rows.0[0].ts_ms, 8_000);
    }
}
