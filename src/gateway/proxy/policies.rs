//! The policy path: a route with inbound policies beyond its OAuth check (or
//! any route while the audit log is on) comes here after the token check.
//!
//! Order of work: read the JSON-RPC body when a capability filter or the audit
//! needs it (bounded; a route without them never reads it, see the plain path
//! in the parent module); refuse a request whose `Mcp-Method` / `Mcp-Name`
//! headers disagree with its body (2026-07-28 transport: HTTP 400, JSON-RPC
//! -32020), so the headers cannot smuggle a hidden tool past an intermediary
//! that trusts them; run the route's policies in the order it lists them
//! (capability filter, rate limit, set headers, identity); forward; filter the
//! list responses (JSON, SSE events, batches); write the audit line and the
//! per-tool counters.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::{RouteState, forward_with};
use crate::gateway::audit::{AuditLine, rfc3339_now};
use crate::gateway::config::InboundPolicy;
use crate::gateway::config::policy::capability_filter::{Capability, CapabilityFilter};
use crate::gateway::config::policy::identity::IdentityHeader;
use crate::gateway::config::policy::rate_limit::{LimitBy, RateLimit};
use crate::gateway::crypto::random_token;
use crate::gateway::state::AppState;
use crate::gateway::store::{Identity, now};
use crate::gateway::tokens::{AccessClaims, UpstreamIdentity};

/// Request bodies larger than this are refused on routes that read them.
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;
/// JSON list responses larger than this are not filtered but refused (502).
const MAX_LIST_RESPONSE: usize = 16 * 1024 * 1024;
/// JSON-RPC "method not found": what a hidden item looks like to the client.
const METHOD_NOT_FOUND: i64 = -32601;
/// 2026-07-28 transport: `Mcp-Method` / `Mcp-Name` disagree with the body.
const HEADER_MISMATCH: i64 = -32020;
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// One JSON-RPC message of the request, as far as policies look at it.
#[derive(Debug, Default)]
struct Message {
    id: Option<Value>,
    method: Option<String>,
    /// `params.name` (tools/call, prompts/get) or `params.uri` (resources/*).
    name: Option<String>,
    /// `completion/complete`'s `params.ref`.
    reference: Option<(String, String)>,
}

/// Visitor methods for the JSON values a lenient reader takes as "nothing
/// here" (`$empty`): scalars are dropped, arrays skipped whole.
macro_rules! skip_other_values {
    ($empty:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($empty)
        }
    };
}

/// Strings, where an object is expected: nothing there either.
macro_rules! skip_strings {
    ($empty:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($empty)
        }
    };
}

/// The parsed request body.
#[derive(Debug, Default)]
struct Rpc {
    messages: Vec<Message>,
    batch: bool,
}

impl Rpc {
    /// The messages of a JSON-RPC body (one object or a batch), or `None`
    /// when it is not JSON or neither. Only `id`, `method` and the few
    /// `params` fields policies look at are kept; the rest (a tool call's
    /// arguments above all) is skipped by the parser without being built.
    fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Rpc>(body).ok()
    }

    fn first(&self) -> Option<&Message> {
        self.messages.first()
    }
}

impl<'de> Deserialize<'de> for Rpc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> Visitor<'de> for Body {
            type Value = Rpc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rpc, A::Error> {
                Ok(Rpc { messages: vec![Peek.visit_map(map)?], batch: false })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rpc, A::Error> {
                let mut messages = Vec::new();
                while let Some(message) = seq.next_element::<Message>()? {
                    messages.push(message);
                }
                Ok(Rpc { messages, batch: true })
            }
        }
        deserializer.deserialize_any(Body)
    }
}

/// Reads one message (any JSON value; what is not an object has no fields).
/// A key given twice counts with its last value, as in a parsed `Value`.
struct Peek;

impl<'de> Visitor<'de> for Peek {
    type Value = Message;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let (mut id, mut method, mut params) = (None, None, Params::default());
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_deref() {
                Some("id") => id = Some(map.next_value::<Value>()?),
                Some("method") => method = map.next_value::<Text<'de>>()?.into_string(),
                Some("params") => params = map.next_value::<Params>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = match method.as_deref() {
            Some("tools/call" | "prompts/get") => params.name,
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => params.uri,
            _ => None,
        };
        Ok(Message { id, method, name, reference: params.reference })
    }
    skip_other_values!(Message::default());
    skip_strings!(Message::default());
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Peek)
    }
}

