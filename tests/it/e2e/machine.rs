//! Machine clients end to end: `cognigate up` gives the pool its resource
//! server, `cognigate client add` a Cognito app client with the client
//! credentials grant, and the command it prints gets a token from the gateway
//! with no browser; the gateway proves the client at the hosted UI stand-in's
//! `/oauth2/token` (which checks it against moto) every time. The official
//! Python SDK's `ClientCredentialsOAuthProvider` then reaches the route, lists
//! the tools and calls one. A route without the client's scope answers 403,
//! a rotated secret works beside the old one until `--finish`, `revoke
//! --client` ends the tokens issued, and a removed client mints nothing.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::access::{audit_lines, verify_identity};
use super::{Extras, SCRIPT_TIMEOUT, World, aws_env, set_env_var};
use crate::support::peers::{self, ScriptOutput, block_on, http_client};

/// `cognigate ARGS` in the world's directory, against its emulator.
fn cognigate(world: &World, args: &[&str]) -> ScriptOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognigate"));
    cmd.args(args).args(["--region", "us-east-1"]).current_dir(world.cognito.path());
    aws_env(&mut cmd, world.cognito.moto.endpoint());
    let output = peers::run("cognigate", cmd, SCRIPT_TIMEOUT);
    assert!(output.status.success(), "cognigate {args:?} failed:\n{}\n\n{}", output.describe(), world.logs());
    output
}

/// The whole of stdout as one JSON document (`--output json` pretty-prints).
fn json_of(output: &ScriptOutput) -> Value {
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output.describe()))
}

/// The gateway's token endpoint: (status, body).
fn token(world: &World, id: &str, secret: &str, slug: &str, basic: bool) -> (u16, Value) {
    let url = format!("{}/oauth/token", world.gateway_url);
    let resource = world.route_url(slug);
    let mut form = vec![("grant_type", "client_credentials"), ("resource", resource.as_str())];
    if !basic {
        form.extend([("client_id", id), ("client_secret", secret)]);
    }
    block_on(async {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
        let mut request =
            http_client().post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
        if basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.expect("token request");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null))
    })
}

/// An MCP `initialize` at `slug` with `access`: (status, WWW-Authenticate).
fn initialize(world: &World, slug: &str, access: &str) -> (u16, String) {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl-like", "version": "1"}}});
    block_on(async {
        let response = http_client()
            .post(world.route_url(slug))
            .bearer_auth(access)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("initialize");
        let challenge =
            response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (response.status().as_u16(), challenge)
    })
}

fn sdk(world: &World, slug: &str, id: &str, secret: &str, extra: &[&str]) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/machine_client.py");
    cmd.args(["--url", &world.route_url(slug), "--issuer", &world.gateway_url])
        .args(["--client-id", id, "--client-secret", secret])
        .args(extra);
    world.run_json("machine_client.py", cmd)
}

/// The value after `marker` on the line that has it, up to `end`.
fn after<'a>(text: &'a str, marker: &str, end: char) -> &'a str {
    let rest = text.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"));
    rest.split(end).next().unwrap_or_default().trim()
}

