//! The container image (`deploy/container`): built with Debian's podman from
//! the binaries this test run built, then run the way an operator would: the
//! config directory and the env file mounted, the store on a volume. The
//! gateway boots as the image's non-root user, answers `/healthz`, serves a
//! proxied request, and on SIGTERM finishes the request in flight and exits 0.
//!
//! Nothing skips: without podman the test fails and says how to get it. Only
//! `COGNIGATE_TEST_CONTAINER_RUNTIME=unavailable` (a machine that cannot run
//! containers at all, e.g. without the privileges podman needs) turns it
//! into a test that says so and passes.
//!
//! The podman flags are the ones a locked-down sandbox needs: its own storage
//! (vfs, no overlay mounts), chroot isolation while building, runc with
//! cgroupfs, the host's network, and open-file and process limits no higher
//! than the caller's (raising them needs CAP_SYS_RESOURCE).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway::harness::{env_text, now, policies, route};
use crate::gateway::upstream_faults::{Behaviour, raw_upstream};

const GUARD: Duration = Duration::from_secs(120);
const UNAVAILABLE: &str = "COGNIGATE_TEST_CONTAINER_RUNTIME";

/// podman on a private storage root, removed (with its images) on drop.
struct Podman {
    storage: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        let found = Command::new("podman").arg("--version").output();
        assert!(
            found.as_ref().is_ok_and(|out| out.status.success()),
            "podman is not installed ({found:?}). Fix: run scripts/test (it installs Debian's podman and runc), or \
             apt-get install podman runc; on a machine that cannot run containers at all set {UNAVAILABLE}=unavailable"
        );
        Self { storage: tempfile::tempdir().unwrap() }
    }

    /// The global flags: this test's own storage, on vfs.
    fn global(&self) -> Vec<String> {
        let at = |name: &str| self.storage.path().join(name).display().to_string();
        vec!["--storage-driver".into(), "vfs".into(), "--root".into(), at("root"), "--runroot".into(), at("run")]
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(self.global());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.command().args(args).stdin(Stdio::null()).output().unwrap();
        assert!(output.status.success(), "podman {args:?}: {}", describe(&output));
        output
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // vfs layers hold files only root may remove; podman knows how.
        let _ = self.command().args(["system", "reset", "--force"]).output();
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn binaries() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cognigate-gateway")).parent().unwrap().to_owned()
}

