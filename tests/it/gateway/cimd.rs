//! Client ID Metadata Documents over real https: a test CA made with the
//! openssl CLI, the documents served by `tests/support/cimd_server.py`, the
//! gateway trusting that CA as an extra root. A client whose `client_id` is a
//! document URL logs in; documents that break a rule are refused, each with
//! its own error.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::http::StatusCode;
use cognigate::gateway::OAuthOptions;
use serde_json::{Value, json};

use super::harness::{
    Gateway, PUBLIC_URL, body_text, consent_page, id_claims, json_body, location, pkce, policies, post_consent, query,
    route, sign_id_token,
};

/// A CA and a `localhost` / 127.0.0.1 leaf it signed, in `dir`; returns
/// (CA file, leaf cert, leaf key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "openssl {args:?} failed (is the openssl CLI installed?)");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cognigate test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join("ca.pem"), dir.join("leaf.pem"), dir.join("leaf.key"))
}

/// The document server, killed on drop.
struct DocumentServer {
    child: Child,
    base: String,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn document(name: &str, redirect: &str) -> Value {
    json!({
        "client_id": format!("{{base}}/{name}"),
        "client_name": "Metadata Client",
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
}

fn serve_documents(dir: &Path, leaf: &Path, key: &Path) -> DocumentServer {
    let json_doc = |doc: Value, headers: Value| json!({"status": 200, "headers": headers, "body": doc.to_string()});
    let content_type = json!({"Content-Type": "application/json", "Cache-Control": "max-age=300"});
    let mut mismatched = document("mismatch.json", "http://127.0.0.1/callback");
    mismatched["client_id"] = json!("{base}/someone-else.json");
    let mut oversized = document("big.json", "http://127.0.0.1/callback");
    oversized["client_name"] = json!("x".repeat(20_000));
    let docs = json!({
        "/good.json": json_doc(document("good.json", "http://127.0.0.1/callback"), content_type.clone()),
        "/mismatch.json": json_doc(mismatched, content_type.clone()),
        "/big.json": json_doc(oversized, content_type.clone()),
        "/other-redirect.json": json_doc(document("other-redirect.json", "https://app.example/callback"), content_type.clone()),
        "/moved.json": {"status": 302, "headers": {"Location": "{base}/good.json"}, "body": ""},
    });
    std::fs::write(dir.join("docs.json"), docs.to_string()).unwrap();
    let script = super::super::support::peers::repo_root().join("tests/support/cimd_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--cert".as_ref(), leaf.as_os_str(), "--key".as_ref(), key.as_os_str()])
        .arg("--docs")
        .arg(dir.join("docs.json"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the document server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected: {line}")).to_owned();
    DocumentServer { child, base: format!("https://localhost:{port}") }
}

/// A gateway trusting the test CA; `private_addresses`: whether it may fetch
/// from 127.0.0.1 (where the test server is).
async fn gateway(ca: &Path, private_addresses: bool) -> Gateway {
    let options = OAuthOptions {
        client_id_private_addresses: private_addresses,
        extra_roots: Some(ca.to_owned()),
        ..OAuthOptions::default()
    };
    Gateway::start_full(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}}),
        None,
        policies(),
        options,
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
    let (ca, leaf, key) = test_ca(dir.path());
    let server = serve_documents(dir.path(), &leaf, &key);
    let gw = gateway(&ca, true).await;

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
    let refreshed = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
        )
        .await;
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
    let strict = gateway(&ca, false).await;
    let response = strict.get(&authorize_uri(&client_id, redirect, &challenge)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = body_text(response).await;
    assert!(page.contains("non-public address") && page.contains("127.0.0.1"), "{page}");
    // And at the token endpoint: invalid_client with the reason.
    let response = strict
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client_id)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json_body(response).await;
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains("non-public"), "{body}");
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
