//! The strict Cognito peer (`strict_cognito.py`) between the tests and moto.
//!
//! moto accepts requests real Cognito refuses, so every Cognito request of the
//! provisioning tests passes through this proxy first: it checks each body
//! against botocore's `cognito-idp` service model and the service rules moto
//! lacks, answers a violation as Cognito would (400 InvalidParameterException
//! naming the operation and the member), and records it. A [`Workspace`]
//! sends its requests under a scope of its own and, when dropped, fails its
//! test if that scope recorded any violation, so an error cognigate swallows
//! is still caught.
//!
//! [`Workspace`]: super::cli::Workspace

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct StrictPeer {
    endpoint: String,
    _guard: Mutex<Child>,
}

impl StrictPeer {
    /// Starts the strict proxy in front of `upstream` (moto's endpoint).
    pub fn start(upstream: &str) -> StrictPeer {
        let python = super::venv().join("bin/python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/strict_cognito.py");
        let log = tempfile::NamedTempFile::new().expect("strict peer log file");
        let log_path = log.into_temp_path().keep().expect("keep strict peer log");
        // As for moto: `cat` returns when the test process is gone, which stops the peer.
        let shell = format!(
            "'{}' '{script}' '{upstream}' >'{}' 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid",
            python.display(),
            log_path.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(shell)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the strict Cognito peer");
        let deadline = Instant::now() + Duration::from_secs(60);
        let endpoint = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(rest) = text.split("strict listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the strict Cognito peer did not start within 60 s (it needs botocore and regex in the venv: \
                 run `scripts/test`); its output:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        StrictPeer { endpoint, _guard: Mutex::new(child) }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// `endpoint` with a fresh scope of its own, so its violations can be told apart
/// from those of the tests running beside it.
pub fn scoped(endpoint: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{}/scope/w{}", endpoint.trim_end_matches('/'), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The violations recorded for the scope of `endpoint` (one per refused
/// request, each naming its operation and member); `None` when the endpoint is
/// not a strict peer.
pub fn violations(endpoint: &str) -> Option<Vec<serde_json::Value>> {
    serde_json::from_value(get(endpoint, "strict/violations")?).ok()
}

/// In the scope of `endpoint`, the first DeleteUserPool after each domain
/// deletion is answered "It has a domain configured", as Cognito may answer
/// while the deletion propagates.
pub fn linger_domains(endpoint: &str) {
    get(endpoint, "strict/linger-domains").expect("the strict peer's linger-domains switch");
}

fn get(endpoint: &str, what: &str) -> Option<serde_json::Value> {
    let url = format!("{}/{what}", endpoint.trim_end_matches('/'));
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}")))?;
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// Fails the test when the scope of `endpoint` recorded a violation.
#[track_caller]
pub fn assert_no_violations(endpoint: &str) {
    let found = violations(endpoint)
        .unwrap_or_else(|| panic!("could not read the strict peer's violations at {endpoint}/strict/violations"));
    assert!(
        found.is_empty(),
        "real Cognito would refuse {} request(s) cognigate sent:\n{}",
        found.len(),
        found.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n")
    );
}

/// Holds the scope of `endpoint` to Cognito's default request rate quotas
/// (a token bucket per category; TooManyRequestsException past them).
pub fn throttle(endpoint: &str) {
    get(endpoint, "strict/throttle").expect("the strict peer's throttle switch");
}

/// Like [`throttle`], with every category held to `rate` requests per second.
pub fn throttle_at(endpoint: &str, rate: u32) {
    get(endpoint, &format!("strict/throttle?rate={rate}")).expect("the strict peer's throttle switch");
}

/// How many requests of the scope of `endpoint` were answered TooManyRequestsException.
pub fn throttled(endpoint: &str) -> u64 {
    get(endpoint, "strict/throttled").and_then(|v| v["throttled"].as_u64()).expect("the strict peer's throttle count")
}
