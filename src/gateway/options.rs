//! Options of the gateway as a whole (not of one policy or route), which the
//! command line (`cli`) fills from flags and the environment, and tests set
//! one by one with their `with_*` methods:
//! - [`OAuthOptions`], of the authorization server: the refresh grace window,
//!   how often a refresh re-checks the user at the identity provider, the key
//!   that seals what the store keeps of the provider, how Client ID Metadata
//!   Documents are fetched, and how long a device login waits;
//! - [`SecurityOptions`]: allowed origins, trusted proxies, per-IP limits and
//!   the lifetimes that bound what the store keeps.

use std::path::PathBuf;
use std::time::Duration;

use super::client_address::Cidr;
use crate::secret::Secret;

/// The default refresh grace window: long enough for two sessions of one
/// client (or a retried request) to refresh with the same token, short
/// enough that a stolen token replayed later still revokes its family.
pub(crate) const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(10);

/// The default re-check interval: how long a user disabled or deleted at the
/// identity provider keeps getting new access tokens at most (plus one
/// access token's lifetime), against one provider call per family per
/// interval.
pub(crate) const DEFAULT_IDP_RECHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The variable (process environment or env file) holding the sealing key.
pub(crate) const STORE_KEY_VAR: &str = "COGNIGATE_STORE_KEY";

/// How long a device login (RFC 8628) waits for the user: the RFC's example
/// and what other authorization servers use.
pub(crate) const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// A refresh token presented again by the same client within this window
    /// gets the answer it got the first time, instead of revoking its family.
    pub(crate) refresh_grace: Duration,
    /// A refresh whose family last checked the user at the identity provider
    /// longer ago than this checks again (with the provider's refresh token)
    /// before it rotates; zero checks on every refresh.
    pub(crate) idp_recheck_interval: Duration,
    /// `COGNIGATE_STORE_KEY`: the secret the provider's refresh tokens are
    /// sealed under; `None` derives the key from the policy's client secret.
    pub(crate) store_key: Option<Secret>,
    /// Hosts whose URLs may be client ids (Client ID Metadata Documents);
    /// empty: any public host.
    pub(crate) client_id_hosts: Vec<String>,
    /// Lets client-id documents be fetched from loopback and private
    /// addresses (tests, or a metadata server on a private network).
    pub(crate) client_id_private_addresses: bool,
    /// A PEM file of extra roots trusted for client-id documents, next to
    /// the system's (the command line passes `SSL_CERT_FILE`).
    pub(crate) extra_roots: Option<PathBuf>,
    /// How long a device code and its user code stay valid; polling after
    /// that gets `expired_token`.
    pub(crate) device_code_lifetime: Duration,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        Self {
            refresh_grace: DEFAULT_REFRESH_GRACE,
            idp_recheck_interval: DEFAULT_IDP_RECHECK_INTERVAL,
            store_key: None,
            client_id_hosts: Vec::new(),
            client_id_private_addresses: false,
            extra_roots: None,
            device_code_lifetime: DEFAULT_DEVICE_CODE_LIFETIME,
        }
    }
}

/// Security options; [`Default`] is what an operator gets without flags.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// Origins (`scheme://host[:port]`) besides the public URL's that browser
    /// clients may call from (e.g. MCP Inspector's `http://localhost:6274`).
    pub(crate) allowed_origins: Vec<String>,
    /// Set when the gateway listens on loopback only: then `Host` must name
    /// loopback (or the public URL's host), which defeats DNS rebinding.
    pub(crate) loopback_only: bool,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front).
    pub(crate) trusted_proxies: Vec<Cidr>,
    /// Registrations per client IP per minute.
    pub(crate) register_per_minute: u64,
    /// Authorization requests per client IP per minute.
    pub(crate) authorize_per_minute: u64,
    /// Logins a client may have pending (browser at the IdP) at once.
    pub(crate) pending_logins_per_client: u64,
    /// Logins all clients together may have pending: bounds what anonymous
    /// authorization requests can make the store hold.
    pub(crate) pending_logins_total: u64,
    /// Requests per client IP per minute that make the gateway fetch a
    /// client-id metadata document (a fetch to a URL the caller chose).
    pub(crate) client_id_fetches_per_minute: u64,
    /// A registration never used for a login this long is deleted.
    pub(crate) unused_registration_ttl: Duration,
    /// A refresh-token family ends this long after the login, whatever its
    /// rotations.
    pub(crate) refresh_family_lifetime: Duration,
    /// How long an OAuth endpoint waits for a request body.
    pub(crate) body_read_timeout: Duration,
    /// `/metrics` is served on its own address (`--metrics-listen`), not on
    /// the public one.
    pub(crate) metrics_separate: bool,
}

/// Each sets one option and keeps the others (the defaults, when started
/// from [`OAuthOptions::default`]).
impl OAuthOptions {
    pub fn with_refresh_grace(self, refresh_grace: Duration) -> Self {
        Self { refresh_grace, ..self }
    }

    pub fn with_device_code_lifetime(self, device_code_lifetime: Duration) -> Self {
        Self { device_code_lifetime, ..self }
    }

    pub fn with_client_id_private_addresses(self, client_id_private_addresses: bool) -> Self {
        Self { client_id_private_addresses, ..self }
    }

    pub fn with_extra_roots(self, extra_roots: PathBuf) -> Self {
        Self { extra_roots: Some(extra_roots), ..self }
    }
}

impl Default for SecurityOptions {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            loopback_only: false,
            trusted_proxies: Vec::new(),
            register_per_minute: 20,
            authorize_per_minute: 120,
            pending_logins_per_client: 50,
            pending_logins_total: 10_000,
            client_id_fetches_per_minute: 30,
            unused_registration_ttl: Duration::from_secs(7 * 24 * 3600),
            refresh_family_lifetime: Duration::from_secs(30 * 24 * 3600),
            body_read_timeout: Duration::from_secs(10),
            metrics_separate: false,
        }
    }
}

/// Each sets one option and keeps the others (the defaults, when started
/// from [`SecurityOptions::default`]).
impl SecurityOptions {
    pub fn with_allowed_origins(self, allowed_origins: Vec<String>) -> Self {
        Self { allowed_origins, ..self }
    }

    pub fn with_loopback_only(self, loopback_only: bool) -> Self {
        Self { loopback_only, ..self }
    }

    pub fn with_trusted_proxies(self, trusted_proxies: Vec<Cidr>) -> Self {
        Self { trusted_proxies, ..self }
    }

    pub fn with_register_per_minute(self, register_per_minute: u64) -> Self {
        Self { register_per_minute, ..self }
    }

    pub fn with_authorize_per_minute(self, authorize_per_minute: u64) -> Self {
        Self { authorize_per_minute, ..self }
    }

    pub fn with_pending_logins_per_client(self, pending_logins_per_client: u64) -> Self {
        Self { pending_logins_per_client, ..self }
    }

    pub fn with_pending_logins_total(self, pending_logins_total: u64) -> Self {
        Self { pending_logins_total, ..self }
    }

    pub fn with_client_id_fetches_per_minute(self, client_id_fetches_per_minute: u64) -> Self {
        Self { client_id_fetches_per_minute, ..self }
    }

    pub fn with_refresh_family_lifetime(self, refresh_family_lifetime: Duration) -> Self {
        Self { refresh_family_lifetime, ..self }
    }

    pub fn with_body_read_timeout(self, body_read_timeout: Duration) -> Self {
        Self { body_read_timeout, ..self }
    }
}
