//! `cognigate-identity-inbound` (cognigate's own; Zuplo has no such policy):
//! a short-lived JWT naming the caller, sent to the upstream in the header the
//! policy names, so an upstream can authorize per user without ever seeing
//! the client's token. It is signed with the gateway's key (EdDSA, `typ`
//! `cognigate-identity+jwt`) and verifiable at the gateway's JWKS
//! (`/oauth/jwks`); its `aud` is the upstream URL and it carries `sub`,
//! `email`, `groups`, `client_id` and `route`.

use std::sync::Arc;

use axum::http::HeaderName;
use serde::Deserialize;
use serde_json::Value;

use super::super::ConfigError;
use super::{InboundPolicy, PolicyKind};
use crate::gateway::config::env::Env;

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
pub(crate) struct IdentityHeader {
    pub(crate) name: String,
    pub(crate) header: HeaderName,
    pub(crate) ttl_seconds: i64,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<InboundPolicy, ConfigError> {
    let options: IdentityOptions = super::super::typed_options(options, &format!("policy `{name}`"))?;
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
    Ok(InboundPolicy::Identity(Arc::new(IdentityHeader { name: name.to_owned(), header, ttl_seconds: ttl as i64 })))
}
