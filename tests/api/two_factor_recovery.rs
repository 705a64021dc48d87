//! Recovery codes, disabling two-factor login, and the offline way back
//! for a lost device (SPEC §6.1).

use crate::helpers::{extract, spawn_app, totp_code_in, PASSWORD, USERNAME};
use crate::two_factor::{enrol, enrolled_at_second_step, give_code, logout};

#[tokio::test]
async fn recovery_codes_are_ten_distinct_codes_of_fifty_bits() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (_, codes) = enrol(&app).await;
    assert_eq!(codes.len(), 10);
    let alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
    for code in &codes {
        let (a, b) = code.split_once('-').expect("xxxxx-xxxxx");
        assert_eq!((a.len(), b.len()), (5, 5), "{code}");
        assert!(
            a.chars().chain(b.chars()).all(|c| alphabet.contains(c)),
            "{code}"
        );
    }
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
}

#[tokio::test]
async fn a_recovery_code_works_once_in_place_of_a_code() {
    let (app, _, codes) = enrolled_at_second_step().await;
    let used = give_code(&app, &codes[3].to_uppercase()).await;
    assert_eq!(used.status(), 303);
    assert_eq!(used.headers()["location"], "/dashboard/security");
    let (_, page) = app.page("/dashboard/security").await;
    assert!(
        page.contains("<strong id=\"recovery-left\">9</strong>"),
        "{page}"
    );
    assert!(page.contains("9 remain"));

    logout(&app).await;
    app.login(USERNAME, PASSWORD).await;
    assert_eq!(give_code(&app, &codes[3]).await.status(), 401, "used once");
    assert_eq!(
        give_code(&app, &codes[4]).await.status(),
        303,
        "the others work"
    );
}

#[tokio::test]
async fn new_recovery_codes_need_the_password_and_kill_the_old_set() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (_, old) = enrol(&app).await;
    let csrf = app.csrf_token().await;
    let path = "/dashboard/security/two-factor/recovery-codes";
    let refused = app
        .submit(path, &csrf, &[("password", "wrong password!!")])
        .await;
    assert_eq!(refused.status(), 303);
    assert!(app
        .page("/dashboard/security")
        .await
        .1
        .contains("password is wrong"));
    let renewed = app.submit(path, &csrf, &[("password", PASSWORD)]).await;
    assert_eq!(renewed.status(), 200);
    let page = renewed.text().await.unwrap();
    let list = extract(&page, "id=\"recovery-codes\">", "</ul>").unwrap();
    let new: Vec<&str> = list
        .split("<li>")
        .skip(1)
        .map(|item| item.split("</li>").next().unwrap().trim())
        .collect();
    assert_eq!(new.len(), 10);

    logout(&app).await;
    app.login(USERNAME, PASSWORD).await;
    assert_eq!(
        give_code(&app, &old[0]).await.status(),
        401,
        "old set is dead"
    );
    assert_eq!(give_code(&app, new[0]).await.status(), 303);
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_current_code() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (secret, _) = enrol(&app).await;
    let csrf = app.csrf_token().await;
    let path = "/dashboard/security/two-factor/disable";
    assert!(
        app.page("/dashboard/security")
            .await
            .1
            .contains("Current code or a recovery code"),
        "the form says a recovery code is taken too"
    );
    let code = totp_code_in(&secret, 1);
    app.submit(
        path,
        &csrf,
        &[("password", "wrong password!!"), ("code", &code)],
    )
    .await;
    app.submit(path, &csrf, &[("password", PASSWORD), ("code", "123")])
        .await;
    assert!(
        app.page("/dashboard/security")
            .await
            .1
            .contains("recovery-left"),
        "still on"
    );
    let disabled = app
        .submit(path, &csrf, &[("password", PASSWORD), ("code", &code)])
        .await;
    assert_eq!(disabled.status(), 303);
    assert!(app
        .page("/dashboard/security")
        .await
        .1
        .contains("Enable two-factor login"));
    assert_eq!(app.fresh_login_status(PASSWORD).await, 303);
    let response = app.fresh().login(USERNAME, PASSWORD).await;
    assert_eq!(
        response.headers()["location"],
        "/dashboard",
        "no second step"
    );
}

#[tokio::test]
async fn disable_2fa_offline_turns_it_off_and_ends_the_users_sessions() {
    let mut app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (secret, _) = enrol(&app).await;
    let copied = app.session_cookie().unwrap();
    app.restart_with(|app| {
        let dir = portico::store::DataDir::open(app.data_dir.path()).expect("the server let go");
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(portico::auth::two_factor::disable_offline(&dir, USERNAME))
                .unwrap()
        })
        .join()
        .unwrap();
        assert!(outcome.was_enabled);
        assert_eq!(outcome.sessions_ended, 1);
    })
    .await;
    let with_copy = app.get("/dashboard", &[("cookie", &copied)]).await;
    assert_eq!(with_copy.status(), 303, "the old session is over");
    let login = app.login(USERNAME, PASSWORD).await;
    assert_eq!(login.headers()["location"], "/dashboard", "no second step");
    assert!(!std::fs::read_to_string(app.data_file("users.json"))
        .unwrap()
        .contains("sealedSecret"));
    let _ = secret;
}
