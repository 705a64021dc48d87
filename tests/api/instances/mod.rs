//! Two real Portico processes, A and B, on one throwaway Redis (SPEC §7):
//! what one instance accepts, the other sees at once; limits are exact
//! across both; jobs run once; and Redis going away answers 503, not 500.
//! Each instance has its own data directory and working directory, as two
//! machines would; only `REDIS_URL` joins them.

mod jobs;
mod limits;
mod outage;
mod sessions_and_keys;
mod workspaces;

use tempfile::TempDir;

use crate::helpers::{
    launch_server, status_and_json, LaunchedServer, RunningServer, TestClient, TestRedis,
    ADMIN_KEY, SETUP_TOKEN,
};

/// A `VALID_API_KEYS` entry both instances are given.
pub const CLIENT_KEY: &str = "client-key-shared-by-both-instances-0123456789";
/// A second one, for tests that need two clients.
pub const OTHER_CLIENT_KEY: &str = "other-client-key-shared-by-both-instances-0123";

/// Two instances on one Redis.
pub struct Pair {
    pub a: RunningServer,
    pub b: RunningServer,
    pub redis: TestRedis,
    dirs: [TempDir; 2],
}

impl Pair {
    /// Both instances, A and B, on a Redis that keeps nothing, with `extra`
    /// variables on top of the shared ones.
    pub async fn start(extra: &[(&str, &str)]) -> Pair {
        Pair::start_on(TestRedis::start(), extra, &[], &[]).await
    }

    /// Both instances on `redis`, with `extra` variables on both, then
    /// `a_only` on A and `b_only` on B.
    pub async fn start_on(
        redis: TestRedis,
        extra: &[(&str, &str)],
        a_only: &[(&str, &str)],
        b_only: &[(&str, &str)],
    ) -> Pair {
        let url = redis.url();
        let both = [
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            (
                "VALID_API_KEYS",
                &format!("{CLIENT_KEY},{OTHER_CLIENT_KEY}"),
            ),
            ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("REDIS_URL", &url),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        // Both start at once, as a compose file starts them: whichever is
        // first generates the shared secrets, the other must read them.
        let a = instance(
            &dirs[0],
            &[&both[..], &owned(extra), &owned(a_only)].concat(),
        );
        let b = instance(
            &dirs[1],
            &[&both[..], &owned(extra), &owned(b_only)].concat(),
        );
        let (a, b) = (a.listening(), b.listening());
        Pair { a, b, redis, dirs }
    }

    /// The same browser (its cookies) pointed at A and at B.
    pub fn browsers(&self) -> (TestClient, TestClient) {
        let a = self.a.http.clone();
        let b = a.at(&self.b.address);
        (a, b)
    }

    /// The data directories of A and B.
    pub fn data_dirs(&self) -> [std::path::PathBuf; 2] {
        self.dirs.each_ref().map(|dir| dir.path().join("data"))
    }

    /// A and B, by name, for tests that alternate between them.
    pub fn both(&self) -> [(&'static str, &RunningServer); 2] {
        [("A", &self.a), ("B", &self.b)]
    }

    /// Asserts that neither instance panicked or died, with their logs.
    pub fn assert_no_panic(&mut self) {
        for (name, server) in [("A", &mut self.a), ("B", &mut self.b)] {
            let log = server.drain_log();
            assert!(
                !log.contains("panicked"),
                "instance {name} panicked:\n{log}"
            );
            assert!(server.is_running(), "instance {name} died:\n{log}");
        }
    }
}

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One instance, started: its own data directory (`DATA_DIR`) and working
/// directory; a later variable of the same name wins.
fn instance(dir: &TempDir, vars: &[(String, String)]) -> LaunchedServer {
    let data = (
        "DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    );
    let mut all: Vec<(&str, &str)> = Vec::new();
    for (name, value) in vars.iter().chain([&data]) {
        all.retain(|(k, _)| k != name);
        all.push((name, value));
    }
    launch_server(dir.path(), &all, &[])
}

/// `GET /api/me` with `key` from a client without cookies (a browser's
/// session would win over the key); the status and the JSON body.
pub async fn key_me(server: &RunningServer, key: &str) -> (u16, serde_json::Value) {
    status_and_json(server.me_fresh(&[("x-api-key", key)]).await).await
}

/// The `ptk_<id>_<secret>` key's id.
pub fn key_id(key: &str) -> &str {
    key.split('_').nth(1).unwrap()
}

/// A workspace directory that both instances can read (they share this
/// machine's file system, as registered directories must be on every
/// instance).
pub fn shared_workspace() -> TempDir {
    crate::helpers::answer_repo()
}
