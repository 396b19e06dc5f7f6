//! Boot configuration: `config/policies.json`, `config/routes.oas.json` and the
//! env file, turned into validated runtime types.
//!
//! The flow is files → serde shapes ([`files`]) → `$env(NAME)` substitution on
//! every option string ([`env`]) → fallible conversion into [`GatewayConfig`]
//! (`gateway::policy`: one file per policy type, each with its options type
//! and validation, picked by `policyType`). Every error names what is wrong (the
//! policy or route, the option) and how to fix it, because it is the first thing
//! a new user reads.

pub(crate) mod env;
pub(crate) mod error;
mod files;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

pub(crate) use env::{Env, EnvFileError};
pub(crate) use error::ConfigError;
use error::typed_options;
use files::{PoliciesFile, ProxyOptions, RoutesFile, ZuploRoute};

use crate::gateway::aggregate::spec::{AGGREGATE_EXPORT, Aggregate, AggregateOptions};
use crate::gateway::claims::ClaimNames;
use crate::gateway::policy::capability_filter::COGNITO_GROUP_CLAIM;
use crate::gateway::policy::{self, Built, InboundPolicy, OAuthPolicy};

pub(crate) const PROXY_EXPORT: &str = "McpProxyHandler";
const ROUTE_PREFIX: &str = "/mcp/";

/// Everything the gateway serves, validated.
#[derive(Debug)]
pub struct GatewayConfig {
    /// By slug (`echo` for `/mcp/echo`).
    pub(crate) routes: HashMap<String, Arc<Route>>,
}

/// One `/mcp/{slug}` route.
///
/// Its inbound policies are exactly one OAuth policy (`policy`, whose hook is
/// the token check that always runs first) and the policies that act on
/// requests after it (`inbound`), in the order `policies.inbound` names them.
/// A route whose `inbound` is empty keeps the proxy's plain path: no body is
/// read.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) slug: String,
    /// `/mcp/{slug}`
    pub(crate) path: String,
    pub(crate) upstream: Url,
    pub(crate) methods: Vec<axum::http::Method>,
    pub(crate) policy: Arc<OAuthPolicy>,
    pub(crate) inbound: Vec<Arc<dyn InboundPolicy>>,
    /// The ID-token claims a login on this route keeps as the user's groups
    /// and roles (from its capability filters; Cognito's groups by default).
    pub(crate) claims: ClaimNames,
    /// The member routes of an `McpAggregateHandler` route, which has no
    /// upstream of its own (its `upstream` is a `cognigate-aggregate:` URL
    /// that names the route and is never requested).
    pub(crate) aggregate: Option<Arc<Aggregate>>,
    /// The operation's OpenAPI `summary` and `description`, for the registry.
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
}

impl Route {
    /// Whether any policy needs the JSON-RPC body (capability filters).
    pub(crate) fn reads_body(&self) -> bool {
        self.inbound.iter().any(|policy| policy.reads_body())
    }

    /// The longest lifetime of a token the route's policies sign with the
    /// gateway's key (identity JWTs), in seconds.
    pub(crate) fn signed_token_lifetime(&self) -> i64 {
        self.inbound.iter().map(|policy| policy.signed_token_lifetime()).max().unwrap_or(0)
    }
}

impl GatewayConfig {
    /// Reads `policies.json` and `routes.oas.json` from `config_dir`.
    pub fn load(config_dir: &Path, env: &Env) -> Result<Self, ConfigError> {
        let policies_path = config_dir.join("policies.json");
        let routes_path = config_dir.join("routes.oas.json");
        let policies: PoliciesFile = read_json(&policies_path)?;
        let routes: RoutesFile = read_json(&routes_path)?;
        Self::from_files(policies, routes, env, &routes_path.display().to_string())
    }

