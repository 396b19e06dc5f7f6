//! `/oauth/authorize` validation and the redirect to the hosted UI.

use axum::http::StatusCode;

use super::harness::{COGNITO_CLIENT_ID, Gateway, REDIRECT_URI, authorize_uri, body_text, location, pkce, query};

#[tokio::test]
async fn redirects_to_the_hosted_ui_with_its_own_state_nonce_and_pkce() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let response = gw.get(&authorize_uri(&client, &challenge, Some("http://gw.test/mcp/echo"))).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let to = location(&response);
    assert_eq!(
        format!("{}://{}", to.scheme(), to.host_str().unwrap()),
        "http://127.0.0.1",
        "loopback domain over http"
    );
    assert_eq!(to.port(), Some(gw.idp.addr.port()));
    assert_eq!(to.path(), "/oauth2/authorize");
    assert_eq!(query(&to, "response_type").unwrap(), "code");
    assert_eq!(query(&to, "client_id").unwrap(), COGNITO_CLIENT_ID);
    assert_eq!(query(&to, "redirect_uri").unwrap(), "http://gw.test/oauth/callback");
    assert_eq!(query(&to, "scope").unwrap(), "openid profile email");
    assert_eq!(query(&to, "code_challenge_method").unwrap(), "S256");
    let state = query(&to, "state").unwrap();
    assert_ne!(state, "client-state-1", "the gateway's own state");
    assert!(state.len() >= 40 && query(&to, "nonce").unwrap().len() >= 40);
    assert_ne!(query(&to, "code_challenge").unwrap(), challenge, "the gateway's own PKCE");
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_are_pages() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();

    let response = gw.get(&authorize_uri("unknown-client", &challenge, None)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(body_text(response).await.contains("not registered"));

    let uri = authorize_uri(&client, &challenge, None)
        .replace(&urlencode(REDIRECT_URI), &urlencode("http://127.0.0.1:9/evil"));
    let response = gw.get(&uri).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none(), "never redirect to an unregistered URI");
    assert!(body_text(response).await.contains("redirect_uri is not registered"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Errors before any user interaction are pages, never redirects, even to
/// the registered URI (RFC 9700 4.11.2: no open redirector). Returns
/// (error code, page text).
async fn redirected_error(gw: &Gateway, uri: &str) -> (String, String) {
    let response = gw.get(uri).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
    assert!(response.headers().get("location").is_none(), "no redirect before user interaction: {uri}");
    let text = body_text(response).await;
    let start = text.find("refused (").expect("the page names the error") + "refused (".len();
    let code = text[start..start + text[start..].find(')').unwrap()].to_owned();
    (code, text)
}

#[tokio::test]
async fn pkce_and_response_type_are_required() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (verifier, challenge) = pkce();
    let base = authorize_uri(&client, &challenge, Some("http://gw.test/mcp/echo"));

    let (error, _) = redirected_error(&gw, &base.replace("response_type=code", "response_type=token")).await;
    assert_eq!(error, "unsupported_response_type");
    let (error, description) = redirected_error(&gw, &base.replace(&format!("code_challenge={challenge}"), "")).await;
    assert_eq!((error.as_str(), description.contains("code_challenge")), ("invalid_request", true));
    let (error, description) = redirected_error(
        &gw,
        &base.replace("code_challenge_method=S256", "code_challenge_method=plain").replace(&challenge, &verifier),
    )
    .await;
    assert_eq!((error.as_str(), description.contains("S256")), ("invalid_request", true));
}

#[tokio::test]
async fn resource_must_name_a_route() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let (error, _) = redirected_error(&gw, &authorize_uri(&client, &challenge, Some("http://gw.test/mcp/nope"))).await;
    assert_eq!(error, "invalid_target");
    let (error, _) =
        redirected_error(&gw, &authorize_uri(&client, &challenge, Some("https://elsewhere.example/mcp/echo"))).await;
    assert_eq!(error, "invalid_target");
    // Two routes and no resource: ambiguous.
    let (error, _) = redirected_error(&gw, &authorize_uri(&client, &challenge, None)).await;
    assert_eq!(error, "invalid_target");
    // The gateway-wide resource of the path-less metadata: one route must be chosen.
    let (error, description) = redirected_error(&gw, &authorize_uri(&client, &challenge, Some("http://gw.test"))).await;
    assert_eq!(error, "invalid_target");
    assert!(description.contains("several MCP routes") && description.contains("/mcp/{name}"), "{description}");
    // Two resources.
    let two = format!(
        "{}&resource={}",
        authorize_uri(&client, &challenge, Some("http://gw.test/mcp/echo")),
        urlencode("http://gw.test/mcp/other")
    );
    let (error, _) = redirected_error(&gw, &two).await;
    assert_eq!(error, "invalid_target");
}

