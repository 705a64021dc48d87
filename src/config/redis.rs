//! `REDIS_URL` and `REDIS_PREFIX` (SPEC §7): where the shared state of
//! several instances lives. The URL may carry a password, so it is kept
//! as a secret and no error message repeats it.

use secrecy::{ExposeSecret, SecretString};

use super::vars::ConfigError;

const SCHEMES: [&str; 4] = ["redis://", "rediss://", "unix://", "redis+unix://"];
const DEFAULT_PREFIX: &str = "portico:";
const PREFIX_MAX_LEN: usize = 64;

/// Where Redis is, and the prefix of every key Portico writes there.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    url: SecretString,
    prefix: String,
}

impl RedisSettings {
    /// `None` when `REDIS_URL` is unset: the embedded file store.
    pub fn parse(url: Option<&str>, prefix: Option<&str>) -> Result<Option<Self>, ConfigError> {
        let Some(url) = url else {
            if prefix.is_some() {
                return Err(ConfigError::new(
                    "REDIS_PREFIX",
                    "is set but REDIS_URL is not; set REDIS_URL too, or remove REDIS_PREFIX",
                ));
            }
            return Ok(None);
        };
        if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis://, rediss:// or unix:// \
                 (e.g. redis://127.0.0.1:6379/0 or unix:///run/redis/redis.sock)",
            ));
        }
        if url.starts_with("rediss://") {
            return Err(ConfigError::new(
                "REDIS_URL",
                "rediss:// (TLS) is not built into this Portico; reach Redis on a private \
                 network or a unix socket (unix://), or through a TLS tunnel on loopback",
            ));
        }
        // The redis crate's own parser; its message may quote the URL, so
        // only the fact is reported.
        if redis::Client::open(url).is_err() {
            return Err(ConfigError::new(
                "REDIS_URL",
                "is not a valid Redis URL; the form is redis://[:password@]host[:port][/db] \
                 or unix:///path/to/redis.sock",
            ));
        }
        let prefix = prefix.unwrap_or(DEFAULT_PREFIX);
        let bare = prefix.trim_end_matches(':');
        if bare.is_empty()
            || prefix.len() > PREFIX_MAX_LEN
            || !prefix.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ConfigError::new(
                "REDIS_PREFIX",
                format!(
                    "must be 1 to {PREFIX_MAX_LEN} printable characters without spaces \
                     (such as 'portico:' or 'team-a:'), got '{}'",
                    prefix.escape_debug()
                ),
            ));
        }
        Ok(Some(Self {
            url: SecretString::from(url),
            prefix: bare.to_owned(),
        }))
    }

    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The prefix without its trailing colon: keys are `<prefix>:<name>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_redis_url_is_the_file_store_and_a_lone_prefix_is_an_error() {
        assert!(RedisSettings::parse(None, None).unwrap().is_none());
        let err = RedisSettings::parse(None, Some("x:")).unwrap_err();
        assert_eq!(err.variable, "REDIS_PREFIX");
    }

    #[test]
    fn the_prefix_defaults_to_portico_and_loses_its_trailing_colon() {
        let tcp = RedisSettings::parse(Some("redis://127.0.0.1:6379/2"), None)
            .unwrap()
            .unwrap();
        assert_eq!(tcp.prefix(), "portico");
        let unix = RedisSettings::parse(Some("unix:///tmp/r.sock"), Some("team-a:"))
            .unwrap()
            .unwrap();
        assert_eq!(unix.prefix(), "team-a");
    }

    #[test]
    fn a_bad_url_is_named_without_repeating_its_password() {
        for url in [
            "http://:hunter2@example.com",
            "redis://:hunter2@[::1",
            "rediss://:hunter2@h",
        ] {
            let err = RedisSettings::parse(Some(url), None).unwrap_err();
            assert_eq!(err.variable, "REDIS_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let shown = format!(
            "{:?}",
            RedisSettings::parse(Some("redis://:hunter2@h/"), None).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_prefix_with_spaces_or_nothing_but_colons_is_refused() {
        for prefix in ["a b", ":", "x".repeat(70).as_str()] {
            let err = RedisSettings::parse(Some("redis://h/"), Some(prefix)).unwrap_err();
            assert_eq!(err.variable, "REDIS_PREFIX", "{prefix}");
        }
    }
}
