//! `mcp-token-exchange-inbound`: the upstream is an OAuth-protected resource
//! of its own, and the gateway holds the credential it wants (see
//! `gateway::upstream_oauth`). Zuplo's options, as its projects write them:
//! `displayName`, `id`, `summary`, `protectedResourceMetadataUrl`,
//! `authMode` (`user-oauth` | `service-account`), `scopes`,
//! `clientRegistration` (`{"mode": "auto"}` or `{"mode": "manual",
//! "clientId": …, "clientSecret": "$env(…)"}`).
//!
//! Each request gets `Authorization: Bearer` with the upstream's own token
//! (never the client's), refreshed first when due. A user who has not
//! connected gets the connect-required answer instead of the upstream's 401;
//! so does one whose grant the upstream revoked (the upstream's 401 on a
//! token the gateway could not renew).

use std::sync::Arc;

use axum::http::{HeaderValue, Method, header};
use serde::Deserialize;
use serde_json::Value;

use super::{Built, InboundPolicy, PolicyKind, RequestCtx, Step, StepFuture};
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::gateway::upstream_oauth::elicit::{Asking, unavailable};
use crate::gateway::upstream_oauth::{AuthMode, ClientRegistration, Upstream, UpstreamAuthError};
use crate::secret::Secret;

pub(crate) const POLICY_TYPE: &str = "mcp-token-exchange-inbound";
const EXPORT: &str = "McpTokenExchangeInboundPolicy";

pub(super) const KIND: PolicyKind = PolicyKind { policy_type: POLICY_TYPE, export: EXPORT, export_aliases: &[], build };

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenExchangeOptions {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    /// Zuplo's catalogue text; shown nowhere here.
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    protected_resource_metadata_url: Option<String>,
    #[serde(default)]
    auth_mode: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    client_registration: Option<RegistrationOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegistrationOptions {
    mode: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// The built policy: the upstream whose credentials it applies.
#[derive(Debug)]
pub(crate) struct TokenExchange {
    name: String,
    upstream: Arc<Upstream>,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    let options: TokenExchangeOptions = typed_options(options, &format!("policy `{name}`"))?;
    let upstream = upstream_from(name, options)?;
    Ok(Built::Inbound(Arc::new(TokenExchange { name: name.to_owned(), upstream: Arc::new(upstream) })))
}

fn upstream_from(name: &str, options: TokenExchangeOptions) -> Result<Upstream, ConfigError> {
    let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
        owner: format!("policy `{name}`"),
        option: option.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let _ = &options.summary;
    let id = options.id.clone().unwrap_or_else(|| name.to_owned());
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(invalid(
            if options.id.is_some() { "id" } else { "name" },
            format!(
                "`{id}` names the upstream in URLs and stored keys, and may hold only letters, digits, '-', '_' and '.'"
            ),
            "set `id` to a short name such as `linear`",
        ));
    }
    let mode = match options.auth_mode.as_deref().unwrap_or("user-oauth") {
        "user-oauth" => AuthMode::UserOAuth,
        "service-account" => AuthMode::ServiceAccount,
        other => {
            return Err(invalid(
                "authMode",
                format!("`{other}` is not a mode this gateway knows"),
                "use \"user-oauth\" (each user connects their own account) or \"service-account\" (one client-credentials account for the route)",
            ));
        }
    };
    let metadata_url = match &options.protected_resource_metadata_url {
        Some(text) => {
            let url = url::Url::parse(text).map_err(|err| {
                invalid(
                    "protectedResourceMetadataUrl",
                    format!("`{text}` is not a URL: {err}"),
                    "give the upstream's https URL of its /.well-known/oauth-protected-resource document",
                )
            })?;
            crate::gateway::upstream_oauth::discovery::check_url(&url).map_err(|problem| {
                invalid("protectedResourceMetadataUrl", problem, "use https (http only for localhost and 127.0.0.1)")
            })?;
            Some(url)
        }
        None => None,
    };
    let registration = match options.client_registration {
        None => ClientRegistration::Auto,
        Some(registration) => match registration.mode.as_str() {
            "auto" => {
                if registration.client_id.is_some() || registration.client_secret.is_some() {
                    return Err(invalid(
                        "clientRegistration.clientId",
                        "is set with mode \"auto\", which registers the gateway by itself".into(),
                        "use mode \"manual\" to give a client id and secret, or remove them",
                    ));
                }
                ClientRegistration::Auto
            }
            "manual" => {
                let Some(client_id) = registration.client_id.filter(|id| !id.trim().is_empty()) else {
                    return Err(invalid(
                        "clientRegistration.clientId",
                        "is missing for mode \"manual\"".into(),
                        "register the gateway at the upstream's authorization server and set clientId to \"$env(NAME)\"",
                    ));
                };
                ClientRegistration::Manual {
                    client_id,
                    client_secret: registration.client_secret.filter(|secret| !secret.is_empty()).map(Secret::new),
                }
            }
            other => {
                return Err(invalid(
                    "clientRegistration.mode",
                    format!("`{other}` is not a registration mode"),
                    "use \"auto\" (client-id metadata document or dynamic registration) or \"manual\"",
                ));
            }
        },
    };
    if mode == AuthMode::ServiceAccount
        && !matches!(registration, ClientRegistration::Manual { client_secret: Some(_), .. })
    {
        // A service account is a confidential client the upstream's owner
        // issued; registering one by itself would give it no access.
        return Err(invalid(
            "clientRegistration",
            "authMode \"service-account\" needs a client the upstream's authorization server issued, with a secret"
                .into(),
            "set clientRegistration to {\"mode\": \"manual\", \"clientId\": \"$env(UPSTREAM_CLIENT_ID)\", \"clientSecret\": \"$env(UPSTREAM_CLIENT_SECRET)\"}",
        ));
    }
    let display_name = options.display_name.filter(|text| !text.trim().is_empty()).unwrap_or_else(|| id.clone());
    Ok(Upstream::new(id, display_name, mode, metadata_url, options.scopes, registration))
}

impl TokenExchange {
    fn asking<'a>(&self, ctx: &'a RequestCtx<'a>) -> Asking<'a> {
        let id = ctx
            .rpc
            .and_then(|rpc| rpc.as_ref().ok())
            .and_then(|rpc| rpc.first())
            .and_then(|message| message.id.clone())
            .unwrap_or(Value::Null);
        Asking {
            subject: &ctx.claims.sub,
            client_id: &ctx.claims.client_id,
            slug: ctx.route.strip_prefix("/mcp/").unwrap_or(ctx.route),
            id,
            http_post: ctx.method == Method::POST,
        }
    }

    /// Notes whether an `initialize` declares URL-mode elicitation.
    async fn note_capabilities(&self, ctx: &RequestCtx<'_>) {
        let Some(Ok(rpc)) = ctx.rpc else { return };
        if rpc.first().and_then(|message| message.method.as_deref()) != Some("initialize") {
            return;
        }
        let declared = ctx
            .body
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .and_then(|value| value.pointer("/params/capabilities/elicitation").cloned())
            .is_some_and(|elicitation| elicitation.get("url").is_some());
        self.upstream.remember_elicitation(ctx.store, &ctx.claims.sub, &ctx.claims.client_id, declared).await;
    }

    async fn credential_step(&self, ctx: &RequestCtx<'_>, force: bool) -> Step {
        match self.upstream.access_token(ctx.store, &ctx.claims.sub, ctx.upstream, force).await {
            Ok(token) => match HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    Step::SetHeaders(vec![(header::AUTHORIZATION, value)])
                }
                Err(_) => Step::Answer {
                    response: unavailable(&self.upstream, self.asking(ctx).id, ctx.method == Method::POST),
                    outcome: "upstream_auth_error",
                },
            },
            Err(UpstreamAuthError::ConnectRequired) => Step::Answer {
                response: self.upstream.connect_required(ctx.store, &self.asking(ctx)).await,
                outcome: "connect_required",
            },
            Err(err) => {
                tracing::warn!(policy = %self.name, upstream = %self.upstream.id, error = %err, "no upstream credential");
                Step::Answer {
                    response: unavailable(&self.upstream, self.asking(ctx).id, ctx.method == Method::POST),
                    outcome: "upstream_auth_error",
                }
            }
        }
    }
}

