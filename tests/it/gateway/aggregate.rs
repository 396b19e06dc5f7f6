//! An aggregated route under the MCP conformance suite: the reference
//! "everything" server behind `/mcp/everything` (a plain route) and behind
//! `/mcp/one` (an aggregated route with it as its only member, names left as
//! they are), both through this gateway. The suite runs against each at
//! both protocol revisions; every check that fails on the aggregated route
//! must fail on the plain one too (the gateway speaking MCP itself adds no
//! failure). A forwarder in front adds a minted bearer token, as a signed-in
//! client would send.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::harness::{Gateway, PUBLIC_URL, now, route};
use crate::support::peers::{self, Peer, Toolchain};

/// The everything server in streamable-HTTP mode on a free port.
pub(crate) fn start_everything(tools: &Toolchain, log_dir: &Path) -> Peer {
    let port = peers::free_port();
    let script = tools.node_modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg("streamableHttp").env("PORT", port.to_string());
    let url = format!("http://127.0.0.1:{port}/mcp");
    let probe = url.clone();
    Peer::spawn_polled("everything", cmd, log_dir, &url, || peers::http_status(&probe).is_some())
}

/// A route whose handler is `McpAggregateHandler` with these options.
fn aggregate_route(options: Value) -> Value {
    let op = json!({"x-zuplo-route": {
        "handler": {"export": "McpAggregateHandler", "module": "$import(cognigate)", "options": options},
        "policies": {"inbound": ["cognito-managed-oauth"]}
    }});
    json!({"post": op, "get": op, "delete": op})
}

struct Forwarder {
    router: axum::Router,
    /// (slug, bearer token)
    tokens: Vec<(String, String)>,
    /// `127.0.0.1:PORT`, which the forwarded requests name as `gw.test`.
    own: String,
}

