//! `mcp-token-exchange-inbound` at boot, through the binary: Zuplo's
//! options load as written, and what cannot apply here stops the boot with
//! the option, the problem and what to use instead.

use std::process::Command;

use serde_json::{Value, json};

use super::harness::{env_text, policies, route};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

/// The gateway booted with the token-exchange policies `options` (named
/// `exchange-{index}`) on the routes `upstreams` (slug, upstream URL, policy
/// index): its exit code (`None`: it served, and was stopped) and stderr.
fn boot(options: &[Value], upstreams: &[(&str, &str, usize)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let mut all = policies();
    for (index, options) in options.iter().enumerate() {
        all["policies"].as_array_mut().unwrap().push(json!({
            "name": format!("exchange-{index}"), "policyType": "mcp-token-exchange-inbound",
            "handler": {"module": "$import(@zuplo/runtime/mcp-gateway)", "export": "McpTokenExchangeInboundPolicy",
                        "options": options}
        }));
    }
    let mut paths = serde_json::Map::new();
    for (slug, upstream, policy) in upstreams {
        let mut item = route(upstream);
        for method in ["post", "get", "delete"] {
            item[method]["x-zuplo-route"]["policies"]["inbound"] =
                json!(["cognito-managed-oauth", format!("exchange-{policy}")]);
        }
        paths.insert(format!("/mcp/{slug}"), item);
    }
    std::fs::write(dir.path().join("config/policies.json"), all.to_string()).unwrap();
    std::fs::write(dir.path().join("config/routes.oas.json"), json!({"paths": paths}).to_string()).unwrap();
    let idp = "127.0.0.1:9".parse().unwrap();
    std::fs::write(dir.path().join(".env"), env_text(idp) + "UP_ID=c1\nUP_SECRET=s3cret-never-printed\n").unwrap();
    let port = crate::support::peers::free_port();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--store", "sqlite:gw.db"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A boot error ends the process at once; a good config serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        let healthz = format!("http://127.0.0.1:{port}/healthz");
        if std::time::Instant::now() > deadline || crate::support::peers::http_status(&healthz) == Some(200) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (code, stderr)
}

#[test]
fn zuplo_options_boot_and_inapplicable_ones_are_refused_naming_the_alternative() {
    let up = "http://127.0.0.1:9/mcp";
    let (code, stderr) = boot(
        &[
            json!({"displayName": "Linear", "protectedResourceMetadataUrl": "https://mcp.linear.app/.well-known/oauth-protected-resource",
                 "authMode": "user-oauth", "scopes": [], "clientRegistration": {"mode": "auto"}}),
        ],
        &[("linear", up, 0)],
    );
    assert_eq!(code, None, "a Zuplo config serves: {stderr}");

    let (code, stderr) =
        boot(&[json!({"authMode": "service-account", "clientRegistration": {"mode": "auto"}})], &[("reports", up, 0)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("policy `exchange-0`, option `clientRegistration`")
            && stderr.contains("\"manual\"")
            && stderr.contains("Fix:"),
        "{stderr}"
    );

    let (code, stderr) = boot(&[json!({"authMode": "passthrough"})], &[("x", up, 0)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("option `authMode`") && stderr.contains("user-oauth"), "{stderr}");

    let (code, stderr) = boot(&[json!({"tokenStore": "kv"})], &[("x", up, 0)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("tokenStore"), "an unknown option is named: {stderr}");

    let manual = json!({"authMode": "service-account",
                        "clientRegistration": {"mode": "manual", "clientId": "$env(UP_ID)", "clientSecret": "$env(UP_SECRET)"}});
    let (code, stderr) = boot(&[manual], &[("reports", up, 0)]);
    assert_eq!(code, None, "{stderr}");
    assert!(!stderr.contains("s3cret-never-printed"), "{stderr}");

    // One upstream per policy, one policy per upstream id.
    let (code, stderr) = boot(&[json!({"id": "linear"})], &[("a", up, 0), ("b", "http://127.0.0.1:9/other", 0)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("one policy per upstream MCP server"), "{stderr}");
    let (code, stderr) = boot(&[json!({"id": "linear"}), json!({"id": "linear"})], &[("a", up, 0), ("b", up, 1)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("give each policy its own `id`"), "{stderr}");
}
