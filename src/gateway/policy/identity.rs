//! `cognigate-identity-inbound` (cognigate's own; Zuplo has no such policy):
//! a short-lived JWT naming the caller, sent to the upstream in the header the
//! policy names, so an upstream can authorize per user without ever seeing
//! the client's token. It is signed with the gateway's key (EdDSA, `typ`
//! `cognigate-identity+jwt`) and verifiable at the gateway's JWKS
//! (`/oauth/jwks`); its `aud` is the upstream URL and it carries `sub`,
//! `email`, `groups`, `client_id` and `route`.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::{Built, InboundPolicy, PolicyKind, RequestCtx, Step, StepFuture, gateway_error, ready};
use crate::gateway::claims::UpstreamIdentity;
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::gateway::crypto::random_token;
use crate::gateway::store::now;

pub(crate) const POLICY_TYPE: &str = "cognigate-identity-inbound";
const EXPORT: &str = "CognigateIdentityInboundPolicy";
const DEFAULT_HEADER: &str = "x-cognigate-identity";
const DEFAULT_TTL: u64 = 60;
const MAX_TTL: u64 = 3600;

pub(super) const KIND: PolicyKind = PolicyKind { policy_type: POLICY_TYPE, export: EXPORT, export_aliases: &[], build };

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityOptions {
    #[serde(default)]
    header_name: Option<String>,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

#[derive(Debug)]
struct IdentityHeader {
    name: String,
    header: HeaderName,
    ttl_seconds: i64,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    let options: IdentityOptions = typed_options(options, &format!("policy `{name}`"))?;
    let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
        owner: format!("policy `{name}`"),
        option: option.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let written = options.header_name.unwrap_or_else(|| DEFAULT_HEADER.to_owned());
    let header = HeaderName::from_bytes(written.trim().as_bytes()).map_err(|_| {
        invalid("headerName", format!("`{written}` is not a header name"), "use e.g. X-Cognigate-Identity")
    })?;
    if matches!(header.as_str(), "authorization" | "cookie" | "host" | "content-type" | "content-length") {
        return Err(invalid(
            "headerName",
            format!("`{written}` is a standard header with another meaning"),
            "use a header of its own, e.g. X-Cognigate-Identity",
        ));
    }
    let ttl = options.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if ttl == 0 || ttl > MAX_TTL {
        return Err(invalid(
            "ttlSeconds",
            format!("{ttl} is outside 1..={MAX_TTL}"),
            "keep the identity short-lived, e.g. 60",
        ));
    }
    Ok(Built::Inbound(Arc::new(IdentityHeader { name: name.to_owned(), header, ttl_seconds: ttl as i64 })))
}

impl InboundPolicy for IdentityHeader {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_request<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        ready(match self.sign(ctx) {
            Some(value) => Step::SetHeaders(vec![(self.header.clone(), value)]),
            None => Step::Answer {
                response: gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                outcome: "refused",
            },
        })
    }

    fn signed_token_lifetime(&self) -> i64 {
        self.ttl_seconds
    }
}

impl IdentityHeader {
    /// The identity JWT of this request's caller, as a header value that is
    /// never logged.
    fn sign(&self, ctx: &RequestCtx<'_>) -> Option<HeaderValue> {
        let claims = ctx.claims;
        let issued_at = now();
        let token = ctx
            .signer
            .sign_identity(&UpstreamIdentity {
                iss: ctx.signer.issuer(),
                sub: &claims.sub,
                aud: ctx.upstream.as_str(),
                email: claims.email.as_deref(),
                groups: &claims.groups,
                client_id: &claims.client_id,
                machine: claims.machine,
                route: ctx.route,
                iat: issued_at,
                exp: issued_at + self.ttl_seconds,
                jti: random_token(12),
            })
            .map_err(|err| tracing::error!(policy = %self.name, error = %err, "cannot sign the upstream identity"))
            .ok()?;
        let mut value = HeaderValue::from_str(&token).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}
