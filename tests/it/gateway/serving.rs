//! The binary serving on a real port: which browser origins it admits, a
//! second gateway on a taken address, and the size of a request head.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::harness::{env_text, policies, route};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

/// A gateway process on a free loopback port, killed on drop.
struct Running {
    child: Child,
    listen: String,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_dir() -> tempfile::TempDir {
    let idp = "127.0.0.1:9".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/policies.json"), policies().to_string()).unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    std::fs::write(dir.path().join("config/routes.oas.json"), routes.to_string()).unwrap();
    std::fs::write(dir.path().join(".env"), env_text(idp)).unwrap();
    dir
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

async fn start(extra: &[&str]) -> Running {
    let dir = config_dir();
    let listen = free_addr();
    let child = Command::new(BIN)
        .args(["--listen", &listen, "--store", "sqlite:gw.db"])
        .args(extra)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running { child, listen, _dir: dir };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("http://{}/healthz", running.listen)).send().await.is_ok() {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not answer /healthz");
}

async fn register_from(gateway: &Running, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}/oauth/register", gateway.listen))
        .header("origin", origin)
        .json(&json!({
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "client_name": "MCP Inspector",
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_loopback_gateway_admits_browser_pages_on_any_loopback_port() {
    let gateway = start(&[]).await;
    for origin in ["http://localhost:6274", "http://127.0.0.1:5173", "http://[::1]:8080"] {
        let response = register_from(&gateway, origin).await;
        assert_eq!(response.status(), 201, "{origin}: {}", response.text().await.unwrap());
    }
    let response = register_from(&gateway, "http://evil.example.com").await;
    assert_eq!(response.status(), 403, "a foreign origin is still refused");
}

#[tokio::test]
async fn a_gateway_with_a_public_https_url_refuses_loopback_origins() {
    let gateway = start(&["--public-url", "https://mcp.example.com"]).await;
    let response = register_from(&gateway, "http://localhost:6274").await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("--allowed-origin"), "says how to allow it: {body}");
}

#[tokio::test]
async fn a_second_gateway_on_a_served_address_refuses_to_start_and_names_it() {
    let first = start(&["--workers", "2"]).await;
    let dir = config_dir();
    let second = Command::new(BIN)
        .args(["--listen", &first.listen, "--store", "sqlite:gw.db", "--workers", "2"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut second = second;
    for _ in 0..200 {
        if second.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still running after 10 s: it took the address too; stop it and fail below.
    let _ = second.kill();
    let exited = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&exited.stderr);
    assert_eq!(exited.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {}", first.listen)) && stderr.contains("another process"),
        "{stderr}"
    );
    let http = reqwest::Client::new();
    for _ in 0..4 {
        let health = http.get(format!("http://{}/healthz", first.listen)).send().await.unwrap();
        assert_eq!(health.status(), 200, "the first one keeps serving");
    }
}

#[tokio::test]
async fn a_sign_in_error_page_looks_like_the_consent_page_and_says_what_to_do() {
    let gw = super::harness::Gateway::start().await;
    let response = gw.get("/oauth/callback?state=never-issued&code=x").await;
    assert_eq!(response.status(), 400);
    let page = super::harness::body_text(response).await;
    assert!(page.contains("<main>") && page.contains("border-radius: 12px"), "styled: {page}");
    assert!(page.contains("<meta name=\"viewport\""), "{page}");
    assert!(page.contains("This sign-in has expired or was already completed."), "what happened: {page}");
    assert!(page.contains("start the sign-in again from your MCP client"), "what to do: {page}");
}
