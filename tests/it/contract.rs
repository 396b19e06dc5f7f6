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
