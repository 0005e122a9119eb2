//! Paper fills: against the book top the risk engine saw when it decided, with a taker fee
//! and slippage beyond the touch. Sans-IO, so the backtester fills with this same code.
//!
//! A long enters at the ask and exits at the bid; a short the other way round; slippage
//! moves each fill against us. Without a quote the entry fills at the price it was sized at
//! and an exit at the entry price (flat), both counted in [`PaperBroker::unquoted`].

use crate::config::PaperConfig;
use crate::market::to_value;
use crate::order::{Order, OrderKind, Side, SignalKey};
use flowcore_core::indicators::Value;

/// An open paper position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperPosition {
    /// The entry signal.
    pub entry: SignalKey,
    /// Direction.
    pub side: Side,
    /// Base quantity.
    pub qty: Value,
    /// Fill price.
    pub price: Value,
    /// Fee paid on entry.
    pub fee: Value,
}

/// A fill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperFill {
    /// Price.
    pub price: Value,
    /// Quantity.
    pub qty: Value,
    /// Fee of this fill.
    pub fee: Value,
    /// Realised profit after both fees (exits; zero for entries).
    pub pnl: Value,
}

/// See the module docs.
#[derive(Debug)]
pub struct PaperBroker {
    fee: Value,
    slippage: Value,
    positions: Vec<PaperPosition>,
    /// Realised profit after fees.
    pub realised: Value,
    /// Fees paid.
    pub fees: Value,
    /// Fills made without a quote.
    pub unquoted: u64,
}

impl PaperBroker {
    /// Fees and slippage of `[paper]`.
    pub fn new(c: &PaperConfig) -> Self {
        let bps = |x: f64| Value::from_num(x) / 10_000;
        Self {
            fee: bps(c.fee_bps),
            slippage: bps(c.slippage_bps),
            positions: Vec::with_capacity(256),
            realised: Value::ZERO,
            fees: Value::ZERO,
            unquoted: 0,
        }
    }

    /// The taker fee, a fraction of notional.
    pub fn fee_rate(&self) -> Value {
        self.fee
    }

    /// Open positions.
    pub fn positions(&self) -> &[PaperPosition] {
        &self.positions
    }

    /// A position the journal says is open (restart).
    pub fn restore(&mut self, p: PaperPosition) {
        self.positions.push(p);
    }

    /// Fills an order; `price_scale` is the symbol's. `None` for an exit of a position this
    /// broker does not hold.
    pub fn fill(&mut self, o: &Order, price_scale: u8) -> Option<PaperFill> {
        let one = Value::ONE;
        let (bid, ask) = (o.bid, o.ask);
        match o.kind {
            OrderKind::Enter {
                side, qty, price, ..
            } => {
                let touch = match side {
                    Side::Long => ask,
                    Side::Short => bid,
                };
                let px = if touch > 0 {
                    let t = to_value(touch, price_scale);
                    match side {
                        Side::Long => t * (one + self.slippage),
                        Side::Short => t * (one - self.slippage),
                    }
                } else if price > Value::ZERO {
                    self.unquoted += 1;
                    price
                } else {
                    return None;
                };
                let fee = px * qty * self.fee;
                self.fees += fee;
                self.positions.push(PaperPosition {
                    entry: o.signal.key,
                    side,
                    qty,
                    price: px,
                    fee,
                });
                Some(PaperFill {
                    price: px,
                    qty,
                    fee,
                    pnl: Value::ZERO,
                })
            }
            OrderKind::Exit { entry, .. } => {
                let i = self.positions.iter().position(|p| p.entry == entry)?;
                let p = self.positions.swap_remove(i);
                let touch = match p.side {
                    Side::Long => bid,
                    Side::Short => ask,
                };
                let px = if touch > 0 {
                    let t = to_value(touch, price_scale);
                    match p.side {
                        Side::Long => t * (one - self.slippage),
                        Side::Short => t * (one + self.slippage),
                    }
                } else {
                    self.unquoted += 1;
                    p.price
                };
                let fee = px * p.qty * self.fee;
                self.fees += fee;
                let gross = match p.side {
                    Side::Long => (px - p.price) * p.qty,
                    Side::Short => (p.price - px) * p.qty,
                };
                let pnl = gross - p.fee - fee;
                self.realised += pnl;
                Some(PaperFill {
                    price: px,
                    qty: p.qty,
                    fee,
                    pnl,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::GatewaySignal;
    use flowcore_core::strategy::Action;

    fn order(kind: OrderKind, bid: i64, ask: i64, id: u64) -> Order {
        Order {
            signal: GatewaySignal {
                key: SignalKey {
                    bus: 0,
                    epoch: 1,
                    id,
                },
                slot: 0,
                pair: Some(0),
                strategy: 0,
                action: Action::EnterLong,
                entry_px: 0,
                stop_px: 0,
                target_px: 0,
                confidence: Value::ONE,
                size: 0,
                local_ns: 0,
                read_ns: 0,
            },
            kind,
            pair: 0,
            bid,
            ask,
        }
    }

    #[test]
    fn a_round_trip_pays_the_spread_slippage_and_two_fees() {
        // 10 bps fee, 0 slippage; 1 BTC long at the ask 100.10, out at the bid 110.00.
        let mut b = PaperBroker::new(&PaperConfig {
            fee_bps: 10.0,
            slippage_bps: 0.0,
        });
        let qty = Value::ONE;
        let enter = OrderKind::Enter {
            side: Side::Long,
            stake: Value::from_num(100),
            qty,
            price: Value::from_num(100),
            limit: Value::ZERO,
        };
        let f = b.fill(&order(enter, 10_000, 10_010, 1), 2).unwrap();
        assert_eq!(f.price, Value::from_num(10_010) / 100);
        let key = SignalKey {
            bus: 0,
            epoch: 1,
            id: 1,
        };
        let exit = OrderKind::Exit {
            entry: key,
            side: Side::Long,
            qty,
        };
        let f = b.fill(&order(exit, 11_000, 11_010, 2), 2).unwrap();
        // 110 - 100.10 = 9.90, less fees 0.1001 + 0.11.
        let expect = Value::from_num(9.90) - Value::from_num(0.1001) - Value::from_num(0.11);
        assert!((f.pnl - expect).abs() < Value::from_num(1e-9), "{}", f.pnl);
        assert!(b.positions().is_empty());
        assert!(
            b.fill(&order(exit, 11_000, 11_010, 3), 2).is_none(),
            "nothing left to exit"
        );
    }

    #[test]
    fn a_short_with_slippage_fills_below_the_bid() {
        let mut b = PaperBroker::new(&PaperConfig {
            fee_bps: 0.0,
            slippage_bps: 10.0,
        });
        let enter = OrderKind::Enter {
            side: Side::Short,
            stake: Value::from_num(100),
            qty: Value::ONE,
            price: Value::from_num(100),
            limit: Value::ZERO,
        };
        let f = b.fill(&order(enter, 10_000, 10_010, 1), 2).unwrap();
        assert_eq!(
            f.price,
            Value::from_num(100) * (Value::ONE - Value::from_num(10) / 10_000)
        );
    }
}
