//! End to end: `cognigate up` against moto, the hosted UI stand-in, an upstream
//! MCP server, `cognigate-gateway`, and the official MCP client SDKs and headless
//! Chromium driving the whole OAuth flow.
//!
//! Every test builds its own world in a temp dir on free ports, so the tests
//! run in parallel and leave nothing behind: [`Cognito`] is moto provisioned
//! with a user and the stand-in in front of it; [`World`] adds the upstream
//! and the gateway booted from the files `up` wrote.

mod access;
mod aggregate;
mod clients;
mod consent;
mod hosted_ui;
mod id_token;
mod machine;
mod mcp_remote;
mod recheck;
mod replicas;
mod tokens;
mod upstream_oauth;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::front_proxy::FrontProxy;
use crate::support::moto::MotoServer;
use crate::support::peers::{self, HostedUi, Peer, Toolchain, UpstreamMcp};

pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "Corr3ct-Horse-Battery!";
pub const EMAIL: &str = "alice@example.com";
/// The policy name `cognigate up` writes.
pub const POLICY: &str = "cognito-managed-oauth";

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A stack name no other test uses: moto is shared by the test process, and the
/// name also becomes the domain prefix.
fn unique_stack() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("e2e-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The app client `up` created, as read back from the env file it wrote.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub stack: String,
    pub pool_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub domain: String,
}

/// moto (the test process's shared server) provisioned by `cognigate up` for a
/// gateway at `gateway_url`, one user, the hosted UI stand-in for that pool.
pub struct Cognito {
    pub tools: Toolchain,
    pub dir: tempfile::TempDir,
    pub moto: &'static MotoServer,
    pub provisioned: Provisioned,
    pub hosted_ui: HostedUi,
}

fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("cognigate-e2e-").tempdir().expect("temp dir");
    fs::create_dir_all(dir.path().join("config")).expect("config dir");
    dir
}

impl Cognito {
    pub fn start(gateway_url: &str) -> Cognito {
        Cognito::start_in(Toolchain::require(), temp_dir(), gateway_url)
    }

    fn start_in(tools: Toolchain, dir: tempfile::TempDir, gateway_url: &str) -> Cognito {
        let moto = MotoServer::shared();
        let provisioned = provision(dir.path(), moto.endpoint(), gateway_url);
        create_user(&tools, moto.endpoint(), &provisioned.pool_id);
        let hosted_ui = HostedUi::start(&tools, moto.endpoint(), &provisioned.pool_id, dir.path());
        // The browser leg goes to the stand-in: a loopback domain is reached over http.
        set_env_var(&dir.path().join(".env"), "COGNITO_USER_POOL_DOMAIN", &hosted_ui.domain());
        Cognito { tools, dir, moto, provisioned, hosted_ui }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the peers logged, for failure messages.
    pub fn logs(&self) -> String {
        self.hosted_ui.log_tail()
    }

    /// Another app client in the same pool (for the stand-in's own checks).
    pub fn extra_client(&self, args: &[&str]) -> Value {
        let mut cmd = self.tools.python_script("tests/e2e/provision.py");
        cmd.args(["client", "--moto", self.moto.endpoint(), "--pool-id", &self.provisioned.pool_id]);
        cmd.args(args);
        peers::run_json("provision.py client", cmd, SCRIPT_TIMEOUT)
    }
}

/// Provisions with the real CLI: `cognigate up` writes .env and config/policies.json.
fn provision(dir: &Path, moto: &str, gateway_url: &str) -> Provisioned {
    let env_file = dir.join(".env");
    let stack = unique_stack();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate"));
    cmd.args(["up", "--stack", &stack, "--region", "us-east-1", "--endpoint-url", moto])
        .args(["--gateway-url", gateway_url])
        .arg("--env-file")
        .arg(&env_file)
        .arg("--policies-file")
        .arg(dir.join("config/policies.json"))
        .args(["--output", "json"])
        .current_dir(dir);
    aws_env(&mut cmd, moto);
    let output = peers::run("cognigate up", cmd, SCRIPT_TIMEOUT);
    assert!(output.status.success(), "cognigate up failed:\n{}", output.describe());
    let env = read_env(&env_file);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("cognigate up wrote no {k} to {}: {env:?}", env_file.display()))
    };
    Provisioned {
        stack,
        pool_id: get("COGNITO_USER_POOL_ID"),
        client_id: get("COGNITO_CLIENT_ID"),
        client_secret: get("COGNITO_CLIENT_SECRET"),
        domain: get("COGNITO_USER_POOL_DOMAIN"),
    }
}

