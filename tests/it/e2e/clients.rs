//! The official MCP client SDKs, Python `mcp` and npm `@modelcontextprotocol/sdk`,
//! each completing discovery, dynamic registration, login at the hosted UI
//! stand-in, consent and the token exchange headlessly, then `tools/list` and
//! `tools/call` through the gateway, then a refresh and another call.

use serde_json::Value;

use super::{EMAIL, Extras, PASSWORD, USERNAME, World};

/// What both clients must have seen; `who` names the client in messages.
fn assert_client_run(world: &World, who: &str, out: &Value) {
    let ctx = || format!("{who} client output: {out:#}\n\n{}", world.logs());
    assert_eq!(out["tools"], serde_json::json!(["add", "echo", "whoami_headers"]), "{}", ctx());
    assert_eq!(out["server_name"], "cognigate-e2e-upstream", "{}", ctx());
    assert_eq!(out["add"], "42", "{}", ctx());
    assert_eq!(out["authorizations"], 1, "one browser login, then tokens: {}", ctx());
    assert!(out["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{}", ctx());

    // The consent page named the client, the route and the user.
    let consent = out["consent_text"].as_str().unwrap_or_default();
    assert!(consent.contains(&format!("cognigate e2e {who} client")), "client name on consent: {}", ctx());
    assert!(consent.contains("/mcp/echo"), "route on consent: {}", ctx());
    assert!(consent.contains(EMAIL) || consent.contains(USERNAME), "user on consent: {}", ctx());

    // Refresh: a new access token, the refresh token rotated, and it works.
    assert_eq!(out["refreshed"], true, "{}", ctx());
    assert_eq!(out["refresh_token_rotated"], true, "{}", ctx());
    assert_eq!(out["add_after_refresh"], "2", "{}", ctx());

    // What reached the upstream: never the client's Authorization or cookies; X-Forwarded-* added.
    let headers = &out["upstream_headers"];
    assert!(headers.get("authorization").is_none(), "Authorization forwarded: {}", ctx());
    assert!(headers.get("cookie").is_none(), "Cookie forwarded: {}", ctx());
    assert!(headers.get("mcp-session-id").is_some(), "Mcp-Session-Id passed through: {}", ctx());
    assert!(
        headers.as_object().is_some_and(|h| h.keys().any(|k| k.starts_with("x-forwarded-"))),
        "X-Forwarded-* added: {}",
        ctx()
    );
    let stats = world.upstream.stats();
    assert_eq!(stats["authorization_seen"], 0, "upstream saw Authorization: {stats}\n{}", ctx());
    assert_eq!(stats["cookie_seen"], 0, "upstream saw Cookie: {stats}\n{}", ctx());
    assert!(stats["mcp_requests"].as_u64().unwrap_or(0) >= 4, "{stats}");

    // The gateway authenticated to the hosted UI's token endpoint with client_secret_basic.
    let token_calls: Vec<Value> = world
        .cognito
        .hosted_ui
        .log()
        .into_iter()
        .filter(|e| e["endpoint"] == "token" && e["auth_method"].is_string())
        .collect();
    assert!(!token_calls.is_empty(), "the gateway never exchanged a Cognito code: {}", ctx());
    for call in &token_calls {
        assert_eq!(call["auth_method"], "client_secret_basic", "{call}\n{}", ctx());
    }
}

#[test]
fn python_sdk_client_logs_in_calls_tools_and_refreshes() {
    let world = World::start();
    let mut cmd = world.tools().python_script("tests/e2e/client.py");
    cmd.args(["--url", &world.route_url("echo"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--text", "hello through the gateway"]);
    let out = world.run_json("client.py", cmd);
    assert_eq!(out["echo"], "hello through the gateway", "{out:#}");
    assert_client_run(&world, "python", &out);
}

#[test]
fn node_sdk_client_logs_in_calls_tools_and_refreshes() {
    let world = World::start();
    let mut cmd = world.tools().node_script("client.mjs");
    cmd.args(["--url", &world.route_url("echo"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--text", "hello through the gateway"]);
    let out = world.run_json("client.mjs", cmd);
    assert_eq!(out["echo"], "hello through the gateway", "{out:#}");
    assert_eq!(out["refresh_result"], "AUTHORIZED", "{out:#}");
    assert_client_run(&world, "node", &out);
}

#[test]
fn json_upstream_and_dead_upstream() {
    let world = World::start_with(Extras { json_upstream: true, dead_upstream: true, ..Extras::default() });

    // An upstream answering application/json rather than SSE, through the Python SDK.
    let mut cmd = world.tools().python_script("tests/e2e/client.py");
    cmd.args(["--url", &world.route_url("json"), "--username", USERNAME, "--password", PASSWORD]);
    let out = world.run_json("client.py (json upstream)", cmd);
    assert_eq!(out["tools"], serde_json::json!(["add", "echo", "whoami_headers"]), "{out:#}\n\n{}", world.logs());
    assert_eq!(out["echo"], "hello from python", "{out:#}");
    assert_eq!(out["add_after_refresh"], "2", "{out:#}");
    let json_stats = world.json_upstream.as_ref().expect("json upstream").stats();
    assert!(json_stats["mcp_requests"].as_u64().unwrap_or(0) >= 4, "{json_stats}");
    assert_eq!(json_stats["authorization_seen"], 0, "{json_stats}");

    // Nothing listens behind /mcp/down: a 502 with a JSON-RPC error body.
    let saved = world.cognito.path().join("down-tokens.json");
    let mut cmd = world.tools().python_script("tests/e2e/token_checks.py");
    cmd.args(["--gateway", &world.gateway_url, "--username", USERNAME, "--password", PASSWORD])
        .args(["--route", "/mcp/down", "--save"])
        .arg(&saved);
    let out = world.run_json("token_checks.py (dead upstream)", cmd);
    let call = &out["access_on_route"];
    assert_eq!(call["status"], 502, "{out:#}\n\n{}", world.logs());
    let body: Value = serde_json::from_str(call["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("502 body is not JSON ({e}): {out:#}"));
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["error"]["code"].is_i64() && body["error"]["message"].is_string(), "{body}");
}
