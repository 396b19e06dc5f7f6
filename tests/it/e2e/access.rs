//! Who may do what, end to end: users in and out of Cognito groups (created
//! in moto with the SDK), signed in through the hosted UI stand-in (which puts
//! `cognito:groups` in the ID token), the official Python MCP SDK listing and
//! calling tools through `mcp-capability-filter-inbound`, the upstream
//! receiving the API key of `set-headers-inbound` and the identity JWT of
//! `cognigate-identity-inbound` (verified here against the gateway's JWKS),
//! `allowedGroups` refusing a user at consent, and the audit log.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::{Extras, POLICY, SCRIPT_TIMEOUT, World};
use crate::support::peers;

const API_KEY: &str = "k-e2e-upstream-key";
const PASSWORD: &str = "Gr0up-Test-Passw0rd!";

/// Adds the access policies to what `up` wrote: a capability filter, the
/// upstream's API key and the identity header on `/mcp/echo`; a second
/// Cognito policy with `allowedGroups: [admins]` on `/mcp/admin`.
pub(super) fn configure(config: &Path, upstream: &str) {
    let path = config.join("policies.json");
    let mut policies: Value = serde_json::from_str(&fs::read_to_string(&path).expect("policies.json")).expect("json");
    let list = policies["policies"].as_array_mut().expect("policies array");
    let mut admins_only = list.iter().find(|p| p["name"] == POLICY).expect("the cognito policy").clone();
    admins_only["name"] = json!("cognito-admins-only");
    admins_only["handler"]["options"]["gateway"] = json!({"allowedGroups": ["admins"]});
    list.push(admins_only);
    list.push(json!({"name": "tool-filter", "policyType": "mcp-capability-filter-inbound", "handler": {
    "export": "McpCapabilityFilterInboundPolicy", "module": "$import(@zuplo/runtime/mcp-gateway)",
    "options": {
        "tools": [
            {"name": "echo", "public": true, "description": "Echo (curated by the gateway)"},
            {"name": "add", "groups": ["admins"]},
            {"name": "whoami_headers", "groups": ["admins", "readers"], "roles": ["mcp:all"]}
        ],
        "accessControl": {"mode": "rolesAndGroups", "groupClaim": "cognito:groups"}
    }}}));
    list.push(json!({"name": "upstream-key", "policyType": "set-headers-inbound", "handler": {
        "export": "SetHeadersInboundPolicy", "module": "$import(@zuplo/runtime)",
        "options": {"headers": [{"name": "X-Api-Key", "value": "$env(UPSTREAM_API_KEY)"}]}}}));
    list.push(json!({"name": "identity", "policyType": "cognigate-identity-inbound", "handler": {
        "export": "CognigateIdentityInboundPolicy", "module": "cognigate",
        "options": {"headerName": "X-User-Identity", "ttlSeconds": 60}}}));
    fs::write(&path, serde_json::to_string_pretty(&policies).expect("json")).expect("write policies.json");

    let routes_path = config.join("routes.oas.json");
    let mut routes: Value = serde_json::from_str(&fs::read_to_string(&routes_path).expect("routes")).expect("json");
    let paths = routes["paths"].as_object_mut().expect("paths");
    let mut admin = paths["/mcp/echo"].clone();
    for method in ["post", "get", "delete"] {
        paths["/mcp/echo"][method]["x-zuplo-route"]["policies"]["inbound"] =
            json!([POLICY, "tool-filter", "upstream-key", "identity"]);
        admin[method]["x-zuplo-route"]["policies"]["inbound"] = json!(["cognito-admins-only"]);
        admin[method]["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = json!(upstream);
    }
    paths.insert("/mcp/admin".into(), admin);
    fs::write(&routes_path, serde_json::to_string_pretty(&routes).expect("json")).expect("write routes");

    let env = config.parent().expect("stack dir").join(".env");
    let mut text = fs::read_to_string(&env).expect(".env");
    text.push_str(&format!("UPSTREAM_API_KEY={API_KEY}\n"));
    fs::write(&env, text).expect("write .env");
    fs::write(config.join("access.marker"), "").expect("marker");
}

pub(super) fn add_user(world: &World, username: &str, groups: &[&str]) {
    let mut cmd = world.tools().python_script("tests/e2e/provision.py");
    cmd.args(["user", "--moto", world.cognito.moto.endpoint(), "--pool-id", &world.cognito.provisioned.pool_id])
        .args(["--username", username, "--password", PASSWORD, "--email", &format!("{username}@example.com")]);
    for group in groups {
        cmd.args(["--group", group]);
    }
    peers::run_json("provision.py user", cmd, SCRIPT_TIMEOUT);
}

/// Signs `username` in with the Python SDK client, lists the tools and calls one.
fn call(world: &World, username: &str, tool: &str, arguments: &Value) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/client.py");
    cmd.args(["--url", &world.route_url("echo"), "--username", username, "--password", PASSWORD]).args([
        "--call",
        tool,
        "--arguments",
        &arguments.to_string(),
    ]);
    world.run_json(&format!("client.py as {username}"), cmd)
}

