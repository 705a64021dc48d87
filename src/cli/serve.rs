//! `portico serve`: start the server and run until stopped.

use std::process::ExitCode;

use crate::config::Settings;
use crate::startup::Application;
use crate::telemetry;

pub fn run(settings: Settings) -> ExitCode {
    let _log_writer = telemetry::init_with(&settings.log_filter, settings.log_format);
    settings.log_warnings();
    actix_web::rt::System::new().block_on(async {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(err) => {
                eprintln!("portico: {err}");
                return ExitCode::FAILURE;
            }
        };
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("portico: server error: {err}");
                ExitCode::FAILURE
            }
        }
    })
}
