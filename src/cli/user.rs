//! `portico user …`: the way back in for a forgotten password or a locked-out
//! user. With the file store the server must be stopped: the command holds
//! the data directory's lock while it writes.

use std::io::BufRead;
use std::process::ExitCode;

use secrecy::{ExposeSecret, SecretString};

use std::num::NonZeroU32;
use std::time::Duration;

use crate::auth::failure_counter::{FailureCounter, LOGIN_FAILURES};
use crate::auth::hashing::Hasher;
use crate::auth::session_store::{FileSessionStore, SessionPurge};
use crate::auth::users::{Password, UserError, Users};
use crate::config::Settings;
use crate::dashboard::{user_failures_key, MAX_FAILED_LOGINS};
use crate::store::{DataDir, DataDirError};

/// What a failed command prints, after `portico: `.
type Failure = String;

pub fn reset_password(settings: &Settings, name: &str, password_stdin: bool) -> ExitCode {
    match super::block_on(reset(settings, name, password_stdin)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("portico: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn reset(settings: &Settings, name: &str, password_stdin: bool) -> Result<String, Failure> {
    let (users, sessions, place, _held, redis): (Users, Box<dyn SessionPurge>, String, _, _) =
        match &settings.redis {
            None => {
                let data_dir = open_data_dir(
                    settings,
                    "change the password in the dashboard under Account Security",
                )?;
                let place = data_dir.path().display().to_string();
                let users = Users::load(data_dir.path(), Hasher::for_this_machine())
                    .map_err(|err| format!("cannot read the users in {place}: {err:#}"))?;
                let sessions = FileSessionStore::load(data_dir.path())
                    .map_err(|err| format!("cannot read the sessions: {err:#}"))?;
                (users, Box::new(sessions), place, Some(data_dir), None)
            }
            Some(redis) => {
                let redis = super::stores::connect(redis).await?;
                let (users, sessions) =
                    super::stores::redis_users(&redis, Hasher::for_this_machine());
                (
                    users,
                    Box::new(sessions),
                    "Redis".to_owned(),
                    None,
                    Some(redis),
                )
            }
        };
    let names = users
        .usernames()
        .await
        .map_err(|err| format!("cannot read the users: {err:#}"))?;
    if names.is_empty() {
        return Err(format!(
            "there is no dashboard user in {place} yet; start Portico and open the setup URL \
             it prints"
        ));
    }
    if !names.iter().any(|user| user == name) {
        return Err(format!(
            "there is no user named '{name}'; the users are: {}",
            names.join(", ")
        ));
    }
    let secret = if password_stdin {
        read_stdin_line()?
    } else {
        prompt_twice()?
    };
    let password = Password::parse(secret.expose_secret()).map_err(|why| why.to_string())?;
    let user = match users.reset_password(name, &password).await {
        Ok(user) => user,
        Err(UserError::NoSuchUser) => return Err(format!("there is no user named '{name}'")),
        Err(err) => return Err(format!("the new password could not be saved: {err:#}")),
    };
    let ended = sessions
        .purge_where(crate::auth::session::USER_ID, &user.id)
        .await
        .map_err(|err| {
            format!("the password is changed, but ending the sessions failed: {err:#}")
        })?;
    let lockout = if let Some(redis) = &redis {
        FailureCounter::shared(
            redis,
            LOGIN_FAILURES,
            NonZeroU32::new(MAX_FAILED_LOGINS).expect("non-zero"),
            Duration::from_secs(15 * 60),
        )
        .forget(&user_failures_key(name))
        .await
        .map_err(|err| format!("the password is changed, but the lockout stays: {err:#}"))?;
        "The lockout of the user name is lifted (one of an address ends 15 minutes after \
         its last failure): log in now."
    } else {
        "The login lockout lives in the server's memory and is clear when it starts: start \
         Portico and log in."
    };
    Ok(format!(
        "The password of '{name}' is reset and {ended} session(s) ended. {lockout}"
    ))
}

/// The data directory, held so that no server starts while we write.
/// `while_running` says what the user can do instead while a server holds it.
pub(super) fn open_data_dir(settings: &Settings, while_running: &str) -> Result<DataDir, Failure> {
    let path = &settings.data_dir;
    if !path.is_dir() {
        return Err(format!(
            "there is no data directory at {} (DATA_DIR); run this where Portico runs, \
             with the same DATA_DIR",
            path.display()
        ));
    }
    DataDir::open(path).map_err(|err| match err {
        DataDirError::InUse { path } => format!(
            "a Portico server is running on the data directory {}; stop it first and run \
             this again (or, while it runs, {while_running})",
            path.display()
        ),
        other => other.to_string(),
    })
}

fn read_stdin_line() -> Result<SecretString, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| format!("cannot read the password from standard input: {err}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    line.clear();
    if password.is_empty() {
        return Err("standard input held no password (expected it on the first line)".into());
    }
    Ok(SecretString::from(password))
}

fn prompt_twice() -> Result<SecretString, Failure> {
    let no_terminal = |err: std::io::Error| {
        format!("cannot prompt for the password ({err}); pipe it in with --password-stdin instead")
    };
    let first = rpassword::prompt_password("New password: ").map_err(no_terminal)?;
    let second = rpassword::prompt_password("Repeat the new password: ").map_err(no_terminal)?;
    if first != second {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(SecretString::from(first))
}
