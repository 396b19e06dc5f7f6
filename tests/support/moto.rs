//! moto's server on a free 127.0.0.1 port, shared by the tests of one process,
//! behind the strict Cognito peer ([`super::strict`]): [`MotoServer::endpoint`]
//! is the strict peer's, so no test talks to the bare emulator by accident.
//!
//! moto keeps its state in memory, so tests share one server and stay apart by
//! using unique stack names. The server runs under a small shell guard that
//! kills it when our stdin closes, which happens when the test process exits,
//! however it exits.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::strict::StrictPeer;

pub struct MotoServer {
    endpoint: String,
    strict: StrictPeer,
    _guard: Mutex<Child>,
}

impl MotoServer {
    /// The process-wide server, started on first use.
    pub fn shared() -> &'static MotoServer {
        static SERVER: OnceLock<MotoServer> = OnceLock::new();
        SERVER.get_or_init(MotoServer::start)
    }

    /// A fresh server of its own (for tests that list everything in the region).
    pub fn start() -> MotoServer {
        let moto = super::venv().join("bin/moto_server");
        assert!(moto.exists(), "{} is missing: run `scripts/test` (pip install 'moto[server]')", moto.display());
        let log = tempfile::NamedTempFile::new().expect("moto log file");
        let log_path = log.into_temp_path().keep().expect("keep moto log");
        // `cat` returns when our end of its stdin closes: the test process is gone.
        let script = format!(
            "'{}' -H 127.0.0.1 -p 0 >'{}' 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid",
            moto.display(),
            log_path.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let deadline = Instant::now() + Duration::from_secs(60);
        let endpoint = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(rest) = text.split("Running on ").nth(1) {
                let address = rest.split_whitespace().next().unwrap_or_default();
                break address.trim_end_matches('/').to_owned();
            }
            assert!(Instant::now() < deadline, "moto_server did not start within 60 s; its output:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        wait_ready(&endpoint);
        let strict = StrictPeer::start(&endpoint);
        MotoServer { endpoint, strict, _guard: Mutex::new(child) }
    }

    /// Where Cognito requests go: the strict peer in front of moto.
    pub fn endpoint(&self) -> &str {
        self.strict.endpoint()
    }

    /// moto itself, for the few tests about an endpoint that lacks an API the
    /// strict peer emulates.
    pub fn bare_endpoint(&self) -> &str {
        &self.endpoint
    }
}

fn wait_ready(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("{endpoint}/moto-api/");
    while Instant::now() < deadline {
        if reqwest::blocking_get_ok(&url) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server at {endpoint} never answered GET /moto-api/");
}

/// Tiny blocking probe without pulling in reqwest's blocking feature.
mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn blocking_get_ok(url: &str) -> bool {
        let Some(rest) = url.strip_prefix("http://") else { return false };
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let Ok(mut stream) = TcpStream::connect(host) else { return false };
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
    }
}
