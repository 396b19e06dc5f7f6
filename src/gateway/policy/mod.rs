//! Inbound policies: what a route's `x-zuplo-route.policies.inbound` may
//! name, one file per policy type, each holding its options (the shape in
//! `policies.json`, unknown fields refused), its boot validation and what it
//! does to a request.
//!
//! Two types are OAuth policies ([`cognito_oauth`]: `mcp-cognito-oauth-inbound`,
//! [`generic_oauth`]: `mcp-oauth-inbound`); they build an [`OAuthPolicy`]
//! ([`oauth`]), whose request-time part is the bearer-token check every
//! proxied request passes first, and whose login is the identity-provider
//! leg. The others implement [`InboundPolicy`] and run after the token check,
//! in the order the route lists them: [`capability_filter`], [`set_headers`],
//! [`rate_limit`], [`token_exchange`] and cognigate's own [`identity`].
//!
//! Adding a policy type: a new file with its options, a [`PolicyKind`] and an
//! [`InboundPolicy`] implementation, and its `KIND` in [`KINDS`].

pub(crate) mod capability_filter;
mod cognito_oauth;
mod generic_oauth;
mod identity;
pub(crate) mod oauth;
mod rate_limit;
mod rewrite;
mod set_headers;
mod token_exchange;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use serde_json::Value;

pub(crate) use self::oauth::{OAuthPolicy, OFFLINE_ACCESS};
pub(crate) use self::rewrite::filter_body;
use crate::gateway::claims::{AccessClaims, ClaimNames};
use crate::gateway::config::env::Env;
use crate::gateway::config::error::ConfigError;
use crate::gateway::jsonrpc::{Rpc, RpcError};
use crate::gateway::keyring::SharedIssuer;
use crate::gateway::store::{Identity, StoreHandle};

/// One policy type: how it is named in `policies.json` and how its options
/// (after `$env` substitution) become a runtime policy.
pub(crate) struct PolicyKind {
    pub(crate) policy_type: &'static str,
    /// The `handler.export` Zuplo pairs with this type.
    pub(crate) export: &'static str,
    /// Older names of that export still found in Zuplo projects (accepted
    /// as well, so such a project loads unchanged).
    pub(crate) export_aliases: &'static [&'static str],
    /// Validates the options of the policy `name` and builds it.
    pub(crate) build: fn(name: &str, options: Value, env: &Env) -> Result<Built, ConfigError>,
}

/// Every policy type this gateway implements: the registry.
static KINDS: [PolicyKind; 7] = [
    cognito_oauth::KIND,
    generic_oauth::KIND,
    capability_filter::KIND,
    set_headers::KIND,
    rate_limit::KIND,
    identity::KIND,
    token_exchange::KIND,
];

impl PolicyKind {
    pub(crate) fn accepts_export(&self, export: &str) -> bool {
        export == self.export || self.export_aliases.contains(&export)
    }
}

/// The policy type named `policy_type`.
pub(crate) fn kind(policy_type: &str) -> Option<&'static PolicyKind> {
    KINDS.iter().find(|kind| kind.policy_type == policy_type)
}

/// The supported types, for an error message: "`a` or `b`".
pub(crate) fn supported_types() -> String {
    KINDS.iter().map(|kind| format!("`{}`", kind.policy_type)).collect::<Vec<_>>().join(" or ")
}

/// A built policy, shared by every route that names it.
#[derive(Clone)]
pub(crate) enum Built {
    /// Who may call the route: the gateway's own bearer tokens, issued after
    /// a login at the policy's identity provider.
    OAuth(Arc<OAuthPolicy>),
    /// A policy that acts on requests after the token check.
    Inbound(Arc<dyn InboundPolicy>),
}

