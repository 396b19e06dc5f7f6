//! Inbound policies: what a route's `x-zuplo-route.policies.inbound` may name.
//!
//! One module per policy type, each owning its options type (as it appears
//! in `policies.json`), its boot validation and what it builds; [`KINDS`] is
//! the one table the loader dispatches on by `policyType`. Both types today
//! are OAuth policies ([`cognito`]: `mcp-cognito-oauth-inbound`, [`generic`]:
//! `mcp-oauth-inbound`); they build an [`OAuthPolicy`], whose request hook
//! is the bearer-token check in the proxy and whose login is the IdP leg.
//!
//! Adding a policy type (e.g. a header or rate-limit policy): a new module
//! with its options type and a [`PolicyKind`], a variant of [`InboundPolicy`]
//! for what it builds, an entry in [`KINDS`]; the route keeps it in its
//! inbound list (see `Route`) and the proxy runs its hook there.

mod cognito;
mod generic;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::ConfigError;
use super::env::Env;
use crate::contract::{GatewayOptions, InvalidValue, Seconds};
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "openid profile email";
const DEFAULT_ACCESS_TTL: u64 = 900;
const DEFAULT_REFRESH_TTL: u64 = 2_592_000;

/// One policy type: how it is named in `policies.json` and how its options
/// (after `$env` substitution) become a runtime policy.
pub(crate) struct PolicyKind {
    pub(crate) policy_type: &'static str,
    /// The `handler.export` Zuplo pairs with this type.
    pub(crate) export: &'static str,
    /// Validates the options of the policy `name` and builds it.
    pub(crate) build: fn(name: &str, options: Value, env: &Env) -> Result<InboundPolicy, ConfigError>,
}

/// Every policy type this gateway implements.
pub(crate) static KINDS: [PolicyKind; 2] = [cognito::KIND, generic::KIND];

/// The policy type named `policy_type`.
pub(crate) fn kind(policy_type: &str) -> Option<&'static PolicyKind> {
    KINDS.iter().find(|kind| kind.policy_type == policy_type)
}

/// The supported types, for an error message: "`a` or `b`".
pub(crate) fn supported_types() -> String {
    KINDS.iter().map(|kind| format!("`{}`", kind.policy_type)).collect::<Vec<_>>().join(" or ")
}

/// A built inbound policy, shared by every route that names it.
#[derive(Debug, Clone)]
pub(crate) enum InboundPolicy {
    /// Who may call the route: the gateway's own bearer tokens, issued after
    /// a login at the policy's identity provider.
    OAuth(Arc<OAuthPolicy>),
}

/// A validated inbound OAuth policy: where users log in and how their ID token
/// is checked, plus the lifetimes of the gateway's own tokens.
#[derive(Debug)]
pub(crate) struct OAuthPolicy {
    pub(crate) name: String,
    pub(crate) oidc: Oidc,
    pub(crate) browser_login: BrowserLogin,
    /// Cognito ID tokens carry `token_use: id`; an access token presented in
    /// their place must be refused. Generic OIDC providers have no such claim.
    pub(crate) require_token_use_id: bool,
    pub(crate) access_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
}

#[derive(Debug)]
pub(crate) struct Oidc {
    /// Compared byte for byte with the ID token's `iss`.
    pub(crate) issuer: String,
    /// Where the signing keys are fetched (may differ from the issuer's host
    /// under `AWS_ENDPOINT_URL`).
    pub(crate) jwks_url: Url,
}

#[derive(Debug)]
pub(crate) struct BrowserLogin {
    pub(crate) url: Url,
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) scope: String,
}

pub(super) fn scope_or_default(scope: Option<String>) -> String {
    match scope {
        Some(scope) if !scope.trim().is_empty() => scope.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => DEFAULT_SCOPE.to_owned(),
    }
}

pub(super) fn ttls(name: &str, gateway: Option<GatewayOptions>) -> Result<(Duration, Duration), ConfigError> {
    let gateway = gateway.unwrap_or_default();
    let access = seconds(name, "gateway.accessTokenTtlSeconds", gateway.access_token_ttl_seconds, DEFAULT_ACCESS_TTL)?;
    let refresh =
        seconds(name, "gateway.refreshTokenTtlSeconds", gateway.refresh_token_ttl_seconds, DEFAULT_REFRESH_TTL)?;
    Ok((access, refresh))
}

fn seconds(name: &str, option: &str, value: Option<Seconds>, default: u64) -> Result<Duration, ConfigError> {
    let parsed = match value {
        None => Some(default),
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Text(text)) => text.trim().parse().ok(),
    };
    match parsed {
        Some(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError::InvalidOption {
            owner: format!("policy `{name}`"),
            option: option.to_owned(),
            problem: "is not a positive whole number of seconds".into(),
            fix: format!("give a number of seconds, e.g. {default}"),
        }),
    }
}

/// The problem of a contract rule, without the value it repeats (the option
/// names it already).
pub(super) fn problem_of(err: InvalidValue) -> String {
    format!("`{}`: {}", err.value, err.problem)
}

pub(super) fn parse_url(value: &str) -> Result<Url, String> {
    Url::parse(value.trim()).map_err(|err| format!("`{value}` is not a URL ({err})"))
}
