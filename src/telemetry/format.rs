//! A lean line format: `2026-11-27T18:12:22.123456Z  INFO target: message
//! key=value ...`. It writes string fields and the timestamp without the
//! formatting machinery, which made the default format a fifth of the cost
//! of an authenticated request.

use std::fmt::{self, Write as _};

use chrono::{Datelike, Timelike};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::escape::{push_escaped, push_value, Escaping};

pub struct LeanFormat;

/// A line buffer grown past this is freed after its line.
pub(super) const MAX_KEPT_LINE: usize = 16 * 1024;

/// The formatted date and time of one whole second, `2026-11-27T18:12:22`.
pub(super) struct Second {
    seconds: u64,
    text: [u8; 19],
}

impl Second {
    pub(super) const UNSET: Second = Second {
        seconds: u64::MAX,
        text: *b"0000-00-00T00:00:00",
    };

    /// The text of `seconds` since the epoch, formatted again only when the
    /// second changed.
    pub(super) fn text(&mut self, seconds: u64) -> &[u8; 19] {
        if self.seconds != seconds {
            let at = i64::try_from(seconds)
                .ok()
                .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
                .unwrap_or_default();
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            if let Ok(text) = text.as_bytes().try_into() {
                self.text = text;
                self.seconds = seconds;
            }
        }
        &self.text
    }
}

thread_local! {
    /// The formatted date and time of the last whole second seen here.
    static SECOND: std::cell::RefCell<Second> = const { std::cell::RefCell::new(Second::UNSET) };
    /// The line being formatted: built here with plain `String` appends,
    /// then handed to the subscriber's writer in one call.
    pub(super) static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The time since the epoch, as the line's timestamp counts it.
pub(super) fn now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// `.123456Z`: the microseconds of `since_epoch` and the zone.
pub(super) fn fraction(since_epoch: std::time::Duration) -> [u8; 8] {
    let micros = since_epoch.subsec_micros();
    let mut text = *b".000000Z";
    let mut rest = micros;
    for slot in text[1..7].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    text
}

pub(super) fn write_timestamp(out: &mut String) {
    let since_epoch = now();
    let mut stamp = [0u8; 27];
    SECOND.with(|second| {
        stamp[..19].copy_from_slice(second.borrow_mut().text(since_epoch.as_secs()));
    });
    stamp[19..].copy_from_slice(&fraction(since_epoch));
    out.push_str(std::str::from_utf8(&stamp).unwrap_or("?"));
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
    fn seconds_and_fractions_are_written_as_chrono_writes_them() {
        let mut second = super::Second::UNSET;
        for (seconds, micros) in [
            (0, 0),
            (1_700_000_000, 7),
            (1_799_999_999, 999_999),
            (253_402_300_799, 120),
        ] {
            let at = chrono::DateTime::from_timestamp(seconds, micros * 1000).unwrap();
            let expected = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let since_epoch = std::time::Duration::new(seconds as u64, micros * 1000);
            let mut text = second.text(seconds as u64).to_vec();
            text.extend_from_slice(&super::fraction(since_epoch));
            assert_eq!(String::from_utf8(text).unwrap(), expected);
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
