//! Settings: every variable of SPEC §1, read once at start from the process
//! environment, `.env.local` and `.env` (the real environment wins), and
//! parsed into types so the rest of the program never re-checks them.
//! Layer 1 (README, "The module map"): imports only `core`.

mod known;
mod public_url;
mod redis;
mod sandbox;
mod session_limits;
mod vars;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::core::address::{IpAllowlist, TrustedProxies};
pub use public_url::PublicUrl;
pub use redis::RedisSettings;
pub use sandbox::{SandboxMode, SandboxSettings};
pub use session_limits::SessionLimits;
pub use vars::ConfigError;

/// Keys shorter than this draw a start-up warning (SPEC §1).
/// A worker renews its job's lease every third of this; a job whose
/// worker died is taken over this long after its last renewal.
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(30);

const ADMIN_KEY_RECOMMENDED_LEN: usize = 32;
/// A setup token shorter than this draws a start-up warning.
const SETUP_TOKEN_RECOMMENDED_LEN: usize = 24;

/// The variables that hold secrets: never logged, never passed to children.
pub const SECRET_VARIABLES: &[&str] = &[
    "ADMIN_API_KEY",
    "VALID_API_KEYS",
    "SESSION_SECRET",
    "INITIAL_SETUP_TOKEN",
    "METRICS_TOKEN",
    "REDIS_URL",
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_api_key: Option<SecretString>,
    pub valid_api_keys: Vec<SecretString>,
    pub api_rate_limit: NonZeroU32,
    pub allowed_ips: IpAllowlist,
    pub trusted_proxies: TrustedProxies,
    pub public_url: PublicUrl,
    pub session_secret: Option<SecretString>,
    pub initial_setup_token: Option<SecretString>,
    pub ask_command: Option<Vec<String>>,
    pub ask_timeout: Duration,
    pub ask_sandbox: SandboxSettings,
    pub job_concurrency: NonZeroUsize,
    pub log_filter: String,
    /// Lets non-loopback clients read `/metrics` (bearer).
    pub metrics_token: Option<SecretString>,
    pub log_format: LogFormat,
    /// `REDIS_URL` and `REDIS_PREFIX`: shared state for several instances
    /// (SPEC §7); `None` is the embedded file store.
    pub redis: Option<RedisSettings>,
    /// Idle and absolute session limits: 30 minutes and 12 hours; not a
    /// variable, only tests set other values.
    pub session_limits: SessionLimits,
    /// Per-key usage counting; only the benchmark turns it off
    /// (`PORTICO_BENCH_NO_USAGE`), to measure what it costs.
    pub usage_counting: bool,
    /// How long a claimed job stays with its worker without a heartbeat
    /// (`DEFAULT_JOB_LEASE`); not a variable, only tests set other values.
    pub job_lease: Duration,
    /// Whether the `JOB_CONCURRENCY` workers start; not a variable, tests
    /// that run jobs one `run_one` at a time turn it off.
    pub start_job_workers: bool,
}

/// `LOG_FORMAT`: readable lines, or one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(ConfigError {
                variable: "LOG_FORMAT".to_owned(),
                problem: format!("must be 'text' or 'json', not '{}'", value.escape_debug()),
            }),
        }
    }
}

impl Settings {
    /// Reads `.env`, then `.env.local`, then the process environment, each
    /// overriding the one before, and parses the result.
    pub fn load() -> Result<Self, ConfigError> {
        let mut layered: HashMap<String, String> = HashMap::new();
        for file in [".env", ".env.local"] {
            let vars = vars::read_env_file(file)?;
            known::check_names(file, vars.keys())?;
            layered.extend(vars);
        }
        layered.extend(std::env::vars());
        Self::from_vars(&layered)
    }

