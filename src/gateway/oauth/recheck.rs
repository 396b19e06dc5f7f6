//! The refresh grant's re-check of the user at the identity provider, so
//! that a user disabled or deleted in Cognito stops getting tokens.
//!
//! Before a refresh token rotates, if its family last checked the user longer
//! ago than `--idp-recheck-interval` (zero: at every refresh), the gateway
//! presents the provider's refresh token of the login (kept sealed in the
//! grant, see `sealing`) at the provider's token endpoint as the confidential
//! client. The answer decides the refresh:
//!
//! - tokens: the check time is recorded in the successor, and the user's
//!   groups and e-mail are taken from the new ID token, verified like the
//!   login's (so leaving a route's `allowedGroups` also takes effect here);
//! - `invalid_grant` (Cognito: the user is disabled or deleted, or the token
//!   was revoked or has expired): the family and the access tokens it issued
//!   are revoked, and the client gets `invalid_grant` (sign in again);
//! - no answer, a 5xx, anything else: `503 temporarily_unavailable`, nothing
//!   rotated and nothing revoked, so the client retries with the same token.
//!
//! The interval therefore bounds how long a disabled user keeps getting new
//! access tokens (plus the lifetime of the last one), at one provider call per
//! family per interval.
//!
//! Only an active token is re-checked: a used one (a replay within the grace
//! window, or a reuse) goes straight to the rotation, which gives the earlier
//! answer or revokes the family, so a replay after the rotation never asks
//! the provider again. (Two presentations racing each other may both ask;
//! the rotation still lets only one of them rotate.)
//! Families whose grant holds no provider token (logged in before the gateway
//! kept it, or at a provider that issues none) are not re-checked and end at
//! their absolute lifetime.

use std::time::Duration;

use super::OAuthError;
use crate::gateway::oidc::{IdentityProvider, IdpTokens, OidcError};
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::{IdpSession, Recheck, RefreshToken, now};

/// The re-check of the active refresh token `hash` of `client_id`, when one
/// is due; `None` when none is (or the token is not active: the rotation
/// then answers). An error ends the refresh.
pub(super) async fn recheck_if_due(
    state: &AppState,
    client_id: &str,
    hash: &str,
) -> Result<Option<Recheck>, OAuthError> {
    let (lookup, owner) = (hash.to_owned(), client_id.to_owned());
    let Some(token) = state.store.run(move |store| store.active_refresh(&lookup, &owner)).await? else {
        return Ok(None);
    };
    let at = now();
    let Some(session) = token.grant.idp.as_ref() else {
        return Ok(None);
    };
    if token.expires_at <= at || !due(session.checked_at, state.oauth.idp_recheck_interval, at) {
        return Ok(None);
    }
    let Some(route) = state.routes.get(&token.grant.slug) else {
        return Ok(None);
    };
    let idp = &route.idp;
    let Some(idp_refresh) = idp.open_refresh(&session.sealed_refresh, &token.grant.subject) else {
        tracing::warn!(client_id, route = %route.route.path, "the identity provider's refresh token does not open (COGNIGATE_STORE_KEY or the client secret changed?): family revoked");
        return Err(end_family(
            state,
            client_id,
            hash,
            "the sign-in can no longer be checked with the identity provider; sign in again",
        )
        .await);
    };
    match idp.refresh(&state.idp_http, &idp_refresh).await {
        Ok(tokens) => checked(state, route, &token, session, tokens, at).await.map(Some),
        Err(OidcError::TokenEndpoint { error, .. }) if error == "invalid_grant" => {
            tracing::warn!(client_id, route = %route.route.path, subject = %token.grant.subject, "the identity provider refused the user's refresh (disabled, deleted or signed out): family revoked");
            Err(end_family(
                state,
                client_id,
                hash,
                "the identity provider no longer accepts this sign-in (the user may be disabled or deleted); sign in again",
            )
            .await)
        }
        Err(err) => Err(unavailable(idp, &err)),
    }
}

/// Whether a family last checked at `checked_at` is due at `at`.
fn due(checked_at: i64, interval: Duration, at: i64) -> bool {
    interval.is_zero() || at.saturating_sub(checked_at) >= interval.as_secs() as i64
}

/// The provider accepted the refresh: what the successor keeps.
async fn checked(
    state: &AppState,
    route: &RouteState,
    token: &RefreshToken,
    session: &IdpSession,
    tokens: IdpTokens,
    at: i64,
) -> Result<Recheck, OAuthError> {
    let idp = &route.idp;
    let subject = &token.grant.subject;
    let identity = match tokens.id_token {
        Some(id_token) => {
            let claims = idp
                .verify_refreshed_id_token(&state.idp_http, &id_token, subject)
                .await
                .map_err(|err| unavailable(idp, &err))?;
            let mut identity = claims.identity(&route.route.claims);
            // Providers may leave the e-mail out of a refreshed token; it
            // does not decide access, so the login's is kept.
            if identity.email.is_none() {
                identity.email.clone_from(&token.grant.identity.email);
            }
            Some(identity)
        }
        None => None,
    };
    // A provider that rotates its refresh tokens sent a new one: keep that.
    let sealed_refresh = tokens
        .refresh_token
        .and_then(|fresh| idp.seal_refresh(&fresh, subject))
        .unwrap_or_else(|| session.sealed_refresh.clone());
    tracing::debug!(client_id = %token.grant.client_id, route = %route.route.path, "user re-checked at the identity provider");
    Ok(Recheck { idp: IdpSession { sealed_refresh, checked_at: at }, identity })
}

/// Revokes the family of `hash` with its access tokens; the error to answer.
async fn end_family(state: &AppState, client_id: &str, hash: &str, why: &str) -> OAuthError {
    let (hash, owner) = (hash.to_owned(), client_id.to_owned());
    match state.store.run(move |store| store.revoke_refresh_family(&hash, &owner, now())).await {
        Ok(Some(revoked)) => {
            state.revocations.add(revoked);
            OAuthError::InvalidGrant(why.to_owned())
        }
        Ok(None) => OAuthError::InvalidGrant(why.to_owned()),
        Err(err) => err.into(),
    }
}

fn unavailable(idp: &IdentityProvider, err: &OidcError) -> OAuthError {
    tracing::warn!(policy = %idp.policy.name, error = %err, "cannot re-check the user at the identity provider; refresh deferred");
    OAuthError::TemporarilyUnavailable(
        "the identity provider cannot confirm the sign-in right now; retry the refresh in a moment".into(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::due;

    #[test]
    fn due_after_the_interval_and_always_at_zero() {
        let five_minutes = Duration::from_secs(300);
        assert!(!due(1_000, five_minutes, 1_299));
        assert!(due(1_000, five_minutes, 1_300));
        assert!(due(1_000, Duration::ZERO, 1_000));
        assert!(!due(2_000, five_minutes, 1_000), "a check time ahead of this clock is not due");
    }
}
