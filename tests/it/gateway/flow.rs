//! The whole authorization-code flow through the IdP stand-in, the consent
//! screen, and the ID-token checks at the callback.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::Digest;

use super::harness::{
    COGNITO_CLIENT_ID, COGNITO_SECRET, Gateway, PUBLIC_URL, REDIRECT_URI, bearer, body_text, consent_page, full_login,
    id_claims, json_body, location, login_until_callback, pkce, post_consent, query, sign_id_token, unsigned_token,
};

const ECHO: &str = "http://gw.test/mcp/echo";

#[tokio::test]
async fn full_flow_then_proxy_then_refresh() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let tokens = full_login(&gw, &client).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["scope"], "openid email");
    let access = tokens["access_token"].as_str().unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["aud"], ECHO);
    assert_eq!(claims["iss"], PUBLIC_URL);
    assert_eq!(claims["sub"], "user-sub-1");
    assert_eq!(claims["client_id"], client.as_str());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);

    // The IdP leg: client_secret_basic, our callback, a verifier matching the
    // challenge we sent.
    let requests = gw.idp.state.token_requests.lock().unwrap().clone();
    let (auth, form) = &requests[0];
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{COGNITO_CLIENT_ID}:{COGNITO_SECRET}"))
    );
    assert_eq!(auth.as_deref(), Some(expected.as_str()));
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(field("grant_type"), "authorization_code");
    assert_eq!(field("redirect_uri"), "http://gw.test/oauth/callback");
    let sent = gw.idp.state.last_authorize.lock().unwrap().clone().unwrap();
    assert_eq!(s256(&field("code_verifier")), query(&sent, "code_challenge").unwrap(), "PKCE towards the IdP");

    let response = gw.send(bearer("/mcp/echo", access).body(Body::from("{}")).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let refreshed = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed = json_body(refreshed).await;
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"], "rotated");
    let response =
        gw.send(bearer("/mcp/echo", refreshed["access_token"].as_str().unwrap()).body(Body::from("{}")).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = body_text(gw.get("/metrics").await).await;
    assert!(metrics.contains("cognigate_tokens_issued_total{grant_type=\"authorization_code\"} 1"), "{metrics}");
    assert!(metrics.contains("cognigate_tokens_issued_total{grant_type=\"refresh_token\"} 1"), "{metrics}");
}

#[tokio::test]
async fn consent_screen_names_everything_and_is_locked_down() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let callback =
        login_until_callback(&gw, &client, &challenge, ECHO, |nonce| sign_id_token(&id_claims(nonce), "dummy")).await;
    let page = consent_page(callback).await;
    assert!(page.html.contains("Test &lt;Client&gt;"), "client name, escaped");
    assert!(!page.html.contains("Test <Client>"));
    assert!(page.html.contains("127.0.0.1:33418"), "redirect host");
    assert!(page.html.contains("/mcp/echo"), "route");
    assert!(page.html.contains("alice@example.com"), "user");
    assert!(page.html.contains(r#"<form method="post" action="/oauth/consent">"#));
    // Approve starts disabled; the page's script enables it a moment after
    // the page shows or regains focus, and the CSP allows that script alone.
    assert!(page.html.contains(r#"<button type="submit" name="decision" value="approve" disabled>Approve</button>"#));
    let script = page.html.split_once("<script>").unwrap().1.split_once("</script>").unwrap().0;
    assert!(script.contains("setTimeout") && script.contains("visibilitychange"), "{script}");
    let hash = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha2::Sha256::digest(script));
    let csp_text = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp_text.contains(&format!("script-src 'sha256-{hash}'")), "{csp_text}");
    assert!(page.html.contains(r#"<button type="submit" name="decision" value="deny">Deny</button>"#));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self' http://127.0.0.1:33418"), "{csp}");
    let set_cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.starts_with("cognigate_csrf="), "no __Host- prefix over http: {set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax") && !set_cookie.contains("Secure"),
        "{set_cookie}"
    );
}

#[tokio::test]
async fn deny_returns_access_denied() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let page = consent_page(
        login_until_callback(&gw, &client, &challenge, ECHO, |n| sign_id_token(&id_claims(n), "dummy")).await,
    )
    .await;
    let response = post_consent(&gw, &page, "deny").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let to = location(&response);
    assert!(to.as_str().starts_with(REDIRECT_URI));
    assert_eq!(query(&to, "error").unwrap(), "access_denied");
    assert_eq!(query(&to, "state").unwrap(), "client-state-1");
    assert!(query(&to, "code").is_none());
    // Answered once: approving afterwards is refused.
    assert_eq!(post_consent(&gw, &page, "approve").await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn approve_carries_state_and_iss() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let page = consent_page(
        login_until_callback(&gw, &client, &challenge, ECHO, |n| sign_id_token(&id_claims(n), "dummy")).await,
    )
    .await;
    let to = location(&post_consent(&gw, &page, "approve").await);
    assert_eq!(query(&to, "state").unwrap(), "client-state-1");
    assert_eq!(query(&to, "iss").unwrap(), PUBLIC_URL);
    assert!(query(&to, "code").unwrap().len() >= 40);
}

#[tokio::test]
async fn consent_requires_the_csrf_cookie() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let page = consent_page(
        login_until_callback(&gw, &client, &challenge, ECHO, |n| sign_id_token(&id_claims(n), "dummy")).await,
    )
    .await;
    let form = format!("consent_id={}&csrf_token={}&decision=approve", page.consent_id, page.csrf_token);
    // No cookie (a cross-site form post).
    let response = gw
        .send(
            Request::post("/oauth/consent")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A cookie that does not match the form.
    let other = format!("cognigate_csrf={}", "A".repeat(43));
    let response = gw
        .send(
            Request::post("/oauth/consent")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, other)
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The genuine form still works (a forged attempt did not consume it).
    assert_eq!(post_consent(&gw, &page, "approve").await.status(), StatusCode::FOUND);
}

/// Runs the flow with a bad ID token and expects the callback to refuse it.
async fn refused(make: impl FnOnce(&str) -> String) -> (StatusCode, String) {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let response = login_until_callback(&gw, &client, &challenge, ECHO, make).await;
    let status = response.status();
    let body = body_text(response).await;
    assert!(!body.contains("consent_id"), "no consent screen");
    (status, body)
}

#[tokio::test]
async fn callback_rejects_an_expired_id_token() {
    let (status, _) = refused(|n| {
        let mut c = id_claims(n);
        c["exp"] = json!(super::harness::now() - 600);
        sign_id_token(&c, "dummy")
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_a_wrong_issuer() {
    let (status, _) = refused(|n| {
        let mut c = id_claims(n);
        c["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OtherPool");
        sign_id_token(&c, "dummy")
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_a_wrong_audience() {
    let (status, _) = refused(|n| {
        let mut c = id_claims(n);
        c["aud"] = json!("another-app-client");
        sign_id_token(&c, "dummy")
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_an_access_token() {
    let (status, _) = refused(|n| {
        let mut c = id_claims(n);
        c["token_use"] = json!("access");
        sign_id_token(&c, "dummy")
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_a_wrong_nonce() {
    let (status, _) = refused(|_| sign_id_token(&id_claims("not-the-nonce"), "dummy")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_alg_none() {
    let (status, _) = refused(|n| unsigned_token(&id_claims(n))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_hs256() {
    let (status, _) = refused(|n| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("dummy".into());
        // Keyed with the public modulus: the classic RS/HS confusion attack.
        let jwks: Value = serde_json::from_str(include_str!("fixtures/moto-jwks-public.json")).unwrap();
        let key = jsonwebtoken::EncodingKey::from_secret(jwks["keys"][0]["n"].as_str().unwrap().as_bytes());
        jsonwebtoken::encode(&header, &id_claims(n), &key).unwrap()
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callback_rejects_an_unknown_kid_and_rate_limits_jwks_fetches() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    for _ in 0..3 {
        let (_, challenge) = pkce();
        let response =
            login_until_callback(&gw, &client, &challenge, ECHO, |n| sign_id_token(&id_claims(n), "rotated-away"))
                .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(gw.idp.state.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "one re-fetch per 30 s");
    // The known kid still works (keys are cached).
    let (_, challenge) = pkce();
    let response =
        login_until_callback(&gw, &client, &challenge, ECHO, |n| sign_id_token(&id_claims(n), "dummy")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn callback_reports_an_idp_refusal() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let to_idp = location(&gw.get(&super::harness::authorize_uri(&client, &challenge, Some(ECHO))).await);
    let state = query(&to_idp, "state").unwrap();
    // No ID token queued: the IdP answers invalid_grant.
    let response = gw.get(&format!("/oauth/callback?code=stale&state={state}")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_tokens_and_signing_key_survive_a_restart() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let tokens = full_login(&gw, &client).await;
    let restarted = cognigate::gateway::router(Gateway::state(gw.dir.path()));
    use tower::ServiceExt;
    let access = tokens["access_token"].as_str().unwrap();
    let response =
        restarted.clone().oneshot(bearer("/mcp/echo", access).body(Body::from("{}")).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the old access token verifies with the stored key");
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={client}",
        tokens["refresh_token"].as_str().unwrap()
    );
    let response = restarted
        .oneshot(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn full_flow_on_redis_shared_by_two_replicas() {
    let redis = super::harness::RedisServer::start();
    let routes =
        |up: std::net::SocketAddr| json!({"paths": {"/mcp/echo": super::harness::route(&format!("http://{up}/mcp"))}});
    let gw = Gateway::start_on(routes, Some(&redis.url)).await;
    let client = gw.register().await;
    let tokens = full_login(&gw, &client).await;
    // A second replica on the same Redis: same key, same clients and grants.
    let replica = cognigate::gateway::router(Gateway::state_with(
        gw.dir.path(),
        cognigate::gateway::RedisStore::open(&redis.url).unwrap().into(),
    ));
    use tower::ServiceExt;
    let access = tokens["access_token"].as_str().unwrap();
    let response = replica.clone().oneshot(bearer("/mcp/echo", access).body(Body::from("{}")).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={client}",
        tokens["refresh_token"].as_str().unwrap()
    );
    let refresh = |form: String| {
        Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap()
    };
    assert_eq!(replica.clone().oneshot(refresh(form.clone())).await.unwrap().status(), StatusCode::OK);
    // Replaying it on the first replica is reuse: refused.
    assert_eq!(gw.send(refresh(form)).await.status(), StatusCode::BAD_REQUEST);
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}
