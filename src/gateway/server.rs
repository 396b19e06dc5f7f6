//! The HTTP/1.1 server loop of one serving thread, with the limits a server
//! on the open internet needs: a deadline for request headers (hyper arms it
//! whenever it waits for a request, so it also closes idle keep-alive
//! connections), a bound on the size of the request head, and a cap on open
//! connections. `axum::serve` runs hyper without a timer, so none of these
//! hold there: a few thousand clients trickling a byte a minute would hold
//! their sockets forever.
//!
//! A connection past the cap is accepted and closed at once: the kernel's
//! backlog is not left to fill, and the clients already served are not slowed.
//!
//! Requests for `/mcp/{slug}` go straight to the proxy handler when the
//! server is given the gateway's state: the router would only match the path,
//! box the handler's future, clone the state and record the matched path and
//! parameters, none of which the proxy uses (it sits outside the middleware
//! stack anyway). Every other path goes through the router.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::gateway::state::AppState;

/// Largest request head (request line, headers, blank line); larger gets
/// 431. Checked on the parsed head; hyper's read buffer is bounded by it too,
/// which stops a head that never ends. hyper also refuses more than 100
/// header fields (431), its default.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Per-connection limits of a serving thread.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, and to start its next
    /// request on a keep-alive connection.
    pub(crate) header_read_timeout: Duration,
    /// Connections this thread keeps open at once.
    pub(crate) max_connections: usize,
}

impl ConnectionLimits {
    pub fn new(header_read_timeout: Duration, max_connections: usize) -> Self {
        Self { header_read_timeout, max_connections }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(30), max_connections: 10_000 }
    }
}

/// What a serving thread answers with: the router, and (for the gateway's
/// main listeners) the state whose proxy route is called directly.
#[derive(Clone)]
pub(crate) struct App {
    router: Router,
    proxy: Option<AppState>,
}

impl App {
    /// `router` for everything, with `/mcp/{slug}` served by the proxy on
    /// `state` without going through the router.
    pub(crate) fn with_proxy(router: Router, state: AppState) -> Self {
        Self { router, proxy: Some(state) }
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self { router, proxy: None }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then lets open
/// requests finish (connections close once idle) and returns when none is
/// left.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_app(listener, router.into(), limits, stop).await
}

/// [`serve_listener`] for an [`App`], whose proxy route may skip the router.
pub(crate) async fn serve_app(
    listener: tokio::net::TcpListener,
    app: App,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let open = Arc::new(Semaphore::new(max));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors or a connection reset before accept:
                // pause briefly rather than spin, and keep serving.
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_connections = max, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, stop).await;
            drop(permit);
        });
    }
    // Every connection holds a permit until it ends.
    let _ = open.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)).await;
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: App,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        if head_size(&request) > MAX_HEAD_BYTES {
            return Either::Left(Either::Left(std::future::ready(Ok(head_too_large()))));
        }
        let proxy = app.proxy.as_ref().filter(|_| is_proxy_path(request.uri().path()));
        match proxy {
            // Boxed, as the router boxes its handlers: hyper keeps the
            // allocation of a connection's request future for as long as the
            // connection lives, so it must stay small (a held SSE stream
            // would otherwise keep the whole proxy state machine's size).
            Some(state) => {
                Either::Left(Either::Right(Box::pin(proxy_call(state.clone(), request.map(Body::new), peer))))
            }
            None => {
                request.extensions_mut().insert(ConnectInfo(peer));
                Either::Right(app.router.clone().oneshot(request.map(Body::new)))
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        }
    }
}

/// The size of the request head as it came on the wire: request line,
/// header lines and the blank line. hyper's buffer bound (`max_buf_size`)
/// alone is not exact: one read can bring in more than it before the head is
/// parsed, so heads well past it were served.
fn head_size<B>(request: &hyper::Request<B>) -> usize {
    const REQUEST_LINE_EXTRA: usize = " HTTP/1.1\r\n".len() + 1;
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    let uri = request.uri();
    // Without formatting the URI: this runs on every request.
    let origin =
        uri.authority().map_or(0, |authority| authority.as_str().len() + uri.scheme_str().map_or(0, |s| s.len() + 3));
    let target = origin + uri.path_and_query().map_or(1, |path| path.as_str().len());
    request.method().as_str().len() + target + REQUEST_LINE_EXTRA + headers + 2
}

/// 431 for a head past the limit; the connection closes, as hyper does.
fn head_too_large() -> Response {
    let mut response = Response::new(Body::from("request header fields too large\n"));
    *response.status_mut() = axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// `/mcp/{slug}` with one non-empty segment: the paths the router would give
/// the proxy route (anything else, `/mcp/a/b` included, is the router's).
fn is_proxy_path(path: &str) -> bool {
    path.strip_prefix("/mcp/").is_some_and(|slug| !slug.is_empty() && !slug.contains('/'))
}

async fn proxy_call(
    state: AppState,
    request: axum::extract::Request,
    peer: SocketAddr,
) -> Result<Response, Infallible> {
    Ok(crate::gateway::proxy::serve(&state, request, Some(peer.ip())).await)
}

/// Resolves once the stop flag is raised (the guard `wait_for` returns is
/// dropped here: it must not be held across an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn log_end(result: hyper::Result<()>) {
    if let Err(err) = result {
        // Timeouts, resets and malformed requests: the client's doing.
        tracing::debug!(error = %err, "connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::is_proxy_path;

    #[test]
    fn only_one_segment_under_mcp_is_the_proxy_route() {
        assert!(is_proxy_path("/mcp/bench"));
        for path in ["/mcp/", "/mcp", "/mcp/a/b", "/mcp/a/", "/healthz", "/.well-known/oauth-protected-resource/mcp/a"]
        {
            assert!(!is_proxy_path(path), "{path}");
        }
    }
}
