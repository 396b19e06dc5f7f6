//! `/oauth/token` and `/oauth/revoke`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use super::harness::{
    Gateway, REDIRECT_URI, bearer, consent_page, full_login, id_claims, json_body, location, login_until_callback,
    pkce, post_consent, query, sign_id_token,
};

async fn error_of(response: axum::response::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, json_body(response).await["error"].as_str().unwrap().to_owned())
}

/// A fresh code for `client` with PKCE; returns (code, verifier).
async fn code_for(gw: &Gateway, client: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let callback = login_until_callback(gw, client, &challenge, "http://gw.test/mcp/echo", |n| {
        sign_id_token(&id_claims(n), "dummy")
    })
    .await;
    let page = consent_page(callback).await;
    let code = query(&location(&post_consent(gw, &page, "approve").await), "code").unwrap();
    (code, verifier)
}

#[tokio::test]
async fn grant_type_and_client_errors() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    assert_eq!(
        error_of(gw.post_form("/oauth/token", &[("grant_type", "password"), ("client_id", &client)]).await).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    assert_eq!(
        error_of(gw.post_form("/oauth/token", &[("client_id", &client)]).await).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    assert_eq!(
        error_of(gw.post_form("/oauth/token", &[("grant_type", "authorization_code"), ("code", "x")]).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    assert_eq!(
        error_of(
            gw.post_form(
                "/oauth/token",
                &[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "nobody")]
            )
            .await
        )
        .await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let json_body = gw.post_json("/oauth/token", &json!({"grant_type": "authorization_code"})).await;
    assert_eq!(error_of(json_body).await, (StatusCode::BAD_REQUEST, "invalid_request".into()), "not a form");
    assert_eq!(
        error_of(
            gw.post_form(
                "/oauth/token",
                &[("grant_type", "authorization_code"), ("code", "x"), ("client_id", &client)]
            )
            .await
        )
        .await,
        (StatusCode::BAD_REQUEST, "invalid_request".into()),
        "no code_verifier"
    );
}

#[tokio::test]
async fn code_checks() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let other = gw.register().await;
    let redeem = |code: String, verifier: String, redirect: &'static str, client: String| {
        let gw = &gw;
        async move {
            gw.post_form(
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                    ("client_id", &client),
                ],
            )
            .await
        }
    };
    let (code, verifier) = code_for(&gw, &client).await;
    assert_eq!(
        error_of(redeem(code.clone(), "wrong-verifier-".repeat(4), REDIRECT_URI, client.clone()).await).await.1,
        "invalid_grant",
        "PKCE"
    );
    // A failed attempt consumed the code (single use).
    assert_eq!(error_of(redeem(code, verifier, REDIRECT_URI, client.clone()).await).await.1, "invalid_grant");

    let (code, verifier) = code_for(&gw, &client).await;
    assert_eq!(
        error_of(redeem(code, verifier, "http://127.0.0.1:1/other", client.clone()).await).await.1,
        "invalid_grant",
        "redirect_uri"
    );
    let (code, verifier) = code_for(&gw, &client).await;
    assert_eq!(
        error_of(redeem(code, verifier, REDIRECT_URI, other.clone()).await).await.1,
        "invalid_grant",
        "another client"
    );

    // Omitted redirect_uri: accepted, since the client has a single one.
    let (code, verifier) = code_for(&gw, &client).await;
    let omitted = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client),
            ],
        )
        .await;
    assert_eq!(omitted.status(), StatusCode::OK);

    let (code, verifier) = code_for(&gw, &client).await;
    let ok = redeem(code.clone(), verifier.clone(), REDIRECT_URI, client.clone()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    assert_eq!(error_of(redeem(code, verifier, REDIRECT_URI, client.clone()).await).await.1, "invalid_grant", "reuse");
}

#[tokio::test]
async fn resource_at_the_token_endpoint_must_match() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (code, verifier) = code_for(&gw, &client).await;
    let response = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
                ("client_id", &client),
                ("resource", "http://gw.test/mcp/other"),
            ],
        )
        .await;
    assert_eq!(error_of(response).await.1, "invalid_target");
}

#[tokio::test]
async fn refresh_rotation_and_reuse_revokes_the_family() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let first = full_login(&gw, &client).await;
    let refresh = |token: String| {
        let gw = &gw;
        let client = client.clone();
        async move { gw.refresh(&token, &client).await }
    };
    let second = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second = json_body(second).await;
    let access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(gw.send(bearer("/mcp/echo", &access).body(Body::from("{}")).unwrap()).await.status(), StatusCode::OK);

    // Replaying the first refresh token: refused, and the family is revoked.
    assert_eq!(error_of(refresh(first["refresh_token"].as_str().unwrap().to_owned()).await).await.1, "invalid_grant");
    assert_eq!(
        error_of(refresh(second["refresh_token"].as_str().unwrap().to_owned()).await).await.1,
        "invalid_grant",
        "the successor is revoked too"
    );
    assert_eq!(
        gw.send(bearer("/mcp/echo", &access).body(Body::from("{}")).unwrap()).await.status(),
        StatusCode::UNAUTHORIZED,
        "and its access token"
    );
}

#[tokio::test]
async fn refresh_token_is_bound_to_its_client() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let other = gw.register().await;
    let tokens = full_login(&gw, &client).await;
    let token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(error_of(gw.refresh(token, &other).await).await.1, "invalid_grant");
    assert_eq!(gw.refresh(token, &client).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoke_access_and_refresh_tokens() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let tokens = full_login(&gw, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(gw.send(bearer("/mcp/echo", access).body(Body::from("{}")).unwrap()).await.status(), StatusCode::OK);

    assert_eq!(
        gw.post_form("/oauth/revoke", &[("token", access), ("client_id", &client)]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.send(bearer("/mcp/echo", access).body(Body::from("{}")).unwrap()).await.status(),
        StatusCode::UNAUTHORIZED,
        "cached, yet revoked"
    );

    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        gw.post_form(
            "/oauth/revoke",
            &[("token", refresh), ("token_type_hint", "refresh_token"), ("client_id", &client)]
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(error_of(gw.refresh(refresh, &client).await).await.1, "invalid_grant");

    // Unknown tokens: 200 all the same (RFC 7009 2.2).
    assert_eq!(
        gw.post_form("/oauth/revoke", &[("token", "never-issued"), ("client_id", &client)]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn confidential_clients_authenticate() {
    let gw = Gateway::start().await;
    let registered = json_body(
        gw.post_json("/oauth/register", &json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["authorization_code", "refresh_token"]}))
            .await,
    )
    .await;
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let (code, verifier) = code_for(&gw, &id).await;
    let form = |code: &str| {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}",
            url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>()
        )
    };
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{id}:{secret}"))
        )
    };

    let wrong = gw
        .send(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, basic("wrong"))
                .body(Body::from(form(&code)))
                .unwrap(),
        )
        .await;
    assert_eq!(error_of(wrong).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
    let missing = gw
        .post_form("/oauth/token", &[("grant_type", "authorization_code"), ("code", &code), ("client_id", &id)])
        .await;
    assert_eq!(error_of(missing).await.1, "invalid_client", "no secret");
    let ok = gw
        .send(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, basic(&secret))
                .body(Body::from(form(&code)))
                .unwrap(),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}