#[test]
fn a_machine_client_calls_a_tool_with_no_browser_until_it_is_removed() {
    let world = World::start();
    let stack = world.cognito.provisioned.stack.clone();
    let env_file = world.cognito.path().join(".env");

    // The world wrote its routes after the first `up`: a second one gives
    // the resource server their scopes (and keeps everything else).
    let up = cognigate(&world, &["up", "--stack", &stack, "--gateway-url", &world.gateway_url, "--output", "json"]);
    let up = json_of(&up);
    set_env_var(&env_file, "COGNITO_USER_POOL_DOMAIN", &world.cognito.hosted_ui.domain());
    assert_eq!(up["resourceServer"]["identifier"], world.gateway_url.as_str(), "{up:#}");
    assert_eq!(up["resourceServer"]["outcome"], "updated", "{up:#}");
    let scopes = up["resourceServer"]["scopes"].to_string();
    for scope in ["mcp:all", "mcp:route.echo", "mcp:route.other", "mcp:route.example"] {
        assert!(scopes.contains(scope), "{scope} missing: {up:#}");
    }

    // `client add`, then the command it printed, run as printed.
    let added = cognigate(&world, &["client", "add", "ci-bot", "--stack", &stack, "--scope", "mcp:route.echo"]);
    let text = added.stdout.clone();
    assert!(text.contains("per app client and per token request"), "the M2M billing note:\n{text}");
    let client_id = after(&text, "(client id ", ')').to_owned();
    let secret = after(&text, "keep it in your secret store): ", '\n').to_owned();
    let curl = text.lines().find(|l| l.trim_start().starts_with("curl ")).unwrap_or_else(|| panic!("{text}")).trim();
    assert!(!curl.contains(&secret), "the printed command reads the secret from the environment: {curl}");
    let mut sh = Command::new("sh");
    sh.args(["-c", curl]).env("MCP_CLIENT_SECRET", &secret);
    let got = peers::run("printed curl", sh, SCRIPT_TIMEOUT);
    let minted: Value = serde_json::from_str(got.stdout.trim()).unwrap_or_else(|_| panic!("{}", got.describe()));
    let access = minted["access_token"].as_str().unwrap_or_else(|| panic!("{minted:#}\n{}", world.logs())).to_owned();
    assert_eq!(minted["scope"], "mcp:route.echo", "{minted:#}");
    assert!(minted.get("refresh_token").is_none(), "a machine gets no refresh token: {minted:#}");
    assert_eq!(initialize(&world, "echo", &access).0, 200, "{}", world.logs());

    // The metadata says so; a client id without its secret, or a people's
    // scope only, is answered as OAuth says.
    let metadata: Value = block_on(async {
        let url = format!("{}/.well-known/oauth-authorization-server", world.gateway_url);
        http_client().get(url).send().await?.json().await
    })
    .expect("authorization server metadata");
    assert!(metadata["grant_types_supported"].to_string().contains("\"client_credentials\""), "{metadata:#}");
    let (status, body) = token(&world, &client_id, "", "echo", false);
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body:#}");
    let (status, body) = token(&world, &client_id, &secret, "nowhere", true);
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body:#}");

    // The official SDK's client credentials provider: discovery, token, tools.
    let out = sdk(&world, "echo", &client_id, &secret, &[]);
    assert!(out.get("failure").is_none(), "{out:#}\n{}", world.logs());
    assert!(out["tools"].to_string().contains("echo"), "{out:#}");
    assert_eq!(out["echo"], "from a machine", "{out:#}");
    assert_eq!(out["token"]["refresh_token"], false, "{out:#}");
    let headers = out["upstream_headers"].to_string().to_ascii_lowercase();
    assert!(!headers.contains("authorization"), "the client's token never reaches the upstream: {out:#}");
    let post = sdk(&world, "echo", &client_id, &secret, &["--auth-method", "client_secret_post"]);
    assert_eq!(post["echo"], "from a machine", "client_secret_post works too: {post:#}");

    // Another route: the token is issued for it, the route refuses it.
    let (status, other) = token(&world, &client_id, &secret, "other", true);
    assert_eq!(status, 200, "{other:#}");
    let (status, challenge) = initialize(&world, "other", other["access_token"].as_str().unwrap_or_default());
    assert_eq!(status, 403, "no scope for this route: {challenge}");
    assert!(challenge.contains("insufficient_scope") && challenge.contains("scope=\"mcp:route.other\""), "{challenge}");
    let refused = sdk(&world, "other", &client_id, &secret, &[]);
    assert_eq!(refused["failure"]["status"], 403, "{refused:#}");

    // `client list` shows it with its scope.
    let listed = json_of(&cognigate(&world, &["client", "list", "--stack", &stack, "--output", "json"]));
    let row = listed["clients"].as_array().and_then(|c| c.iter().find(|c| c["clientId"] == client_id.as_str()));
    assert_eq!(row.map(|r| r["scopes"].clone()), Some(serde_json::json!(["mcp:route.echo"])), "{listed:#}");

    // Rotation: the new secret works, and the old one until --finish.
    let rotated = json_of(&cognigate(
        &world,
        &["client", "rotate-secret", "ci-bot", "--stack", &stack, "--yes", "--output", "json", "--show-secret"],
    ));
    let new_secret = rotated["clientSecret"].as_str().expect("the new secret").to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(token(&world, &client_id, &new_secret, "echo", true).0, 200, "{}", world.logs());
    assert_eq!(token(&world, &client_id, &secret, "echo", false).0, 200, "the old secret until --finish");
    cognigate(&world, &["client", "rotate-secret", "ci-bot", "--stack", &stack, "--finish", "--yes"]);
    let (status, body) = token(&world, &client_id, &secret, "echo", true);
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body:#}");
    let (status, fresh) = token(&world, &client_id, &new_secret, "echo", true);
    assert_eq!(status, 200, "{fresh:#}");
    let fresh = fresh["access_token"].as_str().unwrap_or_default().to_owned();

    // The operator's revoke ends the tokens a machine client holds.
    let mut revoke = Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
    revoke.arg("--store").arg(format!("sqlite:{}", world.cognito.path().join("gw.db").display()));
    revoke.args(["revoke", "--client", &client_id]);
    let revoked = peers::run("cognigate-gateway revoke", revoke, SCRIPT_TIMEOUT);
    assert!(revoked.status.success(), "{}", revoked.describe());
    let ended = peers::wait_until(Duration::from_secs(20), || initialize(&world, "echo", &fresh).0 == 401);
    assert!(ended.is_some(), "a revoked machine token still works:\n{}", world.logs());

    // Removed: the client mints nothing new.
    let removed = cognigate(&world, &["client", "remove", "ci-bot", "--stack", &stack, "--yes"]);
    assert!(removed.stdout.contains("no new token"), "{}", removed.describe());
    let (status, body) = token(&world, &client_id, &new_secret, "echo", true);
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body:#}\n{}", world.logs());
}

