//! Sessions and dashboard keys are shared: a login or a key made on one
//! instance works on the other at once, and a logout or a revocation on
//! one ends it on the other at the very next request.

use serde_json::json;

use super::{key_id, key_me, Pair, CLIENT_KEY};
use crate::helpers::{assert_error, csrf_in, find_key, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_login_on_a_works_on_b_and_a_logout_on_b_ends_it_on_a() {
    let pair = Pair::start(&[]).await;
    let (on_a, on_b) = pair.browsers();
    let csrf = on_a.setup_and_login().await;
    let copied = on_a.session_cookie().expect("a session cookie");

    let (status, page) = on_b.page("/dashboard/security").await;
    assert_eq!(status, 200, "the cookie from A opens B's dashboard: {page}");
    assert_eq!(csrf_in(&page), csrf, "the same session, its CSRF token too");
    let (status, me) = crate::helpers::status_and_json(on_b.me(&[]).await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "session");

    let logout = on_b.submit("/logout", &csrf, &[]).await;
    assert_eq!(logout.status(), 303, "logout on B");

    for (name, server) in pair.both() {
        let replayed = server.fresh().me(&[("cookie", &copied)]).await;
        assert_error(replayed, 401, "missing-api-key").await;
        let page = server
            .fresh()
            .get("/dashboard", &[("cookie", &copied)])
            .await;
        assert_eq!(
            page.status(),
            303,
            "instance {name} sends the old cookie to /login"
        );
        assert_eq!(page.headers()["location"], "/login", "instance {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_generated_on_a_works_on_b_at_once_and_revoked_on_b_is_refused_on_a_at_the_next_request(
) {
    let pair = Pair::start(&[]).await;
    let (on_a, on_b) = pair.browsers();
    let csrf = on_a.setup_and_login().await;
    let key = on_a.generate_key(&csrf, "shared", "client", "never").await;

    let (status, me_on_b) = key_me(&pair.b, &key).await;
    assert_eq!(
        status, 200,
        "the key made on A works on B at once: {me_on_b}"
    );
    assert_eq!(me_on_b["kind"], "dashboard-key");
    let (status, me_on_a) = key_me(&pair.a, &key).await;
    assert_eq!(status, 200, "{me_on_a}");
    assert_eq!(me_on_a["id"], me_on_b["id"], "one principal on both");

    let revoke = format!("/dashboard/security/keys/{}/revoke", key_id(&key));
    assert_eq!(on_b.submit(&revoke, &csrf, &[]).await.status(), 303);

    let refused = pair.a.me_fresh(&[("x-api-key", &key)]).await;
    assert_error(refused, 401, "invalid-api-key").await;
    let refused = pair.b.me_fresh(&[("x-api-key", &key)]).await;
    assert_error(refused, 401, "invalid-api-key").await;

    let in_redis = pair.redis.cli(&["--scan", "--pattern", "portico:*"]);
    assert!(
        in_redis.lines().count() > 0,
        "the state is in Redis, under REDIS_PREFIX"
    );
    for dir in pair.data_dirs() {
        for file in ["users.json", "api-keys.json", "sessions.json"] {
            assert!(!dir.join(file).exists(), "{file} in {}", dir.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_through_the_api_on_b_works_on_a_and_deleted_on_a_is_refused_on_b() {
    let pair = Pair::start(&[]).await;
    let (key, id) = pair.b.create_key(json!({"name": "automation"})).await;
    let (status, me) = key_me(&pair.a, &key).await;
    assert_eq!(status, 200, "{me}");
    let (status, _) = key_me(&pair.b, &key).await;
    assert_eq!(status, 200, "B has checked, and cached, the key");

    let deleted = pair.a.delete(&format!("/api/keys/{id}"), ADMIN_KEY).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let refused = pair.b.me_fresh(&[("x-api-key", &key)]).await;
    assert_error(refused, 401, "invalid-api-key").await;
    let (status, listed) = pair.b.get_json("/api/keys", ADMIN_KEY).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(&id), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_key_is_the_same_client_on_both_instances() {
    let pair = Pair::start(&[]).await;
    let (status, on_a) = pair.a.me_with_key(CLIENT_KEY).await;
    assert_eq!(status, 200, "{on_a}");
    let (status, on_b) = pair.b.me_with_key(CLIENT_KEY).await;
    assert_eq!(status, 200, "{on_b}");
    assert_eq!(on_a["kind"], "client-key");
    assert_eq!(
        on_a["id"], on_b["id"],
        "one client id everywhere, so its quota and its jobs are one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_generated_on_a_is_shown_once_by_b_when_the_redirect_lands_there_and_never_again_on_either(
) {
    let pair = Pair::start(&[]).await;
    let (on_a, on_b) = pair.browsers();
    let csrf = on_a.setup_and_login().await;
    let form = [
        ("name", "behind-proxy"),
        ("role", "client"),
        ("expiry", "never"),
    ];
    let generated = on_a.submit("/dashboard/security/keys", &csrf, &form).await;
    assert_eq!(generated.status(), 303, "the form redirects");
    let location = generated.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/dashboard/security?new="),
        "{location}"
    );
    let waiting = pair
        .redis
        .cli(&["--scan", "--pattern", "portico:one-time-key:*"]);
    let slot = waiting.lines().next().expect("the key waits in Redis");
    let held = pair.redis.cli(&["GET", slot]);

    let (status, shown) = on_b.page(&location).await;
    assert_eq!(status, 200, "{shown}");
    let key = find_key(&shown).expect("B shows the key generated on A");
    assert!(shown.contains("behind-proxy"), "{shown}");
    assert!(!shown.contains("shown once already"), "{shown}");
    assert!(
        !held.contains(&key[4..]),
        "Redis never held the key in clear"
    );
    assert!(!slot.contains(location.split('=').nth(1).unwrap()));
    let (status, me) = key_me(&pair.a, &key).await;
    assert_eq!(status, 200, "the key shown works: {me}");

    for (name, browser) in [("A", &on_a), ("B", &on_b)] {
        let (status, again) = browser.page(&location).await;
        assert_eq!(status, 200, "{again}");
        assert!(find_key(&again).is_none(), "{name} shows it no more");
        assert!(again.contains("shown once already"), "{name}: {again}");
    }
    let left = pair
        .redis
        .cli(&["--scan", "--pattern", "portico:one-time-key:*"]);
    assert_eq!(left.trim(), "", "nothing waits in Redis after the display");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_key_is_not_shown_to_another_session_on_either_instance_nor_lost_by_its_attempt()
{
    let pair = Pair::start(&[]).await;
    let (on_a, on_b) = pair.browsers();
    let csrf = on_a.setup_and_login().await;
    let form = [("name", "mine"), ("role", "client"), ("expiry", "never")];
    let generated = on_a.submit("/dashboard/security/keys", &csrf, &form).await;
    let location = generated.headers()["location"].to_str().unwrap().to_owned();

    let other = pair.b.fresh();
    other
        .login(crate::helpers::USERNAME, crate::helpers::PASSWORD)
        .await;
    let (status, page) = other.page(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        find_key(&page).is_none(),
        "another session of the same user sees no key"
    );

    let (_, shown) = on_b.page(&location).await;
    assert!(
        find_key(&shown).is_some(),
        "the generating session still gets it: {shown}"
    );
}
