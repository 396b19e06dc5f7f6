//! `set-headers-inbound`: headers the upstream receives on every request of
//! the route, e.g. the API key an upstream wants (`"value": "$env(KEY)"`), so
//! it never needs (and never sees) the client's token. Values are resolved at
//! boot; a header the gateway manages itself (the hop-by-hop and MCP transport
//! headers) cannot be set, because overriding them would break the proxying.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::{Built, InboundPolicy, PolicyKind, RequestCtx, Step, StepFuture, ready};
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::secret::Secret;

pub(crate) const POLICY_TYPE: &str = "set-headers-inbound";
const EXPORT: &str = "SetHeadersInboundPolicy";

pub(super) const KIND: PolicyKind = PolicyKind { policy_type: POLICY_TYPE, export: EXPORT, export_aliases: &[], build };

/// Headers the proxy owns: setting one would corrupt the forwarded request.
const RESERVED: [&str; 12] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetHeadersOptions {
    headers: Vec<HeaderOption>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeaderOption {
    name: String,
    value: String,
    /// Zuplo's flag; the upstream request starts without client headers of
    /// these names, so a set header always wins either way.
    #[serde(default)]
    overwrite: Option<bool>,
}

/// A built header policy: names and values ready to insert.
pub(crate) struct SetHeaders {
    name: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

// Values are often API keys: never print them.
impl std::fmt::Debug for SetHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SetHeaders").field("name", &self.name).field("headers", &names).finish()
    }
}

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    let options: SetHeadersOptions = typed_options(options, &format!("policy `{name}`"))?;
    Ok(Built::Inbound(Arc::new(SetHeaders::from_options(name, options)?)))
}

impl InboundPolicy for SetHeaders {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_request<'a>(&'a self, _ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        ready(Step::SetHeaders(self.headers.clone()))
    }
}

impl SetHeaders {
    fn from_options(name: &str, options: SetHeadersOptions) -> Result<Self, ConfigError> {
        let mut headers = Vec::with_capacity(options.headers.len());
        for (index, header) in options.headers.into_iter().enumerate() {
            let invalid = |field: &str, problem: String, fix: &str| ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: format!("headers[{index}].{field}"),
                problem,
                fix: fix.to_owned(),
            };
            let _ = header.overwrite;
            let header_name = HeaderName::from_bytes(header.name.trim().as_bytes()).map_err(|_| {
                invalid(
                    "name",
                    format!("`{}` is not a valid header name", header.name),
                    "use letters, digits and '-', e.g. X-Api-Key",
                )
            })?;
            if RESERVED.contains(&header_name.as_str()) || header_name.as_str().starts_with("x-forwarded-") {
                return Err(invalid(
                    "name",
                    format!("`{}` is managed by the gateway's proxy", header.name),
                    "set a header of your own, e.g. X-Api-Key or Authorization for the upstream's credential",
                ));
            }
            // The value is a secret as often as not: the error does not repeat it.
            let value = Secret::new(header.value);
            let mut header_value = HeaderValue::from_str(value.expose()).map_err(|_| {
                invalid(
                    "value",
                    "has characters a header cannot carry (e.g. a line break)".into(),
                    "check the value (or the env variable it names)",
                )
            })?;
            header_value.set_sensitive(true);
            headers.push((header_name, header_value));
        }
        Ok(Self { name: name.to_owned(), headers })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SetHeaders;

    #[test]
    fn builds_and_refuses_managed_headers_without_echoing_values() {
        let ok = SetHeaders::from_options(
            "h",
            serde_json::from_value(json!({"headers": [{"name": "X-Api-Key", "value": "k-123"}]})).unwrap(),
        )
        .unwrap();
        assert_eq!(ok.headers[0].0.as_str(), "x-api-key");
        assert!(!format!("{ok:?}").contains("k-123"));
        let err = SetHeaders::from_options(
            "h",
            serde_json::from_value(json!({"headers": [{"name": "Mcp-Session-Id", "value": "x"}]})).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("policy `h`") && err.contains("headers[0].name") && err.contains("Fix:"), "{err}");
        let err = SetHeaders::from_options(
            "h",
            serde_json::from_value(json!({"headers": [{"name": "X-Key", "value": "line\nbreak-secret"}]})).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("headers[0].value") && !err.contains("break-secret"), "{err}");
    }
}
