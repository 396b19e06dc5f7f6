//! `Mcp-Session-Id` binding. The client sees `{upstream id}.{tag}`, the tag
//! an HMAC of the subject, the client and the upstream's id under a key
//! derived from the signing key (so every replica computes the same tag and
//! nothing is stored). A request whose token belongs to another subject or
//! client cannot present the session: the tag does not match and it is
//! answered 404, as for an unknown session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The binding key: the HMAC's inner and outer hashes with the key's pads
/// already absorbed, so a tag costs two SHA-256 blocks, not four.
#[derive(Clone)]
pub(crate) struct SessionKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionKey(..)")
    }
}

/// The binding key from the stored signing key.
pub(crate) fn key(signing_key: &str) -> SessionKey {
    let mut hasher = Sha256::new();
    hasher.update(b"cognigate mcp-session-id binding\0");
    hasher.update(signing_key.as_bytes());
    let key: [u8; 32] = hasher.finalize().into();
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let mut inner = Sha256::new();
    inner.update(inner_pad);
    let mut outer = Sha256::new();
    outer.update(outer_pad);
    SessionKey { inner, outer }
}

/// The length of a tag: 128 bits in unpadded base64.
const TAG_LEN: usize = 22;

/// HMAC-SHA256 (RFC 2104) of the owner and the id, truncated to 128 bits,
/// in unpadded URL-safe base64.
fn tag(key: &SessionKey, subject: &str, client_id: &str, id: &str) -> [u8; TAG_LEN] {
    let mut inner = key.inner.clone();
    for part in [subject, client_id, id] {
        inner.update((part.len() as u64).to_be_bytes());
        inner.update(part.as_bytes());
    }
    let mut outer = key.outer.clone();
    outer.update(inner.finalize());
    let mut out = [0u8; TAG_LEN];
    // 16 bytes are always 22 characters of unpadded base64.
    let _ = URL_SAFE_NO_PAD.encode_slice(&outer.finalize()[..16], &mut out);
    out
}

/// The id the client is given for the upstream's `id`.
pub(crate) fn bind(key: &SessionKey, subject: &str, client_id: &str, id: &str) -> String {
    let tag = tag(key, subject, client_id, id);
    // Base64 is ASCII.
    format!("{id}.{}", std::str::from_utf8(&tag).unwrap_or_default())
}

/// The upstream's id inside a bound id, when `subject` and `client_id`
/// own it.
pub(crate) fn unbind<'a>(key: &SessionKey, subject: &str, client_id: &str, bound: &'a str) -> Option<&'a str> {
    let (id, presented) = bound.rsplit_once('.')?;
    let expected = tag(key, subject, client_id, id);
    crate::gateway::crypto::constant_time_eq(presented.as_bytes(), &expected).then_some(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bound_to_subject_and_client() {
        let key = super::key("seed");
        let bound = super::bind(&key, "alice", "c1", "abc.def");
        assert_eq!(super::unbind(&key, "alice", "c1", &bound), Some("abc.def"));
        assert_eq!(super::unbind(&key, "mallory", "c1", &bound), None);
        assert_eq!(super::unbind(&key, "alice", "c2", &bound), None);
        assert_eq!(super::unbind(&super::key("other"), "alice", "c1", &bound), None);
        assert_eq!(super::unbind(&key, "alice", "c1", "abc"), None);
    }
}
