//! `portico keys list | create | revoke | roll` (SPEC §1.2) without a
//! running server: the data directory is taken like a server takes it, so
//! these writes are refused while a server holds it (the JSON API does the
//! same live). The operations are `key_admin`'s, as for the dashboard.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::activity::ActivityLog;
use super::dashboard_keys::{Expiry, Keys};
use super::hashing::Hasher;
use super::key_admin::{parse_grace, role_name, Actor, KeyAdmin, KeyFieldError, NewKey};
use super::scope::{Scope, ScopeChanges};
use super::usage::{by_day, hour_of, Counts, FileUsageStore, Hour, Outcome, UsageStore};
use crate::store::{DataDir, DataDirError, StoreError};

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysCommand {
    List,
    Create {
        name: String,
        role: Option<String>,
        expires_days: Option<u32>,
        scope: ScopeChanges,
    },
    /// Changes a key's scope, keeping its secret.
    Edit {
        id: String,
        scope: ScopeChanges,
    },
    Revoke {
        id: String,
    },
    Roll {
        id: String,
        grace_seconds: Option<u64>,
    },
    /// A key's requests per day over the last seven days.
    Usage {
        id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum KeysCommandError {
    #[error(
        "a Portico server is using the data directory {0}; stop it first, or manage keys \
         live with the JSON API (GET/POST /api/keys, DELETE /api/keys/{{id}}, \
         POST /api/keys/{{id}}/roll, GET /api/keys/{{id}}/usage) or on the dashboard's \
         Account Security page"
    )]
    ServerRunning(String),
    #[error("{0}")]
    Invalid(String),
    #[error("there is no key with the id '{0}'; `portico keys list` shows them")]
    NoSuchKey(String),
    #[error("{0:#}")]
    Data(anyhow::Error),
}

/// The actor the audit trail names for changes made here.
const CLI_ACTOR: &str = "portico keys (command line)";

/// The stores a keys command works on: the data directory's files (held
/// with its lock) or Redis (any time, beside running servers).
pub struct KeyStores {
    pub keys: Keys,
    pub activity: ActivityLog,
    pub usage: Arc<dyn UsageStore>,
}

/// Runs `command` on the data directory; returns what goes to stdout
/// (for `create` and `roll`: the key and nothing else).
pub async fn run(data_dir: &Path, command: KeysCommand) -> Result<String, KeysCommandError> {
    let held = DataDir::open(data_dir).map_err(|err| match err {
        DataDirError::InUse { path } => KeysCommandError::ServerRunning(path.display().to_string()),
        other => KeysCommandError::Data(other.into()),
    })?;
    let hasher = Hasher::for_this_machine();
    let stores = KeyStores {
        keys: Keys::load(held.path(), hasher).map_err(KeysCommandError::Data)?,
        activity: ActivityLog::load(held.path()).map_err(KeysCommandError::Data)?,
        usage: Arc::new(FileUsageStore::load(held.path()).map_err(KeysCommandError::Data)?),
    };
    run_on(&stores, command).await
}

/// Runs `command` on `stores` (Redis: see `run` for the files).
pub async fn run_on(stores: &KeyStores, command: KeysCommand) -> Result<String, KeysCommandError> {
    let KeyStores {
        keys,
        activity,
        usage,
    } = stores;
    let admin = KeyAdmin { keys, activity };
    let actor = Actor {
        id: "cli",
        name: CLI_ACTOR,
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        scope: None,
    };
    let invalid = |err: super::key_admin::KeyFieldError| KeysCommandError::Invalid(err.message);
    let output = match command {
        KeysCommand::List => list(keys)
            .await
            .map_err(|err| KeysCommandError::Data(err.into()))?,
        KeysCommand::Create {
            name,
            role,
            expires_days,
            scope,
        } => {
            let new = NewKey::parse(&name, role.as_deref(), Expiry::from_days(expires_days))
                .map_err(invalid)?;
            let scope = Scope::for_role(new.role())
                .apply(new.role(), &scope)
                .map_err(|err| invalid(KeyFieldError::from(err)))?;
            let new = new.with_scope(scope);
            let (plaintext, _) = admin
                .create(&actor, &new)
                .await
                .map_err(KeysCommandError::Data)?;
            format!("{}\n", plaintext.expose_secret())
        }
        KeysCommand::Edit { id, scope } => {
            let record = keys
                .get(&id)
                .await
                .map_err(|err| KeysCommandError::Data(err.into()))?
                .ok_or_else(|| KeysCommandError::NoSuchKey(id.clone()))?;
            let scope = record
                .effective_scope()
                .apply(record.role, &scope)
                .map_err(|err| invalid(KeyFieldError::from(err)))?;
            let edited = admin
                .edit(&actor, &id, scope)
                .await
                .map_err(KeysCommandError::Data)?
                .ok_or(KeysCommandError::NoSuchKey(id))?;
            let scope = serde_json::to_string(&edited.effective_scope())
                .map_err(|err| KeysCommandError::Data(err.into()))?;
            format!("{scope}\n")
        }
        KeysCommand::Revoke { id } => {
            admin
                .revoke(&actor, &id)
                .await
                .map_err(KeysCommandError::Data)?
                .ok_or(KeysCommandError::NoSuchKey(id))?;
            String::new()
        }
        KeysCommand::Roll { id, grace_seconds } => {
            let grace = parse_grace(grace_seconds).map_err(invalid)?;
            let (plaintext, _) = admin
                .roll(&actor, &id, grace)
                .await
                .map_err(KeysCommandError::Data)?
                .ok_or(KeysCommandError::NoSuchKey(id))?;
            format!("{}\n", plaintext.expose_secret())
        }
        KeysCommand::Usage { id } => {
            keys.get(&id)
                .await
                .map_err(|err| KeysCommandError::Data(err.into()))?
                .ok_or_else(|| KeysCommandError::NoSuchKey(id.clone()))?;
            let series = usage
                .series(&id, hour_of(chrono::Utc::now()))
                .await
                .map_err(KeysCommandError::Data)?;
            usage_table(&series)
        }
    };
    activity.flush().await.map_err(KeysCommandError::Data)?;
    Ok(output)
}

/// One key a line: id, role, expiry, last use, name (never a secret).
async fn list(keys: &Keys) -> Result<String, StoreError> {
    let mut out = String::new();
    let when = |time: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        time.map_or_else(
            || none.to_owned(),
            |t| t.format("%Y-%m-%dT%H:%MZ").to_string(),
        )
    };
    let _ = writeln!(out, "ID\tROLE\tCREATED\tEXPIRES\tLAST USED\tNAME");
    for record in keys.list().await? {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            record.id,
            role_name(record.role),
            when(Some(record.created_at), ""),
            when(record.expires_at, "never"),
            when(record.last_used_at, "never"),
            record.name,
        );
    }
    Ok(out)
}

/// One UTC day a line, oldest first, then the total: allowed and each
/// denial reason.
fn usage_table(series: &[(Hour, Counts)]) -> String {
    let mut out = String::from("DAY\tallowed");
    for reason in Outcome::DENIALS {
        let _ = write!(out, "\t{}", reason.code());
    }
    out.push('\n');
    let mut total = Counts::default();
    let mut line = |label: &str, counts: &Counts| {
        let _ = write!(out, "{label}\t{}", counts.allowed());
        for reason in Outcome::DENIALS {
            let _ = write!(out, "\t{}", counts.get(reason));
        }
        out.push('\n');
    };
    for (day, counts) in by_day(series) {
        total.add(&counts);
        line(&day.format("%Y-%m-%d").to_string(), &counts);
    }
    line("TOTAL", &total);
    out
}
