//! RFC 7591 dynamic client registration.

use axum::http::StatusCode;
use serde_json::json;

use super::harness::{Gateway, json_body};

#[tokio::test]
async fn registers_a_public_client() {
    let gw = Gateway::start().await;
    let response = gw
        .post_json("/oauth/register", &json!({"redirect_uris": ["http://127.0.0.1:5173/cb", "cursor://anysphere.cursor-retrieval/oauth/callback"], "token_endpoint_auth_method": "none", "client_name": "Cursor", "logo_uri": "https://x/logo.png"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_body(response).await;
    assert!(body["client_id"].as_str().unwrap().len() >= 20);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(
        body["redirect_uris"],
        json!(["http://127.0.0.1:5173/cb", "cursor://anysphere.cursor-retrieval/oauth/callback"])
    );
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]), "refresh by default, and said so");
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["client_name"], "Cursor");
    assert!(body.get("client_secret").is_none());
}

#[tokio::test]
async fn registers_a_confidential_client_with_a_secret() {
    let gw = Gateway::start().await;
    let body = json_body(gw.post_json("/oauth/register", &json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_post"})).await).await;
    assert!(body["client_secret"].as_str().unwrap().len() >= 40);
    assert_eq!(body["client_secret_expires_at"], 0);
}

#[tokio::test]
async fn refuses_bad_redirect_uris() {
    let gw = Gateway::start().await;
    for uri in ["http://evil.example.com/cb", "javascript:alert(1)", "https://app.example.com/cb#x", "relative/cb"] {
        let response = gw.post_json("/oauth/register", &json!({"redirect_uris": [uri]})).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(json_body(response).await["error"], "invalid_redirect_uri", "{uri}");
    }
    let response = gw.post_json("/oauth/register", &json!({"client_name": "no uris"})).await;
    assert_eq!(json_body(response).await["error"], "invalid_redirect_uri");
}

#[tokio::test]
async fn refuses_bad_metadata() {
    let gw = Gateway::start().await;
    for body in [
        json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": "https://a.example/cb"}),
    ] {
        let response = gw.post_json("/oauth/register", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_body(response).await["error"], "invalid_client_metadata", "{body}");
    }
}
