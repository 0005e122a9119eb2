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
