//! `LOG_FORMAT=json`: one JSON object a line (timestamp, level, target,
//! message and the event's fields at the top level), for log shippers.
//! JSON string escaping keeps control characters out of the line.

use tracing_subscriber::EnvFilter;

use super::BatchedStdout;

/// Installs the JSON subscriber; `false` if one was installed already.
pub(super) fn install(filter: EnvFilter, writer: BatchedStdout) -> bool {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init()
        .is_ok()
}
