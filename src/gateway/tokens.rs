//! The gateway's own access tokens: the signing key, minting, verification
//! with a cache, and the in-memory mirror of revocations.
//!
//! Access tokens are EdDSA (Ed25519) JWTs (RFC 9068 `at+jwt`), `aud` = the
//! route's canonical URL, so a token for `/mcp/a` is refused on `/mcp/b`. The
//! keys are kept in the store as a ring (see `keyring`), so tokens survive a
//! restart and replicas sharing a store share the keys; the newest key signs
//! and a token verifies with the key its `kid` names.
//!
//! The proxy verifies a token once; after that a request costs one SHA-256 and
//! a map lookup ([`TokenCache`]) plus a revocation lookup ([`Revocations`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::claims::AccessClaims;
use super::claims::UpstreamIdentity;
use super::crypto::{random_token, sha256_bytes};
use super::store::{Identity, RevokedAccess, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the stored signing key is unusable: {0}")]
    Key(String),
    #[error("cannot sign: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("invalid token: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    #[error("the token has expired")]
    Expired,
    #[error("the token names no signing key in use")]
    UnknownKey,
    #[error("the token is not typed as an access token (typ at+jwt)")]
    NotAnAccessToken,
}

/// The `typ` of the gateway's access tokens (RFC 9068).
const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// RFC 8410 PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

pub(crate) struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random seed in the stored form (base64url).
    pub(crate) fn generate_stored() -> String {
        random_token(32)
    }

    /// The key from its stored form.
    pub(crate) fn from_stored(stored: &str) -> Result<Self, TokenError> {
        let seed = URL_SAFE_NO_PAD.decode(stored.trim()).map_err(|err| TokenError::Key(err.to_string()))?;
        if seed.len() != 32 {
            return Err(TokenError::Key(format!("expected a 32-byte Ed25519 seed, found {} bytes", seed.len())));
        }
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let encoding = EncodingKey::from_ed_der(&pkcs8);
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).map_err(|err| TokenError::Key(err.to_string()))?;
        let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
            return Err(TokenError::Key("not an Ed25519 key".into()));
        };
        let kid = URL_SAFE_NO_PAD.encode(sha256_bytes(params.x.as_bytes()))[..16].to_owned();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|err| TokenError::Key(err.to_string()))?;
        Ok(Self { kid, encoding, decoding, jwk })
    }

    /// The public key as a JWK (published at `/oauth/jwks`).
    pub(crate) fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Derived from the public key: the same seed has the same kid everywhere.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }
}

/// Mints (with the ring's current key) and verifies (with the key a token's
/// `kid` names) access tokens. Immutable: a new ring makes a new issuer.
pub(crate) struct TokenIssuer {
    issuer: String,
    /// The ring's keys in its order; the last one signs.
    keys: Vec<SigningKey>,
    validation: Validation,
}