/// The `params` fields policies read (`name`, `uri`, and `ref`, itself read
/// as params with its `type`); params that are not an object have none.
#[derive(Default)]
struct Params {
    name: Option<String>,
    uri: Option<String>,
    kind: Option<String>,
    reference: Option<(String, String)>,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Params;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut params = Params::default();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    match key.as_deref() {
                        Some("name") => params.name = map.next_value::<Text<'de>>()?.into_string(),
                        Some("uri") => params.uri = map.next_value::<Text<'de>>()?.into_string(),
                        Some("type") => params.kind = map.next_value::<Text<'de>>()?.into_string(),
                        Some("ref") => {
                            let reference = map.next_value::<Params>()?;
                            params.reference = reference.kind.zip(reference.name.or(reference.uri));
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(params)
            }
            skip_other_values!(Params::default());
            skip_strings!(Params::default());
        }
        deserializer.deserialize_any(Fields)
    }
}

/// A JSON string (borrowed from the body when it has no escapes), or `None`
/// for any other value, which is skipped.
struct Text<'de>(Option<Cow<'de, str>>);

impl Text<'_> {
    fn into_string(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyText;
        impl<'de> Visitor<'de> for AnyText {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            skip_other_values!(Text(None));
        }
        deserializer.deserialize_any(AnyText)
    }
}

/// What happened, for the audit line and the counters.
struct Outcome {
    label: &'static str,
    upstream_status: Option<u16>,
}

pub(super) async fn serve(
    state: &AppState,
    route: &RouteState,
    claims: Arc<AccessClaims>,
    request: Request,
    peer: Option<IpAddr>,
) -> Response {
    let started = Instant::now();
    let identity = claims.identity();
    let http_method = request.method().clone();
    let reads_body = http_method == axum::http::Method::POST && (route.route.inspects_body() || state.audit.is_some());
    let (parts, body) = request.into_parts();
    let (body, rpc) = if reads_body {
        match read_body(body).await {
            Ok(bytes) => {
                let rpc = Rpc::parse(&bytes);
                (Body::from(bytes), rpc)
            }
            Err(response) => return response,
        }
    } else {
        (body, Some(Rpc::default()))
    };
    let (response, outcome, rpc) = match decide(state, route, &claims, &identity, &parts, peer, rpc).await {
        Err(refusal) => *refusal,
        Ok((extra, lists, rpc)) => {
            let request = Request::from_parts(parts, body);
            match forward_with(state, route, request, peer, &extra).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let response = if lists.is_empty() {
                        response
                    } else {
                        Box::pin(filter_response(route, &identity, &lists, response)).await
                    };
                    (response, Outcome { label: "forwarded", upstream_status: Some(status) }, rpc)
                }
                Err(err) => {
                    tracing::warn!(route = %route.route.path, error = %err, "upstream request failed");
                    state.metrics.upstream_error(&route.route.path);
                    (
                        super::jsonrpc_error(StatusCode::BAD_GATEWAY, "upstream unavailable"),
                        Outcome { label: "upstream_error", upstream_status: None },
                        rpc,
                    )
                }
            }
        }
    };
    record(state, route, &claims, http_method.as_str(), &rpc, &outcome, response.status().as_u16(), started);
    response
}

/// Extra upstream headers, list requests whose responses need filtering, and
/// the parsed body; or the refusal (boxed: rare, and large beside the rest).
type Decision = Result<(Vec<(HeaderName, HeaderValue)>, Vec<(Value, Capability)>, Rpc), Box<(Response, Outcome, Rpc)>>;

