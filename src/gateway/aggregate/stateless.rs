//! The 2026-07-28 revision on an aggregated route: no `initialize` and no
//! session. Each request carries its protocol version and the client's
//! capabilities in `_meta` (and the version in `MCP-Protocol-Version`, which
//! must agree); `server/discover` describes the route; results say
//! `resultType`, and lists (and reads) how long they may be cached
//! (`ttlMs`) and by whom (`cacheScope`: `private`, since what a user sees
//! depends on their groups); `subscriptions/listen` is the stream of list
//! changes.
//!
//! Members are spoken to in the stateful revision they agreed to, through a
//! session the user's stateless requests share (see `session`).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::session::Session;
use super::{AggregateServer, Answer, Ctx, INVALID_PARAMS, MCP_PROTOCOL_VERSION, error_response, member, sse};

/// The stateless revision.
pub(super) const STATELESS_VERSION: &str = "2026-07-28";
/// JSON-RPC code for routing headers that disagree with the body, or a
/// missing version header.
pub(super) const HEADER_MISMATCH: i64 = -32020;
/// JSON-RPC code for a protocol version the server does not speak.
const UNSUPPORTED_VERSION: i64 = -32022;
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";
/// Methods whose results may be cached.
const CACHEABLE: [&str; 6] =
    ["server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"];

fn meta(message: &Value) -> Option<&serde_json::Map<String, Value>> {
    message.pointer("/params/_meta").and_then(Value::as_object)
}

/// Whether a request is of the stateless revision: it says so in `_meta`
/// or in its version header, or uses a method only that revision has.
pub(super) fn is_stateless(headers: &HeaderMap, message: &Value) -> bool {
    let header = headers.get(&MCP_PROTOCOL_VERSION).and_then(|v| v.to_str().ok());
    let method = message.get("method").and_then(Value::as_str);
    if method == Some("initialize") {
        return false;
    }
    meta(message).is_some_and(|meta| meta.contains_key(META_VERSION))
        || header.is_some_and(|v| !super::STATEFUL_VERSIONS.contains(&v))
        || matches!(method, Some("server/discover" | "subscriptions/listen"))
}

/// Why `Mcp-Method` / `Mcp-Name` disagree with the body, if they do: an
/// intermediary routing by the headers must see the request the server runs.
pub(super) fn header_mismatch(headers: &HeaderMap, message: &Value) -> Option<String> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(method) = text("mcp-method")
        && Some(method) != message.get("method").and_then(Value::as_str)
    {
        return Some(format!("the Mcp-Method header `{method}` does not match the body's method"));
    }
    if let Some(name) = text("mcp-name") {
        let params = message.get("params");
        let body = params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str);
        if Some(name) != body {
            return Some(format!("the Mcp-Name header `{name}` does not match the name or uri in the body"));
        }
    }
    None
}

pub(super) async fn serve(
    server: &AggregateServer<'_>,
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    message: Value,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = message.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
    let header = headers.get(&MCP_PROTOCOL_VERSION).and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return error_response(
            StatusCode::BAD_REQUEST,
            id,
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header is missing",
        );
    };
    let meta = meta(&message).cloned().unwrap_or_default();
    let missing: Vec<&str> =
        [META_VERSION, META_CAPABILITIES].into_iter().filter(|key| !meta.contains_key(*key)).collect();
    if !missing.is_empty() && message.get("id").is_some() {
        return error_response(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_PARAMS,
            &format!("invalid params: _meta lacks {}", missing.join(", ")),
        );
    }
    if meta.get(META_VERSION).and_then(Value::as_str).is_some_and(|v| v != header) {
        return error_response(
            StatusCode::BAD_REQUEST,
            id,
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header does not match _meta's protocol version",
        );
    }
    if header != STATELESS_VERSION {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": UNSUPPORTED_VERSION,
            "message": "unsupported protocol version",
            "data": {"supported": supported_versions(), "requested": header}}});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    if message.get("id").is_none() {
        return super::accepted();
    }
    let session = shared_session(server, ctx, &meta);
    if method == "server/discover" {
        let result = discover(server, ctx, &session).await;
        return finish(&method, id, Answer::Result(result), ctx);
    }
    if method == "subscriptions/listen" {
        return listen(ctx, &session, id, &message).await;
    }
    let answer = server.answer(ctx, &session, &method, id.clone(), message, None).await;
    finish(&method, id, answer, ctx)
}

/// Every version the route speaks.
fn supported_versions() -> Vec<&'static str> {
    std::iter::once(STATELESS_VERSION).chain(super::STATEFUL_VERSIONS).collect()
}

