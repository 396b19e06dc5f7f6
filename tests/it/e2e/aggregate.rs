//! Aggregated routes end to end: the Python SDK upstream (`/mcp/echo`, with
//! the capability filter of `access.rs`) and the reference "everything"
//! server (`/mcp/everything`, TypeScript SDK, streamable HTTP) behind
//! `/mcp/all`, used by the official Python SDK client in both protocol
//! revisions: one login, merged and prefixed lists, a call to each member,
//! a resource read through a template, a prompt, sampling and elicitation
//! from a member answered by the client, and one member stopped.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::access::add_user;
use super::{Extras, PASSWORD, POLICY, USERNAME, World};
use crate::support::peers::{self, Peer};

/// The everything server in streamable-HTTP mode on a free port.
fn start_everything(world: &World) -> Peer {
    let port = peers::free_port();
    let script = world.tools().node_modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg("streamableHttp").env("PORT", port.to_string());
    let url = format!("http://127.0.0.1:{port}/mcp");
    let probe = url.clone();
    Peer::spawn_polled("everything", cmd, world.cognito.path(), &url, || peers::http_status(&probe).is_some())
}

/// Adds `/mcp/everything` (a plain route) and `/mcp/all` over it and
/// `/mcp/echo`, every name prefixed (`py_`, `ev_`).
fn add_routes(config: &Path, everything: &str) {
    let path = config.join("routes.oas.json");
    let mut routes: Value = serde_json::from_str(&fs::read_to_string(&path).expect("routes")).expect("json");
    let paths = routes["paths"].as_object_mut().expect("paths");
    let mut plain = paths["/mcp/other"].clone();
    let mut all = plain.clone();
    for method in ["post", "get", "delete"] {
        plain[method]["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = json!(everything);
        plain[method]["x-zuplo-route"]["policies"]["inbound"] = json!([POLICY]);
        all[method]["summary"] = json!("Every team MCP server");
        all[method]["x-zuplo-route"]["handler"] = json!({
            "export": "McpAggregateHandler", "module": "$import(cognigate)",
            "options": {"members": ["/mcp/echo", "/mcp/everything"], "prefixMode": "always",
                        "prefixes": {"/mcp/echo": "py", "/mcp/everything": "ev"}}});
        all[method]["x-zuplo-route"]["policies"]["inbound"] = json!([POLICY]);
    }
    paths.insert("/mcp/everything".into(), plain);
    paths.insert("/mcp/all".into(), all);
    fs::write(&path, serde_json::to_string_pretty(&routes).expect("json")).expect("write routes");
}

fn client(world: &World, username: &str, password: &str, revision: &str, extra: &[&str]) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/aggregate_client.py");
    cmd.args(["--url", &world.route_url("all"), "--username", username, "--password", password])
        .args(["--revision", revision])
        .args(extra);
    world.run_json(&format!("aggregate_client.py as {username} ({revision})"), cmd)
}

const GROUP_PASSWORD: &str = "Gr0up-Test-Passw0rd!";

