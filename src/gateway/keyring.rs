//! The gateway's signing keys as a ring: the newest key signs, older ones
//! keep verifying (and stay in the JWKS) until every token they signed has
//! expired, then they are dropped.
//!
//! The ring lives in the store as one JSON value, changed only by
//! compare-and-set ([`update`]): two replicas rotating at the same moment
//! produce one new key, because the second sees the first's key and finds the
//! rotation no longer due. Each replica re-reads the ring on its periodic tick
//! ([`sync`]) and swaps its issuer ([`SharedIssuer`]); the proxy's hot path
//! reads the issuer only to verify a token it has not cached yet.
//!
//! A Redis restarted without persistence comes back empty. Replicas still hold
//! the keys they loaded, so on their next tick each writes back the union of
//! what the store has and what it holds, minus keys past retirement. Which key
//! is current is a function of the ring alone (the newest `created_at`, ties
//! by `kid`), so every replica ends up signing with the same key and
//! publishing every key a live token may carry.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};

use super::claims::{AccessClaims, UpstreamIdentity};
use super::store::{Identity, Store, StoreError};
use super::tokens::{SigningKey, TokenError, TokenIssuer, Verify};
use crate::secret::Secret;

/// Compare-and-set attempts before giving up on a ring other writers keep
/// changing (each attempt is one read and one write; a handful of replicas
/// settle within two).
const ATTEMPTS: usize = 16;

/// Keys in use at most. A rotation interval shorter than the retention would
/// otherwise grow the ring (and every JWKS response) without bound: when it
/// is full, scheduled rotations wait for the oldest key to retire and
/// `rotate-key` refuses.
pub(crate) const MAX_KEYS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] TokenError),
    #[error(
        "the stored signing-key ring is unreadable: {0}. Fix: restore the store from a backup, or delete the \
         `signing_keys` entry (every issued access token is then refused and clients log in again)"
    )]
    Unreadable(serde_json::Error),
    #[error(
        "the signing-key ring kept changing while it was being updated ({ATTEMPTS} attempts). Fix: try again; \
         if it persists, look for a process rewriting the store in a loop"
    )]
    Contended,
    #[error("the signing-key ring is empty. Fix: start the gateway once so it creates its first key")]
    Empty,
    #[error(
        "{MAX_KEYS} signing keys are still in use (retired keys stay until their tokens expire), the most the \
         gateway keeps. Fix: wait until the oldest retires, or shorten the token lifetimes and --signing-key-grace"
    )]
    Full,
}

/// When keys are rotated and how long a retired one stays (cognigate's own
/// options, `--signing-key-rotation` and `--signing-key-grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotation {
    /// A new key every this long; `None`: only on demand (`rotate-key`).
    pub(crate) every: Option<Duration>,
    /// Kept on top of the longest token lifetime before a retired key is
    /// dropped: covers clock skew between replicas, a replica still signing
    /// with the old key until its next tick, and upstreams' JWKS caches.
    pub(crate) grace: Duration,
}

impl KeyRotation {
    pub const fn new(every: Option<Duration>, grace: Duration) -> Self {
        Self { every, grace }
    }
}

impl Default for KeyRotation {
    /// Monthly: short enough that a leaked seed stops minting within a month,
    /// long enough that upstreams caching the JWKS see few changes.
    fn default() -> Self {
        Self { every: Some(Duration::from_secs(30 * 24 * 3600)), grace: Duration::from_secs(600) }
    }
}

/// How a replica keeps the ring: its rotation options and how long a retired
/// key stays.
pub(crate) struct KeyRingPolicy {
    pub(crate) rotation: KeyRotation,
    /// The longest a token signed by a key can live: the longest access-token
    /// lifetime of any route plus the longest identity-JWT lifetime.
    token_lifetime: i64,
    /// The first key the store ever held, which seeds the `Mcp-Session-Id`
    /// binding: written back to a store that lost it.
    session_seed: Secret,
}

