//! The command line (SPEC §1.2): `portico` alone serves; subcommands manage
//! users and check health. Arguments are parsed before anything is read or
//! created, so `--help` and `--version` touch nothing.
//! Layer 7, above `startup` (README, "The module map").

mod healthcheck;
mod keys;
mod migrate;
mod serve;
mod stores;
mod two_factor;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

/// Exit code of a setting that cannot be right (SPEC §1).
const CONFIG_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "A self-hosted gate in front of a code-question API",
    long_about = "A self-hosted gate in front of a code-question API.\n\n\
                  Settings come from the environment, .env.local and .env (see README.md). \
                  Without a command, Portico serves."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (what `portico` alone does)
    Serve,
    /// Manage the dashboard user (stop the server first when using the file store)
    #[command(subcommand)]
    User(UserCommand),
    /// Exit 0 when the configured server answers /api/health, else 1
    Healthcheck,
    /// Manage dashboard API keys (stop the server first when using the file store)
    #[command(subcommand)]
    Keys(keys::KeysArgs),
    /// Move the state to another store
    #[command(subcommand)]
    Migrate(MigrateCommand),
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Copy a file data directory (stopped) into Redis; running it again copies nothing twice
    ToRedis {
        /// The data directory to copy (default: DATA_DIR)
        #[arg(long = "data-dir")]
        data_dir: Option<std::path::PathBuf>,
        /// The Redis to copy into (default: REDIS_URL); keys get REDIS_PREFIX
        #[arg(long = "redis-url")]
        redis_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set a new password, end every session of the user and clear the login lockout
    ResetPassword {
        /// The user name
        name: String,
        /// Read the new password from the first line of standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Turn off two-factor login (for a lost device) and end every session of the user
    #[command(name = "disable-2fa")]
    Disable2fa {
        /// The user name
        name: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("portico: configuration error: {err}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(settings),
        Command::Healthcheck => healthcheck::run(&settings),
        Command::Keys(args) => keys::run(&settings, args),
        Command::Migrate(MigrateCommand::ToRedis {
            data_dir,
            redis_url,
        }) => migrate::to_redis(&settings, data_dir, redis_url),
        Command::User(UserCommand::ResetPassword {
            name,
            password_stdin,
        }) => user::reset_password(&settings, &name, password_stdin),
        Command::User(UserCommand::Disable2fa { name }) => two_factor::disable(&settings, &name),
    }
}

/// A current-thread runtime for the commands that do a little async work.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
