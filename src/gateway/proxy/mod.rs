//! `/mcp/{slug}` → the route's upstream MCP server.
//!
//! The bearer token must be one of ours, unexpired, unrevoked and bound to this
//! route (`aud`); anything else is a 401 whose `WWW-Authenticate` points the
//! client at the route's protected-resource metadata (MCP authorization,
//! RFC 9728 section 5.1). Bodies stream both ways, so SSE works and large
//! responses are never buffered. Only MCP's own headers cross: the client's
//! `Authorization` and cookies never reach the upstream, and upstream cookies
//! never reach the client.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::gateway::cors;
use crate::gateway::metrics::UNKNOWN_ROUTE_LABEL;
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::now;
use crate::gateway::telemetry::{self, WithTraceContext};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

mod inbound;
mod traced;
mod upstream;

/// What an aggregated route needs of the proxy.
static AGGREGATE_HOOKS: crate::gateway::aggregate::Hooks = crate::gateway::aggregate::Hooks {
    dispatch: |state, route, claims, request, peer| Box::pin(dispatch(state, route, claims, request, peer)),
    own_policies: |state, route, claims, request, body, rpc, client_ip| {
        Box::pin(inbound::run_own_policies(state, route, claims, request, body, rpc, client_ip))
    },
};

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
    telemetry::TRACEPARENT,
    telemetry::TRACESTATE,
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
    #[error("a machine token without the route's scope")]
    MachineScope,
    #[error("upstream unavailable: {0}")]
    Upstream(String),
}

