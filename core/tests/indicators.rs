//! The incremental indicators against plain recomputations in `f64`: at every step the
//! reference starts again from the whole series so far (two-pass means and variances,
//! the regression from its textbook formula), so it shares no state or arithmetic with
//! the O(1) code under test.

use flowcore_core::indicators::{sqrt, Ema, Macd, Rolling, RollingExtreme, Rsi, Value};
use proptest::prelude::*;

fn ema_ref(xs: &[f64], n: usize) -> Option<f64> {
    if xs.len() < n {
        return None;
    }
    let alpha = 2.0 / (n as f64 + 1.0);
    let mut e = xs[..n].iter().sum::<f64>() / n as f64;
    for &x in &xs[n..] {
        e += alpha * (x - e);
    }
    Some(e)
}

fn rsi_ref(xs: &[f64], n: usize) -> Option<f64> {
    let changes: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    if changes.len() < n {
        return None;
    }
    let gains = |c: &[f64]| c.iter().map(|&d| d.max(0.0)).sum::<f64>();
    let losses = |c: &[f64]| c.iter().map(|&d| (-d).max(0.0)).sum::<f64>();
    let mut g = gains(&changes[..n]) / n as f64;
    let mut l = losses(&changes[..n]) / n as f64;
    for &d in &changes[n..] {
        g = (g * (n as f64 - 1.0) + d.max(0.0)) / n as f64;
        l = (l * (n as f64 - 1.0) + (-d).max(0.0)) / n as f64;
    }
    Some(if g + l == 0.0 {
        50.0
    } else {
        100.0 * g / (g + l)
    })
}

fn macd_ref(xs: &[f64], fast: usize, slow: usize, signal: usize) -> Option<(f64, f64)> {
    let lines: Vec<f64> = (slow..=xs.len())
        .map(|k| ema_ref(&xs[..k], fast).unwrap() - ema_ref(&xs[..k], slow).unwrap())
        .collect();
    Some((*lines.last()?, ema_ref(&lines, signal)?))
}

/// (mean, std_dev, z_score, slope) of the last `n` values.
fn rolling_ref(xs: &[f64], n: usize) -> Option<(f64, f64, f64, f64)> {
    if xs.len() < n {
        return None;
    }
    let w = &xs[xs.len() - n..];
    let mean = w.iter().sum::<f64>() / n as f64;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let std = var.sqrt();
    let z = if std == 0.0 {
        0.0
    } else {
        (w[n - 1] - mean) / std
    };
    let i_mean = (n as f64 - 1.0) / 2.0;
    let cov: f64 = w
        .iter()
        .enumerate()
        .map(|(i, x)| (i as f64 - i_mean) * (x - mean))
        .sum();
    let var_i: f64 = (0..n).map(|i| (i as f64 - i_mean).powi(2)).sum();
    Some((mean, std, z, cov / var_i))
}

fn close(got: Value, want: f64, scale: f64, what: &str) {
    let got: f64 = got.to_num();
    let tolerance = 1e-7 * scale.max(1.0);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want} (tolerance {tolerance})"
    );
}

/// A price path of mantissas: a start and steps, some of them zero (flat seconds).
fn prices() -> impl Strategy<Value = Vec<i64>> {
    (
        1_000_000i64..10_000_000,
        prop::collection::vec(-500i64..=500, 1..160),
    )
        .prop_map(|(start, steps)| {
            steps
                .iter()
                .scan(start, |p, s| {
                    *p += if s % 3 == 0 { 0 } else { *s };
                    Some(*p)
                })
                .collect()
        })
}

