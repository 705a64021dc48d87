//! How a logged value stays inside its line and its field: control and
//! line-breaking characters are escaped, and a value holding spaces,
//! quotes or `=` is quoted (`LeanFormat` and the direct auth line).

use std::fmt::{self, Write as _};

use crate::core::words::{any_word, HIGHS, ONES};

/// Characters that could end or fake a line in a terminal or a log viewer.
fn is_line_breaking(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Per byte: 1 when a value holding it is quoted (space, control, `"`,
/// `=`), 2 when the char-wise check decides (DEL and non-ASCII).
static QUOTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = if b >= 0x7f {
            2
        } else if b <= b' ' as usize || b == b'"' as usize || b == b'=' as usize {
            1
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Whether one of the eight bytes of `word` may be one that `QUOTE_CLASS`
/// marks: never a false "no"; a "yes" goes to the byte-by-byte check.
fn word_may_need_quotes(word: u64) -> bool {
    // Below 0x21, `"`, `=` or DEL: one test of the combined borrows; a byte
    // of 0x80 or more (non-ASCII) sets its high bit by itself.
    let below_or_space = word.wrapping_sub(ONES * 0x21);
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let equals = (word ^ (ONES * u64::from(b'='))).wrapping_sub(ONES);
    let delete = (word ^ (ONES * 0x7f)).wrapping_sub(ONES);
    (below_or_space | quote | equals | delete) & !word & HIGHS != 0 || word & HIGHS != 0
}

fn needs_quotes(value: &str) -> bool {
    // The common case (ids, addresses, paths): eight bytes at a time.
    if !any_word(value.as_bytes(), word_may_need_quotes) {
        return value.is_empty();
    }
    let class = value
        .bytes()
        .fold(0u8, |class, b| class | QUOTE_CLASS[usize::from(b)]);
    if class & 2 != 0 {
        return value
            .chars()
            .any(|c| c <= ' ' || c == '"' || c == '=' || is_line_breaking(c));
    }
    class != 0
}

/// Whether `text` is ASCII without control characters (nothing to escape).
fn is_plain_ascii(text: &str) -> bool {
    text.bytes()
        .fold(true, |plain, b| plain & (b' '..0x7f).contains(&b))
}

/// Appends `text` with every line-breaking character escaped.
pub(super) fn push_escaped(out: &mut String, text: &str) {
    if is_plain_ascii(text) {
        out.push_str(text);
        return;
    }
    let mut plain_from = 0;
    for (at, c) in text.char_indices() {
        if !is_line_breaking(c) {
            continue;
        }
        out.push_str(&text[plain_from..at]);
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(other));
            }
        }
        plain_from = at + c.len_utf8();
    }
    out.push_str(&text[plain_from..]);
}

/// `fmt::Write` that escapes what passes through (for `?message` values).
pub(super) struct Escaping<'a>(pub(super) &'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        push_escaped(self.0, text);
        Ok(())
    }
}

/// Appends a field's value, quoted if it needs it.
pub(super) fn push_value(out: &mut String, value: &str) {
    if needs_quotes(value) {
        // `Debug` of a string quotes it and escapes every control character.
        let _ = write!(out, "{value:?}");
    } else {
        out.push_str(value);
    }
}

/// `push_value` for a line built as bytes: the word check inlined into the
/// caller, anything doubtful (or empty) decided out of line.
#[inline]
pub(super) fn push_value_bytes(out: &mut Vec<u8>, value: &str) {
    if value.is_empty() || any_word(value.as_bytes(), word_may_need_quotes) {
        push_doubtful_value(out, value);
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

#[inline(never)]
fn push_doubtful_value(out: &mut Vec<u8>, value: &str) {
    if needs_quotes(value) {
        use std::io::Write as _;
        let _ = write!(out, "{value:?}");
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    /// The rule `needs_quotes` implements, char by char.
    fn needs(value: &str) -> bool {
        value.is_empty()
            || value
                .chars()
                .any(|c| c <= ' ' || c == '"' || c == '=' || super::is_line_breaking(c))
    }

    proptest::proptest! {
        #[test]
        fn any_value_is_quoted_exactly_when_the_char_rule_says(value in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(super::needs_quotes(&value), needs(&value));
        }
    }

    #[test]
    fn values_are_quoted_exactly_when_a_byte_or_char_needs_it() {
        let specials = [
            " ", "\t", "\n", "\"", "=", "\u{7f}", "\u{85}", "\u{2028}", "é", "\0", "!", "~",
        ];
        for len in 0..20 {
            for at in 0..len.max(1) {
                for special in specials {
                    let mut value: String = "a".repeat(len);
                    if len > 0 {
                        value.replace_range(at..at + 1, special);
                    }
                    assert_eq!(super::needs_quotes(&value), needs(&value), "{value:?}");
                }
            }
        }
    }
}
