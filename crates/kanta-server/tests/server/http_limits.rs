//! Slow and idle clients against the application's accept loop (`kanta_api::serve_with`, with
//! the `[server]` limits): raw TCP, so requests can be left half-sent. Regression tests for issue 16, where every one of these
//! connections was still open after 150 s.

use std::time::{Duration, Instant};

use kanta_server::settings::Every;
use kanta_server::testing::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: kanta_api::HttpLimits = kanta_api::HttpLimits {
    header_timeout: Duration::from_millis(300),
    body_timeout: Duration::from_millis(300),
    max_connections: 3,
};

/// The application with [`LIMITS`] in its `[server]` settings, on a fresh SQLite store.
async fn server() -> TestApp {
    let db = kanta_store::testing::sqlite().await.expect("a store");
    let mut settings = kanta_server::testing::settings();
    // Sub-second timeouts cannot be written in a settings file (whole seconds only), but the
    // typed settings take any duration.
    settings.server.header_timeout = Every(Some(LIMITS.header_timeout));
    settings.server.body_timeout = Every(Some(LIMITS.body_timeout));
    settings.server.max_connections = LIMITS.max_connections;
    assert_eq!(settings.server.http_limits().expect("valid limits"), LIMITS);
    TestApp::spawn(db, settings).await
}

/// Reads until the server closes the connection (or 5 s pass: then the test fails); returns
/// what was read and how long it took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "still open after 5 s; read so far: {}", String::from_utf8_lossy(&out));
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test]
async fn unfinished_headers_are_cut_off_at_the_header_timeout() {
    let app = server().await;
    let address = app.address;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: kanta\r\n").await.expect("write");
    let (text, took) = read_until_closed(&mut stream).await;
    assert!(!text.contains("200 OK"), "{text}");
    assert!(took >= Duration::from_millis(250), "closed before the timeout: {took:?}");
}

#[tokio::test]
async fn a_header_byte_every_so_often_does_not_keep_the_connection() {
    let app = server().await;
    let address = app.address;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let started = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: kanta\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let (text, _) = if closed { (String::new(), Duration::ZERO) } else { read_until_closed(&mut stream).await };
    assert!(!text.contains("200 OK"), "the drip-fed request was served: {text}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_stalled_body_gets_408_with_a_json_error() {
    let app = server().await;
    let address = app.address;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: kanta\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"id\":")
        .await
        .expect("write");
    let (text, took) = read_until_closed(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = server().await;
    let address = app.address;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: kanta\r\n\r\n").await.expect("write");
    // The response arrives, then the connection idles until the server closes it.
    let (text, took) = read_until_closed(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\"status\":\"ok\""), "{text}");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_the_cap_frees_up() {
    let app = server().await;
    let address = app.address;
    let mut held = Vec::new();
    for _ in 0..LIMITS.max_connections {
        held.push(TcpStream::connect(address).await.expect("connect"));
    }
    // Let the server accept the three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = TcpStream::connect(address).await.expect("the kernel still accepts");
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: kanta\r\n\r\n").await;
    let (text, took) = read_until_closed(&mut extra).await;
    assert!(text.is_empty(), "{text}");
    assert!(took < Duration::from_millis(250), "closed at once, not by a timeout: {took:?}");
    // The held ones time out (they never sent headers), which frees the cap.
    for mut stream in held {
        read_until_closed(&mut stream).await;
    }
    let response = reqwest::get(format!("http://{address}/healthz")).await.expect("served again");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}
