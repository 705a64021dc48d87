//! Limits are exact across instances: a client's hourly quota and an
//! address's failed-attempt throttle are one count in Redis, whether the
//! requests alternate between A and B or arrive all at once on both.

use super::{Pair, CLIENT_KEY, OTHER_CLIENT_KEY};
use crate::helpers::{
    assert_error, raw_form, raw_request, simultaneously_at, RawAnswer, RunningServer, PASSWORD,
    USERNAME,
};

fn count(answers: &[RawAnswer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// `r=<remaining>` of a `RateLimit` header.
fn remaining(answer: &reqwest::Response) -> u64 {
    let header = answer.headers()["ratelimit"].to_str().unwrap();
    let r = header
        .split(';')
        .find_map(|part| part.strip_prefix("r="))
        .unwrap_or_else(|| panic!("no r= in {header}"));
    r.parse().unwrap()
}

/// A `GET /api/me` with `key`, from `from` through the trusted proxy.
fn me<'a>(server: &'a RunningServer, key: &str, from: &str) -> (&'a str, Vec<u8>) {
    let request = raw_request(
        &server.address,
        "GET",
        "/api/me",
        &[("x-api-key", key), ("x-forwarded-for", from)],
        "",
    );
    (server.address.as_str(), request)
}

/// The sum over A and B of one metric line's value (`/metrics`, loopback).
async fn metric_on_both(pair: &Pair, line_start: &str) -> u64 {
    let mut total = 0;
    for (_, server) in pair.both() {
        let (status, text) = server.page("/metrics").await;
        assert_eq!(status, 200);
        total += text
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |v| v.parse::<f64>().unwrap() as u64);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_alternating_between_a_and_b_share_one_quota_of_exactly_ten() {
    let pair = Pair::start(&[("API_RATE_LIMIT", "10")]).await;
    let (key, _) = pair
        .a
        .create_key(serde_json::json!({"name": "alternating"}))
        .await;
    for client in [key.as_str(), CLIENT_KEY] {
        let mut passed = 0;
        for n in 0..16 {
            let server = if n % 2 == 0 { &pair.a } else { &pair.b };
            let answer = server.me_fresh(&[("x-api-key", client)]).await;
            if answer.status() == 200 {
                passed += 1;
                assert_eq!(remaining(&answer), 10 - passed, "request {n}: one count");
            } else {
                assert!(n >= 10, "request {n} refused before the quota was used");
                assert_eq!(remaining(&answer), 0);
                assert!(answer.headers().contains_key("retry-after"));
                assert_error(answer, 429, "rate-limited").await;
            }
        }
        assert_eq!(passed, 10, "exactly the quota passes over A and B together");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_simultaneous_requests_split_over_a_and_b_pass_exactly_ten_per_client() {
    let pair = Pair::start(&[("API_RATE_LIMIT", "10")]).await;
    let (key, _) = pair
        .b
        .create_key(serde_json::json!({"name": "burst"}))
        .await;
    let targets: Vec<(&str, Vec<u8>)> = (0..300)
        .map(|n| {
            let server = if (n / 2) % 2 == 0 { &pair.a } else { &pair.b };
            let client = if n % 2 == 0 {
                key.as_str()
            } else {
                OTHER_CLIENT_KEY
            };
            me(server, client, &format!("198.51.100.{}", n % 200 + 1))
        })
        .collect();
    let answers = simultaneously_at(&targets).await;

    for (name, parity) in [("the dashboard key", 0), ("the environment key", 1)] {
        let own: Vec<&RawAnswer> = answers.iter().skip(parity).step_by(2).collect();
        let passed = own.iter().filter(|a| a.status == 200).count();
        let limited = own
            .iter()
            .filter(|a| a.status == 429 && a.body.contains("rate-limited"))
            .count();
        assert_eq!(passed, 10, "{name}: exactly the quota passes");
        assert_eq!(limited, 140, "{name}: the rest is rate-limited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_simultaneous_wrong_secrets_on_a_and_b_cost_at_most_twenty_verifications_in_all(
) {
    let pair = Pair::start(&[]).await;
    let (key, id) = pair
        .a
        .create_key(serde_json::json!({"name": "target"}))
        .await;
    let attacker = "203.0.113.9";
    let mut targets: Vec<(&str, Vec<u8>)> = (0..300)
        .map(|n| {
            let server = if n % 2 == 0 { &pair.a } else { &pair.b };
            me(server, &format!("ptk_{id}_{n:0>48}"), attacker)
        })
        .collect();
    targets.push(me(&pair.b, &key, attacker));
    let before = metric_on_both(
        &pair,
        "portico_argon2_verifications_total{outcome=\"mismatch\"}",
    )
    .await;
    let answers = simultaneously_at(&targets).await;

    let verified = metric_on_both(
        &pair,
        "portico_argon2_verifications_total{outcome=\"mismatch\"}",
    )
    .await
        - before;
    assert!(
        verified <= 20,
        "{verified} wrong secrets verified on A and B (limit 20 in all)"
    );
    let wrong = &answers[..300];
    assert!(count(wrong, 401) <= 20, "{} checked", count(wrong, 401));
    assert!(
        count(wrong, 401) >= 1,
        "the throttle starts after some failures"
    );
    assert_eq!(count(wrong, 401) + count(wrong, 429), 300);
    let right = answers.last().unwrap();
    assert_eq!(
        right.status, 429,
        "the right key, sent last from the address, is refused"
    );
    assert!(right.body.contains("auth-throttled"), "{}", right.body);
    for (name, server) in pair.both() {
        let from_attacker = server
            .me_fresh(&[("x-api-key", &key), ("x-forwarded-for", attacker)])
            .await;
        assert_eq!(
            from_attacker.status(),
            429,
            "instance {name} throttles the address"
        );
        let elsewhere = server
            .me_fresh(&[("x-api-key", &key), ("x-forwarded-for", "198.51.100.7")])
            .await;
        assert_eq!(
            elsewhere.status(),
            200,
            "instance {name}: other addresses are served"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_wrong_passwords_on_a_and_b_share_the_five_failure_login_limit() {
    let pair = Pair::start(&[]).await;
    pair.a.setup().await;
    let mut targets: Vec<(&str, Vec<u8>)> = (0..100)
        .map(|n| {
            let server = if n % 2 == 0 { &pair.a } else { &pair.b };
            let from = format!("10.9.{}.{}", n / 200, n % 200 + 1);
            let fields = [("username", USERNAME), ("password", "a wrong password")];
            let headers = [("X-Forwarded-For", from.as_str())];
            (
                server.address.as_str(),
                raw_form(&server.address, "/login", &headers, &fields),
            )
        })
        .collect();
    let right = [("username", USERNAME), ("password", PASSWORD)];
    let from = [("X-Forwarded-For", "203.0.113.77")];
    targets.push((
        pair.b.address.as_str(),
        raw_form(&pair.b.address, "/login", &from, &right),
    ));
    let answers = simultaneously_at(&targets).await;

    let wrong = &answers[..100];
    assert!(
        count(wrong, 401) <= 5,
        "{} passwords checked (limit 5 in all)",
        count(wrong, 401)
    );
    assert_eq!(count(wrong, 401) + count(wrong, 429), 100);
    assert_eq!(
        answers.last().unwrap().status,
        429,
        "the right password, sent last, waits"
    );
}
