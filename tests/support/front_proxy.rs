//! A reverse proxy in front of the gateway, as a load balancer would be, that
//! answers 404 for chosen paths (to hide a discovery document) and records
//! every path asked for. Bodies stream both ways (SSE passes).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use futures_util::StreamExt;

struct Shared {
    upstream: String,
    blocked: Vec<String>,
    paths: Mutex<Vec<String>>,
    client: reqwest::Client,
}

pub struct FrontProxy {
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl FrontProxy {
    /// Listens on 127.0.0.1:`port` and forwards to `upstream` (an origin),
    /// except `blocked` paths.
    pub fn start(port: u16, upstream: &str, blocked: &[&str]) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            blocked: blocked.iter().map(|p| (*p).to_owned()).collect(),
            paths: Mutex::new(Vec::new()),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        });
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port))).expect("bind front proxy");
        let app = Router::new().fallback(forward).with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { shared, _runtime: runtime }
    }

    /// Every path asked for, in order.
    pub fn paths(&self) -> Vec<String> {
        self.shared.paths.lock().unwrap().clone()
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    shared.paths.lock().unwrap().push(uri.path().to_owned());
    if shared.blocked.iter().any(|blocked| blocked == uri.path()) {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("blocked")).expect("404");
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = shared.client.request(method, format!("{}{path}", shared.upstream)).body(body);
    for (name, value) in &headers {
        if name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(response) => {
            let mut builder = Response::builder().status(response.status());
            for (name, value) in response.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    builder = builder.header(name, value);
                }
            }
            let stream = response.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
            builder.body(Body::from_stream(stream)).expect("proxied response")
        }
        Err(e) => {
            Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(e.to_string())).expect("error response")
        }
    }
}
