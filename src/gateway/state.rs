//! The shared state of a running gateway, built once at boot from the
//! validated config. Everything the hot path needs (route lookup, the
//! precomputed `WWW-Authenticate` values, the token cache) is ready here, so a
//! proxied request allocates nothing for configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use url::Url;

use super::audit::AuditLog;
use super::clients::cimd::CimdClients;
use super::config::{GatewayConfig, Route};
use super::keyring::{KeyRingError, KeyRingPolicy, KeyRotation, SharedIssuer};
use super::metrics::Metrics;
use super::oidc::IdentityProvider;
use super::options::{OAuthOptions, SecurityOptions};
use super::sealing::MIN_STORE_KEY_LEN;
use super::store::{Lifetimes, StoreError, StoreHandle};
use super::telemetry::Tracing;
use super::tokens::{Revocations, SigningKey, TokenCache, TokenError};
use crate::contract::machine_scopes;

const TOKEN_CACHE_CAPACITY: usize = 100_000;
const IDP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "--public-url `{0}`: {1}. Fix: give the URL clients reach the gateway at, e.g. https://mcp.example.com or http://localhost:9000"
    )]
    PublicUrl(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    KeyRing(#[from] KeyRingError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("cannot load the templates: {0}")]
    Template(String),
    #[error("{0}")]
    UpstreamOAuth(String),
    #[error(
        "COGNIGATE_STORE_KEY is shorter than {MIN_STORE_KEY_LEN} characters. Fix: set it to a long random value, e.g. the output of `openssl rand -base64 32`"
    )]
    StoreKey,
}

/// A route as served: the config plus precomputed URLs and headers.
pub(crate) struct RouteState {
    pub(crate) route: Arc<Route>,
    /// `{public_url}/mcp/{slug}`: the RFC 8707 resource and the tokens' `aud`.
    pub(crate) resource: String,
    /// `Bearer resource_metadata="…", scope="…"`, without and with
    /// `error="invalid_token"` (RFC 6750 3, RFC 9728 5.1): the scope is every
    /// scope the route's tokens may carry, which clients then ask for.
    pub(crate) challenge: HeaderValue,
    pub(crate) challenge_invalid: HeaderValue,
    /// The 403 for a token without a required scope (`error="insufficient_scope"`,
    /// naming every required scope), when the route requires any.
    pub(crate) challenge_scope: Option<HeaderValue>,
    /// The 403 for a machine token without this route's scope (or the
    /// gateway-wide one), naming the route's scope.
    pub(crate) challenge_machine: HeaderValue,
    pub(crate) idp: Arc<IdentityProvider>,
    /// The upstream URL as a request URI, parsed once.
    pub(crate) upstream_uri: axum::http::Uri,
    /// An aggregated route's sessions (with the client, and the member
    /// sessions each holds).
    pub(crate) sessions: Option<super::aggregate::session::Sessions>,
}

impl RouteState {
    fn new(route: Arc<Route>, idp: Arc<IdentityProvider>, public_url: &str) -> Result<Self, StateError> {
        let resource = format!("{public_url}{}", route.path);
        let metadata_url = format!("{public_url}/.well-known/oauth-protected-resource{}", route.path);
        let scope = route.policy.supported_scopes().join(" ");
        let challenge = header(&format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"{scope}\""))?;
        let challenge_invalid = header(&format!(
            "Bearer error=\"invalid_token\", resource_metadata=\"{metadata_url}\", scope=\"{scope}\""
        ))?;
        let required = &route.policy.required_scopes;
        let challenge_scope = if required.is_empty() {
            None
        } else {
            Some(header(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata_url}\", error_description=\"this MCP server needs the scopes {}\"",
                required.join(" "),
                required.join(", ")
            ))?)
        };
        let challenge_machine = header(&format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata_url}\", error_description=\"a machine client needs the scope {} or {}\"",
            machine_scopes::route(&route.slug),
            machine_scopes::route(&route.slug),
            machine_scopes::ALL
        ))?;
        let sessions = route.aggregate.as_ref().map(|_| super::aggregate::session::Sessions::default());
        // An aggregated route requests nothing itself: its URI is never used.
        let upstream_uri =
            if sessions.is_some() {
                axum::http::Uri::from_static("/")
            } else {
                route.upstream.as_str().parse().map_err(|_| {
                    StateError::Http(format!("upstream URL {} is not a valid request URI", route.upstream))
                })?
            };
        Ok(Self {
            route,
            resource,
            challenge,
            challenge_invalid,
            challenge_scope,
            challenge_machine,
            idp,
            upstream_uri,
            sessions,
        })
    }
}

