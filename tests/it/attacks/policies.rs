//! Attacks on the policy path: ids the upstream normalises, duplicate and
//! case-variant keys, lists on streams no request asked for, resource
//! templates stretched across `/`, a rate limit behind a proxy, and client
//! input aimed at the upstream's URL and `X-Forwarded-Host`.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use cognigate::gateway::OAuthOptions;
use cognigate::gateway::SecurityOptions;
use serde_json::{Value, json};

use crate::gateway::harness::{Gateway, body_text, json_body, now, policies, route, spawn};
use crate::support::peers::{Toolchain, UpstreamMcp};

/// `policies.json` with the Cognito stanza and `extra`.
fn with_policies(extra: Vec<Value>) -> Value {
    let mut all = policies();
    all["policies"].as_array_mut().unwrap().extend(extra);
    all
}

/// A route to `upstream` whose inbound list is `inbound`.
fn route_with(upstream: &str, inbound: &[&str]) -> Value {
    let mut op = route(upstream);
    for method in ["post", "get", "delete"] {
        op[method]["x-zuplo-route"]["policies"]["inbound"] = json!(inbound);
    }
    op
}

fn filter_policy(options: Value) -> Value {
    json!({"name": "filter", "policyType": "mcp-capability-filter-inbound", "handler": {
        "export": "McpCapabilityFilterInboundPolicy", "options": options}})
}

/// A gateway whose `/mcp/echo` goes to `upstream` through a filter with `options`.
async fn filtered_gateway(upstream: &str, options: Value) -> Gateway {
    let upstream = upstream.to_owned();
    Gateway::start_full(
        move |_| json!({"paths": {"/mcp/echo": route_with(&upstream, &["cognito-managed-oauth", "filter"])}}),
        None,
        with_policies(vec![filter_policy(options)]),
        OAuthOptions::default(),
    )
    .await
}

fn mcp_post(token: &str, session: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post("/mcp/echo")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

/// The JSON-RPC messages of a response, whether it came as JSON or SSE.
async fn messages(response: Response) -> Vec<Value> {
    let sse =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = body_text(response).await;
    if !sse {
        return vec![serde_json::from_str(&text).unwrap_or(Value::String(text))];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect()
}

/// The list filter against the official Python SDK server, answering in
/// SSE and in JSON: an id it would answer normalised (`-0` as `0`) or as
/// another type is refused before it, and every list it sends back is
/// filtered whatever its id.
#[test]
fn hidden_tools_stay_hidden_whatever_the_request_id() {
    let tools = Toolchain::require();
    let logs = tempfile::tempdir().unwrap();
    for json_response in [false, true] {
        let upstream = UpstreamMcp::start(&tools, logs.path(), json_response);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let gw = filtered_gateway(upstream.url(), json!({"tools": ["echo"]})).await;
            let token = gw.mint("echo", now(), 300);
            let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}});
            let response = gw.send(mcp_post(&token, None, &init.to_string())).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", upstream.log_tail());
            let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
            messages(response).await;
            let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
            assert_eq!(gw.send(mcp_post(&token, Some(&session), &initialized)).await.status(), StatusCode::ACCEPTED);

            for id in ["-0", "1.0", "1e0", "-0.0", "null"] {
                let list = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
                let response = gw.send(mcp_post(&token, Some(&session), &list)).await;
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "id {id}");
                let body = json_body(response).await;
                assert_eq!(body["error"]["code"], -32600, "id {id}: {body}");
                assert!(body["error"]["message"].as_str().unwrap().contains("string or an integer"), "{body}");
            }
            let twice = r#"[{"jsonrpc":"2.0","id":5,"method":"tools/list"},{"jsonrpc":"2.0","id":5,"method":"ping"}]"#;
            let response = gw.send(mcp_post(&token, Some(&session), twice)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "duplicate ids in a batch");

            for id in [json!(0), json!("0"), json!(-7)] {
                let list = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string();
                let response = gw.send(mcp_post(&token, Some(&session), &list)).await;
                assert_eq!(response.status(), StatusCode::OK);
                let answers = messages(response).await;
                let answer = answers.iter().find(|m| m.get("result").is_some()).expect("a list result");
                assert_eq!(answer["id"], id, "the upstream answers the id it was sent");
                let names: Vec<&str> =
                    answer["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
                assert_eq!(names, ["echo"], "json_response={json_response}: {answer}");
            }
        });
        assert_eq!(upstream.stats()["tool_calls"], json!({}), "nothing was called");
    }
}

