//! Secrets the gateway must be able to read back, sealed at rest: today the
//! identity provider's refresh token of each login, which the refresh grant
//! uses to ask Cognito whether the user may still sign in.
//!
//! Refresh tokens and codes of our own are kept as hashes; this one cannot be
//! (it must be sent back to Cognito), so it is encrypted with AES-256-GCM
//! (aws-lc-rs, already linked for TLS and JWT) under a random 96-bit nonce.
//! The key is derived with HKDF-SHA256 from a secret that is *not* in the
//! store: `COGNIGATE_STORE_KEY` when the operator sets one, else the policy's
//! client secret from the env file. Whoever reads the store alone (a copy of
//! the SQLite file, a Redis dump or replica) gets ciphertext; and a Cognito
//! refresh token is only usable at the token endpoint with that client secret
//! anyway. Keeping the key in the store, like the signing key, would have
//! handed both to the same reader.
//!
//! The associated data is the user's subject, so a sealed token moved into
//! another user's grant by someone who can write the store does not open:
//! the re-check of that grant fails closed instead of checking the wrong user.
//!
//! The key changes when its secret does: after `cognigate rotate-secret`
//! without a `COGNIGATE_STORE_KEY`, the gateway can no longer open the tokens
//! sealed before, and each such family ends at its next re-check (the user
//! signs in again). Set `COGNIGATE_STORE_KEY` to keep sessions across
//! client-secret rotations.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Versions the format and the derivation: `v1.` + base64url(nonce ‖
/// ciphertext ‖ tag).
const PREFIX: &str = "v1.";
const SALT: &[u8] = b"cognigate sealing v1";
/// The shortest `COGNIGATE_STORE_KEY` accepted (256 bits of base64 is 43).
pub(crate) const MIN_STORE_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("cannot derive the sealing key")]
pub(crate) struct SealingError;

/// An AEAD key for one purpose (`context`), derived from a secret.
pub(crate) struct SealingKey(RandomizedNonceKey);

impl SealingKey {
    /// The key for `context` (e.g. the IdP client id and what is sealed)
    /// derived from `secret`.
    pub(crate) fn derive(secret: &[u8], context: &str) -> Result<Self, SealingError> {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
        let info = [context.as_bytes()];
        let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| SealingError)?;
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes).map_err(|_| SealingError)?;
        RandomizedNonceKey::new(&AES_256_GCM, &bytes).map(Self).map_err(|_| SealingError)
    }

    /// `plaintext` sealed for the owner `bound_to` (the associated data).
    pub(crate) fn seal(&self, plaintext: &str, bound_to: &str) -> Option<String> {
        let mut in_out = plaintext.as_bytes().to_vec();
        let nonce = self.0.seal_in_place_append_tag(Aad::from(bound_to.as_bytes()), &mut in_out).ok()?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&in_out);
        Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// What [`SealingKey::seal`] sealed, if this key sealed it for `bound_to`.
    pub(crate) fn open(&self, sealed: &str, bound_to: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self.0.open_in_place(nonce, Aad::from(bound_to.as_bytes()), &mut in_out).ok()?;
        String::from_utf8(plaintext.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::SealingKey;

    #[test]
    fn opens_only_with_its_key_and_owner() {
        let key = SealingKey::derive(b"client-secret", "client-id idp-refresh").unwrap();
        let token = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ.cognito-refresh";
        let sealed = key.seal(token, "sub-alice").unwrap();
        assert!(!sealed.contains(token) && !sealed.contains("cognito-refresh"), "{sealed}");
        assert_ne!(key.seal(token, "sub-alice").unwrap(), sealed, "a fresh nonce each time");
        assert_eq!(key.open(&sealed, "sub-alice").as_deref(), Some(token));
        assert_eq!(key.open(&sealed, "sub-bob"), None, "bound to its owner");
        let other_secret = SealingKey::derive(b"rotated-secret", "client-id idp-refresh").unwrap();
        assert_eq!(other_secret.open(&sealed, "sub-alice"), None, "another secret's key");
        let other_context = SealingKey::derive(b"client-secret", "other-client idp-refresh").unwrap();
        assert_eq!(other_context.open(&sealed, "sub-alice"), None, "another context's key");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8(tampered).unwrap(), "sub-alice"), None, "tampered");
        assert_eq!(key.open("v1.AAAA", "sub-alice"), None);
        assert_eq!(key.open(token, "sub-alice"), None, "not sealed at all");
    }
}
