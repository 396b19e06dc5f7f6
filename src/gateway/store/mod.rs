//! Gateway state that outlives a request: registered clients, pending logins,
//! consent sessions, authorization codes, refresh tokens (families, rotation,
//! reuse detection), revoked access tokens and the signing keys.
//!
//! The trait is synchronous on purpose. Both back ends we care about have
//! mature synchronous clients (rusqlite; redis), every operation is one short
//! statement or transaction, and a sync trait is object safe without boxing
//! futures. Async callers go through [`StoreHandle::run`], which moves the call
//! onto tokio's blocking pool so a slow disk never stalls the async workers.
//! The proxy hot path does not touch the store at all: revocations are mirrored
//! in memory (see `tokens::Revocations`).
//!
//! Secrets at rest: authorization codes and refresh tokens are stored as
//! SHA-256 hashes, never in the clear; client secrets likewise. The identity
//! provider's refresh token of a login is stored sealed (`gateway::sealing`).

#[cfg(test)]
mod conformance;
pub(crate) mod redis;
mod rotation;
pub(crate) mod sqlite;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) use self::redis::RedisStore;
pub(crate) use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("redis: {0}")]
    Redis(String),
    /// The store cannot be reached right now (down, hanging, restarting):
    /// OAuth endpoints answer 503 with `Retry-After` instead of waiting.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored record is unreadable: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Open(String),
}

/// A dynamically registered OAuth client (RFC 7591).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Client {
    pub(crate) client_id: String,
    pub(crate) client_name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) grant_types: Vec<String>,
    pub(crate) response_types: Vec<String>,
    pub(crate) token_endpoint_auth_method: String,
    /// SHA-256 (hex) of the client secret, for confidential clients.
    pub(crate) client_secret_hash: Option<String>,
    pub(crate) client_id_issued_at: i64,
}

/// What the user is asked to approve and what a code or refresh token grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    /// The route the tokens are bound to (`aud` = `{public_url}/mcp/{slug}`).
    pub(crate) slug: String,
    pub(crate) scope: String,
    /// The IdP's `sub`.
    pub(crate) subject: String,
    /// Who the user is and which groups and roles the ID token gave them at
    /// login: they travel with the grant (and its refresh family) into every
    /// access token, so per-tool access needs no lookup per request. Absent in
    /// records written before they existed (read as none).
    #[serde(default)]
    pub(crate) identity: Identity,
    /// The identity provider's side of the login, for re-checking the user
    /// on refresh. Absent for logins made before the gateway kept it (their
    /// families are not re-checked and end at their absolute lifetime) and
    /// for providers that issue no refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idp: Option<IdpSession>,
}

/// The identity provider's refresh token of a login, sealed (see
/// `gateway::sealing`: never stored in the clear), and when the user was last
/// checked with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct IdpSession {
    pub(crate) sealed_refresh: String,
    /// Unix seconds of the last successful check (the login, then each
    /// re-check on refresh).
    pub(crate) checked_at: i64,
}

/// What a re-check of the user at the identity provider gave: the session to
/// keep (new check time; a new sealed token if the provider rotated it) and,
/// when it sent a new ID token, the user's groups and e-mail as they are now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recheck {
    pub(crate) idp: IdpSession,
    pub(crate) identity: Option<Identity>,
}

impl Grant {
    /// Whether an operator's `revoke` names this grant: every filter given
    /// matches (the user by e-mail or username, ignoring case).
    pub(crate) fn named_by(&self, user: Option<&str>, subject: Option<&str>, client_id: Option<&str>) -> bool {
        let is_user = |name: &str| {
            [&self.identity.email, &self.identity.username]
                .into_iter()
                .flatten()
                .any(|known| known.eq_ignore_ascii_case(name))
        };
        user.is_none_or(is_user)
            && subject.is_none_or(|subject| self.subject == subject)
            && client_id.is_none_or(|client_id| self.client_id == client_id)
    }

