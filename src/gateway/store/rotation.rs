//! The refresh-token rotation rule (RFC 9700 section 4.14), written once over
//! the small primitive each store provides ([`RefreshRows`]): read a token's
//! row, swap a token for its successor if it is still active, revoke a
//! family. The SQLite store runs it inside one transaction; the Redis store
//! swaps with a script and reads again when another request won the race.

use super::{Grant, Lifetimes, RefreshToken, RefreshUse, RevokedAccess, Rotation, StoreError};

/// A stored refresh token and what its row says about it.
pub(crate) struct RefreshRow {
    pub(crate) family: String,
    pub(crate) client_id: String,
    /// `active`, `used` or `revoked`.
    pub(crate) state: String,
    pub(crate) token: RefreshToken,
}

/// What a store does for a rotation.
pub(crate) trait RefreshRows {
    fn refresh_row(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError>;

    /// Marks `hash` used (stored as `used`) and stores `successor` under
    /// `next_hash` in `family`, if `hash` is still active; `false` if it no
    /// longer is (another request rotated or revoked it first).
    #[allow(clippy::too_many_arguments)]
    fn swap_refresh(
        &self,
        hash: &str,
        family: &str,
        client_id: &str,
        used: &RefreshToken,
        next_hash: &str,
        successor: &RefreshToken,
    ) -> Result<bool, StoreError>;

    /// Revokes every token of `family`; the access tokens they issued.
    fn revoke_refresh_rows(&self, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError>;
}

/// [`super::Store::rotate_refresh`] over `rows`.
pub(crate) fn rotate_refresh(
    rows: &impl RefreshRows,
    hash: &str,
    client_id: &str,
    next: &Rotation,
    lifetimes: &dyn Fn(&Grant) -> Option<Lifetimes>,
    now: i64,
) -> Result<RefreshUse, StoreError> {
    let Some(RefreshRow { family, client_id: owner, state, token }) = rows.refresh_row(hash)? else {
        return Ok(RefreshUse::Unknown);
    };
    // Another client presenting the token learns nothing and changes nothing.
    if owner != client_id {
        return Ok(RefreshUse::Unknown);
    }
    if state == "used"
        && let Some(replacement) = token.replay(next.grace, now)
    {
        return Ok(RefreshUse::Replayed { grant: token.grant, replacement });
    }
    if state != "active" {
        return Ok(RefreshUse::Reused { revoked_access: rows.revoke_refresh_rows(&family, now)? });
    }
    if token.expires_at <= now {
        return Ok(RefreshUse::Expired);
    }
    let Some(lifetimes) = lifetimes(&token.grant) else {
        return Ok(RefreshUse::Unknown);
    };
    let successor = token.successor(next, lifetimes, now);
    if rows.swap_refresh(hash, &family, client_id, &token.replaced_by(next, now), &next.new_hash, &successor)? {
        return Ok(RefreshUse::Rotated { grant: token.grant, family });
    }
    // Another request used the token between our read and the swap: within
    // the grace window that is the concurrent refresh the window is for, and
    // it gets that request's answer.
    if let Some(row) = rows.refresh_row(hash)?
        && row.state == "used"
        && let Some(replacement) = row.token.replay(next.grace, now)
    {
        return Ok(RefreshUse::Replayed { grant: token.grant, replacement });
    }
    Ok(RefreshUse::Reused { revoked_access: rows.revoke_refresh_rows(&family, now)? })
}
