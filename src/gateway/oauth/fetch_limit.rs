//! The per-address limit on client-id metadata document fetches. A request
//! that names a document URL the gateway has not cached makes it fetch that
//! URL: anonymous callers of `/oauth/authorize`, `/oauth/token`,
//! `/oauth/revoke` and `/oauth/device_authorization` could otherwise make it
//! fetch as often as they can send. Requests answered from the cache (or from
//! a remembered refusal) are not counted.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_auth::basic_credentials;
use crate::gateway::client_address::{client_ip, counter_key, peer};
use crate::gateway::clients::cimd::is_client_id_url;
use crate::gateway::security::{OAUTH_BODY_LIMIT, limit};
use crate::gateway::state::AppState;

const CLIENT_LOOKUP_POSTS: [&str; 3] = ["/oauth/token", "/oauth/revoke", "/oauth/device_authorization"];

pub(crate) async fn limit_client_id_fetches(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let (client_id, body) = if parts.method == Method::GET && path == "/oauth/authorize" {
        (param(parts.uri.query().unwrap_or_default().as_bytes(), "client_id"), body)
    } else if parts.method == Method::POST && CLIENT_LOOKUP_POSTS.contains(&path) {
        // The guard has read OAuth bodies whole and bounded; this reads them
        // again from memory and hands the same bytes on.
        let Ok(bytes) = axum::body::to_bytes(body, OAUTH_BODY_LIMIT).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large").into_response();
        };
        let basic = basic_credentials(&parts.headers).ok().flatten().map(|(id, _)| id);
        (basic.or_else(|| param(&bytes, "client_id")), Body::from(bytes))
    } else {
        (None, body)
    };
    if let Some(client_id) = client_id.filter(|id| is_client_id_url(id) && !state.cimd.is_remembered(id)) {
        let ip = client_ip(&state.security.trusted_proxies, &parts.headers, peer(&parts.extensions));
        let key = format!("client-id-fetch:{}", counter_key(ip));
        let max = state.security.client_id_fetches_per_minute;
        if let Err(response) = limit(&state, key, max, 60, "client-id document fetches").await {
            tracing::info!(client_id, "client-id document fetch refused: too many from this address");
            return response;
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

fn param(form: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(form).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}
