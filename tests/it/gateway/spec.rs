//! The current MCP authorization spec (2025-11-25, 2026-07-28): discovery at
//! openid-configuration, loopback redirects on any port, scope challenges and
//! step-up, the refresh grace window, and the 2026-07-28 transport headers.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cognigate::gateway::OAuthOptions;
use serde_json::{Value, json};

use super::harness::{
    Gateway, PUBLIC_URL, RedisServer, bearer, consent_page, id_claims, json_body, location, pkce, policies,
    post_consent, query, route, sign_id_token,
};

/// Registers a public client with `redirect_uris`.
async fn register(gw: &Gateway, redirect_uris: &[&str]) -> String {
    let response = gw
        .post_json(
            "/oauth/register",
            &json!({"redirect_uris": redirect_uris, "token_endpoint_auth_method": "none", "client_name": "Spec client"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await["client_id"].as_str().unwrap().to_owned()
}

/// Authorize (with `redirect_uri` and `scope`) → IdP → consent → code →
/// token, for `/mcp/echo`; returns the token response.
async fn login(gw: &Gateway, client_id: &str, redirect_uri: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let authorize = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s1")
        .append_pair("scope", scope)
        .append_pair("resource", &format!("{PUBLIC_URL}/mcp/echo"))
        .finish();
    let response = gw.get(&format!("/oauth/authorize?{authorize}")).await;
    assert_eq!(response.status(), StatusCode::FOUND, "authorize redirects to the IdP");
    let to_idp = location(&response);
    gw.idp.will_return(sign_id_token(&id_claims(&query(&to_idp, "nonce").unwrap()), "dummy"));
    *gw.idp.state.last_authorize.lock().unwrap() = Some(to_idp.clone());
    let callback = gw.get(&format!("/oauth/callback?code=c&state={}", query(&to_idp, "state").unwrap())).await;
    let page = consent_page(callback).await;
    let approved = post_consent(gw, &page, "approve").await;
    let back = location(&approved);
    assert!(back.as_str().starts_with(redirect_uri), "{back} goes to {redirect_uri}");
    let code = query(&back, "code").unwrap();
    let response = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &verifier),
                ("client_id", client_id),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

async fn call(gw: &Gateway, token: &str) -> axum::response::Response {
    gw.send(
        bearer("/mcp/echo", token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn openid_configuration_serves_the_same_metadata_with_the_issuer_clients_build() {
    let gw = Gateway::start().await;
    let rfc8414 = json_body(gw.get("/.well-known/oauth-authorization-server").await).await;
    let openid = json_body(gw.get("/.well-known/openid-configuration").await).await;
    assert_eq!(rfc8414, openid);
    assert_eq!(openid["issuer"], PUBLIC_URL, "byte-identical to the URL clients build discovery from");
    assert_eq!(openid["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(openid["authorization_response_iss_parameter_supported"], true);
    assert_eq!(openid["client_id_metadata_document_supported"], true);
    assert!(openid["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("none")));
    assert_eq!(openid["device_authorization_endpoint"], "http://gw.test/oauth/device_authorization");
    assert!(openid["scopes_supported"].as_array().unwrap().contains(&json!("offline_access")));
    let prm = json_body(gw.get("/.well-known/oauth-protected-resource/mcp/echo").await).await;
    assert!(!prm["scopes_supported"].as_array().unwrap().contains(&json!("offline_access")));
}

#[tokio::test]
async fn a_loopback_client_on_a_new_port_each_time_logs_in() {
    let gw = Gateway::start().await;
    let client = register(&gw, &["http://127.0.0.1/callback", "http://[::1]/callback"]).await;
    for redirect in
        ["http://127.0.0.1:41001/callback", "http://127.0.0.1:52002/callback", "http://[::1]:43003/callback"]
    {
        let tokens = login(&gw, &client, redirect, "openid email").await;
        assert_eq!(call(&gw, tokens["access_token"].as_str().unwrap()).await.status(), StatusCode::OK, "{redirect}");
    }
    // Only the port may vary.
    for other in ["http://127.0.0.1:41001/elsewhere", "http://localhost:41001/callback"] {
        let (_, challenge) = pkce();
        let uri = format!(
            "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(other.as_bytes()).collect::<String>()
        );
        assert_eq!(gw.get(&uri).await.status(), StatusCode::BAD_REQUEST, "{other}");
    }
}

fn policies_requiring(scopes: &[&str]) -> Value {
    let mut policies = policies();
    policies["policies"][0]["handler"]["options"]["gateway"] = json!({"requiredScopes": scopes});
    policies
}

#[tokio::test]
async fn a_token_without_a_required_scope_gets_the_step_up_challenge() {
    let gw = Gateway::start_full(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        None,
        policies_requiring(&["mcp:admin", "mcp:write"]),
        OAuthOptions::default(),
    )
    .await;
    let prm = json_body(gw.get("/.well-known/oauth-protected-resource/mcp/echo").await).await;
    assert_eq!(prm["scopes_supported"], json!(["openid", "profile", "email", "mcp:admin", "mcp:write"]));
    let unauthenticated = gw.send(Request::post("/mcp/echo").body(Body::from("{}")).unwrap()).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let challenge = unauthenticated.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.contains("scope=\"openid profile email mcp:admin mcp:write\""), "{challenge}");

    let client = register(&gw, &["http://127.0.0.1/cb"]).await;
    let narrow = login(&gw, &client, "http://127.0.0.1:5000/cb", "openid email mcp:admin").await;
    assert_eq!(narrow["scope"], "openid email mcp:admin");
    let refused = call(&gw, narrow["access_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"mcp:admin mcp:write\""), "names every scope needed: {challenge}");
    assert!(
        challenge.contains("resource_metadata=\"http://gw.test/.well-known/oauth-protected-resource/mcp/echo\""),
        "{challenge}"
    );
    assert_eq!(json_body(refused).await["error"], "insufficient_scope");
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Step up: asking again with the scopes named (and offline_access, which
    // stays with the gateway) gets a token that passes.
    let full = login(&gw, &client, "http://127.0.0.1:5001/cb", "openid email mcp:admin mcp:write offline_access").await;
    assert_eq!(full["scope"], "openid email mcp:admin mcp:write offline_access");
    assert_eq!(call(&gw, full["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    let to_idp = gw.idp.state.last_authorize.lock().unwrap().clone().unwrap();
    assert_eq!(query(&to_idp, "scope").unwrap(), "openid profile email", "Cognito sees only its own scopes");
}

#[test]
fn a_required_scope_that_is_not_a_scope_stops_the_boot() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["offline_access", "two words", ""] {
        std::fs::write(dir.path().join("policies.json"), policies_requiring(&[bad]).to_string()).unwrap();
        std::fs::write(
            dir.path().join("routes.oas.json"),
            json!({"paths": {"/mcp/echo": route("http://127.0.0.1:1/mcp")}}).to_string(),
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), super::harness::env_text("127.0.0.1:1".parse().unwrap())).unwrap();
        let text = std::fs::read_to_string(dir.path().join(".env")).unwrap();
        let env = cognigate::gateway::Env::from_pairs(
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let Err(err) = cognigate::gateway::GatewayConfig::load(dir.path(), &env) else {
            panic!("`{bad}` was accepted")
        };
        let err = err.to_string();
        assert!(err.contains("gateway.requiredScopes") && err.contains("Fix:"), "{err}");
    }
}

async fn refresh(gw: &Gateway, client: &str, token: &str) -> axum::response::Response {
    gw.refresh(token, client).await
}

/// Two concurrent refreshes with one token both succeed, with the same
/// answer (the family does not fork); once the window has passed, a third
/// revokes the family.
async fn grace_window(redis: Option<&str>) {
    let options = OAuthOptions::default().with_refresh_grace(Duration::from_secs(1));
    let gw = Gateway::start_full(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        redis,
        policies(),
        options,
    )
    .await;
    let client = register(&gw, &["http://127.0.0.1/cb"]).await;
    let tokens = login(&gw, &client, "http://127.0.0.1:5000/cb", "openid").await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap();

    let (a, b) = tokio::join!(refresh(&gw, &client, first_refresh), refresh(&gw, &client, first_refresh));
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let (a, b) = (json_body(a).await, json_body(b).await);
    assert_eq!(a["refresh_token"], b["refresh_token"], "one successor: the family did not fork");
    assert_eq!(a["access_token"], b["access_token"]);
    assert_ne!(a["refresh_token"].as_str().unwrap(), first_refresh);
    let access = a["access_token"].as_str().unwrap();
    assert_eq!(call(&gw, access).await.status(), StatusCode::OK);
    // Another client presenting the token is refused and changes nothing.
    let other = register(&gw, &["http://127.0.0.1/cb"]).await;
    assert_eq!(refresh(&gw, &other, first_refresh).await.status(), StatusCode::BAD_REQUEST);

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let late = refresh(&gw, &client, first_refresh).await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert!(json_body(late).await["error_description"].as_str().unwrap().contains("revoked"));
    let successor = refresh(&gw, &client, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(successor.status(), StatusCode::BAD_REQUEST, "the whole family is revoked");
    assert_eq!(call(&gw, access).await.status(), StatusCode::UNAUTHORIZED, "with its access tokens");
}

#[tokio::test]
async fn concurrent_refreshes_share_one_answer_within_the_grace_window_on_sqlite() {
    grace_window(None).await;
}

#[tokio::test]
async fn concurrent_refreshes_share_one_answer_within_the_grace_window_on_redis() {
    let redis = RedisServer::start();
    grace_window(Some(&redis.url)).await;
}

#[tokio::test]
async fn the_2026_07_28_transport_passes_through() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", super::harness::now(), 60);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (method, name, body) in [
        ("server/discover", None, json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover"})),
        ("subscriptions/listen", None, json!({"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen"})),
        (
            "tools/call",
            Some("deploy"),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "deploy"},
                   "result": {"resultType": "input_required"}, "error": {"code": -32042, "message": "input required"}}),
        ),
    ] {
        let mut request = bearer("/mcp/echo", &token)
            .header(header::CONTENT_TYPE, "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("traceparent", traceparent)
            .header("tracestate", "vendor=1");
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        // No Mcp-Session-Id: the 2026-07-28 transport needs none.
        let response = gw.send(request.body(Body::from(body.to_string())).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let seen = json_body(response).await["result"].clone();
        let headers = &seen["headers"];
        assert_eq!(headers["mcp-method"], method);
        assert_eq!(headers["mcp-protocol-version"], "2026-07-28");
        assert_eq!(headers["traceparent"], traceparent);
        assert_eq!(headers["tracestate"], "vendor=1");
        assert_eq!(headers.get("mcp-name").and_then(Value::as_str), name);
        assert!(headers.get("mcp-session-id").is_none());
        let forwarded: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        assert_eq!(forwarded, body, "the body crosses untouched");
    }
}
