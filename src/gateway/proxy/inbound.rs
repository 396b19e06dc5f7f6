//! The policy path: a route with inbound policies beyond its OAuth check (or
//! any route while the audit log is on) comes here after the token check.
//!
//! Order of work: read the JSON-RPC body of a `POST` when a policy or the
//! audit needs it (bounded; a route without them never reads it, see the
//! plain path in the parent module); run the route's policies in the order it
//! lists them, each continuing, adding upstream headers, asking for a
//! response filter or answering itself; forward; run the response filters
//! over whatever comes back; write the audit line and the per-tool counters.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::{RouteState, forward_with};
use crate::gateway::audit::{AuditLine, rfc3339_now};
use crate::gateway::claims::AccessClaims;
use crate::gateway::jsonrpc::Rpc;
use crate::gateway::policy::{RequestCtx, ResponseFilter, Step, filter_body};
use crate::gateway::state::AppState;
use crate::gateway::telemetry;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

/// Request bodies larger than this are refused on routes that read them.
const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// What happened, for the audit line and the counters.
struct Outcome {
    label: &'static str,
    upstream_status: Option<u16>,
}

/// What the route's policies asked for on a request they let through.
#[derive(Default)]
struct Forward {
    headers: Vec<(HeaderName, HeaderValue)>,
    filters: Vec<Arc<dyn ResponseFilter>>,
}

pub(super) async fn serve(
    state: &AppState,
    route: &RouteState,
    claims: Arc<AccessClaims>,
    request: Request,
    client_ip: Option<IpAddr>,
    peer: Option<IpAddr>,
) -> Response {
    let started = Instant::now();
    let http_method = request.method().clone();
    let reads_body = http_method == Method::POST && (route.route.reads_body() || state.audit.is_some());
    let (parts, body) = request.into_parts();
    let (body, rpc, bytes) = if reads_body {
        match read_body(body).await {
            Ok(bytes) => {
                let rpc = Rpc::parse(&bytes);
                (Body::from(bytes.clone()), Some(rpc), Some(bytes))
            }
            Err(response) => return response,
        }
    } else {
        (body, None, None)
    };
    // A route whose upstream credential a policy holds may send a request
    // again once, after the upstream refused the credential: its head is
    // kept for that (its body is the one read here, or none).
    let retry = (route.route.inbound.iter().any(|policy| policy.upstream_oauth().is_some())
        && (bytes.is_some() || http_method != Method::POST))
        .then(|| copy_parts(&parts));
    let identity = claims.identity();
    let ctx = RequestCtx {
        claims: &claims,
        identity: &identity,
        client_ip,
        headers: &parts.headers,
        method: &parts.method,
        body: bytes.as_deref(),
        rpc: rpc.as_ref(),
        route: &route.route.path,
        upstream: &route.route.upstream,
        store: &state.store,
        signer: &state.tokens,
    };
    let (response, outcome) = match run_policies(route, &ctx).await {
        Err((response, label)) => (response, Outcome { label, upstream_status: None }),
        Ok(forward) => {
            let request = Request::from_parts(parts, body);
            let mut sent = forward_with(state, route, request, peer, &forward.headers).await;
            let mut answered = None;
            if let (Ok(response), Some(again)) = (&sent, &retry)
                && response.status() == StatusCode::UNAUTHORIZED
            {
                let ctx = RequestCtx {
                    claims: &claims,
                    identity: &identity,
                    client_ip,
                    headers: &again.headers,
                    method: &again.method,
                    body: bytes.as_deref(),
                    rpc: rpc.as_ref(),
                    route: &route.route.path,
                    upstream: &route.route.upstream,
                    store: &state.store,
                    signer: &state.tokens,
                };
                match upstream_rejected(route, &ctx).await {
                    Step::SetHeaders(renewed) => {
                        let mut headers = forward.headers.clone();
                        headers.extend(renewed);
                        let body = Body::from(bytes.clone().unwrap_or_default());
                        let request = Request::from_parts(copy_parts(again), body);
                        sent = forward_with(state, route, request, peer, &headers).await;
                        // Refused again with a renewed credential: the upstream's
                        // 401 would make the client sign in to the gateway again,
                        // which cannot help.
                        if sent.as_ref().is_ok_and(|response| response.status() == StatusCode::UNAUTHORIZED) {
                            tracing::warn!(route = %route.route.path, "the upstream refused a renewed credential");
                            let refused = super::jsonrpc_error(
                                StatusCode::BAD_GATEWAY,
                                "the upstream MCP server refused the credential the gateway holds for it",
                            );
                            answered = Some((refused, "upstream_refused_credential"));
                        }
                    }
                    Step::Answer { response, outcome } => answered = Some((response, outcome)),
                    Step::Continue | Step::FilterResponse(_) => {}
                }
            }
            match (answered, sent) {
                (Some((response, label)), _) => (response, Outcome { label, upstream_status: Some(401) }),
                (None, Ok(response)) => {
                    let status = response.status().as_u16();
                    let response = if forward.filters.is_empty() {
                        response
                    } else {
                        Box::pin(filter_body(response, forward.filters, identity)).await
                    };
                    (response, Outcome { label: "forwarded", upstream_status: Some(status) })
                }
                (None, Err(err)) => {
                    tracing::warn!(route = %route.route.path, error = %err, "upstream request failed");
                    state.metrics.upstream_error(&route.route.path);
                    (
                        super::jsonrpc_error(StatusCode::BAD_GATEWAY, "upstream unavailable"),
                        Outcome { label: "upstream_error", upstream_status: None },
                    )
                }
            }
        }
    };
    if state.tracing.is_some() {
        telemetry::annotate(|| vec![KeyValue::new(telemetry::OUTCOME, outcome.label)]);
    }
    let rpc = rpc.as_ref().and_then(|rpc| rpc.as_ref().ok());
    record(state, route, &claims, http_method.as_str(), rpc, &outcome, response.status().as_u16(), started);
    response
}