/// What a request-time policy reads. Built once per request on the policy
/// path (never on the plain path).
pub(crate) struct RequestCtx<'a> {
    pub(crate) claims: &'a AccessClaims,
    /// The user facts of the login (groups, roles, e-mail).
    pub(crate) identity: &'a Identity,
    /// The client's address as the trusted-proxy rules give it (the TCP
    /// peer unless it is a trusted proxy).
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) method: &'a Method,
    /// The `POST` body, when the route reads bodies.
    pub(crate) body: Option<&'a [u8]>,
    /// The JSON-RPC view of a `POST` body, when a policy of the route reads
    /// bodies; `None` for other methods and routes.
    pub(crate) rpc: Option<&'a Result<Rpc, RpcError>>,
    /// `/mcp/{slug}`.
    pub(crate) route: &'a str,
    pub(crate) upstream: &'a url::Url,
    pub(crate) store: &'a StoreHandle,
    pub(crate) signer: &'a SharedIssuer,
}

/// What a policy decided about a request.
pub(crate) enum Step {
    /// On to the next policy.
    Continue,
    /// On, with these headers on the upstream request (after the forwarded
    /// ones, so they win).
    SetHeaders(Vec<(HeaderName, HeaderValue)>),
    /// On, and the upstream's answer passes through this filter.
    FilterResponse(Arc<dyn ResponseFilter>),
    /// Answered here; nothing reaches the upstream. `outcome` labels the
    /// audit line (`hidden`, `rate_limited`, ...).
    Answer { response: Response, outcome: &'static str },
}

impl Step {
    /// What the step did, for a trace.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::SetHeaders(_) => "set_headers",
            Self::FilterResponse(_) => "filter_response",
            Self::Answer { outcome, .. } => outcome,
        }
    }
}

/// A step that may wait (on the store); boxed, so a route's list is a list
/// of trait objects.
pub(crate) type StepFuture<'a> = Pin<Box<dyn Future<Output = Step> + Send + 'a>>;

/// A policy that runs on each request after the token check.
pub(crate) trait InboundPolicy: Send + Sync + std::fmt::Debug {
    /// The policy's name in `policies.json`.
    fn name(&self) -> &str;

    fn on_request<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a>;

    /// Whether it reads the JSON-RPC body (the route then leaves the plain
    /// path, which never does).
    fn reads_body(&self) -> bool {
        false
    }

    /// The ID-token claims it decides on, which a login keeps as the user's
    /// groups and roles.
    fn claim_names(&self) -> Option<ClaimNames> {
        None
    }

    /// How long a token it signs with the gateway's key lives (seconds): a
    /// retired key stays published that much longer.
    fn signed_token_lifetime(&self) -> i64 {
        0
    }

    /// Whether a tool of this name may have a metrics label of its own (a
    /// bounded set when a policy lists the tools).
    fn labels_tool(&self, _name: &str) -> bool {
        true
    }

    /// The upstream answered 401 to a request this policy let through: new
    /// headers to retry it with once, or an answer instead of the 401
    /// (`Continue`: the 401 goes to the client).
    fn upstream_rejected<'a>(&'a self, _ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        ready(Step::Continue)
    }

    /// The upstream whose OAuth credentials this policy holds, if it does.
    fn upstream_oauth(&self) -> Option<&Arc<crate::gateway::upstream_oauth::Upstream>> {
        None
    }
}

/// Rewrites the JSON-RPC messages an upstream sends back, whatever request
/// they answer and on whichever stream they come.
pub(crate) trait ResponseFilter: Send + Sync {
    /// Rewrites one message in place for the caller `identity`.
    fn filter_message(&self, message: &mut Value, identity: &Identity);

    /// Whether `message` (parsed with nothing built) needs
    /// [`ResponseFilter::filter_message`]: most do not, and they then pass
    /// as the upstream wrote them.
    fn concerns(&self, data: &[u8]) -> bool;
}

/// A step known without waiting.
fn ready<'a>(step: Step) -> StepFuture<'a> {
    Box::pin(std::future::ready(step))
}

/// The error body JSON-RPC clients read, for a refusal that answers `id`.
fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON-RPC error with status `status` and no id (the gateway's own
/// refusals, e.g. rate limits).
fn gateway_error(status: axum::http::StatusCode, message: &str) -> Response {
    use axum::response::IntoResponse;
    (status, axum::Json(rpc_error(Value::Null, -32000, message))).into_response()
}
