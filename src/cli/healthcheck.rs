//! `portico healthcheck`: asks the server at `BIND` for `/api/health`, for
//! container health checks. Exit 0 when it answers 200, else 1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Settings;

const TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(settings: &Settings) -> ExitCode {
    let url = format!("http://{}/api/health", reachable(settings.bind));
    let result = super::block_on(async {
        let response = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?
            .get(&url)
            .send()
            .await?;
        let status = response.status();
        let store = response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .and_then(|body| body["store"].as_str().map(str::to_owned));
        Ok::<_, reqwest::Error>((status, store))
    });
    match result {
        Ok((status, _)) if status.is_success() => {
            println!("healthy: {url} answered {status}");
            ExitCode::SUCCESS
        }
        Ok((status, store)) => {
            match store.as_deref() {
                Some("unavailable") => eprintln!(
                    "unhealthy: {url} answered {status}: its store (Redis) does not answer"
                ),
                _ => eprintln!("unhealthy: {url} answered {status}"),
            }
            ExitCode::FAILURE
        }
        Err(err) => {
            let why = if err.is_timeout() {
                "no answer within 5 seconds".to_owned()
            } else if err.is_connect() {
                "nothing is listening there".to_owned()
            } else {
                err.to_string()
            };
            eprintln!("unhealthy: {url}: {why} (is the server running, with this BIND?)");
            ExitCode::FAILURE
        }
    }
}

/// Where a server bound to `bind` can be reached from this machine.
fn reachable(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bind.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bind.port()).into(),
        _ => bind,
    }
}
