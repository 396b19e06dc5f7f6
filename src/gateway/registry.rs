//! The MCP Server Registry API (v0.1, its frozen shape) over this gateway's
//! routes: `GET /mcp-registry/v0.1/servers`, and the same at Zuplo's
//! `/__zuplo/mcp-registry/v0.1/servers`. Each route, plain or aggregated, is
//! one server whose one remote is its streamable-http URL; the list is built
//! from the running configuration, so there is no second list to keep.
//!
//! Names follow the registry's reverse-DNS rule: the public host reversed,
//! `/`, the route's slug (`com.example.mcp/linear`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::gateway::state::{AppState, RouteState};

/// The registry paths.
pub(crate) const REGISTRY_PATH: &str = crate::contract::MCP_REGISTRY_PATH;
pub(crate) const ZUPLO_REGISTRY_PATH: &str = "/__zuplo/mcp-registry/v0.1/servers";
/// The server.json schema the entries follow.
const SERVER_SCHEMA: &str = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// The registry's limit on a description.
const MAX_DESCRIPTION: usize = 100;

pub(crate) async fn servers(State(state): State<AppState>) -> Response {
    axum::Json(list(&state)).into_response()
}

/// The registry's list answer for every route, by path.
pub(crate) fn list(state: &AppState) -> Value {
    let mut routes: Vec<&RouteState> = state.routes.values().collect();
    routes.sort_by(|a, b| a.route.path.cmp(&b.route.path));
    let namespace = namespace(&state.forwarded_host_text);
    let servers: Vec<Value> = routes.iter().map(|route| entry(&namespace, route)).collect();
    json!({"servers": servers, "metadata": {"count": servers.len()}})
}

/// The public host reversed (`mcp.example.com` → `com.example.mcp`), port left out.
fn namespace(host: &str) -> String {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let cleaned: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    cleaned.split('.').filter(|part| !part.is_empty()).rev().collect::<Vec<_>>().join(".")
}

fn entry(namespace: &str, route: &RouteState) -> Value {
    let config = &route.route;
    let description = config.description.clone().unwrap_or_else(|| match &config.aggregate {
        Some(aggregate) => {
            let members: Vec<&str> = aggregate.members.iter().map(|m| m.path.as_str()).collect();
            format!("{} together", members.join(", "))
        }
        None => format!("The MCP server behind {}", config.path),
    });
    let mut server = json!({
        "$schema": SERVER_SCHEMA,
        "name": format!("{namespace}/{}", config.slug),
        "description": truncate(&description),
        "version": env!("CARGO_PKG_VERSION"),
        "remotes": [{"type": "streamable-http", "url": route.resource}],
    });
    if let Some(title) = &config.title {
        server["title"] = json!(title);
    }
    json!({"server": server, "_meta": {}})
}

/// At most [`MAX_DESCRIPTION`] characters, cut on a character boundary.
fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::{namespace, truncate};

    #[test]
    fn the_namespace_is_the_host_reversed_without_its_port() {
        assert_eq!(namespace("mcp.example.com"), "com.example.mcp");
        assert_eq!(namespace("localhost:9000"), "localhost");
        assert_eq!(namespace("127.0.0.1:9000"), "1.0.0.127");
    }

    #[test]
    fn long_descriptions_are_cut_to_the_registrys_limit() {
        assert_eq!(truncate(&"x".repeat(150)).chars().count(), 100);
        assert_eq!(truncate("short"), "short");
    }
}
