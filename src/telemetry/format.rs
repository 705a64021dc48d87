//! A lean line format: `2026-11-27T18:12:22.123456Z  INFO target: message
//! key=value ...`. It writes string fields and the timestamp without the
//! formatting machinery, which made the default format a fifth of the cost
//! of an authenticated request.

use std::fmt::{self, Write as _};

use chrono::{Datelike, Timelike, Utc};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct LeanFormat;

/// Appends `value` in `width` digits, zero-padded.
fn push_number(out: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    // Char by char: cheaper than checking the digits are UTF-8.
    for &digit in &digits[..width] {
        out.push(char::from(digit));
    }
}

/// A line buffer grown past this is freed after its line.
pub(super) const MAX_KEPT_LINE: usize = 16 * 1024;

thread_local! {
    /// The formatted date and time of the last whole second seen here.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    /// The line being formatted: built here with plain `String` appends,
    /// then handed to the subscriber's writer in one call.
    pub(super) static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

pub(super) fn write_timestamp(out: &mut String) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            let now = Utc::now();
            cached.0 = seconds;
            cached.1 = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                now.year(),
                now.month(),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
        }
        out.push_str(&cached.1);
    });
    out.push('.');
    push_number(out, since_epoch.subsec_micros(), 6);
    out.push('Z');
}

pub(super) fn level_label(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Writes the message first, then `name=value` pairs. Control characters
/// in any of them are written as escapes, and a value that needs it is
/// quoted, so no logged value (a command's stderr, a path, a user name) can
/// end the line, forge another one or add a field.
struct LeanVisitor<'a> {
    out: &'a mut String,
}

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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `word` may be one that `QUOTE_CLASS`
/// marks: never a false "no"; a "yes" goes to the byte-by-byte check.
fn word_may_need_quotes(word: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let below_or_space = word.wrapping_sub(ONES * 0x21) & !word & HIGHS != 0;
    below_or_space
        || word & HIGHS != 0
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'=')))
        || has_zero(word ^ (ONES * 0x7f))
}

fn needs_quotes(value: &str) -> bool {
    // The common case (ids, addresses, paths): eight bytes at a time, the
    // rest through a table.
    let mut words = value.as_bytes().chunks_exact(8);
    let plain_words = words.by_ref().all(|word| {
        !word_may_need_quotes(u64::from_le_bytes(
            word.try_into().expect("chunks of eight"),
        ))
    });
    if plain_words
        && words
            .remainder()
            .iter()
            .all(|&b| QUOTE_CLASS[usize::from(b)] == 0)
    {
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
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        push_escaped(self.0, text);
        Ok(())
    }
}

/// Appends ` name=value`, the value quoted if it needs it.
fn push_field(out: &mut String, name: &str, value: &str) {
    push_field_start(out, name);
    push_value(out, value);
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

fn push_field_start(out: &mut String, name: &str) {
    out.push(' ');
    out.push_str(name);
    out.push('=');
}

impl LeanVisitor<'_> {
    fn field_text(&mut self, field: &Field, value: &str) {
        push_field(self.out, field.name(), value);
    }

    fn field_plain(&mut self, field: &Field, value: impl fmt::Display) {
        push_field_start(self.out, field.name());
        let _ = write!(self.out, "{value}");
    }
}

impl Visit for LeanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.out.push(' ');
            push_escaped(self.out, value);
        } else {
            self.field_text(field, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field_plain(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field_plain(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field_plain(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(Escaping(self.out), " {value:?}");
        } else {
            // `%value` and `?value` fields: their text is only known once
            // formatted, and then is treated like any other string.
            let text = format!("{value:?}");
            self.field_text(field, &text);
        }
    }
}

/// Formats `event` as one line into `line`.
fn format_line(line: &mut String, event: &Event<'_>) {
    let metadata = event.metadata();
    write_timestamp(line);
    line.push(' ');
    line.push_str(level_label(metadata.level()));
    line.push(' ');
    line.push_str(metadata.target());
    line.push(':');
    event.record(&mut LeanVisitor { out: line });
    line.push('\n');
}

impl<S, N> FormatEvent<S, N> for LeanFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut out: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                format_line(&mut line, event);
                let written = out.write_str(&line);
                if line.capacity() > MAX_KEPT_LINE {
                    // A rare huge line (a command's output) is not kept.
                    *line = String::new();
                }
                written
            }
            // An event logged while formatting another (from a `Debug`
            // impl): a line of its own.
            Err(_) => {
                let mut line = String::new();
                format_line(&mut line, event);
                out.write_str(&line)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::LeanFormat;

    const FORGED: &str =
        "oops\n2026-11-28T00:00:00.000000Z  INFO portico::auth: authentication attempt outcome=allowed\r\u{2028}";

    /// The lines `log` writes through the lean format.
    fn logged(log: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LeanFormat)
            .with_writer(move || WriterTo(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct WriterTo(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for WriterTo {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn assert_one_line(text: &str) {
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(text.ends_with('\n'));
        assert!(
            !text.contains('\r') && !text.contains('\u{2028}'),
            "{text:?}"
        );
        assert!(text.contains("oops\\n2026-11-28T00:00:00"), "{text:?}");
    }

    #[test]
    fn a_value_holding_a_newline_and_a_fake_line_is_logged_as_one_line() {
        let path = std::path::PathBuf::from(FORGED);
        assert_one_line(&logged(
            || tracing::warn!(error = %FORGED, "the question failed"),
        ));
        assert_one_line(&logged(|| tracing::warn!(error = FORGED, "x")));
        assert_one_line(&logged(|| tracing::warn!(path = %path.display(), "x")));
        assert_one_line(&logged(|| tracing::warn!("the command said {FORGED}")));
        assert_one_line(&logged(|| tracing::warn!(message = FORGED)));
    }

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

    #[test]
    fn a_logged_value_cannot_add_a_field() {
        let text = logged(|| tracing::info!(user = %"eve outcome=allowed", "x"));
        assert!(text.contains(r#"user="eve outcome=allowed""#), "{text}");
        let plain = logged(|| tracing::info!(client = "127.0.0.1", count = 3u64, "x"));
        assert!(plain.contains(" x client=127.0.0.1 count=3\n"), "{plain}");
    }
}
