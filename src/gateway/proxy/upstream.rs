//! The HTTP client for upstream MCP servers: hyper's pooled client, http and
//! https (rustls, the platform's trust store), HTTP/1.1, one per serving
//! thread. hyper rather than reqwest on this path: a proxy needs neither
//! redirects nor URL handling per request, and both showed in the profile.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Waiting this long for upstream response headers is a failure, unless
/// `--upstream-timeout` says otherwise. Generous: a JSON-mode `tools/call`
/// answers only when the tool is done.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
static RESPONSE_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the response-header timeout once, at boot (later calls are ignored:
/// one process serves one configuration).
pub(crate) fn set_response_timeout(timeout: Duration) {
    let _ = RESPONSE_TIMEOUT.set(timeout);
}

type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

fn client() -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_platform_verifier()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(https)
}

thread_local! {
    /// This thread's upstream client. A pool shared by all threads hands a
    /// connection made (and driven) on one thread to a request on another,
    /// and every request then costs cross-thread wake-ups; per-thread pools
    /// keep a request and its upstream connection on one core.
    static UPSTREAM: UpstreamClient = client();
}

/// Sends on this thread's client and waits for the response headers; the
/// body streams afterwards. The response future owns what it needs, so the
/// client is borrowed, not cloned, per request. The error is one line with
/// its causes, for the log.
pub(super) async fn send(
    request: axum::http::Request<Body>,
) -> Result<axum::http::Response<hyper::body::Incoming>, String> {
    let pending = UPSTREAM.with(|client| client.request(request));
    let timeout = RESPONSE_TIMEOUT.get().copied().unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    tokio::time::timeout(timeout, pending)
        .await
        .map_err(|_| "timed out waiting for response headers".to_owned())?
        .map_err(|err| error_chain(&err))
}

/// An error and its sources on one line (hyper's top-level message alone is
/// just "client error (Connect)").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