    fn from_files(
        policies: PoliciesFile,
        routes: RoutesFile,
        env: &Env,
        routes_path: &str,
    ) -> Result<Self, ConfigError> {
        let mut known: HashMap<String, PolicySlot> = HashMap::new();
        for entry in policies.policies {
            if known.contains_key(&entry.name) {
                return Err(ConfigError::Policy {
                    policy: entry.name,
                    problem: "is defined twice in policies.json".into(),
                    fix: "give each policy a unique name".into(),
                });
            }
            known.insert(entry.name.clone(), PolicySlot::Unbuilt(entry));
        }

        let mut built = Vec::new();
        for (path, item) in routes.paths {
            built.push(build_route(&path, item, &mut known, env, routes_path)?);
        }
        let kinds: HashMap<String, bool> =
            built.iter().map(|(route, aggregate)| (route.path.clone(), aggregate.is_none())).collect();
        let mut out: HashMap<String, Arc<Route>> = HashMap::new();
        let mut aggregates = Vec::new();
        for (route, options) in built {
            match options {
                None => {
                    out.insert(route.slug.clone(), Arc::new(route));
                }
                Some(options) => aggregates.push((route, options)),
            }
        }
        for (mut route, options) in aggregates {
            let aggregate = Aggregate::from_options(&route.path, options, |path| kinds.get(path).copied())?;
            let members: Vec<&Route> =
                aggregate.members.iter().filter_map(|member| out.get(&member.slug).map(|route| &**route)).collect();
            route.claims = aggregate_claim_names(&route, &members)?;
            route.aggregate = Some(Arc::new(aggregate));
            out.insert(route.slug.clone(), Arc::new(route));
        }
        if out.is_empty() {
            return Err(ConfigError::Shape {
                path: routes_path.to_owned(),
                problem: "declares no routes; add a /mcp/{name} path whose handler is McpProxyHandler".into(),
            });
        }
        for (name, slot) in &known {
            if let PolicySlot::Unbuilt(entry) = slot {
                tracing::warn!(policy = %name, policy_type = %entry.policy_type, "policy is not used by any route; ignored");
            }
        }
        Ok(Self { routes: out })
    }
}

enum PolicySlot {
    Unbuilt(files::PolicyEntry),
    Built(Built),
}

/// Builds a policy the first time a route refers to it, so that policies of
/// other kinds that no route uses (a Zuplo project may carry some) do not stop
/// the boot.
fn policy_for(
    name: &str,
    route: &str,
    known: &mut HashMap<String, PolicySlot>,
    env: &Env,
) -> Result<Built, ConfigError> {
    let Some(slot) = known.get_mut(name) else {
        let mut names: Vec<&String> = known.keys().collect();
        names.sort();
        return Err(ConfigError::Route {
            route: route.to_owned(),
            problem: format!(
                "names the inbound policy `{name}`, which policies.json does not define (defined: {names:?})"
            ),
            fix: "fix the name in x-zuplo-route.policies.inbound, or run cognigate up to write the policy".into(),
        });
    };
    let entry = match slot {
        PolicySlot::Built(policy) => return Ok(policy.clone()),
        PolicySlot::Unbuilt(entry) => entry,
    };
    let Some(kind) = policy::kind(&entry.policy_type) else {
        return Err(ConfigError::Policy {
            policy: name.to_owned(),
            problem: format!("has the policy type `{}`, which this gateway does not support", entry.policy_type),
            fix: format!("use {}, or remove the policy from the route", policy::supported_types()),
        });
    };
    if !kind.accepts_export(&entry.handler.export) {
        return Err(ConfigError::Policy {
            policy: name.to_owned(),
            problem: format!(
                "has handler.export `{}`, which is not supported for `{}`",
                entry.handler.export, entry.policy_type
            ),
            fix: format!("set handler.export to `{}`", kind.export),
        });
    }
    let options = substitute_tree(&entry.handler.options, &format!("policy `{name}`"), "", env)?;
    let policy = (kind.build)(name, options, env)?;
    *slot = PolicySlot::Built(policy.clone());
    Ok(policy)
}

