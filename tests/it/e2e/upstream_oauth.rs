//! Upstreams that are OAuth-protected resources of their own
//! (`mcp-token-exchange-inbound`), against real peers: npm `oidc-provider`
//! as the upstream's authorization server (dynamic registration, PKCE,
//! resource indicators, refresh rotation, introspection, revocation), an MCP
//! server on the official Python SDK that checks every token there, the
//! official Python SDK as the gateway's client, and headless Chromium
//! walking the connect page and the upstream's login.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Cognito, EMAIL, PASSWORD, POLICY, USERNAME, World, aws_env, create_named_user, temp_dir};
use crate::gateway::harness::RedisServer;
use crate::support::peers::{self, Peer, Toolchain};
use crate::support::round_robin::RoundRobin;
use crate::support::upstream_oauth::{ProtectedUpstream, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET};

const BOB: &str = "bob";
const BOB_EMAIL: &str = "bob@example.com";
const BOB_PASSWORD: &str = "B0b-Battery-Horse!";

/// The token-exchange policies: a per-user one (`linear`, auto
/// registration) and a shared service account (`reports`).
fn add_policies(config: &Path) {
    let path = config.join("policies.json");
    let mut policies: Value = serde_json::from_str(&fs::read_to_string(&path).expect("policies.json")).expect("json");
    let list = policies["policies"].as_array_mut().expect("policies list");
    list.push(json!({
        "name": "mcp-token-exchange-linear",
        "policyType": "mcp-token-exchange-inbound",
        "handler": {
            "module": "$import(@zuplo/runtime/mcp-gateway)",
            "export": "McpTokenExchangeInboundPolicy",
            "options": {"displayName": "Linear", "id": "linear", "authMode": "user-oauth", "scopes": [],
                        "clientRegistration": {"mode": "auto"}}
        }
    }));
    list.push(json!({
        "name": "mcp-token-exchange-reports",
        "policyType": "mcp-token-exchange-inbound",
        "handler": {
            "module": "$import(@zuplo/runtime/mcp-gateway)",
            "export": "McpTokenExchangeInboundPolicy",
            "options": {"displayName": "Reports", "id": "reports", "authMode": "service-account",
                        "clientRegistration": {"mode": "manual", "clientId": "$env(REPORTS_CLIENT_ID)",
                                               "clientSecret": "$env(REPORTS_CLIENT_SECRET)"}}
        }
    }));
    fs::write(&path, serde_json::to_string_pretty(&policies).expect("json")).expect("write policies.json");
    super::set_env_var(&config.join("../.env"), "REPORTS_CLIENT_ID", SERVICE_CLIENT_ID);
    super::set_env_var(&config.join("../.env"), "REPORTS_CLIENT_SECRET", SERVICE_CLIENT_SECRET);
}

/// `/mcp/linear` (per user) and `/mcp/reports` (service account), both to
/// the protected upstream.
fn write_routes(config: &Path, upstream: &str) {
    let mut paths = serde_json::Map::new();
    for (slug, policy) in [("linear", "mcp-token-exchange-linear"), ("reports", "mcp-token-exchange-reports")] {
        let op = |method: &str| {
            json!({
                "operationId": format!("mcp-{slug}-{method}"),
                "x-zuplo-route": {
                    "handler": {"export": "McpProxyHandler", "module": "$import(@zuplo/runtime/mcp-gateway)",
                                "options": {"rewritePattern": upstream}},
                    "policies": {"inbound": [POLICY, policy]}
                }
            })
        };
        paths.insert(format!("/mcp/{slug}"), json!({"post": op("post"), "get": op("get"), "delete": op("delete")}));
    }
    let doc = json!({"openapi": "3.1.0", "info": {"title": "upstream oauth", "version": "1"}, "paths": paths});
    fs::write(config.join("routes.oas.json"), serde_json::to_string_pretty(&doc).expect("json")).expect("routes");
}

struct Setup {
    world: World,
    upstream: ProtectedUpstream,
}

impl Setup {
    fn start(access_ttl: u64) -> Setup {
        Setup::start_refusing(access_ttl, &[])
    }

