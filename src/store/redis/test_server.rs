//! The tests' Redis: one throwaway `redis-server` per test process, on a
//! unix socket in a temporary directory, persisting nothing (`--save ''
//! --appendonly no`); tests that stop Redis start their own `Throwaway`.
//! Each server is started by a watchdog shell in its own process group
//! that reads a pipe whose write end only this process holds: when the
//! value is dropped or the test process ends — however it ends — the pipe
//! closes, and the watchdog stops the server and removes the directory.
//! Each test gets its own connection (its own runtime) and key prefix.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Redis;

const WATCHDOG: &str = r#"
dir="$1"
mkdir -p "$dir"
redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
  --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" \
  </dev/null >>"$dir/redis.out" 2>&1 &
server=$!
echo "$server"
read _end || true
kill "$server" 2>/dev/null
wait "$server"
rm -rf "$dir"
"#;

/// A throwaway `redis-server` in its own temporary directory, stopped and
/// its directory removed when this value is dropped — or, if it never is
/// (a static, a killed test process), when the process ends.
pub struct Throwaway {
    dir: PathBuf,
    watchdog: Option<Child>,
}

impl Throwaway {
    pub fn start() -> Self {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            installed,
            "the Redis back end's tests need redis-server on the PATH: \
             `.ci/run` installs it (Debian: apt-get install redis-server)"
        );
        let dir = std::env::temp_dir().join(format!(
            "portico-redis-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut server = Self {
            dir,
            watchdog: None,
        };
        server.restart();
        server
    }

    /// `unix:///…/redis.sock`: the same address across restarts.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Stops the server (what it held is gone: it persists nothing).
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }

    /// Starts the server again on the same socket, empty.
    pub fn restart(&mut self) {
        self.stop();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("portico-test-redis")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("cannot start the test Redis's watchdog shell");
        let mut pid = [0u8; 16];
        let read = watchdog.stdout.take().unwrap().read(&mut pid).unwrap_or(0);
        assert!(read > 0, "the test Redis did not start");
        self.watchdog = Some(watchdog);
        wait_until_ready(&self.dir, &self.socket());
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.stop();
    }
}

static SERVER: OnceLock<Throwaway> = OnceLock::new();

fn wait_until_ready(dir: &Path, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(client) = redis::Client::open(format!("unix://{}", socket.display())) {
            if let Ok(mut conn) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    panic!("the test Redis did not answer within 20 s; its log:\n{log}");
}

/// This process's test Redis, started on first use.
fn server() -> &'static Throwaway {
    SERVER.get_or_init(Throwaway::start)
}

/// The address of this process's test Redis, for a test that opens
/// connections of its own (one per simulated instance).
pub fn url() -> String {
    server().url()
}

/// A connection to the test Redis whose keys all start with a prefix
/// unique to this call (`test:{name}:{random}`).
pub async fn connect(name: &str) -> Redis {
    let url = server().url();
    let prefix = format!("test:{name}:{:016x}", rand::random::<u64>());
    Redis::connect(&url, &prefix)
        .await
        .expect("cannot connect to the test Redis")
}

/// The key prefix a conformance suite's place `at` maps to: the same place
/// opens the same keys again, and different places never meet.
pub fn place_prefix(redis: &Redis, at: &Path) -> String {
    format!("{}:{}", redis.prefix(), at.display())
}

/// The `open` of a conformance suite for a Redis store built by `make`.
pub fn opener<S>(redis: &Redis, make: impl Fn(Redis) -> S) -> impl Fn(&Path) -> S {
    let redis = redis.clone();
    move |at| make(redis.with_prefix(&place_prefix(&redis, at)))
}

/// The `fail_writes` of a conformance suite for the Redis stores.
pub fn write_faults(redis: &Redis) -> impl Fn(&Path, bool) {
    let redis = redis.clone();
    move |at, failing| super::inject_write_fault(&place_prefix(&redis, at), failing)
}

#[tokio::test]
async fn the_test_redis_answers_and_prefixes_keep_tests_apart() {
    let a = connect("apart").await;
    let b = connect("apart").await;
    assert_ne!(a.prefix(), b.prefix());
    let () = redis::cmd("SET")
        .arg(a.key("x"))
        .arg("from a")
        .query_async(&mut a.conn())
        .await
        .unwrap();
    let seen: Option<String> = redis::cmd("GET")
        .arg(b.key("x"))
        .query_async(&mut b.conn())
        .await
        .unwrap();
    assert_eq!(seen, None);
    assert!(server().dir.starts_with(std::env::temp_dir()));
}
