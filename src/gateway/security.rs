//! Defences in front of the OAuth endpoints and the MCP routes: the
//! `Origin`/`Host` checks that stop DNS rebinding, per-IP rate limits counted
//! in the store (so replicas share them), and bounded, deadlined body reads on
//! the OAuth `POST` endpoints.
//!
//! The MCP transport spec requires a server to validate `Origin`: the gateway
//! is the server its clients see and it rewrites `Host` for the upstream, so
//! no upstream can do it. Native clients send no `Origin` and pass; a browser
//! page may call only from the gateway's own origin or an allowed one.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::state::AppState;
use super::store::now;

/// Largest body an OAuth endpoint reads (registration included: 20 redirect
/// URIs of 2 KB fit with room for the rest).
pub(crate) const OAUTH_BODY_LIMIT: usize = 16 * 1024;
/// Longest redirect URI a client may register.
pub(crate) const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Longest `state`, `scope` or `resource` an authorization request may carry:
/// they are stored with the pending login.
pub(crate) const MAX_AUTHORIZE_PARAM_LEN: usize = 1024;

/// Security options; [`Default`] is what an operator gets without flags.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// Origins (`scheme://host[:port]`) besides the public URL's that browser
    /// clients may call from (e.g. MCP Inspector's `http://localhost:6274`).
    pub allowed_origins: Vec<String>,
    /// Set when the gateway listens on loopback only: then `Host` must name
    /// loopback (or the public URL's host), which defeats DNS rebinding.
    pub loopback_only: bool,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front).
    pub trusted_proxies: Vec<Cidr>,
    /// Registrations per client IP per minute.
    pub register_per_minute: u64,
    /// Authorization requests per client IP per minute.
    pub authorize_per_minute: u64,
    /// Logins a client may have pending (browser at the IdP) at once.
    pub pending_logins_per_client: u64,
    /// A registration never used for a login this long is deleted.
    pub unused_registration_ttl: Duration,
    /// A refresh-token family ends this long after the login, whatever its
    /// rotations.
    pub refresh_family_lifetime: Duration,
    /// How long an OAuth endpoint waits for a request body.
    pub body_read_timeout: Duration,
    /// `/metrics` is served on its own address (`--metrics-listen`), not on
    /// the public one.
    pub metrics_separate: bool,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            loopback_only: false,
            trusted_proxies: Vec::new(),
            register_per_minute: 20,
            authorize_per_minute: 120,
            pending_logins_per_client: 50,
            unused_registration_ttl: Duration::from_secs(7 * 24 * 3600),
            refresh_family_lifetime: Duration::from_secs(30 * 24 * 3600),
            body_read_timeout: Duration::from_secs(10),
            metrics_separate: false,
        }
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let bad = || format!("`{value}` is not an IP network; use e.g. 10.0.0.0/8, 192.168.1.5 or ::1/128");
        let (address, prefix) = match value.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (value.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The TCP peer of a request, when it came through a listener.
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// Whether the peer is a configured reverse proxy, whose `X-Forwarded-*`
/// headers are believed.
pub(crate) fn from_trusted_proxy(state: &AppState, peer: Option<IpAddr>) -> bool {
    peer.is_some_and(|ip| state.security.trusted_proxies.iter().any(|net| net.contains(ip)))
}

/// The client's address: the peer, or behind trusted proxies the rightmost
/// `X-Forwarded-For` entry that is not one of them (entries further left
/// are the client's own claims).
pub(crate) fn client_ip(state: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> Option<IpAddr> {
    let peer = peer(extensions);
    if !from_trusted_proxy(state, peer) {
        return peer;
    }
    let chain = headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>();
    let hops = chain.iter().flat_map(|value| value.split(',')).map(str::trim).collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { return peer };
        if !from_trusted_proxy(state, Some(ip)) {
            return Some(ip);
        }
    }
    peer
}

/// Why a request is refused as a possible DNS-rebinding or cross-site call,
/// or `None` when it may go on.
pub(crate) fn rebinding_refusal(state: &AppState, headers: &HeaderMap) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().ok().map(|origin| origin.trim_end_matches('/')).is_some_and(|origin| {
            origin.eq_ignore_ascii_case(&state.public_url)
                || state.security.allowed_origins.iter().any(|allowed| origin.eq_ignore_ascii_case(allowed))
        });
        if !allowed {
            return Some("the Origin is neither the gateway's public URL nor an allowed origin");
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
        Err(err) => Err(super::oauth::OAuthError::Store(err).into_response()),
    }
}

