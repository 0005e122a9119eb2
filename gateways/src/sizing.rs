//! How much to stake on an accepted entry, before the risk limits cap it.
//!
//! Amounts are quote currency in [`Value`] fixed point. The methods (seed 001 and 004):
//! fixed stake, confidence-scaled, volatility-targeted, fractional Kelly with a cap, and risk
//! parity across the open positions.

use crate::config::SizingConfig;
pub use crate::config::SizingMethod;
use flowcore_core::indicators::Value;

/// What a sizing decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct SizingInput {
    /// The signal's confidence, 0..1.
    pub confidence: Value,
    /// Standard deviation of the symbol's 1-minute returns, when known.
    pub volatility: Option<Value>,
    /// Current equity.
    pub equity: Value,
    /// Positions open before this one.
    pub open_positions: u32,
}

/// The configured method with its settings in fixed point, made once.
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    method: SizingMethod,
    stake: Value,
    max_stake: Value,
    target_volatility: Value,
    kelly: Value,
}

fn v(x: f64) -> Value {
    Value::from_num(x)
}

impl Sizing {
    /// The settings of `[sizing]`, quantised once.
    pub fn new(c: &SizingConfig) -> Self {
        let edge = c.win_rate - (1.0 - c.win_rate) / c.payoff;
        let kelly = (c.kelly_fraction * edge).clamp(0.0, c.kelly_cap);
        Self {
            method: c.method,
            stake: v(c.stake),
            max_stake: v(c.max_stake),
            target_volatility: v(c.target_volatility),
            kelly: v(kelly),
        }
    }

    /// The stake in quote currency, in `0..=max_stake`. Zero means "do not trade" (a Kelly
    /// edge of zero or less, or a volatility method without a volatility yet).
    pub fn stake(&self, input: &SizingInput) -> Value {
        let one = Value::ONE;
        let stake = match self.method {
            SizingMethod::Fixed => self.stake,
            SizingMethod::Confidence => self.stake * input.confidence.clamp(Value::ZERO, one),
            SizingMethod::Volatility => match input.volatility {
                Some(vol) if vol > Value::ZERO => self.stake * self.target_volatility / vol,
                _ => Value::ZERO,
            },
            SizingMethod::Kelly => input.equity * self.kelly,
            SizingMethod::RiskParity => match input.volatility {
                Some(vol) if vol > Value::ZERO => {
                    let n = Value::from_num(input.open_positions + 1);
                    self.stake * self.target_volatility / (vol * flowcore_core::indicators::sqrt(n))
                }
                _ => Value::ZERO,
            },
        };
        stake.clamp(Value::ZERO, self.max_stake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(method: SizingMethod) -> Sizing {
        Sizing::new(&SizingConfig {
            method,
            stake: 100.0,
            max_stake: 400.0,
            target_volatility: 0.001,
            win_rate: 0.6,
            payoff: 2.0,
            kelly_fraction: 0.5,
            kelly_cap: 0.05,
            use_signal_size: false,
        })
    }

    fn input(confidence: f64, volatility: Option<f64>, open: u32) -> SizingInput {
        SizingInput {
            confidence: v(confidence),
            volatility: volatility.map(v),
            equity: v(10_000.0),
            open_positions: open,
        }
    }

    fn near(a: Value, b: f64) -> bool {
        (a.to_num::<f64>() - b).abs() < 1e-6
    }

    #[test]
    fn each_method_against_its_formula() {
        assert!(near(
            sizing(SizingMethod::Fixed).stake(&input(0.3, None, 0)),
            100.0
        ));
        assert!(near(
            sizing(SizingMethod::Confidence).stake(&input(0.8, None, 0)),
            80.0
        ));
        // Twice the target volatility: half the stake; a quarter: capped at max_stake.
        let vol = sizing(SizingMethod::Volatility);
        assert!(near(vol.stake(&input(1.0, Some(0.002), 0)), 50.0));
        assert!(near(vol.stake(&input(1.0, Some(0.00025), 0)), 400.0));
        assert!(near(vol.stake(&input(1.0, None, 0)), 0.0));
        // Kelly: 0.6 - 0.4 / 2 = 0.4, half of it 0.2, capped at 0.05 of 10,000.
        assert!(near(
            sizing(SizingMethod::Kelly).stake(&input(1.0, None, 0)),
            500.0_f64.min(400.0)
        ));
        // Risk parity: four positions with this one share the budget: 100 x 1 / sqrt(4).
        let rp = sizing(SizingMethod::RiskParity);
        assert!(near(rp.stake(&input(1.0, Some(0.001), 3)), 50.0));
    }

    #[test]
    fn kelly_without_an_edge_stakes_nothing() {
        let s = Sizing::new(&SizingConfig {
            method: SizingMethod::Kelly,
            stake: 100.0,
            max_stake: 400.0,
            target_volatility: 0.001,
            win_rate: 0.3,
            payoff: 1.0,
            kelly_fraction: 0.5,
            kelly_cap: 0.05,
            use_signal_size: false,
        });
        assert_eq!(s.stake(&input(1.0, None, 0)), Value::ZERO);
    }
}