fn create_user(tools: &Toolchain, moto: &str, pool_id: &str) {
    create_named_user(tools, moto, pool_id, (USERNAME, PASSWORD, EMAIL));
}

/// A user `(username, password, email)` in the pool.
fn create_named_user(tools: &Toolchain, moto: &str, pool_id: &str, (username, password, email): (&str, &str, &str)) {
    let mut cmd = tools.python_script("tests/e2e/provision.py");
    cmd.args(["user", "--moto", moto, "--pool-id", pool_id]).args([
        "--username",
        username,
        "--password",
        password,
        "--email",
        email,
    ]);
    peers::run_json("provision.py user", cmd, SCRIPT_TIMEOUT);
}

/// Dummy credentials and the emulator endpoint, and nothing from the host's AWS setup.
fn aws_env(cmd: &mut Command, moto: &str) {
    cmd.env("AWS_ENDPOINT_URL", moto)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
}

fn read_env(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').trim_matches('\'').to_owned()))
        .collect()
}

/// Replaces (or appends) `NAME=value` in an env file, keeping every other line.
fn set_env_var(path: &Path, name: &str, value: &str) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut found = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k.trim() == name => {
                found = true;
                format!("{name}={value}")
            }
            _ => l.to_owned(),
        })
        .collect();
    if !found {
        lines.push(format!("{name}={value}"));
    }
    fs::write(path, lines.join("\n") + "\n").expect("write env file");
}

/// `config/routes.oas.json` in the Zuplo shape: `/mcp/{slug}` → upstream, behind the policy.
fn write_routes(config_dir: &Path, routes: &[(&str, &str)]) {
    let mut paths = serde_json::Map::new();
    for (slug, upstream) in routes {
        let op = |method: &str| {
            json!({
                "summary": format!("MCP {slug} ({method})"),
                "operationId": format!("mcp-{slug}-{method}"),
                "x-zuplo-route": {
                    "corsPolicy": "none",
                    "handler": {
                        "export": "McpProxyHandler",
                        "module": "$import(@zuplo/runtime/mcp-gateway)",
                        "options": {"rewritePattern": upstream}
                    },
                    "policies": {"inbound": [POLICY]}
                }
            })
        };
        paths.insert(
            format!("/mcp/{slug}"),
            json!({"x-zuplo-path": {"pathMode": "open-api"}, "post": op("post"), "get": op("get"), "delete": op("delete")}),
        );
    }
    let doc = json!({"openapi": "3.1.0", "info": {"title": "cognigate e2e", "version": "1.0.0"}, "paths": paths});
    fs::write(config_dir.join("routes.oas.json"), serde_json::to_string_pretty(&doc).expect("json"))
        .expect("write routes.oas.json");
}

/// Sets `gateway.accessTokenTtlSeconds` on the policy `up` wrote.
fn set_access_token_ttl(config_dir: &Path, seconds: u64) {
    let path = config_dir.join("policies.json");
    let mut policies: Value = serde_json::from_str(&fs::read_to_string(&path).expect("policies.json")).expect("json");
    let list = policies["policies"].as_array_mut().expect("policies array");
    let policy = list.iter_mut().find(|p| p["name"] == POLICY).expect("the cognito policy");
    policy["handler"]["options"]["gateway"] = json!({"accessTokenTtlSeconds": seconds});
    fs::write(&path, serde_json::to_string_pretty(&policies).expect("json")).expect("write policies.json");
}

/// The whole world: Cognito (moto + stand-in), an upstream MCP server, the gateway.
pub struct World {
    // Dropped first: the gateway before the peers it talks to.
    pub gateway: Peer,
    pub upstream: UpstreamMcp,
    pub json_upstream: Option<UpstreamMcp>,
    pub cognito: Cognito,
    pub gateway_url: String,
    port: u16,
    listen_port: u16,
    client_id_ca: Option<std::path::PathBuf>,
    refresh: (Option<String>, Option<u64>),
    /// The front proxy, when there is one (see [`Extras::hide_rfc8414`]).
    pub front: Option<FrontProxy>,
}

