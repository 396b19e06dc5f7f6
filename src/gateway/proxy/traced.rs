//! The upstream call of a traced request: a client span whose context the
//! upstream receives as `traceparent` (and `tracestate`), replacing the
//! client's, so the upstream's spans hang under the gateway's call. For MCP
//! 2026-07-28 the same context also goes in the request's `params._meta`
//! (SEP-414: the keys `traceparent` and `tracestate` at the root of `_meta`),
//! which is where that transport's servers read it.
//!
//! A sampled `POST` whose JSON body has a known, small size is read whole,
//! to name its JSON-RPC method and tool on the spans and to carry `_meta`;
//! anything else streams through untouched. An unsampled request costs one
//! header, written as it comes in: its span's ids, marked not sampled, so the
//! upstream does not sample it either.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, Response, header};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::Value;

use crate::gateway::jsonrpc::Rpc;
use crate::gateway::telemetry::{self, ChildSpan};

/// Bodies up to this size are read to name the call and carry `_meta`.
const MAX_TRACED_BODY: u64 = 1024 * 1024;
/// The first protocol version whose requests carry trace context in `_meta`.
const META_TRACE_CONTEXT_SINCE: &str = "2026-07-28";
const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// Sends `request` upstream inside a client span of the current (sampled)
/// request.
pub(super) async fn send(request: Request<Body>) -> Result<Response<Body>, String> {
    // Not sampled after all: the request already carries its span's ids
    // (written when it came in), and nothing else is done.
    let Some(span) = telemetry::child(|| format!("upstream {}", request.method()), SpanKind::Client) else {
        return super::upstream::send(request).await;
    };
    let (mut parts, body) = request.into_parts();
    span.set("http.request.method", parts.method.as_str().to_owned());
    if let Some(host) = parts.uri.host() {
        span.set("server.address", host.to_owned());
    }
    if let Some(port) = parts.uri.port_u16() {
        span.set("server.port", i64::from(port));
    }
    span.set("url.path", parts.uri.path().to_owned());
    telemetry::inject(span.context(), &mut parts.headers);
    let body = if parts.method == Method::POST { name_and_carry(&span, &mut parts, body).await? } else { body };
    let result = super::upstream::send(Request::from_parts(parts, body)).await;
    match &result {
        Ok(response) => {
            let status = response.status().as_u16();
            span.set("http.response.status_code", i64::from(status));
            if status >= 500 {
                span.fail(format!("HTTP {status}"));
            }
        }
        Err(err) => span.fail(err.clone()),
    }
    result
}

/// Reads a small JSON body: names its method and tool on the spans and, for
/// MCP 2026-07-28, puts the call's trace context in `params._meta`.
async fn name_and_carry(span: &ChildSpan, parts: &mut axum::http::request::Parts, body: Body) -> Result<Body, String> {
    let small = hyper::body::Body::size_hint(&body).exact().is_some_and(|size| size <= MAX_TRACED_BODY);
    if !small {
        return Ok(body);
    }
    let bytes = axum::body::to_bytes(body, MAX_TRACED_BODY as usize)
        .await
        .map_err(|err| format!("cannot read the request body: {err}"))?;
    let version = parts.headers.get(MCP_PROTOCOL_VERSION).and_then(|value| value.to_str().ok());
    if let Ok(rpc) = Rpc::parse(&bytes) {
        let attributes = call_attributes(&rpc, version);
        span.set_all(attributes.clone());
        telemetry::annotate(|| attributes);
    }
    if version.is_none_or(|version| version < META_TRACE_CONTEXT_SINCE) {
        return Ok(Body::from(bytes));
    }
    let Some(carried) = with_meta(&bytes, &telemetry::trace_headers(span.context())) else {
        return Ok(Body::from(bytes));
    };
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(carried.len()));
    Ok(Body::from(carried))
}

/// The semantic-convention attributes of an MCP call.
fn call_attributes(rpc: &Rpc, version: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    let Some(first) = rpc.first() else {
        return attributes;
    };
    if let Some(method) = &first.method {
        attributes.push(KeyValue::new("mcp.method.name", method.clone()));
        if let (Some(name), "tools/call") = (&first.name, method.as_str()) {
            attributes.push(KeyValue::new("gen_ai.tool.name", name.clone()));
        }
    }
    if let Some(version) = version {
        attributes.push(KeyValue::new("mcp.protocol.version", version.to_owned()));
    }
    attributes
}

/// The body with `fields` set in `params._meta` of its request (a single
/// JSON-RPC request; a batch or a response is left as it is).
fn with_meta(body: &Bytes, fields: &std::collections::HashMap<String, String>) -> Option<Vec<u8>> {
    let mut message: Value = serde_json::from_slice(body).ok()?;
    let object = message.as_object_mut().filter(|object| object.get("method").is_some_and(Value::is_string))?;
    let params = object.entry("params").or_insert_with(|| Value::Object(Default::default())).as_object_mut()?;
    let meta = params.entry("_meta").or_insert_with(|| Value::Object(Default::default())).as_object_mut()?;
    for key in ["traceparent", "tracestate"] {
        match fields.get(key) {
            Some(value) => meta.insert(key.to_owned(), Value::String(value.clone())),
            None => meta.remove(key),
        };
    }
    serde_json::to_vec(&message).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Bytes;
    use serde_json::{Value, json};

    use super::with_meta;

    fn fields() -> HashMap<String, String> {
        HashMap::from([(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        )])
    }

    #[test]
    fn the_trace_context_goes_in_params_meta_beside_what_is_there() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {}, "_meta": {"progressToken": 7, "tracestate": "stale=1"}}});
        let carried: Value =
            serde_json::from_slice(&with_meta(&Bytes::from(body.to_string()), &fields()).unwrap()).unwrap();
        assert_eq!(
            carried["params"]["_meta"],
            json!({"progressToken": 7, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        );
        assert_eq!(carried["params"]["name"], "echo");
        let bare = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        let carried: Value =
            serde_json::from_slice(&with_meta(&Bytes::from(bare.to_string()), &fields()).unwrap()).unwrap();
        assert!(carried["params"]["_meta"]["traceparent"].is_string());
    }

    #[test]
    fn batches_responses_and_non_json_are_left_alone() {
        for body in
            [r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "not json"]
        {
            assert!(with_meta(&Bytes::from(body), &fields()).is_none(), "{body}");
        }
    }
}
