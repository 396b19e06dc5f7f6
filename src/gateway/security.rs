//! Defences in front of the OAuth endpoints and the MCP routes: the
//! `Origin`/`Host` checks that stop DNS rebinding, per-IP rate limits counted
//! in the store (so replicas share them), and bounded, deadlined body reads on
//! the OAuth `POST` endpoints.
//!
//! The MCP transport spec requires a server to validate `Origin`: the gateway
//! is the server its clients see and it rewrites `Host` for the upstream, so
//! no upstream can do it. Native clients send no `Origin` and pass; a browser
//! page may call only from the gateway's own origin or an allowed one, or,
//! when the public URL is itself loopback, from any loopback origin (MCP
//! Inspector and other local tools pick their own ports, and the MCP
//! conformance suite expects any localhost port to pass).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_address::{client_ip, counter_key, peer};
pub(crate) use super::options::SecurityOptions;
use super::state::AppState;
use super::store::now;

/// Largest body an OAuth endpoint reads (registration included: 20 redirect
/// URIs of 2 KB fit with room for the rest).
pub(crate) const OAUTH_BODY_LIMIT: usize = 16 * 1024;
/// Longest `state`, `scope` or `resource` an authorization request may carry:
/// they are stored with the pending login.
pub(crate) const MAX_AUTHORIZE_PARAM_LEN: usize = 1024;

/// Why a request is refused as a possible DNS-rebinding or cross-site call,
/// or `None` when it may go on.
pub(crate) fn rebinding_refusal(state: &AppState, headers: &HeaderMap) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().ok().map(|origin| origin.trim_end_matches('/')).is_some_and(|origin| {
            origin.eq_ignore_ascii_case(&state.public_url)
                || state.security.allowed_origins.iter().any(|allowed| origin.eq_ignore_ascii_case(allowed))
                || (state.public_url_is_loopback && is_loopback_origin(origin))
        });
        if !allowed {
            return Some("the Origin is neither the gateway's public URL nor an allowed origin (--allowed-origin)");
        }
    }
    if state.security.loopback_only
        && let Some(host) = headers.get(header::HOST)
    {
        let host = host.to_str().unwrap_or_default();
        if !host.eq_ignore_ascii_case(&state.forwarded_host_text) && !is_loopback_host(host) {
            return Some("the gateway listens on loopback and the Host is not a loopback name");
        }
    }
    None
}

/// An `Origin` of a page served from this machine: http(s), a loopback host
/// and any port, nothing else (an `Origin` never has a path or user).
fn is_loopback_origin(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    !host.contains(['/', '@', '?', '#']) && is_loopback_host(host)
}

/// `localhost`, `*.localhost`, `127.x.x.x` or `[::1]`, with any port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }),
    };
    // Compared without lowercasing a copy: this runs on every proxied request.
    let name = name.trim_end_matches('.');
    let suffix = name.len().checked_sub(".localhost".len()).and_then(|at| name.get(at..));
    name.eq_ignore_ascii_case("localhost")
        || suffix.is_some_and(|suffix| suffix.eq_ignore_ascii_case(".localhost"))
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn forbidden(reason: &'static str) -> Response {
    tracing::info!(reason, "request refused (403)");
    let mut response =
        (StatusCode::FORBIDDEN, axum::Json(json!({"error": "forbidden", "error_description": reason}))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 429 with `Retry-After` (seconds) and an OAuth-shaped body.
pub(crate) fn too_many(retry_after: i64, what: &str) -> Response {
    tracing::info!(what, retry_after, "rate limit reached (429)");
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"error": "too_many_requests", "error_description": format!("too many {what}; retry later")})),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Counts a hit on `key` in a one-minute window: `Err` with the 429 to send
/// when more than `limit` hits fell in it (or the store failed).
pub(crate) async fn limit(state: &AppState, key: String, limit: u64, window: i64, what: &str) -> Result<(), Response> {
    let at = now();
    let window = window.max(1);
    let (index, window_end) = (at / window, (at / window + 1) * window);
    let key = format!("{key}:{index}");
    match state.store.run(move |store| store.count_request(&key, window_end, at)).await {
        Ok(count) if count <= limit => Ok(()),
        Ok(_) => Err(too_many(window - at.rem_euclid(window), what)),
        Err(err) => Err(super::oauth_error::OAuthError::Store(err).into_response()),
    }
}

