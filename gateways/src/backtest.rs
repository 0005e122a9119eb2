//! The backtester's core: the live gateway's risk engine, sizing and paper broker run over
//! recorded market rows and signals in exchange time, with a latency model, fees and
//! metrics. Sans-IO: the caller (`flowcore backtest`) replays the recordings and hands the
//! rows over in the order they became known; nothing here reads a clock or a file.
//!
//! Time. A row for second `S` (a book top, a bar) is known at the end of `S`; a signal made
//! at `exch_ns` reaches the gateway `feed_latency` later, and its order reaches the venue
//! `order_latency` after that. The caller orders the rows by the time they are known (see
//! [`Backtester::known_at`]), so a decision sees only what was known when it was made, and a
//! fill happens at the last quote known when the order arrives: no look-ahead. Quotes are
//! the per-second book tops, so an order fills at the book as it stood at the end of the
//! last whole second before it arrived.

use crate::config::{GatewayConfig, PairMap};
use crate::market::{to_value, MarketState, Slot};
use crate::order::{Decision, GatewaySignal, Order, OrderKind, Outcome, Side};
use crate::paper::PaperBroker;
use crate::risk::RiskEngine;
use flowcore_core::indicators::Value;
use std::collections::{BTreeMap, VecDeque};

/// Nanoseconds in a second.
const NS: i64 = 1_000_000_000;
/// Seconds in a (365-day) year: crypto trades every second of it.
const YEAR_S: i64 = 365 * 24 * 3600;

/// How the backtest models time: each latency a constant, or drawn per signal from
/// measured samples (a live run's, say).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatencyModel {
    /// From a signal's exchange time to the gateway's decision, ns.
    pub feed_ns: i64,
    /// From the decision to the order at the venue, ns.
    pub order_ns: i64,
    /// When not empty: the feed latency of each signal is one of these, ns.
    pub feed_samples: Vec<i64>,
    /// When not empty: the order latency of each signal is one of these, ns.
    pub order_samples: Vec<i64>,
}

impl LatencyModel {
    /// A draw that depends on the signal id alone (splitmix64), so a run is repeatable and
    /// a signal's latency does not change when other signals come or go.
    fn draw(samples: &[i64], constant: i64, id: u64, stream: u64) -> i64 {
        if samples.is_empty() {
            return constant;
        }
        let mut z = id
            .wrapping_mul(2)
            .wrapping_add(stream)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        samples[(z % samples.len() as u64) as usize]
    }

    /// Signal `id`'s feed latency, ns.
    pub fn feed(&self, id: u64) -> i64 {
        Self::draw(&self.feed_samples, self.feed_ns, id, 0)
    }

    /// Signal `id`'s order latency, ns.
    pub fn order(&self, id: u64) -> i64 {
        Self::draw(&self.order_samples, self.order_ns, id, 1)
    }

    /// When signal `id` made at `exch_ns` is acted on: the caller orders signals by this
    /// against rows known at the end of their second.
    pub fn known_at(&self, id: u64, exch_ns: i64) -> i64 {
        exch_ns.saturating_add(self.feed(id))
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// The gateway's `[risk]`, `[sizing]`, `[paper]` and `[pairs]` (its buses and journal are
    /// not used).
    pub gateway: GatewayConfig,
    /// Latency.
    pub latency: LatencyModel,
    /// Signals made in the first `warmup_s` seconds of data are not traded (counted).
    pub warmup_s: i64,
}

/// One round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestTrade {
    /// The entry signal's id.
    pub signal: u64,
    /// `strategy_id` of the entry signal.
    pub strategy: u32,
    /// `venue:SYMBOL`.
    pub symbol: String,
    /// Direction.
    pub side: Side,
    /// Fill times, exchange ns.
    pub entry_ns: i64,
    /// Exit fill time (the end of data for a trade still open then).
    pub exit_ns: i64,
    /// Fill prices.
    pub entry_price: Value,
    /// Exit fill price.
    pub exit_price: Value,
    /// Base quantity.
    pub qty: Value,
    /// After both fees.
    pub pnl: Value,
    /// Both fees.
    pub fees: Value,
    /// Still open at the end of data: marked at the touch it would exit at, fees included.
    pub open_at_end: bool,
}

