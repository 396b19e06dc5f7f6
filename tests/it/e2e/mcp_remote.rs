//! `mcp-remote` (npm), the stdio bridge Claude Desktop users configure, logs
//! in through the gateway twice, once with the browser flow and once with
//! `--device-code`, then lists and calls tools over its stdio.

use serde_json::{Value, json};

use super::{EMAIL, PASSWORD, USERNAME, World};
use crate::support::peers::free_port;

fn run_mcp_remote(world: &World, device: bool) -> Value {
    let config = tempfile::tempdir().unwrap();
    let mut cmd = world.tools().node_script("mcp_remote.mjs");
    cmd.args(["--url", &world.route_url("echo"), "--username", USERNAME, "--password", PASSWORD])
        .args(["--port", &free_port().to_string()])
        .arg("--config-dir")
        .arg(config.path())
        .args(["--device", if device { "true" } else { "false" }]);
    world.run_json("mcp_remote.mjs", cmd)
}

fn assert_tools_work(world: &World, out: &Value) {
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    assert!(out.get("error").is_none(), "{}", ctx());
    assert_eq!(out["tools"], json!(["add", "echo", "whoami_headers"]), "{}", ctx());
    assert_eq!(out["add"], "42", "{}", ctx());
    let consent = out["consent_text"].as_str().unwrap_or_default();
    assert!(consent.contains("/mcp/echo"), "{}", ctx());
    assert!(consent.contains(EMAIL) || consent.contains(USERNAME), "{}", ctx());
}

#[test]
fn mcp_remote_logs_in_with_the_browser_flow_and_calls_tools() {
    let world = World::start();
    let out = run_mcp_remote(&world, false);
    assert_tools_work(&world, &out);
    assert_eq!(out["callback_params"], json!(["code", "iss", "state"]), "{out:#}");
    assert!(out["redirect_uri"].as_str().is_some_and(|uri| uri.starts_with("http://localhost:")), "{out:#}");
}

#[test]
fn mcp_remote_logs_in_with_the_device_code_and_calls_tools() {
    let world = World::start();
    let out = run_mcp_remote(&world, true);
    assert_tools_work(&world, &out);
    assert!(out["sign_in_url"].as_str().is_some_and(|url| url.contains("/oauth/device?user_code=")), "{out:#}");
    let confirm = out["confirm_text"].as_str().unwrap_or_default();
    assert!(confirm.contains("If someone else sent you this link"), "the link asks the user to compare: {out:#}");
    let done = out["done_text"].as_str().unwrap_or_default();
    assert!(done.contains("your device is signed in"), "{out:#}\n\n{}", world.logs());
    let consent = out["consent_text"].as_str().unwrap_or_default();
    assert!(consent.contains("Device code"), "the user code is on the consent screen: {out:#}");
}
