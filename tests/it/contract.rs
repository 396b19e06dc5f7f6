//! The contract between the binaries, end to end: `cognigate up` against moto
//! writes the files, the real `cognigate-gateway` boots from them and serves
//! at the public URL `up` registered, and says so when told otherwise.

use std::process::Command;

use serde_json::Value;

use crate::support::cli::{Workspace, unique_stack};
use crate::support::moto::MotoServer;
use crate::support::peers::{Peer, block_on, free_port, http_client, http_status};

const GATEWAY: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

fn gateway(ws: &Workspace, listen_port: u16, extra: &[&str]) -> Peer {
    let mut cmd = Command::new(GATEWAY);
    cmd.current_dir(ws.dir.path())
        .args(["--env-file", ".env", "--config-dir", "config", "--store", "sqlite:gateway.db"])
        .args(["--listen", &format!("127.0.0.1:{listen_port}"), "--workers", "1"])
        .args(extra)
        .env_remove("COGNIGATE_PUBLIC_URL")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG");
    let url = format!("http://127.0.0.1:{listen_port}");
    let health = format!("{url}/healthz");
    Peer::spawn_polled("gateway", cmd, ws.dir.path(), &url, || http_status(&health) == Some(200))
}

fn metadata(base: &str) -> Value {
    block_on(async {
        let response =
            http_client().get(format!("{base}/.well-known/oauth-authorization-server")).send().await.expect("metadata");
        response.json::<Value>().await.expect("metadata JSON")
    })
}

#[test]
fn the_gateway_serves_at_the_public_url_up_registered() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let port = free_port();
    // Not what the gateway would guess from its --listen (http://localhost:PORT).
    let public_url = "https://mcp-contract.example.com".to_owned();
    let doc = ws
        .run(&["up", "--stack", &unique_stack("contract"), "--gateway-url", &public_url, "--output", "json"])
        .success()
        .json();
    assert!(
        doc["callbackUrls"].as_array().unwrap().contains(&Value::from(format!("{public_url}/oauth/callback"))),
        "{doc}"
    );

    // No --public-url: the gateway takes the one `up` wrote.
    let gw = gateway(&ws, port, &[]);
    let meta = metadata(&format!("http://127.0.0.1:{port}"));
    assert_eq!(meta["issuer"], public_url.as_str(), "{}", gw.log_tail());
    assert_eq!(meta["authorization_endpoint"], format!("{public_url}/oauth/authorize"));
}

#[test]
fn a_public_url_other_than_the_registered_one_warns_with_the_fix() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    ws.run(&["up", "--stack", &unique_stack("contract"), "--gateway-url", "https://mcp.example.com"]).success();

    let port = free_port();
    let other = format!("http://localhost:{port}");
    let gw = gateway(&ws, port, &["--public-url", &other]);
    assert_eq!(metadata(&format!("http://127.0.0.1:{port}"))["issuer"], other.as_str(), "the flag wins");
    let log = gw.log_tail();
    assert!(log.contains(&format!("{other}/oauth/callback")), "the warning names the callback to register:\n{log}");
    assert!(log.contains(&format!("cognigate up --gateway-url {other}")), "and the command that adds it:\n{log}");
}

/// Whether `cognigate-gateway --public-url URL` boots (and serves) or refuses
/// to, with its message.
fn gateway_verdict(ws: &Workspace, public_url: &str) -> Result<(), String> {
    let port = free_port();
    let mut child = Command::new(GATEWAY)
        .current_dir(ws.dir.path())
        .args(["--env-file", ".env", "--config-dir", "config", "--store", "sqlite:verdict.db", "--workers", "1"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--public-url", public_url])
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the gateway");
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(_status) = child.try_wait().expect("gateway status") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).ok();
            return Err(stderr);
        }
        if http_status(&health) == Some(200) {
            child.kill().ok();
            child.wait().ok();
            return Ok(());
        }
        assert!(std::time::Instant::now() < deadline, "the gateway neither booted nor exited for {public_url}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One rule for a public URL: what `up --gateway-url` takes, the gateway takes
/// as `--public-url`, and what one refuses the other refuses. (Which schemes a
/// Cognito callback may use is Cognito's rule on top, checked by `up` alone:
/// the list holds https and http://localhost only.)
#[test]
fn up_and_the_gateway_accept_and_refuse_the_same_public_urls() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("publicurl");
    ws.run(&["up", "--stack", &stack]).success();
    for (url, accepted) in [
        ("https://mcp.example.com", true),
        ("https://mcp.example.com/", true),
        ("https://mcp.example.com:8443", true),
        ("http://localhost:9000", true),
        ("https://mcp.example.com/base", false),
        ("https://mcp.example.com/oauth/callback", false),
        ("https://mcp.example.com/?x=1", false),
        ("https://mcp.example.com/#top", false),
        ("https://user:pw@mcp.example.com", false),
        ("mcp.example.com", false),
        ("ftp://mcp.example.com", false),
    ] {
        let plan = ws.run(&["plan", "--stack", &stack, "--gateway-url", url]);
        let cli = match plan.code {
            0 => Ok(()),
            64 => Err(plan.stderr.clone()),
            other => panic!("plan --gateway-url {url} exited {other}: {}", plan.stderr),
        };
        let gateway = gateway_verdict(&ws, url);
        assert_eq!(cli.is_ok(), accepted, "cognigate up --gateway-url {url}: {cli:?}");
        assert_eq!(gateway.is_ok(), accepted, "cognigate-gateway --public-url {url}: {gateway:?}");
        if let (Err(cli), Err(gateway)) = (&cli, &gateway) {
            // Both name the same problem, in the contract's words.
            let problem = cli.split("\": ").nth(1).unwrap_or_default().split([';', ':']).next().unwrap_or_default();
            assert!(!problem.is_empty() && gateway.contains(problem), "{url}:\n  up: {cli}\n  gateway: {gateway}");
        }
    }
}
