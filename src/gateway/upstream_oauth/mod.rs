//! Upstream MCP servers that are OAuth-protected resources of their own
//! (the `mcp-token-exchange-inbound` policy): the gateway is an OAuth client
//! of each such upstream, on behalf of each user (`user-oauth`) or as one
//! shared service account (client credentials). The client's token never
//! goes upstream (MCP authorization, token passthrough is forbidden); the
//! upstream gets a token its own authorization server issued.
//!
//! - [`discovery`]: the upstream's authorization server, from its
//!   protected-resource metadata (RFC 9728), then RFC 8414 or OpenID discovery
//! - [`registration`]: the gateway as a client there: manual, a client-id
//!   metadata document the gateway serves, or dynamic registration (RFC 7591)
//! - [`grants`]: the tokens per (user, upstream), sealed at rest, refreshed
//!   once across replicas, revoked at the upstream (RFC 7009)
//! - [`elicit`]: the connect-required answer and its single-use link
//! - [`connect`]: the connect page and the callback
//! - [`admin`], [`cli`]: the operator's `connections` and `revoke`
//!
//! State lives in the store's plain records (both back ends), under keys
//! named here, so every replica sees the same connections.

pub(crate) mod admin;
pub(crate) mod cli;
pub(crate) mod connect;
pub(crate) mod discovery;
pub(crate) mod elicit;
pub(crate) mod grants;
pub(crate) mod registration;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::gateway::sealing::SealingKey;
use crate::gateway::store::StoreHandle;
use crate::secret::Secret;

/// Who owns the upstream credential (Zuplo's `authMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// Each gateway user connects their own upstream account.
    UserOAuth,
    /// One credential for the route, from the client-credentials grant.
    ServiceAccount,
}

/// How the gateway becomes a client of the upstream's authorization server.
#[derive(Debug, Clone)]
pub(crate) enum ClientRegistration {
    /// A client-id metadata document the gateway serves when the server
    /// supports them, else dynamic registration.
    Auto,
    /// A client the operator registered: its id and, for a confidential
    /// client, its secret (`$env(...)`).
    Manual { client_id: String, client_secret: Option<Secret> },
}

/// One upstream the gateway holds credentials for: a built
/// `mcp-token-exchange-inbound` policy.
pub(crate) struct Upstream {
    /// Names the upstream in stored keys, URLs and metrics (Zuplo's `id`,
    /// else the policy's name).
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) mode: AuthMode,
    /// `protectedResourceMetadataUrl`; derived from the route's upstream URL
    /// when absent.
    pub(crate) metadata_url: Option<url::Url>,
    pub(crate) scopes: Vec<String>,
    pub(crate) registration: ClientRegistration,
    runtime: OnceLock<Runtime>,
    discovered: tokio::sync::Mutex<Option<Arc<discovery::Discovered>>>,
    /// One refresh at a time per stored grant in this process; the store's
    /// lease makes it one across replicas.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Who declared URL-mode elicitation at `initialize`, by (subject,
    /// client): their connect-required answers are elicitation errors.
    url_elicitation: Mutex<HashMap<(String, String), bool>>,
    /// Renewed records a failed store write left here, by key, with the
    /// record they replace: written by the next request (see `grants`).
    unsaved: Mutex<HashMap<String, (Option<String>, String)>>,
    /// Refresh leases (key, holder) a store outage kept from being released.
    stale_leases: Mutex<Vec<(String, String)>>,
    pub(crate) counters: Counters,
}

/// Bounds what [`Upstream::url_elicitation`] remembers.
const ELICITATION_MEMORY: usize = 100_000;
/// How long the store keeps a client's declared capability.
const ELICITATION_TTL: i64 = 30 * 86_400;

/// Per-upstream counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) refresh_failures: AtomicU64,
    pub(crate) connect_required: AtomicU64,
}