/// A limit of this process (`/proc/self/limits`, e.g. "Max open files"),
/// capped at 4096, as soft:hard: a container may keep or lower it, not
/// raise it (the value runc is handed must also stay below what podman's own
/// processes hold, which can be less than this test's).
fn limit(name: &str) -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {limits}"));
    let values: Vec<u64> =
        line[name.len()..].split_whitespace().take(2).map(|value| value.parse().unwrap_or(u64::MAX)).collect();
    format!("{}:{}", values[0].min(4096), values[1].min(4096))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_boots_from_mounted_config_answers_healthz_and_drains_on_sigterm() {
    if std::env::var(UNAVAILABLE).is_ok_and(|value| value == "unavailable") {
        eprintln!("{UNAVAILABLE}=unavailable: the container image was NOT built or run on this machine");
        return;
    }
    let podman = Podman::new();
    let tag = "localhost/cognigate:under-test";
    let build = Command::new(crate::support::peers::repo_root().join("deploy/container/build-image"))
        .args(["--binaries", &binaries().display().to_string(), "--tag", tag])
        .env("CONTAINER_BUILD", format!("podman {}", podman.global().join(" ")))
        .output()
        .unwrap();
    assert!(build.status.success(), "build-image: {}", describe(&build));
    let config = podman.run(&["image", "inspect", "--format", "{{.Config.User}} {{.Config.Entrypoint}}", tag]);
    assert_eq!(String::from_utf8_lossy(&config.stdout).trim(), "10001:10001 [/usr/local/bin/cognigate-gateway]");

    // The operator's files: config directory and env file, read-only mounts.
    let (slow, slow_accepted) = raw_upstream(Behaviour::Slow);
    let dir = tempfile::tempdir().unwrap();
    let (config_dir, data_dir, env_file) = (dir.path().join("config"), dir.path().join("data"), dir.path().join("env"));
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::write(config_dir.join("policies.json"), policies().to_string()).unwrap();
    let routes = json!({"paths": {"/mcp/slow": route(&format!("http://{slow}/mcp"))}});
    std::fs::write(config_dir.join("routes.oas.json"), routes.to_string()).unwrap();
    std::fs::write(&env_file, env_text("127.0.0.1:9".parse().unwrap())).unwrap();
    // The volume belongs to the image's user, as a Kubernetes fsGroup makes it.
    let chown = Command::new("chown").args(["10001:10001", &data_dir.display().to_string()]).status().unwrap();
    assert!(chown.success());

    let port = crate::support::peers::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let name = format!("cognigate-test-{port}");
    let mount = |from: &Path, to: &str, mode: &str| format!("{}:{to}:{mode}", from.display());
    podman.run(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--network",
        "host",
        "--ulimit",
        &format!("nofile={}", limit("Max open files")),
        "--ulimit",
        &format!("nproc={}", limit("Max processes")),
        "--volume",
        &mount(&config_dir, "/config", "ro"),
        "--volume",
        &mount(&env_file, "/run/secrets/cognigate/env", "ro"),
        "--volume",
        &mount(&data_dir, "/data", "rw"),
        "--env",
        "COGNIGATE_ENV_FILE=/run/secrets/cognigate/env",
        "--env",
        &format!("COGNIGATE_LISTEN=127.0.0.1:{port}"),
        "--env",
        &format!("COGNIGATE_PUBLIC_URL={public_url}"),
        "--env",
        "COGNIGATE_SHUTDOWN_GRACE=20s",
        tag,
    ]);
    let logs = || String::from_utf8_lossy(&podman.run(&["logs", &name]).stderr).into_owned();

    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + GUARD;
    while !http.get(format!("{public_url}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(tokio::time::Instant::now() < deadline, "the gateway in the container did not answer:\n{}", logs());
        let state = podman.run(&["inspect", "--format", "{{.State.Status}}", &name]);
        let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
        assert!(state == "running" || state == "created", "the container is {state}:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http.get(format!("{public_url}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    // It runs as the image's user: the store it created is that user's.
    let store = data_dir.join("cognigate-gateway.db");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&store).unwrap());
    assert_eq!(owner, 10001, "the store was created by uid {owner}");

    // A request in flight when SIGTERM comes is answered in full, and the
    // container then exits 0.
    let token = mint(&store, &config_dir, &env_file, &public_url);
    let in_flight = tokio::spawn(
        http.post(format!("{public_url}/mcp/slow"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send(),
    );
    slow_accepted.recv_timeout(GUARD).expect("the request reached the upstream through the container");
    podman.run(&["kill", "--signal", "TERM", &name]);
    let answered = tokio::time::timeout(GUARD, in_flight).await.expect("no answer").unwrap().unwrap();
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body["result"]["slow"], true);
    let waited = podman.run(&["wait", &name]);
    assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "0", "exit code; logs:\n{}", logs());
    let logs = logs();
    assert!(logs.contains("shutting down: no new connections"), "{logs}");
    assert!(http.get(format!("{public_url}/healthz")).send().await.is_err(), "still serving after SIGTERM");
}

/// An access token for `/mcp/slow` signed with the key the gateway in the
/// container stored (the same store, opened here).
fn mint(store: &Path, config_dir: &Path, env_file: &Path, public_url: &str) -> String {
    let text = std::fs::read_to_string(env_file).unwrap();
    let env = cognigate::gateway::Env::from_pairs(
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let config = cognigate::gateway::GatewayConfig::load(config_dir, &env).unwrap();
    let store = cognigate::gateway::SqliteStore::open(store).unwrap();
    let state = cognigate::gateway::AppState::build_with(
        config,
        public_url,
        store.into(),
        cognigate::gateway::OAuthOptions::default(),
    )
    .unwrap();
    let aud = format!("{public_url}/mcp/slow");
    state.mint_access_token("user-sub-1", &aud, "client-x", "openid", now(), 600, format!("jti-{}", now())).unwrap()
}
