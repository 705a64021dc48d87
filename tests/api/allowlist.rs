use crate::helpers::{assert_error, retry_after, spawn_app, spawn_app_on, TestApp, ADMIN_KEY};

async fn status_with(app: &TestApp, extra: &[(&str, &str)]) -> u16 {
    let mut pairs = vec![("x-api-key", ADMIN_KEY)];
    pairs.extend_from_slice(extra);
    app.me(&pairs).await.status().as_u16()
}

async fn app_allowing(allowed: &str, trusted: Option<&str>) -> TestApp {
    let mut vars = vec![("ADMIN_API_KEY", ADMIN_KEY), ("ALLOWED_IPS", allowed)];
    if let Some(trusted) = trusted {
        vars.push(("TRUSTED_PROXIES", trusted));
    }
    spawn_app(&vars).await
}

#[tokio::test]
async fn an_exact_address_in_the_allowlist_is_let_through() {
    let app = app_allowing("10.9.9.9, 127.0.0.1", None).await;
    assert_eq!(status_with(&app, &[]).await, 200);
}

#[tokio::test]
async fn an_address_outside_the_allowlist_is_refused_before_authentication() {
    let app = app_allowing("10.0.0.1", None).await;
    let response = app.me(&[]).await;
    let body = assert_error(response, 403, "ip-not-allowed").await;
    assert_eq!(body["error"], "Access denied from this IP address");
    assert_error(
        app.me(&[("x-api-key", ADMIN_KEY)]).await,
        403,
        "ip-not-allowed",
    )
    .await;
}

#[tokio::test]
async fn ipv4_cidr_blocks_match_their_addresses_only() {
    assert_eq!(
        status_with(&app_allowing("127.0.0.0/8", None).await, &[]).await,
        200
    );
    assert_eq!(
        status_with(&app_allowing("10.0.0.0/8", None).await, &[]).await,
        403
    );
}

#[tokio::test]
async fn the_wildcard_allows_everyone() {
    assert_eq!(status_with(&app_allowing("*", None).await, &[]).await, 200);
}

#[tokio::test]
async fn ipv6_peers_are_matched_against_ipv6_entries() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this machine has no IPv6 loopback; the IPv6 allowlist cannot be tested");
    };
    drop(probe);
    for (allowed, expected) in [
        ("::1", 200),
        ("::1/128", 200),
        ("fd00::/8", 403),
        ("127.0.0.1", 403),
    ] {
        let app = spawn_app_on(
            "[::1]:0",
            &[("ADMIN_API_KEY", ADMIN_KEY), ("ALLOWED_IPS", allowed)],
        )
        .await;
        assert_eq!(
            status_with(&app, &[]).await,
            expected,
            "ALLOWED_IPS={allowed}"
        );
    }
}

#[tokio::test]
async fn forged_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = app_allowing("203.0.113.7", None).await;
    for header in [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
    ] {
        assert_eq!(status_with(&app, &[header]).await, 403, "{header:?}");
    }
    let app = app_allowing("127.0.0.1", Some("10.0.0.0/8")).await;
    assert_eq!(
        status_with(&app, &[("x-forwarded-for", "203.0.113.7")]).await,
        200
    );
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_name_the_client() {
    let app = app_allowing("203.0.113.7", Some("127.0.0.1")).await;
    assert_eq!(
        status_with(&app, &[("x-forwarded-for", "203.0.113.7")]).await,
        200
    );
    assert_eq!(
        status_with(&app, &[("x-real-ip", "203.0.113.7")]).await,
        200
    );
    assert_eq!(
        status_with(&app, &[("x-forwarded-for", "203.0.113.8")]).await,
        403
    );
    assert_eq!(status_with(&app, &[]).await, 403);
}

#[tokio::test]
async fn x_forwarded_for_wins_over_x_real_ip() {
    let app = app_allowing("203.0.113.7", Some("127.0.0.1")).await;
    let headers = [
        ("x-forwarded-for", "198.51.100.1"),
        ("x-real-ip", "203.0.113.7"),
    ];
    assert_eq!(status_with(&app, &headers).await, 403);
}

#[tokio::test]
async fn a_chain_resolves_to_the_first_untrusted_hop_from_the_right() {
    let chain = [("x-forwarded-for", "203.0.113.7, 198.51.100.9, 10.1.2.3")];
    let trusted = Some("127.0.0.1, 10.0.0.0/8");
    assert_eq!(
        status_with(&app_allowing("198.51.100.9", trusted).await, &chain).await,
        200
    );
    assert_eq!(
        status_with(&app_allowing("203.0.113.7", trusted).await, &chain).await,
        403
    );
    assert_eq!(
        status_with(&app_allowing("10.1.2.3", trusted).await, &chain).await,
        403
    );

    let split_headers = [
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-for", "198.51.100.9, 10.1.2.3"),
    ];
    assert_eq!(
        status_with(&app_allowing("198.51.100.9", trusted).await, &split_headers).await,
        200
    );
}

#[tokio::test]
async fn ipv6_clients_behind_a_trusted_proxy_match_ipv6_blocks() {
    let app = app_allowing("2001:db8::/32", Some("127.0.0.1")).await;
    for hop in ["2001:db8::5", "[2001:db8::5]", "[2001:db8::5]:4711"] {
        assert_eq!(
            status_with(&app, &[("x-forwarded-for", hop)]).await,
            200,
            "{hop}"
        );
    }
    assert_eq!(
        status_with(&app, &[("x-forwarded-for", "2001:db9::5")]).await,
        403
    );
}

#[tokio::test]
async fn health_is_never_blocked_by_the_allowlist() {
    let app = app_allowing("10.0.0.1", None).await;
    assert_eq!(app.get("/api/health", &[]).await.status(), 200);
}

#[tokio::test]
async fn repeated_bad_keys_throttle_their_address_only() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let attacker = ("x-forwarded-for", "198.51.100.66");
    let mut statuses = Vec::new();
    for n in 0..25 {
        let key = format!("guess-{n}");
        statuses.push(
            app.me(&[("x-api-key", &key), attacker])
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 5]);

    let throttled = app.me(&[("x-api-key", ADMIN_KEY), attacker]).await;
    let wait = retry_after(&throttled);
    assert!(wait > 0 && wait <= 900, "Retry-After {wait}");
    let body = assert_error(throttled, 429, "auth-throttled").await;
    assert_eq!(body["error"], "Too many failed attempts");

    let neighbour = app
        .me(&[
            ("x-api-key", ADMIN_KEY),
            ("x-forwarded-for", "198.51.100.67"),
        ])
        .await;
    assert_eq!(neighbour.status(), 200);
}

#[tokio::test]
async fn requests_without_a_key_do_not_count_as_failed_attempts() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    for _ in 0..25 {
        assert_eq!(app.me(&[]).await.status(), 401);
    }
    assert_eq!(app.me(&[("x-api-key", ADMIN_KEY)]).await.status(), 200);
}
