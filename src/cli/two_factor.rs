//! `portico user disable-2fa <name>`: the way back for a lost device. With
//! the file store the server must be stopped: the command holds the data
//! directory's lock while it writes.

use std::process::ExitCode;

use super::user::open_data_dir;
use crate::auth::two_factor::disable_offline;
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
    let data_dir = open_data_dir(settings)?;
    let outcome = match disable_offline(&data_dir, name).await {
        Ok(outcome) => outcome,
        Err(UserError::NoSuchUser) => {
            return Err(format!(
                "there is no user named '{name}' in {}; nothing was changed",
                data_dir.path().display()
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