/// What the clones of an [`AppState`] share; its fields stay in the crate.
pub struct Inner {
    /// No trailing slash.
    pub(crate) public_url: String,
    /// `X-Forwarded-Proto` / `X-Forwarded-Host` values sent upstream.
    pub(crate) forwarded_proto: HeaderValue,
    pub(crate) forwarded_host: HeaderValue,
    /// The public URL's `host[:port]`, as a `Host` header would carry it.
    pub(crate) forwarded_host_text: String,
    /// The public URL names `localhost` or a loopback address: browser pages
    /// on this machine (any port) may then call it.
    pub(crate) public_url_is_loopback: bool,
    pub(crate) security: SecurityOptions,
    /// Key of the `Mcp-Session-Id` binding (see `session`).
    pub(crate) session_key: super::session::SessionKey,
    pub(crate) secure_cookies: bool,
    pub(crate) routes: HashMap<String, RouteState>,
    pub(crate) store: StoreHandle,
    pub(crate) tokens: SharedIssuer,
    /// When the signing keys rotate and how long retired ones are kept.
    pub(crate) key_ring: KeyRingPolicy,
    pub(crate) token_cache: TokenCache,
    pub(crate) revocations: Revocations,
    pub(crate) idp_http: reqwest::Client,
    pub(crate) metrics: Metrics,
    pub(crate) oauth: OAuthOptions,
    pub(crate) cimd: CimdClients,
    /// `--audit-log`; `None` keeps routes without policies on the plain path.
    pub(crate) audit: Option<AuditLog>,
    /// OpenTelemetry traces; `None`: off.
    pub(crate) tracing: Option<Arc<Tracing>>,
}

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state with the authorization server's options: loads (or
    /// creates) the signing key from the store. Call from outside the async
    /// runtime or inside `spawn_blocking`: the store is synchronous.
    pub fn build_with(
        config: GatewayConfig,
        public_url: &str,
        store: StoreHandle,
        oauth: OAuthOptions,
    ) -> Result<Self, StateError> {
        let public = parse_public_url(public_url)?;
        let public_url = public.as_str().trim_end_matches('/').to_owned();
        let public_host = match public.port() {
            Some(port) => format!("{}:{port}", public.host_str().unwrap_or_default()),
            None => public.host_str().unwrap_or_default().to_owned(),
        };
        // The first key ever stored also seeds the session binding, which
        // must not change when the signing key rotates.
        let stored = store.get().signing_key_or_insert(&SigningKey::generate_stored())?;
        let ring = super::keyring::load(store.get().as_ref(), &stored, super::store::now())?;
        let tokens = SharedIssuer::new(public_url.clone(), &ring)?;
        let access = config.routes.values().map(|route| route.policy.access_token_ttl.as_secs() as i64).max();
        let signed = config.routes.values().map(|route| route.signed_token_lifetime()).max();
        let token_lifetime = access.unwrap_or(0) + signed.unwrap_or(0);
        let key_ring = KeyRingPolicy::new(token_lifetime, KeyRotation::default(), &stored);

        let mut idps: HashMap<String, Arc<IdentityProvider>> = HashMap::new();
        let mut upstreams = HashMap::new();
        let mut routes = HashMap::new();
        if oauth.store_key.as_ref().is_some_and(|key| key.expose().len() < MIN_STORE_KEY_LEN) {
            return Err(StateError::StoreKey);
        }
        for (slug, route) in config.routes {
            // Routes sharing a policy share its identity provider (and its JWKS cache).
            let idp = match idps.get(&route.policy.name) {
                Some(idp) => idp.clone(),
                None => {
                    let idp = Arc::new(
                        IdentityProvider::new(route.policy.clone(), oauth.store_key.as_ref())
                            .map_err(|err| StateError::Http(err.to_string()))?,
                    );
                    idps.insert(route.policy.name.clone(), idp.clone());
                    idp
                }
            };
            // Upstream tokens are sealed with a key from the same secret as
            // the identity provider's refresh tokens (never one in the store).
            let secret = oauth.store_key.as_ref().unwrap_or(&route.policy.browser_login.client_secret);
            for upstream in route.inbound.iter().filter_map(|policy| policy.upstream_oauth()) {
                super::upstream_oauth::check_binding(&mut upstreams, upstream, &route.path, &route.upstream)
                    .map_err(StateError::UpstreamOAuth)?;
                upstream.bind(&public_url, secret).map_err(|err| StateError::UpstreamOAuth(err.to_string()))?;
            }
            routes.insert(slug, RouteState::new(route, idp, &public_url)?);
        }

        super::pages::check().map_err(StateError::Template)?;
        let metrics = Metrics::new(super::metrics::labels(routes.values().map(|r| r.route.path.as_str())));
        let idp_http = reqwest::Client::builder()
            .timeout(IDP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| StateError::Http(err.to_string()))?;
        let cimd = CimdClients::new(&oauth).map_err(StateError::Http)?;

        Ok(Self(Arc::new(Inner {
            secure_cookies: public.scheme() == "https",
            forwarded_proto: header(public.scheme())?,
            forwarded_host: header(&public_host)?,
            forwarded_host_text: public_host,
            public_url_is_loopback: crate::contract::is_loopback(&public),
            session_key: super::session::key(&stored),
            security: SecurityOptions::default(),
            public_url,
            routes,
            store,
            tokens,
            key_ring,
            token_cache: TokenCache::new(TOKEN_CACHE_CAPACITY),
            revocations: Revocations::default(),
            idp_http,
            metrics,
            oauth,
            cimd,
            audit: None,
            tracing: None,
        })))
    }

    /// The state with the operator's security options (call before the
    /// state is shared).
    pub fn with_security(self, security: SecurityOptions) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.security = security;
                Self(Arc::new(inner))
            }
            // Already shared: keep it as it is (boot calls this first).
            Err(shared) => Self(shared),
        }
    }

    /// The state with an audit log (call before the state is shared).
    pub(crate) fn with_audit(self, audit: Option<AuditLog>) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.audit = audit;
                Self(Arc::new(inner))
            }
            // Already shared: keep it as it is (boot calls this first).
            Err(shared) => Self(shared),
        }
    }

    /// The state with traces exported (call before the state is shared).
    pub fn with_tracing(self, tracing: Option<Arc<Tracing>>) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.tracing = tracing;
                Self(Arc::new(inner))
            }
            // Already shared: keep it as it is (boot calls this first).
            Err(shared) => Self(shared),
        }
    }

    /// The state with the operator's key rotation options (call before the
    /// state is shared).
    pub fn with_key_rotation(self, rotation: KeyRotation) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.key_ring.rotation = rotation;
                Self(Arc::new(inner))
            }
            // Already shared: keep it as it is (boot calls this first).
            Err(shared) => Self(shared),
        }
    }

    /// One key-ring tick (blocking: call on the blocking pool): writes back
    /// keys the store lost, drops keys past retention, rotates when due, and
    /// switches this replica to the ring as stored. Returns the current kid.
    pub fn sync_signing_keys(&self) -> Result<String, KeyRingError> {
        let tick = super::keyring::tick(self.store.get().as_ref(), &self.tokens, &self.key_ring, super::store::now())?;
        if tick.dropped {
            // Tokens of a dropped key have expired; none may be served from
            // the cache past that either.
            self.token_cache.clear();
        }
        Ok(tick.current)
    }

    /// An access token for `aud` signed with the current key, without user
    /// facts: what an operator's tool (or a test) needs to call a route as
    /// `sub` without a login.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_access_token(
        &self,
        sub: &str,
        aud: &str,
        client_id: &str,
        scope: &str,
        now: i64,
        ttl: i64,
        jti: String,
    ) -> Result<String, TokenError> {
        Ok(self.tokens.load().mint(sub, aud, client_id, scope, now, ttl, jti)?.0)
    }

    /// Token lifetimes of a route's policy.
    pub(crate) fn lifetimes(&self, slug: &str) -> Option<Lifetimes> {
        self.routes.get(slug).map(|route| Lifetimes {
            refresh: route.route.policy.refresh_token_ttl.as_secs() as i64,
            access: route.route.policy.access_token_ttl.as_secs() as i64,
        })
    }

    /// The route a `resource` URL names.
    pub(crate) fn route_for_resource(&self, resource: &str) -> Option<&RouteState> {
        let resource = resource.trim_end_matches('/');
        self.routes.values().find(|route| route.resource == resource)
    }
}

fn header(value: &str) -> Result<HeaderValue, StateError> {
    HeaderValue::from_str(value).map_err(|err| StateError::PublicUrl(value.to_owned(), err.to_string()))
}

/// The contract's rule, the same one `cognigate up --gateway-url` applies.
pub(crate) fn parse_public_url(value: &str) -> Result<Url, StateError> {
    let err = |problem: String| StateError::PublicUrl(value.to_owned(), problem);
    let public = crate::contract::PublicUrl::parse(value).map_err(|e| err(e.problem))?;
    Url::parse(public.as_str()).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_public_url;

    #[test]
    fn public_url_must_be_an_origin() {
        assert!(parse_public_url("http://localhost:9000").is_ok());
        assert!(parse_public_url("https://mcp.example.com/").is_ok());
        for bad in ["mcp.example.com", "https://mcp.example.com/base", "ftp://x", "https://x?a=b"] {
            assert!(parse_public_url(bad).unwrap_err().to_string().contains("Fix:"), "{bad}");
        }
    }
}
