//! A proxy in front of moto that records every AWS operation and can inject
//! faults: an error answer (throttling, a failed create) for a named operation,
//! a given number of times. The CLI is pointed at it with `--endpoint-url`.
//!
//! Operations are read from the `X-Amz-Target` header of the AWS JSON protocol
//! (`AWSCognitoIdentityProviderService.CreateUserPool`).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};

#[derive(Clone, Debug)]
pub struct Fault {
    pub operation: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// How many matching calls still fail.
    pub remaining: usize,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<String>>,
    faults: Mutex<Vec<Fault>>,
}

pub struct AwsProxy {
    url: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

/// Operations that change nothing.
pub fn is_read_only(operation: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|p| operation.starts_with(p))
}

impl AwsProxy {
    pub fn start(upstream: &str) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let shared = Arc::new(Shared::default());
        let state = (shared.clone(), upstream.trim_end_matches('/').to_owned(), reqwest::Client::new());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let app = Router::new().fallback(forward).with_state(state);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { url, shared, _runtime: runtime }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every operation seen, in order (retries count as separate calls).
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls.lock().unwrap().clone()
    }

    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls().into_iter().filter(|op| !is_read_only(op)).collect()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|op| *op == operation).count()
    }

    pub fn reset(&self) {
        self.shared.calls.lock().unwrap().clear();
    }

    /// The next `times` calls of `operation` answer `status` with an AWS error body.
    pub fn fail(&self, operation: &str, status: u16, code: &str, message: &str, times: usize) {
        self.shared.faults.lock().unwrap().push(Fault {
            operation: operation.into(),
            status,
            code: code.into(),
            message: message.into(),
            remaining: times,
        });
    }
}

type ProxyState = (Arc<Shared>, String, reqwest::Client);

async fn forward(
    State((shared, upstream, client)): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('.').next())
        .unwrap_or("(none)")
        .to_owned();
    shared.calls.lock().unwrap().push(operation.clone());

    let injected = {
        let mut faults = shared.faults.lock().unwrap();
        faults.iter_mut().find(|f| f.operation == operation && f.remaining > 0).map(|f| {
            f.remaining -= 1;
            f.clone()
        })
    };
    if let Some(fault) = injected {
        let body = serde_json::json!({ "__type": fault.code, "message": fault.message }).to_string();
        return Response::builder()
            .status(StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", fault.code)
            .body(Body::from(body))
            .expect("fault response");
    }

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = client.request(method, format!("{upstream}{path}")).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
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
            let bytes = response.bytes().await.unwrap_or_default();
            builder.body(Body::from(bytes)).expect("proxied response")
        }
        Err(e) => {
            Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(e.to_string())).expect("error response")
        }
    }
}
