//! `mcp-oauth-inbound`: any OpenID Connect provider, given by its issuer, JWKS,
//! authorize and token URLs and a confidential client. https only, except on a
//! loopback host (a local provider in development).

use serde::Deserialize;
use serde_json::Value;

use super::oauth::{BrowserLogin, OAuthPolicy, Oidc, gateway_settings, parse_url, scope_or_default};
use super::{Built, PolicyKind};
use crate::contract::{self, GatewayOptions};
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::secret::Secret;

pub(crate) const POLICY_TYPE: &str = "mcp-oauth-inbound";
pub(crate) const EXPORT: &str = "McpOAuthInboundPolicy";

pub(super) const KIND: PolicyKind = PolicyKind { policy_type: POLICY_TYPE, export: EXPORT, export_aliases: &[], build };

/// `mcp-oauth-inbound` options (after `$env` substitution).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GenericOptions {
    pub(crate) oidc: OidcOptions,
    pub(crate) browser_login: BrowserLoginOptions,
    #[serde(default)]
    pub(crate) gateway: Option<GatewayOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OidcOptions {
    pub(crate) issuer: String,
    pub(crate) jwks_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BrowserLoginOptions {
    pub(crate) url: String,
    pub(crate) token_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    let options: GenericOptions = typed_options(options, &format!("policy `{name}`"))?;
    Ok(Built::OAuth(std::sync::Arc::new(OAuthPolicy::from_generic(name, options)?)))
}

impl OAuthPolicy {
    fn from_generic(name: &str, options: GenericOptions) -> Result<Self, ConfigError> {
        let url_option = |option: &str, value: &str| {
            let url = parse_url(value).map_err(|problem| ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: option.to_owned(),
                problem,
                fix: "give an absolute https URL (http only for localhost / 127.0.0.1)".to_owned(),
            })?;
            if url.scheme() != "https" && !(url.scheme() == "http" && contract::is_loopback(&url)) {
                return Err(ConfigError::InvalidOption {
                    owner: format!("policy `{name}`"),
                    option: option.to_owned(),
                    problem: format!("`{value}` is not https"),
                    fix: "use https (http is accepted only for localhost / 127.0.0.1)".to_owned(),
                });
            }
            Ok(url)
        };
        url_option("oidc.issuer", &options.oidc.issuer)?;
        let settings = gateway_settings(name, options.gateway)?;
        let login = options.browser_login;
        if login.client_id.trim().is_empty() {
            return Err(ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: "browserLogin.clientId".into(),
                problem: "is empty".into(),
                fix: "set the OIDC client id".into(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            oidc: Oidc { issuer: options.oidc.issuer, jwks_url: url_option("oidc.jwksUrl", &options.oidc.jwks_url)? },
            browser_login: BrowserLogin {
                url: url_option("browserLogin.url", &login.url)?,
                token_url: url_option("browserLogin.tokenUrl", &login.token_url)?,
                client_id: login.client_id.trim().to_owned(),
                client_secret: Secret::new(login.client_secret),
                scope: scope_or_default(login.scope),
            },
            require_token_use_id: false,
            access_token_ttl: settings.access,
            refresh_token_ttl: settings.refresh,
            allowed_groups: settings.allowed_groups,
            required_scopes: settings.required_scopes,
            resource_server: settings.resource_server,
        })
    }
}