    /// This grant as the re-check found the user.
    pub(crate) fn rechecked(&self, recheck: Option<&Recheck>) -> Self {
        let mut grant = self.clone();
        if let Some(recheck) = recheck {
            grant.idp = Some(recheck.idp.clone());
            if let Some(identity) = &recheck.identity {
                grant.identity = identity.clone();
            }
        }
        grant
    }
}

/// The user facts a grant keeps from the ID token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    /// The IdP's username (`cognito:username`, else `preferred_username`):
    /// what an operator names the user by in `revoke --user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) roles: Vec<String>,
    /// A machine client (OAuth client credentials): no person, the subject is
    /// the Cognito app client id, and route scopes decide what it reaches.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) machine: bool,
}

/// A browser sent to the IdP, waiting for `/oauth/callback` (keyed by the
/// gateway's own `state`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct PendingLogin {
    pub(crate) state: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) client_state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) slug: String,
    pub(crate) scope: String,
    pub(crate) nonce: String,
    pub(crate) idp_code_verifier: String,
    pub(crate) expires_at: i64,
    /// Set for a device login (RFC 8628): the user code being approved;
    /// such a login has no redirect URI and no PKCE challenge of the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_user_code: Option<String>,
    /// Set when the sign-in proves who opens an upstream connect link (see
    /// `upstream_oauth::connect`): the link's ticket. Such a login has no
    /// client of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_connect: Option<String>,
}

/// A consent screen shown to a logged-in user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Consent {
    pub(crate) id: String,
    /// SHA-256 (hex) of the CSRF token in the form and the cookie.
    pub(crate) csrf_hash: String,
    pub(crate) redirect_uri: String,
    pub(crate) client_state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) grant: Grant,
    pub(crate) expires_at: i64,
    /// The user code of a device login (see [`PendingLogin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_user_code: Option<String>,
}

/// An authorization code (stored by hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct AuthCode {
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) grant: Grant,
    pub(crate) expires_at: i64,
}

/// What a redeemed authorization code issues, kept (by the code's hash)
/// until the code would have expired and the access token with it: a second
/// use of the code revokes it all (RFC 6749 section 4.1.2). The redeeming
/// request picks the family and the access token's id before it takes the
/// code, and the take stores this record in the same step, so a replay that
/// races the redemption on another replica always finds what to revoke.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct CodeUse {
    pub(crate) family: Option<String>,
    pub(crate) access: RevokedAccess,
    pub(crate) expires_at: i64,
}

/// A refresh token (stored by hash) in its rotation family.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RefreshToken {
    pub(crate) family: String,
    pub(crate) grant: Grant,
    pub(crate) expires_at: i64,
    /// The access token issued with it, revoked with the family.
    pub(crate) access_jti: String,
    pub(crate) access_expires_at: i64,
    /// When the family ends whatever its rotations: fixed at the login, so a
    /// stolen or long-lived chain of refreshes cannot outlive it. `None` for
    /// tokens stored before families had a lifetime.
    #[serde(default)]
    pub(crate) family_expires_at: Option<i64>,
    /// Set once the token is rotated: what the rotation answered, so a
    /// replay within the grace window gets the same answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replaced: Option<Replacement>,
}

/// The answer a rotation gave: the successor refresh token sealed with the
/// presented one (only its holder can open it; see `oauth::grace`), and the
/// access token's id and issue time, from which it is minted again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Replacement {
    pub(crate) at: i64,
    pub(crate) sealed: String,
    pub(crate) access_jti: String,
}

impl RefreshToken {
    /// The token that replaces this one in its family: same grant, new
    /// lifetimes from `now` (never past the family's end), bound to the access
    /// token issued with it.
    pub(crate) fn successor(&self, next: &Rotation, lifetimes: Lifetimes, now: i64) -> Self {
        let expires_at = now + lifetimes.refresh;
        Self {
            family: self.family.clone(),
            grant: self.grant.rechecked(next.recheck.as_ref()),
            expires_at: self.family_expires_at.map_or(expires_at, |end| expires_at.min(end)),
            access_jti: next.access_jti.clone(),
            access_expires_at: now + lifetimes.access,
            family_expires_at: self.family_expires_at,
            replaced: None,
        }
    }

