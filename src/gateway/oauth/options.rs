//! Options of the authorization server as a whole (not of one policy): the
//! refresh grace window, how Client ID Metadata Documents are fetched, and
//! how long a device login waits.
//! The binary fills them from flags and the environment; tests set them
//! directly.

use std::path::PathBuf;
use std::time::Duration;

/// The default refresh grace window: long enough for two sessions of one
/// client (or a retried request) to refresh with the same token, short
/// enough that a stolen token replayed later still revokes its family.
pub(crate) const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(10);

/// How long a device login (RFC 8628) waits for the user: the RFC's example
/// and what other authorization servers use.
pub(crate) const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// A refresh token presented again by the same client within this window
    /// gets the answer it got the first time, instead of revoking its family.
    pub refresh_grace: Duration,
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
            client_id_hosts: Vec::new(),
            client_id_private_addresses: false,
            extra_roots: None,
            device_code_lifetime: DEFAULT_DEVICE_CODE_LIFETIME,
        }
    }
}