/// One `paths` entry of `routes.oas.json` as a [`Route`]: the slug, the
/// methods with their upstream, and the route's inbound policies; for an
/// aggregated route, its options too (checked once every route is known).
fn build_route(
    path: &str,
    item: Value,
    known: &mut HashMap<String, PolicySlot>,
    env: &Env,
    routes_path: &str,
) -> Result<(Route, Option<AggregateOptions>), ConfigError> {
    let slug = route_slug(path)?;
    let Value::Object(item) = item else {
        return Err(ConfigError::Shape {
            path: routes_path.to_owned(),
            problem: format!("paths.{path} is not an object"),
        });
    };
    let Operations { methods, target, inbound, title, description } = operations(path, item, env)?;
    let (policy, inbound) = route_policies(path, &inbound, known, env)?;
    let claims = claim_names(path, &inbound)?;
    let (upstream, aggregate) = match target {
        Target::Upstream(upstream) => (upstream, None),
        Target::Aggregate(options) => (aggregate_url(path)?, Some(options)),
    };
    let route = Route {
        slug: slug.to_owned(),
        path: path.to_owned(),
        upstream,
        methods,
        policy,
        inbound,
        claims,
        aggregate: None,
        title,
        description,
    };
    Ok((route, aggregate))
}

/// What an aggregated route's `upstream` holds: a URL naming the route,
/// which nothing requests.
fn aggregate_url(path: &str) -> Result<Url, ConfigError> {
    Url::parse(&format!("cognigate-aggregate:{path}"))
        .map_err(|err| route_error(path, format!("cannot be named as a URL: {err}"), "use a path like /mcp/all"))
}

/// The claims a login on an aggregated route keeps: those its own filters
/// and every member's filters read, which must agree (one login serves all
/// of them).
fn aggregate_claim_names(route: &Route, members: &[&Route]) -> Result<ClaimNames, ConfigError> {
    let default = ClaimNames { groups: COGNITO_GROUP_CLAIM.to_owned(), roles: None };
    let own = route.inbound.iter().any(|policy| policy.claim_names().is_some()).then(|| route.claims.clone());
    let mut chosen: Option<(ClaimNames, &str)> = own.map(|names| (names, route.path.as_str()));
    for member in members {
        if !member.inbound.iter().any(|policy| policy.claim_names().is_some()) {
            continue;
        }
        match &chosen {
            Some((names, owner)) if *names != member.claims => {
                return Err(route_error(
                    &route.path,
                    format!(
                        "puts together `{owner}` and `{}`, whose capability filters read different group or role claims",
                        member.path
                    ),
                    "give the capability filters of every member the same groupClaim and roleClaim",
                ));
            }
            Some(_) => {}
            None => chosen = Some((member.claims.clone(), member.path.as_str())),
        }
    }
    Ok(chosen.map_or(default, |(names, _)| names))
}

fn route_error(path: &str, problem: impl Into<String>, fix: &str) -> ConfigError {
    ConfigError::Route { route: path.to_owned(), problem: problem.into(), fix: fix.to_owned() }
}

/// `echo` of `/mcp/echo`: literal, one segment, a conservative alphabet.
fn route_slug(path: &str) -> Result<&str, ConfigError> {
    let slug = path.strip_prefix(ROUTE_PREFIX).unwrap_or_default();
    if slug.contains(['{', '}']) {
        return Err(route_error(
            path,
            "has a path parameter; routes are literal",
            "declare one path per upstream, e.g. /mcp/echo",
        ));
    }
    if slug.is_empty() || !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(route_error(
            path,
            "is not of the form /mcp/{name}",
            "use a path like /mcp/echo (letters, digits, '-', '_', '.')",
        ));
    }
    Ok(slug)
}

/// What the operations of a route declare; they must agree on the upstream
/// and the policies, since the gateway serves one route per path.
struct Operations {
    methods: Vec<axum::http::Method>,
    target: Target,
    inbound: Vec<String>,
    title: Option<String>,
    description: Option<String>,
}

/// Where a route's requests go: an upstream, or the members of an
/// aggregated route.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Upstream(Url),
    Aggregate(AggregateOptions),
}

