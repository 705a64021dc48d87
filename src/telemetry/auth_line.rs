//! The one log line per API authentication attempt (SPEC §4), at
//! `portico::auth` INFO, filtered by `RUST_LOG` like any other line.
//!
//! It goes out with every API request, so with the text format installed
//! by `init` it is written straight into the per-thread line buffer and the
//! batched writer, byte for byte the line `LeanFormat` makes of the same
//! event, without tracing's dispatch and field visitor. Under any other
//! subscriber (the JSON format, a test's own) it is an ordinary event.

use std::net::IpAddr;
use std::sync::OnceLock;

use tracing::callsite::DefaultCallsite;
use tracing::field::FieldSet;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::metadata::Kind;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::EnvFilter;

use super::escape;
use super::format::{self, LeanFormat, LINE, MAX_KEPT_LINE};
use super::BatchedStdout;
use crate::core::address::address_text;

const TARGET: &str = "portico::auth";
const MESSAGE: &str = "authentication attempt";

/// How the attempt ended, with what the line says about it.
#[derive(Debug, Clone, Copy)]
pub enum AuthOutcome<'a> {
    Allowed {
        principal: &'a str,
    },
    Denied {
        code: &'static str,
    },
    /// The client went away before the gate decided.
    Cancelled,
}

/// The callsite asked whether the line is enabled: what `tracing::info!`
/// does, an interest cached per callsite, the subscriber asked only when
/// the filter depends on more than the target and level.
static CALLSITE: DefaultCallsite = DefaultCallsite::new(&METADATA);
static METADATA: Metadata<'static> = Metadata::new(
    "event src/telemetry/auth_line.rs",
    TARGET,
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(
        &[
            "message",
            "outcome",
            "principal",
            "code",
            "client",
            "method",
            "path",
        ],
        tracing_core::identify_callsite!(&CALLSITE),
    ),
    Kind::EVENT,
);

fn enabled() -> bool {
    if Level::INFO > STATIC_MAX_LEVEL || Level::INFO > LevelFilter::current() {
        return false;
    }
    let interest = CALLSITE.interest();
    interest.is_always()
        || (!interest.is_never()
            && tracing::dispatcher::get_default(|current| current.enabled(&METADATA)))
}

/// The subscriber `init` installs for the text format.
type TextSubscriber =
    tracing_subscriber::fmt::Subscriber<DefaultFields, LeanFormat, EnvFilter, BatchedStdout>;

/// The writer of the text subscriber installed globally, once installed.
static TEXT_WRITER: OnceLock<BatchedStdout> = OnceLock::new();

pub(super) fn text_installed(writer: BatchedStdout) {
    let _ = TEXT_WRITER.set(writer);
}

/// Logs one authentication attempt by `client` on `method path`.
pub fn auth_attempt(outcome: AuthOutcome<'_>, client: IpAddr, method: &str, path: &str) {
    if !enabled() {
        return;
    }
    match TEXT_WRITER.get() {
        Some(writer)
            if tracing::dispatcher::get_default(|current| current.is::<TextSubscriber>()) =>
        {
            write_line(writer, outcome, client, method, path);
        }
        _ => emit_event(outcome, client, method, path),
    }
}

/// The line as `LeanFormat` writes the event `emit_event` sends.
fn push_line(
    line: &mut String,
    outcome: AuthOutcome<'_>,
    client: IpAddr,
    method: &str,
    path: &str,
) {
    format::write_timestamp(line);
    line.push(' ');
    line.push_str(format::level_label(&Level::INFO));
    line.push(' ');
    line.push_str(TARGET);
    line.push_str(": ");
    line.push_str(MESSAGE);
    match outcome {
        AuthOutcome::Allowed { principal } => {
            line.push_str(" outcome=allowed principal=");
            escape::push_value(line, principal);
        }
        AuthOutcome::Denied { code } => {
            line.push_str(" outcome=denied code=");
            escape::push_value(line, code);
        }
        AuthOutcome::Cancelled => line.push_str(" outcome=cancelled"),
    }
    // An address's text never needs quotes.
    line.push_str(" client=");
    push_address(line, client);
    line.push_str(" method=");
    escape::push_value(line, method);
    line.push_str(" path=");
    escape::push_value(line, path);
    line.push('\n');
}

