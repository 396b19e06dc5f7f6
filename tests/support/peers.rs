//! The real peers of the end-to-end tests, run as child processes.
//!
//! Everything the gateway talks to in production has a real counterpart here:
//! moto for the Cognito API (`support::moto`), the hosted UI stand-in
//! (`local/login_page.py`, the local mode's login page) for the browser leg, an upstream MCP server
//! on the Python SDK (`tests/support/upstream_mcp.py`), and the MCP clients of
//! both official SDKs plus headless Chromium (`tests/e2e/`).
//!
//! Each long-running peer prints `Running on http://…` when it accepts
//! connections; [`Peer`] waits for that line, keeps draining the output into a
//! log file (so a full pipe never stalls a peer), and kills the process on
//! drop. One-shot scripts run through [`run_json`], which enforces a timeout
//! and parses the single JSON line they print.
//!
//! Nothing here skips: a missing virtualenv, `node_modules` or Chromium is a
//! test failure that says to run `scripts/test`, which installs them.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a peer may take to print its banner (moto's first start imports a lot).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

const RUN_SCRIPTS_TEST: &str = "run `scripts/test` (it creates .venv with moto[server] and mcp, runs \
     `npm ci --prefix tests/e2e` and installs Debian chromium), or point COGNIGATE_TEST_VENV / \
     COGNIGATE_TEST_NODE_MODULES at them";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the Python virtualenv, the npm packages and Chromium are.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub venv: PathBuf,
    pub node_modules: PathBuf,
}

impl Toolchain {
    /// The virtualenv (moto_server, mcp) and node_modules (@modelcontextprotocol/sdk,
    /// playwright-core), or a panic that says how to get them.
    pub fn require() -> Self {
        let root = repo_root();
        let venv = std::env::var_os("COGNIGATE_TEST_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv"));
        let node_modules = std::env::var_os("COGNIGATE_TEST_NODE_MODULES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("tests/e2e/node_modules"));
        for needed in [venv.join("bin/python"), venv.join("bin/moto_server")] {
            assert!(needed.exists(), "missing {}: {RUN_SCRIPTS_TEST}", needed.display());
        }
        for package in ["@modelcontextprotocol/sdk/package.json", "playwright-core/package.json"] {
            let needed = node_modules.join(package);
            assert!(needed.exists(), "missing {}: {RUN_SCRIPTS_TEST}", needed.display());
        }
        // The client scripts are ES modules, and ESM resolution ignores NODE_PATH:
        // the packages must be where Node looks for tests/e2e/*.mjs imports.
        let expected = root.join("tests/e2e/node_modules");
        assert!(
            same_dir(&node_modules, &expected),
            "COGNIGATE_TEST_NODE_MODULES is {} but the ES-module clients resolve packages from {}: \
             {RUN_SCRIPTS_TEST}",
            node_modules.display(),
            expected.display()
        );
        Toolchain { venv, node_modules }
    }

    pub fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    /// A Python script of the repository, run with the test virtualenv.
    pub fn python_script(&self, relative: &str) -> Command {
        let mut cmd = Command::new(self.python());
        cmd.arg(repo_root().join(relative)).env("PYTHONUNBUFFERED", "1").env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }

    /// A Node script of `tests/e2e`, run from that directory.
    pub fn node_script(&self, name: &str) -> Command {
        let dir = repo_root().join("tests/e2e");
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(name)).current_dir(dir);
        cmd
    }

    /// Debian's Chromium (or `CHROMIUM_PATH`), or a panic that says how to get it.
    pub fn chromium(&self) -> PathBuf {
        let path =
            std::env::var_os("CHROMIUM_PATH").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        assert!(path.exists(), "missing Chromium at {}: {RUN_SCRIPTS_TEST}", path.display());
        path
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the peer to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind an ephemeral port")
}

