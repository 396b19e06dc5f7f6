//! `GET` streams read by the gateway's own HTTP/1.1 client: how the body of
//! an upstream's answer is framed (chunked with extensions, interim answers
//! and trailers, `Content-Length`, until close), and what happens when the
//! upstream sends a head too large, a malformed chunk, or dies mid-stream.
//!
//! The upstreams are raw TCP servers that write exactly the bytes a test
//! gives them, in the pieces it gives them, because those are the edge cases
//! an HTTP framework would never produce.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::json;

use super::harness::{Gateway, json_body, now, route};

/// Guards the tests against hanging forever; never asserted on.
const GUARD: Duration = Duration::from_secs(30);

/// What a raw upstream does once its answer is written.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Closes the connection.
    Close,
    /// Keeps it open until the gateway closes its end.
    Hold,
}

struct RawUpstream {
    addr: SocketAddr,
    /// The request head of each connection, as the upstream read it.
    requests: mpsc::Receiver<String>,
    /// One message per held connection that the gateway closed.
    closed_by_gateway: mpsc::Receiver<()>,
}

/// An upstream that reads a request head, then writes `pieces` (flushed one
/// by one, a moment apart, so the gateway reads them separately).
fn raw_upstream(pieces: Vec<Vec<u8>>, then: Then) -> RawUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (requests_tx, requests) = mpsc::channel();
    let (closed_tx, closed_by_gateway) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (pieces, requests_tx, closed_tx) = (pieces.clone(), requests_tx.clone(), closed_tx.clone());
            std::thread::spawn(move || {
                let Some(head) = read_head(&mut stream) else { return };
                let _ = requests_tx.send(head);
                stream.set_nodelay(true).unwrap();
                for piece in &pieces {
                    if stream.write_all(piece).and_then(|()| stream.flush()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(if pieces.len() > 20 { 2 } else { 30 }));
                }
                if then == Then::Hold {
                    let mut rest = [0u8; 256];
                    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    if matches!(stream.read(&mut rest), Ok(0)) {
                        let _ = closed_tx.send(());
                    }
                }
            });
        }
    });
    RawUpstream { addr, requests, closed_by_gateway }
}

fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

fn one_piece(bytes: &[u8]) -> Vec<Vec<u8>> {
    vec![bytes.to_vec()]
}

fn byte_by_byte(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.iter().map(|byte| vec![*byte]).collect()
}

async fn gateway_for(upstream: &RawUpstream) -> Gateway {
    let addr = upstream.addr;
    Gateway::start_with(move |_| json!({"paths": {"/mcp/raw": route(&format!("http://{addr}/mcp"))}})).await
}

async fn open_stream(gw: &Gateway) -> axum::response::Response {
    let token = gw.mint("raw", now(), 60);
    let request = Request::get("/mcp/raw?x=1")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "text/event-stream")
        .header("last-event-id", "7")
        .body(Body::empty())
        .unwrap();
    tokio::time::timeout(GUARD, gw.send(request)).await.expect("no response head")
}

/// The body's frames until it ends, or the error that cut it.
async fn frames(response: axum::response::Response) -> (Vec<Vec<u8>>, Option<String>) {
    let mut stream = response.into_body().into_data_stream();
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(GUARD, stream.next()).await.expect("the body neither ended nor failed") {
            None => return (frames, None),
            Some(Ok(frame)) => frames.push(frame.to_vec()),
            Some(Err(err)) => return (frames, Some(err.to_string())),
        }
    }
}

const CHUNKED_STREAM: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nMcp-Session-Id: up-1\r\nSet-Cookie: upstream=1\r\n\r\n\
7;ext=1\r\n: hi\n\n\n\r\n\
18 ; name=\"a quoted value\"\r\nid: 2\ndata: second one\n\n\r\n\
0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";

#[tokio::test]
async fn chunked_stream_split_anywhere_arrives_whole_and_ends_at_the_last_chunk() {
    for pieces in [one_piece(CHUNKED_STREAM), byte_by_byte(CHUNKED_STREAM)] {
        let upstream = raw_upstream(pieces, Then::Hold);
        let gw = gateway_for(&upstream).await;
        let response = open_stream(&gw).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        assert!(session.starts_with("up-1."), "the upstream's session id is bound to the user: {session}");
        assert!(response.headers().get(header::SET_COOKIE).is_none(), "upstream cookies stay upstream");
        assert!(response.headers().get("x-checksum").is_none(), "trailers are not headers");

        let (frames, error) = frames(response).await;
        assert_eq!(error, None, "the body ends cleanly at the last chunk although the upstream holds the connection");
        assert_eq!(frames.concat(), b": hi\n\n\nid: 2\ndata: second one\n\n");
        upstream.closed_by_gateway.recv_timeout(GUARD).expect("the gateway closes the upstream connection at the end");

        let head = upstream.requests.recv_timeout(GUARD).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /mcp?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nhost: {}\r\n", upstream.addr)), "{head}");
        assert!(head.contains("\r\nlast-event-id: 7\r\n"), "{head}");
        assert!(head.contains("\r\naccept: text/event-stream\r\n"), "{head}");
        assert!(!head.contains("authorization"), "the client's Authorization is never forwarded: {head}");
    }
}

