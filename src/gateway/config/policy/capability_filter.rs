//! `mcp-capability-filter-inbound`: which tools, prompts, resources and
//! resource templates a route shows, and to whom.
//!
//! Each of the four lists is an allow-list: omitted = everything passes, an
//! empty array = nothing does. An entry is a name (a resource's URI, a
//! template's URI template) or a projection object that can also replace the
//! item's `description`, `annotations` and `_meta` as the client sees them.
//! With `accessControl.mode` `rolesAndGroups`, each entry says who sees it:
//! `public: true`, or `groups` / `roles` matched against the claims named by
//! `groupClaim` / `roleClaim` of the user's ID token (kept with the grant at
//! login). The request hook (in the proxy's policy path) refuses direct use of
//! a hidden item with JSON-RPC -32601 before anything reaches the upstream and
//! filters the list responses; the rules here are pure, so they are tested
//! without a server.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::super::ConfigError;
use super::{InboundPolicy, PolicyKind};
use crate::gateway::config::env::Env;
use crate::gateway::store::Identity;

pub(crate) const POLICY_TYPE: &str = "mcp-capability-filter-inbound";
const EXPORT: &str = "McpCapabilityFilterInboundPolicy";
/// The claim Cognito puts a user's groups in.
pub(crate) const COGNITO_GROUP_CLAIM: &str = "cognito:groups";
/// Where roles are read from when `roleClaim` is not given (Zuplo's default).
const DEFAULT_ROLE_CLAIM: &str = "roles";

pub(super) const KIND: PolicyKind = PolicyKind { policy_type: POLICY_TYPE, export: EXPORT, export_aliases: &[], build };

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilterOptions {
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    prompts: Option<Vec<Value>>,
    #[serde(default)]
    resources: Option<Vec<Value>>,
    #[serde(default)]
    resource_templates: Option<Vec<Value>>,
    #[serde(default)]
    access_control: Option<AccessControlOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccessControlOptions {
    mode: String,
    #[serde(default)]
    group_claim: Option<String>,
    #[serde(default)]
    role_claim: Option<String>,
}

/// One allow-list entry written as an object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProjectionOptions {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    uri_template: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    annotations: Option<Value>,
    #[serde(default, rename = "_meta")]
    meta: Option<Value>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

/// The four kinds of capability an MCP server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl Capability {
    const ALL: [Self; 4] = [Self::Tools, Self::Prompts, Self::Resources, Self::ResourceTemplates];

    fn option(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The field of an item (and of a projection object) that identifies it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::ResourceTemplates => "uriTemplate",
        }
    }

    /// The JSON-RPC method that lists this kind, and the result's array field.
    pub(crate) fn of_list_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            _ => None,
        }
    }

    pub(crate) fn result_field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Who sees an entry.
#[derive(Debug, Clone, PartialEq)]
enum Audience {
    Everyone,
    Members { groups: Vec<String>, roles: Vec<String> },
}

/// An allowed item with the fields it shows instead of the upstream's.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    audience: Audience,
    description: Option<String>,
    annotations: Option<Value>,
    meta: Option<Value>,
}

/// How entries are matched to users.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AccessMode {
    AllPublic,
    RolesAndGroups { group_claim: String, role_claim: String },
}