#[tokio::test]
async fn single_route_is_bound_without_resource() {
    let gw = Gateway::start_with(
        |up| serde_json::json!({"paths": {"/mcp/solo": super::harness::route(&format!("http://{up}/mcp"))}}),
    )
    .await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let response = gw.get(&authorize_uri(&client, &challenge, None)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response).path(), "/oauth2/authorize");
}

#[tokio::test]
async fn callback_refuses_unknown_or_reused_state() {
    let gw = Gateway::start().await;
    let response = gw.get("/oauth/callback?code=x&state=never-issued").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(response).await.contains("expired or was already completed"));
    let response = gw.get("/oauth/callback?code=x").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// The login cookie `/oauth/authorize` set (`name=value`).
fn login_cookie(response: &axum::response::Response) -> String {
    let cookie = response.headers().get(axum::http::header::SET_COOKIE).expect("a login cookie").to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

async fn callback_with_cookie(gw: &Gateway, uri: &str, cookie: Option<&str>) -> axum::response::Response {
    let mut request = axum::http::Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(axum::http::header::COOKIE, cookie);
    }
    gw.send(request.body(axum::body::Body::empty()).unwrap()).await
}

#[tokio::test]
async fn idp_error_goes_back_to_the_client() {
    let gw = Gateway::start().await;
    let client = gw.register().await;
    let (_, challenge) = pkce();
    let started = gw.get(&authorize_uri(&client, &challenge, Some("http://gw.test/mcp/echo"))).await;
    let cookie = login_cookie(&started);
    let state = query(&location(&started), "state").unwrap();
    let response =
        callback_with_cookie(&gw, &format!("/oauth/callback?error=access_denied&state={state}"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let to = location(&response);
    assert_eq!(query(&to, "error").unwrap(), "access_denied");
    assert_eq!(query(&to, "state").unwrap(), "client-state-1");
    // Single use: the same state again is refused.
    assert_eq!(gw.get(&format!("/oauth/callback?code=x&state={state}")).await.status(), StatusCode::BAD_REQUEST);
}

/// The open redirect of RFC 9700 4.11.2 through the callback: an attacker
/// starts a login for the client they registered, reads the gateway's state
/// in the redirect, and sends a victim to the callback with that state and
/// an error. The victim's browser never started that login (no cookie, or
/// the cookie of another login), so the victim gets a page, not a redirect
/// to the attacker's URI.
#[tokio::test]
async fn idp_error_in_another_browser_is_a_page_not_a_redirect() {
    let gw = Gateway::start().await;
    let attacker = gw.register().await;
    let (_, challenge) = pkce();
    let attackers_login = gw.get(&authorize_uri(&attacker, &challenge, Some("http://gw.test/mcp/echo"))).await;
    let state = query(&location(&attackers_login), "state").unwrap();
    let victims_login = gw.get(&authorize_uri(&attacker, &challenge, Some("http://gw.test/mcp/echo"))).await;
    let victims_cookie = login_cookie(&victims_login);

    for cookie in [None, Some(victims_cookie.as_str()), Some("cognigate_login=forged")] {
        let attackers_state = {
            let again = gw.get(&authorize_uri(&attacker, &challenge, Some("http://gw.test/mcp/echo"))).await;
            query(&location(&again), "state").unwrap()
        };
        let response =
            callback_with_cookie(&gw, &format!("/oauth/callback?error=access_denied&state={attackers_state}"), cookie)
                .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{cookie:?}");
        assert!(response.headers().get("location").is_none(), "no redirect to the attacker's URI: {cookie:?}");
        assert!(body_text(response).await.contains("started in another browser"));
    }
    let response = gw.get(&format!("/oauth/callback?error=server_error&state={state}")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}