    /// This token as stored once rotated by `next` at `now` (with the
    /// re-checked grant, so a replay within the grace window is answered for
    /// the user as the re-check found them).
    pub(crate) fn replaced_by(&self, next: &Rotation, now: i64) -> Self {
        Self {
            grant: self.grant.rechecked(next.recheck.as_ref()),
            replaced: Some(Replacement { at: now, sealed: next.sealed.clone(), access_jti: next.access_jti.clone() }),
            ..self.clone()
        }
    }

    /// The earlier answer, if this used token is presented again within
    /// `grace` seconds of its rotation.
    pub(crate) fn replay(&self, grace: i64, now: i64) -> Option<Replacement> {
        self.replaced.clone().filter(|replaced| grace > 0 && now >= replaced.at && now - replaced.at <= grace)
    }
}

/// A rotation that replaces the presented refresh token.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    pub(crate) new_hash: String,
    /// The access token issued with the successor.
    pub(crate) access_jti: String,
    /// The successor sealed with the presented token (kept for replays).
    pub(crate) sealed: String,
    /// Seconds during which the same client presenting the used token again
    /// gets [`RefreshUse::Replayed`] instead of revoking the family.
    pub(crate) grace: i64,
    /// The re-check at the identity provider made before this rotation, if
    /// one was due: the successor carries its result.
    pub(crate) recheck: Option<Recheck>,
}

/// Lifetimes (seconds) of the tokens a grant's route issues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lifetimes {
    pub(crate) refresh: i64,
    pub(crate) access: i64,
}

#[derive(Debug, PartialEq)]
pub(crate) enum RefreshUse {
    /// Not a token we issued to this client.
    Unknown,
    Expired,
    /// The token was already used (or its family revoked): the whole family is
    /// now revoked, with the access tokens it issued (RFC 9700 section 4.14).
    Reused {
        revoked_access: Vec<RevokedAccess>,
    },
    Rotated {
        grant: Grant,
        family: String,
    },
    /// The token was rotated moments ago (within the grace window) for this
    /// client: the answer of that rotation, given again.
    Replayed {
        grant: Grant,
        replacement: Replacement,
    },
}

/// An RFC 8628 device authorization, stored under the hash of its device
/// code and found by its user code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct DeviceAuthorization {
    pub(crate) user_code: String,
    pub(crate) client_id: String,
    pub(crate) slug: String,
    pub(crate) scope: String,
    pub(crate) expires_at: i64,
    pub(crate) status: DeviceStatus,
}

/// Where a device authorization stands: the user decides once.
// A record decoded once per poll and dropped: boxing the grant would save
// nothing worth an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved(Grant),
    Denied,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RevokedAccess {
    pub(crate) jti: String,
    pub(crate) expires_at: i64,
}

/// A stretch of the store's revocation log: every unexpired revocation whose
/// sequence number is above the one asked for.
///
/// Replicas follow the log by sequence number, not by time: the store numbers
/// each revocation as it records it (in the same transaction), so a replica
/// that has read up to `through` has seen every revocation numbered up to it,
/// whatever the clocks of the replicas that wrote them said. `epoch` names
/// this log: it changes when the log starts again from nothing (a Redis that
/// came back empty), and then a replica reads it again from the start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RevocationLog {
    pub(crate) epoch: String,
    /// The highest sequence number handed out so far (0: none yet).
    pub(crate) through: u64,
    pub(crate) revoked: Vec<RevokedAccess>,
}

