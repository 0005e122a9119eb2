//! Eight bytes at a time: the word tricks shared by the JSON scanner and the fast path.
//!
//! A word is eight message bytes loaded little-endian. Loads are bounds checked (`None` near
//! the end of the buffer, where callers go on byte by byte).

/// The eight bytes at `buf[at..at + 8]`.
#[inline]
pub(crate) fn load(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Where the first `"`, `\\` or control byte (< 0x20) of a word is, if it holds one.
///
/// The per-byte tests below can also flag a byte just above a real match (a borrow carries
/// upwards), never one below the first: the lowest flag is exact, so a string scan goes
/// straight to the byte that ends or escapes it, where it stepped there a byte at a time.
#[inline]
pub(crate) const fn first_special(word: u64) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * b'"' as u64);
    let backslash = word ^ (ONES * b'\\' as u64);
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let flags = (quote.wrapping_sub(ONES) & !quote & HIGH)
        | (backslash.wrapping_sub(ONES) & !backslash & HIGH)
        | control;
    if flags == 0 {
        None
    } else {
        Some((flags.trailing_zeros() / 8) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_special(b: u8) -> bool {
        b == b'"' || b == b'\\' || b < 0x20
    }

    /// The first special byte, one at a time.
    fn scan(word: u64) -> Option<usize> {
        word.to_le_bytes().iter().position(|&b| is_special(b))
    }

    #[test]
    fn the_first_special_byte_is_found_whatever_follows_it() {
        // Every byte value at every place, behind plain bytes and before bytes that borrow
        // (0x00, 0x01, 0x21 and 0x23 sit next to what is looked for).
        for b in 0..=255u8 {
            for at in 0..8 {
                for after in [0x00, 0x01, 0x21, 0x23, b'"', b'\\', 0x5d, 0xff] {
                    let mut bytes = [after; 8];
                    bytes[..at].copy_from_slice(&b"abcdefgh"[..at]);
                    bytes[at] = b;
                    let word = u64::from_le_bytes(bytes);
                    assert_eq!(first_special(word), scan(word), "{bytes:x?}");
                }
            }
        }
        assert_eq!(first_special(u64::from_le_bytes(*b"btcusdt@")), None);
        assert_eq!(first_special(u64::from_le_bytes(*b"BTCUSDT\"")), Some(7));
        assert_eq!(load(b"0123456", 0), None);
        assert_eq!(load(b"01234567", 0), Some(u64::from_le_bytes(*b"01234567")));
    }

    proptest! {
        #[test]
        fn any_word_is_read_as_a_byte_scan_reads_it(word in any::<u64>()) {
            prop_assert_eq!(first_special(word), scan(word));
        }

        #[test]
        fn words_of_near_misses_are_read_as_a_byte_scan_reads_them(
            bytes in proptest::array::uniform8(prop_oneof![
                Just(0x1fu8), Just(0x20), Just(0x21), Just(b'"'), Just(b'#'),
                Just(b'['), Just(b'\\'), Just(b']'), Just(0x00), Just(0x80), Just(0xa2),
            ])
        ) {
            let word = u64::from_le_bytes(bytes);
            prop_assert_eq!(first_special(word), scan(word));
        }
    }
}
