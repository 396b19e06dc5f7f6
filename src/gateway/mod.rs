//! The `cognigate-gateway` server (see the gateway issue): boots from the env file
//! and `config/`, runs the OAuth 2.1 authorization server for MCP clients and
//! proxies `/mcp/{slug}` to upstream MCP servers.

pub mod config;
mod crypto;
pub mod store;
pub mod tokens;