/// A long-running peer process, killed on drop.
pub struct Peer {
    name: String,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Peer {
    /// Spawns `cmd`, waits for its `Running on <url>` line and returns the peer.
    pub fn spawn(name: &str, cmd: Command, log_dir: &Path) -> Peer {
        let (mut child, rx, log) = launch(name, cmd, log_dir);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => break url,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("{name} exited with {status} before it was ready:\n{}", tail(&log));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{name} did not print its URL within {STARTUP_TIMEOUT:?}:\n{}", tail(&log));
                }
            }
        };
        Peer { name: name.to_owned(), child, url, log }
    }

    /// Spawns `cmd` that serves at the known `url` and waits until `ready` holds.
    pub fn spawn_polled(name: &str, cmd: Command, log_dir: &Path, url: &str, mut ready: impl FnMut() -> bool) -> Peer {
        let (mut child, _rx, log) = launch(name, cmd, log_dir);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if ready() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited with {status} before it was ready:\n{}", tail(&log));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} was not ready within {STARTUP_TIMEOUT:?}:\n{}", tail(&log));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Peer { name: name.to_owned(), child, url: url.to_owned(), log }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit (a graceful shutdown);
    /// None if it had to be killed.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `scheme://host:port` of the URL the peer announced.
    pub fn origin(&self) -> String {
        let parsed = url::Url::parse(&self.url).expect("peer URL");
        format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("127.0.0.1"))
            + &parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        format!("--- {} ({}) ---\n{}", self.name, self.log.display(), tail(&self.log))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` with its output drained into `<log_dir>/<name>.log`.
fn launch(name: &str, mut cmd: Command, log_dir: &Path) -> (Child, mpsc::Receiver<String>, PathBuf) {
    let log = log_dir.join(format!("{name}.log"));
    let file = Arc::new(Mutex::new(File::create(&log).expect("create peer log")));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {name} ({cmd:?}): {err}"));
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    drain(stdout, Arc::clone(&file), tx.clone());
    drain(stderr, file, tx);
    (child, rx, log)
}

/// Copies a child's stream into the log and reports the first `Running on` URL.
fn drain(stream: impl Read + Send + 'static, log: Arc<Mutex<File>>, tx: mpsc::Sender<String>) {
    thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{line}");
            }
            if !announced && let Some(url) = announced_url(&line) {
                announced = true;
                let _ = tx.send(url);
            }
        }
    });
}

fn announced_url(line: &str) -> Option<String> {
    let rest = &line[line.find("Running on ")? + "Running on ".len()..];
    let start = rest.find("http")?;
    let url: String = rest[start..].chars().take_while(|c| !c.is_whitespace() && *c != '\u{1b}').collect();
    Some(url)
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Polls `ready` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Some(());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The status of a plain `GET`, or None when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    block_on(async {
        let client = http_client();
        client.get(url).send().await.ok().map(|r| r.status().as_u16())
    })
}

/// A reqwest client that never follows redirects (tests look at each hop).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Runs a future to completion on a throwaway current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(future)
}

/// What a one-shot script did.
#[derive(Debug)]
pub struct ScriptOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutput {
    /// The last stdout line that parses as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        self.stdout.lines().rev().find_map(|l| serde_json::from_str(l.trim()).ok())
    }

    pub fn describe(&self) -> String {
        format!("exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.status, self.stdout, tail_str(&self.stderr))
    }
}

fn tail_str(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// Runs a script to completion (killed after `timeout`) and captures its output.
pub fn run(name: &str, mut cmd: Command, timeout: Duration) -> ScriptOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {name} ({cmd:?}): {err}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for script") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait for killed script");
            let output =
                ScriptOutput { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() };
            panic!("{name} did not finish within {timeout:?}:\n{}", output.describe());
        }
        thread::sleep(Duration::from_millis(20));
    };
    ScriptOutput { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// Runs a script that must succeed and print a JSON line; returns that JSON.
pub fn run_json(name: &str, cmd: Command, timeout: Duration) -> serde_json::Value {
    let output = run(name, cmd, timeout);
    assert!(output.status.success(), "{name} failed:\n{}", output.describe());
    output.json().unwrap_or_else(|| panic!("{name} printed no JSON line:\n{}", output.describe()))
}

/// The hosted UI stand-in (`local/login_page.py`) for one user pool.
pub struct HostedUi {
    peer: Peer,
}

impl HostedUi {
    pub fn start(tools: &Toolchain, moto: &str, pool_id: &str, log_dir: &Path) -> HostedUi {
        Self::start_on(tools, moto, pool_id, log_dir, 0)
    }

    /// On `port` (0: a free one).
    pub fn start_on(tools: &Toolchain, moto: &str, pool_id: &str, log_dir: &Path, port: u16) -> HostedUi {
        let mut cmd = tools.python_script("local/login_page.py");
        cmd.args(["--moto", moto, "--pool-id", pool_id, "--port", &port.to_string(), "--test-knobs"]);
        HostedUi { peer: Peer::spawn("hosted-ui", cmd, log_dir) }
    }

    /// Stops the stand-in (Cognito down) until [`HostedUi::start_on`] its port again.
    pub fn stop(&mut self) {
        self.peer.terminate(Duration::from_secs(5));
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        url::Url::parse(self.peer.url()).ok().and_then(|u| u.port()).expect("the stand-in's port")
    }

    /// The refresh tokens its token endpoint handed out.
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        let url = format!("{}/_test/refresh-tokens", self.url());
        block_on(async { http_client().get(url).send().await?.json::<Vec<String>>().await })
            .expect("read the stand-in's issued refresh tokens")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.peer.url()
    }

    /// `127.0.0.1:PORT`: what goes in COGNITO_USER_POOL_DOMAIN.
    pub fn domain(&self) -> String {
        self.peer.url().trim_start_matches("http://").trim_end_matches('/').to_owned()
    }

    /// Makes the next token response carry a crafted ID token (see local/login_page.py).
    pub fn queue_id_token_mutation(&self, mutation: &serde_json::Value) {
        let url = format!("{}/_test/next-id-token", self.url());
        let status = block_on(async { http_client().post(url).json(mutation).send().await.map(|r| r.status()) })
            .expect("queue an ID-token mutation");
        assert!(status.is_success(), "queueing {mutation} answered {status}");
    }

    /// The requests the stand-in saw.
    pub fn log(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/_test/log", self.url());
        block_on(async { http_client().get(url).send().await?.json::<Vec<serde_json::Value>>().await })
            .expect("read the stand-in's log")
    }

    pub fn log_tail(&self) -> String {
        self.peer.log_tail()
    }
}

/// The upstream MCP server (`tests/support/upstream_mcp.py`).
pub struct UpstreamMcp {
    peer: Peer,
}

impl UpstreamMcp {
    /// `json_response`: answer POSTs with plain JSON instead of an SSE stream.
    pub fn start(tools: &Toolchain, log_dir: &Path, json_response: bool) -> UpstreamMcp {
        let mut cmd = tools.python_script("tests/support/upstream_mcp.py");
        cmd.args(["--port", "0"]);
        let name = if json_response {
            cmd.arg("--json-response");
            "upstream-mcp-json"
        } else {
            "upstream-mcp"
        };
        UpstreamMcp { peer: Peer::spawn(name, cmd, log_dir) }
    }

    /// `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        self.peer.url()
    }

    /// What reached the upstream: request counts, Authorization/Cookie/X-Forwarded-* seen.
    pub fn stats(&self) -> serde_json::Value {
        let url = format!("{}/_test/stats", self.peer.origin());
        block_on(async { http_client().get(url).send().await?.json::<serde_json::Value>().await })
            .expect("read the upstream's stats")
    }

    pub fn log_tail(&self) -> String {
        self.peer.log_tail()
    }
}
