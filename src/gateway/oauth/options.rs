//! Options of the authorization server as a whole (not of one policy): the
//! refresh grace window, how often a refresh re-checks the user at the
//! identity provider, the key that seals what the store keeps of the
//! provider, how Client ID Metadata Documents are fetched, and how long a
//! device login waits. The binary fills them from flags and the
//! environment; tests set them directly.

use std::path::PathBuf;
use std::time::Duration;

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
    pub refresh_grace: Duration,
    /// A refresh whose family last checked the user at the identity provider
    /// longer ago than this checks again (with the provider's refresh token)
    /// before it rotates; zero checks on every refresh.
    pub idp_recheck_interval: Duration,
    /// `COGNIGATE_STORE_KEY`: the secret the provider's refresh tokens are
    /// sealed under; `None` derives the key from the policy's client secret.
    pub store_key: Option<Secret>,
    /// Hosts whose URLs may be client ids (Client ID Metadata Documents);
    /// empty: any public host.
    pub client_id_hosts: Vec<String>,
    /// Lets client-id documents be fetched from loopback and private
    /// addresses (tests, or a metadata server on a private network).
    pub client_id_private_addresses: bool,
    /// A PEM file of extra roots trusted for client-id documents, next to
    /// the system's (the binary passes `SSL_CERT_FILE`).
    pub extra_roots: Option<PathBuf>,
    /// How long a device code and its user code stay valid; polling after
    /// that gets `expired_token`.
    pub device_code_lifetime: Duration,
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