#[test]
fn two_servers_behind_one_route_for_clients_of_both_revisions() {
    let mut world = World::start_with(Extras { access: true, ..Extras::default() });
    let mut everything = start_everything(&world);
    add_routes(&world.cognito.path().join("config"), everything.url());
    world.restart_gateway();
    add_user(&world, "carol", &["admins"]);

    let calls = [
        "--call",
        "py_echo",
        r#"{"text": "through the aggregate"}"#,
        "--call",
        "ev_echo",
        r#"{"message": "from everything"}"#,
        "--call",
        "py_add",
        r#"{"a": 1, "b": 2}"#,
        "--call",
        "ev_trigger-sampling-request",
        r#"{"prompt": "sample this", "maxTokens": 20}"#,
        "--call",
        "ev_trigger-elicitation-request",
        "{}",
        "--call",
        "ev_trigger-long-running-operation",
        r#"{"duration": 0.3, "steps": 3}"#,
        "--read",
        "demo://resource/dynamic/text/7",
        "--prompt",
        "ev_simple-prompt",
        "{}",
    ];
    let out = client(&world, USERNAME, PASSWORD, "2025-11-25", &calls);
    let ctx = || format!("{out:#}\n\n{}\n{}", world.logs(), everything.log_tail());
    assert_eq!(out["authorizations"], 1, "one login for both members: {}", ctx());
    assert_eq!(out["protocol_version"], "2025-11-25", "{}", ctx());
    let tools: Vec<&str> = out["tools"].as_array().expect("tools").iter().filter_map(Value::as_str).collect();
    for expected in ["py_echo", "ev_echo", "ev_get-sum", "ev_trigger-sampling-request"] {
        assert!(tools.contains(&expected), "{expected} missing: {}", ctx());
    }
    assert!(tools.iter().all(|t| t.starts_with("py_") || t.starts_with("ev_")), "every name prefixed: {}", ctx());
    // The capability filter of /mcp/echo still applies through /mcp/all.
    assert!(!tools.contains(&"py_add") && !tools.contains(&"py_whoami_headers"), "{}", ctx());
    assert_eq!(out["calls"]["py_add"]["error"]["code"], -32601, "{}", ctx());
    assert_eq!(out["calls"]["py_echo"]["text"], "through the aggregate", "{}", ctx());
    assert!(out["calls"]["ev_echo"]["text"].as_str().is_some_and(|t| t.contains("from everything")), "{}", ctx());
    // Sampling and elicitation asked by a member reached the client and came back.
    assert!(out["sampling_requests"][0].as_str().is_some_and(|t| t.contains("sample this")), "{}", ctx());
    let sampled = out["calls"]["ev_trigger-sampling-request"]["text"].as_str().unwrap_or_default();
    assert!(sampled.contains("sampled by the aggregate test client"), "{}", ctx());
    assert_eq!(out["elicitation_requests"].as_array().map(Vec::len), Some(1), "{}", ctx());
    let elicited = out["calls"]["ev_trigger-elicitation-request"]["text"].as_str().unwrap_or_default();
    assert!(elicited.contains("Ada Lovelace"), "{}", ctx());
    assert!(
        out["templates"].as_array().is_some_and(|t| t.contains(&json!("demo://resource/dynamic/text/{resourceId}"))),
        "{}",
        ctx()
    );
    assert!(out["reads"]["demo://resource/dynamic/text/7"].as_str().is_some_and(|t| t.contains('7')), "{}", ctx());
    assert!(out["prompt_results"]["ev_simple-prompt"][0].as_str().is_some_and(|t| !t.is_empty()), "{}", ctx());

    // A member's own messages (logging, not tied to a request) reach the
    // client on the merged GET stream.
    let logged = client(
        &world,
        USERNAME,
        PASSWORD,
        "2025-11-25",
        &["--call", "ev_toggle-simulated-logging", "{}", "--wait-for-log"],
    );
    assert!(logged["log_messages"].as_array().is_some_and(|m| !m.is_empty()), "{logged:#}\n\n{}", world.logs());

    // A member of the group sees the member's admin tool.
    let admin = client(&world, "carol", GROUP_PASSWORD, "2025-11-25", &["--call", "py_add", r#"{"a": 40, "b": 2}"#]);
    assert!(admin["tools"].as_array().is_some_and(|t| t.contains(&json!("py_add"))), "{admin:#}");
    assert_eq!(admin["calls"]["py_add"]["text"], "42", "{admin:#}");

    // The stateless revision: server/discover, then the same route.
    let modern = client(&world, USERNAME, PASSWORD, "2026-07-28", &calls[..6]);
    let ctx = || format!("{modern:#}\n\n{}", world.logs());
    assert_eq!(modern["server_name"], "cognigate /mcp/all", "{}", ctx());
    assert!(modern["supported_versions"].as_array().is_some_and(|v| v.contains(&json!("2026-07-28"))), "{}", ctx());
    assert!(
        modern["tools"].as_array().is_some_and(|t| t.contains(&json!("py_echo")) && t.contains(&json!("ev_echo"))),
        "{}",
        ctx()
    );
    assert_eq!(modern["calls"]["py_echo"]["text"], "through the aggregate", "{}", ctx());
    assert!(modern["calls"]["ev_echo"]["text"].as_str().is_some_and(|t| t.contains("from everything")), "{}", ctx());

    // The registry lists every route, the aggregate with its title.
    let registry: Value = peers::block_on(async {
        peers::http_client()
            .get(format!("{}/__zuplo/mcp-registry/v0.1/servers", world.gateway_url))
            .send()
            .await?
            .json()
            .await
    })
    .expect("the registry");
    let all =
        registry["servers"].as_array().and_then(|s| s.iter().find(|s| s["server"]["name"] == "localhost/all")).cloned();
    let all = all.unwrap_or_else(|| panic!("no localhost/all in {registry:#}"));
    assert_eq!(
        all["server"]["remotes"],
        json!([{"type": "streamable-http", "url": world.route_url("all")}]),
        "{registry:#}"
    );
    assert_eq!(all["server"]["title"], "Every team MCP server", "{registry:#}");

    // mcp-remote, the stdio bridge of desktop clients, on the same URL.
    let steps = json!([
        ["tools/call", {"name": "py_echo", "arguments": {"text": "via mcp-remote"}}],
        ["tools/call", {"name": "ev_echo", "arguments": {"message": "via mcp-remote"}}],
        ["resources/read", {"uri": "demo://resource/dynamic/text/3"}],
        ["prompts/get", {"name": "ev_simple-prompt", "arguments": {}}],
    ]);
    let config = tempfile::tempdir().expect("temp dir");
    let mut cmd = world.tools().node_script("mcp_remote.mjs");
    cmd.args(["--url", &world.route_url("all"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--port", &peers::free_port().to_string()])
        .arg("--config-dir")
        .arg(config.path())
        .args(["--steps", &steps.to_string()]);
    let remote = world.run_json("mcp_remote.mjs on /mcp/all", cmd);
    let ctx = || format!("{remote:#}\n\n{}", world.logs());
    assert!(remote.get("error").is_none(), "{}", ctx());
    let tools = remote["tools"].as_array().cloned().unwrap_or_default();
    assert!(
        tools.contains(&json!("py_echo")) && tools.contains(&json!("ev_echo")) && !tools.contains(&json!("py_add")),
        "{}",
        ctx()
    );
    assert_eq!(remote["steps"][0]["content"][0]["text"], "via mcp-remote", "{}", ctx());
    assert_eq!(remote["steps"][1]["content"][0]["text"], "Echo: via mcp-remote", "{}", ctx());
    assert!(
        remote["steps"][2]["contents"][0]["text"].as_str().is_some_and(|t| t.starts_with("Resource 3")),
        "{}",
        ctx()
    );
    assert!(remote["steps"][3]["messages"][0]["content"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{}", ctx());

    // One member stopped: the list still answers with the other's tools,
    // and a call to the stopped one is a clear JSON-RPC error.
    everything.terminate(std::time::Duration::from_secs(5));
    let down = client(&world, USERNAME, PASSWORD, "2025-11-25", &["--call", "ev_echo", r#"{"message": "x"}"#]);
    let ctx = || format!("{down:#}\n\n{}", world.logs());
    assert_eq!(down["tools"], json!(["py_echo"]), "{}", ctx());
    let message = down["calls"]["ev_echo"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/mcp/everything") && message.contains("unavailable"), "{}", ctx());
    let log = fs::read_to_string(world.cognito.path().join("gateway.log")).unwrap_or_default();
    assert!(log.contains("left out of the list"), "a warning is logged: {}", ctx());
}