/// The numbers a backtest ends with.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestMetrics {
    /// Equity at the start.
    pub initial_equity: f64,
    /// Equity at the end (open trades marked).
    pub final_equity: f64,
    /// Final minus initial.
    pub pnl: f64,
    /// `pnl / initial_equity`.
    pub total_return: f64,
    /// Annualised Sharpe ratio of the per-second equity returns (0 without variance).
    pub sharpe: f64,
    /// Annualised Sortino ratio (downside deviation; 0 without losses).
    pub sortino: f64,
    /// Largest fall from an equity peak, fraction of the peak.
    pub max_drawdown: f64,
    /// Longest time below a previous peak, seconds.
    pub max_drawdown_s: i64,
    /// Round trips (open ones at the end included).
    pub trades: u64,
    /// Fraction of trades with a positive PnL.
    pub win_rate: f64,
    /// Gross profit over gross loss (`inf` without a losing trade, 0 without trades).
    pub profit_factor: f64,
    /// Mean time in a trade, seconds.
    pub avg_hold_s: f64,
    /// Fraction of the seconds with at least one open position.
    pub exposure: f64,
    /// Fees paid.
    pub fees: f64,
    /// Seconds of data.
    pub seconds: i64,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct BacktestReport {
    /// Headline numbers.
    pub metrics: BacktestMetrics,
    /// Round trips in the order they closed.
    pub trades: Vec<BacktestTrade>,
    /// Equity at the end of every second of data, `(exchange ns, equity)`.
    pub equity: Vec<(i64, f64)>,
    /// Signals seen.
    pub signals: u64,
    /// Signals refused, by reason (the gateway's names, and `warmup`).
    pub rejections: BTreeMap<&'static str, u64>,
    /// Orders that found no quote to fill against.
    pub unfilled: u64,
    /// Per strategy id: (signals, trades, pnl).
    pub per_strategy: BTreeMap<u32, (u64, u64, f64)>,
}

struct OpenTrade {
    signal: GatewaySignal,
    entry_ns: i64,
    price: Value,
    qty: Value,
    fee: Value,
}

/// See the module docs.
pub struct Backtester {
    market: MarketState,
    risk: RiskEngine,
    broker: PaperBroker,
    latency: LatencyModel,
    warmup_ns: i64,
    initial: Value,
    /// Orders on their way to the venue: (arrival ns, order).
    pending: VecDeque<(i64, Order)>,
    open: Vec<OpenTrade>,
    trades: Vec<BacktestTrade>,
    equity: Vec<(i64, f64)>,
    exposed_s: i64,
    first_ns: Option<i64>,
    now_ns: i64,
    signals: u64,
    rejections: BTreeMap<&'static str, u64>,
    unfilled: u64,
    per_strategy: BTreeMap<u32, (u64, u64, f64)>,
}

impl std::fmt::Debug for Backtester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backtester")
            .field("now_ns", &self.now_ns)
            .field("open", &self.open.len())
            .field("trades", &self.trades.len())
            .finish_non_exhaustive()
    }
}

impl Backtester {
    /// A backtest with `config`'s limits, sizing, fees and latency.
    pub fn new(config: &BacktestConfig) -> Self {
        let g = &config.gateway;
        let mut risk = RiskEngine::new(&g.risk, &g.sizing, &g.pairs);
        let initial = Value::from_num(g.risk.equity);
        risk.set_equity(initial);
        Self {
            market: MarketState::new(g.risk.correlation_minutes as usize),
            risk,
            broker: PaperBroker::new(&g.paper),
            latency: config.latency.clone(),
            warmup_ns: config.warmup_s.saturating_mul(NS),
            initial,
            pending: VecDeque::new(),
            open: Vec::new(),
            trades: Vec::new(),
            equity: Vec::new(),
            exposed_s: 0,
            first_ns: None,
            now_ns: i64::MIN,
            signals: 0,
            rejections: BTreeMap::new(),
            unfilled: 0,
            per_strategy: BTreeMap::new(),
        }
    }

    /// The slot of `venue:SYMBOL`, made on first sight.
    pub fn slot(&mut self, name: &str, base: &str, price_scale: u8, size_scale: u8) -> Slot {
        self.market.slot(name, base, price_scale, size_scale)
    }

