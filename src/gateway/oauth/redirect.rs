//! Where the browser goes next, and how it is described: the 302s back to the
//! client's redirect URI (with `code` or `error`, plus `state` and `iss`), and
//! the redirect URI's host and CSP source as the consent screen shows and
//! allows them. Both the authorize and the consent handlers send the browser
//! back, so this lives apart from either.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use super::PageError;
use crate::gateway::state::AppState;

/// Sends the browser back to the client with an OAuth error (RFC 6749
/// 4.1.2.1), including `state` and `iss` (RFC 9207).
pub(super) fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    error: &str,
    description: &str,
    client_state: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(client_state) = client_state {
        pairs.push(("state", client_state));
    }
    pairs.push(("iss", state.public_url.as_str()));
    redirect_with(redirect_uri, &pairs)
}

/// A 302 to `uri` with `pairs` appended to its query.
pub(super) fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in pairs {
                    query.append_pair(key, value);
                }
            }
            found(url.as_str())
        }
        Err(err) => PageError::internal(format!("stored redirect URI is unparsable: {err}")).into_response(),
    }
}

/// 302 Found (browsers follow it with GET, also after a form POST).
pub(super) fn found(location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// Whether a presented redirect URI matches a registered one: exactly, or,
/// for a loopback IP literal over http, on any port (RFC 8252 7.3: a native
/// app picks its port when it starts). `localhost` is not given that
/// latitude (8.3: the name may resolve elsewhere).
pub(crate) fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(mut presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback_ip = |url: &Url| {
        url.scheme() == "http"
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    if !loopback_ip(&registered) || !loopback_ip(&presented) {
        return false;
    }
    if presented.set_port(registered.port()).is_err() {
        return false;
    }
    presented == registered
}

/// The origin a redirect goes to, as a CSP source: `https://host:port` or, for
/// a private-use scheme, `scheme:`.
pub(super) fn redirect_csp_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

/// What the consent screen shows as the destination.
pub(super) fn redirect_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) => match (url.scheme(), url.host_str()) {
            ("http" | "https", Some(host)) => match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            (scheme, Some(host)) if !host.is_empty() => format!("{scheme}://{host}"),
            (scheme, _) => format!("{scheme}: (an app on this device)"),
        },
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redirect_csp_source, redirect_host, redirect_matches};

    #[test]
    fn loopback_ip_redirects_match_any_port() {
        assert!(redirect_matches("http://127.0.0.1/callback", "http://127.0.0.1:49152/callback"));
        assert!(redirect_matches("http://127.0.0.1:33418/callback", "http://127.0.0.1:5000/callback"));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:8080/cb"));
        assert!(!redirect_matches("http://127.0.0.1/callback", "http://127.0.0.1:49152/other"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:1/cb?x=1"));
        assert!(!redirect_matches("http://localhost/cb", "http://localhost:8080/cb"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example:8443/cb"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://[::1]:80/cb"));
    }

    #[test]
    fn csp_sources_and_hosts() {
        assert_eq!(redirect_csp_source("http://127.0.0.1:5555/cb").unwrap(), "http://127.0.0.1:5555");
        assert_eq!(redirect_csp_source("cursor://x/cb").unwrap(), "cursor:");
        assert_eq!(redirect_host("https://app.example.com/cb"), "app.example.com");
        assert_eq!(redirect_host("http://127.0.0.1:5555/cb"), "127.0.0.1:5555");
        assert!(redirect_host("com.example.app:/cb").starts_with("com.example.app:"));
    }
}