#[test]
fn a_machine_client_sees_what_its_scopes_allow_and_says_machine_upstream_and_in_the_audit_log() {
    let world = World::start_with(Extras { access: true, ..Extras::default() });
    let stack = world.cognito.provisioned.stack.clone();
    let added = cognigate(
        &world,
        &["client", "add", "agent", "--stack", &stack, "--scope", "mcp:all", "--output", "json", "--show-secret"],
    );
    let added = json_of(&added);
    let (id, secret) = (added["clientId"].as_str().unwrap(), added["clientSecret"].as_str().unwrap());
    assert_eq!(added["billingNote"].as_str().map(|n| n.contains("per token request")), Some(true), "{added:#}");

    // The filter names `mcp:all` among the roles of `whoami_headers`; `add` is for admins only.
    let out = sdk(&world, "echo", id, secret, &["--call", "whoami_headers"]);
    assert!(out.get("failure").is_none(), "{out:#}\n{}", world.logs());
    assert_eq!(out["tools"], serde_json::json!(["echo", "whoami_headers"]), "{out:#}");
    let headers = out["call"]["structured"].clone();
    let headers = if headers.is_object() {
        headers
    } else {
        serde_json::from_str(out["call"]["text"].as_str().unwrap()).unwrap()
    };
    let identity = verify_identity(&world, headers["x-user-identity"].as_str().expect("identity header"));
    assert_eq!(identity["machine"], true, "{identity}");
    assert_eq!((identity["sub"].as_str(), identity["client_id"].as_str()), (Some(id), Some(id)), "{identity}");
    assert!(identity.get("email").is_none(), "{identity}");
    let hidden = sdk(&world, "echo", id, secret, &["--call", "add", "--arguments", r#"{"a": 1, "b": 2}"#]);
    assert_eq!(hidden["call"]["error"]["code"], -32601, "a hidden tool, for a machine too: {hidden:#}");

    let lines = audit_lines(&world);
    let mine: Vec<&Value> = lines.iter().filter(|l| l["client_id"] == id).collect();
    assert!(!mine.is_empty(), "no audit line of the machine client: {lines:#?}");
    assert!(mine.iter().all(|l| l["machine"] == true && l["subject"] == id && l.get("email").is_none()), "{mine:#?}");
    let people = lines.iter().filter(|l| l["client_id"] != id);
    assert!(people.into_iter().all(|l| l.get("machine").is_none()), "people's lines carry no machine flag");
}

/// The issue's promise, literally: `client add` then the printed command
/// reaches a tool with no browser, and `client remove` stops the client
/// within one token lifetime (here 10 s, long enough for a loaded machine to use it first): no new token at once, and the one
/// it holds ends when it expires.
#[test]
fn client_remove_stops_a_machine_client_within_one_token_lifetime() {
    let world = World::start_with(Extras { access_token_ttl_seconds: Some(10), ..Extras::default() });
    let stack = world.cognito.provisioned.stack.clone();
    let added = json_of(&cognigate(
        &world,
        &["client", "add", "ci-bot", "--stack", &stack, "--scope", "mcp:all", "--output", "json", "--show-secret"],
    ));
    let (id, secret) = (added["clientId"].as_str().unwrap(), added["clientSecret"].as_str().unwrap());
    let (status, minted) = token(&world, id, secret, "echo", true);
    assert_eq!((status, minted["expires_in"].as_i64()), (200, Some(10)), "{minted:#}");
    let access = minted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(initialize(&world, "echo", &access).0, 200);

    cognigate(&world, &["client", "remove", "ci-bot", "--stack", &stack, "--yes"]);
    let (status, refused) = token(&world, id, secret, "echo", true);
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_client")), "{refused:#}");
    let ended = peers::wait_until(Duration::from_secs(15), || initialize(&world, "echo", &access).0 == 401);
    assert!(ended.is_some(), "the token outlived its lifetime:\n{}", world.logs());
}
