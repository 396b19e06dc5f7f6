//! Operator commands on the store, run by `cognigate-gateway revoke`: they
//! change what the running replicas honour, without restarting them (the
//! replicas pick up revoked access tokens from the store within seconds).

use super::store::{StoreError, StoreUrl, now};

/// What `revoke` did.
#[derive(Debug, PartialEq)]
pub struct Revoked {
    /// Access tokens still unexpired that are now refused.
    pub access_tokens: usize,
    /// Whether the client's registration was deleted (`--client`).
    pub client_deleted: bool,
}

/// Revokes every grant of `subject` and/or `client_id`: their refresh
/// families and the access tokens those issued. With a client, its
/// registration is deleted too, so it must register again.
pub fn revoke(store: &StoreUrl, subject: Option<&str>, client_id: Option<&str>) -> Result<Revoked, StoreError> {
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
