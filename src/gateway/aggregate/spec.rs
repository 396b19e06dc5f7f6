//! `McpAggregateHandler`: the options of an aggregated route (its member
//! routes, how their names are prefixed) and their boot validation.
//!
//! A member is an existing `/mcp/{slug}` route with its own upstream and
//! policies; the aggregate adds no upstream of its own. Names are prefixed
//! with the member's prefix (its slug unless `prefixes` says otherwise) and
//! `_`: always, only where two members list the same name (the default,
//! `conflict`), or never. Two members that would show their names under the
//! same prefix can never be told apart, which is why that stops the boot.

use std::collections::HashMap;

use serde::Deserialize;

use crate::gateway::config::error::ConfigError;

/// The `handler.export` of an aggregated route.
pub(crate) const AGGREGATE_EXPORT: &str = "McpAggregateHandler";

/// `McpAggregateHandler` options (after `$env` substitution).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AggregateOptions {
    pub(crate) members: Vec<String>,
    #[serde(default)]
    pub(crate) prefix_mode: Option<String>,
    #[serde(default)]
    pub(crate) prefixes: HashMap<String, String>,
}

/// When a member's names carry its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixMode {
    Always,
    /// Only names another member lists too.
    Conflict,
    /// Never: a name two members list is served by the first one.
    Never,
}

/// One member of an aggregated route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    /// The member route's slug (`linear` of `/mcp/linear`).
    pub(crate) slug: String,
    /// `/mcp/{slug}`.
    pub(crate) path: String,
    /// What goes before `_` in a prefixed name.
    pub(crate) prefix: String,
}

/// A validated aggregated route: its members in the order written (the
/// order lists are merged in, and the first of two owners of a name when
/// nothing is prefixed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Aggregate {
    pub(crate) members: Vec<Member>,
    pub(crate) prefix_mode: PrefixMode,
}

impl Aggregate {
    /// Checks `options` of the route `path` against the proxy routes that
    /// exist (`is_proxy_route` says whether a path is one).
    pub(crate) fn from_options(
        path: &str,
        options: AggregateOptions,
        is_proxy_route: impl Fn(&str) -> Option<bool>,
    ) -> Result<Self, ConfigError> {
        let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
            owner: format!("route `{path}`"),
            option: option.to_owned(),
            problem,
            fix: fix.to_owned(),
        };
        let prefix_mode = match options.prefix_mode.as_deref().unwrap_or("conflict") {
            "always" => PrefixMode::Always,
            "conflict" => PrefixMode::Conflict,
            "never" => PrefixMode::Never,
            other => {
                return Err(invalid(
                    "prefixMode",
                    format!("`{other}` is not a prefix mode"),
                    "use always, conflict (the default) or never",
                ));
            }
        };
        if options.members.is_empty() {
            return Err(invalid(
                "members",
                "is empty".into(),
                "list the /mcp/{name} routes this route puts together, e.g. [\"/mcp/linear\", \"/mcp/stripe\"]",
            ));
        }
        for member in options.prefixes.keys() {
            if !options.members.contains(member) {
                return Err(invalid(
                    "prefixes",
                    format!("names `{member}`, which is not one of the members"),
                    "give prefixes only for routes listed in members",
                ));
            }
        }
        let mut members: Vec<Member> = Vec::with_capacity(options.members.len());
        for (index, member) in options.members.iter().enumerate() {
            let option = format!("members[{index}]");
            match is_proxy_route(member) {
                Some(true) => {}
                Some(false) => {
                    return Err(invalid(
                        &option,
                        format!("`{member}` is itself an aggregated route"),
                        "list the McpProxyHandler routes the other aggregated route lists instead",
                    ));
                }
                None => {
                    return Err(invalid(
                        &option,
                        format!("`{member}` is not a route of routes.oas.json"),
                        "list paths declared in routes.oas.json with the McpProxyHandler handler, e.g. /mcp/linear",
                    ));
                }
            }
            if member == path {
                return Err(invalid(&option, "is the route itself".into(), "list other routes"));
            }
            if members.iter().any(|seen| seen.path == *member) {
                return Err(invalid(&option, format!("lists `{member}` twice"), "list each member once"));
            }
            let slug = member.strip_prefix("/mcp/").unwrap_or(member).to_owned();
            let prefix = options.prefixes.get(member).cloned().unwrap_or_else(|| slug.clone());
            if prefix.is_empty()
                || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                return Err(invalid(
                    &format!("prefixes.{member}"),
                    format!("`{prefix}` is not a usable prefix"),
                    "use letters, digits, '-', '.' or '_'",
                ));
            }
            if let Some(other) = members.iter().find(|seen| seen.prefix == prefix) {
                return Err(ConfigError::Route {
                    route: path.to_owned(),
                    problem: format!(
                        "the members `{}` and `{member}` both get the prefix `{prefix}`, so their names cannot be told apart",
                        other.path
                    ),
                    fix: format!(
                        "give one of them another prefix in \"prefixes\", e.g. {{\"{member}\": \"{prefix}2\"}}"
                    ),
                });
            }
            members.push(Member { slug, path: member.clone(), prefix });
        }
        Ok(Self { members, prefix_mode })
    }
}

#[cfg(test)]
mod tests {
    use super::{Aggregate, AggregateOptions, PrefixMode};

    fn options(value: serde_json::Value) -> AggregateOptions {
        serde_json::from_value(value).unwrap()
    }

    fn routes(path: &str) -> Option<bool> {
        match path {
            "/mcp/linear" | "/mcp/stripe" | "/mcp/lin" => Some(true),
            "/mcp/all" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn defaults_to_prefixing_on_conflict_with_the_slug() {
        let aggregate = Aggregate::from_options(
            "/mcp/all",
            options(serde_json::json!({"members": ["/mcp/linear", "/mcp/stripe"], "prefixes": {"/mcp/linear": "lin"}})),
            routes,
        )
        .unwrap();
        assert_eq!(aggregate.prefix_mode, PrefixMode::Conflict);
        let prefixes: Vec<&str> = aggregate.members.iter().map(|m| m.prefix.as_str()).collect();
        assert_eq!(prefixes, ["lin", "stripe"]);
    }

    #[test]
    fn bad_members_and_modes_are_named() {
        for (value, needle) in [
            (serde_json::json!({"members": ["/mcp/nope"]}), "`/mcp/nope` is not a route"),
            (serde_json::json!({"members": ["/mcp/all"]}), "itself an aggregated route"),
            (serde_json::json!({"members": []}), "is empty"),
            (serde_json::json!({"members": ["/mcp/linear"], "prefixMode": "sometimes"}), "`sometimes`"),
            (serde_json::json!({"members": ["/mcp/linear", "/mcp/linear"]}), "twice"),
            (
                serde_json::json!({"members": ["/mcp/linear"], "prefixes": {"/mcp/stripe": "s"}}),
                "not one of the members",
            ),
            (
                serde_json::json!({"members": ["/mcp/linear", "/mcp/lin"], "prefixes": {"/mcp/linear": "lin"}}),
                "`/mcp/linear` and `/mcp/lin` both get the prefix `lin`",
            ),
        ] {
            let text = Aggregate::from_options("/mcp/all", options(value.clone()), routes).unwrap_err().to_string();
            assert!(text.contains(needle) && text.contains("Fix:"), "{value}: {text}");
        }
    }
}