    /// With the MCP server's options (`--refuse-subject USER`).
    fn start_refusing(access_ttl: u64, mcp_extra: &[&str]) -> Setup {
        let mut world = World::start();
        let upstream = ProtectedUpstream::start_full(world.tools(), world.cognito.path(), access_ttl, &[], mcp_extra);
        let config = world.cognito.path().join("config");
        add_policies(&config);
        write_routes(&config, upstream.url());
        world.restart_gateway();
        Setup { world, upstream }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.world.logs(), self.upstream.logs())
    }

    fn checks(&self, user: (&str, &str), upstream_login: &str, phase: &str, extra: &[&str]) -> Value {
        let mut cmd = self.world.tools().python_script("tests/e2e/upstream_oauth_checks.py");
        cmd.args(["--url", &self.world.route_url("linear"), "--username", user.0, "--password", user.1])
            .args(["--upstream-login", upstream_login, "--phase", phase])
            .args(extra);
        let output = peers::run("upstream_oauth_checks.py", cmd, Duration::from_secs(180));
        assert!(output.status.success(), "upstream_oauth_checks.py failed:\n{}\n\n{}", output.describe(), self.logs());
        let out = output.json().unwrap_or_else(|| panic!("no JSON:\n{}\n\n{}", output.describe(), self.logs()));
        eprintln!("upstream_oauth_checks.py: {out}");
        out
    }

    fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.world.gateway_url);
        peers::block_on(async { peers::http_client().get(url).send().await?.text().await }).expect("metrics")
    }

    /// `cognigate-gateway <args>` on the world's config and store.
    fn gateway_cli(&self, args: &[&str]) -> peers::ScriptOutput {
        let dir = self.world.cognito.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
        cmd.arg("--config-dir")
            .arg(dir.join("config"))
            .arg("--env-file")
            .arg(dir.join(".env"))
            .arg("--store")
            .arg(format!("sqlite:{}", dir.join("gw.db").display()))
            .args(args)
            .current_dir(dir);
        peers::run("cognigate-gateway", cmd, Duration::from_secs(60))
    }
}

fn metric(text: &str, name: &str, upstream: &str) -> u64 {
    let prefix = format!("{name}{{upstream=\"{upstream}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn connect_required_then_the_connect_page_then_the_same_call_succeeds_as_that_user() {
    let mut setup = Setup::start(3600);
    // A client that declares no URL elicitation: the link is in the message.
    let plain = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "call", &[]);
    let ctx = || format!("{plain:#}\n\n{}", setup.logs());
    assert_eq!(plain["first"]["ok"], false, "{}", ctx());
    let message = plain["first"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/oauth/upstream/connect?ticket="), "the message carries the link: {}", ctx());
    assert_ne!(plain["first"]["error"]["code"], -32042, "{}", ctx());

    let screenshot = World::artifacts_dir().join("upstream-connect.png");
    let out = setup.checks(
        (USERNAME, PASSWORD),
        "alice-at-linear",
        "connect",
        &["--elicitation", "--screenshot", screenshot.to_str().expect("path")],
    );
    let ctx = || format!("{out:#}\n\n{}", setup.logs());
    // 2. connect-required, as a URL-mode elicitation (MCP 2025-11-25).
    assert_eq!(out["first"]["ok"], false, "{}", ctx());
    assert_eq!(out["first"]["error"]["code"], -32042, "{}", ctx());
    let elicitation = &out["first"]["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{}", ctx());
    assert!(elicitation["elicitationId"].as_str().is_some_and(|id| !id.is_empty()), "{}", ctx());
    assert!(out["connect_url"].as_str().is_some_and(|url| url.starts_with(&setup.world.gateway_url)), "{}", ctx());
    // 3. The connect page names the user and the upstream, and is not frameable.
    assert_eq!(out["connect"]["page"]["user"], EMAIL, "{}", ctx());
    assert_eq!(out["connect"]["page"]["display_name"], "Linear", "{}", ctx());
    assert_eq!(out["connect"]["page"]["resource"], setup.upstream.url(), "{}", ctx());
    assert_eq!(out["connect"]["page"]["frame_options"], "DENY", "{}", ctx());
    assert!(out["connect"]["done"]["message"].as_str().is_some_and(|m| m.contains("is connected")), "{}", ctx());
    // 4. The retried call succeeds; 5. the upstream saw a token for that
    // user, audience itself, and never the gateway's token.
    assert_eq!(out["second"]["ok"], true, "{}", ctx());
    assert_eq!(out["second"]["whoami"]["sub"], "alice-at-linear", "{}", ctx());
    assert_eq!(out["second"]["whoami"]["aud"], setup.upstream.url(), "{}", ctx());
    assert_ne!(out["second"]["whoami"]["client_id"], SERVICE_CLIENT_ID, "{}", ctx());
    let stats = setup.upstream.stats();
    let seen: Vec<&str> = stats["token_sha256"].as_array().expect("hashes").iter().filter_map(Value::as_str).collect();
    assert!(!seen.is_empty(), "{}", ctx());
    for gateway_token in [&out["gateway_token_sha256"], &plain["gateway_token_sha256"]] {
        let hash = gateway_token.as_str().expect("the client had a gateway token");
        assert!(!seen.contains(&hash), "the gateway's token reached the upstream: {}", ctx());
    }
    let metrics = setup.metrics();
    assert_eq!(metric(&metrics, "cognigate_upstream_oauth_connects_total", "linear"), 1, "{metrics}");
    assert_eq!(metric(&metrics, "cognigate_upstream_oauth_connect_required_total", "linear"), 2, "{metrics}");
    // The log never shows an upstream token: the gateway logs no bearer.
    assert!(!setup.world.gateway.log_tail().contains("Bearer "), "{}", ctx());

    // From then on, no further prompt, across a restart.
    setup.world.restart_gateway();
    let again = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "call", &["--elicitation"]);
    assert_eq!(again["first"]["ok"], true, "{again:#}\n\n{}", setup.logs());
    assert_eq!(again["first"]["whoami"]["sub"], "alice-at-linear", "{again:#}");
}

