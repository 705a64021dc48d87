//! The names Portico reads, so that a misspelt one in `.env` / `.env.local`
//! (`ALOWED_IPS`) stops start-up instead of silently leaving a default.

use super::vars::ConfigError;

/// Every variable of SPEC §1.
pub const KNOWN_VARIABLES: &[&str] = &[
    "BIND",
    "DATA_DIR",
    "ADMIN_API_KEY",
    "VALID_API_KEYS",
    "API_RATE_LIMIT",
    "ALLOWED_IPS",
    "TRUSTED_PROXIES",
    "PUBLIC_URL",
    "SESSION_SECRET",
    "INITIAL_SETUP_TOKEN",
    "ASK_COMMAND",
    "ASK_TIMEOUT_SECS",
    "JOB_CONCURRENCY",
    "RUST_LOG",
    "REDIS_URL",
    "REDIS_PREFIX",
    "ASK_SANDBOX",
    "ASK_SANDBOX_PATHS",
    "ASK_SANDBOX_WRITE_PATHS",
    "LOG_FORMAT",
    "METRICS_TOKEN",
];

/// The known variable `name` is probably a misspelling of, if any.
pub fn likely_meant(name: &str) -> Option<&'static str> {
    if KNOWN_VARIABLES.contains(&name) {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    KNOWN_VARIABLES
        .iter()
        .map(|known| (strsim::damerau_levenshtein(&upper, known), *known))
        .filter(|(distance, known)| *distance <= if known.len() < 8 { 1 } else { 2 })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Fails on the first name in `file` that looks like a known one but is not.
/// Names unlike any of Portico's are left alone: the file may serve other tools.
pub fn check_names<'a>(
    file: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    let mut names: Vec<&String> = names.into_iter().collect();
    names.sort();
    for name in names {
        if let Some(known) = likely_meant(name) {
            return Err(ConfigError::new(
                file,
                format!("{name} is not a Portico setting; did you mean {known}? Rename it, or Portico ignores it"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_names_get_a_suggestion() {
        assert_eq!(likely_meant("ALOWED_IPS"), Some("ALLOWED_IPS"));
        assert_eq!(likely_meant("allowed_ips"), Some("ALLOWED_IPS"));
        assert_eq!(likely_meant("VALID_API_KEY"), Some("VALID_API_KEYS"));
        assert_eq!(likely_meant("PUBLIC_ULR"), Some("PUBLIC_URL"));
        assert_eq!(likely_meant("BINDS"), Some("BIND"));
    }

    #[test]
    fn known_and_unrelated_names_pass() {
        for name in [
            "ALLOWED_IPS",
            "BIND",
            "DATABASE_URL",
            "NODE_ENV",
            "HOME",
            "EDITOR",
        ] {
            assert_eq!(likely_meant(name), None, "{name}");
        }
    }
}
