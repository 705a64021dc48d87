//! Parsers for single configuration variables, each failing with one line
//! that names the variable and says what to fix, never echoing a secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;

use secrecy::SecretString;

use crate::core::address::{IpAllowlist, ListError, TrustedProxies};

/// The smallest `SESSION_SECRET` accepted, in bytes (SPEC §1).
const SESSION_SECRET_MIN_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Reads a dotenv file; a missing file is simply empty.
pub fn read_env_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_filename_iter(path) {
        Ok(iter) => iter,
        Err(err) if err.not_found() => return Ok(HashMap::new()),
        Err(_) => return Err(ConfigError::new(path, "the file exists but cannot be read")),
    };
    let mut vars = HashMap::new();
    for item in iter {
        match item {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            // The dotenvy error quotes the offending line, which may hold a secret.
            Err(dotenvy::Error::LineParse(_, position)) => {
                return Err(ConfigError::new(
                    path,
                    format!("cannot parse the line at character {position}; expected NAME=value"),
                ))
            }
            Err(_) => return Err(ConfigError::new(path, "the file cannot be parsed")),
        }
    }
    Ok(vars)
}

pub fn socket_addr(name: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("'{value}' is not an address and port such as 127.0.0.1:3000 or [::1]:3000"),
        )
    })
}

pub fn positive<T: FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("must be a positive whole number, got '{value}'"),
        )
    })
}

/// A secret that will be compared with header values, so it must be one:
/// visible ASCII only. Reports the position of a bad character, not the value.
pub fn header_safe_secret(
    name: &str,
    entry: Option<usize>,
    value: &str,
) -> Result<SecretString, ConfigError> {
    if let Some(position) = value.chars().position(|c| !c.is_ascii_graphic()) {
        let place = entry.map_or(String::new(), |n| format!("entry {n}: "));
        return Err(ConfigError::new(
            name,
            format!(
                "{place}the character at position {} is not printable ASCII, \
                 so the value cannot be sent in an HTTP header",
                position + 1
            ),
        ));
    }
    Ok(SecretString::from(value))
}

/// `VALID_API_KEYS`: comma-separated, blanks trimmed, empty entries ignored.
pub fn client_keys(value: &str) -> Result<Vec<SecretString>, ConfigError> {
    value
        .split(',')
        .enumerate()
        .map(|(index, entry)| (index + 1, entry.trim()))
        .filter(|(_, entry)| !entry.is_empty())
        .map(|(n, entry)| header_safe_secret("VALID_API_KEYS", Some(n), entry))
        .collect()
}

fn list_error(name: &str, err: ListError) -> ConfigError {
    let problem = match err {
        ListError::Empty { entry } => {
            format!("entry {entry} is empty; remove the extra comma")
        }
        ListError::Invalid { entry, text } => {
            format!("entry {entry} ('{text}') is not an IP address or CIDR block")
        }
    };
    ConfigError::new(name, problem)
}

pub fn allowlist(value: Option<&str>) -> Result<IpAllowlist, ConfigError> {
    value
        .map_or(Ok(IpAllowlist::allow_all()), IpAllowlist::parse)
        .map_err(|err| list_error("ALLOWED_IPS", err))
}

pub fn trusted_proxies(value: Option<&str>) -> Result<TrustedProxies, ConfigError> {
    value
        .map_or(Ok(TrustedProxies::none()), TrustedProxies::parse)
        .map_err(|err| list_error("TRUSTED_PROXIES", err))
}

pub fn session_secret(value: &str) -> Result<SecretString, ConfigError> {
    if value.len() < SESSION_SECRET_MIN_BYTES {
        return Err(ConfigError::new(
            "SESSION_SECRET",
            format!(
                "must be at least {SESSION_SECRET_MIN_BYTES} bytes, it has {}; \
                 generate one with `openssl rand -hex 64`, or unset it to have one generated",
                value.len()
            ),
        ));
    }
    Ok(SecretString::from(value))
}

pub fn command_words(value: &str) -> Result<Vec<String>, ConfigError> {
    let words = shell_words::split(value).map_err(|_| {
        ConfigError::new(
            "ASK_COMMAND",
            "has an unterminated quote; check its quoting",
        )
    })?;
    if words.is_empty() {
        return Err(ConfigError::new("ASK_COMMAND", "names no program"));
    }
    Ok(words)
}

pub fn log_filter(value: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_owned())
        .map_err(|err| ConfigError::new("RUST_LOG", format!("is not a valid log filter: {err}")))
}
