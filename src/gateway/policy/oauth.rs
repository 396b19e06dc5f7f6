//! What the two OAuth policy types build ([`OAuthPolicy`]: where users log
//! in, how their ID token is checked, the lifetimes and scopes of the
//! gateway's own tokens) and the option checks they share. Its request-time
//! part is the bearer-token check in the proxy, which runs before every other
//! policy of a route (it has to: the others read the token's claims).

use std::time::Duration;

use url::Url;

use crate::contract::{GatewayOptions, InvalidValue, Seconds};
use crate::gateway::config::error::ConfigError;
use crate::secret::Secret;

const DEFAULT_SCOPE: &str = "openid profile email";
const DEFAULT_ACCESS_TTL: u64 = 900;
const DEFAULT_REFRESH_TTL: u64 = 2_592_000;

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
    /// `gateway.requiredScopes`: scopes of the gateway's own (never sent to
    /// the IdP) that every token for these routes must carry.
    pub(crate) required_scopes: Vec<String>,
    /// cognigate's `gateway.allowedGroups`: when set, only users in one of
    /// these groups get past consent and refresh.
    pub(crate) allowed_groups: Option<Vec<String>>,
    /// cognigate's `gateway.resourceServer`: the resource server whose scopes
    /// machine clients carry; `None` is the gateway's public URL.
    pub(crate) resource_server: Option<String>,
}

impl OAuthPolicy {
    /// Whether a user with `groups` may use routes of this policy.
    pub(crate) fn admits(&self, groups: &[String]) -> bool {
        self.allowed_groups.as_ref().is_none_or(|allowed| allowed.iter().any(|group| groups.contains(group)))
    }

    /// What a route's tokens may carry (its protected-resource
    /// `scopes_supported`): the login scopes, then the required ones.
    /// `offline_access` is never among them (MCP authorization 2025-11-25:
    /// it is the authorization server's business, not the resource's).
    pub(crate) fn supported_scopes(&self) -> Vec<&str> {
        let mut scopes: Vec<&str> = self.browser_login.scope.split_whitespace().collect();
        for scope in &self.required_scopes {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
        scopes.retain(|scope| *scope != OFFLINE_ACCESS);
        scopes
    }
}

/// The OpenID scope that asks for refresh tokens. Cognito has none (a login
/// asking for it fails), so it is accepted from clients and never forwarded.
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// `gateway.requiredScopes`: scope tokens (RFC 6749 3.3 syntax), not
/// `offline_access`.
fn required_scopes(name: &str, gateway: Option<&GatewayOptions>) -> Result<Vec<String>, ConfigError> {
    let scopes = gateway.and_then(|gateway| gateway.required_scopes.clone()).unwrap_or_default();
    for scope in &scopes {
        let valid = !scope.is_empty()
            && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid || scope == OFFLINE_ACCESS {
            return Err(ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: "gateway.requiredScopes".to_owned(),
                problem: format!("`{scope}` is not a scope a route can require"),
                fix:
                    "list scope names without spaces or quotes, e.g. [\"mcp:tools\"]; offline_access cannot be required"
                        .to_owned(),
            });
        }
    }
    Ok(scopes)
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

/// What `gateway` (cognigate's own options) sets on an OAuth policy.
pub(super) struct GatewaySettings {
    pub(super) access: Duration,
    pub(super) refresh: Duration,
    pub(super) allowed_groups: Option<Vec<String>>,
    pub(super) required_scopes: Vec<String>,
    pub(super) resource_server: Option<String>,
}

pub(super) fn gateway_settings(name: &str, gateway: Option<GatewayOptions>) -> Result<GatewaySettings, ConfigError> {
    let required_scopes = required_scopes(name, gateway.as_ref())?;
    let gateway = gateway.unwrap_or_default();
    let resource_server = match gateway.resource_server.as_deref().map(str::trim) {
        None => None,
        // Cognito's `ResourceServerIdentifierType`.
        Some(id)
            if (1..=256).contains(&id.len())
                && id.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) =>
        {
            Some(id.to_owned())
        }
        Some(id) => {
            return Err(ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: "gateway.resourceServer".into(),
                problem: format!("`{id}` is not a Cognito resource server identifier"),
                fix: "give the identifier `cognigate up` created (the gateway's public URL, e.g. https://mcp.example.com), 1 to 256 characters without spaces, quotes or backslashes, or remove the option".into(),
            });
        }
    };
    let access = seconds(name, "gateway.accessTokenTtlSeconds", gateway.access_token_ttl_seconds, DEFAULT_ACCESS_TTL)?;
    let refresh =
        seconds(name, "gateway.refreshTokenTtlSeconds", gateway.refresh_token_ttl_seconds, DEFAULT_REFRESH_TTL)?;
    let allowed_groups = match gateway.allowed_groups {
        None => None,
        Some(groups) => {
            let groups: Vec<String> = groups.into_iter().map(|g| g.trim().to_owned()).collect();
            if groups.is_empty() || groups.iter().any(String::is_empty) {
                return Err(ConfigError::InvalidOption {
                    owner: format!("policy `{name}`"),
                    option: "gateway.allowedGroups".into(),
                    problem: "is empty or has an empty group name (nobody could sign in)".into(),
                    fix: "list the Cognito groups whose members may use the route, e.g. [\"engineering\"], or remove the option".into(),
                });
            }
            Some(groups)
        }
    };
    Ok(GatewaySettings { access, refresh, allowed_groups, required_scopes, resource_server })
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

#[cfg(test)]
impl OAuthPolicy {
    /// A Cognito-shaped policy with the default scopes and lifetimes.
    pub(crate) fn for_tests() -> Self {
        Self {
            name: "test".into(),
            oidc: Oidc {
                issuer: "https://idp.example".into(),
                jwks_url: Url::parse("https://idp.example/jwks").expect("a URL"),
            },
            browser_login: BrowserLogin {
                url: Url::parse("https://idp.example/authorize").expect("a URL"),
                token_url: Url::parse("https://idp.example/token").expect("a URL"),
                client_id: "c".into(),
                client_secret: Secret::new("s"),
                scope: DEFAULT_SCOPE.into(),
            },
            require_token_use_id: true,
            access_token_ttl: Duration::from_secs(DEFAULT_ACCESS_TTL),
            refresh_token_ttl: Duration::from_secs(DEFAULT_REFRESH_TTL),
            required_scopes: Vec::new(),
            allowed_groups: None,
            resource_server: None,
        }
    }
}