/// Runs `route`'s policies over a request that goes nowhere by itself (an
/// aggregated route's, which its members then serve): what they ask for,
/// or the answer one of them gives.
pub(super) async fn run_own_policies(
    state: &AppState,
    route: &RouteState,
    claims: &AccessClaims,
    request: &axum::http::request::Parts,
    body: Option<&[u8]>,
    rpc: Option<&Result<Rpc, crate::gateway::jsonrpc::RpcError>>,
    client_ip: Option<IpAddr>,
) -> Result<crate::gateway::aggregate::OwnPolicies, Response> {
    let identity = claims.identity();
    let ctx = RequestCtx {
        claims,
        identity: &identity,
        client_ip,
        headers: &request.headers,
        method: &request.method,
        body,
        rpc,
        route: &route.route.path,
        upstream: &route.route.upstream,
        store: &state.store,
        signer: &state.tokens,
    };
    match run_policies(route, &ctx).await {
        Ok(forward) => {
            Ok(crate::gateway::aggregate::OwnPolicies { headers: forward.headers, filters: forward.filters })
        }
        Err((response, _)) => Err(response),
    }
}

/// The route's policies in order: what they ask of the forwarded request, or
/// the first answer one of them gives.
async fn run_policies(route: &RouteState, ctx: &RequestCtx<'_>) -> Result<Forward, (Response, &'static str)> {
    let mut forward = Forward::default();
    for policy in &route.route.inbound {
        let span = telemetry::child(|| format!("policy {}", policy.name()), SpanKind::Internal);
        let step = policy.on_request(ctx).await;
        if let Some(span) = &span {
            span.set("cognigate.policy.name", policy.name().to_owned());
            span.set("cognigate.policy.step", step.label());
        }
        match step {
            Step::Continue => {}
            Step::SetHeaders(headers) => forward.headers.extend(headers),
            Step::FilterResponse(filter) => forward.filters.push(filter),
            Step::Answer { response, outcome } => return Err((response, outcome)),
        }
    }
    Ok(forward)
}

/// What the route's policies make of the upstream's 401: the first that
/// does more than pass it on decides.
async fn upstream_rejected(route: &RouteState, ctx: &RequestCtx<'_>) -> Step {
    for policy in &route.route.inbound {
        match policy.upstream_rejected(ctx).await {
            Step::Continue => {}
            step => return step,
        }
    }
    Step::Continue
}

/// A request's head, for sending it again.
fn copy_parts(parts: &axum::http::request::Parts) -> axum::http::request::Parts {
    let mut request = axum::http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_REQUEST_BODY).await.map_err(|_| {
        let mut response = super::jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large");
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    })
}

/// The audit line and the per-tool counter of one request.
#[allow(clippy::too_many_arguments)]
fn record(
    state: &AppState,
    route: &RouteState,
    claims: &AccessClaims,
    http_method: &str,
    rpc: Option<&Rpc>,
    outcome: &Outcome,
    status: u16,
    started: Instant,
) {
    let first = rpc.and_then(Rpc::first);
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
            machine: claims.machine,
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

/// A name counted under its own label only if every policy of the route
/// that lists tools lists it (a bounded set from the config); otherwise
/// `(other)`, and the metrics' cap bounds routes that list none.
fn tool_label<'a>(route: &RouteState, name: &'a str) -> &'a str {
    if route.route.inbound.iter().all(|policy| policy.labels_tool(name)) {
        name
    } else {
        crate::gateway::metrics::OTHER
    }
}
