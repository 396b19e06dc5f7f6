//! The request policies on the router: `rate-limit-inbound` counted in one
//! Redis by two replicas, the `Mcp-Method` / `Mcp-Name` check (-32020), and
//! boot errors that name the policy, the option and the fix.

use axum::body::Body;
use axum::http::{StatusCode, header};
use cognigate::gateway::RedisStore;
use cognigate::gateway::{Env, GatewayConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::harness::{Gateway, RedisServer, Upstream, bearer, env_text, json_body, now, policies, route};

fn write_config(dir: &std::path::Path, extra: Vec<Value>, inbound: Value, upstream: &str) {
    let mut all = policies();
    all["policies"].as_array_mut().unwrap().extend(extra);
    let mut op = route(upstream);
    for method in ["post", "get", "delete"] {
        op[method]["x-zuplo-route"]["policies"]["inbound"] = inbound.clone();
    }
    std::fs::write(dir.join("policies.json"), all.to_string()).unwrap();
    std::fs::write(dir.join("routes.oas.json"), json!({"paths": {"/mcp/echo": op}}).to_string()).unwrap();
    std::fs::write(dir.join(".env"), env_text("127.0.0.1:9".parse().unwrap())).unwrap();
}

fn mcp_call(token: &str, tool: &str) -> axum::http::Request<Body> {
    bearer("/mcp/echo", token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}).to_string(),
        ))
        .unwrap()
}

#[tokio::test]
async fn rate_limit_is_shared_by_replicas_on_redis() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let limit = json!({"name": "per-user", "policyType": "rate-limit-inbound", "handler": {
        "export": "RateLimitInboundPolicy", "module": "$import(@zuplo/runtime)",
        "options": {"rateLimitBy": "user", "requestsAllowed": 3, "timeWindowMinutes": 60}}});
    write_config(
        dir.path(),
        vec![limit],
        json!(["cognito-managed-oauth", "per-user"]),
        &format!("http://{}/mcp", upstream.addr),
    );
    let replicas: Vec<_> =
        (0..2).map(|_| Gateway::state_with(dir.path(), RedisStore::open(&redis.url).unwrap().into())).collect();
    let routers: Vec<_> = replicas.iter().map(|state| cognigate::gateway::router(state.clone())).collect();
    let token = |state: &cognigate::gateway::AppState, sub: &str| {
        state
            .mint_access_token(sub, "http://gw.test/mcp/echo", "client-x", "openid", now(), 300, format!("jti-{sub}"))
            .unwrap()
    };
    let alice = token(&replicas[0], "alice");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let response = routers[i % 2].clone().oneshot(mcp_call(&alice, "echo")).await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: i64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!((1..=3600).contains(&retry), "Retry-After {retry}");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "three requests across both replicas, then 429");
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 3, "refused requests never reach the upstream");
    // Another user has a count of their own.
    let bob = token(&replicas[1], "bob");
    assert_eq!(routers[0].clone().oneshot(mcp_call(&bob, "echo")).await.unwrap().status(), StatusCode::OK);
}

/// Zuplo's other rate-limit options: one count for every caller, no
/// `Retry-After` (`headerMode: none`), and what a store outage does: the
/// request passes by default, 503 with `throwOnFailure`.
#[tokio::test]
async fn rate_limit_for_all_callers_and_through_a_store_outage() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let state_for = |throw_on_failure: bool| {
        let dir = tempfile::tempdir().unwrap();
        let limit = json!({"name": "everyone", "policyType": "rate-limit-inbound", "handler": {
            "export": "BasicRateLimitInboundPolicy", "module": "$import(@zuplo/runtime)",
            "options": {"rateLimitBy": "all", "requestsAllowed": 2, "timeWindowMinutes": 60,
                        "headerMode": "none", "throwOnFailure": throw_on_failure, "mode": "async"}}});
        write_config(
            dir.path(),
            vec![limit],
            json!(["cognito-managed-oauth", "everyone"]),
            &format!("http://{}/mcp", upstream.addr),
        );
        let state = Gateway::state_with(dir.path(), RedisStore::open(&redis.url).unwrap().into());
        (dir, state)
    };
    let (_open_dir, fail_open) = state_for(false);
    let (_closed_dir, fail_closed) = state_for(true);
    let token = |state: &cognigate::gateway::AppState, sub: &str| {
        state
            .mint_access_token(sub, "http://gw.test/mcp/echo", "client-x", "openid", now(), 300, format!("jti-{sub}"))
            .unwrap()
    };
    let router = cognigate::gateway::router(fail_open.clone());
    let mut statuses = Vec::new();
    for sub in ["alice", "bob", "carol"] {
        let response = router.clone().oneshot(mcp_call(&token(&fail_open, sub), "echo")).await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().get(header::RETRY_AFTER).is_none(), "headerMode none");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "one count shared by every caller");

    redis.signal("KILL");
    let passed = router.clone().oneshot(mcp_call(&token(&fail_open, "dave"), "echo")).await.unwrap();
    assert_eq!(passed.status(), StatusCode::OK, "the store cannot count: the request passes by default");
    let refused = cognigate::gateway::router(fail_closed.clone())
        .oneshot(mcp_call(&token(&fail_closed, "erin"), "echo"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "throwOnFailure: 503");
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 3, "only the admitted requests went through");
}