/// `cognigate-gateway` booted from the files `up` wrote (plus the routes), on `port`.
/// `port` is the public URL's, `listen_port` where the gateway listens (the
/// same unless a front proxy takes `port`).
fn spawn_gateway(
    cognito: &Cognito,
    port: u16,
    listen_port: u16,
    client_id_ca: Option<&Path>,
    (idp_recheck_interval, refresh_grace_seconds): (Option<&str>, Option<u64>),
) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
    cmd.arg("--config-dir")
        .arg(cognito.path().join("config"))
        .arg("--env-file")
        .arg(cognito.path().join(".env"))
        .args(["--listen", &format!("127.0.0.1:{listen_port}"), "--public-url", &format!("http://localhost:{port}")])
        .arg("--store")
        .arg(format!("sqlite:{}", cognito.path().join("gw.db").display()))
        .env("RUST_LOG", "info,cognigate=debug")
        // The token checks present a spent refresh token at once and expect
        // the family revoked: no grace window here (tests/it/gateway/spec.rs
        // covers the window).
        .env("COGNIGATE_REFRESH_GRACE_SECONDS", refresh_grace_seconds.unwrap_or(0).to_string())
        .current_dir(cognito.path());
    if let Some(ca) = client_id_ca {
        cmd.env("SSL_CERT_FILE", ca).arg("--client-id-private-addresses");
    }
    if let Some(interval) = idp_recheck_interval {
        cmd.env("COGNIGATE_IDP_RECHECK_INTERVAL", interval);
    }
    // The audit log is on only where access policies are configured, so the
    // other worlds keep the plain proxy path.
    if cognito.path().join("config/access.marker").exists() {
        cmd.arg("--audit-log").arg(cognito.path().join("audit.jsonl"));
    }
    aws_env(&mut cmd, cognito.moto.endpoint());
    let health = format!("http://127.0.0.1:{listen_port}/healthz");
    Peer::spawn_polled("gateway", cmd, cognito.path(), &format!("http://localhost:{port}"), || {
        peers::http_status(&health) == Some(200)
    })
}

/// What a [`World`] has besides `/mcp/echo` and `/mcp/other` (both SSE upstream).
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// `/mcp/json`: an upstream answering plain JSON instead of SSE.
    pub json_upstream: bool,
    /// `/mcp/down`: an upstream URL where nothing listens.
    pub dead_upstream: bool,
    /// The access policies of `access.rs` on `/mcp/echo` and `/mcp/admin`,
    /// and the audit log in `audit.jsonl`.
    pub access: bool,
    /// A CA file the gateway trusts for client-id documents (`SSL_CERT_FILE`),
    /// which it may then fetch from 127.0.0.1 (`--client-id-private-addresses`).
    pub client_id_ca: Option<std::path::PathBuf>,
    /// A proxy in front of the gateway (on the public URL's port) that
    /// answers 404 for `/.well-known/oauth-authorization-server`, so clients
    /// find the metadata only at `/.well-known/openid-configuration`.
    pub hide_rfc8414: bool,
    /// `COGNIGATE_IDP_RECHECK_INTERVAL` for the gateway (its default when `None`),
    /// and the refresh grace window in seconds (0 when `None`).
    pub idp_recheck_interval: Option<String>,
    pub refresh_grace_seconds: Option<u64>,
    /// `gateway.accessTokenTtlSeconds` of the Cognito policy (its default when `None`).
    pub access_token_ttl_seconds: Option<u64>,
}

impl World {
    pub fn start() -> World {
        World::start_with(Extras::default())
    }

