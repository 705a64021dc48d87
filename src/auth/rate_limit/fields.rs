//! The text of the IETF `RateLimit-Policy` and `RateLimit` fields, written
//! by hand: they go out with every key-authenticated response.
//!
//! A value is built right to left in a stack buffer (the numbers' digits
//! two at a time, no length computed first) and handed to `HeaderValue`
//! without its byte-by-byte check, which was the larger part of the cost:
//! every byte it holds is one of the visible-ASCII literals below (checked
//! when compiling) or a decimal digit, so the check could never fail.

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;

/// Bytes that may stand in a header value as they are: visible ASCII
/// (0x21..=0x7e) and the space. Only made from the checked constants below.
pub(super) struct Literal(&'static [u8]);

const fn is_visible_ascii(bytes: &[u8]) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] < b' ' || bytes[at] > b'~' {
            return false;
        }
        at += 1;
    }
    true
}

macro_rules! literal {
    ($name:ident = $text:expr) => {
        pub(super) const $name: Literal = {
            assert!(is_visible_ascii($text));
            Literal($text)
        };
    };
}

literal!(HOURLY_REMAINING = b"\"hourly\";r=");
literal!(RESET = b";t=");
literal!(HOURLY_QUOTA = b"\"hourly\";q=");
literal!(WINDOW = b";w=3600");

/// "00", "01", ... "99": two digits per division.
static PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// A field value built from its end. The longest (two 20-digit numbers and
/// the text around them, 54 bytes) fits.
pub(super) struct FieldText {
    bytes: [u8; 64],
    start: usize,
}

impl FieldText {
    pub(super) fn new() -> Self {
        Self {
            bytes: [0; 64],
            start: 64,
        }
    }

    /// Puts `literal` before what is written so far.
    pub(super) fn prepend(&mut self, literal: Literal) {
        let start = self.start - literal.0.len();
        self.bytes[start..self.start].copy_from_slice(literal.0);
        self.start = start;
    }

    /// Puts `value`'s decimal digits before what is written so far.
    pub(super) fn prepend_decimal(&mut self, value: u64) {
        let mut rest = value;
        let mut start = self.start;
        while rest >= 100 {
            let pair = (rest % 100) as usize * 2;
            rest /= 100;
            start -= 2;
            self.bytes[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if rest >= 10 {
            let pair = rest as usize * 2;
            start -= 2;
            self.bytes[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            self.bytes[start] = b'0' + rest as u8;
        }
        self.start = start;
    }

    pub(super) fn text(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// One allocation of the exact length, not checked again byte by byte.
    pub(super) fn value(&self) -> HeaderValue {
        let bytes = Bytes::copy_from_slice(self.text());
        debug_assert!(HeaderValue::from_maybe_shared(bytes.clone()).is_ok());
        // SAFETY: `from_maybe_shared_unchecked` requires bytes that are valid
        // in a header value (no control characters). The only ways to write
        // into a `FieldText` are `prepend`, whose `Literal`s are checked to
        // be visible ASCII when compiling, and `prepend_decimal`, which
        // writes ASCII digits. (The http crate checks anyway in debug builds;
        // the tests compare with the checked constructor.)
        unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn state(remaining: u64, reset: u64) -> FieldText {
        let mut text = FieldText::new();
        text.prepend_decimal(reset);
        text.prepend(RESET);
        text.prepend_decimal(remaining);
        text.prepend(HOURLY_REMAINING);
        text
    }

    #[test]
    fn every_number_of_up_to_three_digits_is_written_as_display_writes_it() {
        for n in 0..1000u64 {
            let mut text = FieldText::new();
            text.prepend_decimal(n);
            assert_eq!(text.text(), n.to_string().as_bytes());
        }
    }

    proptest! {
        #[test]
        fn a_field_value_is_the_checked_value_of_the_same_text(remaining in any::<u64>(), reset in any::<u64>()) {
            let text = state(remaining, reset);
            let expected = format!("\"hourly\";r={remaining};t={reset}");
            prop_assert_eq!(text.text(), expected.as_bytes());
            prop_assert_eq!(text.value(), HeaderValue::from_bytes(expected.as_bytes()).unwrap());
        }
    }

    #[test]
    fn the_longest_value_fits() {
        let text = state(u64::MAX, u64::MAX);
        assert_eq!(text.text().len(), 11 + 20 + 3 + 20);
    }
}
