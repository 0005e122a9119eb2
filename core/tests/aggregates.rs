//! Aggregate ids (and so the bus's symbol ids) follow the instrument table, not the run:
//! a run with other feeds numbers every aggregate the same way.

use flowcore_core::bars::BarEngine;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, MarketKind, Venue};

#[test]
fn aggregate_ids_follow_the_table_not_the_runs_members() {
    let table = InstrumentTable::bundled_defaults();
    let ids = |members: Option<&[InstrumentId]>| -> Vec<(String, MarketKind)> {
        let engine = BarEngine::new(&table, members).unwrap();
        engine
            .aggregates()
            .iter()
            .map(|a| (a.base.clone(), a.kind))
            .collect()
    };
    let all = ids(None);
    assert!(all.len() >= 4, "{all:?}");
    // A run with only ETH USD-M, or only BTC spot, numbers the aggregates the same way.
    for (venue, symbol) in [
        (Venue::BinanceUsdm, "ETHUSDT"),
        (Venue::BinanceSpot, "BTCUSDT"),
    ] {
        let member = table.find(venue, symbol.as_bytes()).unwrap();
        assert_eq!(ids(Some(&[member])), all, "{venue} {symbol}");
    }
    // Members are still only the run's.
    let btc = table.find(Venue::BinanceSpot, b"BTCUSDT").unwrap();
    let engine = BarEngine::new(&table, Some(&[btc])).unwrap();
    let members: Vec<InstrumentId> = engine
        .aggregates()
        .iter()
        .flat_map(|a| a.members.iter().copied())
        .collect();
    assert_eq!(members, [btc]);
}

