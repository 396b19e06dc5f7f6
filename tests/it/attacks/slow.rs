//! Slow and greedy clients against a real listener: trickled headers, idle
//! keep-alive connections, floods of connections, huge heads, slow bodies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cognigate::gateway::SecurityOptions;
use cognigate::gateway::{ConnectionLimits, serve_listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::harness::Gateway;

/// Serves the gateway on a free port with `limits`; the sender stops it.
async fn listen(gw: &Gateway, limits: ConnectionLimits) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(serve_listener(listener, gw.router.clone(), limits, stop_rx));
    (addr, stop_tx)
}

fn limits(header_read_timeout: Duration, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits::new(header_read_timeout, max_connections)
}

/// Reads until the server closes the connection (or 20 s pass: a hang
/// fails the test instead of blocking it); returns what was read.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn trickled_headers_are_cut_off() {
    let gw = Gateway::start().await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_millis(500), 100)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    // One header byte now and then, never the blank line.
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the server closed a connection that never finished its headers");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let gw = Gateway::start().await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_millis(500), 100)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let text = read_until_closed(&mut stream).await.expect("the idle connection is closed");
    assert!(text.starts_with("HTTP/1.1 200"), "served first: {text}");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_others_still_served() {
    let gw = Gateway::start().await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_secs(30), 3)).await;
    // Three silent connections fill the cap.
    let mut holders = Vec::new();
    for _ in 0..3 {
        holders.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let text = read_until_closed(&mut extra).await.expect("closed at once");
    assert!(text.is_empty(), "no answer past the cap: {text}");
    // A slot frees: a new client is served.
    drop(holders.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = TcpStream::connect(addr).await.unwrap();
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let text = read_until_closed(&mut next).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn huge_headers_are_refused_with_431() {
    let gw = Gateway::start().await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_secs(30), 100)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let huge = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = stream.write_all(huge.as_bytes()).await;
    let text = read_until_closed(&mut stream).await.unwrap_or_default();
    assert!(text.starts_with("HTTP/1.1 431"), "{}", &text[..text.len().min(200)]);
}

/// A request whose whole head (request line, headers, blank line) is `size` bytes.
fn head_of(size: usize) -> String {
    let start = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: ";
    let end = "\r\n\r\n";
    format!("{start}{}{end}", "a".repeat(size - start.len() - end.len()))
}

async fn status_line_for(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request.as_bytes()).await;
    let text = read_until_closed(&mut stream).await.unwrap_or_default();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_request_head_limit_is_64_kib_exactly() {
    let gw = Gateway::start().await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_secs(30), 100)).await;
    for size in [1024, 60 * 1024, 64 * 1024] {
        assert_eq!(status_line_for(addr, &head_of(size)).await, "HTTP/1.1 200 OK", "{size} bytes");
    }
    for size in [64 * 1024 + 1, 65 * 1024, 100 * 1024] {
        assert!(status_line_for(addr, &head_of(size)).await.starts_with("HTTP/1.1 431"), "{size} bytes");
    }
    // Many small headers add up the same way.
    let many: String = (0..700).map(|i| format!("X-H{i:03}: {}\r\n", "b".repeat(90))).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{many}\r\n");
    assert!(request.len() > 64 * 1024);
    assert!(status_line_for(addr, &request).await.starts_with("HTTP/1.1 431"), "700 headers");
}

#[tokio::test]
async fn slow_oauth_body_gets_408_and_the_connection_closed() {
    let text = answer_to_withheld_body(b"POST /oauth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"re").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn withheld_device_authorization_body_gets_408_and_the_connection_closed() {
    let text = answer_to_withheld_body(b"POST /oauth/device_authorization HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nclient_id=").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// What a gateway with a 300 ms body deadline answers to `head_and_part`
/// (a request whose body never arrives whole), read until it closes.
async fn answer_to_withheld_body(head_and_part: &[u8]) -> String {
    let gw =
        Gateway::start_with_security(SecurityOptions::default().with_body_read_timeout(Duration::from_millis(300)))
            .await;
    let (addr, _stop) = listen(&gw, limits(Duration::from_secs(30), 100)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head_and_part).await.unwrap();
    read_until_closed(&mut stream).await.expect("closed after the body deadline")
}