#[test]
fn two_users_get_two_upstream_identities_and_revoke_sub_removes_one_grant() {
    let setup = Setup::start(3600);
    let cognito: &Cognito = &setup.world.cognito;
    create_named_user(
        &cognito.tools,
        cognito.moto.endpoint(),
        &cognito.provisioned.pool_id,
        (BOB, BOB_PASSWORD, BOB_EMAIL),
    );
    let alice = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "connect", &["--elicitation"]);
    let bob = setup.checks((BOB, BOB_PASSWORD), "bob-at-linear", "connect", &["--elicitation"]);
    let ctx = || format!("{alice:#}\n{bob:#}\n\n{}", setup.logs());
    assert_eq!(alice["second"]["whoami"]["sub"], "alice-at-linear", "{}", ctx());
    assert_eq!(bob["second"]["whoami"]["sub"], "bob-at-linear", "{}", ctx());
    assert_eq!(bob["connect"]["page"]["user"], BOB_EMAIL, "{}", ctx());

    let listed = setup.gateway_cli(&["connections", "--user", BOB_EMAIL]);
    assert!(listed.status.success(), "{}", listed.describe());
    let line = listed
        .stdout
        .lines()
        .find(|line| line.starts_with("linear\t"))
        .unwrap_or_else(|| panic!("{}", listed.describe()));
    assert!(line.contains(&format!("user={BOB_EMAIL}")) && line.contains("refreshable=yes"), "{line}");
    assert!(!listed.stdout.contains("alice"), "only bob's: {}", listed.describe());
    let sub = line.split('\t').find_map(|field| field.strip_prefix("sub=")).expect("sub").to_owned();

    let revoked = setup.gateway_cli(&["revoke", "--sub", &sub]);
    assert!(revoked.status.success(), "{}\n{}", revoked.describe(), setup.logs());
    assert!(
        revoked.stdout.contains("1 upstream grant(s) deleted (1 revoked at the upstream)"),
        "{}",
        revoked.describe()
    );
    let revocations: Vec<Value> =
        setup.upstream.grants().into_iter().filter(|e| e.get("revocation").is_some()).collect();
    assert_eq!(revocations.len(), 1, "RFC 7009 at the upstream: {revocations:?}");
    assert_eq!(revocations[0]["revocation"], "refresh_token", "the grant's refresh token: {revocations:?}");
    let listed = setup.gateway_cli(&["connections", "--sub", &sub]);
    assert!(listed.stdout.contains("no upstream connections"), "{}", listed.describe());
    // Bob must connect again; Alice is untouched.
    let bob_again = setup.checks((BOB, BOB_PASSWORD), "bob-at-linear", "call", &["--elicitation"]);
    assert_eq!(bob_again["first"]["error"]["code"], -32042, "{bob_again:#}\n\n{}", setup.logs());
    let alice_again = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "call", &["--elicitation"]);
    assert_eq!(alice_again["first"]["whoami"]["sub"], "alice-at-linear", "{alice_again:#}\n\n{}", setup.logs());

    // An operator disconnects one upstream of a user; `revoke --user`
    // finds upstream grants by the e-mail they were connected with.
    let disconnected = setup.gateway_cli(&["connections", "--user", EMAIL, "--disconnect", "linear"]);
    assert!(disconnected.stdout.contains("disconnected: 1 grant(s) at linear deleted"), "{}", disconnected.describe());
    let bob_back = setup.checks((BOB, BOB_PASSWORD), "bob-at-linear", "connect", &["--elicitation"]);
    assert_eq!(bob_back["second"]["ok"], true, "{bob_back:#}\n\n{}", setup.logs());
    let revoked = setup.gateway_cli(&["revoke", "--user", BOB_EMAIL]);
    assert!(
        revoked.stdout.contains("1 upstream grant(s) deleted (1 revoked at the upstream)"),
        "{}",
        revoked.describe()
    );
    let listed = setup.gateway_cli(&["connections", "--user", BOB_EMAIL]);
    assert!(listed.stdout.contains("no upstream connections"), "{}", listed.describe());
}

