//! The `/mcp/{slug}` proxy: bearer checks, header hygiene, streaming, failures.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::json;

use super::harness::{Gateway, bearer, body_text, json_body, now};

const METADATA: &str = "resource_metadata=\"http://gw.test/.well-known/oauth-protected-resource/mcp/echo\", scope=\"openid profile email\"";

fn challenge(response: &axum::response::Response) -> String {
    response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn missing_token_is_a_401_pointing_at_the_metadata() {
    let gw = Gateway::start().await;
    let response = gw.send(Request::post("/mcp/echo").body(Body::from("{}")).unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), format!("Bearer {METADATA}"));
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn invalid_expired_and_other_route_tokens_are_401_invalid_token() {
    let gw = Gateway::start().await;
    let expired = gw.mint("echo", now() - 1000, 60);
    let other_route = gw.mint("other", now(), 60);
    let foreign = {
        let other = Gateway::start().await;
        other.mint("echo", now(), 60)
    };
    for (name, token) in [
        ("garbage", "not-a-jwt".to_owned()),
        ("expired", expired),
        ("other route", other_route),
        ("other gateway's key", foreign),
    ] {
        let response = gw.send(bearer("/mcp/echo", &token).body(Body::from("{}")).unwrap()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(challenge(&response), format!("Bearer error=\"invalid_token\", {METADATA}"), "{name}");
    }
    let response = gw
        .send(
            Request::post("/mcp/echo").header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn forwards_json_with_mcp_headers_and_without_credentials() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 60);
    let response = gw
        .send(
            bearer("/mcp/echo?x=1", &token)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream")
                .header("mcp-session-id", "session-abc")
                .header("mcp-protocol-version", "2025-06-18")
                .header(header::COOKIE, "cognigate_csrf=secret-cookie")
                .header("x-forwarded-for", "203.0.113.9")
                .header(header::HOST, "gw.test")
                .header(header::CONTENT_LENGTH, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.len())
                .header("x-custom", "dropped")
                .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["mcp-session-id"], "session-from-upstream");
    assert!(response.headers().get(header::SET_COOKIE).is_none(), "upstream cookies stay upstream");
    let body = json_body(response).await;
    let seen = &body["result"]["headers"];
    assert_eq!(body["result"]["body"], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(body["result"]["query"], "x=1");
    assert_eq!(seen["mcp-session-id"], "session-abc");
    assert_eq!(seen["mcp-protocol-version"], "2025-06-18");
    assert_eq!(seen["accept"], "application/json, text/event-stream");
    assert_eq!(seen["content-type"], "application/json");
    assert_eq!(
        seen["content-length"],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.len().to_string(),
        "not re-chunked"
    );
    assert!(seen.get("transfer-encoding").is_none(), "{seen}");
    assert!(seen.get("authorization").is_none(), "Authorization never forwarded: {seen}");
    assert!(seen.get("cookie").is_none(), "cookies never forwarded: {seen}");
    assert!(seen.get("x-custom").is_none());
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "gw.test");
}

#[tokio::test]
async fn streams_sse_without_buffering() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 60);
    let response = gw
        .send(
            Request::get("/mcp/echo")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ACCEPT, "text/event-stream")
                .header("last-event-id", "41")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut stream = response.into_body().into_data_stream();
    // The upstream holds its second event (and the end of the body) until
    // released: a gateway that buffered the body would never deliver this.
    let first = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the first event arrives while the upstream still holds the rest")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"id: 1\ndata: first last-event-id=41\n\n");
    gw.upstream.release_second_event.notify_one();
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(&second[..], b"id: 2\ndata: second\n\n");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn delete_passes_and_unlisted_methods_are_405() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 60);
    let response = gw
        .send(
            Request::delete("/mcp/echo")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = gw
        .send(
            Request::put("/mcp/echo")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = gw.send(bearer("/mcp/unknown", &token).body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dead_upstream_is_a_502_with_a_jsonrpc_error() {
    // Reserve a port, then close it: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw =
        Gateway::start_with(|_| json!({"paths": {"/mcp/dead": super::harness::route(&format!("http://{dead}/mcp"))}}))
            .await;
    let token = gw.mint("dead", now(), 60);
    let response = gw.send(bearer("/mcp/dead", &token).body(Body::from("{}")).unwrap()).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        json_body(response).await,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "upstream unavailable"}})
    );
    let metrics = body_text(gw.get("/metrics").await).await;
    assert!(metrics.contains("cognigate_upstream_errors_total{route=\"/mcp/dead\"} 1"), "{metrics}");
}

/// Regression: a refused request's body was left unread, so hyper closed the
/// keep-alive connection and the client's next request on it (with the token
/// it had just obtained) was dropped ("Server disconnected"). Two pipelined
/// requests on one connection must both be answered.
#[tokio::test]
async fn refused_requests_keep_the_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 60);
    let addr = super::harness::spawn(gw.router.clone()).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let refused_head = format!(
        "POST /mcp/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let accepted = format!(
        "POST /mcp/echo HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Like httpx: the head first, the body a moment later.
    stream.write_all(refused_head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = stream.write_all(format!("{body}{accepted}").as_bytes()).await;
    let mut replies = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut replies)).await.unwrap();
    assert!(replies.starts_with("HTTP/1.1 401"), "{replies}");
    assert!(replies.contains("HTTP/1.1 200"), "the second request was answered: {replies}");
    assert!(replies.contains("session-from-upstream"));
}