async fn decide(
    state: &AppState,
    route: &RouteState,
    claims: &AccessClaims,
    identity: &Identity,
    parts: &axum::http::request::Parts,
    peer: Option<IpAddr>,
    rpc: Option<Rpc>,
) -> Decision {
    let refused = |response: Response, label: &'static str, rpc: Rpc| {
        Err(Box::new((response, Outcome { label, upstream_status: None }, rpc)))
    };
    // The route's capability filters, walked where needed (no list is
    // collected per request).
    let filters = || {
        route.route.inbound.iter().filter_map(|policy| match policy {
            InboundPolicy::CapabilityFilter(filter) => Some(filter.as_ref()),
            _ => None,
        })
    };
    let filtered = filters().next().is_some();
    let Some(rpc) = rpc else {
        // Unparseable JSON: with a filter, what the upstream would make of it
        // cannot be checked, so it does not go.
        if filtered {
            let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error: the body is not JSON-RPC"}});
            return refused((StatusCode::BAD_REQUEST, axum::Json(body)).into_response(), "refused", Rpc::default());
        }
        return Ok((Vec::new(), Vec::new(), Rpc::default()));
    };
    if filtered && let Some(problem) = header_mismatch(&parts.headers, &rpc) {
        let id = rpc.first().and_then(|m| m.id.clone()).unwrap_or(Value::Null);
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": HEADER_MISMATCH, "message": problem}});
        return refused((StatusCode::BAD_REQUEST, axum::Json(body)).into_response(), "header_mismatch", rpc);
    }
    let mut extra = Vec::new();
    let mut lists = Vec::new();
    for policy in &route.route.inbound {
        match policy {
            InboundPolicy::OAuth(_) => {}
            InboundPolicy::CapabilityFilter(filter) => {
                if let Some(response) = hidden_items(filter, &rpc, identity) {
                    return refused(response, "hidden", rpc);
                }
            }
            InboundPolicy::RateLimit(limit) => {
                // Boxed: the store's future is large, and inline it would
                // make every request's future on this path as large.
                if let Some(response) = Box::pin(rate_limited(state, limit, claims, peer)).await {
                    let label =
                        if response.status() == StatusCode::TOO_MANY_REQUESTS { "rate_limited" } else { "refused" };
                    return refused(response, label, rpc);
                }
            }
            InboundPolicy::SetHeaders(set) => extra.extend(set.headers.iter().cloned()),
            InboundPolicy::Identity(policy) => match identity_header(state, route, claims, policy) {
                Some(value) => extra.push((policy.header.clone(), value)),
                None => {
                    return refused(
                        super::jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                        "refused",
                        rpc,
                    );
                }
            },
        }
    }
    for message in &rpc.messages {
        let Some(kind) = message.method.as_deref().and_then(Capability::of_list_method) else { continue };
        if let Some(id) = &message.id
            && filters().any(|filter| filter.filters(kind))
        {
            lists.push((id.clone(), kind));
        }
    }
    Ok((extra, lists, rpc))
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_REQUEST_BODY).await.map_err(|_| {
        let mut response = super::jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large");
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    })
}

/// Why the transport headers disagree with the body, if they do.
fn header_mismatch(headers: &axum::http::HeaderMap, rpc: &Rpc) -> Option<String> {
    let method = headers.get(MCP_METHOD);
    let name = headers.get(MCP_NAME);
    if method.is_none() && name.is_none() {
        return None;
    }
    if rpc.batch {
        return Some("Mcp-Method / Mcp-Name headers cannot describe a batch".into());
    }
    let message = rpc.first()?;
    if let Some(method) = method
        && method.to_str().ok() != message.method.as_deref()
    {
        return Some("the Mcp-Method header does not match the body's method".into());
    }
    if let Some(name) = name
        && name.to_str().ok() != message.name.as_deref()
    {
        return Some("the Mcp-Name header does not match the body's name".into());
    }
    None
}

/// The answer for a request that uses an item the caller may not see: as if
/// the upstream did not have it (-32601), before it reaches the upstream. In a
/// batch, every request is answered (the others with -32600) and nothing is
/// forwarded.
fn hidden_items(filter: &CapabilityFilter, rpc: &Rpc, identity: &Identity) -> Option<Response> {
    if !rpc.messages.iter().any(|message| is_hidden(filter, message, identity)) {
        return None;
    }
    let hidden: Vec<bool> = rpc.messages.iter().map(|message| is_hidden(filter, message, identity)).collect();
    let errors: Vec<Value> = rpc
        .messages
        .iter()
        .zip(&hidden)
        .filter_map(|(message, hidden)| {
            let id = message.id.clone()?;
            let (code, text) = if *hidden {
                (METHOD_NOT_FOUND, not_found_text(message))
            } else {
                (-32600, "the batch was refused: another request in it names an unknown item".to_owned())
            };
            Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text}}))
        })
        .collect();
    let body = if rpc.batch {
        Value::Array(errors)
    } else {
        match errors.into_iter().next() {
            Some(error) => error,
            // A notification: nothing to answer, and it does not go either.
            None => return Some(StatusCode::ACCEPTED.into_response()),
        }
    };
    Some((StatusCode::OK, axum::Json(body)).into_response())
}

