//! The gateway's own side of `mcp-token-exchange-inbound`, driven without a
//! port: the client-id metadata document it serves for `auto` registration,
//! the connect-required answer of a user who has connected nothing (it
//! answers the request's id, and reaches no upstream), and a connect link
//! that is not one.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::json;

use super::harness::{Gateway, PUBLIC_URL, bearer, json_body, no_grace, now, policies, route};

async fn gateway() -> Gateway {
    let mut all = policies();
    all["policies"].as_array_mut().unwrap().push(json!({
        "name": "exchange-linear", "policyType": "mcp-token-exchange-inbound",
        "handler": {"module": "$import(@zuplo/runtime/mcp-gateway)", "export": "McpTokenExchangeInboundPolicy",
                    "options": {"displayName": "Linear", "id": "linear", "authMode": "user-oauth", "scopes": []}}
    }));
    Gateway::start_full(
        |upstream| {
            let mut item = route(&format!("http://{upstream}/mcp"));
            for method in ["post", "get", "delete"] {
                item[method]["x-zuplo-route"]["policies"]["inbound"] =
                    json!(["cognito-managed-oauth", "exchange-linear"]);
            }
            json!({"paths": {"/mcp/linear": item}})
        },
        None,
        all,
        no_grace(),
    )
    .await
}

#[tokio::test]
async fn the_gateway_serves_its_client_id_metadata_document() {
    let gw = gateway().await;
    let response = gw.get("/oauth/upstream/linear/client.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document = json_body(response).await;
    assert_eq!(document["client_id"], format!("{PUBLIC_URL}/oauth/upstream/linear/client.json"), "{document}");
    assert_eq!(document["redirect_uris"], json!([format!("{PUBLIC_URL}/oauth/upstream/callback")]), "{document}");
    assert_eq!(document["token_endpoint_auth_method"], "none", "{document}");
    assert_eq!(document["grant_types"], json!(["authorization_code", "refresh_token"]), "{document}");
    assert_eq!(gw.get("/oauth/upstream/notion/client.json").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_who_connected_nothing_gets_connect_required_for_their_request_and_nothing_goes_upstream() {
    let gw = gateway().await;
    let token = gw.mint("linear", now(), 60);
    let body = r#"{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let response = gw
        .send(
            bearer("/mcp/linear", &token)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer = json_body(response).await;
    assert_eq!(answer["id"], "call-7", "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "no URL elicitation declared: {answer}");
    let link = answer["error"]["data"]["connectUrl"].as_str().expect("a link");
    assert!(link.starts_with(&format!("{PUBLIC_URL}/oauth/upstream/connect?ticket=")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains(link), "the message carries the link: {answer}");
    assert_eq!(gw.upstream.hits.load(Ordering::SeqCst), 0, "nothing reached the upstream");

    // The SSE stream's GET gets it too, with a status no client takes for
    // an authorization challenge of its own.
    let stream = gw
        .send(
            bearer("/mcp/linear", &token)
                .method("GET")
                .header(header::ACCEPT, "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(stream.status(), StatusCode::FAILED_DEPENDENCY);
    assert_eq!(gw.upstream.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_connect_link_that_is_not_one_gets_a_page_saying_what_to_do() {
    let gw = gateway().await;
    for uri in [
        "/oauth/upstream/connect",
        "/oauth/upstream/connect?ticket=short",
        &format!("/oauth/upstream/connect?ticket={}", "x".repeat(43)),
    ] {
        let response = gw.get(uri).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let page =
            String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(page.contains("Call the tool again from your MCP client"), "{page}");
    }
}

/// A client that declared URL elicitation at `initialize` on one replica
/// gets the URL-elicitation error from another: replicas share what it
/// declared through the store.
#[tokio::test]
async fn a_declared_url_elicitation_is_known_to_every_replica() {
    use tower::ServiceExt;
    let gw = gateway().await;
    let token = gw.mint("linear", now(), 60);
    let post = |body: &'static str| {
        bearer("/mcp/linear", &token)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Body::from(body))
            .unwrap()
    };
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{},"url":{}}},"clientInfo":{"name":"c","version":"1"}}}"#;
    let first = json_body(gw.send(post(initialize)).await).await;
    assert_eq!(first["error"]["code"], -32042, "{first}");
    assert_eq!(first["error"]["data"]["elicitations"][0]["mode"], "url", "{first}");

    let replica = cognigate::gateway::router(Gateway::state(gw.dir.path()));
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let second = json_body(replica.oneshot(post(call)).await.unwrap()).await;
    assert_eq!(second["id"], 2, "{second}");
    assert_eq!(second["error"]["code"], -32042, "the other replica knows: {second}");
}
