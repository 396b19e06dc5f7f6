//! The on-disk shapes: `config/policies.json` and `config/routes.oas.json`.
//!
//! Both files follow Zuplo's MCP gateway format, so the outer layers accept the
//! fields Zuplo writes (OpenAPI `info`, `summary`, `x-zuplo-path`, `corsPolicy`)
//! without complaint. The handler options of the policy types we implement are
//! ours to validate, so those structs deny unknown fields: a misspelt
//! `userPoolID` must stop the boot, not silently fall back to nothing.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::contract::GatewayOptions;

#[derive(Debug, Deserialize)]
pub(crate) struct PoliciesFile {
    pub policies: Vec<PolicyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyEntry {
    pub name: String,
    pub policy_type: String,
    pub handler: HandlerRef,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HandlerRef {
    #[serde(default)]
    #[allow(dead_code)] // Zuplo's `$import(...)`; the export names the behaviour.
    pub module: Option<String>,
    pub export: String,
    #[serde(default)]
    pub options: Value,
}

/// `mcp-oauth-inbound` options (after `$env` substitution).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GenericOptions {
    pub oidc: OidcOptions,
    pub browser_login: BrowserLoginOptions,
    #[serde(default)]
    pub gateway: Option<GatewayOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OidcOptions {
    pub issuer: String,
    pub jwks_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BrowserLoginOptions {
    pub url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoutesFile {
    #[serde(default)]
    pub paths: Map<String, Value>,
}

/// The `x-zuplo-route` of one operation.
#[derive(Debug, Deserialize)]
pub(crate) struct ZuploRoute {
    pub handler: HandlerRef,
    #[serde(default)]
    pub policies: RoutePolicies,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RoutePolicies {
    #[serde(default)]
    pub inbound: Vec<String>,
}

/// `McpProxyHandler` options (after `$env` substitution).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProxyOptions {
    pub rewrite_pattern: String,
}
