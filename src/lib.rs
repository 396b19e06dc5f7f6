//! cognigate: provision Amazon Cognito for an MCP gateway, and run that gateway.
//!
//! Two data flows live here, one per top-level module:
//!
//! - [`provision`]: the `cognigate` CLI. Desired state (flags, environment,
//!   `cognigate.toml`) is validated into a stack spec, compared with what exists
//!   in Cognito, applied in dependency order, and rendered into the env file and
//!   the `policies.json` stanza the gateway reads.
//! - [`gateway`]: the `cognigate-gateway` server. It boots from those files, acts
//!   as the OAuth 2.1 authorization server for MCP clients, sends browsers to the
//!   Cognito hosted UI, and proxies `/mcp/{slug}` to upstream MCP servers.
//!
//! Shared by both, on the floor below them: [`contract`], everything the two
//! binaries must agree on (identifier rules, derived URLs, env keys, the
//! policy stanza); [`secret`], a string that never prints itself; and
//! [`dotenv`], the env file format.

pub mod contract;
pub mod dotenv;
pub mod gateway;
pub mod provision;
pub mod secret;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod fuzz_tests;
