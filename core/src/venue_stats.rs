//! Venue statistics per instrument (mark and index price, open interest, funding) and their
//! per-second rows.
//!
//! Sans-IO and clock-free, like the bars: a row is written when the venue's exchange time
//! makes its second final, so live and replay write the same rows from the same events.
//!
//! ```text
//! Stat event ------> StatsBook::on_stat ------> latest values; their second is open
//!                                          \--> the open row first, when the event is of a later second
//! venue watermark -> StatsBook::on_watermark -> the open rows of that venue's instruments that are final
//! end of input ----> StatsBook::finish -------> every open row
//! ```
//!
//! A row for second `S` carries every field's latest value at the end of `S` (`None` for a
//! field the venue has not sent yet). Only seconds in which something changed have a row.
//! `S` is final by the bars' rule (the venue's exchange time reached `S + 1.5 s`), or as soon
//! as the instrument's next statistic belongs to a later second. A statistic for a second
//! already written (a late one: from another connection, or a REST answer stamped before
//! the stream's latest time) still updates the values, and goes out in the row of the second
//! after the last one written.

use crate::bars::last_final_second;
use crate::event::{Nanos, StatField, VenueStat};
use crate::instrument::{InstrumentId, InstrumentTable, Venue};

pub use crate::event::{FUNDING_RATE_SCALE, STAT_PRICE_SCALE};

/// The latest venue statistics of one instrument, each `None` until the venue sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VenueStats {
    /// Mark price (at [`STAT_PRICE_SCALE`]).
    pub mark_px: Option<i64>,
    /// Index price (at [`STAT_PRICE_SCALE`]).
    pub index_px: Option<i64>,
    /// Open interest (the instrument's size scale: contracts or base units as the venue
    /// counts them).
    pub open_interest: Option<i64>,
    /// Funding rate per interval (at [`FUNDING_RATE_SCALE`]).
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

#[derive(Debug, Clone, Copy)]
struct Slot {
    venue: Venue,
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
    /// Per venue: instruments with an open row (so a watermark step looks at none when
    /// nothing is open).
    open: [u32; Venue::ALL.len()],
}

impl StatsBook {
    /// Empty statistics for every instrument of `table`.
    pub fn new(table: &InstrumentTable) -> Self {
        Self {
            slots: table
                .iter()
                .map(|(_, inst)| Slot {
                    venue: inst.venue,
                    latest: VenueStats::default(),
                    open_sec: None,
                    written_sec: None,
                })
                .collect(),
            open: [0; Venue::ALL.len()],
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
                None => {
                    slot.open_sec = Some(sec);
                    self.open[slot.venue.index()] += 1;
                }
            }
        }
        slot.latest.apply(local_ts, stat);
    }

    /// The venue's exchange time reached `exch_ms`: writes the open rows it made final.
    pub fn on_watermark(&mut self, venue: Venue, exch_ms: i64, sink: &mut impl StatsSink) {
        if self.open[venue.index()] == 0 {
            return;
        }
        let last_final = last_final_second(exch_ms);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.venue == venue && slot.open_sec.is_some_and(|s| s <= last_final) {
                Self::write(slot, InstrumentId(i as u16), sink);
                slot.open_sec = None;
                self.open[venue.index()] -= 1;
            }
        }
    }

    /// Writes every open row (end of input).
    pub fn finish(&mut self, sink: &mut impl StatsSink) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.open_sec.is_some() {
                Self::write(slot, InstrumentId(i as u16), sink);
                slot.open_sec = None;
            }
        }
        self.open = [0; Venue::ALL.len()];
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

    fn usdm_btc() -> (InstrumentTable, InstrumentId) {
        let table = InstrumentTable::binance_defaults();
        let inst = table.find(Venue::BinanceUsdm, b"BTCUSDT").expect("bundled");
        (table, inst)
    }

    #[test]
    fn a_row_per_second_with_the_values_at_its_end() {
        let (table, inst) = usdm_btc();
        let mut book = StatsBook::new(&table);
        let mut rows = Rows::default();
        book.on_stat(
            inst,
            1,
            &stat(StatField::MarkPrice, 10, 1_000),
            None,
            &mut rows,
        );
        book.on_stat(
            inst,
            2,
            &stat(StatField::MarkPrice, 11, 1_900),
            None,
            &mut rows,
        );
        book.on_stat(
            inst,
            3,
            &stat(StatField::OpenInterest, 7, 1_950),
            None,
            &mut rows,
        );
        assert!(rows.0.is_empty(), "second 1 is still open");
        // A later second's value writes second 1 first, without itself.
        book.on_stat(
            inst,
            4,
            &stat(StatField::MarkPrice, 12, 2_100),
            None,
            &mut rows,
        );
        assert_eq!(rows.0.len(), 1);
        assert_eq!(rows.0[0].ts_ms, 1_000);
        assert_eq!(rows.0[0].stats.mark_px, Some(11));
        assert_eq!(rows.0[0].stats.open_interest, Some(7));
        assert_eq!(rows.0[0].stats.funding_rate, None);
        // Not final at 3.499 s, final at 3.5 s (the bars' rule).
        book.on_watermark(Venue::BinanceUsdm, 3_499, &mut rows);
        assert_eq!(rows.0.len(), 1);
        book.on_watermark(Venue::BinanceSpot, 9_000, &mut rows);
        assert_eq!(rows.0.len(), 1, "another venue's time closes nothing");
        book.on_watermark(Venue::BinanceUsdm, 3_500, &mut rows);
        assert_eq!(rows.0.len(), 2);
        assert_eq!(
            (rows.0[1].ts_ms, rows.0[1].stats.mark_px),
            (2_000, Some(12))
        );
        book.finish(&mut rows);
        assert_eq!(rows.0.len(), 2, "nothing was open");
    }

    #[test]
    fn a_late_value_goes_into_the_next_second_never_a_written_one() {
        let (table, inst) = usdm_btc();
        let mut book = StatsBook::new(&table);
        let mut rows = Rows::default();
        book.on_stat(
            inst,
            1,
            &stat(StatField::MarkPrice, 10, 5_000),
            None,
            &mut rows,
        );
        book.on_watermark(Venue::BinanceUsdm, 7_000, &mut rows);
        book.on_stat(
            inst,
            2,
            &stat(StatField::OpenInterest, 3, 4_200),
            None,
            &mut rows,
        );
        book.finish(&mut rows);
        let seconds: Vec<_> = rows.0.iter().map(|r| r.ts_ms).collect();
        assert_eq!(seconds, [5_000, 6_000]);
        assert_eq!(rows.0[1].stats.open_interest, Some(3));
        assert_eq!(book.get(inst).mark_px, Some(10));
    }

    #[test]
    fn a_value_without_a_time_takes_the_watermark_or_opens_no_row() {
        let (table, inst) = usdm_btc();
        let mut book = StatsBook::new(&table);
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
