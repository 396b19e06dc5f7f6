//! The HTTP client for upstream MCP servers: HTTP/1.1 over http or https
//! (rustls, the platform's trust store), with a keep-alive pool per serving
//! thread.
//!
//! The pool is this module's own, on hyper's connection API, rather than
//! hyper-util's pooled client: on the hot path that client spawned a task and
//! a channel per request to hand the connection back, took a lock and hashed
//! the pool key, and rebuilt the URI into origin form, all showing in the
//! profile. Here a request takes an idle connection of its upstream from a
//! short per-thread list, sends on it, and the response body puts it back
//! when it ends. A connection made (and driven) on one thread is only used
//! there, so a request and its upstream connection stay on one core.
//!
//! A `GET` without a body (the stream an MCP server pushes its messages on,
//! held open for as long as the client listens) is not pooled: it goes over
//! a connection of its own, read by [`stream`], which costs far less memory
//! per held stream than a hyper client connection.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderValue, Method, Request, Response, Uri, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower_service::Service;

use crate::gateway::error_chain;

mod stream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections older than this are closed rather than reused (servers
/// commonly close theirs after 60–75 s; reusing one they are closing fails).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle connections kept per upstream and thread.
const POOL_MAX_IDLE: usize = 256;
/// Waiting this long for upstream response headers is a failure, unless
/// `--upstream-timeout` says otherwise. Generous: a JSON-mode `tools/call`
/// answers only when the tool is done.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
/// Response bodies are read in buffers of this size. Small, because an open
/// SSE stream keeps its buffer for as long as it lives and its events are
/// small; large JSON bodies just take a few more reads.
const READ_BUFFER: usize = 4096;
static RESPONSE_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the response-header timeout once, at boot (later calls are ignored:
/// one process serves one configuration).
pub(crate) fn set_response_timeout(timeout: Duration) {
    let _ = RESPONSE_TIMEOUT.set(timeout);
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

fn connector() -> Connector {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_platform_verifier()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// One upstream's idle connections (most recently used last), and its
/// `Host` header, made once rather than per request.
struct Idle {
    scheme: Scheme,
    authority: Authority,
    host: Option<HeaderValue>,
    connections: Vec<(SendRequest<Body>, Instant)>,
}

/// The pool's entry for this upstream, made on first use.
fn entry<'a>(pool: &'a mut Pool, scheme: &Scheme, authority: &Authority) -> &'a mut Idle {
    let index = match pool.upstreams.iter().position(|idle| same_upstream(idle, scheme, authority)) {
        Some(index) => index,
        None => {
            pool.upstreams.push(Idle {
                scheme: scheme.clone(),
                authority: authority.clone(),
                host: HeaderValue::from_str(authority.as_str()).ok(),
                connections: Vec::new(),
            });
            pool.upstreams.len() - 1
        }
    };
    &mut pool.upstreams[index]
}

/// The `Host` header for this upstream.
fn host(scheme: &Scheme, authority: &Authority) -> Option<HeaderValue> {
    POOL.with_borrow_mut(|pool| entry(pool, scheme, authority).host.clone())
}

#[derive(Default)]
struct Pool {
    connector: Option<Connector>,
    upstreams: Vec<Idle>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

fn same_upstream(idle: &Idle, scheme: &Scheme, authority: &Authority) -> bool {
    idle.authority == *authority && idle.scheme == *scheme
}

/// An idle, open connection to this upstream, if the pool has one.
fn checkout(scheme: &Scheme, authority: &Authority) -> Option<SendRequest<Body>> {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.upstreams.iter_mut().find(|idle| same_upstream(idle, scheme, authority))?;
        while let Some((sender, since)) = idle.connections.pop() {
            if !sender.is_closed() && since.elapsed() < POOL_IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    })
}

fn checkin(scheme: &Scheme, authority: &Authority, sender: SendRequest<Body>) {
    if sender.is_closed() {
        return;
    }
    POOL.with_borrow_mut(|pool| {
        let connections = &mut entry(pool, scheme, authority).connections;
        if connections.len() < POOL_MAX_IDLE {
            connections.push((sender, Instant::now()));
        }
    });
}

/// A new connection (TCP, and TLS for https) to the upstream of `uri`.
async fn open(uri: &Uri) -> Result<MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>, String> {
    let mut connector = POOL.with_borrow_mut(|pool| pool.connector.get_or_insert_with(connector).clone());
    std::future::poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|err| format!("cannot connect: {}", error_chain(&*err)))?;
    connector.call(uri.clone()).await.map_err(|err| format!("cannot connect: {}", error_chain(&*err)))
}

/// A new connection to the upstream of `uri`, driven by a task on this thread.
async fn connect(uri: &Uri) -> Result<SendRequest<Body>, String> {
    let io = open(uri).await?;
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .read_buf_exact_size(Some(READ_BUFFER))
        .handshake(io)
        .await
        .map_err(|err| error_chain(&err))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// Sends `request` (an absolute URI) and waits for the response headers; the
/// body streams afterwards, and its connection returns to the pool when it
/// ends. The error is one line with its causes, for the log.
pub(super) async fn send(request: Request<Body>) -> Result<Response<Body>, String> {
    let timeout = RESPONSE_TIMEOUT.get().copied().unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    tokio::time::timeout(timeout, send_pooled(request))
        .await
        .map_err(|_| "timed out waiting for response headers".to_owned())?
}

async fn send_pooled(request: Request<Body>) -> Result<Response<Body>, String> {
    let (mut parts, body) = request.into_parts();
    let absolute = parts.uri.clone();
    let (Some(scheme), Some(authority)) = (absolute.scheme().cloned(), absolute.authority().cloned()) else {
        return Err(format!("the upstream URI {absolute} is not absolute"));
    };
    // HTTP/1.1 sends the path and query, with the authority in Host.
    parts.uri = absolute.path_and_query().map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
    if !parts.headers.contains_key(header::HOST) {
        let host = host(&scheme, &authority).ok_or("the upstream authority is not a valid Host")?;
        parts.headers.insert(header::HOST, host);
    }
    if parts.method == Method::GET && hyper::body::Body::is_end_stream(&body) {
        // Boxed: rare next to POSTs, and its future would grow theirs.
        return Box::pin(send_stream(&absolute, parts)).await;
    }
    let mut request = Request::from_parts(parts, body);
    // A pooled connection may have been closed by the upstream in the
    // meantime: a request it did not take is retried on the next one (the
    // pool is finite); a new connection gets no second chance.
    loop {
        let (mut sender, fresh) = match checkout(&scheme, &authority) {
            Some(sender) => (sender, false),
            // Boxed: connecting is rare on a warm pool, and inline its
            // future would make every request's future several KiB.
            None => (Box::pin(connect(&absolute)).await?, true),
        };
        if let Err(err) = sender.ready().await {
            if fresh {
                return Err(error_chain(&err));
            }
            continue;
        }
        match sender.try_send_request(request).await {
            Ok(response) => return Ok(response.map(|body| Body::new(Pooled::new(body, sender, scheme, authority)))),
            Err(mut err) => match err.take_message() {
                Some(unsent) if !fresh => request = unsent,
                _ => return Err(error_chain(err.error())),
            },
        }
    }
}

/// Sends a request without a body over a connection of its own (see
/// [`stream`]); the connection closes when the response body ends or is
/// dropped.
async fn send_stream(absolute: &Uri, parts: axum::http::request::Parts) -> Result<Response<Body>, String> {
    let io = match open(absolute).await? {
        MaybeHttpsStream::Http(tcp) => stream::Io::Plain(tcp.into_inner()),
        MaybeHttpsStream::Https(tls) => stream::Io::Other(Box::new(tls.into_inner())),
    };
    stream::exchange(io, &parts).await.map_err(|err| error_chain(&err))
}

/// An upstream response body that hands its connection back to the pool
/// once it has been read to the end (a body dropped early closes it).
struct Pooled {
    body: Incoming,
    connection: Option<(SendRequest<Body>, Scheme, Authority)>,
}

impl Pooled {
    fn new(body: Incoming, sender: SendRequest<Body>, scheme: Scheme, authority: Authority) -> Self {
        let mut pooled = Self { body, connection: Some((sender, scheme, authority)) };
        if hyper::body::Body::is_end_stream(&pooled.body) {
            pooled.release();
        }
        pooled
    }

    fn release(&mut self) {
        if let Some((sender, scheme, authority)) = self.connection.take() {
            checkin(&scheme, &authority, sender);
        }
    }
}

impl hyper::body::Body for Pooled {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.connection = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
