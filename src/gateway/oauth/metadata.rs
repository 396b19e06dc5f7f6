//! Discovery documents: RFC 9728 protected-resource metadata per route and
//! RFC 8414 authorization-server metadata, plus the public key of the
//! gateway's access tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::machine::CLIENT_CREDENTIALS_GRANT;
use super::register::DEVICE_CODE_GRANT;
use crate::gateway::policy::OFFLINE_ACCESS;
use crate::gateway::state::{AppState, RouteState};

fn protected_resource_document(state: &AppState, route: &RouteState) -> Value {
    json!({
        "resource": route.resource,
        "authorization_servers": [state.public_url],
        "bearer_methods_supported": ["header"],
        "scopes_supported": route.route.policy.supported_scopes(),
        "resource_name": route.route.path,
    })
}

pub(super) async fn protected_resource(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    match state.routes.get(&slug) {
        Some(route) => Json(protected_resource_document(&state, route)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
    }
}

/// The path-less form (RFC 9728 section 3.1, the MCP authorization spec's
/// fallback for clients that do not read `resource_metadata` from the 401):
/// with one route, that route's document; with several, the gateway's own,
/// whose `resource` is the public URL (the identifier this well-known URL is
/// derived from) and whose scopes are every route's. Tokens are bound to one
/// route, so asking for the public URL itself at `/oauth/authorize` is
/// refused with the routes to choose from; every 401 names its route's
/// document, which is where well-behaved clients look first.
pub(super) async fn protected_resource_root(State(state): State<AppState>) -> Response {
    let mut routes = state.routes.values();
    if let (Some(route), None) = (routes.next(), routes.next()) {
        return Json(protected_resource_document(&state, route)).into_response();
    }
    let mut scopes: Vec<&str> = state.routes.values().flat_map(|r| r.route.policy.supported_scopes()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let mut route_paths: Vec<&str> = state.routes.values().map(|r| r.route.path.as_str()).collect();
    route_paths.sort_unstable();
    Json(json!({
        "resource": state.public_url,
        "authorization_servers": [state.public_url],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": format!("MCP gateway ({})", route_paths.join(", ")),
    }))
    .into_response()
}

/// RFC 8414 metadata, served at `/.well-known/oauth-authorization-server`
/// and, for clients that only try OpenID discovery (MCP authorization
/// 2025-11-25 asks clients to try both), at `/.well-known/openid-configuration`.
/// Both carry the issuer exactly as the public URL clients build the
/// discovery URL from: clients compare them byte for byte.
pub(super) async fn authorization_server(State(state): State<AppState>) -> Json<Value> {
    let base = &state.public_url;
    let mut scopes: Vec<&str> = state.routes.values().flat_map(|r| r.route.policy.supported_scopes()).collect();
    scopes.push(OFFLINE_ACCESS);
    scopes.sort_unstable();
    scopes.dedup();
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT, CLIENT_CREDENTIALS_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "device_authorization_endpoint": format!("{base}/oauth/device_authorization"),
    }))
}

pub(super) async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"keys": state.tokens.jwks()}))
}
