//! Scanning text eight bytes at a time, for the checks that run on every
//! logged value and every JSON string of a response ("does this need
//! quoting / escaping?").

/// `0x01` in every byte.
pub const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether `test` holds for one of the eight-byte words that together
/// cover `bytes`. Every word is made only of bytes of `bytes` (the last
/// word overlaps the one before it; a short text fills its word with
/// repeats of its own bytes), so a test that answers "one of these eight
/// bytes is special" answers the same for the whole text, without a
/// byte-by-byte tail.
#[inline]
pub fn any_word(bytes: &[u8], test: impl Fn(u64) -> bool) -> bool {
    let len = bytes.len();
    if len >= 8 {
        let mut words = bytes.chunks_exact(8);
        words.by_ref().any(|word| test(read_word(word)))
            || (!words.remainder().is_empty() && test(read_word(&bytes[len - 8..])))
    } else if len >= 4 {
        let first = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"));
        let last = u32::from_le_bytes(bytes[len - 4..].try_into().expect("four bytes"));
        test(u64::from(first) | (u64::from(last) << 32))
    } else if len > 0 {
        let (first, middle, last) = (bytes[0], bytes[len / 2], bytes[len - 1]);
        let word = (u64::from(first) * (ONES & !0xff_ffff))
            | (u64::from(last) << 16)
            | (u64::from(middle) << 8)
            | u64::from(first);
        test(word)
    } else {
        false
    }
}

fn read_word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("eight bytes"))
}

/// Whether one of the bytes of `word` is zero (exact: no false "yes").
pub fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Whether some byte of the word is `b'!'`.
    fn has_bang(word: u64) -> bool {
        has_zero_byte(word ^ (ONES * u64::from(b'!')))
    }

    #[test]
    fn every_position_of_every_short_length_is_covered() {
        for len in 0..40 {
            assert!(!any_word(&vec![b'a'; len], has_bang));
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = b'!';
                assert!(any_word(&bytes, has_bang), "{len} {at}");
            }
        }
    }

    proptest! {
        #[test]
        fn a_byte_is_found_exactly_when_the_text_holds_it(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(any_word(&bytes, has_bang), bytes.contains(&b'!'));
            prop_assert_eq!(any_word(&bytes, has_zero_byte), bytes.contains(&0));
        }
    }
}
