//! Prometheus metrics (`metrics` + `metrics-exporter-prometheus`, no server
//! of their own): the recorders every layer calls, at the bottom of the map;
//! `GET /metrics` itself is `api::metrics`. Labels are route patterns, status
//! codes, outcome codes and job statuses only: never a key, a key id, a
//! user or an address. Counter handles are looked up once per label set and
//! kept, so the hot path is an index or a hash look-up and an atomic add.

mod labels;

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use labels::{ByStatic, Fixed, RequestCounters};

const REQUESTS: &str = "portico_http_requests_total";
const AUTH: &str = "portico_auth_attempts_total";
const DENIALS: &str = "portico_denials_total";
const ARGON2: &str = "portico_argon2_verifications_total";
const ARGON2_SECONDS: &str = "portico_argon2_verification_seconds";
const KEY_CACHE: &str = "portico_key_cache_total";
const JOBS: &str = "portico_jobs";
const JOB_SECONDS: &str = "portico_job_duration_seconds";
const STORE_ERRORS: &str = "portico_store_errors_total";
const REDIS_ROUND_TRIPS: &str = "portico_redis_round_trips_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static REQUEST_COUNTERS: OnceLock<RequestCounters> = OnceLock::new();
static AUTH_COUNTERS: ByStatic = ByStatic::new(AUTH, "code");
static AUTH_ALLOWED: Fixed<1> = Fixed::new(AUTH, "code", ["allowed"]);
static DENIAL_COUNTERS: ByStatic = ByStatic::new(DENIALS, "reason");
static CACHE_COUNTERS: Fixed<2> = Fixed::new(KEY_CACHE, "result", ["hit", "miss"]);
static ARGON2_COUNTERS: ByStatic = ByStatic::new(ARGON2, "outcome");

/// Installs the process-wide recorder once; later calls (several apps in
/// one test process) share it.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(ARGON2_SECONDS.to_owned()),
                &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(JOB_SECONDS.to_owned()),
                    &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 600.0],
                )
            })
            .expect("the bucket lists are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (an embedding program's):
            // /metrics then shows nothing rather than failing.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by route pattern and status");
    describe_counter!(
        AUTH,
        "API authentication attempts: `allowed`, or the failure code"
    );
    describe_counter!(
        DENIALS,
        "Requests refused by the hourly quota or the failed-attempt throttle"
    );
    describe_counter!(ARGON2, "argon2 verifications by outcome");
    describe_histogram!(
        ARGON2_SECONDS,
        Unit::Seconds,
        "Time of one argon2 verification"
    );
    describe_counter!(
        KEY_CACHE,
        "Dashboard-key checks answered from the verified-key cache (hit) or by argon2 (miss)"
    );
    describe_gauge!(JOBS, "Jobs in the queue by status");
    describe_histogram!(
        JOB_SECONDS,
        Unit::Seconds,
        "Time from a job's start to its end"
    );
    describe_counter!(
        STORE_ERRORS,
        "Failed writes to the data directory and failed Redis commands"
    );
    describe_counter!(
        REDIS_ROUND_TRIPS,
        "Commands and scripts sent to Redis (one per cached API-key request)"
    );
}

/// A request answered, by route pattern and status.
pub fn request(pattern: &str, status: u16) {
    REQUEST_COUNTERS
        .get_or_init(|| RequestCounters::new(REQUESTS))
        .increment(pattern, status);
}

/// An API authentication attempt that let the request in.
pub fn auth_allowed() {
    AUTH_ALLOWED.increment(0);
}

/// An API authentication attempt: `allowed` or the failure code.
pub fn auth_attempt(code: &'static str) {
    if code == "allowed" {
        return auth_allowed();
    }
    AUTH_COUNTERS.increment(code);
    if matches!(code, "rate-limited" | "auth-throttled") {
        DENIAL_COUNTERS.increment(code);
    }
}

/// A refusal by a limit outside the API gate (e.g. `login-throttled`).
pub fn denial(reason: &'static str) {
    DENIAL_COUNTERS.increment(reason);
}

pub fn argon2_verification(matched: bool, took: Duration) {
    ARGON2_COUNTERS.increment(if matched { "match" } else { "mismatch" });
    ::metrics::histogram!(ARGON2_SECONDS).record(took.as_secs_f64());
}

pub fn key_cache(hit: bool) {
    CACHE_COUNTERS.increment(if hit { 0 } else { 1 });
}

pub fn job_finished(took: Duration) {
    ::metrics::histogram!(JOB_SECONDS).record(took.as_secs_f64());
}

pub fn redis_round_trip() {
    ::metrics::counter!(REDIS_ROUND_TRIPS).increment(1);
}

pub fn store_error() {
    ::metrics::counter!(STORE_ERRORS).increment(1);
}

/// The number of jobs with `status` (`pending`, `processing`, ...).
pub fn jobs_in_queue(status: &'static str, count: usize) {
    gauge!(JOBS, "status" => status).set(count as f64);
}

/// Everything recorded, in the Prometheus text format.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}
