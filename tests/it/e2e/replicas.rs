//! Replicas on one `redis-server`: two and three `cognigate-gateway`
//! processes behind a round-robin front that sends every request to the next
//! replica. The official Python SDK client's whole flow (discovery,
//! registration, login, consent, code exchange, calls, refresh) succeeds with
//! its steps spread over the replicas; a code raced at two replicas is redeemed
//! once, and the losing attempt revokes what the winner issued; a refresh
//! token reused on another replica revokes its family on all of them; a
//! revocation on one is honoured by the others.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;

use super::{Cognito, PASSWORD, USERNAME, aws_env, temp_dir, write_routes};
use crate::gateway::harness::RedisServer;
use crate::support::peers::{self, Peer, Toolchain, UpstreamMcp};
use crate::support::round_robin::RoundRobin;

struct Replicas {
    // Dropped first: the front and the gateways before the peers they use.
    front: RoundRobin,
    gateways: Vec<Peer>,
    ports: Vec<u16>,
    _redis: RedisServer,
    upstream: UpstreamMcp,
    cognito: Cognito,
    public_url: String,
}

impl Replicas {
    fn start(count: usize) -> Replicas {
        let front_port = peers::free_port();
        let public_url = format!("http://localhost:{front_port}");
        let tools = Toolchain::require();
        let dir = temp_dir();
        let log_dir = dir.path().to_owned();
        let (cognito, upstream) = std::thread::scope(|s| {
            let upstream = s.spawn(|| UpstreamMcp::start(&tools, &log_dir, false));
            let cognito = Cognito::start_in(tools.clone(), dir, &public_url);
            (cognito, upstream.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        write_routes(&cognito.path().join("config"), &[("echo", upstream.url())]);
        let redis = RedisServer::start();
        let ports: Vec<u16> = (0..count).map(|_| peers::free_port()).collect();
        let gateways = ports
            .iter()
            .enumerate()
            .map(|(i, port)| spawn_replica(&cognito, i, *port, &public_url, &redis.url))
            .collect();
        let backends: Vec<SocketAddr> = ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
        let front = RoundRobin::start(front_port, backends);
        Replicas { front, gateways, ports, _redis: redis, upstream, cognito, public_url }
    }

    fn replica_urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect()
    }

    fn logs(&self) -> String {
        let gateways: Vec<String> = self.gateways.iter().map(Peer::log_tail).collect();
        format!("{}\n{}\n{}", gateways.join("\n"), self.upstream.log_tail(), self.cognito.logs())
    }

    fn run_json(&self, name: &str, cmd: Command) -> Value {
        let output = peers::run(name, cmd, super::SCRIPT_TIMEOUT);
        if !output.status.success() {
            panic!("{name} failed:\n{}\n\n{}", output.describe(), self.logs());
        }
        let out = output.json().unwrap_or_else(|| panic!("{name} printed no JSON:\n{}", output.describe()));
        eprintln!("{name}: {out}");
        out
    }
}

/// One replica: its own port and log, the shared Redis, the public URL of the front.
fn spawn_replica(cognito: &Cognito, index: usize, port: u16, public_url: &str, redis: &str) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
    cmd.arg("--config-dir")
        .arg(cognito.path().join("config"))
        .arg("--env-file")
        .arg(cognito.path().join(".env"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--public-url", public_url, "--store", redis])
        // Reuse must revoke at once here; the grace window has its own tests.
        .args(["--refresh-grace-seconds", "0"])
        .env("RUST_LOG", "info,cognigate=debug")
        .current_dir(cognito.path());
    aws_env(&mut cmd, cognito.moto.endpoint());
    let health = format!("http://127.0.0.1:{port}/healthz");
    Peer::spawn_polled(&format!("gateway-{index}"), cmd, cognito.path(), &format!("http://127.0.0.1:{port}"), || {
        peers::http_status(&health) == Some(200)
    })
}

#[test]
fn python_sdk_flow_with_each_request_on_the_next_of_three_replicas() {
    let world = Replicas::start(3);
    let mut cmd = world.cognito.tools.python_script("tests/e2e/client.py");
    cmd.args(["--url", &format!("{}/mcp/echo", world.public_url), "--username", USERNAME, "--password", PASSWORD])
        .args(["--text", "hello through three replicas"]);
    let out = world.run_json("client.py", cmd);
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    assert_eq!(out["echo"], "hello through three replicas", "{}", ctx());
    assert_eq!(out["tools"], serde_json::json!(["add", "echo", "whoami_headers"]), "{}", ctx());
    assert_eq!(out["add"], "42", "{}", ctx());
    assert_eq!(out["authorizations"], 1, "one login, then tokens: {}", ctx());
    assert_eq!(out["refreshed"], true, "{}", ctx());
    assert_eq!(out["refresh_token_rotated"], true, "{}", ctx());
    assert_eq!(out["add_after_refresh"], "2", "{}", ctx());

    // Every replica took part in the OAuth flow and in the MCP calls.
    let served = world.front.served();
    let replicas_for = |prefix: &str| -> BTreeSet<usize> {
        served.iter().filter(|(_, request)| request.contains(prefix)).map(|(i, _)| *i).collect()
    };
    let all: BTreeSet<usize> = (0..3).collect();
    assert_eq!(replicas_for(" /oauth/"), all, "OAuth steps on every replica: {served:?}");
    assert_eq!(replicas_for(" /mcp/echo"), all, "MCP requests on every replica: {served:?}");
    for step in ["/oauth/register", "/oauth/authorize", "/oauth/callback", "/oauth/consent", "/oauth/token"] {
        assert!(served.iter().any(|(_, r)| r.ends_with(step)), "{step} went through the front: {served:?}");
    }
}

fn replica_checks(world: &Replicas) -> Value {
    let mut cmd = world.cognito.tools.python_script("tests/e2e/replica_checks.py");
    cmd.args(["--gateway", &world.public_url, "--username", USERNAME, "--password", PASSWORD]);
    for url in world.replica_urls() {
        cmd.args(["--replica", &url]);
    }
    world.run_json("replica_checks.py", cmd)
}

fn assert_replica_checks(world: &Replicas, out: &Value) {
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    let race = out["code_race"].as_array().unwrap_or_else(|| panic!("{}", ctx()));
    let won: Vec<&Value> = race.iter().filter(|r| r["status"] == 200).collect();
    assert_eq!(won.len(), 1, "exactly one replica redeems a raced code: {}", ctx());
    let lost = race.iter().find(|r| r["status"] != 200).unwrap_or_else(|| panic!("{}", ctx()));
    assert_eq!(lost["error"], "invalid_grant", "{}", ctx());
    // The loser's attempt is a replay of a redeemed code: everything the
    // winner issued is revoked, even when the loser got there before the
    // winner had stored its refresh token (the redemption recorded what it
    // would issue as it took the code).
    assert_eq!(
        out["winner_after_replay"]["error"],
        "invalid_grant",
        "the replay revoked the winner's refresh token: {}",
        ctx()
    );
    assert_eq!(
        out["winner_access_after_replay"],
        serde_json::json!(vec![401; world.ports.len()]),
        "the replay revoked the winner's access token on every replica: {}",
        ctx()
    );
    assert_eq!(out["fresh_login"], 200, "{}", ctx());

    assert_eq!(out["rotate"]["status"], 200, "{}", ctx());
    assert_eq!(out["rotate"]["rotated"], true, "{}", ctx());
    let replicas = world.ports.len();
    assert_eq!(out["rotated_access"], serde_json::json!(vec![200; replicas]), "{}", ctx());
    assert_eq!(out["reuse_elsewhere"]["error"], "invalid_grant", "{}", ctx());
    for refused in out["rotated_after_reuse"].as_array().unwrap() {
        assert_eq!(refused["error"], "invalid_grant", "the family is revoked on every replica: {}", ctx());
    }
    assert_eq!(out["rotated_access_after_reuse"], serde_json::json!(vec![401; replicas]), "{}", ctx());

    assert_eq!(out["second_login"], 200, "{}", ctx());
    assert_eq!(out["second_access"], serde_json::json!(vec![200; replicas]), "{}", ctx());
    assert_eq!(out["revoke_status"], 200, "{}", ctx());
    for refused in out["refresh_after_revoke"].as_array().unwrap() {
        assert_eq!(refused["error"], "invalid_grant", "{}", ctx());
    }
    assert_eq!(out["access_after_revoke"], serde_json::json!(vec![401; replicas - 1]), "{}", ctx());
}

#[test]
fn two_replicas_share_codes_refresh_families_and_revocations() {
    let world = Replicas::start(2);
    let out = replica_checks(&world);
    assert_replica_checks(&world, &out);
}

#[test]
fn three_replicas_share_codes_refresh_families_and_revocations() {
    let world = Replicas::start(3);
    let out = replica_checks(&world);
    assert_replica_checks(&world, &out);
}