proptest! {
    #[test]
    fn ema_rsi_macd_match_a_recomputation(xs in prices(), n in 1usize..30) {
        let mut ema = Ema::new(n).unwrap();
        let mut rsi = Rsi::new(n).unwrap();
        let mut macd = Macd::new(n, n + 7, 5).unwrap();
        let mut seen = Vec::new();
        for &x in &xs {
            seen.push(x as f64);
            let v = Value::from_num(x);
            let scale = x as f64;
            match (ema.push(v), ema_ref(&seen, n)) {
                (Some(got), Some(want)) => close(got, want, scale, "ema"),
                (got, want) => prop_assert_eq!(got.is_some(), want.is_some(), "ema warm-up"),
            }
            match (rsi.push(v), rsi_ref(&seen, n)) {
                (Some(got), Some(want)) => close(got, want, 100.0, "rsi"),
                (got, want) => prop_assert_eq!(got.is_some(), want.is_some(), "rsi warm-up"),
            }
            match (macd.push(v), macd_ref(&seen, n, n + 7, 5)) {
                (Some(got), Some((line, signal))) => {
                    close(got.line, line, scale, "macd line");
                    close(got.signal, signal, scale, "macd signal");
                    prop_assert_eq!(got.histogram, got.line - got.signal);
                }
                (got, want) => prop_assert_eq!(got.is_some(), want.is_some(), "macd warm-up"),
            }
        }
    }

    #[test]
    fn rolling_statistics_match_a_recomputation(xs in prices(), n in 2usize..40) {
        let mut rolling = Rolling::new(n).unwrap();
        let mut seen = Vec::new();
        for &x in &xs {
            seen.push(x as f64);
            match (rolling.push(i128::from(x)), rolling_ref(&seen, n)) {
                (Some(got), Some((mean, std, z, slope))) => {
                    close(got.mean, mean, x as f64, "mean");
                    close(got.std_dev, std, x as f64, "std_dev");
                    close(got.z_score, z, 1.0, "z_score");
                    close(got.slope, slope, 1.0, "slope");
                }
                (got, want) => prop_assert_eq!(got.is_some(), want.is_some(), "warm-up"),
            }
        }
    }

    #[test]
    fn rolling_extremes_match_a_scan_of_the_window(xs in prices(), n in 1usize..40) {
        let (mut max, mut min) = (RollingExtreme::max(n).unwrap(), RollingExtreme::min(n).unwrap());
        for (i, &x) in xs.iter().enumerate() {
            max.push(i128::from(x));
            min.push(i128::from(x));
            let window = &xs[(i + 1).saturating_sub(n)..=i];
            let full = i + 1 >= n;
            prop_assert_eq!(max.value(), full.then(|| i128::from(*window.iter().max().unwrap())));
            prop_assert_eq!(min.value(), full.then(|| i128::from(*window.iter().min().unwrap())));
        }
    }

    #[test]
    fn sqrt_matches_f64_within_its_last_bits(x in 0.0f64..1e12) {
        let got = sqrt(Value::from_num(x));
        close(got, Value::from_num(x).to_num::<f64>().sqrt(), 1.0, "sqrt");
        prop_assert!(got * got <= Value::from_num(x) + Value::from_num(1e-6));
    }
}

#[test]
fn a_flat_window_has_no_spread_and_a_zero_z_score() {
    let mut rolling = Rolling::new(3).unwrap();
    let stats = [5, 5, 5].map(|x| rolling.push(x)).last().unwrap().unwrap();
    assert_eq!(
        (stats.std_dev, stats.z_score, stats.slope),
        (Value::ZERO, Value::ZERO, Value::ZERO)
    );
}

#[test]
fn a_rising_market_has_an_rsi_of_100_and_a_falling_one_0() {
    let mut up = Rsi::new(3).unwrap();
    let mut down = Rsi::new(3).unwrap();
    let mut last = (None, None);
    for i in 0..10 {
        last = (up.push(Value::from_num(i)), down.push(Value::from_num(-i)));
    }
    assert_eq!(last, (Some(Value::from_num(100)), Some(Value::ZERO)));
}

#[test]
fn bad_periods_are_refused() {
    assert!(Ema::new(0).is_err() && Rsi::new(0).is_err() && Rolling::new(1).is_err());
    assert!(Macd::new(26, 12, 9).is_err());
}
