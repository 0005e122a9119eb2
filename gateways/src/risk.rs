//! The risk engine: every signal in, an order or a counted rejection out. Sans-IO and
//! allocation-free after construction: the gateway runs it on its signal thread, and the
//! backtester runs the very same code over recorded signals.
//!
//! It holds the portfolio as the executor reported it (plus entries in flight, which count
//! against every limit at once so a burst of signals cannot overshoot one), marks it
//! against the market for equity and the drawdown kill switch, and sizes entries with
//! [`Sizing`] before capping them by the limits of `[risk]`.

use crate::config::{PairMap, RiskConfig};
use crate::market::{to_value, MarketState, Slot};
use crate::order::{
    Decision, GatewaySignal, Order, OrderKind, Outcome, Rejection, Side, SignalKey,
};
use crate::sizing::{Sizing, SizingInput};
use flowcore_core::indicators::Value;
use flowcore_core::strategy::Action;

/// An open (or opening, or closing) position.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// The signal that opened it.
    pub entry: SignalKey,
    /// Its symbol.
    pub slot: Slot,
    /// Its pair.
    pub pair: u16,
    /// The strategy that opened it.
    pub strategy: u32,
    /// Direction.
    pub side: Side,
    /// Base quantity.
    pub qty: Value,
    /// Entry price (sized-at price until the fill is reported).
    pub price: Value,
    /// Loss at the stop, quote currency.
    pub risk: Value,
    /// Quote notional: the stake until the fill, then quantity x fill price.
    pub notional: Value,
    /// The entry is not confirmed yet.
    pub opening: bool,
    /// An exit was sent and not answered yet.
    pub closing: bool,
}

impl Position {
    /// Quote notional at the entry price.
    pub fn notional(&self) -> Value {
        self.notional
    }
}

/// The limits in fixed point, made once from `[risk]`.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_open: usize,
    max_symbol: Value,
    max_total: Value,
    risk_per_position: Value,
    default_stop: Value,
    max_drawdown: Value,
    max_strategy_risk: Value,
    correlation: Value,
    max_correlated: u32,
    cooldown_ns: i64,
    max_age_ns: i64,
    weekend_mode: bool,
    opposite_exits: bool,
    /// The smallest stake worth sending: a tenth of a limit-capped stake is noise.
    min_stake: Value,
}

/// Counts of what the engine decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskCounters {
    /// Signals decided.
    pub signals: u64,
    /// Entries accepted.
    pub entries: u64,
    /// Exits accepted.
    pub exits: u64,
    /// Entries accepted at a stake a limit cut down.
    pub capped: u64,
    /// Rejections by [`Rejection`] code.
    pub rejected: [u64; Rejection::ALL.len()],
}

/// See the module docs.
#[derive(Debug)]
pub struct RiskEngine {
    limits: Limits,
    sizing: Sizing,
    use_signal_size: bool,
    /// Crypto or not, per `[pairs]` entry.
    crypto: Vec<bool>,
    start_equity: Value,
    realised: Value,
    peak: Value,
    positions: Vec<Position>,
    /// (strategy, slot, last entry local_ns).
    last_entry: Vec<(u32, Slot, i64)>,
    drawdown_tripped: bool,
    /// Set from outside (file, HTTP): stops entries, never exits.
    pub kill_switch: bool,
    counters: RiskCounters,
}

fn v(x: f64) -> Value {
    Value::from_num(x)
}

/// Saturday or Sunday in UTC.
fn is_weekend(ns: i64) -> bool {
    // 1970-01-01 was a Thursday: day 0 -> Thursday, so day % 7 == 2 is Saturday, 3 Sunday.
    let day = ns.div_euclid(86_400_000_000_000).rem_euclid(7);
    day == 2 || day == 3
}

