//! Token and header abuse not covered elsewhere: a refresh family past its
//! absolute lifetime, and a client forging `X-Forwarded-For`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use cognigate::gateway::SecurityOptions;

use crate::gateway::harness::{Gateway, bearer, full_login, json_body, now};

#[tokio::test]
async fn refresh_family_ends_at_its_absolute_lifetime() {
    // A zero lifetime: the family ends at the login, so its first refresh fails.
    let gw =
        Gateway::start_with_security(SecurityOptions::default().with_refresh_family_lifetime(Duration::ZERO)).await;
    let client_id = gw.register().await;
    let tokens = full_login(&gw, &client_id).await;
    let response = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"], "invalid_grant");
}

async fn forwarded_for(gw: &Gateway, peer: &str) -> Option<String> {
    let token = gw.mint("echo", now(), 60);
    let mut request = bearer("/mcp/echo", &token)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", "203.0.113.9")
        .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 5000)));
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["result"]["headers"]["x-forwarded-for"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn forged_x_forwarded_for_is_dropped_unless_from_a_trusted_proxy() {
    let gw = Gateway::start_with_security(
        SecurityOptions::default().with_trusted_proxies(vec!["10.0.0.0/8".parse().unwrap()]),
    )
    .await;
    assert_eq!(forwarded_for(&gw, "198.51.100.4").await.as_deref(), Some("198.51.100.4"), "the peer only");
    assert_eq!(forwarded_for(&gw, "10.1.2.3").await.as_deref(), Some("203.0.113.9, 10.1.2.3"), "the proxy's chain");
}

#[tokio::test]
async fn a_replayed_code_revokes_what_its_first_use_issued() {
    let gw = Gateway::start().await;
    let client_id = gw.register().await;
    let (verifier, challenge) = crate::gateway::harness::pkce();
    let callback = crate::gateway::harness::login_until_callback(
        &gw,
        &client_id,
        &challenge,
        "http://gw.test/mcp/echo",
        |nonce| crate::gateway::harness::sign_id_token(&crate::gateway::harness::id_claims(nonce), "dummy"),
    )
    .await;
    let page = crate::gateway::harness::consent_page(callback).await;
    let approved = crate::gateway::harness::post_consent(&gw, &page, "approve").await;
    let code = crate::gateway::harness::query(&crate::gateway::harness::location(&approved), "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::gateway::harness::REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let redeem = || gw.post_form("/oauth/token", &form);
    let first = json_body(redeem().await).await;
    let access = first["access_token"].as_str().unwrap().to_owned();
    let call = || {
        gw.send(
            bearer("/mcp/echo", &access)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
                .unwrap(),
        )
    };
    assert_eq!(call().await.status(), StatusCode::OK, "the first use's token works");

    let replay = redeem().await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(replay).await["error"], "invalid_grant");
    assert_eq!(call().await.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
    let refresh = gw.refresh(first["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(json_body(refresh).await["error"], "invalid_grant", "and the refresh family");
}

#[tokio::test]
async fn a_session_id_is_bound_to_the_user_and_client_that_opened_it() {
    let gw = Gateway::start().await;
    let resource = "http://gw.test/mcp/echo";
    let mint = |sub: &str, client: &str| {
        gw.state.mint_access_token(sub, resource, client, "openid", now(), 60, format!("jti-{sub}-{client}")).unwrap()
    };
    let post = |token: String, session: Option<String>| {
        let mut request = bearer("/mcp/echo", &token).header(header::CONTENT_TYPE, "application/json");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        gw.send(request.body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)).unwrap())
    };
    let opened = post(mint("alice", "c1"), None).await;
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(post(mint("alice", "c1"), Some(session.clone())).await.status(), StatusCode::OK, "its owner");
    let hits = gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst);
    for (sub, client) in [("mallory", "c1"), ("alice", "c2")] {
        let response = post(mint(sub, client), Some(session.clone())).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{sub} via {client}");
    }
    let bare = post(mint("alice", "c1"), Some("session-from-upstream".into())).await;
    assert_eq!(bare.status(), StatusCode::NOT_FOUND, "an unbound id");
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), hits, "none reached the upstream");
}

#[tokio::test]
async fn operator_revoke_by_e_mail_or_username_finds_the_users_sub() {
    let gw = Gateway::start().await;
    let client_id = gw.register().await;
    let tokens = full_login(&gw, &client_id).await;
    let revoke = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"))
            .args(["--store", &format!("sqlite:{}", gw.dir.path().join("gw.db").display())])
            .arg("revoke")
            .args(args)
            .output()
            .unwrap()
    };
    let stranger = revoke(&["--user", "mallory@example.com"]);
    assert_eq!(stranger.status.code(), Some(1), "nothing matched is a failure");
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("warning: nothing matched"));
    let refresh = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(refresh.status(), StatusCode::OK, "alice untouched");
    let rotated = json_body(refresh).await;

    let by_name = revoke(&["--user", "ALICE@example.com"]);
    let said = String::from_utf8_lossy(&by_name.stdout);
    assert!(by_name.status.success(), "{}", String::from_utf8_lossy(&by_name.stderr));
    assert!(said.contains("user-sub-1") && said.contains("2 access token(s)"), "the login's and its refresh's: {said}");
    let refresh = gw.refresh(rotated["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(json_body(refresh).await["error"], "invalid_grant");

    let by_username = revoke(&["--user", "alice"]);
    assert!(by_username.status.success(), "the username names the same user (already revoked)");
    assert!(String::from_utf8_lossy(&by_username.stdout).contains("user-sub-1"));
}

/// Collects what the gateway logs, process-wide: a subscriber scoped to one
/// test thread misses events whose callsites other threads cached as
/// disabled, so the capture is the global default (set once).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_log() -> &'static Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_env_filter("cognigate::gateway::oauth=info")
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other test sets a global subscriber");
        captured
    })
}

#[tokio::test]
async fn the_sign_in_log_line_names_the_sub_and_username_revoke_takes() {
    let captured = captured_log();
    let gw = Gateway::start().await;
    let client_id = gw.register().await;
    full_login(&gw, &client_id).await;
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let line = log
        .lines()
        .find(|line| line.contains("user signed in") && line.contains(&client_id))
        .unwrap_or_else(|| panic!("no sign-in line for {client_id}"));
    assert!(line.contains("sub=user-sub-1") && line.contains("username=alice"), "{line}");
}

#[test]
fn operator_revoke_refuses_a_store_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"))
        .current_dir(dir.path())
        .args(["--store", "sqlite:typo.db", "revoke", "--client", "x"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no store at typo.db") && said.contains("Fix:"), "{said}");
    assert!(!dir.path().join("typo.db").exists(), "no empty store is created");
}

#[tokio::test]
async fn operator_revoke_by_subject_and_by_client_ends_refresh() {
    let gw = Gateway::start().await;
    let client_id = gw.register().await;
    let tokens = full_login(&gw, &client_id).await;
    let revoke = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"))
            .args(["--store", &format!("sqlite:{}", gw.dir.path().join("gw.db").display())])
            .arg("revoke")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = revoke(&["--sub", "user-sub-1"]);
    assert!(said.contains("1 access token(s)"), "{said}");
    let refresh = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(json_body(refresh).await["error"], "invalid_grant");
    let said = revoke(&["--client", &client_id]);
    assert!(said.contains("client registration deleted"), "{said}");
    let (_, challenge) = crate::gateway::harness::pkce();
    let again = gw.get(&crate::gateway::harness::authorize_uri(&client_id, &challenge, None)).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "the client must register again");
}
