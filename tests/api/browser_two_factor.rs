//! Two-factor login in a real headless Chromium: enrol by reading the
//! secret from the page, log out, log in with a code. The screenshot of the
//! enrol page (`target/screenshots/two-factor-enrol.png`) is checked to
//! show the QR code where the inline SVG is.

use std::io::Cursor;

use fantoccini::Locator;

use crate::browser::{
    click, fill, log_out, open, save_screenshot, set_up_owner, start_browser, wait_for_path,
};
use crate::helpers::{spawn_app, totp_code_in};

/// The share of dark pixels inside `rect` of a PNG screenshot, and how
/// often the middle row changes between dark and light.
fn dark_share_and_edges(png_bytes: &[u8], rect: (f64, f64, f64, f64)) -> (f64, usize) {
    let decoder = png::Decoder::new(Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.line_size / info.width as usize;
    let luma = |x: usize, y: usize| {
        let at = y * info.line_size + x * channels;
        (u32::from(buf[at]) + u32::from(buf[at + 1]) + u32::from(buf[at + 2])) / 3
    };
    let (left, top, width, height) = rect;
    let (x0, y0) = (left.ceil() as usize, top.ceil() as usize);
    let (x1, y1) = (
        ((left + width).floor() as usize).min(info.width as usize),
        ((top + height).floor() as usize).min(info.height as usize),
    );
    assert!(
        x1 > x0 + 100 && y1 > y0 + 100,
        "the QR code is on screen: {rect:?}"
    );
    let mut dark = 0usize;
    for y in y0..y1 {
        for x in x0..x1 {
            dark += usize::from(luma(x, y) < 100);
        }
    }
    let middle = (y0 + y1) / 2;
    let edges = (x0 + 1..x1)
        .filter(|&x| (luma(x, middle) < 100) != (luma(x - 1, middle) < 100))
        .count();
    (dark as f64 / ((x1 - x0) * (y1 - y0)) as f64, edges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_login_works_end_to_end_in_headless_chromium() {
    let app = spawn_app(&[]).await;
    let (_driver, client) = start_browser().await;
    let base = app.address.clone();

    set_up_owner(&client, &base).await;
    open(&client, &base, "/dashboard/security").await;
    click(&client, "#enable-two-factor").await;
    let secret = client
        .wait()
        .for_element(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let qr = client.find(Locator::Css("#totp-qr svg")).await.unwrap();
    let rect = qr.rectangle().await.unwrap();
    let png = save_screenshot(&client, "two-factor-enrol.png").await;
    let (dark, edges) = dark_share_and_edges(&png, rect);
    assert!(
        (0.25..0.75).contains(&dark),
        "a QR code is about half dark: {dark}"
    );
    assert!(edges >= 10, "a QR code row alternates often: {edges}");

    fill(&client, "input[name=code]", &totp_code_in(&secret, 0)).await;
    click(
        &client,
        "form[action='/dashboard/security/two-factor/enable'] button",
    )
    .await;
    let codes = client
        .wait()
        .for_element(Locator::Id("recovery-codes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        codes.lines().filter(|l| !l.trim().is_empty()).count(),
        10,
        "{codes}"
    );

    log_out(&client).await;
    fill(&client, "input[name=username]", crate::helpers::USERNAME).await;
    fill(&client, "input[name=password]", crate::helpers::PASSWORD).await;
    click(&client, "form button[type=submit]").await;
    wait_for_path(&client, "/login/code").await;
    fill(&client, "input[name=code]", &totp_code_in(&secret, 1)).await;
    click(&client, "form button[type=submit]").await;
    wait_for_path(&client, "/dashboard").await;
    open(&client, &base, "/dashboard/security").await;
    let page = client.source().await.unwrap();
    assert!(page.contains("recovery-left"), "two-factor login is on");

    client.close().await.unwrap();
}
