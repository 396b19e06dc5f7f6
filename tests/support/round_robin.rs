//! An HTTP round-robin in front of gateway replicas, as a load balancer
//! without stickiness: each request (not each connection) goes to the next
//! replica, so a client's successive steps land on different processes.
//! Requests and responses pass through unchanged (`Host` included, redirects
//! not followed, bodies streamed both ways), and it records which replica
//! served which request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// (replica index, "METHOD /path") of each request passed on.
pub type Served = Vec<(usize, String)>;

struct Shared {
    backends: Vec<SocketAddr>,
    next: AtomicUsize,
    served: Mutex<Served>,
    client: Client<HttpConnector, Body>,
}

pub struct RoundRobin {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    // Dropped last: stops serving.
    _runtime: tokio::runtime::Runtime,
}

impl RoundRobin {
    /// Listens on 127.0.0.1:`port` and spreads requests over `backends`.
    pub fn start(port: u16, backends: Vec<SocketAddr>) -> RoundRobin {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let shared = Arc::new(Shared { backends, next: AtomicUsize::new(0), served: Mutex::new(Vec::new()), client });
        // The port was picked free before the replicas were configured with
        // it; a short-lived client socket of another test may hold it for a
        // moment since, so the bind is tried again for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port))) {
                Ok(listener) => break listener,
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(err) => panic!("round-robin front cannot listen on {port}: {err}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let router = Router::new().fallback(forward).with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, router).await });
        RoundRobin { addr, shared, _runtime: runtime }
    }

    pub fn served(&self) -> Served {
        self.shared.served.lock().unwrap().clone()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let index = shared.next.fetch_add(1, Ordering::SeqCst) % shared.backends.len();
    let backend = shared.backends[index];
    let (mut parts, body) = request.into_parts();
    shared.served.lock().unwrap().push((index, format!("{} {}", parts.method, parts.uri.path())));
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{backend}{path}").parse().unwrap();
    match shared.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(err) => (StatusCode::BAD_GATEWAY, format!("replica {index} ({backend}): {err}")).into_response(),
    }
}
