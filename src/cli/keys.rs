//! `portico keys list | create | revoke | roll`: dashboard keys without a
//! running server, on the same code path as the dashboard and the API
//! (`auth::offline_keys`). With the file store the server must be stopped.

use std::process::ExitCode;

use clap::Subcommand;

use crate::auth::offline_keys::{self, KeysCommand};
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
}

pub fn run(settings: &Settings, args: KeysArgs) -> ExitCode {
    let command = match args {
        KeysArgs::List => KeysCommand::List,
        KeysArgs::Create {
            name,
            role,
            expires_days,
        } => KeysCommand::Create {
            name,
            role,
            expires_days,
        },
        KeysArgs::Revoke { id } => KeysCommand::Revoke { id },
        KeysArgs::Roll { id, grace_seconds } => KeysCommand::Roll {
            id,
            grace_seconds: Some(grace_seconds),
        },
    };
    match super::block_on(offline_keys::run(&settings.data_dir, command)) {
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
