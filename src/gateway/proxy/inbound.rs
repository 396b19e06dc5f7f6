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
    let (body, rpc) = if reads_body {
        match read_body(body).await {
            Ok(bytes) => {
                let rpc = Rpc::parse(&bytes);
                (Body::from(bytes), Some(rpc))
            }
            Err(response) => return response,
        }
    } else {
        (body, None)
    };
    let identity = claims.identity();
    let ctx = RequestCtx {
        claims: &claims,
        identity: &identity,
        client_ip,
        headers: &parts.headers,
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
            match forward_with(state, route, request, peer, &forward.headers).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let response = if forward.filters.is_empty() {
                        response
                    } else {
                        Box::pin(filter_body(response, forward.filters, identity)).await
                    };
                    (response, Outcome { label: "forwarded", upstream_status: Some(status) })
                }
                Err(err) => {
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
