//! Talking to one member: a JSON-RPC message sent through the member's route
//! (its policies, its upstream client), and the message that answers it read
//! back from a JSON body or an SSE stream.
//!
//! The member's session is opened on first use with the client's own
//! `initialize` params, so the member sees the client's version and
//! capabilities (and may ask it for sampling or elicitation); a member that
//! forgot the session (404) gets a new one and the message again, once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::session::{Link, Session};
use super::sse::EventReader;
use super::{Ctx, MCP_PROTOCOL_VERSION, MCP_SESSION_ID};

/// A member's answer body read whole (JSON) is bounded by this.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// How long `initialize` and a list may take at one member before the others
/// answer without it.
pub(super) const MEMBER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(super) enum MemberError {
    #[error("unavailable ({0})")]
    Unavailable(String),
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
    #[error("the member forgot the session")]
    SessionGone,
}

/// A member's route, by index.
pub(super) fn route<'a>(ctx: &Ctx<'a>, member: usize) -> Option<&'a crate::gateway::state::RouteState> {
    ctx.spec.members.get(member).and_then(|m| ctx.state.routes.get(&m.slug))
}

/// A JSON-RPC message on its way to a member: its bytes, and what its
/// routing headers say.
#[derive(Clone)]
pub(super) struct Outgoing<'m> {
    body: Bytes,
    /// `Mcp-Method`, for a request (a message with an id).
    method: Option<&'m str>,
    /// `Mcp-Name`: the name or uri in its params.
    name: Option<&'m str>,
}

impl<'m> Outgoing<'m> {
    /// `message`, sent as `raw` (the client's own bytes of it, when it goes
    /// as it came: no second serialization) or serialized.
    pub(super) fn of(message: &'m Value, raw: Option<Bytes>) -> Self {
        let body = raw.unwrap_or_else(|| Bytes::from(serde_json::to_vec(message).unwrap_or_default()));
        let method = message.get("method").and_then(Value::as_str).filter(|_| message.get("id").is_some());
        let name = method
            .and_then(|_| message.get("params"))
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str);
        Self { body, method, name }
    }

    /// A request already in bytes, whose method and name are known.
    pub(super) fn request(body: Bytes, method: &'m str, name: &'m str) -> Self {
        Self { body, method: Some(method), name: Some(name) }
    }
}

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// Sends `message` (or nothing, for a `GET` or `DELETE`) to `member` with
/// `link`'s session; the member's response when it is a success.
pub(super) async fn send(
    ctx: &Ctx<'_>,
    member: usize,
    link: Option<&Link>,
    method: Method,
    message: Option<Outgoing<'_>>,
) -> Result<Response, MemberError> {
    let Some(route) = route(ctx, member) else {
        return Err(MemberError::Unavailable("no such route".into()));
    };
    let (body, routing) = match message {
        Some(Outgoing { body, method, name }) => (Body::from(body), Some((method, name))),
        None => (Body::empty(), None),
    };
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    // The proxy sends it to the member's upstream URI; only a query here would matter.
    *request.uri_mut() = axum::http::Uri::from_static("/");
    let headers = request.headers_mut();
    if routing.is_some() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let accept = if method == Method::GET { "text/event-stream" } else { "application/json, text/event-stream" };
    headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
    if let Some(link) = link {
        if let Some(value) = &link.session_id {
            headers.insert(MCP_SESSION_ID, value.clone());
        }
        if let Some(value) = &link.version {
            headers.insert(MCP_PROTOCOL_VERSION, value.clone());
        }
    }
    for (name, value) in ctx.headers {
        headers.insert(name.clone(), value.clone());
    }
    // The 2026-07-28 routing headers, which a member of that revision
    // checks against the body.
    if let Some((Some(rpc_method), name)) = routing {
        if let Ok(value) = HeaderValue::from_str(rpc_method) {
            headers.insert(MCP_METHOD, value);
        }
        if let Some(value) = name.and_then(|name| HeaderValue::from_str(name).ok()) {
            headers.insert(MCP_NAME, value);
        }
    }
    let response = (ctx.hooks.dispatch)(ctx.state, route, ctx.claims.clone(), request, ctx.peer).await;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND && link.is_some_and(|link| link.session_id.is_some()) {
        return Err(MemberError::SessionGone);
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let message = parsed
        .as_ref()
        .and_then(|body| {
            body.pointer("/error/message")
                .or_else(|| body.get("error_description"))
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == StatusCode::BAD_GATEWAY || status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(MemberError::Unavailable(message));
    }
    Err(MemberError::Refused { status, message })
}

/// The message answering `id` in a member's response (a JSON body, or the
/// SSE stream, read until it comes).
pub(super) async fn answer(response: Response, id: &Value) -> Result<Value, MemberError> {
    let sse = is_sse(&response);
    let body = response.into_body();
    if !sse {
        let bytes = axum::body::to_bytes(body, MAX_ANSWER)
            .await
            .map_err(|err| MemberError::Unavailable(format!("reading its answer: {err}")))?;
        return serde_json::from_slice(&bytes)
            .map_err(|_| MemberError::Unavailable("its answer is not JSON-RPC".into()));
    }
    let mut reader = EventReader::default();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| MemberError::Unavailable(format!("reading its stream: {err}")))?;
        for message in reader.push(&chunk) {
            if message.get("id") == Some(id) && message.get("method").is_none() {
                return Ok(message);
            }
        }
    }
    Err(MemberError::Unavailable("its stream ended without an answer".into()))
}

