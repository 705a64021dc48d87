//! `portico user disable-2fa <name>`: the way back for a lost device. With
//! the file store the server must be stopped: the command holds the data
//! directory's lock while it writes.

use std::process::ExitCode;

use super::user::open_data_dir;
use crate::auth::hashing::Hasher;
use crate::auth::two_factor::{disable_offline, disable_on};
use crate::auth::users::UserError;
use crate::config::Settings;

pub fn disable(settings: &Settings, name: &str) -> ExitCode {
    match super::block_on(run(settings, name)) {
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

async fn run(settings: &Settings, name: &str) -> Result<String, String> {
    let (outcome, place) = match &settings.redis {
        None => {
            let data_dir = open_data_dir(
                settings,
                "turn two-factor login off in the dashboard under Account Security, with the \
                 password and a recovery code",
            )?;
            (
                disable_offline(&data_dir, name).await,
                data_dir.path().display().to_string(),
            )
        }
        Some(redis) => {
            let redis = super::stores::connect(redis).await?;
            let (users, sessions) = super::stores::redis_users(&redis, Hasher::new(1));
            (
                disable_on(&users, &sessions, name).await,
                "Redis".to_owned(),
            )
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(UserError::NoSuchUser) => {
            return Err(format!(
                "there is no user named '{name}' in {place}; nothing was changed"
            ))
        }
        Err(err) => return Err(format!("two-factor login could not be turned off: {err:#}")),
    };
    let ended = outcome.sessions_ended;
    Ok(if outcome.was_enabled {
        format!(
            "Two-factor login of '{name}' is off and {ended} session(s) ended. Start Portico, \
             log in with the password and enable it again under Account Security."
        )
    } else {
        format!("'{name}' had no two-factor login; {ended} session(s) ended anyway.")
    })
}
