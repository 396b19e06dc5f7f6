//! DNS rebinding and cross-site calls: `Origin` and, on loopback, `Host`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cognigate::gateway::SecurityOptions;
use serde_json::json;
use std::sync::atomic::Ordering;

use crate::gateway::harness::{Gateway, PUBLIC_URL, REDIRECT_URI, bearer, now};

fn mcp(gw: &Gateway, token: &str) -> axum::http::request::Builder {
    let _ = gw;
    bearer("/mcp/echo", token).header(header::CONTENT_TYPE, "application/json")
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

#[tokio::test]
async fn foreign_origin_on_the_mcp_route_is_403_and_never_proxied() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 60);
    let response = gw
        .send(
            mcp(&gw, &token)
                .header(header::ORIGIN, "http://evil.example.com")
                .header(header::HOST, "evil.example.com")
                .body(Body::from(BODY))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(gw.upstream.hits.load(Ordering::SeqCst), 0, "never reached the upstream");
}

#[tokio::test]
async fn foreign_origin_on_oauth_posts_is_403() {
    let gw = Gateway::start().await;
    for path in ["/oauth/register", "/oauth/token", "/oauth/revoke", "/oauth/consent", "/oauth/device_authorization"] {
        let response = gw
            .send(
                Request::post(path)
                    .header(header::ORIGIN, "http://evil.example.com")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json!({"redirect_uris": [REDIRECT_URI]}).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

/// The upstream connect form is refused by the router's guard, before its
/// own CSRF check: the JSON refusal, not the connect flow's page.
#[tokio::test]
async fn foreign_origin_on_the_upstream_connect_form_is_403_from_the_guard() {
    let gw = Gateway::start().await;
    let response = gw
        .send(
            Request::post("/oauth/upstream/connect")
                .header(header::ORIGIN, "http://evil.example.com")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("consent_id=x&csrf_token=y&decision=approve"))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "refused by the guard: {content_type}");
}

#[tokio::test]
async fn own_allowed_and_absent_origins_pass() {
    let gw = Gateway::start_with_security(
        SecurityOptions::default().with_allowed_origins(vec!["http://localhost:6274".into()]),
    )
    .await;
    let token = gw.mint("echo", now(), 60);
    for origin in [Some(PUBLIC_URL), Some("http://localhost:6274"), None] {
        let mut request = mcp(&gw, &token);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let response = gw.send(request.body(Body::from(BODY)).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{origin:?}");
    }
    let response =
        gw.send(mcp(&gw, &token).header(header::ORIGIN, "http://localhost:6275").body(Body::from(BODY)).unwrap()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "only the listed origin");
}

#[tokio::test]
async fn on_loopback_a_foreign_host_is_403() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_loopback_only(true)).await;
    let token = gw.mint("echo", now(), 60);
    let rebound =
        gw.send(mcp(&gw, &token).header(header::HOST, "evil.example.com:9000").body(Body::from(BODY)).unwrap()).await;
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    for host in ["localhost:9000", "127.0.0.1:9000", "[::1]:9000", "gw.test"] {
        let response = gw.send(mcp(&gw, &token).header(header::HOST, host).body(Body::from(BODY)).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    let register = gw
        .send(
            Request::post("/oauth/register")
                .header(header::HOST, "evil.example.com")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(register.status(), StatusCode::FORBIDDEN);
}