/// Gateway state behind one interface; see the module docs for why it is sync.
pub(crate) trait Store: Send + Sync + 'static {
    /// The stored signing key, or `candidate` stored and returned when there is
    /// none yet (first boot; atomic, so replicas agree on one key).
    fn signing_key_or_insert(&self, candidate: &str) -> Result<String, StoreError>;

    /// The signing-key ring as stored (JSON, see `keyring`), `None` when
    /// there is none (first boot, or a Redis that lost its data).
    fn signing_keys(&self) -> Result<Option<String>, StoreError>;
    /// Replaces the ring with `ring` if it is still `expected` (`None`: no
    /// ring), in one atomic step; `false` when another writer changed it
    /// first (the caller reads it again and re-decides).
    fn replace_signing_keys(&self, expected: Option<&str>, ring: &str) -> Result<bool, StoreError>;

    fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;

    fn insert_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError>;
    /// Single use: removed whether or not it has expired; expired → `None`.
    fn take_pending_login(&self, state: &str, now: i64) -> Result<Option<PendingLogin>, StoreError>;

    fn insert_consent(&self, consent: &Consent) -> Result<(), StoreError>;
    fn take_consent(&self, id: &str, now: i64) -> Result<Option<Consent>, StoreError>;

    fn insert_code(&self, hash: &str, code: &AuthCode) -> Result<(), StoreError>;
    /// Redeems the code `hash`: removes it and, in the same atomic step,
    /// stores `issued(&code)` (what the redemption is about to issue) under
    /// its hash for [`Store::revoke_code_use`]. An expired code is removed,
    /// records nothing and gives `None`, as does an unknown or spent one.
    fn take_code(
        &self,
        hash: &str,
        issued: &dyn Fn(&AuthCode) -> CodeUse,
        now: i64,
    ) -> Result<Option<AuthCode>, StoreError>;

    /// Stores the first token of a family. Into a family already revoked (a
    /// replayed code's, see [`Store::revoke_code_use`]) it lands revoked.
    fn insert_refresh(&self, hash: &str, token: &RefreshToken) -> Result<(), StoreError>;
    /// The refresh token `hash` as stored, if it was issued to `client_id`
    /// and is neither used nor revoked; changes nothing (the refresh grant
    /// looks before it re-checks the user and rotates).
    fn active_refresh(&self, hash: &str, client_id: &str) -> Result<Option<RefreshToken>, StoreError>;
    /// Marks `hash` used and stores its successor in the same family, in one
    /// transaction. A used or revoked token revokes its family. `lifetimes`
    /// gives the successor's lifetimes from the grant (its route's policy);
    /// `None` (the route is gone) leaves the token untouched as `Unknown`.
    fn rotate_refresh(
        &self,
        hash: &str,
        client_id: &str,
        next: &Rotation,
        lifetimes: &dyn Fn(&Grant) -> Option<Lifetimes>,
        now: i64,
    ) -> Result<RefreshUse, StoreError>;
    /// Revokes the family of `hash` (RFC 7009); `None` when unknown.
    fn revoke_refresh_family(
        &self,
        hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Vec<RevokedAccess>>, StoreError>;

    /// Records the revocation under the log's next sequence number (a jti
    /// already in the log keeps its number).
    fn revoke_access(&self, revoked: &RevokedAccess, now: i64) -> Result<(), StoreError>;
    /// The revocation log after sequence number `after`: the entries numbered
    /// above it that have not expired at `now`, the log's epoch and the
    /// highest number handed out. See [`RevocationLog`].
    fn revocations_after(&self, after: u64, now: i64) -> Result<RevocationLog, StoreError>;

    /// Counts one request against the rate-limit counter `key` (one per
    /// policy, caller and window) and returns the count including it. The
    /// counter lives until `window_end`; replicas on one store share it.
    fn count_request(&self, key: &str, window_end: i64, now: i64) -> Result<u64, StoreError>;

    /// Stores a new device authorization; `false` (and nothing stored) when
    /// its user code is already taken: the caller draws another. A user code
    /// must find one authorization, or a user could approve someone else's.
    fn insert_device(&self, device_hash: &str, device: &DeviceAuthorization) -> Result<bool, StoreError>;
    /// The unexpired, still pending authorization of a user code.
    fn pending_device(&self, user_code: &str, now: i64) -> Result<Option<DeviceAuthorization>, StoreError>;
    /// Records the user's decision on the pending authorization of
    /// `user_code`, once: `false` when it is no longer pending (or expired).
    fn decide_device(&self, user_code: &str, status: &DeviceStatus, now: i64) -> Result<bool, StoreError>;
    /// A poll with a device code: the authorization (an approved or denied
    /// one is removed: its answer is given once; an expired one too, after
    /// this answer) and the time of the previous poll (0 for the first), now
    /// recorded as `now`. Unknown or already answered → `None`.
    fn poll_device(&self, device_hash: &str, now: i64) -> Result<Option<(DeviceAuthorization, i64)>, StoreError>;

    /// Deletes expired rows; returns how many.
    fn sweep(&self, now: i64) -> Result<usize, StoreError>;

    /// A redeemed code `hash` presented again: revokes what its redemption
    /// issued, the access token and the refresh family, and removes the
    /// record. The family is revoked by id and stays revoked for the
    /// record's lifetime, so a refresh token the redeeming request has not
    /// stored yet lands revoked. Returns the unexpired access tokens now
    /// revoked; `None` when there is no unexpired record (never redeemed,
    /// already replayed, or long ago).
    fn revoke_code_use(&self, hash: &str, now: i64) -> Result<Option<Vec<RevokedAccess>>, StoreError>;

    /// Revokes every refresh family whose grant is for `subject` and/or
    /// `client_id` (at least one is given); returns the unexpired access
    /// tokens they issued, now revoked too. For operators (`revoke`).
    fn revoke_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<RevokedAccess>, StoreError>;
    /// The subjects of the stored logins (refresh families, revoked or not)
    /// whose user has `user` as e-mail or username (ignoring case), and/or
    /// whose grant is for `subject` and/or `client_id`. For operators
    /// (`revoke`), who know a user by name, not by `sub`.
    fn grant_subjects(
        &self,
        user: Option<&str>,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError>;
    /// Deletes a client registration; `false` when there was none.
    fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;

    /// Records that a client completed a login (its registration is in use
    /// and is kept).
    fn mark_client_used(&self, client_id: &str) -> Result<(), StoreError>;
    /// Deletes clients registered before `created_before` that never completed
    /// a login; returns how many.
    fn expire_unused_clients(&self, created_before: i64) -> Result<usize, StoreError>;

    // Plain records by key, for state whose shape the store need not know
    // (the upstream credentials of `gateway::upstream_oauth`: grants,
    // registrations, pending connects, refresh leases). A record past its
    // `expires_at` reads as absent.

    /// Stores `value` under `key`, replacing any record there.
    fn put_record(&self, key: &str, value: &str, expires_at: Option<i64>) -> Result<(), StoreError>;
    fn record(&self, key: &str, now: i64) -> Result<Option<String>, StoreError>;
    /// Removes the record and returns it (single use); expired → `None`.
    fn take_record(&self, key: &str, now: i64) -> Result<Option<String>, StoreError>;
    /// Stores `value` only when `key` holds nothing unexpired: `false` (and
    /// nothing changed) otherwise. Atomic across replicas: a lease, a first
    /// registration.
    fn insert_record(&self, key: &str, value: &str, expires_at: Option<i64>, now: i64) -> Result<bool, StoreError>;
    /// Replaces the record only while it still holds `expected` (compare and
    /// set): `false` when another writer changed it first.
    fn replace_record(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Deletes the record; `false` when there was none.
    fn delete_record(&self, key: &str) -> Result<bool, StoreError>;
    /// Every unexpired record whose key starts with `prefix`.
    fn records_with_prefix(&self, prefix: &str, now: i64) -> Result<Vec<(String, String)>, StoreError>;
}

/// Where the store lives: `sqlite:PATH` (the default) or `redis://...`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoreUrl {
    Sqlite(std::path::PathBuf),
    /// `redis[s]://[user:password@]host[:port][/db]`
    Redis(String),
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Some(path) = value.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:cognigate-gateway.db".into());
            }
            return Ok(Self::Sqlite(path.into()));
        }
        // rediss:// is TLS, verified against the system's roots (SSL_CERT_FILE
        // names a private CA); user:password@ logs in as a Redis ACL user.
        if value.starts_with("redis://") || value.starts_with("rediss://") {
            return Ok(Self::Redis(value.to_owned()));
        }
        Err(format!("`{value}` is not a store URL; use sqlite:PATH or redis://HOST:PORT"))
    }
}

