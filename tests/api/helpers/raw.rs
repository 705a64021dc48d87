//! Requests written byte by byte on their own connections, for what
//! `reqwest` will not send and for requests released at the same moment.

use std::time::Duration;

/// A raw HTTP/1.1 request to `address` (`http://host:port`) that closes
/// its connection after the answer.
pub fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let host = address.trim_start_matches("http://");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

/// A raw form POST as the dashboard's pages send it (same `Origin`).
pub fn raw_form(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Vec<u8> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut all = vec![
        ("Origin", address),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    all.extend_from_slice(headers);
    raw_request(address, "POST", path, &all, &body)
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends every request on its own connection at the same moment, as a
/// barrier would: each is written but for its last byte, then the last
/// bytes go out together, in order (so the last request is released last).
/// Returns the answers in order.
pub async fn simultaneously(address: &str, requests: &[Vec<u8>]) -> Vec<RawAnswer> {
    let targets: Vec<(&str, Vec<u8>)> = requests.iter().map(|r| (address, r.clone())).collect();
    simultaneously_at(&targets).await
}

/// `simultaneously`, each request sent to its own address (several servers).
pub async fn simultaneously_at(targets: &[(&str, Vec<u8>)]) -> Vec<RawAnswer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut streams = Vec::with_capacity(targets.len());
    for (address, request) in targets {
        let host = address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .expect("connects");
        stream.set_nodelay(true).unwrap();
        stream
            .write_all(&request[..request.len() - 1])
            .await
            .unwrap();
        streams.push(stream);
    }
    // Every request is now complete but for one byte.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (stream, (_, request)) in streams.iter_mut().zip(targets) {
        stream
            .write_all(&request[request.len() - 1..])
            .await
            .unwrap();
    }
    let answers = streams.into_iter().map(|mut stream| async move {
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw))
            .await
            .expect("answered within 2 minutes")
            .expect("read the answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        RawAnswer {
            status: head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    });
    futures_util::future::join_all(answers).await
}