    /// Moves the clock to `now_ns`: orders that have arrived by then fill first, at the
    /// quotes known before `now_ns`.
    fn advance(&mut self, now_ns: i64) {
        while self.pending.front().is_some_and(|(at, _)| *at <= now_ns) {
            let (at, mut order) = self.pending.pop_front().expect("checked");
            self.execute(at, &mut order);
        }
        self.now_ns = self.now_ns.max(now_ns);
        self.first_ns.get_or_insert(now_ns);
    }

    /// A book top for the second ending at `known_ns`: mantissas at the symbol's scale.
    pub fn quote(&mut self, known_ns: i64, slot: Slot, bid: i64, ask: i64) {
        self.advance(known_ns);
        self.market.quote(slot, bid, ask);
    }

    /// A 1-second bar's close (for volatility sizing and the correlation limit).
    pub fn close(&mut self, known_ns: i64, slot: Slot, ts_ms: i64, close: i64) {
        self.advance(known_ns);
        self.market.close(slot, ts_ms, close);
    }

    /// The end of a second of data: the equity mark (and the drawdown switch, as live).
    pub fn second(&mut self, end_ns: i64) {
        self.advance(end_ns);
        self.risk.mark(&self.market);
        if !self.open.is_empty() {
            self.exposed_s += 1;
        }
        let equity = self.equity_now();
        match self.equity.last_mut() {
            Some(last) if last.0 == end_ns => last.1 = equity,
            _ => self.equity.push((end_ns, equity)),
        }
    }

    /// A signal; `s.local_ns` must be its exchange time (recorded receive clocks drift).
    pub fn signal(&mut self, s: GatewaySignal) {
        let now = self.latency.known_at(s.key.id, s.local_ns);
        self.advance(now);
        self.signals += 1;
        self.per_strategy.entry(s.strategy).or_default().0 += 1;
        let warm = self.first_ns.is_some_and(|t| now - t >= self.warmup_ns);
        if !warm && s.action != flowcore_core::strategy::Action::Exit {
            *self.rejections.entry("warmup").or_insert(0) += 1;
            return;
        }
        match self.risk.decide(&s, &self.market, now) {
            Decision::Rejected(_, r) => *self.rejections.entry(r.name()).or_insert(0) += 1,
            Decision::Order(o) => {
                let at = now.saturating_add(self.latency.order(s.key.id));
                // Drawn latencies can overtake: keep the queue in arrival order (FIFO
                // among equals).
                let i = self.pending.partition_point(|(t, _)| *t <= at);
                self.pending.insert(i, (at, o));
            }
        }
    }

