//! A quoted decimal (or an unquoted integer) read at the shape the same field had last
//! time.
//!
//! Exchanges send one shape per field: `"61737.63000000"` is followed by a price of 14 bytes
//! with the point at 5, again and again. A field remembers its last value's shape (length,
//! point, the instrument's scale) with the byte shuffle that turns such a value into its
//! mantissa. The next value is checked against that shape in one compare of sixteen bytes
//! and converted by the shuffle and three multiply-adds; the cursor moves by the remembered
//! length. Nothing the next field's read waits on comes out of this value's bytes (the check
//! is a branch, predicted), which is what sank the word readers that found the length in
//! the bytes (see `Cursor::decimal_plain`).
//!
//! A value of another shape is read by the caller's loops, and its shape remembered. The
//! Binance parser keeps a shape per decimal field and instrument (book ticker bid/ask
//! price/size, level price/size a side, trade price/size: symbols sharing a connection
//! differ in length) and per integer field (times, ids; `binance::shape`); on the BTC set
//! 96% of the 2.1 M decimals match their field's last shape.
//!
//! Measured (2026-12-07, whole one-thread replay of the BTC set, best of 11, alternated):
//! 72.8 ms against 80.3 ms for the same build without it (and 79.4 for the build before the
//! x86-64-v2 flag); cachegrind 817 M against 938 M instructions. An earlier version whose
//! fallback was inlined into every call site (so the shaped read was not inlined) took
//! 855 M.

/// One field's last shape. `len == 0`: none yet.
///
/// The byte masks a read checks against are kept with it, not derived from `len` and
/// `point` at each read: shifts by a variable amount cost a few instructions each on
/// x86-64-v2 (no BMI2), and a read did five. A one-thread replay of the BTC set went from
/// 725.6 M to 690.7 M instructions (2026-12-07).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shape {
    len: u8,
    scale: u8,
    /// Bytes `0..len`: the value's.
    in_text: u16,
    /// The value's bytes but the point: digits.
    digit_bits: u16,
    /// The point's byte (none for an integer).
    point_bit: u16,
    /// The byte after the value (its closing quote, when quoted).
    end_bit: u16,
    /// Fraction digits past the scale, which must be zeros (none in most shapes).
    past_scale: u16,
    #[cfg(target_arch = "x86_64")]
    shuffle: [u8; 16],
}

impl Shape {
    /// Whether this build reads values by their shape: with SSSE3 and SSE4.1 enabled (the
    /// workspace builds for x86-64-v2, `.cargo/config.toml`). Otherwise every value takes
    /// the caller's loops and no shape is kept.
    pub(crate) const READS: bool = cfg!(all(
        target_arch = "x86_64",
        target_feature = "ssse3",
        target_feature = "sse4.1"
    ));

    /// The shape of `text` (a value's bytes between its quotes) at `scale`, when the word
    /// reader can take it: digits, optionally one `.` with digits on both sides, at most 15
    /// bytes, integer digits plus `scale` at most 16.
    pub(crate) fn of(text: &[u8], scale: u8) -> Option<Self> {
        let len = text.len();
        if len == 0 || len > 15 {
            return None;
        }
        let point = text.iter().position(|&b| b == b'.').unwrap_or(len);
        let digits_ok = text
            .iter()
            .enumerate()
            .all(|(i, b)| i == point || b.is_ascii_digit());
        if !digits_ok || point == 0 || point + 1 == len || point + scale as usize > 16 {
            return None;
        }
        let mut shuffle = [0x80u8; 16];
        // Byte j of the number is the digit of place 10^(15 - j): in the fraction at
        // t = j + point + scale - 15 (t > point), one before in the integer part.
        for (j, s) in shuffle.iter_mut().enumerate() {
            let t = j as isize + point as isize + scale as isize - 15;
            let from = if t > point as isize { t } else { t - 1 };
            if (0..len as isize).contains(&from) {
                *s = from as u8;
            }
        }
        let in_text = (1u16 << len) - 1;
        let point_bit = (1u16 << point) & in_text;
        // Below 16 here: `point + scale <= 16` and a fraction has a digit after the point.
        let scale_end = (point + 1 + scale as usize).min(16) as u32;
        Some(Self {
            len: len as u8,
            scale,
            in_text,
            digit_bits: in_text & !point_bit,
            point_bit,
            end_bit: 1 << len,
            past_scale: in_text & !1u16.checked_shl(scale_end).map_or(u16::MAX, |b| b - 1),
            #[cfg(target_arch = "x86_64")]
            shuffle,
        })
    }

