//! A lean line format: `2026-11-27T18:12:22.123456Z  INFO target: message
//! key=value ...`. It writes string fields and the timestamp without the
//! formatting machinery, which made the default format a fifth of the cost
//! of an authenticated request.

use std::fmt;

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

/// Writes the message first, then `name=value` pairs; a string that
/// needs it is quoted and escaped, so a value cannot forge a field or line.
struct LeanVisitor<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == 0x7f)
}

impl LeanVisitor<'_, '_> {
    fn field_start(&mut self, field: &Field) -> fmt::Result {
        self.out.write_char(' ')?;
        self.out.write_str(field.name())?;
        self.out.write_char('=')
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
                .and_then(|()| self.out.write_str(value))
        } else {
            self.field_start(field).and_then(|()| {
                if needs_quotes(value) {
                    write!(self.out, "{value:?}")
                } else {
                    self.out.write_str(value)
                }
            })
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            write!(self.out, " {value:?}")
        } else {
            self.field_start(field)
                .and_then(|()| write!(self.out, "{value:?}"))
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
