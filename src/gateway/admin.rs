//! Operator commands on the store, run by `cognigate-gateway revoke` and
//! `rotate-key`: they change what the running replicas honour, without
//! restarting them (the replicas pick up revoked access tokens and a new
//! signing key from the store within seconds).

use super::keyring::{self, KeyRingError, Rotated};
use super::store::{StoreError, StoreUrl, now};
use super::tokens::SigningKey;

/// Whose grants `revoke` ends: every filter given must match.
#[derive(Debug, Default)]
pub(crate) struct RevokeTarget<'a> {
    /// The IdP's `sub`.
    pub(crate) subject: Option<&'a str>,
    /// The user's e-mail or username, looked up in the stored logins.
    pub(crate) user: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
}

/// What `revoke` did.
#[derive(Debug, PartialEq)]
pub(crate) struct Revoked {
    /// The users (`sub`) whose logins matched.
    pub(crate) subjects: Vec<String>,
    /// Access tokens still unexpired that are now refused.
    pub(crate) access_tokens: usize,
    /// Whether the client's registration was deleted (`--client`).
    pub(crate) client_deleted: bool,
}

impl Revoked {
    /// No login matched and no registration was deleted: most likely a
    /// mistyped value or another gateway's store.
    pub(crate) fn matched_nothing(&self) -> bool {
        self.subjects.is_empty() && !self.client_deleted
    }
}

/// Revokes every grant the target names: their refresh families and the
/// access tokens those issued. With a client, its registration is deleted
/// too, so it must register again.
pub(crate) fn revoke(store: &StoreUrl, target: &RevokeTarget<'_>) -> Result<Revoked, StoreError> {
    if target.subject.is_none() && target.user.is_none() && target.client_id.is_none() {
        return Err(StoreError::Open("revoke needs --sub ID, --user EMAIL_OR_USERNAME or --client ID".into()));
    }
    refuse_missing(store)?;
    let store = store.open()?;
    let subjects = store.grant_subjects(target.user, target.subject, target.client_id)?;
    let now = now();
    let mut access_tokens = 0;
    if target.user.is_some() {
        // A name is resolved to the subjects it was seen with; revoking by
        // subject then also ends that user's grants whose record lacks the name.
        for subject in &subjects {
            access_tokens += store.revoke_grants(Some(subject), target.client_id, now)?.len();
        }
    } else {
        access_tokens = store.revoke_grants(target.subject, target.client_id, now)?.len();
    }
    let client_deleted = match (target.client_id, target.user.is_some() && subjects.is_empty()) {
        (Some(client_id), false) => store.delete_client(client_id)?,
        _ => false,
    };
    Ok(Revoked { subjects, access_tokens, client_deleted })
}

/// Makes a new signing key current. The old one keeps verifying, and stays
/// in the JWKS, until the tokens it signed have expired; with
/// `retire_previous` every older key is withdrawn at once instead (their
/// tokens are refused; clients refresh or log in again). The replicas switch
/// at their next tick. Never prints or returns key material.
pub(crate) fn rotate_key(store: &StoreUrl, retire_previous: bool) -> Result<Rotated, KeyRingError> {
    refuse_missing(store)?;
    let store = store.open()?;
    let now = now();
    // A store written by a gateway from before the ring: its key enters the
    // ring first, so the tokens it signed keep verifying.
    let legacy = store.signing_key_or_insert(&SigningKey::generate_stored())?;
    keyring::load(store.as_ref(), &legacy, now)?;
    keyring::rotate(store.as_ref(), now, retire_previous)
}

/// Opening a missing SQLite file would create an empty store: a typo in
/// `--store`, or a relative path run from another folder, would then revoke
/// nothing or rotate a key no gateway uses, and report success.
fn refuse_missing(store: &StoreUrl) -> Result<(), StoreError> {
    match store {
        StoreUrl::Sqlite(path) if !path.exists() => Err(StoreError::Open(format!(
            "no store at {}. Fix: pass the gateway's own --store (e.g. sqlite:/var/lib/cognigate/gateway.db)",
            path.display()
        ))),
        _ => Ok(()),
    }
}
