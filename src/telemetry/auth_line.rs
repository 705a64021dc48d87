//! The one log line per API authentication attempt (SPEC §4), at
//! `portico::auth` INFO, filtered by `RUST_LOG` like any other line.
//!
//! It goes out with every API request, so with the text format installed
//! by `init` it is written straight into the per-thread line buffer and the
//! batched writer, byte for byte the line `LeanFormat` makes of the same
//! event, without tracing's dispatch and field visitor. Under any other
//! subscriber (the JSON format, a test's own) it is an ordinary event.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::OnceLock;

use tracing::callsite::DefaultCallsite;
use tracing::field::FieldSet;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::metadata::Kind;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::EnvFilter;

use super::address::push_address;
use super::escape;
use super::format::{self, LeanFormat, Second, MAX_KEPT_LINE};
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

/// What comes after the timestamp, up to the outcome's value: the level,
/// target and message as `LeanFormat` writes them (a test compares).
macro_rules! head {
    ($outcome:literal) => {
        concat!(
            "  INFO portico::auth: authentication attempt outcome=",
            $outcome
        )
    };
}

/// The line as `LeanFormat` writes the event `emit_event` sends, as bytes:
/// the fixed parts as whole literals, the values checked eight bytes at a
/// time.
fn push_line(
    line: &mut Vec<u8>,
    second: &mut Second,
    outcome: AuthOutcome<'_>,
    client: IpAddr,
    method: &str,
    path: &str,
) {
    let since_epoch = format::now();
    line.extend_from_slice(second.text(since_epoch.as_secs()));
    line.extend_from_slice(&format::fraction(since_epoch));
    match outcome {
        AuthOutcome::Allowed { principal } => {
            line.extend_from_slice(head!("allowed principal=").as_bytes());
            escape::push_value_bytes(line, principal);
            line.extend_from_slice(b" client=");
        }
        AuthOutcome::Denied { code } => {
            line.extend_from_slice(head!("denied code=").as_bytes());
            escape::push_value_bytes(line, code);
            line.extend_from_slice(b" client=");
        }
        AuthOutcome::Cancelled => line.extend_from_slice(head!("cancelled client=").as_bytes()),
    }
    // An address's text never needs quotes.
    push_address(line, client);
    match method_label(method) {
        Some(label) => line.extend_from_slice(label.as_bytes()),
        None => {
            line.extend_from_slice(b" method=");
            escape::push_value_bytes(line, method);
            line.extend_from_slice(b" path=");
        }
    }
    escape::push_value_bytes(line, path);
    line.push(b'\n');
}

/// ` method=GET path=` for the methods that need no quoting.
fn method_label(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" => " method=GET path=",
        "POST" => " method=POST path=",
        "PUT" => " method=PUT path=",
        "DELETE" => " method=DELETE path=",
        "PATCH" => " method=PATCH path=",
        "HEAD" => " method=HEAD path=",
        "OPTIONS" => " method=OPTIONS path=",
        _ => return None,
    })
}

/// The auth line's own buffer and cached second on this thread.
struct LineState {
    second: Second,
    line: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<LineState> = const {
        RefCell::new(LineState { second: Second::UNSET, line: Vec::new() })
    };
}

fn write_line(
    writer: &BatchedStdout,
    outcome: AuthOutcome<'_>,
    client: IpAddr,
    method: &str,
    path: &str,
) {
    STATE.with(|state| match state.try_borrow_mut() {
        Ok(mut state) => {
            let LineState { second, line } = &mut *state;
            line.clear();
            push_line(line, second, outcome, client, method, path);
            writer.append(line);
            if line.capacity() > MAX_KEPT_LINE {
                *line = Vec::new();
            }
        }
        // Logged while another line is being formatted on this thread.
        Err(_) => {
            let (mut line, mut second) = (Vec::new(), Second::UNSET);
            push_line(&mut line, &mut second, outcome, client, method, path);
            writer.append(&line);
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
    fn through_tracing(
        outcome: AuthOutcome<'_>,
        client: IpAddr,
        method: &str,
        path: &str,
    ) -> String {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LeanFormat)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || emit_event(outcome, client, method, path));
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
        let methods = [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "M=X",
        ];
        for (outcome, client, path) in cases {
            for method in methods {
                let expected = through_tracing(outcome, client, method, path);
                let (mut direct, mut second) = (Vec::new(), Second::UNSET);
                push_line(&mut direct, &mut second, outcome, client, method, path);
                let direct = String::from_utf8(direct).unwrap();
                assert_eq!(after_timestamp(&direct), after_timestamp(&expected));
                assert_eq!(direct.matches('\n').count(), 1, "{direct:?}");
            }
        }
    }

    #[test]
    fn the_timestamp_is_the_current_utc_time_to_the_microsecond() {
        let before = chrono::Utc::now();
        let (mut line, mut second) = (Vec::new(), Second::UNSET);
        push_line(
            &mut line,
            &mut second,
            AuthOutcome::Cancelled,
            [127, 0, 0, 1].into(),
            "GET",
            "/",
        );
        let after = chrono::Utc::now();
        let stamp = std::str::from_utf8(&line[..27]).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
        assert!(
            micros(before) <= at.timestamp_micros() && at.timestamp_micros() <= micros(after),
            "{stamp}"
        );
        assert_eq!(stamp.len(), "2026-11-27T18:12:22.123456Z".len());
    }
}