impl RiskEngine {
    /// A flat book at `equity` (quote currency).
    pub fn new(risk: &RiskConfig, sizing: &crate::config::SizingConfig, pairs: &[PairMap]) -> Self {
        let max_open = risk.max_open_positions as usize;
        Self {
            limits: Limits {
                max_open,
                max_symbol: v(risk.max_notional_per_symbol),
                max_total: v(risk.max_notional_total),
                risk_per_position: v(risk.risk_per_position),
                default_stop: v(risk.default_stop),
                max_drawdown: v(risk.max_drawdown),
                max_strategy_risk: v(risk.max_strategy_risk),
                correlation: v(risk.correlation),
                max_correlated: risk.max_correlated_positions,
                cooldown_ns: (risk.cooldown_s as i64).saturating_mul(1_000_000_000),
                max_age_ns: (risk.max_signal_age_ms as i64).saturating_mul(1_000_000),
                weekend_mode: risk.weekend_mode,
                opposite_exits: risk.opposite_entry_exits,
                min_stake: v(sizing.stake / 10.0),
            },
            sizing: Sizing::new(sizing),
            use_signal_size: sizing.use_signal_size,
            crypto: pairs.iter().map(|p| p.crypto).collect(),
            start_equity: v(risk.equity),
            realised: Value::ZERO,
            peak: v(risk.equity),
            positions: Vec::with_capacity(max_open + 64),
            last_entry: Vec::with_capacity(1024),
            drawdown_tripped: false,
            kill_switch: false,
            counters: RiskCounters::default(),
        }
    }

    /// Replaces the starting equity (FreqTrade's `/balance` at start).
    pub fn set_equity(&mut self, equity: Value) {
        self.start_equity = equity;
        self.peak = self.peak.max(equity);
    }

    /// Counts so far.
    pub fn counters(&self) -> &RiskCounters {
        &self.counters
    }

    /// Open positions, opening and closing ones included.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// Realised profit so far.
    pub fn realised(&self) -> Value {
        self.realised
    }

    /// Whether the drawdown kill switch has tripped (it stays tripped until restart).
    pub fn drawdown_tripped(&self) -> bool {
        self.drawdown_tripped
    }

    /// Starting equity plus realised profit plus open positions marked at the market's mid
    /// (at their entry price where there is no quote).
    pub fn equity(&self, market: &MarketState) -> Value {
        let unrealised: Value = self
            .positions
            .iter()
            .filter(|p| !p.opening)
            .map(|p| {
                let mark = market.mid(p.slot).unwrap_or(p.price);
                match p.side {
                    Side::Long => (mark - p.price) * p.qty,
                    Side::Short => (p.price - mark) * p.qty,
                }
            })
            .sum();
        self.start_equity + self.realised + unrealised
    }

    /// Re-marks equity: trips the drawdown switch once equity is `max_drawdown` below its
    /// peak. Called on each decision and on each quote batch.
    pub fn mark(&mut self, market: &MarketState) {
        let equity = self.equity(market);
        self.peak = self.peak.max(equity);
        if self.peak > Value::ZERO && (self.peak - equity) / self.peak >= self.limits.max_drawdown {
            self.drawdown_tripped = true;
        }
    }

    /// A position the journal or FreqTrade says is open (restart). Its risk is taken at
    /// the assumed stop (`risk.default_stop`): the signal's own stop is not journaled.
    pub fn restore(&mut self, mut p: Position) {
        p.risk = p.notional * self.limits.default_stop;
        self.positions.push(p);
    }

    /// Decides one signal. `now_ns` is the gateway's clock when it read the signal.
    pub fn decide(&mut self, s: &GatewaySignal, market: &MarketState, now_ns: i64) -> Decision {
        self.counters.signals += 1;
        self.mark(market);
        let decision = self.decide_inner(s, market, now_ns);
        match &decision {
            Decision::Rejected(_, r) => self.counters.rejected[*r as usize] += 1,
            Decision::Order(o) => match o.kind {
                OrderKind::Enter { .. } => self.counters.entries += 1,
                OrderKind::Exit { .. } => self.counters.exits += 1,
            },
        }
        decision
    }