/// `address_text`'s text, an IPv4 address's digits pushed straight into
/// the line (the one every request logs) rather than through a buffer.
fn push_address(line: &mut String, client: IpAddr) {
    match client {
        IpAddr::V4(v4) => {
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    line.push('.');
                }
                if octet >= 100 {
                    line.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    line.push(char::from(b'0' + octet / 10 % 10));
                }
                line.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(_) => {
            let mut buffer = [0u8; 45];
            line.push_str(address_text(client, &mut buffer));
        }
    }
}

fn write_line(
    writer: &BatchedStdout,
    outcome: AuthOutcome<'_>,
    client: IpAddr,
    method: &str,
    path: &str,
) {
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            push_line(&mut line, outcome, client, method, path);
            writer.append(line.as_bytes());
            if line.capacity() > MAX_KEPT_LINE {
                *line = String::new();
            }
        }
        // Logged while another line is being formatted on this thread.
        Err(_) => {
            let mut line = String::new();
            push_line(&mut line, outcome, client, method, path);
            writer.append(line.as_bytes());
        }
    });
}

/// The same line as a tracing event, for any other subscriber.
fn emit_event(outcome: AuthOutcome<'_>, client: IpAddr, method: &str, path: &str) {
    let mut buffer = [0u8; 45];
    let client = address_text(client, &mut buffer);
    match outcome {
        AuthOutcome::Allowed { principal } => tracing::info!(
            target: TARGET,
            message = MESSAGE,
            outcome = "allowed",
            principal,
            client,
            method,
            path,
        ),
        AuthOutcome::Denied { code } => tracing::info!(
            target: TARGET,
            message = MESSAGE,
            outcome = "denied",
            code,
            client,
            method,
            path,
        ),
        AuthOutcome::Cancelled => tracing::info!(
            target: TARGET,
            message = MESSAGE,
            outcome = "cancelled",
            client,
            method,
            path,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the subscriber writes for the tracing event of `outcome`.
    fn through_tracing(outcome: AuthOutcome<'_>, client: IpAddr, path: &str) -> String {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LeanFormat)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || emit_event(outcome, client, "GET", path));
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line without its timestamp (the first 27 characters).
    fn after_timestamp(line: &str) -> &str {
        assert_eq!(&line[26..27], "Z", "{line}");
        &line[27..]
    }

    #[test]
    fn the_direct_line_is_the_line_the_lean_format_writes_for_the_event() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let short_v4: IpAddr = "10.0.90.255".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let cases = [
            (
                AuthOutcome::Allowed {
                    principal: "client-key-0123abcd",
                },
                v4,
                "/api/me",
            ),
            (
                AuthOutcome::Allowed {
                    principal: "eve outcome=allowed\n",
                },
                v6,
                "/api/x y",
            ),
            (
                AuthOutcome::Denied {
                    code: "invalid-api-key",
                },
                v6,
                "/api/me",
            ),
            (
                AuthOutcome::Denied {
                    code: "auth-throttled",
                },
                v4,
                "/api/\u{2028}\"q\"",
            ),
            (AuthOutcome::Cancelled, v4, "/api/ask"),
            (
                AuthOutcome::Denied {
                    code: "invalid-api-key",
                },
                short_v4,
                "/api/ask",
            ),
            (AuthOutcome::Allowed { principal: "" }, short_v4, "/api/me"),
        ];
        for (outcome, client, path) in cases {
            let expected = through_tracing(outcome, client, path);
            let mut direct = String::new();
            push_line(&mut direct, outcome, client, "GET", path);
            assert_eq!(after_timestamp(&direct), after_timestamp(&expected));
            assert_eq!(direct.matches('\n').count(), 1, "{direct:?}");
        }
    }
}
