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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Largest request head (request line and headers) read; larger gets 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Per-connection limits of a serving thread.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, and to start its next
    /// request on a keep-alive connection.
    pub header_read_timeout: Duration,
    /// Connections this thread keeps open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(30), max_connections: 10_000 }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then lets open
/// requests finish (connections close once idle) and returns when none is
/// left.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    router: Router,
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
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, stop).await;
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
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(Body::new))
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
