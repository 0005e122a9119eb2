//! Exact decimal fixed point: an integer mantissa at a power-of-ten scale.
//!
//! Exchange prices and sizes arrive as decimal strings (`"61837.63000000"`, `"0.000"`,
//! `"65239"`). They are parsed straight into an `i64` mantissa at the instrument's scale,
//! never through `f64`: `"61837.63000000"` at scale 2 is `6183763`. Digits past the scale
//! are accepted only when they are zeros; anything else is an error, never rounded.
//! Sums and notionals are `i128` (see [`round_div_half_even`]); events carry `i64` only.

use core::fmt;

/// The largest scale an instrument may use: 10^18 still fits an `i64`.
pub const MAX_SCALE: u8 = 18;

/// Why a decimal string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Empty string, a lone sign or a lone point.
    #[error("empty decimal")]
    Empty,
    /// A byte that is not a digit, one sign, or one point (exponents are refused too).
    #[error("invalid byte {byte:#04x} at {at} in decimal")]
    InvalidByte {
        /// The offending byte.
        byte: u8,
        /// Its index in the input.
        at: usize,
    },
    /// A non-zero digit beyond the instrument's scale: rounding would lose information.
    #[error("non-zero digit beyond scale {scale}")]
    TooPrecise {
        /// The scale the value had to fit.
        scale: u8,
    },
    /// The mantissa does not fit an `i64`.
    #[error("decimal overflows i64 at scale {scale}")]
    Overflow {
        /// The scale the value had to fit.
        scale: u8,
    },
}

/// Powers of ten that fit an `i64`, indexed by exponent.
pub const POW10: [i64; 19] = {
    let mut table = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `10^exp` as `i128`, for sums and rescaling.
///
/// # Panics
/// If `exp > 38` (does not fit `i128`); callers pass scales bounded by [`MAX_SCALE`] sums.
#[inline]
pub const fn pow10_i128(exp: u32) -> i128 {
    10i128.pow(exp)
}

/// Parses a decimal string into a mantissa at `scale`.
///
/// # Errors
/// [`DecimalError`] for empty input, a byte other than digits, one leading `-`/`+` and one
/// `.`, a non-zero digit past `scale`, or a value that does not fit `i64`.
///
/// # Examples
/// ```
/// use flowcore_core::decimal::parse_mantissa;
/// assert_eq!(parse_mantissa(b"61837.63000000", 2), Ok(6_183_763));
/// assert_eq!(parse_mantissa(b"0.000", 3), Ok(0));
/// assert!(parse_mantissa(b"0.0015", 3).is_err());
/// ```
#[inline]
pub fn parse_mantissa(s: &[u8], scale: u8) -> Result<i64, DecimalError> {
    debug_assert!(scale <= MAX_SCALE);
    let (negative, digits_from) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        Some(_) => (false, 0),
        None => return Err(DecimalError::Empty),
    };
    // Accumulate as a negative number so that i64::MIN parses too.
    let mut acc: i64 = 0;
    let mut seen_digit = false;
    let mut frac_digits: u8 = 0;
    let mut in_frac = false;
    let overflow = DecimalError::Overflow { scale };
    let mut i = digits_from;
    while i < s.len() {
        let b = s[i];
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = (b - b'0') as i64;
                if in_frac {
                    if frac_digits == scale {
                        if d != 0 {
                            return Err(DecimalError::TooPrecise { scale });
                        }
                        i += 1;
                        continue;
                    }
                    frac_digits += 1;
                }
                acc = acc
                    .checked_mul(10)
                    .and_then(|v| v.checked_sub(d))
                    .ok_or(overflow)?;
            }
            b'.' if !in_frac => in_frac = true,
            _ => return Err(DecimalError::InvalidByte { byte: b, at: i }),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(DecimalError::Empty);
    }
    let pad = POW10[(scale - frac_digits) as usize];
    acc = acc.checked_mul(pad).ok_or(overflow)?;
    if negative {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or(overflow)
    }
}

/// Integer division rounded to nearest, ties to even. `den` must be non-zero.
///
/// # Examples
/// ```
/// use flowcore_core::decimal::round_div_half_even;
/// assert_eq!(round_div_half_even(5, 2), 2);
/// assert_eq!(round_div_half_even(7, 2), 4);
/// assert_eq!(round_div_half_even(-5, 2), -2);
/// assert_eq!(round_div_half_even(10, -4), -2);
/// ```
#[inline]
pub fn round_div_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den != 0);
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den); // 0 <= r < den
    match (2 * r).cmp(&den) {
        core::cmp::Ordering::Less => q,
        core::cmp::Ordering::Greater => q + 1,
        core::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Displays a mantissa at a scale with exactly `scale` fractional digits.
///
/// # Examples
/// ```
/// use flowcore_core::decimal::Fixed;
/// assert_eq!(Fixed::new(-150, 3).to_string(), "-0.150");
/// assert_eq!(Fixed::new(65239, 0).to_string(), "65239");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// The integer mantissa (`i128` so sums and notionals print too).
    pub mantissa: i128,
    /// Number of fractional digits.
    pub scale: u8,
}

impl Fixed {
    /// A value `mantissa * 10^-scale`.
    #[inline]
    pub const fn new(mantissa: i128, scale: u8) -> Self {
        Self { mantissa, scale }
    }
}

impl fmt::Display for Fixed {
    /// Like the other numbers' `Display` here, the formatter's width and precision are not
    /// applied.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.in_buffer(&mut [0; DIGITS_BUFFER]) {
            Some(text) => f.write_str(text),
            None => self.fmt_wide(f),
        }
    }
}

/// Room for a mantissa that fits `u64` (20 digits) at a scale up to 19: its sign, digits
/// (at least one before the point) and point.
const DIGITS_BUFFER: usize = 24;

