//! Per-strategy statistics of a backtest, from the signals' reason bits (shm/ABI.md) and the
//! strategy's own trades: how often each SqueezeFlow phase component fired and its score
//! histogram, and the imbalance method's signals, trades and PnL per market regime.

use flowcore_core::strategy::smart_money::{self as sm, Regime};
use flowcore_core::strategy::squeeze as sq;
use flowcore_gateways::backtest::BacktestReport;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// A signal as the report and the strategy statistics see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalPoint {
    /// Its id.
    pub id: u64,
    /// Exchange time, ns.
    pub exch_ns: i64,
    /// `strategy_id`.
    pub strategy_id: u32,
    /// The strategy's name.
    pub strategy: String,
    /// Its score.
    pub score: f64,
    /// `enter_long`, `enter_short`, `exit`.
    pub action: String,
    /// `venue:SYMBOL`.
    pub symbol: String,
    /// The strategy's reason bits (shm/ABI.md).
    pub reason_bits: u32,
}

/// SqueezeFlow's reason bits by name: entries (phases 2-4), then exits (phase 5).
const SQUEEZE_REASONS: [(u32, &str); 13] = [
    (sq::REASON_DIVERGENCE, "divergence"),
    (sq::REASON_RESET_A, "reset_a"),
    (sq::REASON_RESET_B, "reset_b"),
    (sq::REASON_DECELERATION, "cvd_reset_deceleration"),
    (sq::REASON_ABSORPTION, "absorption_candle"),
    (sq::REASON_FAILED_BREAK, "failed_breakdown"),
    (sq::REASON_BIAS, "directional_bias"),
    (sq::REASON_OI_CONFIRMS, "oi_confirms"),
    (sq::REASON_OI_CONTRADICTS, "oi_contradicts"),
    (sq::REASON_FLOW_REVERSAL, "exit_flow_reversal"),
    (sq::REASON_RANGE_BREAK, "exit_range_break"),
    (sq::REASON_CVD_INVALIDATION, "exit_cvd_invalidation"),
    (sq::REASON_STRUCTURE_BREAK, "exit_structure_break"),
];

const SMART_MONEY_REASONS: [(u32, &str); 4] = [
    (sm::REASON_IMBALANCE, "imbalance_agrees"),
    (sm::REASON_TREND, "trend_agrees"),
    (sm::REASON_FLOW, "flow_agrees"),
    (sm::REASON_ILLIQUID, "illiquid"),
];

/// `{ "reasons": {name: signals}, ... }` for strategy `id` named `name` (null for methods
/// without statistics of their own).
pub fn stats(name: &str, id: u32, signals: &[SignalPoint], alone: &BacktestReport) -> Json {
    let mine: Vec<&SignalPoint> = signals.iter().filter(|s| s.strategy_id == id).collect();
    let count = |table: &[(u32, &'static str)]| -> BTreeMap<&'static str, u64> {
        table
            .iter()
            .map(|&(bit, n)| {
                (
                    n,
                    mine.iter().filter(|s| s.reason_bits & bit != 0).count() as u64,
                )
            })
            .collect()
    };
    // Trades by the entry signal that opened them.
    let trade_of = |s: &SignalPoint| alone.trades.iter().find(|t| t.signal == s.id);
    match name {
        "squeeze_flow" => {
            let mut histogram = BTreeMap::new();
            for s in mine.iter().filter(|s| s.action != "exit") {
                *histogram
                    .entry(format!("{:.0}", s.score.floor()))
                    .or_insert(0u64) += 1;
            }
            let mut resets = BTreeMap::new();
            for (bit, reset) in [
                (sq::REASON_RESET_A, "reset_a"),
                (sq::REASON_RESET_B, "reset_b"),
            ] {
                let trades: Vec<f64> = mine
                    .iter()
                    .filter(|s| s.reason_bits & bit != 0)
                    .filter_map(|s| trade_of(s))
                    .map(|t| t.pnl.to_num::<f64>())
                    .collect();
                resets.insert(reset, outcome(&trades));
            }
            json!({"reasons": count(&SQUEEZE_REASONS), "entry_score_histogram": histogram, "trades_by_reset": resets})
        }
        "smart_money" => {
            let mut regimes: BTreeMap<&str, (u64, Vec<f64>)> = BTreeMap::new();
            for s in &mine {
                let r = Regime::from_reason_bits(s.reason_bits).map_or("unknown", Regime::name);
                let e = regimes.entry(r).or_default();
                e.0 += 1;
                if let Some(t) = trade_of(s) {
                    e.1.push(t.pnl.to_num::<f64>());
                }
            }
            let regimes: BTreeMap<&str, Json> = regimes
                .into_iter()
                .map(|(r, (signals, pnls))| {
                    let mut o = outcome(&pnls);
                    o["signals"] = json!(signals);
                    (r, o)
                })
                .collect();
            json!({"reasons": count(&SMART_MONEY_REASONS), "regimes": regimes})
        }
        _ => Json::Null,
    }
}

/// Trades, wins and PnL of a list of trade PnLs.
fn outcome(pnls: &[f64]) -> Json {
    json!({
        "trades": pnls.len(),
        "wins": pnls.iter().filter(|p| **p > 0.0).count(),
        // (`sum` of no f64 is -0.0.)
        "pnl": pnls.iter().fold(0.0, |a, b| a + b),
    })
}