impl KeyRingPolicy {
    /// `token_lifetime`: the longest a token signed by a key can live (see
    /// the field).
    pub(crate) fn new(token_lifetime: i64, rotation: KeyRotation, session_seed: &str) -> Self {
        Self { rotation, token_lifetime, session_seed: Secret::new(session_seed) }
    }

    /// Seconds a retired key stays in the ring and the JWKS.
    pub(crate) fn retention(&self) -> i64 {
        self.token_lifetime.saturating_add(self.rotation.grace.as_secs() as i64)
    }
}

/// One key as stored. `Debug` leaves the seed out.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct StoredKey {
    /// The Ed25519 seed, base64url.
    pub(crate) seed: String,
    pub(crate) kid: String,
    pub(crate) created_at: i64,
    /// When a newer key took over (`None`: this is the current key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// A key from a seed, created at `created_at`; the kid is derived from
    /// the public key, so every replica names a seed the same way.
    pub(crate) fn from_seed(seed: String, created_at: i64) -> Result<Self, TokenError> {
        let kid = SigningKey::from_stored(&seed)?.kid().to_owned();
        Ok(Self { seed, kid, created_at, retired_at: None })
    }

    /// A fresh random key.
    fn generate(created_at: i64) -> Result<Self, TokenError> {
        Self::from_seed(SigningKey::generate_stored(), created_at)
    }
}

/// How long a withdrawn key's kid is remembered: a replica that still holds
/// the key must not write it back, and no replica goes that long without
/// reading the ring.
const WITHDRAWN_FOR: i64 = 90 * 24 * 3600;

/// A key taken out of use before its time (`rotate-key --retire-previous`),
/// remembered until `until` so no replica writes it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Withdrawn {
    pub(crate) kid: String,
    pub(crate) until: i64,
}

/// The keys, oldest first; the last one signs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Ring {
    keys: Vec<StoredKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    withdrawn: Vec<Withdrawn>,
}

impl Ring {
    /// The ring of `keys` in canonical form: one entry per kid, ordered by
    /// (`created_at`, `kid`), each key retired when its successor was created.
    /// Every replica computes the same ring from the same keys.
    #[cfg(test)]
    pub(crate) fn from_keys(keys: impl IntoIterator<Item = StoredKey>) -> Self {
        Self::build(keys, Vec::new())
    }

    /// [`Ring::from_keys`] without the `withdrawn` kids (kept, one entry per
    /// kid with its latest `until`, ordered by kid).
    fn build(keys: impl IntoIterator<Item = StoredKey>, mut withdrawn: Vec<Withdrawn>) -> Self {
        withdrawn.sort_by(|a, b| (&a.kid, std::cmp::Reverse(a.until)).cmp(&(&b.kid, std::cmp::Reverse(b.until))));
        withdrawn.dedup_by(|later, kept| later.kid == kept.kid);
        let mut keys: Vec<StoredKey> =
            keys.into_iter().filter(|key| !withdrawn.iter().any(|gone| gone.kid == key.kid)).collect();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        // The same seed written back by two replicas carries the same
        // created_at; if not, the earliest wins (sorted first).
        let mut seen = std::collections::HashSet::new();
        keys.retain(|key| seen.insert(key.kid.clone()));
        let successors: Vec<Option<i64>> =
            keys.iter().skip(1).map(|next| Some(next.created_at)).chain([None]).collect();
        for (key, retired_at) in keys.iter_mut().zip(successors) {
            key.retired_at = retired_at;
        }
        Self { keys, withdrawn }
    }

    fn parse(stored: Option<&str>) -> Result<Self, KeyRingError> {
        match stored {
            None => Ok(Self::default()),
            Some(text) => {
                let ring: Ring = serde_json::from_str(text).map_err(KeyRingError::Unreadable)?;
                Ok(Self::build(ring.keys, ring.withdrawn))
            }
        }
    }

    fn encode(&self) -> Result<String, KeyRingError> {
        serde_json::to_string(self).map_err(KeyRingError::Unreadable)
    }

    pub(crate) fn keys(&self) -> &[StoredKey] {
        &self.keys
    }

    pub(crate) fn current(&self) -> Option<&StoredKey> {
        self.keys.last()
    }

    fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid == kid)
    }

    /// A new key that is newer than every key here (so it becomes current
    /// even if a clock lags behind the one that created the last key).
    fn next_key(&self, now: i64) -> Result<StoredKey, TokenError> {
        let after = self.current().map_or(now, |current| current.created_at + 1);
        StoredKey::generate(now.max(after))
    }

    fn with(&self, key: StoredKey) -> Self {
        Self::build(self.keys.iter().cloned().chain([key]), self.withdrawn.clone())
    }

    /// Only `key`: every other key withdrawn at once, its tokens refused.
    fn replaced_by(&self, key: StoredKey, now: i64) -> Self {
        let until = now.saturating_add(WITHDRAWN_FOR);
        let gone = self.keys.iter().map(|old| Withdrawn { kid: old.kid.clone(), until });
        Self::build([key], self.withdrawn.iter().cloned().chain(gone).collect())
    }

    /// Whether `key` may still have live tokens: current, or retired less
    /// than `retention` seconds ago.
    fn in_use(key: &StoredKey, now: i64, retention: i64) -> bool {
        key.retired_at.is_none_or(|retired_at| retired_at.saturating_add(retention) > now)
    }

    /// Without the keys whose tokens have all expired, and without the
    /// withdrawn kids no longer worth remembering.
    fn pruned(&self, now: i64, retention: i64) -> Self {
        Self {
            keys: self.keys.iter().filter(|key| Self::in_use(key, now, retention)).cloned().collect(),
            withdrawn: self.withdrawn.iter().filter(|gone| gone.until > now).cloned().collect(),
        }
    }

    fn is_withdrawn(&self, kid: &str) -> bool {
        self.withdrawn.iter().any(|gone| gone.kid == kid)
    }

    /// This ring and the keys of `held` still in use, pruned; a kid either
    /// side withdrew stays out.
    fn merged(&self, held: &Ring, now: i64, retention: i64) -> Self {
        let wanted = held.keys.iter().filter(|key| Self::in_use(key, now, retention));
        let withdrawn = self.withdrawn.iter().chain(&held.withdrawn).cloned().collect();
        Self::build(self.keys.iter().cloned().chain(wanted.cloned()), withdrawn).pruned(now, retention)
    }

    /// Keys of `held` still in use that this ring has lost (not withdrawn).
    fn missing_from(&self, held: &Ring, now: i64, retention: i64) -> usize {
        let lost = |key: &&StoredKey| !self.contains(&key.kid) && !self.is_withdrawn(&key.kid);
        held.keys.iter().filter(|key| Self::in_use(key, now, retention)).filter(lost).count()
    }

    fn rotation_due(&self, now: i64, every: Option<Duration>) -> bool {
        match (every, self.current()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(every), Some(current)) => current.created_at.saturating_add(every.as_secs() as i64) <= now,
        }
    }
}

/// Reads the ring, applies `change` and writes the result if the ring is
/// still what was read; otherwise reads again. `change` answers `None` to
/// leave the ring as it is. Returns the ring as stored afterwards.
pub(crate) fn update(store: &dyn Store, mut change: impl FnMut(&Ring) -> Option<Ring>) -> Result<Ring, KeyRingError> {
    for _ in 0..ATTEMPTS {
        let stored = store.signing_keys()?;
        let ring = Ring::parse(stored.as_deref())?;
        let Some(next) = change(&ring) else { return Ok(ring) };
        if store.replace_signing_keys(stored.as_deref(), &next.encode()?)? {
            return Ok(next);
        }
    }
    Err(KeyRingError::Contended)
}

/// The ring at boot. A store without one gets its first key: `legacy_seed`,
/// the single key gateways before the ring kept (so tokens they signed keep
/// verifying after an upgrade).
pub(crate) fn load(store: &dyn Store, legacy_seed: &str, now: i64) -> Result<Ring, KeyRingError> {
    let first = StoredKey::from_seed(legacy_seed.to_owned(), now)?;
    let spare = StoredKey::generate(now)?;
    update(store, |ring| {
        // The legacy key itself may have been withdrawn; then a fresh one.
        let seeded = ring.keys.is_empty().then(|| ring.with(first.clone()))?;
        Some(if seeded.keys.is_empty() { seeded.with(spare.clone()) } else { seeded })
    })
}