/// A built capability filter.
#[derive(Debug)]
pub(crate) struct CapabilityFilter {
    pub(crate) name: String,
    /// By [`Capability::index`]; `None` = pass everything through.
    lists: [Option<HashMap<String, Entry>>; 4],
    /// Resource templates in their written order, for matching `resources/read` URIs.
    templates: Vec<String>,
    pub(crate) access: AccessMode,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<InboundPolicy, ConfigError> {
    let options: FilterOptions = super::super::typed_options(options, &format!("policy `{name}`"))?;
    Ok(InboundPolicy::CapabilityFilter(Arc::new(CapabilityFilter::from_options(name, options)?)))
}

impl CapabilityFilter {
    fn from_options(name: &str, options: FilterOptions) -> Result<Self, ConfigError> {
        let invalid = |option: String, problem: String, fix: &str| ConfigError::InvalidOption {
            owner: format!("policy `{name}`"),
            option,
            problem,
            fix: fix.to_owned(),
        };
        let access = match options.access_control {
            None => AccessMode::AllPublic,
            Some(control) => match control.mode.as_str() {
                "allPublic" => {
                    if control.group_claim.is_some() || control.role_claim.is_some() {
                        return Err(invalid(
                            "accessControl.groupClaim".into(),
                            "is set in allPublic mode, where no entry is restricted".into(),
                            "set accessControl.mode to rolesAndGroups, or remove groupClaim / roleClaim",
                        ));
                    }
                    AccessMode::AllPublic
                }
                "rolesAndGroups" => AccessMode::RolesAndGroups {
                    group_claim: control
                        .group_claim
                        .filter(|claim| !claim.trim().is_empty())
                        .unwrap_or_else(|| COGNITO_GROUP_CLAIM.to_owned()),
                    // Zuplo's default; Cognito puts no roles in its ID tokens
                    // unless a pre-token-generation trigger adds them.
                    role_claim: control
                        .role_claim
                        .filter(|claim| !claim.trim().is_empty())
                        .unwrap_or_else(|| DEFAULT_ROLE_CLAIM.to_owned()),
                },
                "function" => {
                    return Err(invalid(
                        "accessControl.mode".into(),
                        "`function` delegates to a custom resolver, code this gateway does not run".into(),
                        "use rolesAndGroups with groups / roles on each entry, or allPublic",
                    ));
                }
                other => {
                    return Err(invalid(
                        "accessControl.mode".into(),
                        format!("`{other}` is not a mode"),
                        "use allPublic (everyone sees the allowed items) or rolesAndGroups",
                    ));
                }
            },
        };
        let written = [options.tools, options.prompts, options.resources, options.resource_templates];
        let mut lists: [Option<HashMap<String, Entry>>; 4] = Default::default();
        let mut templates = Vec::new();
        for (kind, items) in Capability::ALL.into_iter().zip(written) {
            let Some(items) = items else { continue };
            let mut list = HashMap::new();
            for (index, item) in items.into_iter().enumerate() {
                let option = format!("{}[{index}]", kind.option());
                let (key, entry) =
                    entry(kind, item, &access).map_err(|(problem, fix)| invalid(option, problem, fix))?;
                if kind == Capability::ResourceTemplates {
                    templates.push(key.clone());
                }
                list.insert(key, entry);
            }
            lists[kind.index()] = Some(list);
        }
        Ok(Self { name: name.to_owned(), lists, templates, access })
    }

    /// Whether list results of `kind` are filtered at all.
    pub(crate) fn filters(&self, kind: Capability) -> bool {
        self.lists[kind.index()].is_some()
    }

    /// Whether `identity` may see the item `key` of `kind`.
    pub(crate) fn allows(&self, kind: Capability, key: &str, identity: &Identity) -> bool {
        match &self.lists[kind.index()] {
            None => true,
            Some(list) => list.get(key).is_some_and(|entry| self.visible(entry, identity)),
        }
    }

    /// Whether `resources/read` of `uri` is allowed: a listed resource, or a
    /// URI of a listed template. With `resources` restricted and no template
    /// list, an unlisted URI is refused (the gateway cannot know which
    /// templates the upstream has).
    pub(crate) fn allows_read(&self, uri: &str, identity: &Identity) -> bool {
        let resources = &self.lists[Capability::Resources.index()];
        let templates = &self.lists[Capability::ResourceTemplates.index()];
        if resources.is_none() && templates.is_none() {
            return true;
        }
        if resources.as_ref().is_some_and(|_| self.allows(Capability::Resources, uri, identity)) {
            return true;
        }
        if resources.is_none() && templates.is_some() && !self.templates.iter().any(|t| template_matches(t, uri)) {
            // A plain resource (no template of ours matches): `resources` passes it.
            return true;
        }
        self.templates.iter().any(|template| {
            template_matches(template, uri) && self.allows(Capability::ResourceTemplates, template, identity)
        })
    }

    fn visible(&self, entry: &Entry, identity: &Identity) -> bool {
        match (&self.access, &entry.audience) {
            (AccessMode::AllPublic, _) | (_, Audience::Everyone) => true,
            (AccessMode::RolesAndGroups { .. }, Audience::Members { groups, roles }) => {
                groups.iter().any(|group| identity.groups.contains(group))
                    || roles.iter().any(|role| identity.roles.contains(role))
            }
        }
    }