    fn execute(&mut self, at: i64, o: &mut Order) {
        let sym = self.market.get(o.signal.slot);
        (o.bid, o.ask) = (sym.bid, sym.ask);
        let scale = sym.price_scale;
        let entry = o.signal.key;
        let Some(fill) = self.broker.fill(o, scale) else {
            self.unfilled += 1;
            self.risk.outcome(&match o.kind {
                OrderKind::Enter { .. } => Outcome::EntryFailed { entry },
                OrderKind::Exit { entry, .. } => Outcome::ExitFailed { entry },
            });
            return;
        };
        match o.kind {
            OrderKind::Enter { .. } => {
                self.open.push(OpenTrade {
                    signal: o.signal,
                    entry_ns: at,
                    price: fill.price,
                    qty: fill.qty,
                    fee: fill.fee,
                });
                self.risk.outcome(&Outcome::Opened {
                    entry,
                    qty: fill.qty,
                    price: fill.price,
                });
            }
            OrderKind::Exit { entry, side, .. } => {
                if let Some(i) = self.open.iter().position(|t| t.signal.key == entry) {
                    let t = self.open.swap_remove(i);
                    self.close_trade(&t, side, at, fill.price, fill.pnl, t.fee + fill.fee, false);
                }
                self.risk.outcome(&Outcome::Closed {
                    entry,
                    pnl: fill.pnl,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn close_trade(
        &mut self,
        t: &OpenTrade,
        side: Side,
        exit_ns: i64,
        exit_price: Value,
        pnl: Value,
        fees: Value,
        open_at_end: bool,
    ) {
        let stats = self.per_strategy.entry(t.signal.strategy).or_default();
        stats.1 += 1;
        stats.2 += pnl.to_num::<f64>();
        self.trades.push(BacktestTrade {
            signal: t.signal.key.id,
            strategy: t.signal.strategy,
            symbol: self.market.get(t.signal.slot).name.clone(),
            side,
            entry_ns: t.entry_ns,
            exit_ns,
            entry_price: t.price,
            exit_price,
            qty: t.qty,
            pnl,
            fees,
            open_at_end,
        });
    }

    /// Where an open trade would exit now, its PnL there after both fees, and the exit fee.
    fn mark(&self, t: &OpenTrade, side: Side) -> (Value, Value, Value) {
        let sym = self.market.get(t.signal.slot);
        let touch = match side {
            Side::Long => sym.bid,
            Side::Short => sym.ask,
        };
        let px = if touch > 0 {
            to_value(touch, sym.price_scale)
        } else {
            t.price
        };
        let exit_fee = px * t.qty * self.broker.fee_rate();
        let gross = match side {
            Side::Long => (px - t.price) * t.qty,
            Side::Short => (t.price - px) * t.qty,
        };
        (px, gross - t.fee - exit_fee, exit_fee)
    }

    fn equity_now(&self) -> f64 {
        let open: Value = self
            .open
            .iter()
            .map(|t| self.mark(t, side_of(&t.signal)).1)
            .sum();
        (self.initial + self.broker.realised + open).to_num()
    }

    /// Ends the run: trades still open are marked at the last quotes.
    pub fn finish(mut self) -> BacktestReport {
        let end = self.now_ns;
        // Orders still in flight at the end of data never arrived.
        self.unfilled += self.pending.len() as u64;
        let open = std::mem::take(&mut self.open);
        for t in &open {
            let side = side_of(&t.signal);
            let (px, pnl, exit_fee) = self.mark(t, side);
            self.close_trade(t, side, end, px, pnl, t.fee + exit_fee, true);
        }
        self.open = open;
        let metrics = metrics(
            self.initial.to_num(),
            &self.equity,
            &self.trades,
            self.exposed_s,
        );
        BacktestReport {
            metrics,
            trades: self.trades,
            equity: self.equity,
            signals: self.signals,
            rejections: self.rejections,
            unfilled: self.unfilled,
            per_strategy: self.per_strategy,
        }
    }
}

fn side_of(s: &GatewaySignal) -> Side {
    match s.action {
        flowcore_core::strategy::Action::EnterShort => Side::Short,
        _ => Side::Long,
    }
}

/// The headline numbers from an equity series (one point per second) and the trades.
pub fn metrics(
    initial: f64,
    equity: &[(i64, f64)],
    trades: &[BacktestTrade],
    exposed_s: i64,
) -> BacktestMetrics {
    let final_equity = equity.last().map_or(initial, |e| e.1);
    let returns: Vec<f64> = std::iter::once(initial)
        .chain(equity.iter().map(|e| e.1))
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| if w[0] != 0.0 { w[1] / w[0] - 1.0 } else { 0.0 })
        .collect();
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let down = returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n;
    let annual = (YEAR_S as f64).sqrt();
    let ratio = |dev: f64| if dev > 0.0 { mean / dev * annual } else { 0.0 };
    let (mut peak, mut peak_ns, mut max_dd, mut max_dd_s) = (initial, None::<i64>, 0.0f64, 0i64);
    for &(ns, e) in equity {
        if e >= peak {
            peak = e;
            peak_ns = Some(ns);
        } else {
            max_dd = max_dd.max((peak - e) / peak);
            let since = peak_ns.or(equity.first().map(|f| f.0 - NS)).unwrap_or(ns);
            max_dd_s = max_dd_s.max((ns - since) / NS);
        }
    }
    let wins: f64 = trades.iter().map(|t| t.pnl.to_num::<f64>().max(0.0)).sum();
    let losses: f64 = trades
        .iter()
        .map(|t| (-t.pnl.to_num::<f64>()).max(0.0))
        .sum();
    let count = trades.len() as u64;
    let hold: i64 = trades.iter().map(|t| t.exit_ns - t.entry_ns).sum();
    BacktestMetrics {
        initial_equity: initial,
        final_equity,
        pnl: final_equity - initial,
        total_return: if initial != 0.0 {
            final_equity / initial - 1.0
        } else {
            0.0
        },
        sharpe: ratio(var.sqrt()),
        sortino: ratio(down.sqrt()),
        max_drawdown: max_dd,
        max_drawdown_s: max_dd_s,
        trades: count,
        win_rate: if count > 0 {
            trades.iter().filter(|t| t.pnl > Value::ZERO).count() as f64 / count as f64
        } else {
            0.0
        },
        profit_factor: if losses > 0.0 {
            wins / losses
        } else if wins > 0.0 {
            f64::INFINITY
        } else {
            0.0
        },
        avg_hold_s: if count > 0 {
            hold as f64 / count as f64 / NS as f64
        } else {
            0.0
        },
        exposure: if equity.is_empty() {
            0.0
        } else {
            exposed_s as f64 / equity.len() as f64
        },
        fees: trades.iter().map(|t| t.fees.to_num::<f64>()).sum(),
        seconds: equity.len() as i64,
    }
}

/// The headline numbers of the part of `r` in `[start_ns, end_ns)`: the equity path over
/// those seconds (starting from the equity just before them) and the trades that closed in
/// them. Walk-forward folds are such windows of one continuous run.
pub fn window_metrics(r: &BacktestReport, start_ns: i64, end_ns: i64) -> BacktestMetrics {
    let inside = |ns: i64| ns >= start_ns && ns < end_ns;
    let initial = r
        .equity
        .iter()
        .take_while(|e| e.0 < start_ns)
        .last()
        .or(r.equity.first())
        .map_or(r.metrics.initial_equity, |e| e.1);
    let equity: Vec<(i64, f64)> = r.equity.iter().copied().filter(|e| inside(e.0)).collect();
    let trades: Vec<BacktestTrade> = r
        .trades
        .iter()
        .filter(|t| inside(t.exit_ns))
        .cloned()
        .collect();
    let exposed = equity
        .iter()
        .filter(|e| {
            r.trades
                .iter()
                .any(|t| t.entry_ns <= e.0 && (t.exit_ns > e.0 || t.open_at_end))
        })
        .count() as i64;
    metrics(initial, &equity, &trades, exposed)
}

/// The gateway's pair map for a backtest without `[pairs]`: every symbol traded as itself.
pub fn pairs_for(symbols: &[String]) -> Vec<PairMap> {
    symbols
        .iter()
        .map(|s| PairMap {
            symbol: s.clone(),
            pair: s.clone(),
            crypto: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::SignalKey;
    use flowcore_core::strategy::Action;
    use std::path::Path;

    const T0: i64 = 1_723_161_300 * NS;

    fn config(feed_ms: i64, order_ms: i64) -> BacktestConfig {
        let text = "buses = [\"b\"]\njournal = \"j\"\nexecutor = \"paper\"\n\
                    [pairs]\nBTCUSDT = \"BTC/USDT\"\n\
                    [sizing]\nmethod = \"fixed\"\nstake = 100\n\
                    [paper]\nfee_bps = 10\nslippage_bps = 0\n";
        BacktestConfig {
            gateway: GatewayConfig::parse(text, Path::new("."), None).unwrap(),
            latency: LatencyModel {
                feed_ns: feed_ms * 1_000_000,
                order_ns: order_ms * 1_000_000,
                ..LatencyModel::default()
            },
            warmup_s: 0,
        }
    }

    fn signal(id: u64, action: Action, exch_ns: i64) -> GatewaySignal {
        GatewaySignal {
            key: SignalKey {
                bus: 0,
                epoch: 0,
                id,
            },
            slot: 0,
            pair: Some(0),
            strategy: 0,
            action,
            entry_px: 0,
            stop_px: 0,
            target_px: 0,
            confidence: Value::ONE,
            size: 0,
            local_ns: exch_ns,
            read_ns: exch_ns,
        }
    }

    /// Quotes at the ends of seconds 1..=4 (price scale 2), a long at second 1 and its
    /// exit at second 3, each order taking 1.5 s to arrive.
    fn round_trip(bt: &mut Backtester) {
        let slot = bt.slot("binance-spot:BTCUSDT", "BTC", 2, 5);
        let quotes = [
            (10_000, 10_010),
            (10_100, 10_110),
            (11_000, 11_010),
            (12_000, 12_010),
        ];
        for (k, (bid, ask)) in quotes.into_iter().enumerate() {
            let end = T0 + (k as i64 + 1) * NS;
            bt.quote(end, slot, bid, ask);
            bt.second(end);
            match k {
                0 => bt.signal(signal(1, Action::EnterLong, end)),
                2 => bt.signal(signal(2, Action::Exit, end)),
                _ => {}
            }
        }
        bt.second(T0 + 6 * NS);
    }

    #[test]
    fn orders_fill_at_the_book_known_when_they_arrive_with_both_fees() {
        let mut bt = Backtester::new(&config(0, 1_500));
        round_trip(&mut bt);
        let r = bt.finish();
        assert_eq!(r.trades.len(), 1, "{r:?}");
        let t = &r.trades[0];
        // Decided at second 1's book (100.00/100.10), arrived 1.5 s later: second 2's ask.
        assert_eq!(t.entry_price, Value::from_num(10_110) / 100);
        // The exit, decided at second 3, fills at second 4's bid.
        assert_eq!(t.exit_price, Value::from_num(120));
        assert_eq!(t.entry_ns, T0 + NS + 1_500_000_000);
        assert!(!t.open_at_end);
        let fee = Value::from_num(10) / 10_000;
        let expect =
            (t.exit_price - t.entry_price) * t.qty - (t.exit_price + t.entry_price) * t.qty * fee;
        assert!(
            (t.pnl - expect).abs() < Value::from_num(1e-9),
            "{} vs {expect}",
            t.pnl
        );
        // The equity curve (the broker's books) ends where the trade list says.
        let m = &r.metrics;
        assert!(
            (m.final_equity - 10_000.0 - t.pnl.to_num::<f64>()).abs() < 1e-6,
            "{m:?}"
        );
        assert_eq!(m.trades, 1);
        assert_eq!(m.win_rate, 1.0);
        assert!(m.profit_factor.is_infinite());
        // In the market from 2.5 s to 4.5 s: the marks at the ends of seconds 3 and 4.
        assert_eq!(m.exposure, 2.0 / 5.0);
        // A window over everything is the whole run; one over seconds 3 and 4 holds no
        // closed trade (it closes at 4.5 s) but the exposure of both.
        assert_eq!(&window_metrics(&r, i64::MIN, i64::MAX), m);
        let w = window_metrics(&r, T0 + 3 * NS, T0 + 4 * NS + 1);
        assert_eq!((w.trades, w.exposure, w.seconds), (0, 1.0, 2));
    }

    #[test]
    fn a_signal_older_than_the_age_limit_when_it_arrives_is_stale_and_warmup_holds_entries() {
        // 6 s of feed latency against `max_signal_age_ms = 5000`.
        let mut bt = Backtester::new(&config(6_000, 0));
        round_trip(&mut bt);
        let r = bt.finish();
        assert!(r.trades.is_empty());
        assert_eq!(r.rejections.get("stale"), Some(&2), "{:?}", r.rejections);

        let mut c = config(0, 0);
        c.warmup_s = 2;
        let mut bt = Backtester::new(&c);
        round_trip(&mut bt);
        let r = bt.finish();
        assert_eq!(r.rejections.get("warmup"), Some(&1));
        assert_eq!(r.rejections.get("no_position"), Some(&1));
    }

    #[test]
    fn metrics_of_a_known_equity_path() {
        // 100 -> 110 -> 99 -> 104.5: returns +10%, -10%, +5.56%; drawdown 10% for 2 s.
        let eq = [(NS, 110.0), (2 * NS, 99.0), (3 * NS, 104.5)];
        let m = metrics(100.0, &eq, &[], 1);
        assert!((m.max_drawdown - 0.1).abs() < 1e-12, "{m:?}");
        assert_eq!(m.max_drawdown_s, 2);
        assert!((m.total_return - 0.045).abs() < 1e-12);
        let r = [0.1, -0.1, 104.5 / 99.0 - 1.0];
        let mean = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0).sqrt();
        let dd = (0.01f64 / 3.0).sqrt();
        let year = (365.0f64 * 86_400.0).sqrt();
        assert!((m.sharpe - mean / sd * year).abs() < 1e-6 * m.sharpe.abs());
        assert!((m.sortino - mean / dd * year).abs() < 1e-6 * m.sortino.abs());
        assert!((m.exposure - 1.0 / 3.0).abs() < 1e-12);
    }
}
