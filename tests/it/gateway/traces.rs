//! OpenTelemetry traces, received by a real OTLP/HTTP receiver that decodes
//! them with the official `opentelemetry-proto` definitions
//! (`tests/support/otlp_receiver.py`): the spans of a request arrive with the
//! right parents, and the upstream sees the `traceparent` of the span that
//! called it (in the header, and for MCP 2026-07-28 in `params._meta`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use cognigate::gateway::{SamplerChoice, TraceSettings, TraceSubject, Tracing};
use serde_json::{Value, json};
use sha2::Digest;

use super::harness::{Gateway, bearer, full_login, json_body, now, policies, route};
use crate::support::peers::{Peer, Toolchain, block_on, http_client};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const SERVER: i64 = 2;
const CLIENT: i64 = 3;

struct Receiver {
    peer: Peer,
    _logs: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Self {
        let tools = Toolchain::require();
        let logs = tempfile::tempdir().unwrap();
        let peer = Peer::spawn("otlp-receiver", tools.python_script("tests/support/otlp_receiver.py"), logs.path());
        Self { peer, _logs: logs }
    }

    fn settings(&self, sampler: SamplerChoice, subject: TraceSubject) -> TraceSettings {
        TraceSettings {
            traces_url: format!("{}/v1/traces", self.peer.url()),
            service_name: "gw-under-test".into(),
            sampler,
            subject,
        }
    }

    fn spans(&self) -> Vec<Value> {
        let url = format!("{}/_test/spans", self.peer.url());
        block_on(async { http_client().get(url).send().await?.json::<Vec<Value>>().await }).expect("read the spans")
    }
}

/// The gateway of `gw` again over the same config and store, with traces.
fn traced(gw: &mut Gateway, tracing: &Arc<Tracing>) {
    let state = Gateway::state(gw.dir.path()).with_tracing(Some(tracing.clone()));
    gw.router = cognigate::gateway::router(state.clone());
    gw.state = state;
}

async fn flush(tracing: &Arc<Tracing>) {
    let tracing = tracing.clone();
    tokio::task::spawn_blocking(move || tracing.flush()).await.unwrap();
}

fn find<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|span| span["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn children<'a>(spans: &'a [Value], parent: &Value) -> Vec<&'a Value> {
    spans.iter().filter(|span| span["parent_span_id"] == parent["span_id"]).collect()
}