fn operations(path: &str, item: serde_json::Map<String, Value>, env: &Env) -> Result<Operations, ConfigError> {
    let mut methods = Vec::new();
    let mut target: Option<(Target, Vec<String>)> = None;
    let (mut title, mut description) = (None, None);
    for (key, operation) in item {
        let method = match key.as_str() {
            "get" => axum::http::Method::GET,
            "post" => axum::http::Method::POST,
            "delete" => axum::http::Method::DELETE,
            "put" | "patch" | "head" | "options" | "trace" => {
                return Err(route_error(
                    path,
                    format!("declares `{key}`, which MCP's streamable HTTP transport does not use"),
                    "declare only post, get and delete",
                ));
            }
            // x-zuplo-path, summary, description, parameters, servers: Zuplo / OpenAPI metadata.
            _ => continue,
        };
        let text = |field: &str| operation.get(field).and_then(Value::as_str).map(str::to_owned);
        title = title.or_else(|| text("summary"));
        description = description.or_else(|| text("description"));
        let (upstream, inbound) = operation_target(path, &key, &operation, env)?;
        match &target {
            Some((seen, policies)) if *seen != upstream || *policies != inbound => {
                return Err(route_error(
                    path,
                    format!("`{key}` has a different rewritePattern or inbound policies than the other methods"),
                    "give post, get and delete the same handler options and policies",
                ));
            }
            _ => target = Some((upstream, inbound)),
        }
        methods.push(method);
    }
    let Some((target, inbound)) = target else {
        return Err(route_error(
            path,
            "declares no post/get/delete operation",
            "add post (and get, delete) with x-zuplo-route",
        ));
    };
    Ok(Operations { methods, target, inbound, title, description })
}

/// One operation's `x-zuplo-route`: its upstream URL (or aggregate options)
/// and inbound policy names.
fn operation_target(path: &str, key: &str, operation: &Value, env: &Env) -> Result<(Target, Vec<String>), ConfigError> {
    let Some(zuplo) = operation.get("x-zuplo-route") else {
        return Err(route_error(
            path,
            format!("`{key}` has no x-zuplo-route"),
            "add x-zuplo-route with the McpProxyHandler handler",
        ));
    };
    let zuplo: ZuploRoute = serde_json::from_value(zuplo.clone()).map_err(|err| {
        route_error(
            path,
            format!("`{key}`.x-zuplo-route is malformed: {err}"),
            "give each operation an x-zuplo-route with handler {export: McpProxyHandler, options: {rewritePattern}} and policies.inbound",
        )
    })?;
    let owner = format!("route `{path}`");
    let export = zuplo.handler.export.as_str();
    if export != PROXY_EXPORT && export != AGGREGATE_EXPORT {
        return Err(route_error(
            path,
            format!("`{key}` uses the handler `{export}`, which this gateway does not support"),
            "use handler.export McpProxyHandler with options.rewritePattern = the upstream MCP URL, or McpAggregateHandler with options.members",
        ));
    }
    let options = substitute_tree(&zuplo.handler.options, &owner, "", env)?;
    if export == AGGREGATE_EXPORT {
        let options: AggregateOptions = typed_options(options, &owner)?;
        return Ok((Target::Aggregate(options), zuplo.policies.inbound));
    }
    let options: ProxyOptions = typed_options(options, &owner)?;
    Ok((Target::Upstream(upstream_url(&owner, &options.rewrite_pattern)?), zuplo.policies.inbound))
}

/// The proxy handler's `rewritePattern`: an absolute http(s) URL, taken as it
/// is (Zuplo's `${...}` templates are not expanded here).
fn upstream_url(owner: &str, rewrite_pattern: &str) -> Result<Url, ConfigError> {
    let invalid = |problem: String, fix: &str| ConfigError::InvalidOption {
        owner: owner.to_owned(),
        option: "rewritePattern".into(),
        problem,
        fix: fix.to_owned(),
    };
    let upstream = Url::parse(rewrite_pattern.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            invalid(
                format!("`{rewrite_pattern}` is not an absolute http(s) URL"),
                "give the upstream MCP server's URL, e.g. http://127.0.0.1:8000/mcp",
            )
        })?;
    if rewrite_pattern.contains("${") {
        return Err(invalid(
            "uses a ${...} template, which this gateway does not expand".into(),
            "give the literal upstream URL (use $env(NAME) for values from the env file)",
        ));
    }
    Ok(upstream)
}

/// A route's OAuth policy and the policies that run after it, in order.
type RoutePolicies = (Arc<OAuthPolicy>, Vec<Arc<dyn InboundPolicy>>);

