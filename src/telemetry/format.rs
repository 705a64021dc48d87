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

fn push_number(out: &mut Writer<'_>, value: u32, width: usize) -> fmt::Result {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.write_str(std::str::from_utf8(&digits[..width]).expect("ASCII digits"))
}

thread_local! {
    /// The formatted date and time of the last whole second seen here.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

fn write_timestamp(out: &mut Writer<'_>) -> fmt::Result {
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
        out.write_str(&cached.1)
    })?;
    out.write_char('.')?;
    push_number(out, since_epoch.subsec_micros(), 6)?;
    out.write_char('Z')
}

fn level_label(level: &Level) -> &'static str {
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
struct LeanVisitor<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

/// Characters that could end or fake a line in a terminal or a log viewer.
fn is_line_breaking(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn needs_quotes(value: &str) -> bool {
    if value.is_ascii() {
        // Bytes, not chars: the common case (ids, addresses, paths) costs a
        // compare per byte.
        return value.is_empty()
            || value
                .bytes()
                .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == 0x7f);
    }
    value
        .chars()
        .any(|c| c <= ' ' || c == '"' || c == '=' || is_line_breaking(c))
}

/// Whether ASCII `text` holds no control character (nothing to escape).
fn is_plain_ascii(text: &str) -> bool {
    text.bytes().all(|b| (b' '..0x7f).contains(&b))
}

/// Passes text through with every line-breaking character escaped.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if is_plain_ascii(text) {
            return self.0.write_str(text);
        }
        let mut plain_from = 0;
        for (at, c) in text.char_indices() {
            if !is_line_breaking(c) {
                continue;
            }
            self.0.write_str(&text[plain_from..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            plain_from = at + c.len_utf8();
        }
        self.0.write_str(&text[plain_from..])
    }
}

impl LeanVisitor<'_, '_> {
    fn field_start(&mut self, field: &Field) -> fmt::Result {
        self.out.write_char(' ')?;
        self.out.write_str(field.name())?;
        self.out.write_char('=')
    }

    fn field_text(&mut self, field: &Field, value: &str) -> fmt::Result {
        self.field_start(field)?;
        if needs_quotes(value) {
            // `Debug` of a string quotes it and escapes every control character.
            write!(self.out, "{value:?}")
        } else {
            self.out.write_str(value)
        }
    }

    fn field_plain(&mut self, field: &Field, value: impl fmt::Display) {
        if self.result.is_ok() {
            self.result = self
                .field_start(field)
                .and_then(|()| write!(self.out, "{value}"));
        }
    }
}

impl Visit for LeanVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.out
                .write_char(' ')
                .and_then(|()| Escaping(self.out).write_str(value))
        } else {
            self.field_text(field, value)
        };
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
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            write!(Escaping(self.out), " {value:?}")
        } else {
            // `%value` and `?value` fields: their text is only known once
            // formatted, and then is treated like any other string.
            let text = format!("{value:?}");
            self.field_text(field, &text)
        };
    }
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
        let metadata = event.metadata();
        write_timestamp(&mut out)?;
        out.write_char(' ')?;
        out.write_str(level_label(metadata.level()))?;
        out.write_char(' ')?;
        out.write_str(metadata.target())?;
        out.write_char(':')?;
        let mut visitor = LeanVisitor {
            out: &mut out,
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;
        out.write_char('\n')
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

    #[test]
    fn a_logged_value_cannot_add_a_field() {
        let text = logged(|| tracing::info!(user = %"eve outcome=allowed", "x"));
        assert!(text.contains(r#"user="eve outcome=allowed""#), "{text}");
        let plain = logged(|| tracing::info!(client = "127.0.0.1", count = 3u64, "x"));
        assert!(plain.contains(" x client=127.0.0.1 count=3\n"), "{plain}");
    }
}