/// What `rotate-key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotated {
    /// The key that signs from now on.
    pub(crate) kid: String,
    /// The key it replaced (now verifying only).
    pub(crate) previous: Option<String>,
    /// Keys in the ring afterwards.
    pub(crate) keys: usize,
}

/// A new current key, now. If another rotation lands first (the current key
/// changed between reading and writing), that one stands and no second key
/// is added. With `retire_previous`, every other key is withdrawn at once
/// (after a leak): the tokens they signed are refused from the replicas'
/// next tick, and clients refresh or log in again.
pub(crate) fn rotate(store: &dyn Store, now: i64, retire_previous: bool) -> Result<Rotated, KeyRingError> {
    let before = update(store, |_| None)?;
    if before.keys.len() >= MAX_KEYS && !retire_previous {
        return Err(KeyRingError::Full);
    }
    let expected = before.current().map(|key| key.kid.clone());
    let fresh = before.next_key(now)?;
    let after = update(store, |ring| {
        if retire_previous {
            Some(ring.replaced_by(fresh.clone(), now))
        } else {
            (ring.current().map(|key| key.kid.clone()) == expected).then(|| ring.with(fresh.clone()))
        }
    })?;
    let current = after.current().ok_or(KeyRingError::Empty)?;
    Ok(Rotated { kid: current.kid.clone(), previous: expected, keys: after.keys.len() })
}

/// What one tick of [`sync`] found and did.
#[derive(Debug)]
pub(crate) struct Synced {
    pub(crate) ring: Ring,
    /// Keys this replica held that the store had lost, written back.
    pub(crate) restored: usize,
    /// Whether this replica created the new current key.
    pub(crate) rotated: bool,
    /// Whether the store had no ring at all (a Redis that lost its data).
    pub(crate) was_empty: bool,
}

/// One tick: write back keys the store lost, drop keys past retention,
/// rotate when due; all in one compare-and-set.
pub(crate) fn sync(
    store: &dyn Store,
    held: &Ring,
    rotation: &KeyRotation,
    retention: i64,
    now: i64,
) -> Result<Synced, KeyRingError> {
    let mut fresh: Option<StoredKey> = None;
    let (mut restored, mut rotated, mut was_empty) = (0, false, false);
    let ring = update(store, |ring| {
        restored = ring.missing_from(held, now, retention);
        was_empty = ring.keys.is_empty();
        let mut next = ring.merged(held, now, retention);
        rotated = (next.rotation_due(now, rotation.every) && next.keys.len() < MAX_KEYS) || next.keys.is_empty();
        if rotated {
            let key = match &fresh {
                Some(key) if key.created_at > next.current().map_or(i64::MIN, |c| c.created_at) => key.clone(),
                _ => next.next_key(now).ok()?,
            };
            fresh = Some(key.clone());
            next = next.with(key);
        }
        (next != *ring).then_some(next)
    })?;
    // `rotated` describes the last attempt, which is the one that stood.
    Ok(Synced { ring, restored, rotated, was_empty })
}

/// What a replica's tick left in place.
pub(crate) struct Tick {
    /// The kid that signs now.
    pub(crate) current: String,
    /// Whether a key this replica verified with was dropped.
    pub(crate) dropped: bool,
}