/// The route's one OAuth policy among the inbound policies it names (none
/// would leave the route open, two would make the login ambiguous), and the
/// others in their order.
fn route_policies(
    path: &str,
    inbound: &[String],
    known: &mut HashMap<String, PolicySlot>,
    env: &Env,
) -> Result<RoutePolicies, ConfigError> {
    let mut oauth = None;
    let mut others = Vec::new();
    for name in inbound {
        let policy = match policy_for(name, path, known, env)? {
            Built::OAuth(policy) => policy,
            Built::Inbound(other) => {
                others.push(other);
                continue;
            }
        };
        if oauth.replace(policy).is_some() {
            return Err(route_error(
                path,
                "names more than one OAuth inbound policy",
                "keep exactly one mcp-cognito-oauth-inbound / mcp-oauth-inbound policy per route",
            ));
        }
    }
    let oauth = oauth_or_refuse(path, oauth)?;
    Ok((oauth, others))
}

/// The group and role claims a route's capability filters read; they must
/// agree, since a login keeps one set of groups for the route.
fn claim_names(path: &str, inbound: &[Arc<dyn InboundPolicy>]) -> Result<ClaimNames, ConfigError> {
    let mut names: Option<ClaimNames> = None;
    for policy in inbound {
        let Some(these) = policy.claim_names() else { continue };
        match &names {
            Some(seen) if *seen != these => {
                return Err(route_error(
                    path,
                    format!(
                        "has capability filters reading different group or role claims (policy `{}`)",
                        policy.name()
                    ),
                    "give every mcp-capability-filter-inbound policy of the route the same groupClaim and roleClaim",
                ));
            }
            _ => names = Some(these),
        }
    }
    Ok(names.unwrap_or_else(|| ClaimNames { groups: COGNITO_GROUP_CLAIM.to_owned(), roles: None }))
}

fn oauth_or_refuse(path: &str, oauth: Option<Arc<OAuthPolicy>>) -> Result<Arc<OAuthPolicy>, ConfigError> {
    oauth.ok_or_else(|| {
        route_error(
            path,
            "has no inbound OAuth policy; it would be open to anyone",
            "add the policy name (e.g. cognito-managed-oauth) to x-zuplo-route.policies.inbound",
        )
    })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
    parse_json(&text, &shown)
}

fn parse_json<T: DeserializeOwned>(text: &str, path: &str) -> Result<T, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|err| ConfigError::Json {
        path: path.to_owned(),
        line: err.line(),
        column: err.column(),
        message: err.to_string(),
    })?;
    serde_json::from_value(value).map_err(|err| ConfigError::Shape { path: path.to_owned(), problem: err.to_string() })
}