fn not_found_text(message: &Message) -> String {
    match (message.method.as_deref(), message.name.as_deref()) {
        (Some("tools/call"), Some(name)) => format!("Unknown tool: {name}"),
        (Some("prompts/get"), Some(name)) => format!("Unknown prompt: {name}"),
        (_, Some(uri)) => format!("Unknown resource: {uri}"),
        _ => "Method not found".to_owned(),
    }
}

fn is_hidden(filter: &CapabilityFilter, message: &Message, identity: &Identity) -> bool {
    let named = match (message.method.as_deref(), message.name.as_deref()) {
        (Some("tools/call"), Some(name)) => !filter.allows(Capability::Tools, name, identity),
        (Some("prompts/get"), Some(name)) => !filter.allows(Capability::Prompts, name, identity),
        (Some("resources/read" | "resources/subscribe" | "resources/unsubscribe"), Some(uri)) => {
            !filter.allows_read(uri, identity)
        }
        // A call without a name: the upstream answers it with its own error.
        _ => false,
    };
    let completion = match (message.method.as_deref(), &message.reference) {
        (Some("completion/complete"), Some((kind, key))) if kind == "ref/prompt" => {
            !filter.allows(Capability::Prompts, key, identity)
        }
        (Some("completion/complete"), Some((kind, key))) if kind == "ref/resource" => {
            !filter.allows_read(key, identity)
        }
        _ => false,
    };
    named || completion
}

/// 429 (with `Retry-After` unless the policy turns it off) when the caller's
/// window is used up. When the store cannot count: 503 if the policy says
/// `throwOnFailure`, else the request passes (the proxy keeps serving through
/// a store outage, as it does for token checks).
async fn rate_limited(
    state: &AppState,
    limit: &RateLimit,
    claims: &AccessClaims,
    peer: Option<IpAddr>,
) -> Option<Response> {
    let who = match limit.by {
        LimitBy::User => format!("user:{}", claims.sub),
        LimitBy::Ip => format!("ip:{}", peer.map(|ip| ip.to_string()).unwrap_or_default()),
        LimitBy::All => "all".to_owned(),
    };
    let now = now();
    let (window, window_end) = limit.window(now);
    let key = format!("{}:{who}:{window}", limit.name);
    let counted = state.store.run(move |store| store.count_request(&key, window_end, now)).await;
    let retry_after = |seconds: i64| HeaderValue::from_str(&seconds.max(1).to_string()).ok();
    match counted {
        Ok(count) if count <= limit.allowed => None,
        Ok(_) => {
            let mut response = super::jsonrpc_error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded; retry later");
            if limit.retry_after_header
                && let Some(value) = retry_after(window_end - now)
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Some(response)
        }
        Err(err) if !limit.fail_closed => {
            tracing::warn!(policy = %limit.name, error = %err, "rate limit store unavailable; request let through");
            None
        }
        Err(err) => {
            tracing::error!(policy = %limit.name, error = %err, "rate limit store unavailable");
            let mut response = super::jsonrpc_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
            if let Some(value) = retry_after(1) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Some(response)
        }
    }
}

