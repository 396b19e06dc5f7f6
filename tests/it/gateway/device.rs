//! The device authorization grant (RFC 8628): a client without a browser
//! gets a user code, the user approves on the verification page after
//! signing in, and the client's polling gets each answer the RFC names.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::harness::{
    Gateway, PUBLIC_URL, body_text, consent_page, id_claims, json_body, location, no_grace, policies, post_consent,
    query, route, sign_id_token,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn register_device_client(gw: &Gateway) -> String {
    let response = gw
        .post_json(
            "/oauth/register",
            &json!({"grant_types": [DEVICE_GRANT, "refresh_token"], "token_endpoint_auth_method": "none", "client_name": "Headless"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await["client_id"].as_str().unwrap().to_owned()
}

async fn start(gw: &Gateway, client: &str) -> Value {
    let response = gw
        .post_form(
            "/oauth/device_authorization",
            &[
                ("client_id", client),
                ("scope", "openid email offline_access"),
                ("resource", &format!("{PUBLIC_URL}/mcp/echo")),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

async fn poll(gw: &Gateway, client: &str, device_code: &str) -> (StatusCode, Value) {
    let response = gw
        .post_form("/oauth/token", &[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client)])
        .await;
    (response.status(), json_body(response).await)
}

/// The user's side: the verification form with `typed`, the IdP, the
/// consent screen (returned, not yet answered).
async fn sign_in_with_code(gw: &Gateway, typed: &str) -> super::harness::ConsentPage {
    let response = gw.post_form("/oauth/device", &[("user_code", typed)]).await;
    assert_eq!(response.status(), StatusCode::FOUND, "a valid code starts the sign-in");
    let to_idp = location(&response);
    gw.idp.will_return(sign_id_token(&id_claims(&query(&to_idp, "nonce").unwrap()), "dummy"));
    let callback = gw.get(&format!("/oauth/callback?code=c&state={}", query(&to_idp, "state").unwrap())).await;
    consent_page(callback).await
}

#[tokio::test]
async fn a_device_signs_in_with_a_user_code_and_polls_for_its_tokens() {
    let gw = Gateway::start().await;
    let client = register_device_client(&gw).await;
    let started = start(&gw, &client).await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert!(!user_code.contains(['0', 'O', '1', 'I']), "{user_code}");
    assert_eq!(started["verification_uri"], "http://gw.test/oauth/device");
    assert_eq!(started["verification_uri_complete"], format!("http://gw.test/oauth/device?user_code={user_code}"));
    assert_eq!(started["interval"], 5);
    assert_eq!(started["expires_in"], 600);

    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("authorization_pending")));
    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("slow_down")), "polled too fast");

    // The verification page: a form, and a wrong code is refused on it.
    let entry = gw.get("/oauth/device").await;
    assert_eq!(entry.status(), StatusCode::OK);
    assert!(body_text(entry).await.contains("name=\"user_code\""));
    let wrong = body_text(gw.get("/oauth/device?user_code=BBBB-BBBB").await).await;
    assert!(wrong.contains("not valid or has expired"), "{wrong}");

    // Typed loosely (lower case, no dash): still the code.
    let page = sign_in_with_code(&gw, &user_code.replace('-', " ").to_lowercase()).await;
    assert!(page.html.contains(&format!("<dd id=\"user-code\">{user_code}</dd>")), "{}", page.html);
    assert!(page.html.contains("<span id=\"client-name\">Headless</span>"));
    assert!(!page.html.contains("loopback-warning"), "only client-id documents with loopback redirects are flagged");
    let done = post_consent(&gw, &page, "approve").await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(body_text(done).await.contains("your device is signed in"));

    let (status, tokens) = poll(&gw, &client, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "openid email offline_access");
    assert!(tokens["refresh_token"].is_string());
    let call = gw
        .send(
            super::harness::bearer("/mcp/echo", tokens["access_token"].as_str().unwrap())
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(call.status(), StatusCode::OK);

    // Single use: the device code answers once, the user code works once.
    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let reused = body_text(gw.get(&format!("/oauth/device?user_code={user_code}")).await).await;
    assert!(reused.contains("not valid or has expired"), "{reused}");

    // Counted as what it was: a device login, not a code exchange.
    let metrics = body_text(gw.get("/metrics").await).await;
    assert!(metrics.contains("cognigate_tokens_issued_total{grant_type=\"device_code\"} 1"), "{metrics}");
    assert!(metrics.contains("cognigate_tokens_issued_total{grant_type=\"authorization_code\"} 0"), "{metrics}");
}

#[tokio::test]
async fn an_unapproved_device_code_expires_with_expired_token() {
    let options = no_grace().with_device_code_lifetime(Duration::from_secs(1));
    let gw = Gateway::start_full(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        None,
        policies(),
        options,
    )
    .await;
    let client = register_device_client(&gw).await;
    let started = start(&gw, &client).await;
    assert_eq!(started["expires_in"], 1, "the configured lifetime is announced");
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("authorization_pending")));

    // Wait out the lifetime: the whole second the code was issued in, and one more.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = body_text(gw.get(&format!("/oauth/device?user_code={user_code}")).await).await;
    assert!(late.contains("not valid or has expired"), "the user can no longer approve it: {late}");
    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("expired_token")), "{body}");
    // Answered once: the expired authorization is gone.
    let (status, body) = poll(&gw, &client, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn a_denied_device_gets_access_denied_and_other_clients_get_nothing() {
    let gw = Gateway::start().await;
    let client = register_device_client(&gw).await;
    let started = start(&gw, &client).await;
    let device_code = started["device_code"].as_str().unwrap();
    let other = register_device_client(&gw).await;
    let (status, body) = poll(&gw, &other, device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    let page = sign_in_with_code(&gw, started["user_code"].as_str().unwrap()).await;
    let done = post_consent(&gw, &page, "deny").await;
    assert!(body_text(done).await.contains("Access denied"));
    let (status, body) = poll(&gw, &client, device_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("access_denied")));
}

#[tokio::test]
async fn only_device_clients_start_and_wrong_codes_are_rate_limited() {
    let gw = Gateway::start().await;
    let browser_client = gw.register().await;
    let response = gw.post_form("/oauth/device_authorization", &[("client_id", browser_client.as_str())]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"], "unauthorized_client");

    let mut last = StatusCode::OK;
    for _ in 0..12 {
        last = gw.get("/oauth/device?user_code=CCCC-CCCC").await.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// The verification form posted with `user_code` from the client address `ip`.
fn verification_from(ip: &str, user_code: &str) -> axum::http::Request<axum::body::Body> {
    let mut request = axum::http::Request::post("/oauth/device")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("user_code={user_code}")))
        .unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip.parse().unwrap(), 40000)));
    request
}

