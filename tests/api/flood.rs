//! Issue 10: a flood of failing requests from hundreds of thousands of
//! distinct forwarded addresses leaves the server's memory where it was,
//! while the throttle stays safe. Runs the real (debug) binary, loopback
//! only, with pipelined HTTP/1.1 over a few keep-alive connections.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{raw_request, simultaneously, start_server, ADMIN_KEY};

const FLOOD: usize = 500_000;
const CONNECTIONS: usize = 4;
/// What the whole flood may add to the server's resident memory: the
/// failure table and its filter (4 MiB, touched as they fill) and slack for
/// the allocator, not room for per-address entries. With one entry per
/// failing address, this flood added 49.7 MiB.
const RSS_GROWTH_BOUND_KIB: u64 = 12 * 1024;
const ATTACKER: &str = "198.51.100.7";
const ATTACKER_FAILURES: usize = 25;

fn resident_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The n-th flood address: every other one an IPv4 address, the rest each
/// in a /64 of its own.
fn flood_address(n: usize) -> String {
    if n.is_multiple_of(2) {
        let v4 = std::net::Ipv4Addr::from(0x0a00_0000 + (n / 2) as u32);
        v4.to_string()
    } else {
        format!("2001:db8:{:x}:{:x}::1", n >> 16, n & 0xffff)
    }
}

fn failing_request(host: &str, from: &str) -> Vec<u8> {
    format!("GET /api/me HTTP/1.1\r\nHost: {host}\r\nx-api-key: wrong-key\r\nX-Forwarded-For: {from}\r\n\r\n")
        .into_bytes()
}

/// Requests written ahead of the answers read: enough to keep the server
/// busy, few enough that no socket buffer fills and stalls a request head.
const IN_FLIGHT: usize = 512;

/// Sends `requests` pipelined on one keep-alive connection and returns how
/// many answers had each of 401 and 429.
async fn pipeline(host: String, requests: Vec<Vec<u8>>) -> (usize, usize) {
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let expected = requests.len();
    let (answered_tx, mut answered) = tokio::sync::watch::channel(0usize);
    let writing = tokio::spawn(async move {
        for (n, chunk) in requests.chunks(IN_FLIGHT / 2).enumerate() {
            let sent = n * (IN_FLIGHT / 2);
            answered
                .wait_for(|&done| sent.saturating_sub(done) < IN_FLIGHT / 2)
                .await
                .unwrap();
            writer.write_all(&chunk.concat()).await.unwrap();
        }
        writer
    });
    let (mut unauthorized, mut throttled) = (0, 0);
    let mut buffer = vec![0u8; 1 << 16];
    let mut carry: Vec<u8> = Vec::new();
    while unauthorized + throttled < expected {
        let read = reader.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        carry.extend_from_slice(&buffer[..read]);
        let mut last = 0;
        for at in memchr_all(&carry, b"HTTP/1.1 ") {
            match &carry[at + 9..(at + 12).min(carry.len())] {
                b"401" => unauthorized += 1,
                b"429" => throttled += 1,
                status if status.len() == 3 => {
                    panic!("status {}", String::from_utf8_lossy(status))
                }
                _ => break,
            }
            last = at + 12;
        }
        carry.drain(..last.max(carry.len().saturating_sub(16)).min(carry.len()));
        let _ = answered_tx.send(unauthorized + throttled);
    }
    drop(writing.await.unwrap());
    (unauthorized, throttled)
}

fn memchr_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_half_a_million_addresses_neither_grows_memory_nor_frees_a_throttled_address()
{
    let data = tempfile::tempdir().unwrap();
    let server = start_server(
        data.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("RUST_LOG", "info,portico::auth=warn"),
        ],
    );
    let pid = server.child.id();
    let host = server.address.trim_start_matches("http://").to_owned();

    // Warm up the workers and the allocator with as many connections as
    // the flood, from a few addresses, then measure.
    let warm_up = (0..CONNECTIONS).map(|c| {
        let requests = (0..5_000)
            .map(|n| failing_request(&host, &format!("192.0.2.{}", (n * CONNECTIONS + c) % 200)))
            .collect();
        tokio::spawn(pipeline(host.clone(), requests))
    });
    futures_util::future::join_all(warm_up).await;
    let before = resident_kib(pid, "VmRSS:");

    let mut per_connection: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CONNECTIONS];
    let attacker_every = FLOOD / ATTACKER_FAILURES;
    for n in 0..FLOOD {
        per_connection[n % CONNECTIONS].push(failing_request(&host, &flood_address(n)));
        if n % attacker_every == attacker_every / 2 {
            per_connection[n % CONNECTIONS].push(failing_request(&host, ATTACKER));
        }
    }
    let started = Instant::now();
    let floods = per_connection
        .into_iter()
        .map(|requests| tokio::spawn(pipeline(host.clone(), requests)));
    let (mut unauthorized, mut throttled) = (0, 0);
    for flood in futures_util::future::join_all(floods).await {
        let (u, t) = flood.unwrap();
        unauthorized += u;
        throttled += t;
    }
    let elapsed = started.elapsed();
    let after = resident_kib(pid, "VmRSS:");
    let peak = resident_kib(pid, "VmHWM:");
    eprintln!(
        "flood: {} requests in {elapsed:.1?} ({:.0}/s); RSS {before} KiB -> {after} KiB, peak {peak} KiB",
        FLOOD + ATTACKER_FAILURES,
        (FLOOD + ATTACKER_FAILURES) as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(unauthorized + throttled, FLOOD + ATTACKER_FAILURES);
    assert_eq!(
        throttled,
        ATTACKER_FAILURES - 20,
        "only the attacker's failures past 20 are throttled"
    );
    assert!(
        after.saturating_sub(before) < RSS_GROWTH_BOUND_KIB,
        "RSS grew by {} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)",
        after - before
    );

    let me = |from: &str| {
        raw_request(
            &server.address,
            "GET",
            "/api/me",
            &[("x-api-key", ADMIN_KEY), ("X-Forwarded-For", from)],
            "",
        )
    };
    let answers = simultaneously(&server.address, &[me(ATTACKER), me("203.0.113.200")]).await;
    assert_eq!(
        answers[0].status, 429,
        "the attacker is still throttled, even with a valid key"
    );
    assert_eq!(
        answers[1].status, 200,
        "a valid key from a fresh address works"
    );
    assert!(
        elapsed < Duration::from_secs(300),
        "the flood is bounded in time"
    );
}