impl TokenIssuer {
    /// An issuer named `issuer` verifying with `keys`, the last of which signs.
    pub(crate) fn new(issuer: String, keys: Vec<SigningKey>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::Key("the key ring is empty".into()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer.as_str()]);
        // `aud` is compared with the route by the caller: one verification
        // result serves every route check.
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        Ok(Self { issuer, keys, validation })
    }

    /// The key that signs: the last (`new` refuses an empty list).
    fn key(&self) -> &SigningKey {
        &self.keys[self.keys.len() - 1]
    }

    #[cfg(test)]
    pub(crate) fn current_kid(&self) -> &str {
        self.key().kid()
    }

    /// Every key in use, oldest first (`/oauth/jwks`).
    pub(crate) fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(|key| key.public_jwk().clone()).collect()
    }

    /// An access token without user facts (tests and tools).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mint(
        &self,
        sub: &str,
        aud: &str,
        client_id: &str,
        scope: &str,
        now: i64,
        ttl: i64,
        jti: String,
    ) -> Result<(String, AccessClaims), TokenError> {
        self.mint_for(&Identity::default(), sub, aud, client_id, scope, now, ttl, jti)
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
        let claims = AccessClaims {
            email: identity.email.clone(),
            groups: identity.groups.clone(),
            roles: identity.roles.clone(),
            machine: identity.machine,
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            iat: now,
            exp: now + ttl,
            jti,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key().kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        let token = jsonwebtoken::encode(&header, &claims, &self.key().encoding).map_err(TokenError::Sign)?;
        Ok((token, claims))
    }

    /// The identity JWT for an upstream, signed with the gateway's key.
    pub(crate) fn sign_identity(&self, claims: &UpstreamIdentity<'_>) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key().kid.clone());
        header.typ = Some("cognigate-identity+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.key().encoding).map_err(TokenError::Sign)
    }

    /// Signature (by the key the `kid` names), issuer and expiry; not the
    /// audience and not revocation. A token without a `kid`, or naming a key
    /// not in the ring (never ours, or dropped), is refused.
    pub(crate) fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Invalid)?;
        // RFC 9068 section 4: only a JWT typed as an access token is one. The
        // same key signs the identity JWTs sent to upstreams, which must never
        // pass as an access token.
        let typ = header.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(TokenError::NotAnAccessToken);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = self.keys.iter().find(|key| key.kid == kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(TokenError::Invalid)
    }
}

/// What [`TokenCache`] verifies with: an issuer, or the shared one in use.
pub(crate) trait Verify {
    fn verify_token(&self, token: &str) -> Result<AccessClaims, TokenError>;
}

impl Verify for TokenIssuer {
    fn verify_token(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token)
    }
}

/// Verified access tokens by SHA-256, until they expire. Only valid tokens are
/// cached, and the raw token is never kept.
pub(crate) struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>,
    capacity: usize,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: RwLock::new(HashMap::new()), capacity }
    }

    /// Claims of a valid, unexpired token: from the cache, or verified by
    /// `issuer` and cached.
    pub(crate) fn verify(&self, issuer: &impl Verify, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        let key = sha256_bytes(token.as_bytes());
        if let Some(claims) = self.read().get(&key)
            && claims.exp > now
        {
            return Ok(claims.clone());
        }
        let claims = Arc::new(issuer.verify_token(token)?);
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, claims| claims.exp > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, claims.clone());
        Ok(claims)
    }

    /// Forgets every verified token (after a key was dropped: tokens it
    /// signed must not be served from here either).
    pub(crate) fn clear(&self) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<[u8; 32], Arc<AccessClaims>>> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Revoked access-token ids, mirrored from the store. Revocations made by this
/// process are added at once; those of other replicas arrive with the periodic
/// sync ([`Revocations::sync`]), which follows the store's numbered revocation
/// log (`store::RevocationLog`) from where the last sync stopped.
#[derive(Default)]
pub(crate) struct Revocations {
    jtis: RwLock<HashMap<String, i64>>,
    cursor: Mutex<LogCursor>,
}

/// How far into the store's revocation log this process has read.
#[derive(Debug, Default, Clone, PartialEq)]
struct LogCursor {
    /// The log's epoch when it was read; empty before the first sync.
    epoch: String,
    /// The highest sequence number read.
    through: u64,
}

/// What a sync did.
#[derive(Debug, PartialEq)]
pub(crate) struct Synced {
    /// Revocations read (those of this process included).
    pub(crate) read: usize,
    /// The log had started again (a Redis that came back empty) and was read
    /// from the start.
    pub(crate) restarted: bool,
}

impl Revocations {
    pub(crate) fn is_revoked(&self, jti: &str) -> bool {
        self.jtis.read().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(jti)
    }

    pub(crate) fn add(&self, revoked: impl IntoIterator<Item = RevokedAccess>) {
        let mut jtis = self.jtis.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for item in revoked {
            jtis.insert(item.jti, item.expires_at);
        }
    }

