//! The on-disk shapes: `config/policies.json` and `config/routes.oas.json`.
//!
//! Both files follow Zuplo's MCP gateway format, so the outer layers accept the
//! fields Zuplo writes (OpenAPI `info`, `summary`, `x-zuplo-path`, `corsPolicy`)
//! without complaint. The handler options of the policy types we implement are
//! ours to validate, so those structs (here for the proxy handler, beside each
//! policy type in `policy/` for the policies) deny unknown fields: a misspelt
//! `userPoolID` must stop the boot, not silently fall back to nothing.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
pub(crate) struct PoliciesFile {
    pub(crate) policies: Vec<PolicyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyEntry {
    pub(crate) name: String,
    pub(crate) policy_type: String,
    pub(crate) handler: HandlerRef,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HandlerRef {
    #[serde(default)]
    #[allow(dead_code)] // Zuplo's `$import(...)`; the export names the behaviour.
    pub(crate) module: Option<String>,
    pub(crate) export: String,
    #[serde(default)]
    pub(crate) options: Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoutesFile {
    #[serde(default)]
    pub(crate) paths: Map<String, Value>,
}

/// The `x-zuplo-route` of one operation.
#[derive(Debug, Deserialize)]
pub(crate) struct ZuploRoute {
    pub(crate) handler: HandlerRef,
    #[serde(default)]
    pub(crate) policies: RoutePolicies,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RoutePolicies {
    #[serde(default)]
    pub(crate) inbound: Vec<String>,
}

/// `McpProxyHandler` options (after `$env` substitution).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProxyOptions {
    pub(crate) rewrite_pattern: String,
}