pub(super) fn audit_lines(world: &World) -> Vec<Value> {
    let text = fs::read_to_string(world.cognito.path().join("audit.jsonl")).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).expect("an audit line is JSON")).collect()
}

/// The identity JWT the upstream received, checked as an upstream would: the
/// gateway's JWKS, EdDSA, the issuer, and the upstream's own URL as audience.
pub(super) fn verify_identity(world: &World, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = peers::block_on(async {
        peers::http_client().get(format!("{}/oauth/jwks", world.gateway_url)).send().await?.json().await
    })
    .expect("the gateway's JWKS");
    let header = jsonwebtoken::decode_header(token).expect("a JWT");
    assert_eq!(header.typ.as_deref(), Some("cognigate-identity+jwt"));
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the kid is in the gateway's JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[world.gateway_url.as_str()]);
    validation.set_audience(&[world.upstream.url()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("the identity verifies against the JWKS").claims
}

#[test]
fn groups_filter_tools_set_upstream_credentials_and_refuse_outsiders() {
    let world = World::start_with(Extras { access: true, ..Extras::default() });
    add_user(&world, "carol", &["admins"]);
    add_user(&world, "bob", &["readers"]);
    add_user(&world, "dave", &[]);

    // An admin sees every allowed tool (with the curated description) and calls `add`.
    let carol = call(&world, "carol", "add", &json!({"a": 2, "b": 3}));
    assert_eq!(carol["tools"], json!(["add", "echo", "whoami_headers"]), "{carol:#}\n{}", world.logs());
    assert_eq!(carol["call"]["text"], "5", "{carol:#}");

    // A reader does not see `add`; the upstream gets the API key and the identity, never the token.
    let bob = call(&world, "bob", "whoami_headers", &json!({}));
    assert_eq!(bob["tools"], json!(["echo", "whoami_headers"]), "{bob:#}\n{}", world.logs());
    let headers = bob["call"]["structured"].clone();
    let headers = if headers.is_object() {
        headers
    } else {
        serde_json::from_str(bob["call"]["text"].as_str().unwrap_or("{}")).unwrap_or_default()
    };
    assert_eq!(headers["x-api-key"], API_KEY, "{bob:#}");
    assert!(headers.get("authorization").is_none(), "the client's token reached the upstream: {bob:#}");
    let identity = verify_identity(&world, headers["x-user-identity"].as_str().expect("identity header"));
    assert_eq!(identity["email"], "bob@example.com", "{identity}");
    assert_eq!(identity["groups"], json!(["readers"]), "{identity}");
    assert_eq!(identity["route"], "/mcp/echo", "{identity}");
    assert!(identity["client_id"].is_string() && identity["sub"].is_string(), "{identity}");

    // The hidden tool, called directly: -32601 from the gateway, and the upstream never saw it.
    let before = world.upstream.stats()["tool_calls"]["add"].as_u64().unwrap_or(0);
    let hidden = call(&world, "bob", "add", &json!({"a": 1, "b": 1}));
    assert_eq!(hidden["call"]["error"]["code"], -32601, "{hidden:#}\n{}", world.logs());
    assert_eq!(world.upstream.stats()["tool_calls"]["add"].as_u64().unwrap_or(0), before, "add reached the upstream");

    // Outside allowedGroups: refused at the consent step with a page that says why.
    let mut cmd = world.tools().python_script("tests/e2e/browser_walk.py");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/admin", "--username", "dave", "--password", PASSWORD]);
    let walk = world.run_json("browser_walk.py as dave", cmd);
    assert_eq!(walk["kind"], "page", "{walk:#}");
    assert_eq!(walk["status"], 403, "{walk:#}");
    assert!(walk["text"].as_str().unwrap_or_default().contains("not in any of the groups allowed"), "{walk:#}");
    let mut cmd = world.tools().python_script("tests/e2e/browser_walk.py");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/admin", "--username", "carol", "--password", PASSWORD])
        .arg("--exchange");
    let walk = world.run_json("browser_walk.py as carol", cmd);
    assert_eq!(walk["token_status"], 200, "a member gets through: {walk:#}");

    // The audit log: one line per MCP request, matching what happened, no secrets.
    let lines = audit_lines(&world);
    let calls: Vec<&Value> = lines.iter().filter(|l| l["method"] == "tools/call").collect();
    let find = |email: &str, name: &str| {
        calls.iter().find(|l| l["email"] == email && l["name"] == name).copied().cloned().unwrap_or(Value::Null)
    };
    let allowed = find("carol@example.com", "add");
    assert_eq!(
        (allowed["outcome"].as_str(), allowed["upstream_status"].as_u64()),
        (Some("forwarded"), Some(200)),
        "{lines:#?}"
    );
    let refused = find("bob@example.com", "add");
    assert_eq!(refused["outcome"], "hidden", "{lines:#?}");
    assert!(refused.get("upstream_status").is_none(), "{refused}");
    assert!(lines.iter().all(|l| l["route"] == "/mcp/echo" && l["client_id"].is_string()), "{lines:#?}");
    let text = fs::read_to_string(world.cognito.path().join("audit.jsonl")).unwrap_or_default();
    assert!(!text.contains(API_KEY) && !text.contains("\"a\":") && !text.contains("Bearer"), "{text}");
    eprintln!("audit line: {}", serde_json::to_string(&allowed).unwrap_or_default());

    // Per-tool counters, bounded to the filter's names.
    let metrics = peers::block_on(async {
        peers::http_client().get(format!("{}/metrics", world.gateway_url)).send().await?.text().await
    })
    .expect("metrics");
    assert!(
        metrics.contains("cognigate_mcp_calls_total{route=\"/mcp/echo\",tool=\"add\",outcome=\"hidden\"} 1"),
        "{metrics}"
    );
}

/// `allowedGroups` as a person meets it: headless Chromium signs a user who is
/// in no group in on the login page and is shown the gateway's refusal (403,
/// no consent buttons, the reason and what to do), kept as
/// `tests/artifacts/access-refused.png`.
#[test]
fn outsider_sees_the_refusal_page_in_chromium() {
    let world = World::start_with(Extras { access: true, ..Extras::default() });
    add_user(&world, "erin", &[]);
    let screenshot = World::artifacts_dir().join("access-refused.png");
    let _ = fs::remove_file(&screenshot);

    let mut cmd = world.tools().node_script("consent.mjs");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/admin"])
        .args(["--username", "erin", "--password", PASSWORD, "--expect", "refusal"])
        .arg("--executable-path")
        .arg(world.tools().chromium())
        .arg("--screenshot")
        .arg(&screenshot);
    let out = world.run_json("consent.mjs as erin", cmd);
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    let page = &out["runs"][0]["refusal"];
    assert_eq!(page["status"], 403, "{}", ctx());
    assert!(page["url"].as_str().is_some_and(|u| u.starts_with(&world.gateway_url)), "{}", ctx());
    assert_eq!(page["has_decision_buttons"], false, "no way to approve: {}", ctx());
    let text = page["text"].as_str().unwrap_or_default();
    assert!(text.contains("erin@example.com") && text.contains("/mcp/admin"), "who and where: {}", ctx());
    assert!(text.contains("not in any of the groups allowed"), "the reason: {}", ctx());
    assert!(text.contains("Ask an administrator"), "what to do: {}", ctx());
    assert!(!text.contains("admins"), "the allowed groups stay the administrator's to tell: {}", ctx());
    let png = fs::read(&screenshot).unwrap_or_else(|e| panic!("screenshot {}: {e}", screenshot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{} is not a real PNG", screenshot.display());
}
