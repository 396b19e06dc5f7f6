//! Token and header abuse not covered elsewhere: a refresh family past its
//! absolute lifetime, and a client forging `X-Forwarded-For`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use cognigate::gateway::security::SecurityOptions;

use crate::gateway::harness::{Gateway, bearer, full_login, json_body, now};

#[tokio::test]
async fn refresh_family_ends_at_its_absolute_lifetime() {
    // A zero lifetime: the family ends at the login, so its first refresh fails.
    let gw = Gateway::start_with_security(SecurityOptions {
        refresh_family_lifetime: Duration::ZERO,
        ..SecurityOptions::default()
    })
    .await;
    let client_id = gw.register().await;
    let tokens = full_login(&gw, &client_id).await;
    let response = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"], "invalid_grant");
}

async fn forwarded_for(gw: &Gateway, peer: &str) -> Option<String> {
    let token = gw.mint("echo", now(), 60);
    let mut request = bearer("/mcp/echo", &token)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", "203.0.113.9")
        .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 5000)));
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["result"]["headers"]["x-forwarded-for"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn forged_x_forwarded_for_is_dropped_unless_from_a_trusted_proxy() {
    let gw = Gateway::start_with_security(SecurityOptions {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..SecurityOptions::default()
    })
    .await;
    assert_eq!(forwarded_for(&gw, "198.51.100.4").await.as_deref(), Some("198.51.100.4"), "the peer only");
    assert_eq!(forwarded_for(&gw, "10.1.2.3").await.as_deref(), Some("203.0.113.9, 10.1.2.3"), "the proxy's chain");
}
