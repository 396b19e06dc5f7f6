//! Metadata documents, health and metrics.

use axum::http::StatusCode;
use serde_json::json;

use super::harness::{Gateway, PUBLIC_URL, body_text, json_body};

#[tokio::test]
async fn protected_resource_metadata_per_route() {
    let gw = Gateway::start().await;
    let response = gw.get("/.well-known/oauth-protected-resource/mcp/echo").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json_body(response).await;
    assert_eq!(doc["resource"], "http://gw.test/mcp/echo");
    assert_eq!(doc["authorization_servers"], json!([PUBLIC_URL]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["scopes_supported"], json!(["openid", "profile", "email"]));

    assert_eq!(gw.get("/.well-known/oauth-protected-resource/mcp/nope").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn path_less_metadata_with_several_routes_describes_the_gateway() {
    let gw = Gateway::start().await;
    let response = gw.get("/.well-known/oauth-protected-resource").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json_body(response).await;
    // RFC 9728 section 3.3: the resource is the identifier the well-known URL
    // was built from, here the gateway's public URL.
    assert_eq!(doc["resource"], PUBLIC_URL);
    assert_eq!(doc["authorization_servers"], json!([PUBLIC_URL]));
    assert_eq!(doc["scopes_supported"], json!(["email", "openid", "profile"]));
    let name = doc["resource_name"].as_str().unwrap();
    assert!(name.contains("/mcp/echo") && name.contains("/mcp/other"), "{name}");
}

#[tokio::test]
async fn path_less_metadata_with_one_route() {
    let gw =
        Gateway::start_with(|up| json!({"paths": {"/mcp/solo": super::harness::route(&format!("http://{up}/mcp"))}}))
            .await;
    let doc = json_body(gw.get("/.well-known/oauth-protected-resource").await).await;
    assert_eq!(doc["resource"], "http://gw.test/mcp/solo");
}

#[tokio::test]
async fn authorization_server_metadata() {
    let gw = Gateway::start().await;
    let doc = json_body(gw.get("/.well-known/oauth-authorization-server").await).await;
    assert_eq!(doc["issuer"], PUBLIC_URL);
    assert_eq!(doc["authorization_endpoint"], "http://gw.test/oauth/authorize");
    assert_eq!(doc["token_endpoint"], "http://gw.test/oauth/token");
    assert_eq!(doc["registration_endpoint"], "http://gw.test/oauth/register");
    assert_eq!(doc["revocation_endpoint"], "http://gw.test/oauth/revoke");
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "client_credentials"
        ])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_post", "client_secret_basic"])
    );
    let jwks = json_body(gw.get("/oauth/jwks").await).await;
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
}

#[tokio::test]
async fn health_and_metrics() {
    let gw = Gateway::start().await;
    let response = gw.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "ok");
    gw.get("/mcp/echo").await; // a 401, counted
    let response = gw.get("/metrics").await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = body_text(response).await;
    assert!(text.contains("cognigate_requests_total{route=\"/mcp/echo\",status=\"401\"} 1"), "{text}");
    assert!(text.contains("cognigate_request_duration_seconds_count{route=\"/mcp/echo\"} 1"), "{text}");
    assert!(text.contains("cognigate_tokens_issued_total{grant_type=\"authorization_code\"} 0"), "{text}");
}

#[tokio::test]
async fn cors_for_fetch_endpoints_only() {
    use axum::body::Body;
    use axum::http::{Request, header};
    let gw = Gateway::start().await;
    let preflight = gw
        .send(
            Request::builder()
                .method("OPTIONS")
                .uri("/oauth/token")
                .header(header::ORIGIN, "http://localhost:6274")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("mcp-session-id"));

    // The proxy route handles CORS itself (it sits outside the middleware stack).
    let mcp_preflight = gw
        .send(
            Request::builder()
                .method("OPTIONS")
                .uri("/mcp/echo")
                .header(header::ORIGIN, "http://localhost:6274")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(mcp_preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(mcp_preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(mcp_preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("authorization"));

    // From the gateway's own origin (other origins need --allowed-origin: see attacks::rebinding).
    let unauthorized =
        gw.send(Request::post("/mcp/echo").header(header::ORIGIN, PUBLIC_URL).body(Body::empty()).unwrap()).await;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        unauthorized.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("www-authenticate")
    );

    let page = gw
        .send(
            Request::get("/oauth/authorize").header(header::ORIGIN, "http://evil.example").body(Body::empty()).unwrap(),
        )
        .await;
    assert!(page.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no CORS on browser pages");
}
