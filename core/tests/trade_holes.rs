//! What the engine hands its sink as counted trades (`EngineSink::trade`, which the bus's
//! `trades.ring` is written from) around a trade-id hole: every trade once, in id order,
//! including the trades held behind the hole until a trade history filled it. (The bus
//! once dropped those held trades: they went into the bars only.)

use flowcore_core::bars::{Bar, BarSink};
use flowcore_core::engine::{Engine, EngineSink, TopRow};
use flowcore_core::event::{Aggressor, EventKind, MarketEvent, SessionEvent, Trade, TradeSource};
use flowcore_core::imbalance::ImbalanceConfig;
use flowcore_core::instrument::{InstrumentId, InstrumentTable, Venue};
use std::num::NonZeroU64;

#[derive(Default)]
struct Counted(Vec<(u64, i64)>);

impl BarSink for Counted {
    fn bar(&mut self, _: &Bar) {}
}

impl EngineSink for Counted {
    fn top(&mut self, _: &TopRow) {}
    fn trade(&mut self, _: InstrumentId, trade: &Trade, local_ns: i64) {
        self.0.push((trade.trade_id, local_ns));
    }
}

const T0_MS: i64 = 1_723_161_300_000;

fn trade(inst: InstrumentId, id: u64, local_ns: i64) -> MarketEvent {
    let ts = (T0_MS + id as i64) * 1_000_000;
    MarketEvent {
        inst,
        local_ts: local_ns,
        kind: EventKind::Trade(Trade {
            trade_id: id,
            px: 6_000_000,
            qty: 1_000,
            aggressor: Aggressor::Sell,
            trade_ts: ts,
            exch_ts: ts,
            is_taker_flow: true,
            source: TradeSource::Trade,
        }),
    }
}

fn session(inst: InstrumentId, local_ns: i64, event: SessionEvent) -> MarketEvent {
    MarketEvent {
        inst,
        local_ts: local_ns,
        kind: EventKind::Session(event),
    }
}

#[test]
fn trades_held_behind_a_hole_are_handed_on_once_the_history_fills_it() {
    let table = InstrumentTable::binance_defaults();
    let inst = table.find(Venue::BinanceSpot, b"BTCUSDT").unwrap();
    let mut engine = Engine::new(table, ImbalanceConfig::default(), None).unwrap();
    let mut sink = Counted::default();
    // 102 and 103 are missing from the stream; 101 comes twice.
    for (id, local) in [(100, 1), (101, 2), (101, 3), (104, 4), (105, 5)] {
        engine.on_event(&trade(inst, id, local), &mut sink);
    }
    assert_eq!(
        sink.0,
        [(100, 1), (101, 2)],
        "104 and 105 wait behind the hole"
    );
    assert!(
        engine.pop_request().is_some(),
        "the engine asks for the trade history"
    );
    // The history answer: its trades fill the hole, then the held ones follow on.
    engine.on_event(&session(inst, 9, SessionEvent::BackfillBegin), &mut sink);
    for id in [101, 102, 103] {
        engine.on_event(&trade(inst, id, 9), &mut sink);
    }
    let last_id = NonZeroU64::new(103);
    engine.on_event(
        &session(inst, 9, SessionEvent::BackfillEnd { last_id }),
        &mut sink,
    );
    engine.on_event(&trade(inst, 106, 10), &mut sink);
    assert_eq!(
        sink.0,
        [
            (100, 1),
            (101, 2),
            (102, 9),
            (103, 9),
            (104, 9),
            (105, 9),
            (106, 10)
        ],
        "every trade once, in id order; the held ones with the receive time that released them"
    );
}
