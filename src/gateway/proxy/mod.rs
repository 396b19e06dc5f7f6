//! `/mcp/{slug}` → the route's upstream MCP server.
//!
//! The bearer token must be one of ours, unexpired, unrevoked and bound to this
//! route (`aud`); anything else is a 401 whose `WWW-Authenticate` points the
//! client at the route's protected-resource metadata (MCP authorization,
//! RFC 9728 section 5.1). Bodies stream both ways, so SSE works and large
//! responses are never buffered. Only MCP's own headers cross: the client's
//! `Authorization` and cookies never reach the upstream, and upstream cookies
//! never reach the client.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::gateway::cors;
use crate::gateway::metrics::UNKNOWN_ROUTE_LABEL;
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::now;

mod policies;
mod upstream;

pub(crate) use upstream::set_response_timeout as set_upstream_timeout;

/// Request headers passed to the upstream. `Content-Length` keeps a streamed
/// body from turning into a chunked upload that some servers refuse.
/// `Mcp-Method` and `Mcp-Name` are the 2026-07-28 transport's routing
/// headers (the request needs no session there); `traceparent` and
/// `tracestate` carry W3C trace context so a trace spans the gateway.
const REQUEST_HEADERS: [HeaderName; 10] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ACCEPT,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("mcp-method"),
    HeaderName::from_static("mcp-name"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Response headers passed back to the client.
const RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    HeaderName::from_static("mcp-session-id"),
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("x-accel-buffering"),
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("the token lacks a scope the route requires")]
    InsufficientScope,
    #[error("upstream unavailable: {0}")]
    Upstream(String),
}

/// The token's claims, or why it was refused, for the log (never the token
/// itself).
fn check_token(
    state: &AppState,
    route: &RouteState,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<crate::gateway::tokens::AccessClaims>, ProxyError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ProxyError::MissingToken);
    };
    let value = value.to_str().map_err(|_| ProxyError::InvalidToken("unreadable Authorization header"))?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(ProxyError::InvalidToken("not a bearer token"));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ProxyError::InvalidToken("not a bearer token"));
    }
    let claims = state
        .token_cache
        .verify(&state.tokens, token.trim(), now())
        .map_err(|_| ProxyError::InvalidToken("signature, issuer or expiry"))?;
    if claims.aud != route.resource {
        return Err(ProxyError::InvalidToken("issued for another route"));
    }
    if state.revocations.is_revoked(&claims.jti) {
        return Err(ProxyError::InvalidToken("revoked"));
    }
    let required = &route.route.policy.required_scopes;
    if !required.iter().all(|needed| claims.scope.split_whitespace().any(|held| held == needed)) {
        return Err(ProxyError::InsufficientScope);
    }
    Ok(claims)
}

/// 403 `insufficient_scope` (RFC 6750 3.1; MCP authorization 2025-11-25
/// step-up): the client asks the user again, for the scopes named.
fn forbidden(route: &RouteState, challenge: HeaderValue) -> Response {
    tracing::info!(route = %route.route.path, "request refused: a required scope is missing");
    let mut response = (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": "insufficient_scope", "error_description": format!("this MCP server needs the scopes: {}", route.route.policy.required_scopes.join(" "))})),
    )
        .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    response
}

fn unauthorized(route: &RouteState, err: &ProxyError) -> Response {
    let challenge = match err {
        ProxyError::MissingToken => route.challenge.clone(),
        _ => route.challenge_invalid.clone(),
    };
    tracing::info!(route = %route.route.path, reason = %err, "request refused");
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "invalid_token", "error_description": "a valid access token for this MCP server is required"}))).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    response
}

fn jsonrpc_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message}})),
    )
        .into_response()
}

/// Bodies of refused requests up to this size are read and dropped.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Answers a request we refuse without forwarding. The unread request body is
/// drained first: otherwise hyper closes the keep-alive connection after the
/// response, and a client that already sent its next request (with the token
/// it just obtained) on that connection sees it dropped. A body too large or
/// too slow to drain gets `Connection: close` instead.
async fn refuse(request: Request, mut response: Response) -> Response {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, axum::body::to_bytes(request.into_body(), DRAIN_LIMIT)).await;
    if !matches!(drained, Ok(Ok(_))) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `/mcp/{slug}`. It sits outside the router's middleware (the hot path
/// allocates nothing per request for them): CORS and metrics are done here.
pub(crate) async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let cross_origin = request.headers().contains_key(header::ORIGIN);
    let slug = request.uri().path().strip_prefix("/mcp/").unwrap_or_default();
    let route = state.routes.get(slug);
    let label = route.map_or(UNKNOWN_ROUTE_LABEL, |route| route.route.path.as_str());
    let refusal = crate::gateway::security::rebinding_refusal(&state, request.headers());
    // A preflight does nothing by itself; the request it announces is checked.
    let mut response = match (cors::preflight(&request).filter(|_| cross_origin), refusal) {
        (Some(preflight), _) => preflight,
        (None, Some(reason)) => refuse(request, crate::gateway::security::forbidden(reason)).await,
        (None, None) => serve_route(&state, route, request).await,
    };
    if cross_origin {
        cors::allow_origin(&mut response);
    }
    let elapsed = started.elapsed();
    state.metrics.record(label, response.status().as_u16(), elapsed);
    tracing::debug!(route = label, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    response
}