/// `/mcp/echo` behind the OAuth policy and a `set-headers-inbound` policy.
fn with_header_policy() -> Value {
    let mut all = policies();
    all["policies"].as_array_mut().unwrap().push(json!({"name": "tag-upstream", "policyType": "set-headers-inbound",
        "handler": {"export": "SetHeadersInboundPolicy", "module": "$import(@zuplo/runtime)",
            "options": {"headers": [{"name": "x-tag", "value": "traced"}]}}}));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_one_trace_from_the_client_to_the_upstream() {
    let receiver = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    let mut gw = Gateway::start_full(
        |upstream| {
            let mut echo = route(&format!("http://{upstream}/mcp"));
            for method in ["post", "get", "delete"] {
                echo[method]["x-zuplo-route"]["policies"]["inbound"] = json!(["cognito-managed-oauth", "tag-upstream"]);
            }
            json!({"paths": {"/mcp/echo": echo}})
        },
        None,
        with_header_policy(),
        super::harness::no_grace(),
    )
    .await;
    let settings = receiver.settings(SamplerChoice::ParentBasedAlwaysOn, TraceSubject::Hashed);
    let tracing = Arc::new(tokio::task::spawn_blocking(move || Tracing::start(&settings)).await.unwrap().unwrap());
    traced(&mut gw, &tracing);

    let token = gw.mint("echo", now(), 300);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let response = gw
        .send(
            bearer("/mcp/echo", &token)
                .header(header::CONTENT_TYPE, "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
                .header("tracestate", "vendor=client")
                .body(Body::from(call.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = json_body(response).await["result"].clone();
    flush(&tracing).await;
    let spans = tokio::task::spawn_blocking(move || receiver.spans()).await.unwrap();

    let root = find(&spans, "POST /mcp/echo");
    assert_eq!((root["trace_id"].as_str(), root["parent_span_id"].as_str()), (Some(CLIENT_TRACE), Some(CLIENT_SPAN)));
    assert_eq!(root["kind"], SERVER);
    assert_eq!(root["service_name"], "gw-under-test");
    let attributes = &root["attributes"];
    let hashed: String = sha2::Sha256::digest(b"user-sub-1")[..16].iter().map(|b| format!("{b:02x}")).collect();
    for (key, expected) in [
        ("http.route", json!("/mcp/echo")),
        ("http.request.method", json!("POST")),
        ("mcp.method.name", json!("tools/call")),
        ("gen_ai.tool.name", json!("echo")),
        ("cognigate.client_id", json!("client-x")),
        ("enduser.pseudo.id", json!(hashed)),
        ("cognigate.outcome", json!("forwarded")),
        ("http.response.status_code", json!(200)),
    ] {
        assert_eq!(attributes[key], expected, "{key} in {attributes}");
    }
    assert!(attributes.get("enduser.id").is_none(), "the subject is hashed by default: {attributes}");

    let names: Vec<&str> = children(&spans, root).iter().filter_map(|span| span["name"].as_str()).collect();
    for expected in ["policy cognito-managed-oauth", "policy tag-upstream", "upstream POST"] {
        assert!(names.contains(&expected), "{expected} is not a child of the request span: {names:?}");
    }
    let upstream = find(&spans, "upstream POST");
    assert_eq!(upstream["kind"], CLIENT);
    assert_eq!(upstream["trace_id"], CLIENT_TRACE);
    assert_eq!(upstream["attributes"]["http.response.status_code"], 200);
    assert_eq!(upstream["attributes"]["gen_ai.tool.name"], "echo");

    // The upstream's parent is the gateway's call, in the header and in `_meta`.
    let expected = format!("00-{CLIENT_TRACE}-{}-01", upstream["span_id"].as_str().unwrap());
    assert_eq!(echoed["headers"]["traceparent"], expected.as_str());
    assert_eq!(echoed["headers"]["tracestate"], "vendor=client");
    assert_eq!(echoed["headers"]["x-tag"], "traced");
    let forwarded: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded["params"]["_meta"]["traceparent"], expected.as_str());
    assert_eq!(forwarded["params"]["arguments"], json!({"text": "hi"}));
    assert_eq!(echoed["headers"]["content-length"], forwarded.to_string().len().to_string().as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_trace_holds_the_identity_provider_and_store_calls() {
    let receiver = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    let mut gw = Gateway::start().await;
    let settings = receiver.settings(SamplerChoice::AlwaysOn, TraceSubject::Plain);
    let tracing = Arc::new(tokio::task::spawn_blocking(move || Tracing::start(&settings)).await.unwrap().unwrap());
    traced(&mut gw, &tracing);

    let client_id = gw.register().await;
    let tokens = full_login(&gw, &client_id).await;
    let response = gw.refresh(tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    flush(&tracing).await;
    let spans = tokio::task::spawn_blocking(move || receiver.spans()).await.unwrap();

    let callback = find(&spans, "GET /oauth/callback");
    assert_eq!(callback["kind"], SERVER);
    assert_eq!(callback["parent_span_id"], "", "a request without traceparent starts a trace");
    let under_callback = children(&spans, callback);
    let names: Vec<&str> = under_callback.iter().filter_map(|span| span["name"].as_str()).collect();
    for expected in ["idp token", "idp jwks", "store"] {
        assert!(names.contains(&expected), "{expected} is not a child of the callback: {names:?}");
    }
    let idp_token = under_callback.iter().find(|span| span["name"] == "idp token").unwrap();
    assert_eq!(idp_token["kind"], CLIENT);
    assert_eq!(idp_token["attributes"]["url.path"], "/oauth2/token");
    assert!(under_callback.iter().all(|span| span["trace_id"] == callback["trace_id"]));
    let store = under_callback.iter().find(|span| span["name"] == "store").unwrap();
    assert!(
        store["attributes"]["code.function.name"].as_str().is_some_and(|name| name.starts_with("cognigate::gateway::")),
        "{store}"
    );

    let token_requests: Vec<&Value> = spans.iter().filter(|span| span["name"] == "POST /oauth/token").collect();
    assert_eq!(token_requests.len(), 2, "the code exchange and the refresh");
    for request in token_requests {
        assert!(children(&spans, request).iter().any(|span| span["name"] == "store"), "{request}");
        assert_ne!(request["trace_id"], callback["trace_id"], "each request is a trace of its own");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsampled_request_exports_nothing_and_passes_its_decision_upstream() {
    let receiver = tokio::task::spawn_blocking(Receiver::start).await.unwrap();
    // `/mcp/echo` forwards straight away; `/mcp/tagged` through a policy.
    let mut gw = Gateway::start_full(
        |upstream| {
            let echo = route(&format!("http://{upstream}/mcp"));
            let mut tagged = echo.clone();
            for method in ["post", "get", "delete"] {
                tagged[method]["x-zuplo-route"]["policies"]["inbound"] =
                    json!(["cognito-managed-oauth", "tag-upstream"]);
            }
            json!({"paths": {"/mcp/echo": echo, "/mcp/tagged": tagged}})
        },
        None,
        with_header_policy(),
        super::harness::no_grace(),
    )
    .await;
    let settings = receiver.settings(SamplerChoice::ParentBasedRatio(1.0), TraceSubject::Hashed);
    let tracing = Arc::new(tokio::task::spawn_blocking(move || Tracing::start(&settings)).await.unwrap().unwrap());
    traced(&mut gw, &tracing);

    let token = gw.mint("echo", now(), 300);
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let response = gw
        .send(
            bearer("/mcp/echo", &token)
                .header(header::CONTENT_TYPE, "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"))
                .header("tracestate", "vendor=client")
                .body(Body::from(call.to_string()))
                .unwrap(),
        )
        .await;
    let echoed = json_body(response).await["result"].clone();
    let sent = echoed["headers"]["traceparent"].as_str().unwrap().to_owned();
    assert!(sent.starts_with(&format!("00-{CLIENT_TRACE}-")) && sent.ends_with("-00"), "{sent}");
    assert_ne!(sent, format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"), "the gateway's span is the upstream's parent");
    assert_eq!(echoed["headers"]["tracestate"], "vendor=client");
    let forwarded: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded, call, "an unsampled request's body is forwarded untouched");

    // A client that sends no trace context: the upstream still gets the
    // gateway's unsampled span as its parent, on either path, and no state.
    let sampler = SamplerChoice::ParentBasedRatio(0.0);
    let never = receiver.settings(sampler, TraceSubject::Hashed);
    let never = Arc::new(tokio::task::spawn_blocking(move || Tracing::start(&never)).await.unwrap().unwrap());
    traced(&mut gw, &never);
    let mut parents = Vec::new();
    for slug in ["echo", "tagged"] {
        let token = gw.mint(slug, now(), 300);
        let response = gw
            .send(
                bearer(&format!("/mcp/{slug}"), &token)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("tracestate", "orphan=1")
                    .body(Body::from(call.to_string()))
                    .unwrap(),
            )
            .await;
        let echoed = json_body(response).await["result"].clone();
        let sent = echoed["headers"]["traceparent"].as_str().unwrap_or_else(|| panic!("{slug}: {echoed}"));
        assert!(sent.len() == 55 && sent.starts_with("00-") && sent.ends_with("-00"), "{slug}: {sent}");
        assert!(echoed["headers"]["tracestate"].is_null(), "{slug}: a new trace has no state: {echoed}");
        let tagged = if slug == "tagged" { "traced" } else { "" };
        assert_eq!(echoed["headers"]["x-tag"].as_str().unwrap_or_default(), tagged, "{slug}: {echoed}");
        parents.push(sent.to_owned());
    }
    assert_ne!(parents[0][3..35], parents[1][3..35], "each request is a trace of its own");
    flush(&never).await;
    flush(&tracing).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let spans = tokio::task::spawn_blocking(move || receiver.spans()).await.unwrap();
    assert!(spans.is_empty(), "{spans:#?}");
}

#[tokio::test]
async fn without_traces_the_clients_trace_context_reaches_the_upstream_unchanged() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 300);
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let response = gw
        .send(
            bearer("/mcp/echo", &token)
                .header(header::CONTENT_TYPE, "application/json")
                .header("traceparent", &traceparent)
                .header("tracestate", "vendor=client")
                .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
                .unwrap(),
        )
        .await;
    let echoed = json_body(response).await["result"].clone();
    assert_eq!(echoed["headers"]["traceparent"], traceparent.as_str());
    assert_eq!(echoed["headers"]["tracestate"], "vendor=client");
}

#[test]
fn a_bad_sampler_stops_the_boot_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let routes = json!({"paths": {"/mcp/echo": route("http://127.0.0.1:9/mcp")}});
    std::fs::write(dir.path().join("config/policies.json"), policies().to_string()).unwrap();
    std::fs::write(dir.path().join("config/routes.oas.json"), routes.to_string()).unwrap();
    let env = super::harness::env_text("127.0.0.1:9".parse().unwrap());
    std::fs::write(dir.path().join(".env"), env).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"))
        .args(["--listen", "127.0.0.1:0", "--store", "sqlite:gw.db"])
        .current_dir(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "1%")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("OTEL_TRACES_SAMPLER_ARG=`1%`") && stderr.contains("Fix:"), "{stderr}");
}
