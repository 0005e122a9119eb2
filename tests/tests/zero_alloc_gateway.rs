//! The gateway's signal thread allocates nothing per record once warmed up: a bus source
//! reading quotes, bars and signals into the market state, the risk engine deciding each
//! signal (entries, exits, rejections), and the decision handed over an rtrb ring.
//! A counting global allocator counts; the bus is a real one in /dev/shm.

use flowcore_core::instrument::{InstrumentTable, Venue};
use flowcore_gateways::market::MarketState;
use flowcore_gateways::order::{Decision, Outcome};
use flowcore_gateways::risk::RiskEngine;
use flowcore_gateways::source::BusSource;
use flowcore_gateways::GatewayConfig;
use flowcore_shm::abi::{action, BarRecord, BboRecord, SignalRecord};
use flowcore_shm::publish::instrument_record;
use flowcore_shm::{BusConfig, BusWriter};
use flowcore_tests::{CountingAllocator, ALLOCATIONS};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const NS: i64 = 1_000_000_000;

#[test]
fn the_signal_thread_allocates_nothing_per_record() {
    let bus = PathBuf::from(format!(
        "/dev/shm/flowcore-test-zero-alloc-gw-{}",
        std::process::id()
    ));
    let table = InstrumentTable::bundled_defaults();
    let btc = table.find(Venue::BinanceUsdm, b"BTCUSDT").unwrap();
    let eth = table.find(Venue::BinanceUsdm, b"ETHUSDT").unwrap();
    let symbols = [
        instrument_record(0, table.get(btc)),
        instrument_record(1, table.get(eth)),
    ];
    let mut w = BusWriter::create(&BusConfig::new(&bus), &symbols).unwrap();
    let config = GatewayConfig::parse(
        "buses = [\"b\"]\njournal = \"j\"\nexecutor = \"paper\"\n[pairs]\nBTCUSDT = \"BTC/USDT:USDT\"\n\
         [risk]\ncooldown_s = 0\nmax_signal_age_ms = 3600000\n",
        Path::new("."),
        None,
    )
    .unwrap();
    let mut market = MarketState::new(60);
    let mut risk = RiskEngine::new(&config.risk, &config.sizing, &config.pairs);
    let mut source = BusSource::new(0, bus.clone(), &[]);
    source.maintain(&mut market, |_, _| 0, |v, s| config.pair_index(v, s));
    assert_eq!(source.counters.opens, 1);
    let (mut tx, mut rx) = rtrb::RingBuffer::<Decision>::new(1024);
    let t0 = 1_796_000_000 * NS;
    let mut id = 0u64;
    // Per second: two quotes, a bar, and a signal: long, exit, long on an unmapped
    // symbol (refused), exit with nothing open (refused), over and over.
    let mut second = |w: &mut BusWriter, k: i64| {
        let now = t0 + k * NS;
        for sym in 0..2 {
            w.bbo.publish(&BboRecord {
                exch_ns: now,
                local_ns: now,
                symbol_id: sym,
                bid_px: 600_000 + k,
                ask_px: 600_001 + k,
                bid_qty: 10,
                ask_qty: 10,
                ..bytemuck::Zeroable::zeroed()
            });
        }
        w.bars.publish(&BarRecord {
            ts_ms: now / 1_000_000,
            symbol_id: 0,
            flags: flowcore_shm::abi::flags::BAR_HAS_OHLC,
            close: 600_000 + (k % 7) * 3,
            ..bytemuck::Zeroable::zeroed()
        });
        id += 1;
        let (symbol_id, act) = match k % 4 {
            0 => (0, action::ENTER_LONG),
            1 => (0, action::EXIT),
            2 => (1, action::ENTER_LONG),
            _ => (0, action::EXIT),
        };
        w.signals.publish(&SignalRecord {
            signal_id: id,
            exch_ns: now,
            local_ns: now,
            symbol_id,
            action: act,
            confidence: 1_000_000_000,
            ..bytemuck::Zeroable::zeroed()
        });
        now
    };
    let mut run =
        |w: &mut BusWriter, from: i64, to: i64, risk: &mut RiskEngine, market: &mut MarketState| {
            let mut decided = 0;
            for k in from..to {
                let now = second(w, k);
                source.poll(
                    market,
                    || now,
                    |signal, market| {
                        let d = risk.decide(&signal, market, now);
                        assert!(tx.push(d).is_ok());
                    },
                );
                // The executor's side, as the paper broker would answer.
                while let Ok(d) = rx.pop() {
                    decided += 1;
                    if let Decision::Order(o) = d {
                        let out = match o.kind {
                            flowcore_gateways::order::OrderKind::Enter { qty, price, .. } => {
                                Outcome::Opened {
                                    entry: o.signal.key,
                                    qty,
                                    price,
                                }
                            }
                            flowcore_gateways::order::OrderKind::Exit { entry, .. } => {
                                Outcome::Closed {
                                    entry,
                                    pnl: flowcore_core::indicators::Value::ZERO,
                                }
                            }
                        };
                        risk.outcome(&out);
                    }
                }
            }
            decided
        };
    // Warm-up: first sight of each path (minute rollovers fill the return ring, too).
    assert_eq!(run(&mut w, 0, 400, &mut risk, &mut market), 400);
    // The counter counts (a probe allocation shows up).
    let probe = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![1u8; 64]));
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > probe);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let decided = run(&mut w, 400, 4_400, &mut risk, &mut market);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(decided, 4_000);
    assert_eq!(allocations, 0, "allocations over 4,000 seconds of records");
    let c = risk.counters();
    assert_eq!((c.entries, c.exits), (1_100, 1_100), "{c:?}");
    assert!(
        market.volatility(0).is_some(),
        "the bars reached the market state"
    );
    drop(w);
    let _ = std::fs::remove_dir_all(&bus);
}