    /// Filters a list result's items in place: drops what `identity` may not
    /// see and applies the projections. `false` when the kind is unfiltered.
    pub(crate) fn filter_items(&self, kind: Capability, items: &mut Vec<Value>, identity: &Identity) -> bool {
        let Some(list) = &self.lists[kind.index()] else {
            return false;
        };
        items.retain_mut(|item| {
            let Some(entry) = item.get(kind.key()).and_then(Value::as_str).and_then(|key| list.get(key)) else {
                return false;
            };
            if !self.visible(entry, identity) {
                return false;
            }
            if let Some(object) = item.as_object_mut() {
                if let Some(description) = &entry.description {
                    object.insert("description".into(), Value::String(description.clone()));
                }
                if let Some(annotations) = &entry.annotations {
                    object.insert("annotations".into(), annotations.clone());
                }
                if let Some(meta) = &entry.meta {
                    object.insert("_meta".into(), meta.clone());
                }
            }
            true
        });
        true
    }

    /// Every tool name this filter can let through (the bounded label set
    /// of the per-tool metrics); `None` when tools pass unfiltered.
    pub(crate) fn tool_names(&self) -> Option<impl Iterator<Item = &str>> {
        self.lists[Capability::Tools.index()].as_ref().map(|list| list.keys().map(String::as_str))
    }
}

/// One allow-list entry: its key and what it shows; errors as (problem, fix).
fn entry(kind: Capability, item: Value, access: &AccessMode) -> Result<(String, Entry), (String, &'static str)> {
    let projection = match item {
        Value::String(key) => ProjectionOptions {
            name: None,
            uri: None,
            uri_template: None,
            description: None,
            annotations: None,
            meta: None,
            public: None,
            groups: None,
            roles: None,
        }
        .with_key(kind, key),
        Value::Object(_) => serde_json::from_value::<ProjectionOptions>(item).map_err(|err| {
            (
                format!("is not a projection object: {err}"),
                "use a name, or an object with the item's key (name / uri / uriTemplate) and optional description, annotations, _meta, public, groups, roles",
            )
        })?,
        _ => return Err(("is neither a string nor an object".into(), "use a name or a projection object")),
    };
    let key = match (kind, &projection.name, &projection.uri, &projection.uri_template) {
        (Capability::Tools | Capability::Prompts, Some(key), None, None)
        | (Capability::Resources, None, Some(key), None)
        | (Capability::ResourceTemplates, None, None, Some(key)) => key.trim().to_owned(),
        _ => {
            return Err((
                format!("does not identify the item by `{}` alone", kind.key()),
                "tools and prompts are named by `name`, resources by `uri`, resource templates by `uriTemplate`",
            ));
        }
    };
    if key.is_empty() {
        return Err((format!("has an empty `{}`", kind.key()), "give the item's name as the upstream lists it"));
    }
    let restricted = projection.groups.is_some() || projection.roles.is_some();
    let audience = match access {
        AccessMode::AllPublic if restricted || projection.public.is_some() => {
            return Err((
                "says who may see it (public / groups / roles) while accessControl.mode is allPublic".into(),
                "set accessControl.mode to rolesAndGroups (with groupClaim, e.g. cognito:groups), or remove public / groups / roles",
            ));
        }
        AccessMode::AllPublic => Audience::Everyone,
        AccessMode::RolesAndGroups { .. } => {
            if projection.public == Some(true) && restricted {
                return Err((
                    "is public and also lists groups or roles".into(),
                    "either keep \"public\": true (everyone sees it) or list groups / roles, not both",
                ));
            }
            if projection.public == Some(true) {
                Audience::Everyone
            } else if restricted {
                Audience::Members {
                    groups: projection.groups.unwrap_or_default(),
                    roles: projection.roles.unwrap_or_default(),
                }
            } else {
                return Err((
                    "says neither who may see it nor that it is public (accessControl.mode is rolesAndGroups)".into(),
                    "add \"public\": true, or \"groups\": [\"...\"] (Cognito group names)",
                ));
            }
        }
    };
    Ok((
        key,
        Entry {
            audience,
            description: projection.description,
            annotations: projection.annotations,
            meta: projection.meta,
        },
    ))
}

impl ProjectionOptions {
    fn with_key(mut self, kind: Capability, key: String) -> Self {
        match kind {
            Capability::Tools | Capability::Prompts => self.name = Some(key),
            Capability::Resources => self.uri = Some(key),
            Capability::ResourceTemplates => self.uri_template = Some(key),
        }
        self
    }
}

/// Whether `uri` is an expansion of the RFC 6570 `template` (each `{...}`
/// stands for any run of characters; the literal parts must appear in order).
fn template_matches(template: &str, uri: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        literals.push(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => rest = &rest[open + close + 1..],
            None => return template == uri,
        }
    }
    literals.push(rest);
    let Some((first, others)) = literals.split_first() else {
        return false;
    };
    let Some(mut remaining) = uri.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = others.split_last() else {
        return remaining.is_empty();
    };
    for literal in middle {
        match remaining.find(literal) {
            Some(at) if !literal.is_empty() => remaining = &remaining[at + literal.len()..],
            Some(_) => {}
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Capability, CapabilityFilter, template_matches};
    use crate::gateway::store::Identity;

    fn filter(options: serde_json::Value) -> Result<CapabilityFilter, String> {
        let options = serde_json::from_value(options).map_err(|err| err.to_string())?;
        CapabilityFilter::from_options("filter", options).map_err(|err| err.to_string())
    }

    fn member(groups: &[&str]) -> Identity {
        Identity { email: None, groups: groups.iter().map(|g| (*g).to_owned()).collect(), roles: vec![] }
    }

    #[test]
    fn omitted_passes_empty_hides() {
        let f = filter(json!({"tools": []})).unwrap();
        assert!(!f.allows(Capability::Tools, "echo", &member(&[])));
        assert!(f.allows(Capability::Prompts, "anything", &member(&[])));
        let mut items = vec![json!({"name": "echo"})];
        assert!(f.filter_items(Capability::Tools, &mut items, &member(&[])));
        assert!(items.is_empty());
    }

    #[test]
    fn groups_and_projections() {
        let f = filter(json!({
            "tools": [{"name": "echo", "public": true, "description": "Echo, curated"},
                      {"name": "add", "groups": ["admins"], "_meta": {"team": "x"}}],
            "accessControl": {"mode": "rolesAndGroups", "groupClaim": "cognito:groups"}
        }))
        .unwrap();
        let upstream = vec![
            json!({"name": "echo", "description": "raw"}),
            json!({"name": "add"}),
            json!({"name": "whoami_headers"}),
        ];
        let mut for_reader = upstream.clone();
        f.filter_items(Capability::Tools, &mut for_reader, &member(&["readers"]));
        assert_eq!(for_reader, vec![json!({"name": "echo", "description": "Echo, curated"})]);
        let mut for_admin = upstream;
        f.filter_items(Capability::Tools, &mut for_admin, &member(&["admins"]));
        assert_eq!(for_admin.len(), 2);
        assert_eq!(for_admin[1]["_meta"], json!({"team": "x"}));
        assert!(!f.allows(Capability::Tools, "add", &member(&["readers"])));
        assert!(f.allows(Capability::Tools, "add", &member(&["admins"])));
    }

    #[test]
    fn config_errors_name_option_and_fix() {
        let text = filter(json!({"tools": [{"name": "echo", "groups": ["a"]}]})).unwrap_err();
        assert!(
            text.contains("policy `filter`") && text.contains("`tools[0]`") && text.contains("allPublic"),
            "{text}"
        );
        assert!(text.contains("Fix: set accessControl.mode to rolesAndGroups"), "{text}");
        let text = filter(json!({"tools": [{"name": "echo", "public": true, "groups": ["a"]}],
            "accessControl": {"mode": "rolesAndGroups"}}))
        .unwrap_err();
        assert!(text.contains("`tools[0]`") && text.contains("public and also lists groups"), "{text}");
        let text = filter(json!({"tools": ["echo"], "accessControl": {"mode": "rolesAndGroups"}})).unwrap_err();
        assert!(text.contains("neither who may see it") && text.contains("Fix:"), "{text}");
        let text = filter(json!({"tools": [{"name": "echo", "colour": "red"}]})).unwrap_err();
        assert!(text.contains("`tools[0]`") && text.contains("colour"), "{text}");
        let text = filter(json!({"accessControl": {"mode": "everyone"}})).unwrap_err();
        assert!(text.contains("accessControl.mode") && text.contains("rolesAndGroups"), "{text}");
    }

    #[test]
    fn resource_templates_match_uris() {
        assert!(template_matches("file:///docs/{name}", "file:///docs/readme.md"));
        assert!(template_matches("users://{id}/profile", "users://42/profile"));
        assert!(!template_matches("users://{id}/profile", "users://42/secrets"));
        assert!(!template_matches("file:///docs/{name}", "file:///etc/passwd"));
        let f = filter(json!({"resources": ["config://app"], "resourceTemplates": ["file:///docs/{name}"]})).unwrap();
        assert!(f.allows_read("config://app", &member(&[])));
        assert!(f.allows_read("file:///docs/a", &member(&[])));
        assert!(!f.allows_read("file:///etc/passwd", &member(&[])));
    }
}
