//! Headless Chromium on the traps of issue 13: first run on another port
//! without `PUBLIC_URL`, a refresh after generating a key, the confirmation
//! pages, and Account Security on a 390-px-wide phone.

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::browser::{
    click, fill, generate_key, log_out, open, save_screenshot, set_up_owner, start_browser,
    wait_for_path,
};
use crate::helpers::{port_of, spawn_app, spawn_app_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_on_another_port_without_public_url_works_via_localhost_and_127_0_0_1() {
    let (_driver, client) = start_browser().await;
    for name in ["localhost", "127.0.0.1"] {
        let app = spawn_app_on("127.0.0.1:0", &[("PUBLIC_URL", "")]).await;
        let port = port_of(&app.address);
        assert_ne!(port, 3000);
        let base = format!("http://{name}:{port}");
        set_up_owner(&client, &base).await;
        let url = client.current_url().await.unwrap();
        assert_eq!(url.host_str(), Some(name), "stayed on {name}");
        let page = client.source().await.unwrap();
        assert!(page.contains("Overview"), "{name}: {page}");
    }
    client.close().await.unwrap();
}

async fn key_rows(client: &Client) -> usize {
    client
        .find_all(Locator::Css("tr[data-key-id]"))
        .await
        .unwrap()
        .len()
}

/// The bounding box of `css` after scrolling it into view, and the viewport.
async fn box_and_viewport(client: &Client, css: &str) -> serde_json::Value {
    client
        .execute(
            "const el = document.querySelector(arguments[0]);
             el.scrollIntoView({block: 'center'});
             const r = el.getBoundingClientRect();
             return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                     width: window.innerWidth, height: window.innerHeight,
                     scrollWidth: document.documentElement.scrollWidth};",
            vec![json!(css)],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_creates_no_key_confirmations_ask_first_and_revoke_fits_a_phone() {
    let app = spawn_app(&[]).await;
    let (_driver, client) = start_browser().await;
    let base = app.address.clone();
    set_up_owner(&client, &base).await;
    open(&client, &base, "/dashboard/security").await;
    generate_key(&client, "first laptop").await;
    assert_eq!(key_rows(&client).await, 1);

    client.refresh().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css(".flash-error"))
        .await
        .unwrap();
    assert!(
        client.find(Locator::Id("new-key-value")).await.is_err(),
        "not shown again"
    );
    assert_eq!(key_rows(&client).await, 1, "the refresh created no key");

    generate_key(&client, "a key with a rather long name for a phone").await;
    client.set_window_size(1280, 900).await.unwrap();
    let wide = box_and_viewport(&client, "tr[data-key-id] a.danger").await;
    assert!(
        wide["right"].as_f64().unwrap() <= wide["width"].as_f64().unwrap(),
        "Revoke fits at 1280 px: {wide}"
    );
    let overflow: bool = client
        .execute(
            "return [...document.querySelectorAll('.table-wrap')]
                .some(w => w.scrollWidth > w.clientWidth + 1);",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(!overflow, "no table overflows its card at 1280 px");

    client.set_window_size(390, 844).await.unwrap();
    let inner_width = client
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(inner_width.as_f64().unwrap() <= 400.0, "{inner_width}");
    let phone = box_and_viewport(&client, "tr[data-key-id] a.danger").await;
    let (left, right, top, bottom) = (
        phone["left"].as_f64().unwrap(),
        phone["right"].as_f64().unwrap(),
        phone["top"].as_f64().unwrap(),
        phone["bottom"].as_f64().unwrap(),
    );
    assert!(
        left >= 0.0
            && right <= phone["width"].as_f64().unwrap()
            && top >= 0.0
            && bottom <= phone["height"].as_f64().unwrap()
            && right > left,
        "the Revoke button is inside the 390 px viewport: {phone}"
    );
    assert!(
        phone["scrollWidth"].as_f64().unwrap() <= phone["width"].as_f64().unwrap(),
        "the page does not scroll sideways: {phone}"
    );
    save_screenshot(&client, "account-security-390px.png").await;

    // Revoke asks first; Cancel leaves the key.
    client
        .find(Locator::XPath(
            "//tr[td[contains(., 'first laptop')]]//a[contains(@class, 'danger')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = client
        .wait()
        .for_element(Locator::Css(".confirm"))
        .await
        .unwrap();
    assert!(confirm.text().await.unwrap().contains("first laptop"));
    click(&client, ".confirm a.secondary").await;
    wait_for_path(&client, "/dashboard/security").await;
    assert_eq!(key_rows(&client).await, 2, "cancel revoked nothing");

    // An unknown page is a styled 404 with the nav bar.
    open(&client, &base, "/no/such/page").await;
    let page = client.source().await.unwrap();
    assert!(
        page.contains("Page not found") && page.contains("Log out"),
        "{page}"
    );

    // A refused login: the error banner is no wider than the login card.
    client.set_window_size(1280, 900).await.unwrap();
    log_out(&client).await;
    fill(&client, "input[name=username]", "owner").await;
    fill(&client, "input[name=password]", "not the password").await;
    click(&client, "form button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css(".flash-error"))
        .await
        .unwrap();
    let widths = client
        .execute(
            "return [document.querySelector('.flash-error').getBoundingClientRect().width,
                     document.querySelector('.card.narrow').getBoundingClientRect().width];",
            vec![],
        )
        .await
        .unwrap();
    let (banner, card) = (widths[0].as_f64().unwrap(), widths[1].as_f64().unwrap());
    assert!(banner <= card + 0.5, "banner {banner} px, card {card} px");
    let weight = client
        .execute(
            "return getComputedStyle(document.querySelector('input[name=username]')).fontWeight;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(weight, json!("400"), "typed text is not bold");
    client.close().await.unwrap();
}
