//! Operator commands on the store, run by `cognigate-gateway revoke` and
//! `rotate-key`: they change what the running replicas honour, without
//! restarting them (the replicas pick up revoked access tokens and a new
//! signing key from the store within seconds).

use super::keyring::{self, KeyRingError, Rotated};
use super::store::{StoreError, StoreUrl, now};
use super::tokens::SigningKey;

/// What `revoke` did.
#[derive(Debug, PartialEq)]
pub(crate) struct Revoked {
    /// Access tokens still unexpired that are now refused.
    pub(crate) access_tokens: usize,
    /// Whether the client's registration was deleted (`--client`).
    pub(crate) client_deleted: bool,
}

/// Revokes every grant of `subject` and/or `client_id`: their refresh
/// families and the access tokens those issued. With a client, its
/// registration is deleted too, so it must register again.
pub(crate) fn revoke(store: &StoreUrl, subject: Option<&str>, client_id: Option<&str>) -> Result<Revoked, StoreError> {
    if subject.is_none() && client_id.is_none() {
        return Err(StoreError::Open("revoke needs --sub ID or --client ID".into()));
    }
    let store = store.open()?;
    let revoked = store.revoke_grants(subject, client_id, now())?;
    let client_deleted = match client_id {
        Some(client_id) => store.delete_client(client_id)?,
        None => false,
    };
    Ok(Revoked { access_tokens: revoked.len(), client_deleted })
}

/// Makes a new signing key current. The old one keeps verifying, and stays
/// in the JWKS, until the tokens it signed have expired; with
/// `retire_previous` every older key is withdrawn at once instead (their
/// tokens are refused; clients refresh or log in again). The replicas switch
/// at their next tick. Never prints or returns key material.
pub(crate) fn rotate_key(store: &StoreUrl, retire_previous: bool) -> Result<Rotated, KeyRingError> {
    // Opening a missing SQLite file would create an empty store and rotate
    // a key no gateway uses.
    if let StoreUrl::Sqlite(path) = store
        && !path.exists()
    {
        return Err(StoreError::Open(format!(
            "no store at {}. Fix: pass the gateway's own --store (e.g. sqlite:/var/lib/cognigate/gateway.db)",
            path.display()
        ))
        .into());
    }
    let store = store.open()?;
    let now = now();
    // A store written by a gateway from before the ring: its key enters the
    // ring first, so the tokens it signed keep verifying.
    let legacy = store.signing_key_or_insert(&SigningKey::generate_stored())?;
    keyring::load(store.as_ref(), &legacy, now)?;
    keyring::rotate(store.as_ref(), now, retire_previous)
}