fn is_oauth_post(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path, "/oauth/register" | "/oauth/token" | "/oauth/revoke" | "/oauth/consent")
}

/// The router-level guard of the OAuth endpoints: rebinding checks on the
/// `POST` endpoints, per-IP limits on registration and authorization, and
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
        _ => None,
    };
    if let Some((kind, max, what)) = per_ip {
        let ip = client_ip(&state, request.headers(), request.extensions());
        let key = format!("{kind}:{}", ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()));
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
    use super::{Cidr, is_loopback_host};

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
}

/// `Mcp-Session-Id` binding. The client sees `{upstream id}.{tag}`, the tag
/// an HMAC of the subject, the client and the upstream's id under a key
/// derived from the signing key (so every replica computes the same tag and
/// nothing is stored). A request whose token belongs to another subject or
/// client cannot present the session: the tag does not match and it is
/// answered 404, as for an unknown session.
pub(crate) mod session {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::{Digest, Sha256};

    /// The binding key from the stored signing key.
    pub(crate) fn key(signing_key: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"cognigate mcp-session-id binding\0");
        hasher.update(signing_key.as_bytes());
        hasher.finalize().into()
    }

    /// HMAC-SHA256 (RFC 2104) of the owner and the id, truncated to 128 bits.
    fn tag(key: &[u8; 32], subject: &str, client_id: &str, id: &str) -> String {
        let mut inner_pad = [0x36u8; 64];
        let mut outer_pad = [0x5cu8; 64];
        for (i, byte) in key.iter().enumerate() {
            inner_pad[i] ^= byte;
            outer_pad[i] ^= byte;
        }
        let mut inner = Sha256::new();
        inner.update(inner_pad);
        for part in [subject, client_id, id] {
            inner.update((part.len() as u64).to_be_bytes());
            inner.update(part.as_bytes());
        }
        let mut outer = Sha256::new();
        outer.update(outer_pad);
        outer.update(inner.finalize());
        URL_SAFE_NO_PAD.encode(&outer.finalize()[..16])
    }

    /// The id the client is given for the upstream's `id`.
    pub(crate) fn bind(key: &[u8; 32], subject: &str, client_id: &str, id: &str) -> String {
        format!("{id}.{}", tag(key, subject, client_id, id))
    }

    /// The upstream's id inside a bound id, when `subject` and `client_id`
    /// own it.
    pub(crate) fn unbind<'a>(key: &[u8; 32], subject: &str, client_id: &str, bound: &'a str) -> Option<&'a str> {
        let (id, presented) = bound.rsplit_once('.')?;
        let expected = tag(key, subject, client_id, id);
        crate::gateway::crypto::constant_time_eq(presented.as_bytes(), expected.as_bytes()).then_some(id)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn bound_to_subject_and_client() {
            let key = super::key("seed");
            let bound = super::bind(&key, "alice", "c1", "abc.def");
            assert_eq!(super::unbind(&key, "alice", "c1", &bound), Some("abc.def"));
            assert_eq!(super::unbind(&key, "mallory", "c1", &bound), None);
            assert_eq!(super::unbind(&key, "alice", "c2", &bound), None);
            assert_eq!(super::unbind(&super::key("other"), "alice", "c1", &bound), None);
            assert_eq!(super::unbind(&key, "alice", "c1", "abc"), None);
        }
    }
}