#[tokio::test]
async fn transport_headers_must_agree_with_the_body() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let filter = json!({"name": "filter", "policyType": "mcp-capability-filter-inbound", "handler": {
        "export": "McpCapabilityFilterInboundPolicy", "options": {"tools": ["echo"]}}});
    write_config(
        dir.path(),
        vec![filter],
        json!(["cognito-managed-oauth", "filter"]),
        &format!("http://{}/mcp", upstream.addr),
    );
    let state = Gateway::state(dir.path());
    let router = cognigate::gateway::router(state.clone());
    let token =
        state.mint_access_token("u", "http://gw.test/mcp/echo", "c", "openid", now(), 300, "jti-h".into()).unwrap();

    // The headers name an allowed tool while the body calls a hidden one.
    let mut smuggled = mcp_call(&token, "admin_reset");
    smuggled.headers_mut().insert("mcp-method", "tools/call".parse().unwrap());
    smuggled.headers_mut().insert("mcp-name", "echo".parse().unwrap());
    let response = router.clone().oneshot(smuggled).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"]["code"], -32020);

    // Without the headers the hidden tool is "not found", before the upstream.
    let response = router.clone().oneshot(mcp_call(&token, "admin_reset")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!((body["id"].clone(), body["error"]["code"].clone()), (json!(1), json!(-32601)), "{body}");
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Matching headers and an allowed tool go through.
    let mut fine = mcp_call(&token, "echo");
    fine.headers_mut().insert("mcp-method", "tools/call".parse().unwrap());
    fine.headers_mut().insert("mcp-name", "echo".parse().unwrap());
    assert_eq!(router.oneshot(fine).await.unwrap().status(), StatusCode::OK);
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn policy_errors_at_boot_name_policy_option_and_fix() {
    let cases = [
        (
            json!({"tools": [{"name": "add", "groups": ["admins"]}]}),
            ["policy `filter`", "tools[0]", "Fix: set accessControl.mode to rolesAndGroups"],
        ),
        (
            json!({"tools": [{"name": "add", "public": true, "groups": ["admins"]}],
                   "accessControl": {"mode": "rolesAndGroups", "groupClaim": "cognito:groups"}}),
            ["policy `filter`", "tools[0]", "public and also lists groups"],
        ),
        (json!({"tools": ["echo"], "toolz": []}), ["policy `filter`", "toolz", "Fix:"]),
    ];
    for (options, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let filter = json!({"name": "filter", "policyType": "mcp-capability-filter-inbound", "handler": {
            "export": "McpCapabilityFilterInboundPolicy", "options": options}});
        write_config(dir.path(), vec![filter], json!(["cognito-managed-oauth", "filter"]), "http://127.0.0.1:9/mcp");
        let text = std::fs::read_to_string(dir.path().join(".env")).unwrap();
        let env =
            Env::from_pairs(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())));
        let err = GatewayConfig::load(dir.path(), &env).unwrap_err().to_string();
        for needle in needles {
            assert!(err.contains(needle), "`{needle}` missing from: {err}");
        }
    }
}