    pub fn start_with(extras: Extras) -> World {
        // The public URL's port stays bound until the gateway (or its front
        // proxy) takes it: the peers started meanwhile pick ports of their
        // own, and the kernel could otherwise hand one of them this one.
        let reservation = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = reservation.local_addr().expect("reserved port").port();
        let gateway_url = format!("http://localhost:{port}");
        let tools = Toolchain::require();
        let dir = temp_dir();
        let log_dir = dir.path().to_owned();
        // The upstream needs nothing else: start it while Cognito is provisioned.
        let (cognito, upstream, json_upstream) = std::thread::scope(|s| {
            let upstream = s.spawn(|| UpstreamMcp::start(&tools, &log_dir, false));
            let json_upstream = extras.json_upstream.then(|| s.spawn(|| UpstreamMcp::start(&tools, &log_dir, true)));
            let cognito = Cognito::start_in(tools.clone(), dir, &gateway_url);
            let join = |h: std::thread::ScopedJoinHandle<'_, UpstreamMcp>| {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            };
            (cognito, join(upstream), json_upstream.map(join))
        });
        let config = cognito.path().join("config");
        // Two routes to the same upstream: tokens are bound to one route.
        let mut routes = vec![("echo", upstream.url().to_owned()), ("other", upstream.url().to_owned())];
        if let Some(json) = &json_upstream {
            routes.push(("json", json.url().to_owned()));
        }
        if extras.dead_upstream {
            routes.push(("down", format!("http://127.0.0.1:{}/mcp", peers::free_port())));
        }
        let routes: Vec<(&str, &str)> = routes.iter().map(|(s, u)| (*s, u.as_str())).collect();
        write_routes(&config, &routes);
        if extras.access {
            access::configure(&config, upstream.url());
        }
        if let Some(ttl) = extras.access_token_ttl_seconds {
            set_access_token_ttl(&config, ttl);
        }

        // Behind a front proxy, the gateway listens elsewhere and the proxy
        // takes the public URL's port.
        drop(reservation);
        let (listen_port, front) = if extras.hide_rfc8414 {
            let inner = peers::free_port();
            let front = FrontProxy::start(
                port,
                &format!("http://127.0.0.1:{inner}"),
                &["/.well-known/oauth-authorization-server"],
            );
            (inner, Some(front))
        } else {
            (port, None)
        };
        let gateway = spawn_gateway(
            &cognito,
            port,
            listen_port,
            extras.client_id_ca.as_deref(),
            (extras.idp_recheck_interval.as_deref(), extras.refresh_grace_seconds),
        );
        World {
            gateway,
            upstream,
            json_upstream,
            cognito,
            gateway_url,
            port,
            listen_port,
            client_id_ca: extras.client_id_ca,
            refresh: (extras.idp_recheck_interval, extras.refresh_grace_seconds),
            front,
        }
    }

    /// Stops the gateway with SIGTERM (it must exit cleanly, in time) and boots it
    /// again on the same port and store.
    pub fn restart_gateway(&mut self) {
        let status = self.gateway.terminate(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "the gateway did not shut down cleanly on SIGTERM ({status:?}):\n{}",
            self.gateway.log_tail()
        );
        // The old log is overwritten by the new process; keep it beside.
        let log = self.cognito.path().join("gateway.log");
        let _ = fs::rename(&log, self.cognito.path().join("gateway.before-restart.log"));
        self.gateway = spawn_gateway(
            &self.cognito,
            self.port,
            self.listen_port,
            self.client_id_ca.as_deref(),
            (self.refresh.0.as_deref(), self.refresh.1),
        );
    }

    pub fn tools(&self) -> &Toolchain {
        &self.cognito.tools
    }

    pub fn route_url(&self, slug: &str) -> String {
        format!("{}/mcp/{slug}", self.gateway_url)
    }

    /// The tails of every peer's log, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}\n{}", self.gateway.log_tail(), self.upstream.log_tail(), self.cognito.logs())
    }

    /// Runs a script to completion and returns its JSON line; on failure, panics with all logs.
    pub fn run_json(&self, name: &str, cmd: Command) -> Value {
        let output = peers::run(name, cmd, SCRIPT_TIMEOUT);
        if !output.status.success() {
            panic!("{name} failed:\n{}\n\n{}", output.describe(), self.logs());
        }
        let out = output
            .json()
            .unwrap_or_else(|| panic!("{name} printed no JSON:\n{}\n\n{}", output.describe(), self.logs()));
        eprintln!("{name}: {out}");
        out
    }

    /// Where test artifacts (the consent screenshot) are kept.
    pub fn artifacts_dir() -> PathBuf {
        let dir = peers::repo_root().join("tests/artifacts");
        fs::create_dir_all(&dir).expect("tests/artifacts");
        dir
    }
}