/// The token's claims, or why it was refused, for the log (never the token
/// itself).
fn check_token(
    state: &AppState,
    route: &RouteState,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<crate::gateway::claims::AccessClaims>, ProxyError> {
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
    // A machine client's reach is its scopes: the route's own, or all routes.
    if claims.machine && !crate::contract::machine_scopes::reach(&claims.scope, &route.route.slug) {
        return Err(ProxyError::MachineScope);
    }
    Ok(claims)
}

/// 403 `insufficient_scope` (RFC 6750 3.1; MCP authorization 2025-11-25
/// step-up): the client asks the user again, for the scopes named.
fn forbidden(route: &RouteState, challenge: HeaderValue, needed: String) -> Response {
    tracing::info!(route = %route.route.path, "request refused: a required scope is missing");
    let mut response = (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": "insufficient_scope", "error_description": format!("this MCP server needs the scopes: {needed}")})),
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
///
/// Boxed, like every branch the hot path does not take: the request's
/// future is allocated per request, and its size is that of its largest
/// branch; small, it comes from the allocator's per-thread cache.
fn refuse(request: Request, response: Response) -> Pin<Box<dyn Future<Output = Response> + Send>> {
    Box::pin(drain_then(request, response))
}

async fn drain_then(request: Request, mut response: Response) -> Response {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, axum::body::to_bytes(request.into_body(), DRAIN_LIMIT)).await;
    if !matches!(drained, Ok(Ok(_))) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `/mcp/{slug}`. It sits outside the router's middleware (the hot path
/// allocates nothing per request for them): CORS and metrics are done here.
pub(crate) async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let peer = crate::gateway::client_address::peer(request.extensions());
    serve(&state, request, peer).await
}

/// The proxy route for a request from `peer`: what the server calls
/// directly, without the router (and without an extensions map to carry the
/// peer: one allocation less per request).
pub(crate) async fn serve(state: &AppState, request: Request, peer: Option<IpAddr>) -> Response {
    let slug = request.uri().path().strip_prefix("/mcp/").unwrap_or_default();
    let route = state.routes.get(slug);
    let Some(tracing) = &state.tracing else {
        return serve_request(state, route, request, peer).await;
    };
    let label = route.map_or(UNKNOWN_ROUTE_LABEL, |route| route.route.path.as_str());
    match tracing.start_request(request.headers(), request.method(), label) {
        // Most requests: their span's ids go upstream, and nothing else.
        telemetry::RequestSpan::Unsampled(span) => {
            let mut request = request;
            telemetry::write_trace_headers(&span, request.headers_mut());
            serve_request(state, route, request, peer).await
        }
        // Boxed: rare, and its future holds the whole request's.
        telemetry::RequestSpan::Sampled(cx) => Box::pin(serve_sampled(state, route, cx, request, peer)).await,
    }
}

/// [`serve_request`] inside the request's server span, whose context the
/// policies, the store and the upstream call open their spans under.
async fn serve_sampled(
    state: &AppState,
    route: Option<&RouteState>,
    cx: opentelemetry::Context,
    request: Request,
    peer: Option<IpAddr>,
) -> Response {
    let response = serve_request(state, route, request, peer).with_context(cx.clone()).await;
    telemetry::finish_request(&cx, response.status().as_u16(), None);
    response
}

/// The request for `route` (`None`: no route has its slug).
async fn serve_request(
    state: &AppState,
    route: Option<&RouteState>,
    request: Request,
    peer: Option<IpAddr>,
) -> Response {
    let started = std::time::Instant::now();
    let cross_origin = request.headers().contains_key(header::ORIGIN);
    let label = route.map_or(UNKNOWN_ROUTE_LABEL, |route| route.route.path.as_str());
    let refusal = crate::gateway::security::rebinding_refusal(state, request.headers());
    // A preflight does nothing by itself; the request it announces is checked.
    let mut response = match (cors::preflight(&request).filter(|_| cross_origin), refusal) {
        (Some(preflight), _) => preflight,
        (None, Some(reason)) => refuse(request, crate::gateway::security::forbidden(reason)).await,
        (None, None) => serve_route(state, route, request, peer).await,
    };
    if cross_origin {
        cors::allow_origin(&mut response);
    }
    let elapsed = started.elapsed();
    state.metrics.record(label, response.status().as_u16(), elapsed);
    tracing::debug!(route = label, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    response
}

async fn serve_route(state: &AppState, route: Option<&RouteState>, request: Request, peer: Option<IpAddr>) -> Response {
    let Some(route) = route else {
        outcome(state, "unknown_route");
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
    let checked = match state.tracing {
        None => check_token(state, route, request.headers()),
        Some(_) => {
            let span = telemetry::child(|| format!("policy {}", route.route.policy.name), SpanKind::Internal);
            let checked = check_token(state, route, request.headers());
            if let (Some(span), Err(err)) = (&span, &checked) {
                span.set("cognigate.policy.refused", err.to_string());
            }
            checked
        }
    };
    let claims = match checked {
        Ok(claims) => claims,
        Err(ProxyError::InsufficientScope) if route.challenge_scope.is_some() => {
            outcome(state, "insufficient_scope");
            let challenge = route.challenge_scope.clone().unwrap_or_else(|| route.challenge_invalid.clone());
            let needed = route.route.policy.required_scopes.join(" ");
            return refuse(request, forbidden(route, challenge, needed)).await;
        }
        Err(ProxyError::MachineScope) => {
            let needed = format!(
                "{} (or {})",
                crate::contract::machine_scopes::route(&route.route.slug),
                crate::contract::machine_scopes::ALL
            );
            return refuse(request, forbidden(route, route.challenge_machine.clone(), needed)).await;
        }
        Err(err) => {
            outcome(state, "unauthorized");
            return refuse(request, unauthorized(route, &err)).await;
        }
    };
    if state.tracing.is_some() {
        telemetry::annotate_user(&claims.sub, &claims.client_id);
    }
    if let Some(problem) = query_conflict(route, request.uri()) {
        return refuse(request, jsonrpc_error(StatusCode::BAD_REQUEST, &problem)).await;
    }
    let mut request = request;
    if !unbind_session(state, &claims, request.headers_mut()) {
        tracing::info!(route = %route.route.path, "Mcp-Session-Id of another user or client refused");
        return refuse(request, jsonrpc_error(StatusCode::NOT_FOUND, "session not found")).await;
    }
    let mut response = if route.sessions.is_some() {
        // Boxed: the aggregate's future is much larger than the proxy's.
        Box::pin(crate::gateway::aggregate::serve(&AGGREGATE_HOOKS, state, route, claims.clone(), request, peer)).await
    } else {
        dispatch(state, route, claims.clone(), request, peer).await
    };
    bind_session(state, &claims, response.headers_mut());
    response
}

/// A request whose token was checked, sent to the route's upstream through
/// its policies. Aggregated routes call their members' routes this way, so
/// each member's policies (filters, rate limits, headers, the audit log)
/// apply to its part.
pub(crate) async fn dispatch(
    state: &AppState,
    route: &RouteState,
    claims: std::sync::Arc<crate::gateway::claims::AccessClaims>,
    request: Request,
    peer: Option<IpAddr>,
) -> Response {
    // Policies (and the audit log) take the policy path; a route with none
    // keeps this one, which never reads the body.
    if !route.route.inbound.is_empty() || state.audit.is_some() {
        let trusted = &state.security.trusted_proxies;
        let client_ip = crate::gateway::client_address::client_ip(trusted, request.headers(), peer);
        // Boxed: the policy path's future is much larger than this one.
        Box::pin(inbound::serve(state, route, claims, request, client_ip, peer)).await
    } else {
        match forward_with(state, route, request, peer, &[]).await {
            Ok(response) => {
                outcome(state, "forwarded");
                response
            }
            Err(err) => {
                outcome(state, "upstream_error");
                tracing::warn!(route = %route.route.path, error = %err, "upstream request failed");
                state.metrics.upstream_error(&route.route.path);
                jsonrpc_error(StatusCode::BAD_GATEWAY, "upstream unavailable")
            }
        }
    }
}

/// What became of the request, on its span (when traces are on: the plain
/// path of a gateway without them does no more than this check).
fn outcome(state: &AppState, outcome: &'static str) {
    if state.tracing.is_some() {
        telemetry::annotate(|| vec![KeyValue::new(telemetry::OUTCOME, outcome)]);
    }
}

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Replaces the client's bound `Mcp-Session-Id` with the upstream's id;
/// `false` when the token's subject and client do not own it.
fn unbind_session(state: &AppState, claims: &crate::gateway::claims::AccessClaims, headers: &mut HeaderMap) -> bool {
    let Some(value) = headers.get(&MCP_SESSION_ID) else {
        return true;
    };
    let bound = value.to_str().unwrap_or_default();
    let key = &state.session_key;
    match crate::gateway::session::unbind(key, &claims.sub, &claims.client_id, bound)
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
fn bind_session(state: &AppState, claims: &crate::gateway::claims::AccessClaims, headers: &mut HeaderMap) {
    let Some(id) = headers.get(&MCP_SESSION_ID).and_then(|value| value.to_str().ok()) else {
        return;
    };
    let bound = crate::gateway::session::bind(&state.session_key, &claims.sub, &claims.client_id, id);
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
    peer: Option<IpAddr>,
    extra: &[(HeaderName, HeaderValue)],
) -> Result<Response, ProxyError> {
    // The client's request becomes the upstream's in place: its header map
    // keeps MCP's headers and loses the rest, instead of a new map being
    // built (and sized, and hashed into) per request.
    let (mut parts, body) = request.into_parts();
    parts.uri = upstream_uri(route, &parts.uri)?;
    parts.version = axum::http::Version::HTTP_11;
    parts.extensions = axum::http::Extensions::new();
    forwarded_headers(state, &mut parts.headers, peer);
    for (name, value) in extra {
        parts.headers.insert(name.clone(), value.clone());
    }
    // The body goes through as it is: it keeps its size, so a JSON request
    // stays a Content-Length request and SSE streams.
    let upstream_request = axum::http::Request::from_parts(parts, body);
    let upstream = if state.tracing.is_some() && telemetry::sampled() {
        // Boxed: off the path of unsampled requests.
        Box::pin(traced::send(upstream_request)).await
    } else {
        upstream::send(upstream_request).await
    };
    let upstream = upstream.map_err(ProxyError::Upstream)?;

    let (mut parts, body) = upstream.into_parts();
    retain_headers(&mut parts.headers, &RESPONSE_HEADERS);
    parts.version = axum::http::Version::HTTP_11;
    parts.extensions = axum::http::Extensions::new();
    Ok(Response::from_parts(parts, body))
}

/// Removes, in place, every header not named in `allowed`. Names are taken
/// out a few at a time (a map cannot be changed while its keys are read);
/// hyper bounds a request to 100 headers, so the passes are few.
fn retain_headers(headers: &mut HeaderMap, allowed: &[HeaderName]) {
    loop {
        let mut unwanted: [Option<HeaderName>; 8] = Default::default();
        let mut found = 0;
        for name in headers.keys().filter(|name| !allowed.contains(name)) {
            unwanted[found] = Some(name.clone());
            found += 1;
            if found == unwanted.len() {
                break;
            }
        }
        if found == 0 {
            return;
        }
        for name in unwanted.iter().flatten() {
            headers.remove(name);
        }
    }
}

/// Why the client's query cannot go upstream: it sets a key the route's
/// `rewritePattern` already sets (`?tenant=acme` must not become
/// `?tenant=acme&tenant=other`, which upstreams read either way).
fn query_conflict(route: &RouteState, uri: &axum::http::Uri) -> Option<String> {
    let query = uri.query()?;
    let preset = route.route.upstream.query()?;
    let preset: Vec<_> = url::form_urlencoded::parse(preset.as_bytes()).map(|(key, _)| key).collect();
    url::form_urlencoded::parse(query.as_bytes()).map(|(key, _)| key).find(|key| preset.contains(key)).map(|key| {
        format!("the query parameter `{key}` is set by the gateway for this MCP server; leave it out of the URL")
    })
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

/// Turns the client's headers into the upstream's: MCP's own stay, the rest
/// (`Authorization`, cookies, `Host`, hop-by-hop headers) go, and
/// `X-Forwarded-*` name the client and the public URL it reached us at.
fn forwarded_headers(state: &AppState, headers: &mut HeaderMap, peer: Option<IpAddr>) {
    // X-Forwarded-For: the peer we saw, after the incoming chain when the
    // peer is a trusted proxy (anyone else could forge the chain).
    let chain = if crate::gateway::client_address::from_trusted_proxy(&state.security.trusted_proxies, peer) {
        headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let forwarded_for = match (chain, peer) {
        (Some(chain), Some(peer)) => HeaderValue::from_str(&format!("{chain}, {peer}")).ok(),
        (Some(chain), None) => HeaderValue::from_str(chain).ok(),
        (None, Some(peer)) => ip_header(peer),
        (None, None) => None,
    };
    retain_headers(headers, &REQUEST_HEADERS);
    if let Some(value) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, state.forwarded_proto.clone());
    // The public URL's host, never the client's `Host`: an upstream that
    // builds URLs from it must not be steered by what a client sends.
    headers.insert(X_FORWARDED_HOST, state.forwarded_host.clone());
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// An address as a header value, formatted on the stack (every proxied
/// request sends one; `to_string` would allocate it twice).
fn ip_header(ip: IpAddr) -> Option<HeaderValue> {
    use std::io::Write;
    // The longest textual IPv6 address is 45 bytes.
    let mut text = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    write!(cursor, "{ip}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    HeaderValue::from_bytes(&text[..len]).ok()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{REQUEST_HEADERS, retain_headers};

    #[test]
    fn only_the_allowed_headers_stay_with_all_their_values() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        headers.insert(header::COOKIE, HeaderValue::from_static("session=1"));
        headers.insert(header::HOST, HeaderValue::from_static("gateway.example"));
        for i in 0..20 {
            headers.insert(format!("x-extra-{i}").parse::<axum::http::HeaderName>().unwrap(), HeaderValue::from(i));
        }
        headers.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.append(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert("mcp-session-id", HeaderValue::from_static("s1"));
        retain_headers(&mut headers, &REQUEST_HEADERS);
        let mut names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "mcp-session-id"]);
        assert_eq!(headers.get_all(header::ACCEPT).iter().count(), 2);
    }
}