/// Substitutes `$env(NAME)` in every string of an options tree, naming the
/// option (`gateway.accessTokenTtlSeconds`) in the error.
fn substitute_tree(value: &Value, owner: &str, at: &str, env: &Env) -> Result<Value, ConfigError> {
    Ok(match value {
        Value::String(text) => Value::String(env::substitute(text, env).map_err(|env::UnsetVar(var)| {
            ConfigError::UnsetEnv { owner: owner.to_owned(), option: at.to_owned(), var }
        })?),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, child) in map {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                out.insert(key.clone(), substitute_tree(child, owner, &path, env)?);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, child)| substitute_tree(child, owner, &format!("{at}[{i}]"), env))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{ConfigError, Env, GatewayConfig};
    use serde_json::{Value, json};

    /// The stanza `cognigate up` writes, with one of cognigate's own options
    /// coming from the env file too.
    pub(crate) fn policies() -> Value {
        let region = crate::contract::Region::parse("us-east-1").unwrap();
        let mut stanza =
            serde_json::to_value(crate::contract::cognito_stanza("cognito-managed-oauth", &region)).unwrap();
        stanza["handler"]["options"]["gateway"] = json!({"accessTokenTtlSeconds": "$env(ACCESS_TTL)"});
        json!({ "policies": [stanza] })
    }

    pub(crate) fn routes() -> Value {
        let op = json!({"x-zuplo-route": {
            "handler": {"module": "$import(@zuplo/runtime)", "export": "McpProxyHandler", "options": {"rewritePattern": "$env(UPSTREAM)"}},
            "policies": {"inbound": ["cognito-managed-oauth"]}
        }});
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
            "/mcp/echo": {"x-zuplo-path": {"pathMode": "open-api"}, "post": op, "get": op, "delete": op}
        }})
    }

    pub(crate) fn env() -> Env {
        Env::from_pairs([
            ("COGNITO_USER_POOL_ID", "us-east-1_Pool123"),
            ("COGNITO_USER_POOL_DOMAIN", "team.auth.us-east-1.amazoncognito.com"),
            ("COGNITO_CLIENT_ID", "cid"),
            ("COGNITO_CLIENT_SECRET", "csecret"),
            ("ACCESS_TTL", "600"),
            ("UPSTREAM", "http://127.0.0.1:8000/mcp"),
        ])
    }

    fn load(policies: &Value, routes: &Value, env: &Env) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::from_files(
            serde_json::from_value(policies.clone()).unwrap(),
            serde_json::from_value(routes.clone()).unwrap(),
            env,
            "config/routes.oas.json",
        )
    }

    #[test]
    fn loads_the_cognigate_up_shape() {
        let config = load(&policies(), &routes(), &env()).unwrap();
        let route = &config.routes["echo"];
        assert_eq!(route.path, "/mcp/echo");
        assert_eq!(route.upstream.as_str(), "http://127.0.0.1:8000/mcp");
        assert_eq!(route.methods.len(), 3);
        assert_eq!(route.policy.name, "cognito-managed-oauth");
        assert_eq!(route.policy.access_token_ttl.as_secs(), 600);
        assert_eq!(route.policy.browser_login.client_secret.expose(), "csecret");
    }

    #[test]
    fn loads_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policies.json"), policies().to_string()).unwrap();
        std::fs::write(dir.path().join("routes.oas.json"), routes().to_string()).unwrap();
        let config = GatewayConfig::load(dir.path(), &env()).unwrap();
        assert!(config.routes.contains_key("echo"));
    }

    #[test]
    fn unset_env_names_policy_option_and_variable() {
        let mut env = env();
        env = Env::from_pairs(
            ["COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID", "COGNITO_CLIENT_SECRET", "ACCESS_TTL", "UPSTREAM"]
                .into_iter()
                .map(|k| (k, env.get(k).unwrap().to_owned())),
        );
        let text = load(&policies(), &routes(), &env).unwrap_err().to_string();
        assert!(text.contains("policy `cognito-managed-oauth`"), "{text}");
        assert!(text.contains("option `userPoolDomain`"), "{text}");
        assert!(text.contains("$env(COGNITO_USER_POOL_DOMAIN) is not set"), "{text}");
        assert!(text.contains("Fix: add COGNITO_USER_POOL_DOMAIN="), "{text}");
    }

    #[test]
    fn unset_env_in_nested_option_names_the_path() {
        let full = env();
        let env = Env::from_pairs(
            [
                "COGNITO_USER_POOL_ID",
                "COGNITO_USER_POOL_DOMAIN",
                "COGNITO_CLIENT_ID",
                "COGNITO_CLIENT_SECRET",
                "UPSTREAM",
            ]
            .into_iter()
            .map(|k| (k, full.get(k).unwrap().to_owned())),
        );
        let text = load(&policies(), &routes(), &env).unwrap_err().to_string();
        assert!(text.contains("option `gateway.accessTokenTtlSeconds`"), "{text}");
    }

    #[test]
    fn unknown_policy_on_a_route() {
        let mut routes = routes();
        routes["paths"]["/mcp/echo"]["post"]["x-zuplo-route"]["policies"]["inbound"] = json!(["nope"]);
        routes["paths"]["/mcp/echo"]["get"]["x-zuplo-route"]["policies"]["inbound"] = json!(["nope"]);
        routes["paths"]["/mcp/echo"]["delete"]["x-zuplo-route"]["policies"]["inbound"] = json!(["nope"]);
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("route `/mcp/echo`") && text.contains("`nope`") && text.contains("Fix:"), "{text}");
    }

    #[test]
    fn unsupported_handler_export() {
        let mut routes = routes();
        routes["paths"]["/mcp/echo"]["post"]["x-zuplo-route"]["handler"]["export"] = json!("urlForwardHandler");
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(
            text.contains("`urlForwardHandler`") && text.contains("Fix: use handler.export McpProxyHandler"),
            "{text}"
        );
    }

    #[test]
    fn unsupported_policy_type_and_export() {
        let mut policies = policies();
        policies["policies"][0]["policyType"] = json!("rate-limit-inbound");
        let text = load(&policies, &routes(), &env()).unwrap_err().to_string();
        assert!(
            text.contains("policy `cognito-managed-oauth`")
                && text.contains("`rate-limit-inbound`")
                && text.contains("Fix:"),
            "{text}"
        );

        let mut policies = self::policies();
        policies["policies"][0]["handler"]["export"] = json!("SomethingElse");
        let text = load(&policies, &routes(), &env()).unwrap_err().to_string();
        assert!(text.contains("`SomethingElse`") && text.contains("McpCognitoOAuthInboundPolicy"), "{text}");
    }

    #[test]
    fn unused_unsupported_policy_is_ignored() {
        let mut policies = policies();
        policies["policies"].as_array_mut().unwrap().push(json!({
            "name": "rl", "policyType": "rate-limit-inbound", "handler": {"export": "RateLimitInboundPolicy", "options": {"x": "$env(NOT_SET)"}}
        }));
        assert!(load(&policies, &routes(), &env()).is_ok());
    }

    #[test]
    fn rate_limit_loads_under_either_of_zuplos_export_names() {
        for (export, loads) in
            [("RateLimitInboundPolicy", true), ("BasicRateLimitInboundPolicy", true), ("RateLimitPolicy", false)]
        {
            let mut policies = policies();
            policies["policies"].as_array_mut().unwrap().push(json!({
                "name": "rl", "policyType": "rate-limit-inbound",
                "handler": {"export": export, "options": {"requestsAllowed": 5, "timeWindowMinutes": 1}}
            }));
            let mut routes = routes();
            for method in ["post", "get", "delete"] {
                routes["paths"]["/mcp/echo"][method]["x-zuplo-route"]["policies"]["inbound"] =
                    json!(["cognito-managed-oauth", "rl"]);
            }
            match load(&policies, &routes, &env()) {
                Ok(_) => assert!(loads, "{export} should be refused"),
                Err(err) => {
                    let text = err.to_string();
                    assert!(
                        !loads && text.contains("`RateLimitPolicy`") && text.contains("RateLimitInboundPolicy"),
                        "{export}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn misspelt_option_is_refused() {
        let mut policies = policies();
        policies["policies"][0]["handler"]["options"]["userPoolID"] = json!("x");
        let text = load(&policies, &routes(), &env()).unwrap_err().to_string();
        assert!(text.contains("userPoolID") && text.contains("Fix:"), "{text}");
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let err = super::parse_json::<Value>("{\n  \"policies\": [\n    {,}\n", "config/policies.json").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Json { line: 3, .. }), "{text}");
        assert!(text.starts_with("config/policies.json:3:"), "{text}");
    }

    #[test]
    fn invalid_json_file_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policies.json"), "{\"policies\": [}").unwrap();
        std::fs::write(dir.path().join("routes.oas.json"), routes().to_string()).unwrap();
        let text = GatewayConfig::load(dir.path(), &env()).unwrap_err().to_string();
        assert!(text.contains("policies.json:1:15"), "{text}");
    }

    #[test]
    fn bad_routes() {
        let op = routes()["paths"]["/mcp/echo"]["post"].clone();
        for (path, needle) in
            [("/mcp/{slug}", "path parameter"), ("/other/x", "/mcp/{name}"), ("/mcp/a/b", "/mcp/{name}")]
        {
            let routes = json!({"paths": {path: {"post": op}}});
            let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
            assert!(text.contains(needle), "{path}: {text}");
        }
        let mut routes = routes();
        routes["paths"]["/mcp/echo"]["post"]["x-zuplo-route"]["policies"]["inbound"] = json!([]);
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("different") || text.contains("no inbound OAuth policy"), "{text}");

        let env = Env::from_pairs(
            [("UPSTREAM", "not a url")].into_iter().chain(
                [
                    "COGNITO_USER_POOL_ID",
                    "COGNITO_USER_POOL_DOMAIN",
                    "COGNITO_CLIENT_ID",
                    "COGNITO_CLIENT_SECRET",
                    "ACCESS_TTL",
                ]
                .into_iter()
                .map(|k| (k, "x")),
            ),
        );
        let text = load(&policies(), &self::routes(), &env).unwrap_err().to_string();
        assert!(text.contains("rewritePattern"), "{text}");
    }

    #[test]
    fn route_without_policy_is_refused() {
        let mut op = routes()["paths"]["/mcp/echo"]["post"].clone();
        op["x-zuplo-route"]["policies"]["inbound"] = json!([]);
        let routes = json!({"paths": {"/mcp/open": {"post": op}}});
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("no inbound OAuth policy"), "{text}");
    }

    /// `routes()` plus `/mcp/other` and `/mcp/all` over both.
    fn aggregate_routes(options: Value) -> Value {
        let mut routes = routes();
        let echo = routes["paths"]["/mcp/echo"].clone();
        let mut all = echo.clone();
        for method in ["post", "get", "delete"] {
            all[method]["x-zuplo-route"]["handler"] =
                json!({"export": "McpAggregateHandler", "module": "$import(cognigate)", "options": options});
        }
        routes["paths"]["/mcp/other"] = echo;
        routes["paths"]["/mcp/all"] = all;
        routes
    }

    #[test]
    fn an_aggregated_route_loads_beside_its_members() {
        let routes = aggregate_routes(json!({"members": ["/mcp/echo", "/mcp/other"], "prefixMode": "always"}));
        let config = load(&policies(), &routes, &env()).unwrap();
        let all = &config.routes["all"];
        let aggregate = all.aggregate.as_ref().expect("an aggregate");
        let members: Vec<(&str, &str)> =
            aggregate.members.iter().map(|m| (m.path.as_str(), m.prefix.as_str())).collect();
        assert_eq!(members, [("/mcp/echo", "echo"), ("/mcp/other", "other")]);
        assert_eq!(all.policy.name, "cognito-managed-oauth");
        assert!(config.routes["echo"].aggregate.is_none());
    }

    #[test]
    fn an_aggregated_route_naming_a_missing_member_stops_the_boot() {
        let routes = aggregate_routes(json!({"members": ["/mcp/echo", "/mcp/linear"]}));
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("route `/mcp/all`") && text.contains("`/mcp/linear` is not a route"), "{text}");
        let routes = aggregate_routes(json!({"members": ["/mcp/echo"], "rewritePattern": "http://x"}));
        let text = load(&policies(), &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("rewritePattern"), "{text}");
    }

    #[test]
    fn generic_policy() {
        let policies = json!({"policies": [{
            "name": "oidc", "policyType": "mcp-oauth-inbound",
            "handler": {"export": "McpOAuthInboundPolicy", "options": {
                "oidc": {"issuer": "https://idp.example.com", "jwksUrl": "https://idp.example.com/jwks"},
                "browserLogin": {"url": "http://127.0.0.1:9/authorize", "tokenUrl": "http://127.0.0.1:9/token", "clientId": "c", "clientSecret": "s", "scope": "openid  email"}
            }}
        }]});
        let mut routes = routes();
        for m in ["post", "get", "delete"] {
            routes["paths"]["/mcp/echo"][m]["x-zuplo-route"]["policies"]["inbound"] = json!(["oidc"]);
        }
        let config = load(&policies, &routes, &env()).unwrap();
        let policy = &config.routes["echo"].policy;
        assert_eq!(policy.oidc.issuer, "https://idp.example.com");
        assert_eq!(policy.browser_login.scope, "openid email");
        assert!(!policy.require_token_use_id);

        let mut bad = policies.clone();
        bad["policies"][0]["handler"]["options"]["browserLogin"]["url"] = json!("http://idp.example.com/authorize");
        let text = load(&bad, &routes, &env()).unwrap_err().to_string();
        assert!(text.contains("browserLogin.url") && text.contains("not https"), "{text}");
    }
}
