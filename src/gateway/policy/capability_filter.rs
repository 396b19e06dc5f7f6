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
//! login). A machine client (client credentials) has no groups: its roles are
//! its scopes, so an entry's `roles` names the scopes that see it
//! (`"roles": ["mcp:all"]`), in the shape Zuplo's filter already has.
//!
//! On a request it refuses a body it cannot read strictly (see `jsonrpc`), a
//! request whose `Mcp-Method` / `Mcp-Name` headers disagree with its body
//! (2026-07-28 transport: HTTP 400, JSON-RPC -32020, so the headers cannot
//! smuggle a hidden tool past an intermediary that trusts them), and direct
//! use of a hidden item (JSON-RPC -32601, before anything reaches the
//! upstream). Then it filters every message the upstream sends back that
//! holds a list (`result.tools`, `prompts`, `resources`,
//! `resourceTemplates`), whatever request it answers and on whichever stream
//! it comes (a POST's JSON or SSE, a GET stream, a `Last-Event-ID` replay):
//! matching answers to requests by id would let an id the upstream
//! normalises (`-0` answered as `0`) carry the hidden items out.
//!
//! A resource template's `{var}` matches what RFC 6570 simple expansion
//! produces (`[^/?#,]+`, one path segment), and a URI that any hidden
//! template matches is refused even when a visible one matches too.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use memchr::memmem;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Built, InboundPolicy, PolicyKind, RequestCtx, ResponseFilter, Step, StepFuture, ready, rpc_error};
use crate::gateway::claims::ClaimNames;
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::gateway::jsonrpc::{INVALID_REQUEST, Message, Rpc};
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

    /// The array field of a list result that holds this kind.
    pub(crate) fn result_field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// [`Self::result_field`] as it stands in JSON, quotes included.
    fn quoted_result_field(self) -> &'static [u8] {
        match self {
            Self::Tools => b"\"tools\"",
            Self::Prompts => b"\"prompts\"",
            Self::Resources => b"\"resources\"",
            Self::ResourceTemplates => b"\"resourceTemplates\"",
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

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    let options: FilterOptions = typed_options(options, &format!("policy `{name}`"))?;
    Ok(Built::Inbound(Arc::new(FilterPolicy(Arc::new(CapabilityFilter::from_options(name, options)?)))))
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

    /// Whether `resources/read` of `uri` is allowed: a listed resource is
    /// decided by its own entry; otherwise the listed templates that match it
    /// decide, and one hidden from `identity` is enough to refuse (a public
    /// `files://{dir}/{name}` must not open what an admins-only
    /// `files://secret/{name}` guards). With `resources` restricted, a URI no
    /// entry covers is refused; with only templates listed, it passes as a
    /// plain resource.
    pub(crate) fn allows_read(&self, uri: &str, identity: &Identity) -> bool {
        let resources = &self.lists[Capability::Resources.index()];
        let templates = &self.lists[Capability::ResourceTemplates.index()];
        if let Some(entry) = resources.as_ref().and_then(|list| list.get(uri)) {
            return self.visible(entry, identity);
        }
        let mut matched = false;
        if let Some(templates) = templates {
            for template in self.templates.iter().filter(|template| template_matches(template, uri)) {
                if !templates.get(template.as_str()).is_some_and(|entry| self.visible(entry, identity)) {
                    return false;
                }
                matched = true;
            }
        }
        matched || resources.is_none()
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

/// Whether `uri` is an expansion of the RFC 6570 `template` by simple
/// string expansion (level 1): each `{var}` stands for one or more
/// characters other than `/`, `?`, `#` and `,`, which that expansion would
/// have percent-encoded, so a variable never spans a path segment. The
/// literal parts must match in order; a template with an operator
/// (`{+path}`, `{/a}`, ...) or an unclosed brace matches only itself.
pub(crate) fn template_matches(template: &str, uri: &str) -> bool {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return template == uri;
        };
        let variable = &rest[open + 1..open + close];
        if variable.is_empty() || variable.starts_with(['+', '#', '.', '/', ';', '?', '&', '=', ',', '!', '@', '|']) {
            return template == uri;
        }
        parts.push(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    parts.push(rest);
    expands(&parts, uri)
}

/// Whether `uri` is `parts[0]`, a variable's value, `parts[1]`, ... in turn.
fn expands(parts: &[&str], uri: &str) -> bool {
    let Some((literal, variables)) = parts.split_first() else {
        return uri.is_empty();
    };
    let Some(rest) = uri.strip_prefix(literal) else {
        return false;
    };
    if variables.is_empty() {
        return rest.is_empty();
    }
    // A value is a non-empty run of allowed characters; try each length
    // (templates are short, and so is the search).
    let run = rest.find(['/', '?', '#', ',']).unwrap_or(rest.len());
    (1..=run).rev().filter(|end| rest.is_char_boundary(*end)).any(|end| expands(variables, &rest[end..]))
}

/// The request-time side of a [`CapabilityFilter`].
#[derive(Debug)]
struct FilterPolicy(Arc<CapabilityFilter>);

/// JSON-RPC "method not found": what a hidden item looks like to the client.
const METHOD_NOT_FOUND: i64 = -32601;
/// 2026-07-28 transport: `Mcp-Method` / `Mcp-Name` disagree with the body.
const HEADER_MISMATCH: i64 = -32020;
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

impl InboundPolicy for FilterPolicy {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn on_request<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        let filter = &self.0;
        let step = match ctx.rpc {
            // What the upstream would make of a body read another way cannot
            // be checked, so it does not go.
            Some(Err(err)) => {
                answer(StatusCode::BAD_REQUEST, rpc_error(Value::Null, err.code, &err.message), "refused")
            }
            Some(Ok(rpc)) => match header_mismatch(ctx.headers, rpc) {
                Some(problem) => {
                    let id = rpc.first().and_then(|m| m.id.clone()).unwrap_or(Value::Null);
                    answer(StatusCode::BAD_REQUEST, rpc_error(id, HEADER_MISMATCH, problem), "header_mismatch")
                }
                None => match hidden_items(filter, rpc, ctx.identity) {
                    Some(response) => Step::Answer { response, outcome: "hidden" },
                    None => self.response_step(),
                },
            },
            None => self.response_step(),
        };
        ready(step)
    }

    fn reads_body(&self) -> bool {
        true
    }

    fn claim_names(&self) -> Option<ClaimNames> {
        match &self.0.access {
            AccessMode::RolesAndGroups { group_claim, role_claim } => {
                Some(ClaimNames { groups: group_claim.clone(), roles: Some(role_claim.clone()) })
            }
            AccessMode::AllPublic => None,
        }
    }

    fn labels_tool(&self, name: &str) -> bool {
        self.0.lists[Capability::Tools.index()].as_ref().is_none_or(|list| list.contains_key(name))
    }
}

impl FilterPolicy {
    /// Every answer of the upstream passes the filter when it restricts any list.
    fn response_step(&self) -> Step {
        if self.0.lists.iter().any(Option::is_some) { Step::FilterResponse(self.0.clone()) } else { Step::Continue }
    }
}

fn answer(status: StatusCode, body: Value, outcome: &'static str) -> Step {
    Step::Answer { response: (status, axum::Json(body)).into_response(), outcome }
}

impl ResponseFilter for CapabilityFilter {
    fn filter_message(&self, message: &mut Value, identity: &Identity) {
        let Some(Value::Object(result)) = message.get_mut("result") else {
            return;
        };
        for kind in Capability::ALL {
            if let Some(Value::Array(items)) = result.get_mut(kind.result_field()) {
                self.filter_items(kind, items, identity);
            }
        }
    }

    fn concerns(&self, data: &[u8]) -> bool {
        // Most answers (a tool's result) name no list field at all, and a
        // byte search settles those without parsing. A key can spell a list
        // field in other bytes only through a `\u` escape, so a body with
        // one is parsed like one that names a field.
        let may_hold_list = memmem::find(data, b"\\u").is_some()
            || Capability::ALL
                .into_iter()
                .any(|kind| self.filters(kind) && memmem::find(data, kind.quoted_result_field()).is_some());
        if !may_hold_list {
            return false;
        }
        let Ok(ListFields(found)) = serde_json::from_slice::<ListFields>(data) else {
            // Not JSON: nothing a client would read as a list.
            return false;
        };
        Capability::ALL.into_iter().any(|kind| found & (1 << kind.index()) != 0 && self.filters(kind))
    }
}

/// The list fields (by [`Capability::index`] bit) that any message's
/// `result` of a JSON-RPC body holds; read with nothing built.
struct ListFields(u8);

impl<'de> serde::Deserialize<'de> for ListFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Which level of a message the visitor is at.
        #[derive(Clone, Copy)]
        enum Level {
            /// A body: one message or a batch.
            Body,
            Message,
            Result,
        }
        struct Scan(Level);
        impl<'de> serde::de::DeserializeSeed<'de> for Scan {
            type Value = u8;
            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u8, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for Scan {
            type Value = u8;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u8, A::Error> {
                let mut found = 0;
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match (self.0, key.unwrap_or_default()) {
                        (Level::Body | Level::Message, "result") => {
                            found |= map.next_value_seed(Scan(Level::Result))?
                        }
                        (Level::Result, field) => {
                            if let Some(kind) = Capability::ALL.into_iter().find(|kind| kind.result_field() == field) {
                                found |= 1 << kind.index();
                            }
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(found)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u8, A::Error> {
                let mut found = 0;
                if matches!(self.0, Level::Body) {
                    while let Some(more) = seq.next_element_seed(Scan(Level::Message))? {
                        found |= more;
                    }
                } else {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                }
                Ok(found)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<u8, E> {
                Ok(0)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<u8, E> {
                Ok(0)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<u8, E> {
                Ok(0)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<u8, E> {
                Ok(0)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<u8, E> {
                Ok(0)
            }
            fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
                Ok(0)
            }
        }
        deserializer.deserialize_any(Scan(Level::Body)).map(ListFields)
    }
}

/// A map key, as the name [`ListFields`] looks for that it is (compared
/// where it lies in the body, without a copy).
struct Key(Option<&'static str>);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 5] = ["result", "tools", "prompts", "resources", "resourceTemplates"];
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(NAMES.into_iter().find(|name| *name == v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Why the transport headers disagree with the body, if they do.
fn header_mismatch(headers: &HeaderMap, rpc: &Rpc) -> Option<&'static str> {
    let method = headers.get(MCP_METHOD);
    let name = headers.get(MCP_NAME);
    if method.is_none() && name.is_none() {
        return None;
    }
    if rpc.batch {
        return Some("Mcp-Method / Mcp-Name headers cannot describe a batch");
    }
    let message = rpc.first()?;
    if let Some(method) = method
        && method.to_str().ok() != message.method.as_deref()
    {
        return Some("the Mcp-Method header does not match the body's method");
    }
    if let Some(name) = name
        && name.to_str().ok() != message.name.as_deref()
    {
        return Some("the Mcp-Name header does not match the body's name");
    }
    None
}

/// The answer for a request that uses an item the caller may not see: as if
/// the upstream did not have it (-32601), before it reaches the upstream. In a
/// batch, every request is answered (the others with -32600) and nothing is
/// forwarded.
fn hidden_items(filter: &CapabilityFilter, rpc: &Rpc, identity: &Identity) -> Option<Response> {
    let hidden: Vec<bool> = rpc.messages.iter().map(|message| is_hidden(filter, message, identity)).collect();
    if !hidden.contains(&true) {
        return None;
    }
    let errors: Vec<Value> = rpc
        .messages
        .iter()
        .zip(&hidden)
        .filter_map(|(message, hidden)| {
            let id = message.id.clone()?;
            Some(if *hidden {
                rpc_error(id, METHOD_NOT_FOUND, &not_found_text(message))
            } else {
                rpc_error(id, INVALID_REQUEST, "the batch was refused: another request in it names an unknown item")
            })
        })
        .collect();
    let body = if rpc.batch {
        Value::Array(errors)
    } else {
        match errors.into_iter().next() {
            Some(error) => error,
            // A notification: nothing to answer, and it does not go either.
            None => return Some(StatusCode::ACCEPTED.into_response()),
        }
    };
    Some((StatusCode::OK, axum::Json(body)).into_response())
}

fn not_found_text(message: &Message) -> String {
    match (message.method.as_deref(), message.name.as_deref()) {
        (Some("tools/call"), Some(name)) => format!("Unknown tool: {name}"),
        (Some("prompts/get"), Some(name)) => format!("Unknown prompt: {name}"),
        (_, Some(uri)) => format!("Unknown resource: {uri}"),
        _ => "Method not found".to_owned(),
    }
}

fn is_hidden(filter: &CapabilityFilter, message: &Message, identity: &Identity) -> bool {
    let named = match (message.method.as_deref(), message.name.as_deref()) {
        (Some("tools/call"), Some(name)) => !filter.allows(Capability::Tools, name, identity),
        (Some("prompts/get"), Some(name)) => !filter.allows(Capability::Prompts, name, identity),
        (Some("resources/read" | "resources/subscribe" | "resources/unsubscribe"), Some(uri)) => {
            !filter.allows_read(uri, identity)
        }
        // A call without a name: the upstream answers it with its own error.
        _ => false,
    };
    let completion = match (message.method.as_deref(), &message.reference) {
        (Some("completion/complete"), Some((kind, key))) if kind == "ref/prompt" => {
            !filter.allows(Capability::Prompts, key, identity)
        }
        (Some("completion/complete"), Some((kind, key))) if kind == "ref/resource" => {
            !filter.allows_read(key, identity)
        }
        _ => false,
    };
    named || completion
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
        Identity {
            email: None,
            username: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            roles: vec![],
            machine: false,
        }
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
    fn every_list_is_filtered_whatever_it_answers() {
        use crate::gateway::policy::ResponseFilter;
        let f = filter(json!({"tools": ["echo"]})).unwrap();
        let escaped = br#"{"jsonrpc":"2.0","id":0,"result":{"\u0074ools":[{"name":"echo"},{"name":"add"}]}}"#;
        assert!(f.concerns(escaped), "keys are compared as JSON reads them");
        let batch = br#"[{"id":"x","result":{"content":[]}},{"id":9,"result":{"tools":[{"name":"add"}]}}]"#;
        assert!(f.concerns(batch));
        for other in [
            &br#"{"id":1,"result":{"content":[{"type":"text","text":"tools"}]}}"#[..],
            b"not json",
            br#"{"method":"x","params":{"tools":[]}}"#,
        ] {
            assert!(!f.concerns(other), "{}", String::from_utf8_lossy(other));
        }
        assert!(!f.concerns(br#"{"id":1,"result":{"prompts":[]}}"#), "prompts pass unfiltered here");
        let mut message: serde_json::Value = serde_json::from_slice(escaped).unwrap();
        f.filter_message(&mut message, &member(&[]));
        assert_eq!(message["result"]["tools"], json!([{"name": "echo"}]));
    }

    #[test]
    fn resource_templates_match_uris() {
        assert!(template_matches("file:///docs/{name}", "file:///docs/readme.md"));
        assert!(template_matches("users://{id}/profile", "users://42/profile"));
        assert!(!template_matches("users://{id}/profile", "users://42/secrets"));
        assert!(!template_matches("file:///docs/{name}", "file:///etc/passwd"));
        // RFC 6570 simple expansion: a variable is one segment, never empty.
        assert!(!template_matches("files://{path}", "files://secret/key"));
        assert!(!template_matches("files://{path}", "files://"));
        assert!(!template_matches("q://{a}", "q://x?admin=1"));
        assert!(template_matches("files://{dir}/{name}", "files://secret/key"));
        assert!(template_matches("users://{id}-{part}", "users://a-b-c"));
        assert!(!template_matches("files://{+path}", "files://secret/key"), "operators match only themselves");
        let f = filter(json!({"resources": ["config://app"], "resourceTemplates": ["file:///docs/{name}"]})).unwrap();
        assert!(f.allows_read("config://app", &member(&[])));
        assert!(f.allows_read("file:///docs/a", &member(&[])));
        assert!(!f.allows_read("file:///etc/passwd", &member(&[])));
    }
}