    fn decide_inner(&mut self, s: &GatewaySignal, market: &MarketState, now_ns: i64) -> Decision {
        let reject = |r| Decision::Rejected(*s, r);
        if now_ns.saturating_sub(s.local_ns) > self.limits.max_age_ns {
            return reject(Rejection::Stale);
        }
        let Some(pair) = s.pair else {
            return reject(Rejection::UnknownPair);
        };
        let sym = market.get(s.slot);
        let (bid, ask) = (sym.bid, sym.ask);
        let side = match s.action {
            Action::Exit => return self.exit(s, pair, bid, ask),
            Action::EnterLong => Side::Long,
            Action::EnterShort => Side::Short,
        };
        if self.limits.opposite_exits
            && self
                .positions
                .iter()
                .any(|p| p.slot == s.slot && p.side != side && p.strategy == s.strategy)
        {
            return self.exit(s, pair, bid, ask);
        }
        if self.kill_switch {
            return reject(Rejection::KillSwitch);
        }
        if self.drawdown_tripped {
            return reject(Rejection::Drawdown);
        }
        if self.limits.weekend_mode
            && !self.crypto.get(pair as usize).copied().unwrap_or(true)
            && is_weekend(now_ns)
        {
            return reject(Rejection::Weekend);
        }
        if self.positions.iter().any(|p| p.slot == s.slot) {
            return reject(Rejection::PositionOpen);
        }
        if self.last_entry.iter().any(|&(st, sl, t)| {
            st == s.strategy && sl == s.slot && now_ns - t < self.limits.cooldown_ns
        }) {
            return reject(Rejection::Cooldown);
        }
        if self.positions.len() >= self.limits.max_open {
            return reject(Rejection::MaxOpenPositions);
        }
        let correlated = self
            .positions
            .iter()
            .filter(|p| {
                market
                    .correlation(p.slot, s.slot)
                    .is_some_and(|c| c > self.limits.correlation)
            })
            .count() as u32;
        if correlated >= self.limits.max_correlated {
            return reject(Rejection::Correlated);
        }
        // The price to size at: the signal's entry, else the side's touch.
        let touch = match side {
            Side::Long => ask,
            Side::Short => bid,
        };
        // None: a market order on a symbol without a quote on any bus. FreqTrade fills it
        // at its own price and the stake alone sizes it; the paper broker refuses it.
        let price = if s.entry_px > 0 {
            Some(to_value(s.entry_px, sym.price_scale))
        } else if touch > 0 {
            Some(to_value(touch, sym.price_scale))
        } else {
            None
        };
        let equity = self.equity(market);
        let mut stake = self.sizing.stake(&SizingInput {
            confidence: s.confidence,
            volatility: market.volatility(s.slot),
            equity,
            open_positions: self.positions.len() as u32,
        });
        if let (true, Some(price)) = (self.use_signal_size && s.size > 0, price) {
            stake = stake.min(to_value(s.size, sym.size_scale) * price);
        }
        if stake <= Value::ZERO {
            return reject(Rejection::ZeroSize);
        }
        // Loss at the stop per unit of stake: the stop's distance, or the assumed one.
        let stop_distance = match price {
            Some(price) if s.stop_px > 0 => {
                let stop = to_value(s.stop_px, sym.price_scale);
                ((price - stop).abs() / price).max(Value::from_bits(1))
            }
            _ => self.limits.default_stop,
        };
        let sized = stake;
        stake = stake.min(self.limits.risk_per_position * equity / stop_distance);
        let total: Value = self.positions.iter().map(Position::notional).sum();
        let strategy_risk: Value = self
            .positions
            .iter()
            .filter(|p| p.strategy == s.strategy)
            .map(|p| p.risk)
            .sum();
        let caps = [
            (self.limits.max_symbol, Rejection::MaxNotionalSymbol),
            (self.limits.max_total - total, Rejection::MaxNotionalTotal),
            (
                (self.limits.max_strategy_risk * equity - strategy_risk) / stop_distance,
                Rejection::StrategyRisk,
            ),
        ];
        for (room, why) in caps {
            if room < self.limits.min_stake.min(sized) {
                return reject(why);
            }
            stake = stake.min(room);
        }
        if stake < sized {
            self.counters.capped += 1;
        }
        let qty = price.map_or(Value::ZERO, |p| stake / p);
        let price = price.unwrap_or(Value::ZERO);
        self.positions.push(Position {
            entry: s.key,
            slot: s.slot,
            pair,
            strategy: s.strategy,
            side,
            qty,
            price,
            risk: stake * stop_distance,
            notional: stake,
            opening: true,
            closing: false,
        });
        self.note_entry(s.strategy, s.slot, now_ns);
        Decision::Order(Order {
            signal: *s,
            kind: OrderKind::Enter {
                side,
                stake,
                qty,
                price,
                limit: if s.entry_px > 0 { price } else { Value::ZERO },
            },
            pair,
            bid,
            ask,
        })
    }

    fn note_entry(&mut self, strategy: u32, slot: Slot, now_ns: i64) {
        if let Some(e) = self
            .last_entry
            .iter_mut()
            .find(|e| e.0 == strategy && e.1 == slot)
        {
            e.2 = now_ns;
        } else if self.last_entry.len() < self.last_entry.capacity() {
            self.last_entry.push((strategy, slot, now_ns));
        } else if let Some(oldest) = self.last_entry.iter_mut().min_by_key(|e| e.2) {
            // Full: forget the oldest rather than allocate on the signal thread.
            *oldest = (strategy, slot, now_ns);
        }
    }