/// A replica's periodic step: [`sync`] with what it holds, the session seed
/// put back if the store lost its data, then `issuer` switched to the ring as
/// stored.
pub(crate) fn tick(
    store: &dyn Store,
    issuer: &SharedIssuer,
    policy: &KeyRingPolicy,
    now: i64,
) -> Result<Tick, KeyRingError> {
    let held = issuer.load();
    let synced = sync(store, held.ring(), &policy.rotation, policy.retention(), now)?;
    if synced.was_empty || synced.restored > 0 {
        // A Redis without persistence came back empty: replicas booting from
        // now on must bind sessions the way the running ones do.
        let seed = policy.session_seed.expose();
        if store.signing_key_or_insert(seed)? != seed {
            tracing::warn!(
                "another gateway stored a new session-binding key while the store was empty: MCP sessions opened \
                 on this replica are not recognised by that one until it restarts"
            );
        }
    }
    if synced.restored > 0 {
        tracing::warn!(
            restored = synced.restored,
            "the store had lost signing keys still in use (restarted without persistence?); wrote them back"
        );
    }
    let current = synced.ring.current().map(|key| key.kid.clone()).ok_or(KeyRingError::Empty)?;
    if synced.rotated {
        tracing::info!(kid = %current, "signing key rotated on schedule");
    }
    let dropped = held.ring().keys().iter().any(|key| !synced.ring.contains(&key.kid));
    let switched = issuer.adopt(&synced.ring)?;
    if switched {
        tracing::info!(kid = %current, keys = synced.ring.keys().len(), "signing keys updated");
    }
    Ok(Tick { current, dropped: switched && dropped })
}

/// The issuer in use, swapped whole when the ring changes. Reading it takes a
/// read lock for the moment of an `Arc` clone; the proxy comes here only for
/// a token its cache has not seen and for identity JWTs.
pub(crate) struct SharedIssuer {
    issuer: String,
    current: RwLock<Arc<Issuing>>,
}

/// A ring and the issuer built from it.
pub(crate) struct Issuing {
    ring: Ring,
    tokens: TokenIssuer,
}

impl Issuing {
    fn new(issuer: String, ring: &Ring) -> Result<Self, TokenError> {
        Ok(Self { ring: ring.clone(), tokens: issuer_of(issuer, ring)? })
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }
}

impl std::ops::Deref for Issuing {
    type Target = TokenIssuer;

    fn deref(&self) -> &TokenIssuer {
        &self.tokens
    }
}

/// The issuer named `issuer` whose keys are the ring's, in its order.
pub(crate) fn issuer_of(issuer: String, ring: &Ring) -> Result<TokenIssuer, TokenError> {
    let keys = ring.keys().iter().map(|stored| SigningKey::from_stored(&stored.seed)).collect::<Result<Vec<_>, _>>()?;
    TokenIssuer::new(issuer, keys)
}

impl SharedIssuer {
    pub(crate) fn new(issuer: String, ring: &Ring) -> Result<Self, KeyRingError> {
        let current = Arc::new(Issuing::new(issuer.clone(), ring)?);
        Ok(Self { issuer, current: RwLock::new(current) })
    }

    /// The issuer as it stands.
    pub(crate) fn load(&self) -> Arc<Issuing> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Switches to `ring` if it differs from the one in use; `true` if it did.
    pub(crate) fn adopt(&self, ring: &Ring) -> Result<bool, KeyRingError> {
        if self.load().ring() == ring {
            return Ok(false);
        }
        let next = Arc::new(Issuing::new(self.issuer.clone(), ring)?);
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = next;
        Ok(true)
    }

    /// An access token carrying the user's e-mail, groups and roles.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mint_for(
        &self,
        identity: &Identity,
        sub: &str,
        aud: &str,
        client_id: &str,
        scope: &str,
        now: i64,
        ttl: i64,
        jti: String,
    ) -> Result<(String, AccessClaims), TokenError> {
        self.load().mint_for(identity, sub, aud, client_id, scope, now, ttl, jti)
    }

    pub(crate) fn sign_identity(&self, claims: &UpstreamIdentity<'_>) -> Result<String, TokenError> {
        self.load().sign_identity(claims)
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.load().verify(token)
    }

    /// Every key in use, for `/oauth/jwks`.
    pub(crate) fn jwks(&self) -> Vec<Jwk> {
        self.load().jwks()
    }
}

impl Verify for SharedIssuer {
    fn verify_token(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{KeyRotation, Ring, StoredKey, sync};
    use crate::gateway::store::{SqliteStore, Store};

    fn key(created_at: i64) -> StoredKey {
        StoredKey::generate(created_at).unwrap()
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("keys.db")).unwrap();
        (dir, store)
    }

