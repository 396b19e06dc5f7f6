//! Storage amplification: small requests that would make the store hold a
//! lot (long redirect URIs, endless registrations, pending logins).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use cognigate::gateway::SecurityOptions;
use cognigate::gateway::{SqliteStore, StoreHandle};
use serde_json::json;

use crate::gateway::harness::{Gateway, REDIRECT_URI, authorize_uri, full_login, json_body, now, pkce};

fn from(ip: &str, request: Request<Body>) -> Request<Body> {
    let mut request = request;
    request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
    request
}

fn register_request(body: &serde_json::Value) -> Request<Body> {
    Request::post("/oauth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn register_body_over_16_kb_is_refused() {
    let gw = Gateway::start().await;
    let padding = "x".repeat(17 * 1024);
    let response = gw
        .post_json(
            "/oauth/register",
            &json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "software_id": padding}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn register_redirect_uri_longer_than_2_kb_is_refused() {
    let gw = Gateway::start().await;
    let long = format!("http://127.0.0.1:1/cb?{}", "a".repeat(2100));
    let response =
        gw.post_json("/oauth/register", &json!({"redirect_uris": [long], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_body(response).await;
    assert_eq!(body["error"], "invalid_redirect_uri");
    assert!(body["error_description"].as_str().unwrap().contains("at most 2048"), "{body}");
}

#[tokio::test]
async fn register_is_rate_limited_per_ip_with_retry_after() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_register_per_minute(3)).await;
    let body = json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"});
    // At most 3 per minute window: 8 requests span at most two windows, so at
    // most 6 pass whatever the clock does.
    let mut limited = None;
    for _ in 0..8 {
        let response = gw.send(from("203.0.113.7", register_request(&body))).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let limited = limited.expect("a registration past the limit is refused");
    let retry_after: i64 = limited.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(json_body(limited).await["error"], "too_many_requests");
    // Another address is not affected.
    let other = gw.send(from("198.51.100.1", register_request(&body))).await;
    assert_eq!(other.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn pending_logins_per_client_are_capped() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_pending_logins_per_client(3)).await;
    let client_id = gw.register().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri(&client_id, &challenge, Some("http://gw.test/mcp/echo"));
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(gw.get(&uri).await.status());
    }
    assert_eq!(&statuses[..3], [StatusCode::FOUND; 3], "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "pending logins past the cap are refused: {statuses:?}");
    // Another client still gets through.
    let other = gw.register().await;
    assert_eq!(
        gw.get(&authorize_uri(&other, &challenge, Some("http://gw.test/mcp/echo"))).await.status(),
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn pending_logins_of_all_clients_together_are_bounded() {
    let security = SecurityOptions::default().with_pending_logins_total(3);
    let gw = Gateway::start_with_security(security).await;
    let (_, challenge) = pkce();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let client_id = gw.register().await;
        statuses.push(gw.get(&authorize_uri(&client_id, &challenge, Some("http://gw.test/mcp/echo"))).await.status());
    }
    assert_eq!(&statuses[..3], [StatusCode::FOUND; 3], "{statuses:?}");
    assert_eq!(&statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2], "past the global bound: {statuses:?}");
}

#[tokio::test]
async fn authorize_is_rate_limited_per_ip() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_authorize_per_minute(2)).await;
    let client_id = gw.register().await;
    let (_, challenge) = pkce();
    let uri = authorize_uri(&client_id, &challenge, Some("http://gw.test/mcp/echo"));
    let mut last = StatusCode::OK;
    // At most 2 per minute: within 6 requests (two windows at worst) one is refused.
    for _ in 0..6 {
        last = gw.send(from("203.0.113.8", Request::get(&uri).body(Body::empty()).unwrap())).await.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// Rows in the gateway's SQLite table `table`.
fn rows(gw: &Gateway, table: &str) -> i64 {
    let db = rusqlite::Connection::open(gw.dir.path().join("gw.db")).unwrap();
    db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn device_authorization_is_rate_limited_per_ip_and_limited_requests_store_nothing() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_authorize_per_minute(3)).await;
    let registered = gw
        .post_json(
            "/oauth/register",
            &json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    let client_id = json_body(registered).await["client_id"].as_str().unwrap().to_owned();
    let body = format!("client_id={client_id}&resource=http%3A%2F%2Fgw.test%2Fmcp%2Fecho");
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let request = Request::post("/oauth/device_authorization")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.clone()))
            .unwrap();
        statuses.push(gw.send(from("203.0.113.9", request)).await.status());
    }
    let started = statuses.iter().filter(|status| **status == StatusCode::OK).count();
    // At most 3 per minute window: 30 requests span at most two windows.
    assert!((3..=6).contains(&started), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count(), 30 - started);
    assert_eq!(rows(&gw, "devices"), started as i64, "a refused request stores no device authorization");
    // Another address is not affected.
    let request = Request::post("/oauth/device_authorization")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(gw.send(from("198.51.100.2", request)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn authorize_parameters_longer_than_1_kb_are_refused() {
    let gw = Gateway::start().await;
    let client_id = gw.register().await;
    let (_, challenge) = pkce();
    let uri = format!(
        "{}&state={}",
        authorize_uri(&client_id, &challenge, Some("http://gw.test/mcp/echo")),
        "s".repeat(1100)
    )
    .replace("state=client-state-1&", "");
    let response = gw.get(&uri).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
}

#[tokio::test]
async fn unused_registrations_expire_and_used_ones_stay() {
    let gw = Gateway::start().await;
    let unused = gw.register().await;
    let used = gw.register().await;
    full_login(&gw, &used).await;
    let store: StoreHandle = SqliteStore::open(&gw.dir.path().join("gw.db")).unwrap().into();
    // The sweep the gateway runs every minute, with a cut-off past both registrations.
    assert_eq!(store.expire_unused_clients(now() + 1).unwrap(), 1);
    assert!(store.client(&unused).unwrap().is_none(), "never used: deleted");
    assert!(store.client(&used).unwrap().is_some(), "completed a login: kept");
}

/// Every client credentials request costs a request to Cognito (billed per
/// token request): made-up client ids from one address are limited per
/// minute before they reach the identity provider.
#[tokio::test]
async fn client_credentials_requests_are_limited_per_ip_before_they_reach_the_identity_provider() {
    let gw = Gateway::start_with_security(SecurityOptions::default().with_authorize_per_minute(2)).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let body = format!(
            "grant_type=client_credentials&client_id=made-up-{n}&client_secret=x&resource=http%3A%2F%2Fgw.test%2Fmcp%2Fecho"
        );
        let request = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        statuses.push(gw.send(from("203.0.113.9", request)).await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{statuses:?}"
    );
    let reached = gw.idp.state.token_requests.lock().unwrap().clone();
    let unauthorized = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert_eq!(reached.len(), unauthorized, "only the requests let through asked the identity provider");
    assert!(reached.len() <= 4, "two windows at worst: {reached:?}");
    for (auth, form) in &reached {
        assert!(auth.as_deref().is_some_and(|a| a.starts_with("Basic ")), "as the machine client: {auth:?}");
        assert!(form.contains(&("grant_type".to_owned(), "client_credentials".to_owned())), "{form:?}");
    }
}
