//! Client ID Metadata Documents over real https: a test CA made with the
//! openssl CLI, the documents served by `tests/support/cimd_server.py`
//! (`support::client_documents`), the
//! gateway trusting that CA as an extra root. A client whose `client_id` is a
//! document URL logs in; documents that break a rule are refused, each with
//! its own error.

use std::path::Path;

use axum::http::StatusCode;
use cognigate::gateway::{OAuthOptions, SecurityOptions};
use serde_json::json;

use super::harness::{
    Gateway, PUBLIC_URL, body_text, consent_page, from_address, id_claims, json_body, location, pkce, policies,
    post_consent, query, route, sign_id_token,
};
use crate::support::client_documents::{DocumentServer, TestCa, document, served};

fn serve_documents(dir: &Path, ca: &TestCa) -> DocumentServer {
    let mut mismatched = document("mismatch.json", "Metadata Client", "http://127.0.0.1/callback");
    mismatched["client_id"] = json!("{base}/someone-else.json");
    let mut oversized = document("big.json", "Metadata Client", "http://127.0.0.1/callback");
    oversized["client_name"] = json!("x".repeat(20_000));
    let docs = json!({
        "/good.json": served(&document("good.json", "Metadata Client", "http://127.0.0.1/callback")),
        "/mismatch.json": served(&mismatched),
        "/big.json": served(&oversized),
        "/other-redirect.json": served(&document("other-redirect.json", "Metadata Client", "https://app.example/callback")),
        "/moved.json": {"status": 302, "headers": {"Location": "{base}/good.json"}, "body": ""},
    });
    DocumentServer::start(dir, ca, &docs)
}

/// A gateway trusting the test CA; `private_addresses`: whether it may fetch
/// from 127.0.0.1 (where the test server is).
async fn gateway(ca: &Path, private_addresses: bool) -> Gateway {
    let options =
        OAuthOptions::default().with_client_id_private_addresses(private_addresses).with_extra_roots(ca.to_owned());
    Gateway::start_full(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        None,
        policies(),
        options,
    )
    .await
}

/// [`gateway`] with private addresses allowed and `security` in force.
async fn secured_gateway(ca: &Path, security: SecurityOptions) -> Gateway {
    let options = OAuthOptions::default().with_client_id_private_addresses(true).with_extra_roots(ca.to_owned());
    Gateway::start_secured(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        None,
        policies(),
        options,
        security,
    )
    .await
}

fn authorize_uri(client_id: &str, redirect_uri: &str, challenge: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s1")
        .append_pair("resource", &format!("{PUBLIC_URL}/mcp/echo"))
        .finish();
    format!("/oauth/authorize?{query}")
}

