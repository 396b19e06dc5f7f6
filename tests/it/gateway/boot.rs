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