    /// Parses settings from a map of variables; unknown variables are ignored.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };
        let bind = vars::socket_addr("BIND", get("BIND").unwrap_or("127.0.0.1:3000"))?;
        Ok(Self {
            bind,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or("./workspaces")),
            admin_api_key: get("ADMIN_API_KEY")
                .map(|key| vars::header_safe_secret("ADMIN_API_KEY", None, key))
                .transpose()?,
            valid_api_keys: vars::client_keys(get("VALID_API_KEYS").unwrap_or(""))?,
            api_rate_limit: vars::positive(
                "API_RATE_LIMIT",
                get("API_RATE_LIMIT").unwrap_or("100"),
            )?,
            allowed_ips: vars::allowlist(get("ALLOWED_IPS"))?,
            trusted_proxies: vars::trusted_proxies(get("TRUSTED_PROXIES"))?,
            public_url: match get("PUBLIC_URL") {
                Some(url) => PublicUrl::parse(url)?,
                None => PublicUrl::local(bind),
            },
            session_secret: get("SESSION_SECRET")
                .map(vars::session_secret)
                .transpose()?,
            initial_setup_token: get("INITIAL_SETUP_TOKEN")
                .map(|token| vars::header_safe_secret("INITIAL_SETUP_TOKEN", None, token))
                .transpose()?,
            ask_command: get("ASK_COMMAND").map(vars::command_words).transpose()?,
            ask_timeout: Duration::from_secs(u64::from(
                vars::positive::<NonZeroU32>(
                    "ASK_TIMEOUT_SECS",
                    get("ASK_TIMEOUT_SECS").unwrap_or("600"),
                )?
                .get(),
            )),
            ask_sandbox: SandboxSettings::parse(
                get("ASK_SANDBOX"),
                get("ASK_SANDBOX_PATHS"),
                get("ASK_SANDBOX_WRITE_PATHS"),
            )?,
            job_concurrency: vars::positive(
                "JOB_CONCURRENCY",
                get("JOB_CONCURRENCY").unwrap_or("1"),
            )?,
            log_filter: vars::log_filter(get("RUST_LOG").unwrap_or("info"))?,
            metrics_token: get("METRICS_TOKEN")
                .map(|token| vars::header_safe_secret("METRICS_TOKEN", None, token))
                .transpose()?,
            log_format: LogFormat::parse(get("LOG_FORMAT").unwrap_or("text"))?,
            redis: RedisSettings::parse(get("REDIS_URL"), get("REDIS_PREFIX"))?,
            session_limits: SessionLimits::default(),
            usage_counting: get("PORTICO_BENCH_NO_USAGE").is_none(),
            job_lease: DEFAULT_JOB_LEASE,
            start_job_workers: true,
        })
    }

    /// Warnings about settings that work but are unwise.
    pub fn log_warnings(&self) {
        if let Some(key) = &self.admin_api_key {
            let len = key.expose_secret().chars().count();
            if len < ADMIN_KEY_RECOMMENDED_LEN {
                tracing::warn!(
                    length = len,
                    "ADMIN_API_KEY is shorter than {ADMIN_KEY_RECOMMENDED_LEN} characters; \
                     generate a stronger one with `openssl rand -hex 32`"
                );
            }
        }
        if let Some(token) = &self.initial_setup_token {
            let len = token.expose_secret().chars().count();
            if len < SETUP_TOKEN_RECOMMENDED_LEN {
                tracing::warn!(
                    length = len,
                    "INITIAL_SETUP_TOKEN is shorter than {SETUP_TOKEN_RECOMMENDED_LEN} characters; \
                     whoever guesses it first owns the dashboard: use `openssl rand -hex 16`, \
                     or unset it to have a strong one generated"
                );
            }
        }
        if !self.public_url.is_configured() && self.bind.ip().is_unspecified() {
            tracing::warn!(
                bind = %self.bind,
                "listening on every interface without PUBLIC_URL: pages answer only to \
                 localhost, 127.0.0.1 and [::1]; set PUBLIC_URL to the address users open"
            );
        }
        if !self.public_url.is_https() && !self.bind.ip().is_loopback() {
            tracing::warn!(
                bind = %self.bind,
                "PUBLIC_URL is not https while listening beyond loopback; \
                 session cookies will not be marked Secure"
            );
        }
    }
}
