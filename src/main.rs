use std::process::ExitCode;

use portico::config::Settings;
use portico::startup::Application;
use portico::telemetry;

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("portico: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
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
