//! An OAuth-protected upstream for the `mcp-token-exchange-inbound` tests:
//! npm `oidc-provider` as its authorization server (`local/upstream_as.mjs`)
//! and a Python SDK MCP server that checks tokens there by introspection
//! (`local/protected_mcp.py`). Both are the local mode's own pieces.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::peers::{Peer, Toolchain, block_on, free_port, http_client, repo_root};

/// The service account's client at the authorization server.
pub const SERVICE_CLIENT_ID: &str = "service-account";
pub const SERVICE_CLIENT_SECRET: &str = "service-account-secret";

pub struct ProtectedUpstream {
    // Dropped first: the MCP server before the server it asks.
    pub mcp: Peer,
    pub authorization_server: Peer,
}

impl ProtectedUpstream {
    /// Access tokens live `access_ttl` seconds.
    pub fn start(tools: &Toolchain, log_dir: &Path, access_ttl: u64) -> ProtectedUpstream {
        Self::start_with(tools, log_dir, access_ttl, &[])
    }

    /// With more options of `local/upstream_as.mjs` (e.g. `--refresh-delay-ms`).
    pub fn start_with(tools: &Toolchain, log_dir: &Path, access_ttl: u64, extra: &[&str]) -> ProtectedUpstream {
        Self::start_full(tools, log_dir, access_ttl, extra, &[])
    }

    /// And options of `local/protected_mcp.py` (e.g. `--refuse-subject`).
    pub fn start_full(
        tools: &Toolchain,
        log_dir: &Path,
        access_ttl: u64,
        extra: &[&str],
        mcp_extra: &[&str],
    ) -> ProtectedUpstream {
        let as_port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("local/upstream_as.mjs"))
            .args(["--port", &as_port.to_string(), "--access-ttl", &access_ttl.to_string()])
            .args(extra)
            .env("COGNIGATE_NODE_MODULES", &tools.node_modules);
        let authorization_server = Peer::spawn("upstream-as", cmd, log_dir);
        let mut cmd = tools.python_script("local/protected_mcp.py");
        cmd.args(["--port", &free_port().to_string(), "--issuer", authorization_server.url()]).args(mcp_extra);
        let mcp = Peer::spawn("protected-mcp", cmd, log_dir);
        ProtectedUpstream { mcp, authorization_server }
    }

    /// `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        self.mcp.url()
    }

    /// The token grants the authorization server answered.
    pub fn grants(&self) -> Vec<Value> {
        let url = format!("{}/_test/events", self.authorization_server.url());
        block_on(async { http_client().get(url).send().await?.json::<Vec<Value>>().await })
            .expect("read the authorization server's events")
    }

    /// How many grants of `grant_type` it answered with tokens.
    pub fn count(&self, grant_type: &str) -> usize {
        self.grants().iter().filter(|event| event["grant_type"] == grant_type && event.get("error").is_none()).count()
    }

    /// The grants it refused (`invalid_grant` for a spent refresh token, …).
    pub fn refused(&self) -> Vec<Value> {
        self.grants().into_iter().filter(|event| event.get("error").is_some()).collect()
    }

    /// Ends every grant of `account` at the authorization server.
    pub fn revoke_account(&self, account: &str) -> Value {
        let url = format!("{}/_test/revoke?account={account}", self.authorization_server.url());
        block_on(async { http_client().post(url).send().await?.json::<Value>().await }).expect("revoke at the AS")
    }

    /// What reached the MCP server: token hashes, subjects, refusals.
    pub fn stats(&self) -> Value {
        let url = format!("{}/_test/stats", self.mcp.origin());
        block_on(async { http_client().get(url).send().await?.json::<Value>().await }).expect("read the MCP stats")
    }

    pub fn logs(&self) -> String {
        format!("{}\n{}", self.authorization_server.log_tail(), self.mcp.log_tail())
    }
}