impl InboundPolicy for TokenExchange {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_request<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            self.note_capabilities(ctx).await;
            self.credential_step(ctx, false).await
        })
    }

    fn upstream_rejected<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            tracing::info!(policy = %self.name, upstream = %self.upstream.id, "the upstream refused its token; renewing it");
            self.credential_step(ctx, true).await
        })
    }

    fn reads_body(&self) -> bool {
        // The id of a request answered with connect-required, and the
        // client's capabilities at `initialize`.
        true
    }

    fn upstream_oauth(&self) -> Option<&Arc<Upstream>> {
        Some(&self.upstream)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TokenExchangeOptions, upstream_from};
    use crate::gateway::upstream_oauth::{AuthMode, ClientRegistration};

    fn options(value: serde_json::Value) -> TokenExchangeOptions {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn zuplo_options_are_accepted_as_written() {
        let upstream = upstream_from(
            "mcp-token-exchange-linear",
            options(json!({
                "displayName": "Linear",
                "protectedResourceMetadataUrl": "https://mcp.linear.app/.well-known/oauth-protected-resource",
                "authMode": "user-oauth",
                "scopes": [],
                "clientRegistration": {"mode": "auto"}
            })),
        )
        .unwrap();
        assert_eq!(upstream.id, "mcp-token-exchange-linear");
        assert_eq!(upstream.display_name, "Linear");
        assert_eq!(upstream.mode, AuthMode::UserOAuth);
        assert!(matches!(upstream.registration, ClientRegistration::Auto));
        let reference = upstream_from(
            "p",
            options(json!({"displayName": "Linear", "id": "linear", "scopes": [], "summary": "Native Linear remote MCP server."})),
        )
        .unwrap();
        assert_eq!(reference.id, "linear");
    }

    #[test]
    fn inapplicable_options_are_refused_naming_the_alternative() {
        let err =
            upstream_from("p", options(json!({"authMode": "service-account", "clientRegistration": {"mode": "auto"}})))
                .unwrap_err()
                .to_string();
        assert!(err.contains("clientRegistration") && err.contains("\"manual\"") && err.contains("Fix:"), "{err}");
        let err = upstream_from("p", options(json!({"authMode": "api-key"}))).unwrap_err().to_string();
        assert!(err.contains("authMode") && err.contains("service-account"), "{err}");
        let err = upstream_from("p", options(json!({"protectedResourceMetadataUrl": "http://mcp.example.com/prm"})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not https"), "{err}");
        let err =
            upstream_from("p", options(json!({"clientRegistration": {"mode": "manual"}}))).unwrap_err().to_string();
        assert!(err.contains("clientId") && err.contains("$env"), "{err}");
        let err = upstream_from("p", options(json!({"id": "a:b"}))).unwrap_err().to_string();
        assert!(err.contains("`id`"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let upstream = upstream_from(
            "p",
            options(json!({"authMode": "service-account", "clientRegistration": {"mode": "manual", "clientId": "c", "clientSecret": "s3cret-value"}})),
        )
        .unwrap();
        assert!(!format!("{upstream:?}").contains("s3cret-value"));
    }
}