    /// The value's length between its quotes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The mantissa of the value whose sixteen bytes after the opening quote are `word`
    /// (zeros past the message's end), when it has this shape at `scale`.
    #[inline]
    pub(crate) fn read(&self, word: &[u8; 16], scale: u8) -> Option<i64> {
        if self.scale != scale {
            return None;
        }
        self.read_as::<true>(word)
    }

    /// The unquoted integer (`"u":50093239212,`) whose sixteen bytes from its first digit
    /// are `word`, when it has this shape (learnt at scale 0) and ends with `,` `}` or `]`.
    #[inline]
    pub(crate) fn read_integer(&self, word: &[u8; 16]) -> Option<u64> {
        if self.scale != 0 || self.point_bit != 0 {
            return None;
        }
        self.read_as::<false>(word).map(|v| v as u64)
    }

    #[inline]
    fn read_as<const QUOTED: bool>(&self, word: &[u8; 16]) -> Option<i64> {
        if self.len == 0 {
            return None;
        }
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "ssse3",
            target_feature = "sse4.1"
        ))]
        {
            #[allow(unsafe_code)]
            // SAFETY: the build enables SSSE3 and SSE4.1 (cfg above): the CPU running this
            // has them.
            return unsafe { sse::read::<QUOTED>(self, word) };
        }
        #[allow(unreachable_code)]
        {
            let _ = word;
            None
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse {
    use super::Shape;
    use std::arch::x86_64::*;

    #[target_feature(enable = "sse2,ssse3,sse4.1")]
    #[inline]
    pub(super) fn read<const QUOTED: bool>(shape: &Shape, word: &[u8; 16]) -> Option<i64> {
        let [lo, hi] = [0, 8].map(|at| {
            let half: [u8; 8] = word[at..at + 8].try_into().expect("eight bytes");
            i64::from_le_bytes(half)
        });
        let bytes = _mm_set_epi64x(hi, lo);
        let mask = |v: __m128i| _mm_movemask_epi8(v) as u32;
        let values = _mm_sub_epi8(bytes, _mm_set1_epi8(b'0' as i8));
        let digits = mask(_mm_cmpeq_epi8(
            _mm_min_epu8(values, _mm_set1_epi8(9)),
            values,
        ));
        let quotes = mask(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8)));
        let points = mask(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'.' as i8)));
        let in_text = u32::from(shape.in_text);
        let ends = if QUOTED {
            quotes & u32::from(shape.end_bit) != 0
        } else {
            matches!(word[shape.len as usize], b',' | b'}' | b']')
        };
        let same = digits & in_text == u32::from(shape.digit_bits)
            && ends
            && points & in_text == u32::from(shape.point_bit);
        if !same {
            return None;
        }
        if shape.past_scale != 0 {
            // Digits past the scale must be zeros: never rounded.
            let zeros = mask(_mm_cmpeq_epi8(values, _mm_setzero_si128()));
            if u32::from(shape.past_scale) & !zeros != 0 {
                return None;
            }
        }
        let control = _mm_set_epi64x(
            i64::from_le_bytes(shape.shuffle[8..].try_into().expect("eight bytes")),
            i64::from_le_bytes(shape.shuffle[..8].try_into().expect("eight bytes")),
        );
        let placed = _mm_shuffle_epi8(values, control);
        let pairs = _mm_maddubs_epi16(placed, _mm_set1_epi16(0x010A));
        let fours = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
        let fours = _mm_packus_epi32(fours, fours);
        let eights = _mm_madd_epi16(fours, _mm_set1_epi32(0x0001_2710));
        let both = _mm_cvtsi128_si64(eights) as u64;
        Some(((both & 0xFFFF_FFFF) * 100_000_000 + (both >> 32)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcore_core::decimal::parse_mantissa;
    use proptest::prelude::*;

    /// The sixteen bytes after an opening quote: `text`, its closing quote, then `tail`.
    fn word(text: &str, tail: &[u8]) -> [u8; 16] {
        let mut bytes = format!("{text}\"").into_bytes();
        bytes.extend_from_slice(tail);
        let mut w = [0u8; 16];
        let n = bytes.len().min(16);
        w[..n].copy_from_slice(&bytes[..n]);
        w
    }

    fn mantissa(text: &str, scale: u8) -> Option<i64> {
        parse_mantissa(text.as_bytes(), scale)
            .ok()
            .filter(|&v| v >= 0)
    }

    #[test]
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "ssse3",
        target_feature = "sse4.1"
    ))]
    fn a_value_of_the_last_shape_is_read_by_it() {
        // Spot BTC as Binance sends it (prices at scale 2, sizes at 5).
        let price = Shape::of(b"61737.63000000", 2).unwrap();
        assert_eq!(
            price.read(&word("61837.64000000", b","), 2),
            Some(6_183_764)
        );
        assert_eq!(
            price.read(&word("61837.64000000", b","), 3),
            None,
            "another scale"
        );
        assert_eq!(
            price.read(&word("61837.65000001", b","), 2),
            None,
            "past the scale"
        );
        assert_eq!(
            price.read(&word("6183.764000000", b","), 2),
            None,
            "point moved"
        );
        assert_eq!(price.read(&word("61837.6400000", b","), 2), None, "shorter");
        let size = Shape::of(b"0.00000000", 5).unwrap();
        assert_eq!(size.read(&word("1.54698000", b"]"), 5), Some(154_698));
        let id = Shape::of(b"5123107839020", 0).unwrap();
        assert_eq!(
            id.read_integer(b"5123107839021,\"s"),
            Some(5_123_107_839_021)
        );
        assert_eq!(
            id.read_integer(b"5123107839021}}\0"),
            Some(5_123_107_839_021)
        );
        assert_eq!(
            id.read_integer(b"5123107839021\"s\0"),
            None,
            "not an integer's end"
        );
        assert_eq!(id.read_integer(b"51231078390211,s"), None, "longer");
        assert_eq!(
            price.read_integer(b"61737.63000000,\0"),
            None,
            "a decimal's shape"
        );
        let whole = Shape::of(b"12", 3).unwrap();
        assert_eq!(whole.read(&word("45", b""), 3), Some(45_000));
        assert_eq!(whole.read(&word("4.", b""), 3), None);
    }

    #[test]
    fn shapes_the_word_cannot_take_are_none() {
        for (text, scale) in [("", 2), (".5", 2), ("5.", 2), ("1.2.3", 2), ("1e5", 2)] {
            assert!(Shape::of(text.as_bytes(), scale).is_none(), "{text:?}");
        }
        assert!(Shape::of(b"1234567890123456", 0).is_none(), "16 bytes");
        assert!(Shape::of(b"1.5", 16).is_none(), "17 digits kept");
        assert!(
            Shape::default().read(&word("1", b""), 0).is_none(),
            "no shape yet"
        );
    }

    proptest! {
        /// A shape learnt from one value never misreads another: what it reads is
        /// `parse_mantissa`'s value, whatever the bytes; and it reads every value of its
        /// own shape.
        #[test]
        fn a_shape_reads_exactly_or_not_at_all(
            first in "[0-9]{1,8}(\\.[0-9]{1,8})?",
            second in "[0-9]{1,8}(\\.[0-9]{1,8})?|[0-9.e-]{0,15}",
            scale in 0u8..=10,
            tail in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let Some(shape) = Shape::of(first.as_bytes(), scale) else {
                return Ok(());
            };
            let got = shape.read(&word(&second, &tail), scale);
            if let Some(v) = got {
                prop_assert_eq!(Some(v), mantissa(&second, scale), "{:?} as {:?}", second, first);
                prop_assert_eq!(second.len(), shape.len());
            }
            let same_shape = second.len() == first.len()
                && second.find('.') == first.find('.')
                && second.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if Shape::READS
                && same_shape
            {
                prop_assert_eq!(got, mantissa(&second, scale), "{:?} as {:?}", second, first);
            }
        }
    }
}