    /// Reads the revocations numbered after the last sync and forgets the
    /// expired ones. Sequence numbers, not times: a revocation written by a
    /// replica whose clock is behind is still numbered after everything this
    /// process has read. When the log is not the one read last time (another
    /// epoch, or a counter below what was read: the store lost its data), it
    /// is read again from the start; what this process already knows stays
    /// until it expires, as the store may have lost it.
    pub(crate) fn sync(&self, store: &dyn Store, now: i64) -> Result<Synced, StoreError> {
        // One sync at a time (the upkeep task): the cursor is held throughout.
        let mut cursor = self.cursor.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut log = store.revocations_after(cursor.through, now)?;
        // Before anything was read (`through` 0) the first read was whole anyway.
        let restarted = cursor.through > 0 && (log.epoch != cursor.epoch || log.through < cursor.through);
        if restarted {
            log = store.revocations_after(0, now)?;
        }
        let read = log.revoked.len();
        self.add(log.revoked);
        self.jtis.write().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|_, exp| *exp > now);
        *cursor = LogCursor { epoch: log.epoch, through: log.through };
        Ok(Synced { read, restarted })
    }
}

#[cfg(test)]
mod tests {
    use super::{Revocations, SigningKey, Synced, TokenCache, TokenError, TokenIssuer};
    use crate::gateway::crypto::random_token;
    use crate::gateway::keyring::{Ring, StoredKey};
    use crate::gateway::store::{RevokedAccess, SqliteStore, Store};

    fn stored(created_at: i64) -> StoredKey {
        StoredKey::from_seed(SigningKey::generate_stored(), created_at).unwrap()
    }

    fn issuer_of(keys: &[StoredKey]) -> TokenIssuer {
        crate::gateway::keyring::issuer_of("http://gw.test".into(), &Ring::from_keys(keys.iter().cloned())).unwrap()
    }

    fn issuer() -> TokenIssuer {
        issuer_of(&[stored(1)])
    }

    fn now() -> i64 {
        crate::gateway::store::now()
    }

    #[test]
    fn mints_and_verifies() {
        let issuer = issuer();
        let (token, claims) =
            issuer.mint("sub1", "http://gw.test/mcp/echo", "c1", "openid", now(), 60, random_token(16)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(issuer.verify(&token).unwrap(), claims);
    }

    #[test]
    fn rejects_other_keys_expired_and_tampered() {
        let issuer = issuer();
        let (expired, _) = issuer.mint("s", "a", "c", "", now() - 100, 10, random_token(16)).unwrap();
        assert!(issuer.verify(&expired).is_err());
        let (foreign, _) = self::issuer().mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        assert!(issuer.verify(&foreign).is_err());
        let (token, _) = issuer.mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].replace('A', "B");
        assert!(issuer.verify(&parts.join(".")).is_err());
    }