    const ON_DEMAND: KeyRotation = KeyRotation { every: None, grace: Duration::ZERO };

    #[test]
    fn the_newest_key_is_current_and_retires_the_one_before() {
        let (a, b, c) = (key(10), key(20), key(30));
        let ring = Ring::from_keys([c.clone(), a.clone(), b.clone(), a.clone()]);
        let kids: Vec<&str> = ring.keys().iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [a.kid.as_str(), b.kid.as_str(), c.kid.as_str()], "oldest first, duplicates merged");
        assert_eq!(ring.current().unwrap().kid, c.kid);
        let retired: Vec<Option<i64>> = ring.keys().iter().map(|k| k.retired_at).collect();
        assert_eq!(retired, [Some(20), Some(30), None]);
    }

    #[test]
    fn ties_on_created_at_are_broken_by_kid_the_same_way_everywhere() {
        let (x, y) = (key(10), key(10));
        let one = Ring::from_keys([x.clone(), y.clone()]);
        let other = Ring::from_keys([y.clone(), x.clone()]);
        assert_eq!(one, other);
        assert_eq!(one.current().unwrap().kid, std::cmp::max(x.kid, y.kid));
    }

    #[test]
    fn retired_keys_are_dropped_after_retention_but_never_the_current_one() {
        let ring = Ring::from_keys([key(10), key(20)]);
        assert_eq!(ring.pruned(29, 10).keys().len(), 2, "retired at 20, in use until 30");
        let pruned = ring.pruned(30, 10);
        assert_eq!(pruned.keys().len(), 1);
        assert_eq!(pruned.current(), ring.current());
        assert_eq!(Ring::from_keys([key(1)]).pruned(i64::MAX, 0).keys().len(), 1);
    }

    #[test]
    fn merging_restores_lost_keys_still_in_use_only() {
        let (old, mid, new) = (key(10), key(20), key(30));
        let held = Ring::from_keys([old.clone(), mid.clone(), new.clone()]);
        let empty = Ring::default();
        assert_eq!(empty.missing_from(&held, 35, 10), 2, "`old` retired at 20 is past retention at 35");
        let merged = empty.merged(&held, 35, 10);
        let kids: Vec<&str> = merged.keys().iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [mid.kid.as_str(), new.kid.as_str()]);
        // A replica that booted on the empty store made a newer key: it
        // stays current, and the restored ones retire before it.
        let newest = key(40);
        let merged = Ring::from_keys([newest.clone()]).merged(&held, 41, 10);
        assert_eq!(merged.current().unwrap().kid, newest.kid);
        assert_eq!(merged.keys().len(), 2, "`mid` retired at 30 is in use until 40 only");
    }

    #[test]
    fn a_rotation_is_due_after_the_interval_and_never_when_off() {
        let ring = Ring::from_keys([key(100)]);
        let daily = Some(Duration::from_secs(86_400));
        assert!(!ring.rotation_due(100 + 86_399, daily));
        assert!(ring.rotation_due(100 + 86_400, daily));
        assert!(!ring.rotation_due(i64::MAX, None));
    }

    #[test]
    fn a_new_key_is_newer_than_the_current_one_even_on_a_lagging_clock() {
        let ring = Ring::from_keys([key(100)]);
        let next = ring.next_key(50).unwrap();
        assert_eq!(next.created_at, 101);
        assert_eq!(ring.with(next.clone()).current().unwrap().kid, next.kid);
    }

    #[test]
    fn a_full_ring_waits_for_its_oldest_key_to_retire() {
        let (_dir, store) = store();
        super::load(&store, &crate::gateway::tokens::SigningKey::generate_stored(), 0).unwrap();
        for at in 1..super::MAX_KEYS as i64 {
            super::rotate(&store, at, false).unwrap();
        }
        let held = super::update(&store, |_| None).unwrap();
        assert_eq!(held.keys().len(), super::MAX_KEYS);
        assert!(matches!(super::rotate(&store, 100, false), Err(super::KeyRingError::Full)));
        let every_second = KeyRotation { every: Some(Duration::from_secs(1)), grace: Duration::ZERO };
        let waiting = sync(&store, &held, &every_second, 1_000, 100).unwrap();
        assert!(!waiting.rotated, "no ninth key while all eight are in use");
        assert_eq!(waiting.ring.keys().len(), super::MAX_KEYS);
        // Once the oldest retired key is past retention, it goes and a new key comes.
        let later = sync(&store, &held, &every_second, 1_000, 1_001).unwrap();
        assert!(later.rotated);
        assert_eq!(later.ring.keys().len(), super::MAX_KEYS);
        assert_ne!(later.ring.keys()[0].kid, held.keys()[0].kid);
    }

    #[test]
    fn withdrawn_keys_are_not_written_back_by_replicas_that_hold_them() {
        let (_dir, store) = store();
        let held = super::load(&store, &crate::gateway::tokens::SigningKey::generate_stored(), 0).unwrap();
        super::rotate(&store, 1, false).unwrap();
        let held = sync(&store, &held, &ON_DEMAND, 1_000, 2).unwrap().ring;
        assert_eq!(held.keys().len(), 2);
        let rotated = super::rotate(&store, 3, true).unwrap();
        assert_eq!(rotated.keys, 1, "only the new key is left");
        // A replica still holding both keys does not bring them back ...
        let after = sync(&store, &held, &ON_DEMAND, 1_000, 4).unwrap();
        assert_eq!(after.restored, 0);
        assert_eq!(after.ring.keys().len(), 1);
        assert_eq!(after.ring.current().unwrap().kid, rotated.kid);
        // ... nor after the store lost everything, once it has the withdrawal.
        assert!(store.replace_signing_keys(store.signing_keys().unwrap().as_deref(), "{\"keys\":[]}").unwrap());
        let wiped = sync(&store, &after.ring, &ON_DEMAND, 1_000, 5).unwrap();
        assert_eq!(wiped.ring.keys().len(), 1);
        assert!(wiped.ring.is_withdrawn(&held.keys()[0].kid), "the withdrawal is written back too");
        // The withdrawal is forgotten only long after any token could live.
        let much_later = sync(&store, &held, &ON_DEMAND, 1_000, 5 + super::WITHDRAWN_FOR).unwrap();
        assert!(much_later.ring.withdrawn.is_empty());
        assert_eq!(much_later.ring.keys().len(), 1, "the old keys are past retention by then anyway");
    }

    #[test]
    fn stored_keys_never_show_their_seed() {
        let stored = key(1);
        assert!(!format!("{stored:?}").contains(&stored.seed));
        let ring = Ring::from_keys([stored.clone()]);
        assert!(!format!("{ring:?}").contains(&stored.seed));
    }

    #[test]
    fn sync_rotates_once_when_due_and_restores_a_wiped_ring() {
        let (_dir, store) = store();
        let held = super::load(&store, &crate::gateway::tokens::SigningKey::generate_stored(), 1_000).unwrap();
        let monthly = KeyRotation { every: Some(Duration::from_secs(100)), grace: Duration::ZERO };
        let first = sync(&store, &held, &monthly, 50, 1_050).unwrap();
        assert!(!first.rotated && first.restored == 0 && first.ring == held, "nothing to do yet");
        let rotated = sync(&store, &held, &monthly, 50, 1_100).unwrap();
        assert!(rotated.rotated);
        assert_eq!(rotated.ring.keys().len(), 2);
        // Another replica still holding the old ring does not rotate again.
        let again = sync(&store, &held, &monthly, 50, 1_101).unwrap();
        assert!(!again.rotated);
        assert_eq!(again.ring, rotated.ring);
        // The ring is lost: what the replica holds comes back.
        assert!(store.replace_signing_keys(store.signing_keys().unwrap().as_deref(), "{\"keys\":[]}").unwrap());
        let restored = sync(&store, &rotated.ring, &ON_DEMAND, 50, 1_102).unwrap();
        assert_eq!(restored.restored, 2);
        assert_eq!(restored.ring, rotated.ring);
    }
}