#[tokio::test]
async fn a_limited_address_gets_the_same_answer_for_a_right_code_as_for_a_wrong_one() {
    let gw = Gateway::start().await;
    let client = register_device_client(&gw).await;
    let user_code = start(&gw, &client).await["user_code"].as_str().unwrap().to_owned();
    // Two tries: the per-minute window may roll over between the last wrong
    // code and the right one, but not twice in a row.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut wrong = None;
        for _ in 0..25 {
            let response = gw.send(verification_from("203.0.113.20", "CCCC-CCCC")).await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                wrong = Some(body_text(response).await);
                break;
            }
        }
        let wrong = wrong.expect("wrong codes are limited");
        let right = gw.send(verification_from("203.0.113.20", &user_code)).await;
        let status = right.status();
        answers.push((status, body_text(right).await == wrong));
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(answers.last(), Some(&(StatusCode::TOO_MANY_REQUESTS, true)), "{answers:?}");
    // The code still works from another address.
    assert_eq!(gw.send(verification_from("198.51.100.20", &user_code)).await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn one_user_code_starts_a_bounded_number_of_pending_logins() {
    let gw = Gateway::start().await;
    let client = register_device_client(&gw).await;
    let user_code = start(&gw, &client).await["user_code"].as_str().unwrap().to_owned();
    let mut started = 0;
    // From many addresses, so the per-address limit is not what stops them.
    for n in 0..60 {
        let response = gw.send(verification_from(&format!("203.0.113.{}", 100 + n), &user_code)).await;
        match response.status() {
            StatusCode::FOUND => started += 1,
            status => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        }
    }
    let db = rusqlite::Connection::open(gw.dir.path().join("gw.db")).unwrap();
    let pending: i64 = db.query_row("SELECT COUNT(*) FROM pending_logins", [], |row| row.get(0)).unwrap();
    assert_eq!(pending, started);
    assert!((1..=5).contains(&started), "{started} pending logins for one code");
}

#[tokio::test]
async fn the_link_with_the_code_asks_the_user_to_compare_it_before_signing_in() {
    let gw = Gateway::start().await;
    let client = register_device_client(&gw).await;
    let started = start(&gw, &client).await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let link = started["verification_uri_complete"].as_str().unwrap().strip_prefix(PUBLIC_URL).unwrap().to_owned();

    let page = gw.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK, "the link signs nobody in by itself");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = body_text(page).await;
    assert!(html.contains(&format!("<p id=\"user-code\">{user_code}</p>")), "{html}");
    assert!(html.contains("If someone else sent you this link, close this page"), "{html}");
    assert!(html.contains("<form method=\"post\" action=\"/oauth/device\">"), "{html}");
    assert!(html.contains(&format!("name=\"user_code\" value=\"{user_code}\"")), "{html}");
    let db = rusqlite::Connection::open(gw.dir.path().join("gw.db")).unwrap();
    let pending: i64 = db.query_row("SELECT COUNT(*) FROM pending_logins", [], |row| row.get(0)).unwrap();
    assert_eq!(pending, 0, "no sign-in started before the user confirmed");

    // Another site cannot confirm for the user.
    let forged = gw
        .send(
            axum::http::Request::post("/oauth/device")
                .header("origin", "https://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!("user_code={user_code}")))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The user confirms from the page (same origin): on to the identity provider.
    let confirmed = gw
        .send(
            axum::http::Request::post("/oauth/device")
                .header("origin", PUBLIC_URL)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!("user_code={user_code}")))
                .unwrap(),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::FOUND);
    assert!(location(&confirmed).path().ends_with("/oauth2/authorize"), "{}", location(&confirmed));
}
