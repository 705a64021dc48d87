//! Redis going away mid-traffic: both instances answer the documented 503
//! (`store-unavailable`, `/api/health` with `"store": "unavailable"`), never
//! a 500 or a wrong 401; environment keys keep working; and when Redis is
//! back, service resumes without restarting Portico and nothing accepted
//! before is lost (Redis here keeps an append-only file, as in compose.yaml).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::jobs::Agent;
use super::{key_me, shared_workspace, CLIENT_KEY};
use crate::helpers::{
    eventually, headers, status_and_json, TestClient, TestRedis, ADMIN_KEY, PASSWORD, USERNAME,
};

/// What the background traffic saw: (what was asked, status).
type Seen = Vec<(&'static str, u16)>;

/// Asks both instances, in turn, until `stop`: `/api/me` with the
/// dashboard key and with an environment key, and `/api/health`.
async fn traffic(servers: [TestClient; 2], key: String, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for server in &servers {
            for (what, pairs) in [
                ("dashboard key", vec![("x-api-key", key.as_str())]),
                ("environment key", vec![("x-api-key", CLIENT_KEY)]),
                ("health", vec![]),
            ] {
                let path = if what == "health" {
                    "/api/health"
                } else {
                    "/api/me"
                };
                let request = server.fresh_client().get(server.url(path));
                let answer = request.headers(headers(&pairs)).send().await;
                // 0: the connection failed or closed without an answer.
                let status = answer.map_or(0, |a| a.status().as_u16());
                seen.push((what, status));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// `/api/health`'s status and body (`Null` if it is not JSON).
async fn health(server: &TestClient) -> (u16, Value) {
    let answer = server.fresh().get("/api/health", &[]).await;
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopping_mid_traffic_gives_503s_not_errors_and_its_return_resumes_service_losing_nothing(
) {
    let agent = Agent::new();
    let mut pair = agent.pair(TestRedis::persistent()).await;
    let (on_a, _) = pair.browsers();
    let csrf = on_a.setup_and_login().await;
    let cookie = on_a.session_cookie().unwrap();
    let key = on_a
        .generate_key(&csrf, "before the outage", "client", "never")
        .await;
    let workspace = shared_workspace();
    let ws = pair.a.register_workspace(workspace.path()).await;
    let mut accepted = Vec::new();
    for n in 0..6 {
        let server = if n % 2 == 0 { &pair.a } else { &pair.b };
        let question = format!("slow question {n} accepted before the outage");
        accepted.push(server.ask_question(CLIENT_KEY, &ws, &question).await);
    }
    for (_, server) in pair.both() {
        assert_eq!(key_me(server, &key).await.0, 200);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let servers = [pair.a.http.clone(), pair.b.http.clone()];
    let background = tokio::spawn(traffic(servers, key.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    pair.redis.stop();
    let mut problems = Vec::new();

    for (name, server) in pair.both() {
        let (status, body) = eventually(Duration::from_secs(10), || async {
            let (status, body) = health(server).await;
            if status == 503 {
                Ok((status, body))
            } else {
                Err(format!("instance {name}'s health: {status} {body}"))
            }
        })
        .await;
        assert_eq!(status, 503);
        assert_eq!(body["store"], "unavailable", "instance {name}: {body}");
        let fresh = server.fresh();
        let with_cookie = [("cookie", cookie.as_str())];
        let ask = serde_json::json!({"workspaceId": ws, "question": "during the outage"});
        let answers = [
            (
                "the dashboard key",
                fresh.me(&[("x-api-key", &key)]).await,
                503,
            ),
            ("the session", fresh.me(&with_cookie).await, 503),
            (
                "a question",
                server.post_json("/api/ask", CLIENT_KEY, &ask).await,
                503,
            ),
            (
                "the dashboard",
                fresh.get("/dashboard", &with_cookie).await,
                503,
            ),
            ("a login", fresh.login(USERNAME, PASSWORD).await, 503),
            (
                "the client key",
                fresh.me(&[("x-api-key", CLIENT_KEY)]).await,
                200,
            ),
            (
                "the admin key",
                fresh.me(&[("x-api-key", ADMIN_KEY)]).await,
                200,
            ),
        ];
        for (what, answer, expected) in answers {
            let status = answer.status().as_u16();
            let is_json = answer.headers().get("content-type").is_some_and(|t| {
                t.to_str()
                    .unwrap_or_default()
                    .starts_with("application/json")
            });
            let body = answer.text().await.unwrap_or_default();
            let code_ok = expected != 503 || !is_json || body.contains("\"store-unavailable\"");
            if status != expected || !code_ok {
                problems.push(format!("{name}, {what}: {status} {body}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "while Redis is down:\n{}",
        problems.join("\n")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    pair.redis.restart();
    for (name, server) in pair.both() {
        eventually(Duration::from_secs(15), || async {
            match health(server).await {
                (200, body) if body["store"] == "redis" => Ok(()),
                (status, body) => Err(format!("instance {name} did not resume: {status} {body}")),
            }
        })
        .await;
        let (status, me) = key_me(server, &key).await;
        assert_eq!(
            status, 200,
            "instance {name}: the key made before is still valid: {me}"
        );
        let (status, me) = status_and_json(server.fresh().me(&[("cookie", &cookie)]).await).await;
        assert_eq!(
            status, 200,
            "instance {name}: the session made before lives: {me}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let seen = background.await.unwrap();

    for (name, server) in pair.both() {
        for id in &accepted {
            let job = server.wait_for_job(CLIENT_KEY, id).await;
            assert_eq!(job["status"], "completed", "instance {name}: {job}");
        }
    }
    let after = pair
        .b
        .ask_question(CLIENT_KEY, &ws, "after the outage")
        .await;
    let job = pair.a.wait_for_job(CLIENT_KEY, &after).await;
    assert_eq!(job["status"], "completed", "{job}");

    let statuses = |what: &str| -> Vec<u16> {
        seen.iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, s)| *s)
            .collect()
    };
    let dashboard = statuses("dashboard key");
    assert!(
        dashboard.iter().all(|s| [200, 503].contains(s)),
        "{dashboard:?}"
    );
    assert!(
        dashboard.contains(&503) && dashboard.contains(&200),
        "{dashboard:?}"
    );
    let health_seen = statuses("health");
    assert!(
        health_seen.iter().all(|s| [200, 503].contains(s)),
        "{health_seen:?}"
    );
    let env = statuses("environment key");
    assert!(
        env.iter().all(|s| *s == 200),
        "environment keys never fail: {env:?}"
    );
    pair.assert_no_panic();
}