/// Adds the route's token, and names the gateway's public host where the
/// client named the forwarder (a foreign Host or Origin stays as it is, so
/// the suite's DNS-rebinding check still reaches the gateway).
async fn forward(State(forwarder): State<Arc<Forwarder>>, mut request: Request<Body>) -> Response {
    let slug = request.uri().path().strip_prefix("/mcp/").unwrap_or_default().to_owned();
    if let Some((_, token)) = forwarder.tokens.iter().find(|(s, _)| *s == slug) {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    if request.headers().get(header::HOST).is_some_and(|h| h.as_bytes() == forwarder.own.as_bytes()) {
        request.headers_mut().insert(header::HOST, HeaderValue::from_static("gw.test"));
    }
    let own_origin = format!("http://{}", forwarder.own);
    if request.headers().get(header::ORIGIN).is_some_and(|o| o.as_bytes() == own_origin.as_bytes()) {
        request.headers_mut().insert(header::ORIGIN, HeaderValue::from_str(PUBLIC_URL).expect("origin"));
    }
    forwarder.router.clone().oneshot(request).await.expect("the router answers")
}

/// The suite's failing checks (`scenario/check`) and its count of passing ones.
fn conformance(tools: &Toolchain, url: &str, version: &str, out: &Path) -> (BTreeSet<String>, usize) {
    let dir = peers::repo_root().join("tests/e2e");
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("--import")
        .arg(dir.join("conformance_node20.mjs"))
        .arg(tools.node_modules.join("@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url, "--spec-version", version, "--timeout", "20000", "-o"])
        .arg(out);
    let run = peers::run("conformance server", cmd, Duration::from_secs(300));
    let mut failures = BTreeSet::new();
    let mut passed = 0;
    let entries =
        std::fs::read_dir(out).unwrap_or_else(|e| panic!("no results in {}: {e}\n{}", out.display(), run.describe()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `server-tools-list-2026-12-07T00-08-58-525Z`: the scenario, then when it ran.
        let scenario = name.get(..name.len().saturating_sub(25)).unwrap_or(&name).to_owned();
        let text = std::fs::read_to_string(entry.path().join("checks.json")).unwrap_or_default();
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
        for check in checks {
            match check["status"].as_str() {
                Some("SUCCESS") => passed += 1,
                Some("FAILURE") => {
                    failures.insert(format!("{scenario}/{}", check["id"].as_str().unwrap_or("?")));
                }
                _ => {}
            }
        }
    }
    assert!(passed + failures.len() > 0, "the suite ran no check:\n{}", run.describe());
    (failures, passed)
}

#[test]
fn the_conformance_suite_finds_no_failure_the_member_has_not_got_alone() {
    let tools = Toolchain::require();
    let logs = tempfile::tempdir().expect("temp dir");
    let everything = start_everything(&tools, logs.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let member = everything.url().to_owned();
    let gateway = runtime.block_on(Gateway::start_with(move |_| {
        json!({"paths": {
            "/mcp/everything": route(&member),
            "/mcp/one": aggregate_route(json!({"members": ["/mcp/everything"], "prefixMode": "never"})),
        }})
    }));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let forwarder = Arc::new(Forwarder {
        router: gateway.router.clone(),
        tokens: ["everything", "one"]
            .iter()
            .map(|slug| ((*slug).to_owned(), gateway.mint(slug, now(), 3600)))
            .collect(),
        own: addr.to_string(),
    });
    let app = axum::Router::new().fallback(forward).with_state(forwarder);
    runtime.spawn(async move { axum::serve(listener, app).await });

    for version in ["2025-11-25", "2026-07-28"] {
        let out = tempfile::tempdir().expect("temp dir");
        let plain_out = out.path().join("plain");
        let aggregate_out = out.path().join("aggregate");
        let (alone, alone_passed) = conformance(&tools, &format!("http://{addr}/mcp/everything"), version, &plain_out);
        let (together, together_passed) =
            conformance(&tools, &format!("http://{addr}/mcp/one"), version, &aggregate_out);
        let added: Vec<&String> = together.difference(&alone).collect();
        eprintln!(
            "conformance {version}: member alone {alone_passed} passed, {} failed; aggregate {together_passed} passed, {} failed",
            alone.len(),
            together.len()
        );
        eprintln!("conformance {version}: the aggregate's failures: {together:#?}");
        assert!(
            added.is_empty(),
            "at {version} the aggregated route fails checks its member passes alone: {added:#?}\n(results in {})\n{}",
            out.keep().display(),
            everything.log_tail()
        );
    }
    drop(runtime);
}

/// One JSON-RPC request to `/mcp/{slug}` as a signed-in client sends it.
async fn rpc(
    gateway: &Gateway,
    slug: &str,
    token: &str,
    session: Option<&str>,
    message: &Value,
) -> (Option<String>, Value) {
    let mut request = Request::post(format!("/mcp/{slug}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = gateway.send(request.body(Body::from(message.to_string())).expect("request")).await;
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = super::harness::body_text(response).await;
    // JSON, or the SSE event that answers.
    let answer = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id") == message.get("id"))
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no answer in {text}"));
    (session, answer)
}

#[test]
fn a_members_rate_limit_applies_to_its_part_and_its_refusal_names_it() {
    let tools = Toolchain::require();
    let logs = tempfile::tempdir().expect("temp dir");
    let everything = start_everything(&tools, logs.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let member = everything.url().to_owned();
    let mut policies = super::harness::policies();
    policies["policies"].as_array_mut().expect("policies").push(json!({
        "name": "four-a-minute", "policyType": "rate-limit-inbound",
        "handler": {"export": "RateLimitInboundPolicy", "options": {"requestsAllowed": 4, "timeWindowMinutes": 1}}}));
    let routes = move |_| {
        let mut limited = route(&member);
        for method in ["post", "get", "delete"] {
            limited[method]["x-zuplo-route"]["policies"]["inbound"] = json!(["cognito-managed-oauth", "four-a-minute"]);
        }
        json!({"paths": {
            "/mcp/everything": limited,
            "/mcp/one": aggregate_route(json!({"members": ["/mcp/everything"]})),
        }})
    };
    runtime.block_on(async {
        let gateway = Gateway::start_full(routes, None, policies, super::harness::no_grace()).await;
        let token = gateway.mint("one", now(), 3600);
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        // initialize and notifications/initialized at the member: two of its four.
        let (session, answer) = rpc(&gateway, "one", &token, None, &initialize).await;
        assert!(answer["result"]["capabilities"]["tools"].is_object(), "{answer}");
        let session = session.expect("a session of the gateway's");
        let call = |id: i64| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "m"}}})
        };
        // tools/list and one call: the other two.
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        let (_, listed) = rpc(&gateway, "one", &token, Some(&session), &list).await;
        assert!(listed["result"]["tools"].as_array().is_some_and(|tools| !tools.is_empty()), "{listed}");
        let (_, answer) = rpc(&gateway, "one", &token, Some(&session), &call(3)).await;
        assert_eq!(answer["result"]["content"][0]["text"], "Echo: m", "{answer}");
        let (_, refused) = rpc(&gateway, "one", &token, Some(&session), &call(4)).await;
        assert_eq!(refused["id"], 4, "the refusal answers the client's request: {refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("/mcp/everything") && message.contains("refused"), "{refused}");
    });
    drop(runtime);
}

/// A 2026-07-28 request to `/mcp/{slug}`: the HTTP status and the answer.
async fn stateless(gateway: &Gateway, token: &str, headers: &[(&str, &str)], message: &Value) -> (u16, Value) {
    let mut request = Request::post("/mcp/one")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = gateway.send(request.body(Body::from(message.to_string())).expect("request")).await;
    let status = response.status().as_u16();
    let text = super::harness::body_text(response).await;
    let answer = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .or_else(|| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| panic!("no answer in {text}"));
    (status, answer)
}

#[test]
fn stateless_requests_get_the_revisions_shape_and_its_refusals() {
    let tools = Toolchain::require();
    let logs = tempfile::tempdir().expect("temp dir");
    let everything = start_everything(&tools, logs.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let member = everything.url().to_owned();
    runtime.block_on(async {
        let gateway = Gateway::start_with(move |_| {
            json!({"paths": {
                "/mcp/everything": route(&member),
                "/mcp/one": aggregate_route(json!({"members": ["/mcp/everything"], "prefixMode": "always"})),
            }})
        })
        .await;
        let token = gateway.mint("one", now(), 3600);
        let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}});
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}});
        let version = ("mcp-protocol-version", "2026-07-28");
        let (status, listed) = stateless(&gateway, &token, &[version, ("mcp-method", "tools/list")], &list).await;
        assert_eq!(status, 200, "{listed}");
        let result = &listed["result"];
        assert_eq!(
            (&result["resultType"], &result["ttlMs"], &result["cacheScope"]),
            (&json!("complete"), &json!(0), &json!("private")),
            "{listed}"
        );
        assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "cognigate /mcp/one", "{listed}");
        assert!(
            result["tools"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "everything_echo")),
            "{listed}"
        );

        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "everything_echo", "arguments": {"message": "m"}, "_meta": meta}});
        let (status, called) = stateless(
            &gateway,
            &token,
            &[version, ("mcp-method", "tools/call"), ("mcp-name", "everything_echo")],
            &call,
        )
        .await;
        assert_eq!((status, &called["result"]["content"][0]["text"]), (200, &json!("Echo: m")), "{called}");
        assert_eq!(called["result"]["resultType"], "complete", "{called}");

        // Routing headers that disagree with the body.
        let (status, refused) = stateless(
            &gateway,
            &token,
            &[version, ("mcp-method", "tools/call"), ("mcp-name", "everything_get-env")],
            &call,
        )
        .await;
        assert_eq!((status, &refused["error"]["code"]), (400, &json!(-32020)), "{refused}");
        // A version the route does not speak.
        let mut old = list.clone();
        old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
        let (status, unsupported) = stateless(&gateway, &token, &[("mcp-protocol-version", "2099-01-01")], &old).await;
        assert_eq!((status, &unsupported["error"]["code"]), (400, &json!(-32022)), "{unsupported}");
        assert!(
            unsupported["error"]["data"]["supported"].as_array().is_some_and(|v| v.contains(&json!("2026-07-28"))),
            "{unsupported}"
        );
        // No version header at all.
        let (status, missing) = stateless(&gateway, &token, &[], &list).await;
        assert_eq!((status, &missing["error"]["code"]), (400, &json!(-32020)), "{missing}");
    });
    drop(runtime);
}