fn is_oauth_post(method: &Method, path: &str) -> bool {
    method == Method::POST
        && matches!(
            path,
            "/oauth/register"
                | "/oauth/token"
                | "/oauth/revoke"
                | "/oauth/consent"
                | "/oauth/device_authorization"
                | "/oauth/device"
                | "/oauth/upstream/connect"
        )
}

/// The router-level guard of the OAuth endpoints: rebinding checks on the
/// `POST` endpoints, per-IP limits on registration and authorization (device
/// authorization included), and
/// their bodies read whole, bounded in size and time, before a handler runs.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_post = is_oauth_post(request.method(), path);
    if is_post && let Some(reason) = rebinding_refusal(&state, request.headers()) {
        return forbidden(reason);
    }
    let per_ip = match (request.method() == Method::POST, path) {
        (true, "/oauth/register") => Some(("register", state.security.register_per_minute, "registrations")),
        (false, "/oauth/authorize") => {
            Some(("authorize", state.security.authorize_per_minute, "authorization requests"))
        }
        // A connect link starts a sign-in (a pending login) as authorize does.
        (false, "/oauth/upstream/connect") => {
            Some(("upstream-connect", state.security.authorize_per_minute, "connect requests"))
        }
        // Each one stores a device authorization, as each authorize request
        // stores a pending login: the same budget, counted apart.
        (true, "/oauth/device_authorization") => {
            Some(("device-authorization", state.security.authorize_per_minute, "device authorization requests"))
        }
        _ => None,
    };
    if let Some((kind, max, what)) = per_ip {
        let peer = peer(request.extensions());
        let ip = client_ip(&state.security.trusted_proxies, request.headers(), peer);
        let key = format!("{kind}:{}", counter_key(ip));
        if let Err(response) = limit(&state, key, max, 60, what).await {
            return response;
        }
    }
    if !is_post {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(state.security.body_read_timeout, axum::body::to_bytes(body, OAUTH_BODY_LIMIT));
    match read.await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(_)) => closing(payload_error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large")),
        Err(_) => closing(payload_error(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time")),
    }
}

fn payload_error(status: StatusCode, description: &str) -> Response {
    tracing::info!(status = status.as_u16(), description, "request body refused");
    (status, axum::Json(json!({"error": "invalid_request", "error_description": description}))).into_response()
}

/// The rest of an unread body may still be on the wire: close the connection.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::{is_loopback_host, is_loopback_origin};
    use crate::gateway::client_address::Cidr;

    #[test]
    fn cidrs() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: Cidr = "192.168.1.5".parse().unwrap();
        assert!(one.contains("192.168.1.5".parse().unwrap()));
        assert!(!one.contains("192.168.1.6".parse().unwrap()));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x/8", "", "10.0.0.0/"] {
            assert!(bad.parse::<Cidr>().unwrap_err().contains("e.g."), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for ok in ["localhost", "localhost:9000", "127.0.0.1:1", "[::1]:9000", "app.localhost", "LOCALHOST."] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example.com", "evil.example.com:9000", "10.0.0.1", "localhost.evil.com", "[::2]:1"] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_origins() {
        for ok in ["http://localhost:6274", "http://127.0.0.1:5173", "https://[::1]:8443", "http://localhost"] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://evil.example.com",
            "http://localhost.evil.com:1",
            "http://user@localhost:1",
            "null",
            "ftp://localhost",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }
}
