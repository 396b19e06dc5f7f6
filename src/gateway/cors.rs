//! CORS for the endpoints browser-based MCP clients call with `fetch` (MCP
//! Inspector, web IDEs): discovery, registration, token, revocation and the
//! MCP routes. Any origin is allowed and no credentials are: these endpoints
//! authenticate with explicit bearer tokens or client credentials, never with
//! cookies. The browser-navigation endpoints (authorize, callback, consent)
//! get no CORS headers at all, so no script can read the consent page.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id";
const EXPOSE_HEADERS: &str = "mcp-session-id, mcp-protocol-version, www-authenticate";

fn is_cors_path(path: &str) -> bool {
    path.starts_with("/.well-known/")
        || path.starts_with("/mcp/")
        || matches!(path, "/oauth/register" | "/oauth/token" | "/oauth/revoke" | "/oauth/jwks")
}

pub(crate) async fn cors(request: Request, next: Next) -> Response {
    if !is_cors_path(request.uri().path()) || !request.headers().contains_key(header::ORIGIN) {
        return next.run(request).await;
    }
    let mut response = match preflight(&request) {
        Some(response) => response,
        None => next.run(request).await,
    };
    allow_origin(&mut response);
    response
}

/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`).
pub(crate) fn preflight(request: &Request) -> Option<Response> {
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !is_preflight {
        return None;
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    Some(response)
}

pub(crate) fn allow_origin(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
}
