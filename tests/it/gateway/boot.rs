//! The binary: exit codes, boot errors on stderr, serving and SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::harness::{env_text, policies, route};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

fn config_dir(policies: serde_json::Value, routes: serde_json::Value, env: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/policies.json"), policies.to_string()).unwrap();
    std::fs::write(dir.path().join("config/routes.oas.json"), routes.to_string()).unwrap();
    std::fs::write(dir.path().join(".env"), env).unwrap();
    dir
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(BIN).args(args).current_dir(dir).env_remove("RUST_LOG").output().unwrap();
    (output.status.code().unwrap(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn usage_error_exits_64() {
    let (code, stderr) = run(std::env::temp_dir().as_path(), &["--no-such-flag"]);
    assert_eq!(code, 64, "{stderr}");
    let (code, _) = run(std::env::temp_dir().as_path(), &["--listen", "not-an-address"]);
    assert_eq!(code, 64);
    let (code, _) = run(std::env::temp_dir().as_path(), &["--store", "postgres://x"]);
    assert_eq!(code, 64);
}

#[test]
fn boot_errors_exit_1_with_the_fix() {
    let idp = "127.0.0.1:9".parse().unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    let env = env_text(idp).replace(
        "COGNITO_USER_POOL_DOMAIN=127.0.0.1:9",
        "COGNITO_USER_POOL_DOMAIN=https://team.auth.us-east-1.amazoncognito.com",
    );
    let dir = config_dir(policies(), routes.clone(), &env);
    let (code, stderr) = run(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("policy `cognito-managed-oauth`, option `userPoolDomain`") && stderr.contains("Fix:"),
        "{stderr}"
    );

    let dir = config_dir(policies(), routes, "COGNITO_USER_POOL_ID=us-east-1_X\n");
    let (code, stderr) = run(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("$env(COGNITO_USER_POOL_DOMAIN) is not set"), "{stderr}");

    let (code, stderr) = run(dir.path(), &["--env-file", "missing.env"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("missing.env"), "{stderr}");
}

#[test]
fn a_short_store_key_or_a_bad_recheck_interval_stops_the_boot() {
    let idp = "127.0.0.1:9".parse().unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    let dir = config_dir(policies(), routes, &(env_text(idp) + "COGNIGATE_STORE_KEY=too-short\n"));
    let (code, stderr) = run(dir.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("COGNIGATE_STORE_KEY is shorter than 32") && stderr.contains("Fix:"), "{stderr}");
    assert!(!stderr.contains("too-short"), "the key is not echoed: {stderr}");

    let (code, stderr) = run(dir.path(), &["--idp-recheck-interval", "often"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("`often` is not a duration"), "{stderr}");
}

#[tokio::test]
async fn serves_and_stops_on_sigterm() {
    let idp = "127.0.0.1:9".parse().unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    let dir = config_dir(policies(), routes, &env_text(idp));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let mut child = Command::new(BIN)
        .args(["--listen", &listen, "--store", "sqlite:state/gw.db"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("http://{listen}/healthz")).send().await {
            healthy = response.status() == 200 && response.text().await.unwrap() == "ok";
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the gateway answers /healthz");
    let metadata: serde_json::Value = http
        .get(format!("http://{listen}/.well-known/oauth-protected-resource/mcp/echo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], format!("http://localhost:{port}/mcp/echo"), "default public URL");
    // SIGTERM: a graceful exit with status 0.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("did not stop on SIGTERM")
    });
    assert_eq!(status.code(), Some(0));
    assert!(dir.path().join("state/gw.db").exists(), "the SQLite store was created");
}

/// A free loopback address.
fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn metrics_on_their_own_address() {
    let idp = "127.0.0.1:9".parse().unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    let dir = config_dir(policies(), routes, &env_text(idp));
    let (listen, metrics) = (free_addr(), free_addr());
    let mut child = Command::new(BIN)
        .args(["--listen", &listen, "--metrics-listen", &metrics, "--store", "sqlite:gw.db"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut scraped = None;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("http://{metrics}/metrics")).send().await {
            scraped = Some((response.status(), response.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let public = http.get(format!("http://{listen}/metrics")).send().await.map(|r| r.status());
    let _ = child.kill();
    let _ = child.wait();
    let (status, text) = scraped.expect("the metrics address answers");
    assert_eq!(status, 200);
    assert!(text.contains("cognigate_"), "{text}");
    assert_eq!(public.unwrap(), 404, "not on the public address");
}

#[test]
fn a_store_readable_by_others_stops_the_boot_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let idp = "127.0.0.1:9".parse().unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    let dir = config_dir(policies(), routes, &env_text(idp));
    let db = dir.path().join("gw.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["--listen", &free_addr(), "--store", "sqlite:gw.db"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Fix: chmod 600 gw.db"), "{stderr}");
}

/// A `redis-server` with TLS only and an ACL user, its CA in `dir`.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis(dir: &std::path::Path) -> TlsRedis {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"])
        .args(["--tls-auth-clients", "no", "--user", "default", "off"])
        .args(["--user", "gw", "on", ">gw-secret", "~cognigate:*", "&*", "+@all"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server (TLS) did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsRedis { child, port }
}

#[test]
fn rediss_with_an_acl_user() {
    let dir = tempfile::tempdir().unwrap();
    let redis = tls_redis(dir.path());
    let run = |url: &str| {
        Command::new(BIN)
            .args(["--store", url, "revoke", "--sub", "nobody"])
            .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
            .output()
            .unwrap()
    };
    // Reaching the store and finding nobody is a warning, not a connection error.
    let ok = run(&format!("rediss://gw:gw-secret@127.0.0.1:{}/0", redis.port));
    let said = String::from_utf8_lossy(&ok.stderr);
    assert!(said.contains("nothing matched"), "{said}");
    assert!(!said.contains("gw-secret"), "the password is never echoed: {said}");
    let wrong_password = run(&format!("rediss://gw:nope@127.0.0.1:{}/0", redis.port));
    assert!(!wrong_password.status.success(), "the ACL user's password is checked");
    assert!(!String::from_utf8_lossy(&wrong_password.stderr).contains("nothing matched"));
    let plain = run(&format!("redis://gw:gw-secret@127.0.0.1:{}/0", redis.port));
    assert!(!plain.status.success(), "the server speaks TLS only");
}