pub(super) use super::sse::is_sse;

/// The result of a request the gateway makes itself, or why there is none.
pub(super) async fn call(
    ctx: &Ctx<'_>,
    session: &Session,
    member: usize,
    method: &str,
    params: Value,
) -> Result<Value, MemberError> {
    let id = json!(format!("cognigate-{}", crate::gateway::crypto::random_token(6)));
    let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let response = send_linked(ctx, session, member, Outgoing::of(&message, None)).await?;
    let answer = answer(response, &id).await?;
    match answer.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(MemberError::Refused {
            status: StatusCode::OK,
            message: answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("an answer without a result")
                .to_owned(),
        }),
    }
}

/// Sends `message` on the session's link to `member`, opening it first if
/// needed, and again once if the member forgot it.
pub(super) async fn send_linked(
    ctx: &Ctx<'_>,
    session: &Session,
    member: usize,
    message: Outgoing<'_>,
) -> Result<Response, MemberError> {
    let current = link(ctx, session, member).await?;
    match send(ctx, member, Some(&current), Method::POST, Some(message.clone())).await {
        Err(MemberError::SessionGone) => {
            session.set_link(member, None);
            let fresh = link(ctx, session, member).await?;
            send(ctx, member, Some(&fresh), Method::POST, Some(message)).await
        }
        other => other,
    }
}

/// The session's link to `member`, opened now if there is none.
pub(super) async fn link(ctx: &Ctx<'_>, session: &Session, member: usize) -> Result<Arc<Link>, MemberError> {
    if let Some(link) = session.link(member) {
        return Ok(link);
    }
    let link = tokio::time::timeout(MEMBER_TIMEOUT, open(ctx, session, member))
        .await
        .map_err(|_| MemberError::Unavailable("initialize timed out".into()))??;
    let link = Arc::new(link);
    session.set_link(member, Some(link.clone()));
    Ok(link)
}

/// `initialize` and `notifications/initialized` with a member.
async fn open(ctx: &Ctx<'_>, session: &Session, member: usize) -> Result<Link, MemberError> {
    let id = json!(0);
    let message = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": session.init_params});
    let response = send(ctx, member, None, Method::POST, Some(Outgoing::of(&message, None))).await?;
    let session_id = response.headers().get(MCP_SESSION_ID).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let answer = answer(response, &id).await?;
    let Some(result) = answer.get("result") else {
        let message = answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("initialize failed");
        return Err(MemberError::Refused { status: StatusCode::OK, message: message.to_owned() });
    };
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(&session.version);
    let capabilities = result.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    let link = Link::new(session_id.as_deref(), version, capabilities);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    if let Ok(response) = send(ctx, member, Some(&link), Method::POST, Some(Outgoing::of(&initialized, None))).await {
        // Read to the end, so a pooled connection goes back to the pool.
        let _ = axum::body::to_bytes(response.into_body(), 64 * 1024).await;
    }
    Ok(link)
}