#[tokio::test]
async fn content_length_body_ends_at_its_length_and_a_short_one_is_cut() {
    let exact =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17, 17\r\n\r\n{\"jsonrpc\":\"2.0\"}";
    for pieces in [one_piece(exact), byte_by_byte(exact)] {
        let upstream = raw_upstream(pieces, Then::Hold);
        let gw = gateway_for(&upstream).await;
        let response = open_stream(&gw).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (frames, error) = frames(response).await;
        assert_eq!(error, None);
        assert_eq!(frames.concat(), br#"{"jsonrpc":"2.0"}"#);
        upstream.closed_by_gateway.recv_timeout(GUARD).expect("the gateway closes the upstream connection at the end");
    }

    let empty = raw_upstream(one_piece(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"), Then::Hold);
    let gw = gateway_for(&empty).await;
    let response = open_stream(&gw).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(frames(response).await, (vec![], None));

    let short = raw_upstream(
        one_piece(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\""),
        Then::Close,
    );
    let gw = gateway_for(&short).await;
    let (frames, error) = frames(open_stream(&gw).await).await;
    assert_eq!(frames.concat(), br#"{"partial""#);
    assert!(error.is_some(), "a truncated body must not look complete");
}

#[tokio::test]
async fn body_without_length_or_chunking_ends_when_the_upstream_closes() {
    let events = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let upstream = raw_upstream(
        vec![events.to_vec(), b": one\n\n".to_vec(), b": two\n\n".to_vec(), b"data: 3\n\n".to_vec()],
        Then::Close,
    );
    let gw = gateway_for(&upstream).await;
    let response = open_stream(&gw).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (frames, error) = frames(response).await;
    assert_eq!(error, None);
    assert_eq!(frames.concat(), b": one\n\n: two\n\ndata: 3\n\n");
    assert!(frames.len() >= 3, "each write is passed on as it arrives: {frames:?}");
}

#[tokio::test]
async fn oversized_or_malformed_heads_are_a_502() {
    let huge_header = format!("HTTP/1.1 200 OK\r\nX-Huge: {}\r\n\r\n", "a".repeat(70 * 1024));
    let many_headers = format!("HTTP/1.1 200 OK\r\n{}\r\n", "X-Many: 1\r\n".repeat(101));
    for (what, head) in [
        ("a head over 64 KiB", huge_header),
        ("more than 100 headers", many_headers),
        ("conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_owned()),
        ("a signed length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello".to_owned()),
        ("no status line", "hello\r\n\r\n".to_owned()),
        ("a head cut short", "HTTP/1.1 200 OK\r\nContent-Ty".to_owned()),
        ("a protocol switch", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n".to_owned()),
    ] {
        let upstream = raw_upstream(one_piece(head.as_bytes()), Then::Close);
        let gw = gateway_for(&upstream).await;
        let response = open_stream(&gw).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{what}");
        assert_eq!(json_body(response).await["error"]["message"], "upstream unavailable", "{what}");
    }
}

#[tokio::test]
async fn upstream_dying_or_a_malformed_chunk_cuts_the_client_stream_after_what_was_whole() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (what, rest) in [
        ("dies mid-stream", "7\r\n: hi\n\n\n\r\n20\r\ndata: cut"),
        ("dies between chunks", "7\r\n: hi\n\n\n\r\n"),
        ("a chunk size that is not hex", "7\r\n: hi\n\n\n\r\nzz\r\ndata\r\n"),
        ("a chunk size line without digits", "7\r\n: hi\n\n\n\r\n\r\n"),
        ("a chunk longer than its size", "7\r\n: hi\n\n\nX\r\n"),
        ("a chunk size too large for 64 bits", "7\r\n: hi\n\n\n\r\n1ffffffffffffffff\r\n"),
    ] {
        let upstream = raw_upstream(vec![head.as_bytes().to_vec(), rest.as_bytes().to_vec()], Then::Close);
        let gw = gateway_for(&upstream).await;
        let response = open_stream(&gw).await;
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        let (frames, error) = frames(response).await;
        assert!(error.is_some(), "{what}: the client must see the stream cut, not ended: {frames:?}");
        assert!(frames.concat().starts_with(b": hi\n\n\n"), "{what}: {frames:?}");
    }
}