#[test]
fn an_expiring_upstream_token_is_refreshed_before_it_expires() {
    // Four-second tokens: refreshed once two seconds are left.
    let setup = Setup::start(4);
    let out = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "connect", &["--elicitation"]);
    assert_eq!(out["second"]["ok"], true, "{out:#}\n\n{}", setup.logs());
    let refreshes = setup.upstream.count("refresh_token");
    std::thread::sleep(Duration::from_secs(3));
    let later = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "call", &["--elicitation"]);
    let ctx = || format!("{later:#}\n\n{}", setup.logs());
    assert_eq!(later["first"]["ok"], true, "{}", ctx());
    assert_eq!(later["first"]["whoami"]["sub"], "alice-at-linear", "{}", ctx());
    assert!(setup.upstream.count("refresh_token") > refreshes, "the gateway refreshed: {:?}", setup.upstream.grants());
    assert!(metric(&setup.metrics(), "cognigate_upstream_oauth_refreshes_total", "linear") >= 1);
}

#[test]
fn a_grant_revoked_at_the_upstream_asks_to_connect_again() {
    // Hour-long tokens: the gateway's copy is not due, so it learns of the
    // revocation from the upstream's 401.
    let setup = Setup::start(3600);
    let out = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "connect", &["--elicitation"]);
    assert_eq!(out["second"]["ok"], true, "{out:#}\n\n{}", setup.logs());
    // The user's grant ends at the authorization server: the next call
    // (the upstream refuses the token, the refresh is refused) asks to
    // connect again instead of passing the 401 on.
    let revoked = setup.upstream.revoke_account("alice-at-linear");
    assert!(revoked["revoked"].as_u64().is_some_and(|n| n >= 1), "{revoked}");
    let after = setup.checks((USERNAME, PASSWORD), "alice-at-linear", "call", &["--elicitation"]);
    assert_eq!(after["first"]["ok"], false, "{after:#}\n\n{}", setup.logs());
    assert_eq!(after["first"]["error"]["code"], -32042, "{after:#}\n\n{}", setup.logs());
}