/// The session the user's stateless requests share, made with what the
/// request's `_meta` says of the client.
fn shared_session(
    server: &AggregateServer<'_>,
    ctx: &Ctx<'_>,
    meta: &serde_json::Map<String, Value>,
) -> std::sync::Arc<Session> {
    let owner = format!("{}\0{}", ctx.claims.sub, ctx.claims.client_id);
    server.sessions.shared(&owner, || {
        let version = super::STATEFUL_VERSIONS[0];
        let params = json!({
            "protocolVersion": version,
            "capabilities": meta.get(META_CAPABILITIES).cloned().unwrap_or_else(|| json!({})),
            "clientInfo": meta.get(META_CLIENT_INFO).cloned().unwrap_or_else(|| json!({"name": "cognigate", "version": env!("CARGO_PKG_VERSION")})),
        });
        Session::new(server.spec.members.len(), params, version.to_owned())
    })
}

async fn discover(server: &AggregateServer<'_>, ctx: &Ctx<'_>, session: &Session) -> Value {
    let described = server.initialize_result(ctx, session, STATELESS_VERSION).await;
    json!({
        "supportedVersions": supported_versions(),
        "capabilities": described["capabilities"],
    })
}

/// The answer in the revision's shape: `resultType`, cache hints, and the
/// server's name in `_meta`. A relayed member answer is rewritten the same
/// way, message by message.
fn finish(method: &str, id: Value, answer: Answer, ctx: &Ctx<'_>) -> Response {
    let info = super::server_info(ctx);
    let method = method.to_owned();
    match answer {
        Answer::Result(mut result) => {
            shape(&method, &mut result, &info);
            super::result_response(id, result)
        }
        Answer::Error(code, text) => error_response(StatusCode::OK, id, code, &text),
        Answer::Relayed(response) => {
            let is_sse = member::is_sse(&response);
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            if is_sse {
                let mut reader = sse::EventReader::default();
                let stream = body.into_data_stream().map(move |chunk| {
                    chunk.map(|chunk| {
                        let mut out = Vec::new();
                        for mut message in reader.push(&chunk) {
                            if let Some(result) = message.get_mut("result") {
                                shape(&method, result, &info);
                            }
                            out.extend_from_slice(&sse::event(&message));
                        }
                        Bytes::from(out)
                    })
                });
                return Response::from_parts(parts, Body::from_stream(stream));
            }
            let stream = futures_util::stream::once(async move {
                let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
                let mut message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if let Some(result) = message.get_mut("result") {
                    shape(&method, result, &info);
                }
                Ok::<_, std::convert::Infallible>(Bytes::from(serde_json::to_vec(&message).unwrap_or_default()))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}

fn shape(method: &str, result: &mut Value, info: &Value) {
    let Some(object) = result.as_object_mut() else { return };
    object.entry("resultType").or_insert_with(|| json!("complete"));
    if CACHEABLE.contains(&method) {
        object.entry("ttlMs").or_insert_with(|| json!(0));
        object.entry("cacheScope").or_insert_with(|| json!("private"));
    }
    let meta = object.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.entry(META_SERVER_INFO).or_insert_with(|| info.clone());
    }
}

/// `subscriptions/listen`: the acknowledgement first, then the members'
/// list changes the client asked for, tagged with the subscription's id.
async fn listen(ctx: &Ctx<'_>, session: &Session, id: Value, message: &Value) -> Response {
    let wanted = message.pointer("/params/notifications").cloned().unwrap_or_else(|| json!({}));
    let mut ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": wanted, "_meta": {META_SUBSCRIPTION: id}}});
    if ack["params"]["notifications"].is_null() {
        ack["params"]["notifications"] = json!({});
    }
    let mut streams = Vec::new();
    for member in 0..ctx.spec.members.len() {
        let Ok(link) = member::link(ctx, session, member).await else { continue };
        if let Ok(response) = member::send(ctx, member, Some(&link), axum::http::Method::GET, None).await
            && member::is_sse(&response)
        {
            streams.push(response.into_body().into_data_stream());
        }
    }
    let first = futures_util::stream::once(async move { Ok::<Bytes, axum::Error>(sse::event(&ack)) });
    let mut reader = sse::EventReader::default();
    let changes = futures_util::stream::select_all(streams).map(move |chunk| {
        chunk.map(|chunk| {
            let mut out = Vec::new();
            for mut notification in reader.push(&chunk) {
                let flag = match notification.get("method").and_then(Value::as_str) {
                    Some("notifications/tools/list_changed") => "toolsListChanged",
                    Some("notifications/prompts/list_changed") => "promptsListChanged",
                    Some("notifications/resources/list_changed") => "resourcesListChanged",
                    _ => continue,
                };
                if wanted.get(flag) != Some(&Value::Bool(true)) {
                    continue;
                }
                notification["params"]["_meta"][META_SUBSCRIPTION] = id.clone();
                out.extend_from_slice(&sse::event(&notification));
            }
            Bytes::from(out)
        })
    });
    let mut response = Response::new(Body::from_stream(first.chain(changes)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
