//! Real peers for the integration tests, started by the tests themselves.
//!
//! - [`moto`]: moto's server for the Cognito API (one per test process).
//! - [`strict`]: a strict Cognito in front of moto, refusing what Cognito refuses.
//! - [`aws_proxy`]: a counting, fault-injecting proxy in front of it.
//! - [`client_documents`]: Client ID Metadata Documents over https with a test CA.
//! - [`front_proxy`]: a reverse proxy in front of the gateway that can hide paths.
//! - [`cli`]: runs the real `cognigate` binary in an isolated environment, and
//!   an SDK client for asserting what exists afterwards.
//!
//! Every peer that is missing makes the test fail with the command that
//! installs it (`scripts/test`); nothing is skipped silently.

#![allow(dead_code)] // each test module uses a different part of the harness

pub mod aws_proxy;
pub mod cli;
pub mod client_documents;
pub mod front_proxy;
pub mod moto;
pub mod peers;
pub mod round_robin;
pub mod strict;
pub mod upstream_oauth;

use std::path::PathBuf;

/// The Python venv with `moto[server]` and `mcp`, as `scripts/test` makes it.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("COGNIGATE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python venv at {} (set COGNIGATE_TEST_VENV): run `scripts/test`, which creates it with moto[server] and mcp",
        venv.display()
    );
    venv
}