/// An upstream that refuses even a renewed token (it has locked the
/// account): the client gets a JSON-RPC error saying so, once, not the
/// upstream's 401 (which would send it to sign in to the gateway again).
#[test]
fn an_upstream_refusing_a_renewed_token_is_a_clear_error_not_a_401() {
    let setup = Setup::start_refusing(3600, &["--refuse-subject", "locked-user"]);
    let out = setup.checks((USERNAME, PASSWORD), "locked-user", "connect", &["--elicitation"]);
    let ctx = || format!("{out:#}\n\n{}", setup.logs());
    assert_eq!(
        out["connect"]["done"]["url"],
        format!("{}/oauth/upstream/callback", setup.world.gateway_url),
        "{}",
        ctx()
    );
    assert_eq!(out["second"]["ok"], false, "{}", ctx());
    let message = out["second"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused the credential the gateway holds"), "{}", ctx());
    // It renewed once (the refresh went through), then gave up.
    assert_eq!(setup.upstream.count("refresh_token"), 1, "{:?}", setup.upstream.grants());
}

#[test]
fn a_shared_account_route_uses_client_credentials_for_everyone() {
    let setup = Setup::start(3600);
    let mut cmd = setup.world.tools().python_script("tests/e2e/upstream_oauth_checks.py");
    cmd.args(["--url", &setup.world.route_url("reports"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--phase", "call"]);
    let out = setup.world.run_json("upstream_oauth_checks.py", cmd);
    let ctx = || format!("{out:#}\n\n{}", setup.logs());
    assert_eq!(out["first"]["ok"], true, "{}", ctx());
    assert_eq!(out["first"]["whoami"]["client_id"], SERVICE_CLIENT_ID, "{}", ctx());
    assert_eq!(out["first"]["whoami"]["aud"], setup.upstream.url(), "{}", ctx());
    assert_eq!(out["first"]["whoami"]["sub"], Value::Null, "no user: the service account's token: {}", ctx());
    assert_eq!(setup.upstream.count("client_credentials"), 1, "{:?}", setup.upstream.grants());
    // Kept until it is due: a second session costs no new token.
    let mut cmd = setup.world.tools().python_script("tests/e2e/upstream_oauth_checks.py");
    cmd.args(["--url", &setup.world.route_url("reports"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--phase", "call"]);
    let again = setup.world.run_json("upstream_oauth_checks.py", cmd);
    assert_eq!(again["first"]["ok"], true, "{again:#}");
    assert_eq!(setup.upstream.count("client_credentials"), 1, "{:?}", setup.upstream.grants());
}

/// One gateway replica on the shared Redis.
fn spawn_replica(cognito: &Cognito, index: usize, port: u16, public_url: &str, redis: &str) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
    cmd.arg("--config-dir")
        .arg(cognito.path().join("config"))
        .arg("--env-file")
        .arg(cognito.path().join(".env"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--public-url", public_url, "--store", redis])
        .env("RUST_LOG", "info,cognigate=debug")
        .current_dir(cognito.path());
    aws_env(&mut cmd, cognito.moto.endpoint());
    let health = format!("http://127.0.0.1:{port}/healthz");
    Peer::spawn_polled(&format!("gateway-{index}"), cmd, cognito.path(), &format!("http://127.0.0.1:{port}"), || {
        peers::http_status(&health) == Some(200)
    })
}

#[test]
fn two_replicas_on_redis_refreshing_at_once_refresh_once() {
    let front_port = peers::free_port();
    let public_url = format!("http://localhost:{front_port}");
    let tools = Toolchain::require();
    let dir = temp_dir();
    let cognito = Cognito::start_in(tools.clone(), dir, &public_url);
    // Six-second tokens: due when three are left.
    let upstream = ProtectedUpstream::start(&tools, cognito.path(), 6);
    let config = cognito.path().join("config");
    add_policies(&config);
    write_routes(&config, upstream.url());
    let redis = RedisServer::start();
    let ports = [peers::free_port(), peers::free_port()];
    let gateways: Vec<Peer> =
        ports.iter().enumerate().map(|(i, port)| spawn_replica(&cognito, i, *port, &public_url, &redis.url)).collect();
    let backends = ports.iter().map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p))).collect();
    let _front = RoundRobin::start(front_port, backends);
    let logs = || {
        let tails: Vec<String> = gateways.iter().map(Peer::log_tail).collect();
        format!("{}\n{}", tails.join("\n"), upstream.logs())
    };
    let run = |phase: &str, extra: &[&str]| {
        let mut cmd = tools.python_script("tests/e2e/upstream_oauth_checks.py");
        cmd.args(["--url", &format!("{public_url}/mcp/linear"), "--username", USERNAME, "--password", PASSWORD])
            .args(["--upstream-login", "alice-at-linear", "--phase", phase, "--elicitation"])
            .args(extra);
        let output = peers::run("upstream_oauth_checks.py", cmd, Duration::from_secs(180));
        assert!(output.status.success(), "{}\n\n{}", output.describe(), logs());
        let out = output.json().unwrap_or_else(|| panic!("{}", output.describe()));
        eprintln!("upstream_oauth_checks.py: {out}");
        out
    };
    let connected = run("connect", &[]);
    assert_eq!(connected["second"]["ok"], true, "{connected:#}\n\n{}", logs());
    let replicas = ports.iter().map(|p| format!("http://127.0.0.1:{p}/mcp/linear")).collect::<Vec<_>>().join(",");
    // Sessions on both replicas, then one call on each at the same moment,
    // once the token is due.
    let events = format!("{}/_test/events", upstream.authorization_server.url());
    let raced = run("race", &["--replicas", &replicas, "--wait", "4", "--as-events", &events]);
    let ctx = || format!("{raced:#}\n\n{}", logs());
    for result in raced["results"].as_array().expect("results") {
        assert_eq!(result["sub"], "alice-at-linear", "{}", ctx());
    }
    assert_eq!(raced["refreshes_during_race"], 1, "one refresh for both replicas: {}", ctx());
}

/// The dangerous moment of a rotation: the authorization server has spent
/// the old refresh token and answered, and the store does not take the new
/// one (Redis pauses writes past the gateway's timeout). The call still goes
/// through with the new token, the new tokens are written by the next
/// request, and the user is never asked to reconnect; presenting the spent
/// token again would have ended the grant (oidc-provider detects reuse).
#[test]
fn a_rotated_refresh_token_the_store_could_not_take_is_not_lost() {
    let tools = Toolchain::require();
    let port = peers::free_port();
    let public_url = format!("http://localhost:{port}");
    let cognito = Cognito::start_in(tools.clone(), temp_dir(), &public_url);
    // Eight-second tokens (due with four left); refresh answers held 1.5 s.
    let upstream = ProtectedUpstream::start_with(&tools, cognito.path(), 8, &["--refresh-delay-ms", "1500"]);
    let config = cognito.path().join("config");
    add_policies(&config);
    write_routes(&config, upstream.url());
    let redis = RedisServer::start();
    let gateway = spawn_replica(&cognito, 0, port, &public_url, &redis.url);
    let logs = || format!("{}\n{}", gateway.log_tail(), upstream.logs());
    let call = |phase: &str| {
        let mut cmd = tools.python_script("tests/e2e/upstream_oauth_checks.py");
        cmd.args(["--url", &format!("{public_url}/mcp/linear"), "--username", USERNAME, "--password", PASSWORD])
            .args(["--upstream-login", "alice-at-linear", "--phase", phase, "--elicitation"]);
        cmd
    };
    let output = peers::run("upstream_oauth_checks.py", call("connect"), Duration::from_secs(180));
    let connected = output.json().unwrap_or_else(|| panic!("{}\n{}", output.describe(), logs()));
    assert_eq!(connected["second"]["ok"], true, "{connected:#}\n\n{}", logs());

    // Once the token is due, a call refreshes; while the server holds its
    // answer, Redis stops taking writes for longer than the gateway waits.
    std::thread::sleep(Duration::from_secs(5));
    let refreshes = upstream.count("refresh_token");
    let cmd = call("call");
    let pending = std::thread::spawn(move || peers::run("upstream_oauth_checks.py", cmd, Duration::from_secs(180)));
    // The refresh has reached the server, which is holding its answer.
    peers::wait_until(Duration::from_secs(30), || upstream.count("refresh_token") > refreshes)
        .unwrap_or_else(|| panic!("no refresh reached the authorization server:\n{}", logs()));
    let client = redis::Client::open(redis.url.as_str()).expect("redis url");
    let mut conn = client.get_connection().expect("redis connection");
    redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("WRITE").query::<()>(&mut conn).expect("CLIENT PAUSE");
    let output = pending.join().expect("the call's thread");
    let during = output.json().unwrap_or_else(|| panic!("{}\n{}", output.describe(), logs()));
    assert_eq!(during["first"]["ok"], true, "the call went through with the new token: {during:#}\n\n{}", logs());
    assert_eq!(upstream.count("refresh_token"), refreshes + 1, "{:?}", upstream.grants());
    assert!(gateway.log_tail().contains("kept in memory"), "the store did not take it:\n{}", logs());

    // After the pause: no reconnect, and no spent refresh token presented.
    std::thread::sleep(Duration::from_secs(3));
    let mut cmd = tools.python_script("tests/e2e/upstream_oauth_checks.py");
    cmd.args(["--url", &format!("{public_url}/mcp/linear"), "--username", USERNAME, "--password", PASSWORD]).args([
        "--phase",
        "call",
        "--elicitation",
    ]);
    let output = peers::run("upstream_oauth_checks.py", cmd, Duration::from_secs(180));
    let after = output.json().unwrap_or_else(|| panic!("{}\n{}", output.describe(), logs()));
    assert_eq!(after["first"]["ok"], true, "{after:#}\n\n{}", logs());
    assert_eq!(after["first"]["whoami"]["sub"], "alice-at-linear", "{after:#}");
    assert_eq!(upstream.refused(), Vec::<Value>::new(), "a spent refresh token was presented:\n{}", logs());
}