impl Fixed {
    /// The text of a mantissa that fits `u64` at a scale up to 19 (every price, size and
    /// notional in the rows), written from its last digit into `buf`; `None` for others.
    /// Output rows print a dozen decimals each: through `write!`, with `u128` division and
    /// formatting, a decimal cost ~650 instructions (2026-12-07).
    #[inline]
    fn in_buffer<'b>(&self, buf: &'b mut [u8; DIGITS_BUFFER]) -> Option<&'b str> {
        let mut rest = u64::try_from(self.mantissa.unsigned_abs()).ok()?;
        let scale = usize::from(self.scale);
        if scale > 19 {
            return None;
        }
        let mut at = buf.len();
        let mut digits = 0;
        while rest > 0 || digits <= scale {
            if digits == scale && scale > 0 {
                at -= 1;
                buf[at] = b'.';
            }
            at -= 1;
            buf[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            digits += 1;
        }
        if self.mantissa < 0 {
            at -= 1;
            buf[at] = b'-';
        }
        std::str::from_utf8(&buf[at..]).ok()
    }

    /// Any mantissa, at a scale up to 38.
    fn fmt_wide(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = pow10_i128(self.scale as u32) as u128;
        let abs = self.mantissa.unsigned_abs();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        if self.scale == 0 {
            write!(f, "{sign}{abs}")
        } else {
            let width = self.scale as usize;
            write!(f, "{sign}{}.{:0width$}", abs / unit, abs % unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exchange_formats() {
        assert_eq!(parse_mantissa(b"61837.63000000", 2), Ok(6_183_763));
        assert_eq!(parse_mantissa(b"61800.20", 2), Ok(6_180_020));
        assert_eq!(parse_mantissa(b"65239", 0), Ok(65239));
        assert_eq!(parse_mantissa(b"0.00000043", 8), Ok(43));
        assert_eq!(parse_mantissa(b"0", 8), Ok(0));
        assert_eq!(parse_mantissa(b"0.000", 3), Ok(0));
        assert_eq!(parse_mantissa(b"-1.5", 3), Ok(-1500));
        assert_eq!(parse_mantissa(b"1.", 2), Ok(100));
        assert_eq!(parse_mantissa(b".5", 1), Ok(5));
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert_eq!(
            parse_mantissa(b"0.0015", 3),
            Err(DecimalError::TooPrecise { scale: 3 })
        );
        assert_eq!(parse_mantissa(b"", 3), Err(DecimalError::Empty));
        assert_eq!(parse_mantissa(b"-", 3), Err(DecimalError::Empty));
        assert_eq!(parse_mantissa(b".", 3), Err(DecimalError::Empty));
        assert!(matches!(
            parse_mantissa(b"1e5", 0),
            Err(DecimalError::InvalidByte { byte: b'e', at: 1 })
        ));
        assert!(parse_mantissa(b"1.2.3", 3).is_err());
        assert_eq!(
            parse_mantissa(b"92233720368547758080", 0),
            Err(DecimalError::Overflow { scale: 0 })
        );
        assert_eq!(
            parse_mantissa(b"9223372036854775807", 1),
            Err(DecimalError::Overflow { scale: 1 })
        );
        assert_eq!(parse_mantissa(b"-9223372036854775808", 0), Ok(i64::MIN));
    }

    /// The general path's text, for comparing the buffer's with.
    fn wide(x: Fixed) -> String {
        struct Wide(Fixed);
        impl fmt::Display for Wide {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt_wide(f)
            }
        }
        Wide(x).to_string()
    }

    #[test]
    fn the_buffer_and_the_general_path_print_alike_at_the_edges() {
        let max = i128::from(u64::MAX);
        for m in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            max,
            -max,
            max + 1,
            -max - 1,
            i128::MAX,
            i128::MIN + 1,
        ] {
            for scale in [0u8, 1, 2, 8, 18, 19, 20, 38] {
                let x = Fixed::new(m, scale);
                assert_eq!(x.to_string(), wide(x), "{m} at {scale}");
            }
        }
        assert_eq!(Fixed::new(-5, 3).to_string(), "-0.005");
        assert_eq!(Fixed::new(0, 2).to_string(), "0.00");
        assert_eq!(Fixed::new(-max, 19).to_string(), "-1.8446744073709551615");
        assert!(Fixed::new(max + 1, 2)
            .in_buffer(&mut [0; DIGITS_BUFFER])
            .is_none());
    }

    proptest! {
        #[test]
        fn the_buffer_prints_what_the_general_path_prints(m in any::<i128>(), wide_m in any::<bool>(), scale in 0u8..=24) {
            // Mostly mantissas that fit the buffer, some that do not.
            let m = if wide_m { m } else { m >> 64 };
            let x = Fixed::new(m, scale);
            prop_assert_eq!(x.to_string(), wide(x));
        }

        #[test]
        fn print_then_parse_is_identity(m in any::<i64>(), scale in 0u8..=18, zeros in 0usize..4) {
            let mut s = Fixed::new(m as i128, scale).to_string();
            if scale > 0 {
                s.extend(core::iter::repeat_n('0', zeros));
            }
            prop_assert_eq!(parse_mantissa(s.as_bytes(), scale), Ok(m));
        }

        #[test]
        fn half_even_matches_exact_rationals(n in -1_000_000i128..1_000_000, d in 1i128..1000) {
            let q = round_div_half_even(n, d);
            // |n/d - q| <= 1/2, and exactly 1/2 only when q is even.
            let twice_err = (2 * (n - q * d)).abs();
            prop_assert!(twice_err <= d);
            if twice_err == d { prop_assert_eq!(q & 1, 0); }
        }
    }
}