/// An upstream whose GET stream (and `Last-Event-ID` replay) carries a
/// list result no request of this stream asked for.
async fn listing_upstream() -> SocketAddr {
    async fn stream(headers: HeaderMap) -> Response {
        let replay = headers.contains_key("last-event-id");
        let tools = json!({"jsonrpc": "2.0", "id": if replay { 9 } else { 3 },
            "result": {"tools": [{"name": "echo"}, {"name": "admin_reset", "inputSchema": {"secret": true}}]}});
        let templates = json!({"jsonrpc": "2.0", "id": 4,
            "result": {"resourceTemplates": [{"uriTemplate": "files://secret/{name}"}]}});
        let body = format!("id: 1\nevent: message\ndata: {tools}\n\nid: 2\ndata: {templates}\n\n");
        Response::builder().header(header::CONTENT_TYPE, "text/event-stream").body(Body::from(body)).unwrap()
    }
    async fn json_list() -> Response {
        let body =
            json!([{"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "admin_reset"}, {"name": "echo"}]}}]);
        Response::builder().header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
    }
    spawn(Router::new().route("/mcp", post(json_list).get(stream))).await
}

#[tokio::test]
async fn lists_on_get_streams_and_replays_are_filtered() {
    let upstream = listing_upstream().await;
    let gw = filtered_gateway(
        &format!("http://{upstream}/mcp"),
        json!({"tools": ["echo"], "resourceTemplates": ["files://{name}"]}),
    )
    .await;
    let token = gw.mint("echo", now(), 300);
    for replay in [false, true] {
        let mut request = Request::get("/mcp/echo")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "text/event-stream");
        if replay {
            request = request.header("last-event-id", "1");
        }
        let response = gw.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = body_text(response).await;
        assert!(!text.contains("admin_reset") && !text.contains("secret"), "replay={replay}: {text}");
        assert!(text.contains("\"echo\"") && text.contains("id: 2"), "other fields stay: {text}");
    }
    // A batch answer to a request that was not a list is filtered too.
    let body = gw.send(mcp_post(&token, None, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)).await;
    let text = body_text(body).await;
    assert!(!text.contains("admin_reset") && text.contains("echo"), "{text}");
}

/// `{"name":"echo","NAME":"add"}`: a Go upstream would call `add`.
#[tokio::test]
async fn duplicate_and_case_variant_keys_are_refused() {
    let gw = filtered_gateway("http://127.0.0.1:9/mcp", json!({"tools": ["echo"]})).await;
    let token = gw.mint("echo", now(), 300);
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"add"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"add"},"params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","method":"tools/list","params":{"name":"add"}}"#,
    ] {
        let response = gw.send(mcp_post(&token, None, body)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer = json_body(response).await;
        assert_eq!(answer["error"]["code"], -32600, "{body}: {answer}");
    }
}