fn identity_header(
    state: &AppState,
    route: &RouteState,
    claims: &AccessClaims,
    policy: &IdentityHeader,
) -> Option<HeaderValue> {
    let ttl = policy.ttl_seconds;
    let issued_at = now();
    let token = state
        .tokens
        .sign_identity(&UpstreamIdentity {
            iss: state.tokens.issuer(),
            sub: &claims.sub,
            aud: route.route.upstream.as_str(),
            email: claims.email.as_deref(),
            groups: &claims.groups,
            client_id: &claims.client_id,
            route: &route.route.path,
            iat: issued_at,
            exp: issued_at + ttl,
            jti: random_token(12),
        })
        .map_err(|err| tracing::error!(policy = %policy.name, error = %err, "cannot sign the upstream identity"))
        .ok()?;
    let mut value = HeaderValue::from_str(&token).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The upstream's answer with list results filtered for `identity`.
async fn filter_response(
    route: &RouteState,
    identity: &Identity,
    lists: &[(Value, Capability)],
    response: Response,
) -> Response {
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let filters: Vec<Arc<CapabilityFilter>> = route
        .route
        .inbound
        .iter()
        .filter_map(|policy| match policy {
            InboundPolicy::CapabilityFilter(filter) => Some(filter.clone()),
            _ => None,
        })
        .collect();
    let lists = lists.to_vec();
    let identity = identity.clone();
    let (parts, body) = response.into_parts();
    if content_type.starts_with("application/json") {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_LIST_RESPONSE).await else {
            return super::jsonrpc_error(StatusCode::BAD_GATEWAY, "the upstream's list response is too large");
        };
        let filtered = filter_json(&bytes, &filters, &lists, &identity).unwrap_or_else(|| bytes.to_vec());
        let mut response = Response::from_parts(parts, Body::from(filtered));
        response.headers_mut().remove(header::CONTENT_LENGTH);
        return response;
    }
    if content_type.starts_with("text/event-stream") {
        let mut events = SseFilter::default();
        let stream = body.into_data_stream().map(move |chunk| {
            chunk.map(|bytes| Bytes::from(events.push(&bytes, &|data| filter_json(data, &filters, &lists, &identity))))
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    Response::from_parts(parts, body)
}

/// The JSON-RPC response(s) in `data` with list results filtered; `None` when
/// it is not JSON (then it passes as it is).
fn filter_json(
    data: &[u8],
    filters: &[Arc<CapabilityFilter>],
    lists: &[(Value, Capability)],
    identity: &Identity,
) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let mut apply = |message: &mut Value| {
        let Some(kind) = message.get("id").and_then(|id| lists.iter().find(|(want, _)| want == id)).map(|(_, k)| *k)
        else {
            return;
        };
        if let Some(Value::Array(items)) = message.get_mut("result").and_then(|r| r.get_mut(kind.result_field())) {
            for filter in filters {
                filter.filter_items(kind, items, identity);
            }
        }
    };
    match &mut value {
        Value::Array(messages) => messages.iter_mut().for_each(&mut apply),
        message => apply(message),
    }
    serde_json::to_vec(&value).ok()
}

/// Re-frames an SSE stream event by event, filtering each event's data.
#[derive(Default)]
struct SseFilter {
    pending: Vec<u8>,
}

impl SseFilter {
    /// The complete events of `chunk` (with what was pending), filtered;
    /// an incomplete tail waits for the next chunk.
    fn push(&mut self, chunk: &[u8], filter: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some((end, separator)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + separator).collect();
            out.extend_from_slice(&filter_event(&event[..end], filter));
            out.extend_from_slice(b"\n\n");
        }
        out
    }
}

/// Where the first event ends (a blank line), and the separator's length.
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One event with its `data:` lines joined, filtered and written back as one
/// line; other fields (`id:`, `event:`, comments) are kept.
fn filter_event(event: &[u8], filter: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let mut fields = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        match line.strip_prefix("data:") {
            Some(value) => data.push(value.strip_prefix(' ').unwrap_or(value)),
            None => fields.push(line),
        }
    }
    let mut out = Vec::with_capacity(event.len());
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    if !data.is_empty() {
        let joined = data.join("\n");
        let filtered = filter(joined.as_bytes()).unwrap_or_else(|| joined.into_bytes());
        // serde_json never writes a raw newline, but a non-JSON payload may
        // have one: keep it one `data:` line per line.
        for line in filtered.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.pop();
    out
}

/// The audit line and the per-tool counter of one request.
#[allow(clippy::too_many_arguments)]
fn record(
    state: &AppState,
    route: &RouteState,
    claims: &AccessClaims,
    http_method: &str,
    rpc: &Rpc,
    outcome: &Outcome,
    status: u16,
    started: Instant,
) {
    let first = rpc.first();
    let method = first.and_then(|m| m.method.as_deref());
    let name = first.and_then(|m| m.name.as_deref());
    if let (Some("tools/call" | "prompts/get"), Some(name)) = (method, name) {
        state.metrics.tool_call(&route.route.path, tool_label(route, name), outcome.label);
    }
    if let Some(audit) = &state.audit {
        audit.write(&AuditLine {
            time: rfc3339_now(),
            subject: &claims.sub,
            email: claims.email.as_deref(),
            client_id: &claims.client_id,
            route: &route.route.path,
            method,
            name,
            http_method,
            outcome: outcome.label,
            upstream_status: outcome.upstream_status,
            status,
            latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        });
    }
}

/// A name counted under its own label only if every capability filter of the
/// route lists it (a bounded set from the config); otherwise `(other)` on
/// filtered routes, and the metrics' cap bounds unfiltered ones.
fn tool_label<'a>(route: &RouteState, name: &'a str) -> &'a str {
    for policy in &route.route.inbound {
        if let InboundPolicy::CapabilityFilter(filter) = policy
            && let Some(mut names) = filter.tool_names()
            && !names.any(|allowed| allowed == name)
        {
            return crate::gateway::metrics::OTHER;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::{Rpc, SseFilter, header_mismatch};

    #[test]
    fn sse_events_are_refiltered_across_chunks() {
        let mut sse = SseFilter::default();
        let upper = |data: &[u8]| Some(data.to_ascii_uppercase());
        let first = sse.push(b"event: message\ndata: {\"a\":", &upper);
        assert!(first.is_empty(), "incomplete event waits");
        let rest = sse.push(b"1}\n\nid: 7\ndata: x\r\n\r\n", &upper);
        assert_eq!(String::from_utf8(rest).unwrap(), "event: message\ndata: {\"A\":1}\n\nid: 7\ndata: X\n\n");
    }

    #[test]
    fn the_body_is_read_for_the_fields_policies_use() {
        let call = br#"{"params":{"arguments":{"name":"not this","deep":[{"uri":1}]},"name":"ec\u0068o"},"id":7,"method":"tools/call","jsonrpc":"2.0"}"#;
        let rpc = Rpc::parse(call).unwrap();
        let message = rpc.first().unwrap();
        assert!(!rpc.batch);
        assert_eq!((message.method.as_deref(), message.name.as_deref()), (Some("tools/call"), Some("echo")));
        assert_eq!(message.id, Some(serde_json::json!(7)));

        let batch = br#"[{"id":"a","method":"resources/read","params":{"uri":"file:///x","name":"n"}}, 3, "x", null,
            {"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}},
            {"method":7,"params":[1,2]}, {"method":"tools/call","method":"tools/list","params":"name"}]"#;
        let rpc = Rpc::parse(batch).unwrap();
        assert!(rpc.batch);
        assert_eq!(rpc.messages.len(), 7);
        assert_eq!(rpc.messages[0].name.as_deref(), Some("file:///x"), "resources are named by their uri");
        assert!(rpc.messages[1..4].iter().all(|m| m.method.is_none() && m.id.is_none()), "non-objects have no fields");
        assert_eq!(rpc.messages[4].reference, Some(("ref/prompt".to_owned(), "p".to_owned())));
        assert_eq!((rpc.messages[5].method.as_deref(), rpc.messages[5].name.as_deref()), (None, None));
        assert_eq!(rpc.messages[6].method.as_deref(), Some("tools/list"), "the last of a repeated key counts");

        for bad in [&b"not json"[..], b"7", b"\"tools/call\"", br#"{"method":"tools/call"} trailing"#] {
            assert!(Rpc::parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn headers_must_match_the_body() {
        let rpc = Rpc::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        assert!(header_mismatch(&headers, &rpc).is_none());
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        headers.insert("mcp-name", "echo".parse().unwrap());
        assert!(header_mismatch(&headers, &rpc).is_none());
        headers.insert("mcp-name", "admin_tool".parse().unwrap());
        assert!(header_mismatch(&headers, &rpc).unwrap().contains("Mcp-Name"));
        headers.insert("mcp-name", "echo".parse().unwrap());
        headers.insert("mcp-method", "tools/list".parse().unwrap());
        assert!(header_mismatch(&headers, &rpc).unwrap().contains("Mcp-Method"));
    }
}