/// What the gateway gives an upstream at boot: where it is reached and the
/// key its tokens are sealed with.
pub(crate) struct Runtime {
    /// No trailing slash.
    pub(crate) public_url: String,
    pub(crate) sealing: SealingKey,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("metadata_url", &self.metadata_url.as_ref().map(url::Url::as_str))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamAuthError {
    /// The user has no usable grant: they must connect (again).
    #[error("the user has not connected this upstream")]
    ConnectRequired,
    /// The upstream or its authorization server failed; the grant is kept.
    #[error("{0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Store(#[from] crate::gateway::store::StoreError),
    #[error("the gateway was not bound to this upstream at boot")]
    NotBound,
}

impl Upstream {
    pub(crate) fn new(
        id: String,
        display_name: String,
        mode: AuthMode,
        metadata_url: Option<url::Url>,
        scopes: Vec<String>,
        registration: ClientRegistration,
    ) -> Self {
        Self {
            id,
            display_name,
            mode,
            metadata_url,
            scopes,
            registration,
            runtime: OnceLock::new(),
            discovered: tokio::sync::Mutex::new(None),
            in_flight: Mutex::new(HashMap::new()),
            url_elicitation: Mutex::new(HashMap::new()),
            unsaved: Mutex::new(HashMap::new()),
            stale_leases: Mutex::new(Vec::new()),
            counters: Counters::default(),
        }
    }

    /// Gives the upstream its public URL and sealing key (once, at boot;
    /// routes sharing the policy share the first).
    pub(crate) fn bind(&self, public_url: &str, secret: &Secret) -> Result<(), crate::gateway::sealing::SealingError> {
        if self.runtime.get().is_some() {
            return Ok(());
        }
        let sealing = sealing_key(secret, &self.id)?;
        let _ = self.runtime.set(Runtime { public_url: public_url.trim_end_matches('/').to_owned(), sealing });
        Ok(())
    }

    pub(crate) fn runtime(&self) -> Result<&Runtime, UpstreamAuthError> {
        self.runtime.get().ok_or(UpstreamAuthError::NotBound)
    }

    /// Remembers whether `(subject, client)` declared URL elicitation: in
    /// this process, and in the store for the other replicas (a client's
    /// `initialize` and its later calls may reach different ones). Only a
    /// change is written, so a client that initializes often costs one write.
    pub(crate) async fn remember_elicitation(
        &self,
        store: &StoreHandle,
        subject: &str,
        client_id: &str,
        url_mode: bool,
    ) {
        let known = {
            let mut memory = self.url_elicitation.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if memory.len() >= ELICITATION_MEMORY {
                memory.clear();
            }
            memory.insert((subject.to_owned(), client_id.to_owned()), url_mode)
        };
        if known == Some(url_mode) {
            return;
        }
        let key = keys::elicitation(subject, client_id);
        let value = if url_mode { "url" } else { "none" };
        let expires_at = crate::gateway::store::now() + ELICITATION_TTL;
        if let Err(err) = store.run(move |store| store.put_record(&key, value, Some(expires_at))).await {
            tracing::debug!(error = %err, "cannot record the client's elicitation capability");
        }
    }

    /// Whether `(subject, client)` declared URL elicitation at its last
    /// `initialize` (on any replica).
    pub(crate) async fn declared_url_elicitation(&self, store: &StoreHandle, subject: &str, client_id: &str) -> bool {
        let known = {
            let memory = self.url_elicitation.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            memory.get(&(subject.to_owned(), client_id.to_owned())).copied()
        };
        if let Some(url_mode) = known {
            return url_mode;
        }
        let key = keys::elicitation(subject, client_id);
        let stored = store.run(move |store| store.record(&key, crate::gateway::store::now())).await;
        matches!(stored.ok().flatten().as_deref(), Some("url"))
    }