    fn exit(&mut self, s: &GatewaySignal, pair: u16, bid: i64, ask: i64) -> Decision {
        // One position per symbol (FreqTrade's rule): an exit closes it whichever strategy
        // opened it.
        let Some(p) = self.positions.iter_mut().find(|p| p.slot == s.slot) else {
            return Decision::Rejected(*s, Rejection::NoPosition);
        };
        if p.closing {
            return Decision::Rejected(*s, Rejection::Duplicate);
        }
        p.closing = true;
        Decision::Order(Order {
            signal: *s,
            kind: OrderKind::Exit {
                entry: p.entry,
                side: p.side,
                qty: p.qty,
            },
            pair,
            bid,
            ask,
        })
    }

    /// What the executor reported.
    pub fn outcome(&mut self, o: &Outcome) {
        let find = |positions: &mut Vec<Position>, k: SignalKey| {
            positions.iter().position(|p| p.entry == k)
        };
        match *o {
            Outcome::Opened { entry, qty, price } => {
                if let Some(i) = find(&mut self.positions, entry) {
                    let p = &mut self.positions[i];
                    // The risk scales with the filled notional; the stop distance stays.
                    let filled = qty * price;
                    if p.notional > Value::ZERO {
                        p.risk = p.risk * filled / p.notional;
                    }
                    p.notional = filled;
                    p.qty = qty;
                    p.price = price;
                    p.opening = false;
                }
            }
            Outcome::EntryFailed { entry } => {
                if let Some(i) = find(&mut self.positions, entry) {
                    self.positions.swap_remove(i);
                }
            }
            Outcome::Closed { entry, pnl } => {
                if let Some(i) = find(&mut self.positions, entry) {
                    self.positions.swap_remove(i);
                }
                self.realised += pnl;
            }
            Outcome::ExitFailed { entry } => {
                if let Some(i) = find(&mut self.positions, entry) {
                    self.positions[i].closing = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use std::path::Path;

    const NS: i64 = 1_000_000_000;
    // 2024-08-08 (a Thursday) 00:00 UTC.
    const THU: i64 = 1_723_075_200 * NS;

    struct Fixture {
        config: GatewayConfig,
        risk: RiskEngine,
        market: MarketState,
        btc: Slot,
        btc_perp: Slot,
        eth: Slot,
        next: u64,
    }

    fn fixture(extra: &str) -> Fixture {
        let text = format!(
            "buses = [\"b\"]\njournal = \"j\"\nexecutor = \"paper\"\n{extra}\n[pairs]\n\
             \"binance-spot:BTCUSDT\" = \"BTC/USDT\"\n\"binance-usdm:BTCUSDT\" = \"BTC/USDT:USDT\"\n\
             ETHUSDT = {{ pair = \"ETH/USDT\", crypto = false }}\n"
        );
        let c = GatewayConfig::parse(&text, Path::new("."), None).unwrap();
        let mut market = MarketState::new(60);
        let btc = market.slot("binance-spot:BTCUSDT", "BTC", 2, 5);
        let btc_perp = market.slot("binance-usdm:BTCUSDT", "BTC", 1, 3);
        let eth = market.slot("binance-spot:ETHUSDT", "ETH", 2, 4);
        market.quote(btc, 6_000_000, 6_000_100);
        market.quote(btc_perp, 600_000, 600_010);
        market.quote(eth, 300_000, 300_010);
        Fixture {
            risk: RiskEngine::new(&c.risk, &c.sizing, &c.pairs),
            config: c,
            market,
            btc,
            btc_perp,
            eth,
            next: 1,
        }
    }

    impl Fixture {
        fn signal(&mut self, slot: Slot, action: Action, at: i64) -> GatewaySignal {
            self.next += 1;
            let name = self.market.get(slot).name.clone();
            let (venue, symbol) = name.split_once(':').unwrap();
            let pair = self.config.pair_index(venue, symbol).map(|i| i as u16);
            GatewaySignal {
                key: SignalKey {
                    bus: 0,
                    epoch: 1,
                    id: self.next,
                },
                slot,
                pair,
                strategy: 7,
                action,
                entry_px: 0,
                stop_px: 0,
                target_px: 0,
                confidence: Value::ONE,
                size: 0,
                local_ns: at,
                read_ns: at,
            }
        }

        fn decide(&mut self, s: GatewaySignal, now: i64) -> Result<Order, Rejection> {
            match self.risk.decide(&s, &self.market, now) {
                Decision::Order(o) => Ok(o),
                Decision::Rejected(_, r) => Err(r),
            }
        }
    }

    fn stake(o: &Order) -> f64 {
        match o.kind {
            OrderKind::Enter { stake, .. } => stake.to_num(),
            OrderKind::Exit { .. } => 0.0,
        }
    }

    #[test]
    fn an_entry_is_sized_at_the_touch_and_an_exit_closes_it() {
        let mut f = fixture("");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        let o = f.decide(s, THU).unwrap();
        assert!((stake(&o) - 100.0).abs() < 1e-9);
        let OrderKind::Enter { qty, price, .. } = o.kind else {
            panic!()
        };
        assert_eq!(price, Value::from_num(60_001));
        f.risk.outcome(&Outcome::Opened {
            entry: s.key,
            qty,
            price,
        });
        let x = f.signal(f.btc, Action::Exit, THU + NS);
        let o = f.decide(x, THU + NS).unwrap();
        assert!(matches!(o.kind, OrderKind::Exit { entry, .. } if entry == s.key));
        // A second exit while the first is in flight is a duplicate; after the close there
        // is nothing to exit.
        let x2 = f.signal(f.btc, Action::Exit, THU + NS);
        assert_eq!(f.decide(x2, THU + NS).unwrap_err(), Rejection::Duplicate);
        f.risk.outcome(&Outcome::Closed {
            entry: s.key,
            pnl: Value::from_num(5),
        });
        let x3 = f.signal(f.btc, Action::Exit, THU + 2 * NS);
        assert_eq!(
            f.decide(x3, THU + 2 * NS).unwrap_err(),
            Rejection::NoPosition
        );
        assert_eq!(f.risk.realised(), Value::from_num(5));
    }

    #[test]
    fn with_opposite_entry_reject_an_opposite_entry_is_refused() {
        let mut f = fixture("[risk]\nopposite_entry = \"reject\"\n");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        f.decide(s, THU).unwrap();
        let s2 = f.signal(f.btc, Action::EnterShort, THU);
        assert_eq!(f.decide(s2, THU).unwrap_err(), Rejection::PositionOpen);
    }

    #[test]
    fn stale_unmapped_open_and_cooling_signals_are_refused() {
        let mut f = fixture("[risk]\ncooldown_s = 60\nmax_signal_age_ms = 500\n");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        assert_eq!(f.decide(s, THU + NS).unwrap_err(), Rejection::Stale);
        let mut s = f.signal(f.btc, Action::EnterLong, THU);
        s.pair = None;
        assert_eq!(f.decide(s, THU).unwrap_err(), Rejection::UnknownPair);
        let s = f.signal(f.btc, Action::EnterLong, THU);
        f.decide(s, THU).unwrap();
        // Another strategy's opposite entry meets the open position; the same strategy's
        // closes it (`opposite_entry = "exit"`, the default).
        let mut other = f.signal(f.btc, Action::EnterShort, THU);
        other.strategy += 1;
        assert_eq!(f.decide(other, THU).unwrap_err(), Rejection::PositionOpen);
        let s2 = f.signal(f.btc, Action::EnterShort, THU);
        let o = f.decide(s2, THU).unwrap();
        assert!(
            matches!(o.kind, OrderKind::Exit { entry, side: Side::Long, .. } if entry == s.key)
        );
        f.risk.outcome(&Outcome::EntryFailed { entry: s.key });
        let s3 = f.signal(f.btc, Action::EnterLong, THU + 10 * NS);
        assert_eq!(
            f.decide(s3, THU + 10 * NS).unwrap_err(),
            Rejection::Cooldown
        );
        let s4 = f.signal(f.btc, Action::EnterLong, THU + 61 * NS);
        assert!(f.decide(s4, THU + 61 * NS).is_ok());
        assert_eq!(f.risk.counters().rejected[Rejection::Cooldown as usize], 1);
    }

    #[test]
    fn one_base_on_two_venues_is_one_correlated_group() {
        let mut f = fixture("[risk]\nmax_correlated_positions = 1\n");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        f.decide(s, THU).unwrap();
        let p = f.signal(f.btc_perp, Action::EnterLong, THU);
        assert_eq!(f.decide(p, THU).unwrap_err(), Rejection::Correlated);
        let e = f.signal(f.eth, Action::EnterLong, THU);
        assert!(
            f.decide(e, THU).is_ok(),
            "no returns yet: ETH is not known to correlate"
        );
    }

    #[test]
    fn returns_that_move_together_are_correlated() {
        let mut f = fixture("[risk]\nmax_correlated_positions = 1\n");
        // Ten minutes of closes where ETH follows BTC's moves exactly.
        for m in 0..10i64 {
            let wiggle = [0, 30, -20, 50, 10, -40, 25, -5, 60, -10][m as usize];
            let t = THU + m * 60 * NS;
            f.market
                .close(f.btc, t / 1_000_000, 6_000_000 + wiggle * 100);
            f.market.close(f.eth, t / 1_000_000, 300_000 + wiggle * 5);
        }
        let c = f.market.correlation(f.btc, f.eth).unwrap();
        assert!(c > Value::from_num(0.99), "{c}");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        f.decide(s, THU).unwrap();
        let e = f.signal(f.eth, Action::EnterLong, THU);
        assert_eq!(f.decide(e, THU).unwrap_err(), Rejection::Correlated);
    }

    #[test]
    fn limits_cap_the_stake_then_refuse() {
        // 2% of 10,000 at a 1% stop allows 20,000: the symbol cap of 150 binds, then the
        // total cap leaves 250 - 150 = 100 for the second symbol, then nothing.
        let mut f = fixture(
            "[risk]\nmax_notional_per_symbol = 150\nmax_notional_total = 250\nmax_correlated_positions = 5\n\
             [sizing]\nstake = 200\n",
        );
        let mut s = f.signal(f.btc, Action::EnterLong, THU);
        s.stop_px = 5_940_000;
        assert!((stake(&f.decide(s, THU).unwrap()) - 150.0).abs() < 1e-9);
        let e = f.signal(f.eth, Action::EnterLong, THU);
        assert!((stake(&f.decide(e, THU).unwrap()) - 100.0).abs() < 1e-9);
        let p = f.signal(f.btc_perp, Action::EnterShort, THU);
        assert_eq!(f.decide(p, THU).unwrap_err(), Rejection::MaxNotionalTotal);
        assert_eq!(f.risk.counters().capped, 2);
    }

    #[test]
    fn risk_per_position_binds_with_a_wide_stop() {
        // A 10% stop: 2% of 10,000 risk allows 2,000 of stake; the strategy's 5% allows 5,000.
        let mut f = fixture(
            "[sizing]\nstake = 3000\nmax_stake = 3000\n[risk]\nmax_notional_per_symbol = 10000\n",
        );
        let mut s = f.signal(f.btc, Action::EnterLong, THU);
        s.entry_px = 6_000_000;
        s.stop_px = 5_400_000;
        assert!((stake(&f.decide(s, THU).unwrap()) - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn a_drawdown_stops_entries_but_not_exits() {
        let mut f = fixture("[risk]\nmax_drawdown = 0.1\nmax_notional_per_symbol = 20000\nrisk_per_position = 1.0\n[sizing]\nstake = 10000\nmax_stake = 10000\n");
        let s = f.signal(f.btc, Action::EnterLong, THU);
        let OrderKind::Enter { qty, price, .. } = f.decide(s, THU).unwrap().kind else {
            panic!()
        };
        f.risk.outcome(&Outcome::Opened {
            entry: s.key,
            qty,
            price,
        });
        // BTC falls 12%: the position loses 1,200 of 10,000 equity.
        f.market.quote(f.btc, 5_280_000, 5_280_100);
        let e = f.signal(f.eth, Action::EnterLong, THU);
        assert_eq!(f.decide(e, THU).unwrap_err(), Rejection::Drawdown);
        assert!(f.risk.drawdown_tripped());
        let x = f.signal(f.btc, Action::Exit, THU);
        assert!(f.decide(x, THU).is_ok());
    }

    #[test]
    fn kill_switch_and_weekend_mode() {
        let mut f = fixture("[risk]\nweekend_mode = true\nmax_correlated_positions = 5\n");
        f.risk.kill_switch = true;
        let s = f.signal(f.btc, Action::EnterLong, THU);
        assert_eq!(f.decide(s, THU).unwrap_err(), Rejection::KillSwitch);
        f.risk.kill_switch = false;
        let sat = THU + 2 * 86_400 * NS;
        let e = f.signal(f.eth, Action::EnterLong, sat);
        assert_eq!(f.decide(e, sat).unwrap_err(), Rejection::Weekend);
        let b = f.signal(f.btc, Action::EnterLong, sat);
        assert!(f.decide(b, sat).is_ok(), "crypto trades on weekends");
        let mon = THU + 4 * 86_400 * NS;
        let e = f.signal(f.eth, Action::EnterLong, mon);
        assert!(f.decide(e, mon).is_ok());
    }
}
