//! `portico keys list | create | revoke | roll | usage`: dashboard keys without a
//! running server, on the same code path as the dashboard and the API
//! (`auth::offline_keys`). With the file store the server must be stopped.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::auth::offline_keys::{self, KeysCommand};
use crate::auth::ScopeChanges;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum KeysArgs {
    /// List the keys: id, role, dates and name (never a secret)
    List,
    /// Create a key; prints the key, and nothing else, on stdout
    Create {
        /// A name of 1 to 64 characters
        #[arg(long)]
        name: String,
        /// client (default) or admin
        #[arg(long)]
        role: Option<String>,
        /// 30, 90 or 365; without it the key never expires
        #[arg(long = "expires-days")]
        expires_days: Option<u32>,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Change what a key may reach (permissions, workspaces, addresses,
    /// hourly limit), keeping its secret; prints the new scope as JSON
    Edit {
        /// The key's id (the part after ptk_)
        id: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Revoke a key: its next request gets 401
    Revoke {
        /// The key's id (the part after ptk_)
        id: String,
    },
    /// Give a key a new secret, printed on stdout; the old one keeps working
    /// for the grace period
    Roll {
        /// The key's id (the part after ptk_)
        id: String,
        /// Seconds the old secret keeps working (0 = none, at most 30 days)
        #[arg(long = "grace-seconds", default_value_t = 86_400)]
        grace_seconds: u64,
    },
    /// A key's requests per day over the last seven days: allowed, and
    /// denied by reason
    Usage {
        /// The key's id (the part after ptk_)
        id: String,
    },
}

/// A key's scope on the command line; what is not given stays as it is
/// (for `create`: the role's default).
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Comma-separated: ask, jobs:read, workspaces:read, workspaces:write,
    /// keys:manage (the last two for admin keys only)
    #[arg(long, value_delimiter = ',')]
    permissions: Option<Vec<String>>,
    /// Comma-separated workspace ids the key is held to
    #[arg(long, value_delimiter = ',', conflicts_with = "all_workspaces")]
    workspaces: Option<Vec<String>>,
    /// Let the key reach every workspace again
    #[arg(long)]
    all_workspaces: bool,
    /// Comma-separated addresses or CIDR networks the key may be used from
    #[arg(long = "allow-ips", value_delimiter = ',', conflicts_with = "any_ip")]
    allow_ips: Option<Vec<String>>,
    /// Let the key be used from any address again
    #[arg(long)]
    any_ip: bool,
    /// Requests per hour for this key instead of API_RATE_LIMIT
    #[arg(long, conflicts_with = "default_limit")]
    hourly_limit: Option<u32>,
    /// Use API_RATE_LIMIT for this key again
    #[arg(long)]
    default_limit: bool,
}

impl ScopeArgs {
    fn into_changes(self) -> ScopeChanges {
        ScopeChanges {
            permissions: self.permissions,
            workspaces: if self.all_workspaces {
                Some(None)
            } else {
                self.workspaces.map(Some)
            },
            allowed_ips: if self.any_ip {
                Some(Vec::new())
            } else {
                self.allow_ips
            },
            hourly_limit: if self.default_limit {
                Some(None)
            } else {
                self.hourly_limit.map(Some)
            },
        }
    }
}

pub fn run(settings: &Settings, args: KeysArgs) -> ExitCode {
    let command = match args {
        KeysArgs::List => KeysCommand::List,
        KeysArgs::Create {
            name,
            role,
            expires_days,
            scope,
        } => KeysCommand::Create {
            name,
            role,
            expires_days,
            scope: scope.into_changes(),
        },
        KeysArgs::Edit { id, scope } => KeysCommand::Edit {
            id,
            scope: scope.into_changes(),
        },
        KeysArgs::Revoke { id } => KeysCommand::Revoke { id },
        KeysArgs::Roll { id, grace_seconds } => KeysCommand::Roll {
            id,
            grace_seconds: Some(grace_seconds),
        },
        KeysArgs::Usage { id } => KeysCommand::Usage { id },
    };
    let outcome = super::block_on(async {
        match &settings.redis {
            None => offline_keys::run(&settings.data_dir, command)
                .await
                .map_err(|err| err.to_string()),
            Some(redis) => {
                let stores = super::stores::redis_keys(&super::stores::connect(redis).await?);
                offline_keys::run_on(&stores, command)
                    .await
                    .map_err(|err| err.to_string())
            }
        }
    });
    match outcome {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("portico: {err}");
            ExitCode::FAILURE
        }
    }
}