#[tokio::test]
async fn a_client_with_a_metadata_document_logs_in_and_bad_documents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let server = serve_documents(dir.path(), &ca);
    let gw = gateway(&ca.ca, true).await;

    // The good document: login with a loopback redirect on any port, no
    // registration, no secret.
    let client_id = format!("{}/good.json", server.base);
    let redirect = "http://127.0.0.1:47123/callback";
    let (verifier, challenge) = pkce();
    let response = gw.get(&authorize_uri(&client_id, redirect, &challenge)).await;
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body_text(response).await);
    let to_idp = location(&response);
    gw.idp.will_return(sign_id_token(&id_claims(&query(&to_idp, "nonce").unwrap()), "dummy"));
    let callback = gw.get(&format!("/oauth/callback?code=c&state={}", query(&to_idp, "state").unwrap())).await;
    let page = consent_page(callback).await;
    assert!(page.html.contains("<span id=\"client-name\">Metadata Client</span>"), "{}", page.html);
    assert!(page.html.contains("<dd id=\"client-id-host\">localhost</dd>"), "the client-id host is shown");
    assert!(page.html.contains("<dd id=\"redirect-host\">127.0.0.1:47123</dd>"), "and the redirect host");
    assert!(page.html.contains("id=\"loopback-warning\""), "a loopback redirect is flagged");
    let approved = post_consent(&gw, &page, "approve").await;
    let code = query(&location(&approved), "code").unwrap();
    let token = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(token.status(), StatusCode::OK);
    let tokens = json_body(token).await;
    let refreshed = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "the cached document serves the token endpoint too");

    // Each broken document is refused with its own reason.
    let (_, challenge) = pkce();
    for (path, redirect, needle) in [
        ("/mismatch.json", "http://127.0.0.1:1/callback", "differs from its URL"),
        ("/moved.json", "http://127.0.0.1:1/callback", "answered with a redirect"),
        ("/big.json", "http://127.0.0.1:1/callback", "is larger than"),
        ("/missing.json", "http://127.0.0.1:1/callback", "answered HTTP 404"),
        ("/good.json", "http://127.0.0.1:1/elsewhere", "not listed in the application"),
        ("/other-redirect.json", "https://evil.example/callback", "not listed in the application"),
    ] {
        let response = gw.get(&authorize_uri(&format!("{}{path}", server.base), redirect, &challenge)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(response.headers().get("location").is_none(), "never a redirect to an unverified URI: {path}");
        let page = body_text(response).await;
        assert!(page.contains(needle), "{path}: {page}");
    }

    // The same server refused when private addresses are not allowed (the default).
    let strict = gateway(&ca.ca, false).await;
    let response = strict.get(&authorize_uri(&client_id, redirect, &challenge)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = body_text(response).await;
    assert!(page.contains("could not be fetched from a public address"), "{page}");
    assert!(!page.contains("127.0.0.1"), "the addresses the gateway's resolver found stay in its log: {page}");
    // And at the token endpoint: invalid_client, as generic.
    let response = strict.refresh("x", &client_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_body(response).await;
    assert_eq!(body["error"], "invalid_client");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("could not be fetched from a public address"), "{body}");
    assert!(!description.contains("127.0.0.1"), "{body}");
}

/// What the gateway's resolver and network said about a client-id URL an
/// anonymous caller chose (internal names, addresses, resolver errors) is
/// not in the answer: every failure before an answer reads the same.
#[tokio::test]
async fn fetch_failures_tell_an_anonymous_caller_nothing_about_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let gw = gateway(&ca.ca, false).await;
    let (_, challenge) = pkce();
    let mut pages = Vec::new();
    // A name that resolves to loopback only, and one that does not resolve.
    for client_id in ["https://localhost:1/client.json", "https://no-such-host.invalid/client.json"] {
        let response = gw.get(&authorize_uri(client_id, "http://127.0.0.1:1/cb", &challenge)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{client_id}");
        let page = body_text(response).await.replace(client_id, "CLIENT_ID");
        for leak in ["127.0.0.1)", "::1", "resolve", "lookup", "Name or service", "connect", "dns error"] {
            assert!(!page.contains(leak), "{client_id}: `{leak}` in {page}");
        }
        pages.push(page);
    }
    assert!(pages.iter().all(|page| page == &pages[0]), "one answer for every failure: {pages:?}");
}

/// A refused document is remembered for a short while, and concurrent
/// requests naming one document share one fetch.
#[tokio::test]
async fn refusals_are_remembered_and_concurrent_fetches_of_one_document_are_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let mut slow = served(&document("slow.json", "Slow Client", "http://127.0.0.1/callback"));
    slow["delay"] = json!(0.5);
    let server = DocumentServer::start(dir.path(), &ca, &json!({"/slow.json": slow}));
    let gw = gateway(&ca.ca, true).await;
    let (_, challenge) = pkce();

    let missing = format!("{}/missing.json", server.base);
    for _ in 0..4 {
        let response = gw.get(&authorize_uri(&missing, "http://127.0.0.1:1/callback", &challenge)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(body_text(response).await.contains("answered HTTP 404"));
    }
    assert_eq!(server.hits("/missing.json"), 1, "the refusal is remembered");

    let slow_id = format!("{}/slow.json", server.base);
    let uri = authorize_uri(&slow_id, "http://127.0.0.1:1/callback", &challenge);
    let (a, b, c, d, e) = tokio::join!(gw.get(&uri), gw.get(&uri), gw.get(&uri), gw.get(&uri), gw.get(&uri));
    for response in [a, b, c, d, e] {
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    assert_eq!(server.hits("/slow.json"), 1, "five concurrent requests, one fetch");
}

/// Requests that make the gateway fetch a document are limited per address;
/// answers from the cache are not counted, and other addresses go on.
#[tokio::test]
async fn document_fetches_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let server = serve_documents(dir.path(), &ca);
    let gw = secured_gateway(&ca.ca, SecurityOptions::default().with_client_id_fetches_per_minute(3)).await;
    let (_, challenge) = pkce();
    let good = authorize_uri(&format!("{}/good.json", server.base), "http://127.0.0.1:1/callback", &challenge);
    assert_eq!(gw.send(from_address("203.0.113.7", &good)).await.status(), StatusCode::FOUND);
    let mut statuses = Vec::new();
    for n in 0..4 {
        let uri = authorize_uri(&format!("{}/gone-{n}.json", server.base), "http://127.0.0.1:1/callback", &challenge);
        statuses.push(gw.send(from_address("203.0.113.7", &uri)).await.status());
    }
    assert_eq!(statuses[..2], [StatusCode::BAD_REQUEST; 2], "{statuses:?}");
    assert_eq!(statuses[2..], [StatusCode::TOO_MANY_REQUESTS; 2], "{statuses:?}");
    assert_eq!(server.hits("/gone-3.json"), 0, "no fetch past the limit");
    // The cached document is still served to the same address, and token
    // requests count too.
    assert_eq!(gw.send(from_address("203.0.113.7", &good)).await.status(), StatusCode::FOUND);
    let token = axum::http::Request::post("/oauth/token")
        .header(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([203, 0, 113, 7], 40000))))
        .body(axum::body::Body::from(format!(
            "grant_type=refresh_token&refresh_token=x&client_id={}",
            url::form_urlencoded::byte_serialize(format!("{}/gone-9.json", server.base).as_bytes()).collect::<String>()
        )))
        .unwrap();
    assert_eq!(gw.send(token).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = authorize_uri(&format!("{}/gone-3.json", server.base), "http://127.0.0.1:1/callback", &challenge);
    assert_eq!(gw.send(from_address("198.51.100.4", &other)).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_id_urls_that_break_the_rules_are_refused_before_any_fetch() {
    let gw = Gateway::start().await;
    let (_, challenge) = pkce();
    for (client_id, needle) in [
        ("https://169.254.169.254/latest/meta-data", "non-public address"),
        ("https://[::1]/client.json", "non-public address"),
        ("https://app.example.com/", "no path"),
        ("https://app.example.com/a/../client.json", "normal form"),
    ] {
        let response = gw.get(&authorize_uri(client_id, "http://127.0.0.1:1/cb", &challenge)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{client_id}");
        let page = body_text(response).await;
        assert!(page.contains(needle), "{client_id}: {page}");
    }
}

/// A metadata document's `client_id` is a public URL every user of the
/// application shares: the pending-login cap counts it per client address,
/// so one address filling it does not lock out the application's other users.
#[tokio::test]
async fn one_address_filling_a_metadata_clients_pending_logins_does_not_block_another() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let server = serve_documents(dir.path(), &ca);
    let gw = secured_gateway(&ca.ca, SecurityOptions::default().with_pending_logins_per_client(50)).await;
    let client_id = format!("{}/good.json", server.base);
    let (_, challenge) = pkce();
    let uri = authorize_uri(&client_id, "http://127.0.0.1:47123/callback", &challenge);
    let mut statuses = Vec::new();
    for _ in 0..55 {
        statuses.push(gw.send(from_address("203.0.113.7", &uri)).await.status());
    }
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::FOUND).count(), 50, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "the cap still holds for the one address");
    let response = gw.send(from_address("198.51.100.4", &uri)).await;
    assert_eq!(response.status(), StatusCode::FOUND, "another address still signs in: {}", body_text(response).await);
}