impl StoreUrl {
    pub(crate) fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Self::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
            Self::Redis(url) => Ok(Arc::new(RedisStore::open(url)?)),
        }
    }
}

/// A store as the gateway holds it: one SQLite file or one Redis, shared by
/// every clone. Async code goes through [`StoreHandle::run`].
#[derive(Clone)]
pub struct StoreHandle(Arc<dyn Store>);

impl From<SqliteStore> for StoreHandle {
    fn from(store: SqliteStore) -> Self {
        Self(Arc::new(store))
    }
}

impl From<RedisStore> for StoreHandle {
    fn from(store: RedisStore) -> Self {
        Self(Arc::new(store))
    }
}

impl StoreHandle {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self(store)
    }

    /// The store itself, for callers already on the blocking pool.
    pub(crate) fn get(&self) -> &Arc<dyn Store> {
        &self.0
    }

    /// A registered client, `None` when there is none (blocking).
    pub fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.0.client(client_id)
    }

    /// Deletes clients registered before `created_before` that never
    /// completed a login, as the periodic sweep does; returns how many
    /// (blocking).
    pub fn expire_unused_clients(&self, created_before: i64) -> Result<usize, StoreError> {
        self.0.expire_unused_clients(created_before)
    }

    /// The signing-key ring as stored, `None` when there is none (blocking).
    pub fn signing_keys(&self) -> Result<Option<String>, StoreError> {
        self.0.signing_keys()
    }

    /// Runs one store call on the blocking pool.
    pub(crate) async fn run<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let span = crate::gateway::telemetry::child(|| "store", opentelemetry::trace::SpanKind::Client);
        if let Some(span) = &span {
            // The closure's type names the function that made the call.
            let caller = std::any::type_name::<F>();
            span.set("code.function.name", caller.split("::{{closure}}").next().unwrap_or(caller).to_owned());
        }
        let store = self.0.clone();
        let result = tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|err| StoreError::Task(err.to_string()))?;
        if let (Some(span), Err(err)) = (&span, &result) {
            span.fail(err.to_string());
        }
        result
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Grant, IdpSession, RefreshToken, StoreUrl};

    #[test]
    fn records_without_an_idp_session_still_load() {
        let old = r#"{"family":"f","grant":{"client_id":"c","slug":"echo","scope":"openid","subject":"s"},
            "expires_at":10,"access_jti":"j","access_expires_at":5}"#;
        let token: RefreshToken = serde_json::from_str(old).unwrap();
        assert_eq!(token.grant.idp, None, "not re-checked: ends at its lifetime");
        let grant =
            Grant { idp: Some(IdpSession { sealed_refresh: "v1.x".into(), checked_at: 7 }), ..token.grant.clone() };
        let text = serde_json::to_string(&grant).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), grant);
        assert!(!serde_json::to_string(&token.grant).unwrap().contains("idp"), "absent when there is none");
    }

    #[test]
    fn parses_store_urls() {
        assert_eq!("sqlite:gw.db".parse::<StoreUrl>().unwrap(), StoreUrl::Sqlite("gw.db".into()));
        assert_eq!("sqlite:///tmp/gw.db".parse::<StoreUrl>().unwrap(), StoreUrl::Sqlite("/tmp/gw.db".into()));
        assert!("sqlite:".parse::<StoreUrl>().is_err());
        assert!("postgres://x".parse::<StoreUrl>().unwrap_err().contains("sqlite:PATH"));
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse::<StoreUrl>().unwrap(),
            StoreUrl::Redis("redis://127.0.0.1:6379/0".into())
        );
        assert_eq!(
            "rediss://gw:pw@redis.internal:6380/0".parse::<StoreUrl>().unwrap(),
            StoreUrl::Redis("rediss://gw:pw@redis.internal:6380/0".into())
        );
    }
}
