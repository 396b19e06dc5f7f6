//! The refresh grace window's secret keeping: a rotation stores its answer
//! (the successor refresh token) so that the same token presented again
//! moments later gets that answer, not a second, forked successor.
//!
//! The successor must not sit in the store in the clear (refresh tokens are
//! kept as hashes only). It is sealed with a pad derived from the presented
//! token: SHA-256 of a label and that token, XORed with the successor's 32
//! random bytes. Only a holder of the presented token can open it, the pad
//! is as strong as the token itself, and each pad seals exactly one value
//! (a token rotates once), so the one-time-pad argument holds.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::gateway::crypto::sha256_bytes;

const LABEL: &[u8] = b"cognigate refresh grace v1\0";

fn pad(presented: &str) -> [u8; 32] {
    let mut input = LABEL.to_vec();
    input.extend_from_slice(presented.as_bytes());
    sha256_bytes(&input)
}

/// Seals `successor` (a token of 32 random bytes) with `presented`; `None`
/// if the successor is not such a token.
pub(super) fn seal(successor: &str, presented: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(successor).ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    let pad = pad(presented);
    let sealed: Vec<u8> = bytes.iter().zip(pad.iter()).map(|(b, p)| b ^ p).collect();
    Some(URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens what [`seal`] made with the same presented token.
pub(super) fn open(sealed: &str, presented: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    let pad = pad(presented);
    let opened: Vec<u8> = bytes.iter().zip(pad.iter()).map(|(b, p)| b ^ p).collect();
    Some(URL_SAFE_NO_PAD.encode(opened))
}

#[cfg(test)]
mod tests {
    use super::{open, seal};
    use crate::gateway::crypto::random_token;

    #[test]
    fn only_the_presented_token_opens_the_successor() {
        let (presented, successor) = (random_token(32), random_token(32));
        let sealed = seal(&successor, &presented).unwrap();
        assert_ne!(sealed, successor);
        assert_eq!(open(&sealed, &presented).unwrap(), successor);
        assert_ne!(open(&sealed, &random_token(32)).unwrap(), successor);
        assert!(seal("short", &presented).is_none());
    }
}