mod dead_member {
    use flowcore_core::bars::{Bar, BarEngine, BarKey, BarSink};
    use flowcore_core::event::{Aggressor, Trade, TradeSource};
    use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};

    #[derive(Default)]
    struct Rows(Vec<Bar>);
    impl BarSink for Rows {
        fn bar(&mut self, bar: &Bar) {
            self.0.push(*bar);
        }
    }

    fn buy(id: u64, px: i64, qty: i64, ms: i64) -> Trade {
        Trade {
            trade_id: id,
            px,
            qty,
            aggressor: Aggressor::Buy,
            trade_ts: ms * 1_000_000,
            exch_ts: ms * 1_000_000,
            is_taker_flow: true,
            source: TradeSource::Trade,
        }
    }

    /// Two perp members trade every second; at 10 s one falls silent for good.
    fn run(timeout_ms: i64, silent_from_ms: i64) -> (Vec<Bar>, BarEngine, [InstrumentId; 2]) {
        let table = InstrumentTable::binance_defaults();
        let usdm = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
        let coinm = table.find(Venue::BinanceCoinm, b"BTCUSD_PERP").unwrap();
        let mut bars = BarEngine::new(&table, Some(&[usdm, coinm])).unwrap();
        bars.set_member_timeout_ms(timeout_ms);
        let mut rows = Rows::default();
        for sec in 0..60i64 {
            for (n, (inst, venue, px, qty)) in [
                (usdm, Venue::BinanceUsdm, 600_000, 1_000),
                (coinm, Venue::BinanceCoinm, 60_000, 10),
            ]
            .into_iter()
            .enumerate()
            {
                let ms = 1_000_000 + sec * 1000 + 100 + n as i64;
                if inst == usdm && ms >= 1_000_000 + silent_from_ms {
                    continue;
                }
                bars.seen(inst, ms);
                bars.on_trade(inst, &buy(sec as u64, px, qty, ms), &mut rows);
                bars.on_watermark(venue, ms, &mut rows);
            }
        }
        (rows.0, bars, [usdm, coinm])
    }

    fn aggregate(rows: &[Bar]) -> Vec<&Bar> {
        rows.iter()
            .filter(|b| matches!(b.key, BarKey::Aggregate(_)))
            .collect()
    }

    #[test]
    fn a_silent_member_stops_holding_the_aggregate_after_its_timeout() {
        let (rows, bars, [usdm, _]) = run(5_000, 10_000);
        let agg = aggregate(&rows);
        // Without the timeout the aggregate would have stopped at the silent member's
        // last second (9) until the end of input; with it, it goes on live.
        assert!(agg.len() > 50, "{} aggregate seconds written", agg.len());
        let both = 0b11; // USD-M BTCUSDT is the table's first BTC perp, COIN-M the second.
        for b in &agg {
            let sec = (b.ts_ms - 1_000_000) / 1000;
            match sec {
                1..=8 => assert_eq!((b.members, b.complete), (both, true), "second {sec}"),
                // The silent member's last bar, closed as incomplete, is still in.
                9 => assert_eq!((b.members, b.complete), (both, false), "second {sec}"),
                10.. => assert_eq!((b.members, b.complete), (0b10, false), "second {sec}"),
                _ => {}
            }
        }
        // Its last trades count: buy volume of second 9 holds both members'.
        let s9 = agg.iter().find(|b| b.ts_ms == 1_009_000).unwrap();
        let alone = agg.iter().find(|b| b.ts_ms == 1_020_000).unwrap();
        assert!(s9.buy_qty > alone.buy_qty);
        let last_usdm = rows
            .iter()
            .rfind(|b| b.key == BarKey::Instrument(usdm))
            .unwrap();
        assert_eq!((last_usdm.ts_ms, last_usdm.complete), (1_009_000, false));
        assert_eq!(bars.counters().members_timed_out, 1);
    }

    #[test]
    fn no_member_is_left_out_while_every_one_keeps_sending() {
        let (rows, bars, _) = run(5_000, i64::MAX / 2);
        for b in aggregate(&rows).iter().filter(|b| b.ts_ms > 1_000_000) {
            assert_eq!((b.members, b.complete), (0b11, true), "{}", b.ts_ms);
        }
        assert_eq!(bars.counters().members_timed_out, 0);
    }

    #[test]
    fn a_longer_timeout_waits_longer_before_going_on() {
        let (short, ..) = run(2_000, 30_000);
        let (long, ..) = run(40_000, 30_000);
        let ts = |rows: &[Bar]| {
            aggregate(rows)
                .iter()
                .map(|b| (b.ts_ms, b.members, b.buy_qty))
                .collect::<Vec<_>>()
        };
        let (short, long) = (ts(&short), ts(&long));
        // A timeout longer than the rest of the input holds the aggregate at the silent
        // member's last second; a short one goes on. What both wrote is the same.
        assert!(short.len() > 50, "{}", short.len());
        assert_eq!(long.len(), 29, "0..=28: its last bar (29) is still open");
        assert_eq!(short[..long.len()], long[..]);
    }

    /// Receive times far from exchange times (a live run replaying 2024's data in 2026); the
    /// second member starts 3 s after the first: within the timeout, it is waited for.
    #[test]
    fn a_member_that_starts_late_within_the_timeout_is_waited_for_on_the_receive_clock() {
        let table = InstrumentTable::binance_defaults();
        let usdm = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
        let coinm = table.find(Venue::BinanceCoinm, b"BTCUSD_PERP").unwrap();
        let offset_ms = 2 * 365 * 86_400_000;
        for (late_ms, left_out) in [(3_000, false), (8_000, true)] {
            let mut bars = BarEngine::new(&table, Some(&[usdm, coinm])).unwrap();
            bars.set_member_timeout_ms(5_000);
            let mut rows = Rows::default();
            for ms in (1_000_000..1_030_000).step_by(250) {
                for (inst, venue, px, qty, from) in [
                    (usdm, Venue::BinanceUsdm, 600_000, 1_000, 1_000_000),
                    (coinm, Venue::BinanceCoinm, 60_000, 10, 1_000_000 + late_ms),
                ] {
                    if ms < from {
                        continue;
                    }
                    bars.seen(inst, ms + offset_ms);
                    bars.on_trade(inst, &buy(ms as u64, px, qty, ms), &mut rows);
                    bars.on_watermark(venue, ms, &mut rows);
                }
            }
            let coinm_from = (1_000_000 + late_ms) / 1000 * 1000;
            let agg = aggregate(&rows.0);
            let first_both = agg.iter().find(|b| b.members == 0b11).map(|b| b.ts_ms);
            if left_out {
                // Written without it before it came: its first seconds are late for them.
                assert!(agg
                    .iter()
                    .any(|b| b.members == 0b01 && b.ts_ms >= 1_005_000));
                assert!(bars.counters().members_timed_out >= 1);
            } else {
                // Nothing written without it after its start, nothing timed out.
                assert_eq!(first_both, Some(coinm_from), "late {late_ms}");
                assert!(agg
                    .iter()
                    .all(|b| b.ts_ms < coinm_from || b.members == 0b11));
                assert_eq!(bars.counters().members_timed_out, 0);
            }
        }
    }
}