/// A public `files://{path}` must not open what an admins-only
/// `files://secret/{name}` guards.
#[tokio::test]
async fn a_public_template_does_not_reach_across_segments_into_a_hidden_one() {
    let gw = Gateway::start_full(
        |upstream| {
            json!({"paths": {"/mcp/echo": route_with(&format!("http://{upstream}/mcp"), &["cognito-managed-oauth", "filter"])}})
        },
        None,
        with_policies(vec![filter_policy(json!({
            "resourceTemplates": [{"uriTemplate": "files://{path}", "public": true},
                                  {"uriTemplate": "files://secret/{name}", "groups": ["admins"]},
                                  {"uriTemplate": "docs://{a}/{b}", "public": true},
                                  {"uriTemplate": "docs://internal/{name}", "groups": ["admins"]}],
            "accessControl": {"mode": "rolesAndGroups", "groupClaim": "cognito:groups"}}))]),
        OAuthOptions::default(),
    )
    .await;
    let token = gw.mint("echo", now(), 300);
    let read =
        |uri: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}).to_string();
    for hidden in ["files://secret/key", "docs://internal/plan"] {
        let answer = json_body(gw.send(mcp_post(&token, None, &read(hidden))).await).await;
        assert_eq!(answer["error"]["code"], -32601, "{hidden}: {answer}");
    }
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    for visible in ["files://notes", "docs://public/readme"] {
        assert_eq!(gw.send(mcp_post(&token, None, &read(visible))).await.status(), StatusCode::OK, "{visible}");
    }
}

/// Behind a trusted proxy, `rateLimitBy: ip` counts each client, and the
/// addresses of one IPv6 /64 together.
#[tokio::test]
async fn rate_limit_by_ip_counts_the_client_behind_a_trusted_proxy() {
    let limit = json!({"name": "per-ip", "policyType": "rate-limit-inbound", "handler": {
        "export": "RateLimitInboundPolicy", "options": {"rateLimitBy": "ip", "requestsAllowed": 1, "timeWindowMinutes": 60}}});
    let gw = Gateway::start_secured(
        |upstream| {
            json!({"paths": {"/mcp/echo": route_with(&format!("http://{upstream}/mcp"), &["cognito-managed-oauth", "per-ip"])}})
        },
        None,
        with_policies(vec![limit]),
        OAuthOptions::default(),
        SecurityOptions::default().with_trusted_proxies(vec!["10.0.0.1".parse().unwrap()]),
    )
    .await;
    let token = gw.mint("echo", now(), 300);
    let call = |client: &str| {
        let mut request = mcp_post(&token, None, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        request.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40000))));
        request
    };
    let mut statuses = Vec::new();
    for client in
        ["198.51.100.1", "198.51.100.2", "198.51.100.1", "2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:9::1"]
    {
        statuses.push(gw.send(call(client)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 200, 429, 200], "one count per client, per IPv6 /64");
}

/// The upstream sees the public URL's host, and a client cannot add a value
/// to a query key the route's `rewritePattern` sets.
#[tokio::test]
async fn client_host_and_query_keys_do_not_steer_the_upstream() {
    let gw = Gateway::start_with(
        |upstream| json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp?tenant=acme"))}}),
    )
    .await;
    let token = gw.mint("echo", now(), 300);
    let call = |uri: &str| {
        Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::HOST, "evil.example")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
            .unwrap()
    };
    let seen = json_body(gw.send(call("/mcp/echo?page=2")).await).await;
    assert_eq!(seen["result"]["headers"]["x-forwarded-host"], "gw.test", "{seen}");
    assert_eq!(seen["result"]["query"], "tenant=acme&page=2");
    for polluted in ["/mcp/echo?tenant=other", "/mcp/echo?page=1&tenant=other", "/mcp/echo?ten%61nt=other"] {
        let response = gw.send(call(polluted)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{polluted}");
        assert!(body_text(response).await.contains("`tenant`"), "{polluted}");
    }
    assert_eq!(gw.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A route without policies keeps the plain path and never reads the body,
/// whatever it holds.
#[tokio::test]
async fn the_plain_path_does_not_read_the_body() {
    let gw = Gateway::start().await;
    let token = gw.mint("echo", now(), 300);
    let odd = r#"{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"a","NAME":"b"}}"#;
    let response = gw.send(mcp_post(&token, None, odd)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["result"]["body"], odd, "it went as it came");
}
