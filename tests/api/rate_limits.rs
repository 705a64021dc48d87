use crate::helpers::{assert_error, retry_after, spawn_app, ADMIN_KEY};

fn remaining(response: &reqwest::Response) -> u32 {
    let field = response.headers()["ratelimit"].to_str().unwrap().to_owned();
    let r = field
        .split(';')
        .find_map(|part| part.strip_prefix("r="))
        .unwrap();
    r.parse().unwrap()
}

#[tokio::test]
async fn five_requests_pass_with_falling_remaining_and_the_sixth_is_refused() {
    let app = spawn_app(&[("API_RATE_LIMIT", "5"), ("VALID_API_KEYS", "alpha,beta")]).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let response = app.me(&[("x-api-key", "alpha")]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"hourly\";q=5;w=3600"
        );
        seen.push(remaining(&response));
    }
    assert_eq!(seen, vec![4, 3, 2, 1, 0]);

    let refused = app.me(&[("x-api-key", "alpha")]).await;
    assert_eq!(remaining(&refused), 0);
    let wait = retry_after(&refused);
    assert!(wait > 0 && wait <= 3600, "Retry-After {wait}");
    let body = assert_error(refused, 429, "rate-limited").await;
    assert_eq!(body["error"], "Rate limit exceeded");

    let other = app.me(&[("x-api-key", "beta")]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(remaining(&other), 4);
}

#[tokio::test]
async fn the_admin_key_has_its_quota_too_and_error_answers_count() {
    let app = spawn_app(&[("API_RATE_LIMIT", "2"), ("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let missing_route = app.get("/api/nothing", &[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(missing_route.status(), 404);
    assert_eq!(remaining(&missing_route), 1);
    assert_eq!(app.me(&[("x-api-key", ADMIN_KEY)]).await.status(), 200);
    assert_error(
        app.me(&[("x-api-key", ADMIN_KEY)]).await,
        429,
        "rate-limited",
    )
    .await;
}
