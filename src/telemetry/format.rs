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

use super::escape::{push_escaped, push_value, Escaping};

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

/// Appends ` name=value`, the value quoted if it needs it.
fn push_field(out: &mut String, name: &str, value: &str) {
    push_field_start(out, name);
    push_value(out, value);
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

    #[test]
    fn a_logged_value_cannot_add_a_field() {
        let text = logged(|| tracing::info!(user = %"eve outcome=allowed", "x"));
        assert!(text.contains(r#"user="eve outcome=allowed""#), "{text}");
        let plain = logged(|| tracing::info!(client = "127.0.0.1", count = 3u64, "x"));
        assert!(plain.contains(" x client=127.0.0.1 count=3\n"), "{plain}");
    }
}
