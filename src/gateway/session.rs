//! `Mcp-Session-Id` binding. The client sees `{upstream id}.{tag}`, the tag
//! an HMAC of the subject, the client and the upstream's id under a key
//! derived from the signing key (so every replica computes the same tag and
//! nothing is stored). A request whose token belongs to another subject or
//! client cannot present the session: the tag does not match and it is
//! answered 404, as for an unknown session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The binding key from the stored signing key.
pub(crate) fn key(signing_key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"cognigate mcp-session-id binding\0");
    hasher.update(signing_key.as_bytes());
    hasher.finalize().into()
}

/// HMAC-SHA256 (RFC 2104) of the owner and the id, truncated to 128 bits.
fn tag(key: &[u8; 32], subject: &str, client_id: &str, id: &str) -> String {
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let mut inner = Sha256::new();
    inner.update(inner_pad);
    for part in [subject, client_id, id] {
        inner.update((part.len() as u64).to_be_bytes());
        inner.update(part.as_bytes());
    }
    let mut outer = Sha256::new();
    outer.update(outer_pad);
    outer.update(inner.finalize());
    URL_SAFE_NO_PAD.encode(&outer.finalize()[..16])
}

/// The id the client is given for the upstream's `id`.
pub(crate) fn bind(key: &[u8; 32], subject: &str, client_id: &str, id: &str) -> String {
    format!("{id}.{}", tag(key, subject, client_id, id))
}

/// The upstream's id inside a bound id, when `subject` and `client_id`
/// own it.
pub(crate) fn unbind<'a>(key: &[u8; 32], subject: &str, client_id: &str, bound: &'a str) -> Option<&'a str> {
    let (id, presented) = bound.rsplit_once('.')?;
    let expected = tag(key, subject, client_id, id);
    crate::gateway::crypto::constant_time_eq(presented.as_bytes(), expected.as_bytes()).then_some(id)
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
