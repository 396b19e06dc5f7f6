//! Runs the real `cognigate` binary in a temp working directory with an
//! isolated environment (no real AWS profile can leak in), and gives tests an
//! SDK client to check what exists in moto afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};

pub const BIN: &str = env!("CARGO_BIN_EXE_cognigate");

/// A unique stack name per test (moto is shared by the whole test process).
pub fn unique_stack(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{label}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A working directory and the endpoint the CLI talks to.
///
/// The endpoint carries a scope of the strict peer of its own; dropping the
/// workspace fails the test if any request in that scope broke a Cognito rule.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    strict: bool,
}

impl Workspace {
    /// `endpoint` leads to the strict peer, directly or through an [`AwsProxy`].
    ///
    /// [`AwsProxy`]: super::aws_proxy::AwsProxy
    pub fn new(endpoint: &str) -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir"), endpoint: super::strict::scoped(endpoint), strict: true }
    }

    /// A workspace talking to an endpoint without the strict peer (moto bare).
    pub fn bare(endpoint: &str) -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir"), endpoint: endpoint.to_owned(), strict: false }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    /// A command with dummy credentials, region us-east-1 and our endpoint.
    pub fn command(&self) -> Command {
        let mut command = isolated_command(self.dir.path());
        command
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint);
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run cognigate"))
    }

    /// `run` with environment variables changed; an empty value removes one.
    pub fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut command = self.command();
        for (name, value) in vars {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        Run::from(command.args(args).output().expect("run cognigate"))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // A test that already failed says why; a second panic would abort.
        if self.strict && !std::thread::panicking() {
            super::strict::assert_no_violations(&self.endpoint);
        }
    }
}

/// `cognigate` with an empty environment but PATH, a private HOME and retries
/// capped (an emulator gap must not cost seconds of backoff).
pub fn isolated_command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("COGNIGATE_AWS_MAX_ATTEMPTS", "2")
        .env("NO_COLOR", "1");
    command
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "cognigate failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn failure(self, code: i32, says: &str) -> Self {
        assert_eq!(self.code, code, "unexpected exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(says), "stderr does not say {says:?}:\n{}", self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// An SDK client straight to moto (not through any proxy), for assertions.
pub fn sdk(endpoint: &str) -> Client {
    let config = aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    Client::from_conf(config)
}

/// Runs a future on a throwaway runtime (tests are plain `#[test]` functions).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

/// Ids of the pools named `name`.
pub fn pools_named(client: &Client, name: &str) -> Vec<String> {
    block_on(async {
        let pools = client
            .list_user_pools()
            .max_results(60)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .expect("list pools");
        pools.into_iter().filter(|p| p.name() == Some(name)).filter_map(|p| p.id).collect()
    })
}