    /// The identity JWT for upstreams is signed with the same key; even one
    /// carrying every access-token claim, for this very route, is refused.
    #[test]
    fn only_a_jwt_typed_at_jwt_is_an_access_token() {
        let issuer = issuer();
        let (_, claims) =
            issuer.mint("s", "http://gw.test/mcp/echo", "c", "openid", now(), 60, random_token(16)).unwrap();
        let typed = |typ: Option<&str>| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            header.kid = Some(issuer.current_kid().to_owned());
            header.typ = typ.map(str::to_owned);
            jsonwebtoken::encode(&header, &claims, &issuer.key().encoding).unwrap()
        };
        for typ in [Some("cognigate-identity+jwt"), Some("JWT"), None] {
            let err = issuer.verify(&typed(typ)).unwrap_err();
            assert!(matches!(err, TokenError::NotAnAccessToken), "{typ:?}: {err}");
        }
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            assert_eq!(issuer.verify(&typed(Some(typ))).unwrap(), claims, "{typ}");
        }
    }

    #[test]
    fn same_stored_key_same_kid() {
        let stored = SigningKey::generate_stored();
        let a = SigningKey::from_stored(&stored).unwrap();
        let b = SigningKey::from_stored(&stored).unwrap();
        assert_eq!(a.kid, b.kid);
        let key = StoredKey::from_seed(stored, 1).unwrap();
        let (token, _) =
            issuer_of(std::slice::from_ref(&key)).mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        assert!(issuer_of(&[key]).verify(&token).is_ok(), "survives a restart");
        assert!(SigningKey::from_stored("dG9vIHNob3J0").is_err());
    }

    #[test]
    fn the_newest_key_signs_and_every_key_in_the_ring_verifies() {
        let (old, new) = (stored(10), stored(20));
        let before = issuer_of(std::slice::from_ref(&old));
        let (old_token, old_claims) = before.mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        let after = issuer_of(&[old.clone(), new.clone()]);
        assert_eq!(after.current_kid(), new.kid);
        let (new_token, _) = after.mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&new_token).unwrap().kid.as_deref(), Some(new.kid.as_str()));
        assert_eq!(after.verify(&old_token).unwrap(), old_claims, "the retired key still verifies");
        let kids: Vec<Option<String>> = after.jwks().into_iter().map(|jwk| jwk.common.key_id).collect();
        assert_eq!(kids, [Some(old.kid.clone()), Some(new.kid.clone())], "both published");
        // Once the old key is dropped, its tokens name an unknown kid.
        let dropped = issuer_of(&[new]);
        assert!(matches!(dropped.verify(&old_token), Err(TokenError::UnknownKey)));
        assert!(dropped.verify(&new_token).is_ok());
    }

    #[test]
    fn a_kid_naming_one_key_with_another_keys_signature_is_refused() {
        let (a, b) = (stored(10), stored(20));
        let (token, _) =
            issuer_of(std::slice::from_ref(&a)).mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        // Same token, header rewritten to name `b`: b's key checks a's signature.
        let mut header = jsonwebtoken::decode_header(&token).unwrap();
        header.kid = Some(b.kid.clone());
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&header).unwrap(),
        );
        let forged = format!("{header}.{}", token.split_once('.').unwrap().1);
        assert!(matches!(issuer_of(&[a, b]).verify(&forged), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn cache_serves_valid_tokens_and_drops_expired() {
        let issuer = issuer();
        let cache = TokenCache::new(2);
        let (token, claims) = issuer.mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
        assert_eq!(*cache.verify(&issuer, &token, now()).unwrap(), claims);
        assert_eq!(cache.len(), 1);
        // A cached entry is not re-verified ...
        assert_eq!(*cache.verify(&issuer, &token, now()).unwrap(), claims);
        // ... but is not served past its expiry (re-verification then fails).
        assert!(cache.verify(&issuer, &token, claims.exp + 1).is_err());
        assert!(cache.verify(&issuer, "not.a.token", now()).is_err());
        assert_eq!(cache.len(), 1, "invalid tokens are not cached");
        for _ in 0..3 {
            let (t, _) = issuer.mint("s", "a", "c", "", now(), 60, random_token(16)).unwrap();
            cache.verify(&issuer, &t, now()).unwrap();
        }
        assert!(cache.len() <= 2, "bounded");
    }

    #[test]
    fn revocations_sync_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gw.db")).unwrap();
        let revocations = Revocations::default();
        revocations.add([RevokedAccess { jti: "a".into(), expires_at: 100 }]);
        assert!(revocations.is_revoked("a"));
        store.revoke_access(&RevokedAccess { jti: "b".into(), expires_at: 300 }, 150).unwrap();
        let synced = revocations.sync(&store, 200).unwrap();
        assert_eq!(synced, Synced { read: 1, restarted: false });
        assert!(!revocations.is_revoked("a"), "expired entries are dropped");
        assert!(revocations.is_revoked("b"));
        assert_eq!(revocations.sync(&store, 200).unwrap().read, 0, "the next sync starts after what was read");
    }
}