async fn serve_route(state: &AppState, route: Option<&RouteState>, request: Request) -> Response {
    let Some(route) = route else {
        return refuse(request, jsonrpc_error(StatusCode::NOT_FOUND, "no such MCP server")).await;
    };
    if !route.route.methods.contains(request.method()) {
        let mut response = jsonrpc_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        let allow = route.route.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return refuse(request, response).await;
    }
    let claims = match check_token(state, route, request.headers()) {
        Ok(claims) => claims,
        Err(ProxyError::InsufficientScope) if route.challenge_scope.is_some() => {
            let challenge = route.challenge_scope.clone().unwrap_or_else(|| route.challenge_invalid.clone());
            return refuse(request, forbidden(route, challenge)).await;
        }
        Err(err) => return refuse(request, unauthorized(route, &err)).await,
    };
    let mut request = request;
    if !unbind_session(state, &claims, request.headers_mut()) {
        tracing::info!(route = %route.route.path, "Mcp-Session-Id of another user or client refused");
        return refuse(request, jsonrpc_error(StatusCode::NOT_FOUND, "session not found")).await;
    }
    // Policies (and the audit log) take the policy path; a route with none
    // keeps this one, which never reads the body.
    let mut response = if !route.route.inbound.is_empty() || state.audit.is_some() {
        policies::serve(state, route, claims.clone(), request).await
    } else {
        match forward_with(state, route, request, &[]).await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(route = %route.route.path, error = %err, "upstream request failed");
                state.metrics.upstream_error(&route.route.path);
                jsonrpc_error(StatusCode::BAD_GATEWAY, "upstream unavailable")
            }
        }
    };
    bind_session(state, &claims, response.headers_mut());
    response
}

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Replaces the client's bound `Mcp-Session-Id` with the upstream's id;
/// `false` when the token's subject and client do not own it.
fn unbind_session(state: &AppState, claims: &crate::gateway::tokens::AccessClaims, headers: &mut HeaderMap) -> bool {
    let Some(value) = headers.get(&MCP_SESSION_ID) else {
        return true;
    };
    let bound = value.to_str().unwrap_or_default();
    let key = &state.session_key;
    match crate::gateway::security::session::unbind(key, &claims.sub, &claims.client_id, bound)
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        Some(id) => {
            headers.insert(MCP_SESSION_ID, id);
            true
        }
        None => false,
    }
}

/// Binds the upstream's `Mcp-Session-Id` to the token's subject and client.
fn bind_session(state: &AppState, claims: &crate::gateway::tokens::AccessClaims, headers: &mut HeaderMap) {
    let Some(id) = headers.get(&MCP_SESSION_ID).and_then(|value| value.to_str().ok()) else {
        return;
    };
    let bound = crate::gateway::security::session::bind(&state.session_key, &claims.sub, &claims.client_id, id);
    match HeaderValue::from_str(&bound) {
        Ok(value) => {
            headers.insert(MCP_SESSION_ID, value);
        }
        Err(_) => {
            headers.remove(MCP_SESSION_ID);
        }
    }
}

/// Sends the request upstream with MCP's headers and `extra` (set by the
/// route's policies, after the forwarded ones so they win).
async fn forward_with(
    state: &AppState,
    route: &RouteState,
    request: Request,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<Response, ProxyError> {
    let (parts, body) = request.into_parts();
    let uri = upstream_uri(route, &parts.uri)?;
    let mut upstream_request = axum::http::Request::builder().method(parts.method).uri(uri);
    if let Some(headers) = upstream_request.headers_mut() {
        forwarded_headers(state, &parts.headers, &parts.extensions, headers);
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
    }
    // The body goes through as it is: it keeps its size, so a JSON request
    // stays a Content-Length request and SSE streams.
    let upstream_request = upstream_request.body(body).map_err(|err| ProxyError::Upstream(err.to_string()))?;
    let upstream = upstream::send(upstream_request).await.map_err(ProxyError::Upstream)?;

    let (upstream_parts, upstream_body) = upstream.into_parts();
    let mut response = Response::new(upstream_body);
    *response.status_mut() = upstream_parts.status;
    let out = response.headers_mut();
    for name in &RESPONSE_HEADERS {
        for value in upstream_parts.headers.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// The route's upstream URL, with the request's query appended to its own.
fn upstream_uri(route: &RouteState, uri: &axum::http::Uri) -> Result<axum::http::Uri, ProxyError> {
    let Some(query) = uri.query() else {
        return Ok(route.upstream_uri.clone());
    };
    let upstream = &route.route.upstream;
    let merged = match upstream.query() {
        Some(existing) => format!("{existing}&{query}"),
        None => query.to_owned(),
    };
    let mut url = upstream.clone();
    url.set_query(Some(&merged));
    url.as_str().parse().map_err(|_| ProxyError::Upstream("the query makes an invalid upstream URI".into()))
}

/// The request headers the upstream sees: MCP's own, plus `X-Forwarded-*`
/// naming the client and how it reached us.
fn forwarded_headers(
    state: &AppState,
    incoming: &HeaderMap,
    extensions: &axum::http::Extensions,
    headers: &mut HeaderMap,
) {
    headers.reserve(REQUEST_HEADERS.len() + 3);
    for name in &REQUEST_HEADERS {
        for value in incoming.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    // X-Forwarded-For: the peer we saw, after the incoming chain when the
    // peer is a trusted proxy (anyone else could forge the chain).
    let peer = crate::gateway::security::peer(extensions);
    let chain = if crate::gateway::security::from_trusted_proxy(state, peer) {
        incoming.get("x-forwarded-for").and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let forwarded_for = match (chain, peer) {
        (Some(chain), Some(peer)) => HeaderValue::from_str(&format!("{chain}, {peer}")).ok(),
        (Some(chain), None) => HeaderValue::from_str(chain).ok(),
        (None, Some(peer)) => HeaderValue::from_str(&peer.to_string()).ok(),
        (None, None) => None,
    };
    if let Some(value) = forwarded_for {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", state.forwarded_proto.clone());
    let host = incoming.get(header::HOST).cloned().unwrap_or_else(|| state.forwarded_host.clone());
    headers.insert("x-forwarded-host", host);
}
