//! Upstreams that hang or die, against the real binary: a timeout and a 502,
//! never a stuck worker; SIGTERM drains in-flight requests, then closes the
//! streams still open once the grace period is over, and exits.
//!
//! The upstreams here are raw TCP servers, because their misbehaviour (accept
//! and never answer, die mid-body) is exactly what an HTTP framework would not
//! let a test write.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{Gateway, PUBLIC_URL, Upstream, env_text, now, policies, route};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");
/// Guards the tests against hanging forever; never asserted on.
const GUARD: Duration = Duration::from_secs(60);

/// What a raw upstream does with each connection once it has read a request.
#[derive(Clone, Copy)]
pub(crate) enum Behaviour {
    /// Reads the request, never answers, keeps the connection open.
    Hang,
    /// Reads the request and closes the connection.
    Close,
    /// Promises 100,000 bytes, sends 10, dies.
    DieMidBody,
    /// An SSE stream: one comment, then silence, never ending.
    EndlessStream,
    /// Answers a small JSON body after a second.
    Slow,
}

/// A raw upstream on a free port; `accepted` receives one message per request read.
pub(crate) fn raw_upstream(behaviour: Behaviour) -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_raw(stream, behaviour, &tx));
        }
    });
    (addr, rx)
}

fn serve_raw(mut stream: TcpStream, behaviour: Behaviour, accepted: &mpsc::Sender<()>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let _ = accepted.send(());
    match behaviour {
        Behaviour::Hang => std::thread::sleep(Duration::from_secs(3600)),
        Behaviour::Close => {}
        Behaviour::DieMidBody => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"partial\"",
            );
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(100));
        }
        Behaviour::EndlessStream => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n7\r\n: hi\n\n\n\r\n",
            );
            std::thread::sleep(Duration::from_secs(3600));
        }
        Behaviour::Slow => {
            std::thread::sleep(Duration::from_secs(1));
            let body = r#"{"jsonrpc":"2.0","id":1,"result":{"slow":true}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    }
}

/// The binary on one serving thread (so a stuck worker would block the
/// next request), the given upstream timeout and a 2 s shutdown grace.
struct Process {
    child: Child,
    base: String,
    tokens: cognigate::gateway::AppState,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(routes: Value, upstream_timeout: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policies.json"), policies().to_string()).unwrap();
        std::fs::write(dir.path().join("routes.oas.json"), routes.to_string()).unwrap();
        std::fs::write(dir.path().join(".env"), env_text("127.0.0.1:9".parse().unwrap())).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(BIN)
            .args(["--config-dir", ".", "--env-file", ".env", "--store", "sqlite:gw.db", "--workers", "1"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--public-url", PUBLIC_URL])
            .args(["--upstream-timeout", upstream_timeout, "--shutdown-grace", "2s"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + GUARD;
        while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Same store, same signing key: tokens minted here are the gateway's own.
        let store = cognigate::gateway::SqliteStore::open(&dir.path().join("gw.db")).unwrap();
        let tokens = Gateway::state_with(dir.path(), store.into());
        Self { child, base, tokens, _dir: dir }
    }

    fn token(&self, slug: &str) -> String {
        let jti = format!("jti-{slug}-{}", now());
        let aud = format!("{PUBLIC_URL}/mcp/{slug}");
        self.tokens.mint_access_token("user-sub-1", &aud, "client-x", "openid", now(), 600, jti).unwrap()
    }

    fn post(&self, slug: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .post(format!("{}/mcp/{slug}", self.base))
            .bearer_auth(self.token(slug))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn routes(pairs: &[(&str, String)]) -> Value {
    let paths: serde_json::Map<String, Value> =
        pairs.iter().map(|(slug, upstream)| (format!("/mcp/{slug}"), route(upstream))).collect();
    json!({"paths": paths})
}

async fn assert_jsonrpc_502(response: reqwest::Response) {
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_upstream_is_a_502_after_the_timeout_and_blocks_no_one() {
    let healthy = Upstream::start().await;
    let (hang, accepted) = raw_upstream(Behaviour::Hang);
    let gw = Process::start(
        routes(&[("echo", format!("http://{}/mcp", healthy.addr)), ("hang", format!("http://{hang}/mcp"))]),
        "1s",
    )
    .await;

    let hanging = tokio::spawn(gw.post("hang").send());
    accepted.recv_timeout(GUARD).expect("the request reached the hanging upstream");
    // The only serving thread is waiting on the hanging upstream: other
    // requests still go through.
    let meanwhile = gw.post("echo").send().await.unwrap();
    assert_eq!(meanwhile.status(), 200);
    assert_eq!(healthy.hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    let hung = tokio::time::timeout(GUARD, hanging).await.expect("no answer").unwrap().unwrap();
    assert_jsonrpc_502(hung).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_dying_before_or_during_the_answer_gives_502_or_a_cut_stream() {
    let healthy = Upstream::start().await;
    let (closes, _) = raw_upstream(Behaviour::Close);
    let (dies, _) = raw_upstream(Behaviour::DieMidBody);
    let gw = Process::start(
        routes(&[
            ("echo", format!("http://{}/mcp", healthy.addr)),
            ("closes", format!("http://{closes}/mcp")),
            ("dies", format!("http://{dies}/mcp")),
        ]),
        "30s",
    )
    .await;

    assert_jsonrpc_502(gw.post("closes").send().await.unwrap()).await;

    // Headers were already sent when the upstream died: the client's response
    // is cut short (an error, not a complete body, and not a hang).
    let cut = tokio::time::timeout(GUARD, gw.post("dies").send()).await.expect("hung").unwrap();
    assert_eq!(cut.status(), 200);
    let body = tokio::time::timeout(GUARD, cut.bytes()).await.expect("body hung");
    assert!(body.is_err(), "a truncated upstream body must not look complete: {body:?}");

    assert_eq!(gw.post("echo").send().await.unwrap().status(), 200, "the gateway serves on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_within_the_grace() {
    let (slow, slow_accepted) = raw_upstream(Behaviour::Slow);
    let (stream, stream_accepted) = raw_upstream(Behaviour::EndlessStream);
    let mut gw = Process::start(
        routes(&[("slow", format!("http://{slow}/mcp")), ("stream", format!("http://{stream}/mcp"))]),
        "30s",
    )
    .await;

    let open_stream = gw.post("stream").send().await.unwrap();
    assert_eq!(open_stream.status(), 200);
    stream_accepted.recv_timeout(GUARD).unwrap();
    let in_flight = tokio::spawn(gw.post("slow").send());
    slow_accepted.recv_timeout(GUARD).expect("the slow request reached its upstream");

    gw.terminate();
    // The request in flight finishes with its full answer...
    let answered = tokio::time::timeout(GUARD, in_flight).await.expect("no answer").unwrap().unwrap();
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body["result"]["slow"], true);
    // ...the endless stream is closed once the grace is over, and the process exits cleanly.
    let rest = tokio::time::timeout(GUARD, open_stream.bytes()).await.expect("the stream was never closed");
    let status = gw.wait_exit().await;
    assert!(status.success(), "{status:?}");
    drop(rest);
}