    fn flight_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(key.to_owned()).or_default().clone()
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What [`check_binding`] has seen: each upstream id's policy and the route
/// and upstream URL it first served.
pub(crate) type Bindings = HashMap<String, (Arc<Upstream>, String, url::Url)>;

/// Refuses, at boot, an upstream id two policies share (their grants would
/// mix) and one policy on routes to different upstream URLs (its discovery
/// and grants belong to one upstream).
pub(crate) fn check_binding(
    seen: &mut Bindings,
    upstream: &Arc<Upstream>,
    route: &str,
    upstream_url: &url::Url,
) -> Result<(), String> {
    match seen.get(&upstream.id) {
        Some((known, _, _)) if !Arc::ptr_eq(known, upstream) => Err(format!(
            "two mcp-token-exchange-inbound policies name the upstream `{}`. Fix: give each policy its own `id`",
            upstream.id
        )),
        Some((_, first, url)) if url != upstream_url => Err(format!(
            "the mcp-token-exchange-inbound policy of upstream `{}` is on {first} ({url}) and {route} ({upstream_url}). Fix: one policy per upstream MCP server, each with its own `id`",
            upstream.id
        )),
        Some(_) => Ok(()),
        None => {
            seen.insert(upstream.id.clone(), (upstream.clone(), route.to_owned(), upstream_url.clone()));
            Ok(())
        }
    }
}

/// The key upstream tokens of `upstream_id` are sealed with: derived from
/// the same secret as the identity provider's sealed refresh tokens (the
/// operator's `COGNIGATE_STORE_KEY`, else the OAuth policy's client secret),
/// for another purpose.
pub(crate) fn sealing_key(
    secret: &Secret,
    upstream_id: &str,
) -> Result<SealingKey, crate::gateway::sealing::SealingError> {
    SealingKey::derive(secret.expose().as_bytes(), &format!("upstream oauth tokens {upstream_id}"))
}

/// Prometheus lines for every upstream: connects, refreshes and
/// connect-required answers (counts only, never a token).
pub(crate) fn render_metrics<'a>(upstreams: impl Iterator<Item = &'a Arc<Upstream>>) -> String {
    use std::fmt::Write;
    let mut seen: Vec<&str> = Vec::new();
    let mut lines: [(String, &str, &str); 4] = [
        (String::new(), "cognigate_upstream_oauth_connects_total", "Upstream accounts connected by users."),
        (
            String::new(),
            "cognigate_upstream_oauth_refreshes_total",
            "Upstream tokens refreshed (or fetched again for a service account).",
        ),
        (
            String::new(),
            "cognigate_upstream_oauth_refresh_failures_total",
            "Upstream refreshes the authorization server refused or failed.",
        ),
        (String::new(), "cognigate_upstream_oauth_connect_required_total", "Requests answered with connect-required."),
    ];
    for upstream in upstreams {
        if seen.contains(&upstream.id.as_str()) {
            continue;
        }
        seen.push(&upstream.id);
        let label = upstream.id.replace('\\', "\\\\").replace('"', "\\\"");
        let values = [
            &upstream.counters.connects,
            &upstream.counters.refreshes,
            &upstream.counters.refresh_failures,
            &upstream.counters.connect_required,
        ];
        for ((body, name, _), value) in lines.iter_mut().zip(values) {
            let _ = writeln!(body, "{name}{{upstream=\"{label}\"}} {}", value.load(Ordering::Relaxed));
        }
    }
    if seen.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for (body, name, help) in &lines {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        out.push_str(body);
    }
    out
}

/// Store keys (plain records; see `Store::put_record`).
pub(crate) mod keys {
    /// A user's grant at an upstream.
    pub(crate) fn grant(upstream: &str, subject: &str) -> String {
        format!("upgrant:{upstream}:{subject}")
    }

    /// The prefix of every grant key: the operator's commands list them all
    /// and pick a user's (a user's grants share no prefix of their own).
    pub(crate) const GRANT_PREFIX: &str = "upgrant:";

    /// Whether a user's client declared URL elicitation.
    pub(crate) fn elicitation(subject: &str, client_id: &str) -> String {
        format!("upelicit:{}", crate::gateway::crypto::sha256_hex(&format!("{subject}\0{client_id}")))
    }

    /// The service account's token of an upstream.
    pub(crate) fn service(upstream: &str) -> String {
        format!("upservice:{upstream}")
    }

    /// The lease of the replica refreshing `record`.
    pub(crate) fn lease(record: &str) -> String {
        format!("uplease:{record}")
    }

    /// The gateway's registration at an authorization server.
    pub(crate) fn client(upstream: &str, issuer: &str) -> String {
        format!("upclient:{upstream}:{}", crate::gateway::crypto::sha256_hex(issuer))
    }

    /// A connect URL's ticket.
    pub(crate) fn ticket(ticket: &str) -> String {
        format!("upticket:{ticket}")
    }

    /// The connect page shown to a signed-in user.
    pub(crate) fn consent(id: &str) -> String {
        format!("upconsent:{id}")
    }

    /// A browser sent to the upstream's authorization server.
    pub(crate) fn pending(state: &str) -> String {
        format!("uppending:{state}")
    }
}
