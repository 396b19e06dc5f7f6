//! `/oauth/token` (RFC 6749 section 4.1.3 with PKCE, section 6 with rotation,
//! section 4.4 for machine clients in `machine`) and `/oauth/revoke` (RFC 7009).
//!
//! Refresh tokens rotate on every use; presenting a used one revokes its whole
//! family and the access tokens it issued (OAuth 2.1 section 4.3.1, RFC 9700
//! section 4.14.2), because only a thief or a badly broken client does that.
//! Before it rotates, a refresh may re-check the user at the identity
//! provider (see `recheck`).

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::client_auth::authenticate;
use super::recheck::recheck_if_due;
use super::register::DEVICE_CODE_GRANT;
use super::{OAuthError, device, grace, machine};
use crate::gateway::crypto::{random_token, sha256_hex, verify_pkce};
use crate::gateway::state::AppState;
use crate::gateway::store::{AuthCode, CodeUse, Grant, RefreshToken, RefreshUse, RevokedAccess, Rotation, now};

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    pub(super) scope: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    device_code: Option<String>,
    #[serde(default)]
    pub(super) resource: Option<String>,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default)]
    pub(super) client_secret: Option<String>,
}

pub(super) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|err| {
        OAuthError::InvalidRequest(format!("expected an application/x-www-form-urlencoded body: {}", err.body_text()))
    })?;
    // A machine client is a Cognito app client, not one registered here: it
    // is authenticated by Cognito itself.
    if form.grant_type.as_deref() == Some(machine::CLIENT_CREDENTIALS_GRANT) {
        return machine::token(&state, &headers, &extensions, &form).await;
    }
    let client = authenticate(&state, &headers, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    let grant_type = form.grant_type.as_deref().unwrap_or_default();
    if !client.grant_types.iter().any(|g| g == grant_type)
        && matches!(grant_type, "authorization_code" | "refresh_token" | DEVICE_CODE_GRANT)
    {
        return Err(OAuthError::UnauthorizedClient(format!("the client did not register the {grant_type} grant")));
    }
    let with_refresh = client.grant_types.iter().any(|g| g == "refresh_token");
    let issuance =
        Issuance { family: with_refresh.then(|| random_token(16)), access_jti: random_token(16), issued_at: now() };
    let (grant, label) = match grant_type {
        "authorization_code" => {
            let grant = redeem_code(&state, &client.client_id, &client.redirect_uris, &form, &issuance).await?;
            // A completed login keeps the registration from expiring unused.
            let used = client.client_id.clone();
            state.store.run(move |store| store.mark_client_used(&used)).await?;
            (grant, "authorization_code")
        }
        "refresh_token" => return refresh(&state, &client.client_id, &form).await,
        DEVICE_CODE_GRANT => {
            (device::redeem(&state, &client.client_id, form.device_code.as_deref()).await?, "device_code")
        }
        "" => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
        other => return Err(OAuthError::UnsupportedGrantType(format!("`{other}` is not supported"))),
    };
    issue(&state, grant, issuance, label).await
}

/// What a code or device grant issues, decided before the grant is redeemed:
/// a code's redemption records it in the same step as it takes the code (see
/// `Store::take_code`), so a replay racing it revokes exactly these.
#[derive(Clone)]
struct Issuance {
    /// The new refresh family (`None`: the client did not register the
    /// refresh grant).
    family: Option<String>,
    access_jti: String,
    issued_at: i64,
}

impl Issuance {
    /// The record a code's redemption leaves: these tokens, kept until the
    /// code would have expired and the access token with it.
    fn code_use(&self, state: &AppState, code: &AuthCode) -> CodeUse {
        let ttl = state.routes.get(&code.grant.slug).map_or(0, access_ttl);
        let access = RevokedAccess { jti: self.access_jti.clone(), expires_at: self.issued_at + ttl };
        CodeUse { family: self.family.clone(), expires_at: access.expires_at.max(code.expires_at), access }
    }
}

fn access_ttl(route: &crate::gateway::state::RouteState) -> i64 {
    route.route.policy.access_token_ttl.as_secs() as i64
}

async fn redeem_code(
    state: &AppState,
    client_id: &str,
    client_redirect_uris: &[String],
    form: &TokenForm,
    issuance: &Issuance,
) -> Result<Grant, OAuthError> {
    let code = form.code.as_deref().ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()))?;
    let hash = sha256_hex(code);
    let lookup = hash.clone();
    let (routes, issuance) = (state.clone(), issuance.clone());
    let taken =
        state.store.run(move |store| store.take_code(&lookup, &|code| issuance.code_use(&routes, code), now())).await?;
    let Some(record) = taken else {
        revoke_replayed_code(state, hash).await?;
        return Err(OAuthError::InvalidGrant("the code is invalid, expired or already used".into()));
    };
    if record.grant.client_id != client_id {
        return Err(OAuthError::InvalidGrant("the code was issued to another client".into()));
    }
    // RFC 6749 4.1.3: required when the authorization request had it. A
    // client with a single registered URI may have left it out there, and
    // then here too.
    let redirect_ok = match form.redirect_uri.as_deref() {
        Some(uri) => uri == record.redirect_uri,
        None => matches!(client_redirect_uris, [only] if *only == record.redirect_uri),
    };
    if !redirect_ok {
        return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request".into()));
    }
    if !verify_pkce(verifier, &record.code_challenge) {
        return Err(OAuthError::InvalidGrant("code_verifier does not match the code_challenge".into()));
    }
    check_resource(state, form.resource.as_deref(), &record.grant)?;
    Ok(record.grant)
}

/// A code presented again after it was redeemed: someone else has it (it
/// leaked from the redirect), so what the first use issued is revoked (RFC
/// 6749 section 4.1.2, OAuth 2.1 section 4.1.3), even when that use is still
/// being answered on another replica: its refresh token then lands revoked,
/// and its access token's id is already in the revocation log.
async fn revoke_replayed_code(state: &AppState, hash: String) -> Result<(), OAuthError> {
    let revoked = state.store.run(move |store| store.revoke_code_use(&hash, now())).await?;
    if let Some(revoked) = revoked {
        tracing::warn!(revoked_access_tokens = revoked.len(), "authorization code replayed: what it issued is revoked");
        state.revocations.add(revoked);
    }
    Ok(())
}

/// An RFC 8707 `resource` at the token endpoint must name the granted route.
fn check_resource(state: &AppState, resource: Option<&str>, grant: &Grant) -> Result<(), OAuthError> {
    let Some(resource) = resource else {
        return Ok(());
    };
    match state.route_for_resource(resource) {
        Some(route) if route.route.slug == grant.slug => Ok(()),
        _ => Err(OAuthError::InvalidTarget("resource differs from the one the user approved".into())),
    }
}

async fn refresh(state: &AppState, client_id: &str, form: &TokenForm) -> Result<Response, OAuthError> {
    let presented =
        form.refresh_token.as_deref().ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
    let hash = sha256_hex(presented);
    // Before anything rotates: a family due for it asks the identity
    // provider whether the user may still sign in.
    let recheck = recheck_if_due(state, client_id, &hash).await?;
    let new_refresh = random_token(32);
    let access_jti = random_token(16);
    let issued_at = now();
    let sealed = grace::seal(&new_refresh, presented)
        .ok_or_else(|| OAuthError::InvalidRequest("the refresh token is malformed".into()))?;
    let grace_seconds = state.oauth.refresh_grace.as_secs() as i64;
    let rotation = Rotation {
        new_hash: sha256_hex(&new_refresh),
        access_jti: access_jti.clone(),
        sealed,
        grace: grace_seconds,
        recheck: recheck.clone(),
    };
    let owner = client_id.to_owned();
    let routes = state.clone();
    let outcome = state
        .store
        .run(move |store| {
            store.rotate_refresh(&hash, &owner, &rotation, &|grant| routes.lifetimes(&grant.slug), issued_at)
        })
        .await?;
    let grant = match outcome {
        RefreshUse::Rotated { grant, .. } => grant.rechecked(recheck.as_ref()),
        RefreshUse::Replayed { grant, replacement } => {
            // The same answer as the first time: the sealed successor, and
            // the access token with the same id and issue time (EdDSA
            // signatures are deterministic, so it is the same token).
            let successor = grace::open(&replacement.sealed, presented)
                .ok_or_else(|| OAuthError::InvalidGrant("the refresh token is invalid".into()))?;
            tracing::info!(client_id = %client_id, "refresh token presented again within the grace window; same answer");
            check_resource(state, form.resource.as_deref(), &grant)?;
            return respond(state, &grant, replacement.access_jti, Some(successor), replacement.at, "refresh_token");
        }
        RefreshUse::Unknown => return Err(OAuthError::InvalidGrant("the refresh token is invalid".into())),
        RefreshUse::Expired => return Err(OAuthError::InvalidGrant("the refresh token has expired".into())),
        RefreshUse::Reused { revoked_access } => {
            tracing::warn!(client_id = %client_id, revoked_access_tokens = revoked_access.len(), "refresh token reused: family revoked");
            state.revocations.add(revoked_access);
            return Err(OAuthError::InvalidGrant("the refresh token was already used; its grant is revoked".into()));
        }
    };
    check_resource(state, form.resource.as_deref(), &grant)?;
    if !admitted(state, &grant) {
        // The successor was stored by the rotation: revoke the family so no
        // token of this grant stays usable.
        let hash = sha256_hex(&new_refresh);
        let owner = client_id.to_owned();
        if let Some(revoked) = state.store.run(move |store| store.revoke_refresh_family(&hash, &owner, now())).await? {
            state.revocations.add(revoked);
        }
        tracing::info!(client_id = %client_id, route = %grant.slug, "refresh refused: user not in the route's allowedGroups");
        return Err(OAuthError::InvalidGrant("the user is not in a group allowed to use this MCP server".into()));
    }
    respond(state, &grant, access_jti, Some(new_refresh), issued_at, "refresh_token")
}

/// Whether the grant's user is in the route's `allowedGroups` (when it has
/// them): checked again at every refresh, so tightening the list takes effect
/// within an access token's lifetime.
fn admitted(state: &AppState, grant: &Grant) -> bool {
    state.routes.get(&grant.slug).is_some_and(|route| route.route.policy.admits(&grant.identity.groups))
}

/// Issues the access token and, with a family, the refresh token that
/// `issuance` decided on.
async fn issue(state: &AppState, grant: Grant, issuance: Issuance, grant_type: &str) -> Result<Response, OAuthError> {
    let Some(route) = state.routes.get(&grant.slug) else {
        return Err(OAuthError::InvalidGrant("the route of this grant no longer exists".into()));
    };
    if !admitted(state, &grant) {
        return Err(OAuthError::InvalidGrant("the user is not in a group allowed to use this MCP server".into()));
    }
    let Issuance { family, access_jti, issued_at } = issuance;
    let refresh = match family {
        Some(family) => {
            let token = random_token(32);
            let record = RefreshToken {
                family,
                grant: grant.clone(),
                expires_at: issued_at
                    + route.route.policy.refresh_token_ttl.min(state.security.refresh_family_lifetime).as_secs() as i64,
                access_jti: access_jti.clone(),
                access_expires_at: issued_at + access_ttl(route),
                family_expires_at: Some(issued_at + state.security.refresh_family_lifetime.as_secs() as i64),
                replaced: None,
            };
            let hash = sha256_hex(&token);
            state.store.run(move |store| store.insert_refresh(&hash, &record)).await?;
            Some(token)
        }
        None => None,
    };
    respond(state, &grant, access_jti, refresh, issued_at, grant_type)
}

pub(super) fn respond(
    state: &AppState,
    grant: &Grant,
    jti: String,
    refresh: Option<String>,
    issued_at: i64,
    grant_type: &str,
) -> Result<Response, OAuthError> {
    let Some(route) = state.routes.get(&grant.slug) else {
        return Err(OAuthError::InvalidGrant("the route of this grant no longer exists".into()));
    };
    let ttl = route.route.policy.access_token_ttl.as_secs() as i64;
    let (access, _) = state.tokens.mint_for(
        &grant.identity,
        &grant.subject,
        &route.resource,
        &grant.client_id,
        &grant.scope,
        issued_at,
        ttl,
        jti,
    )?;
    state.metrics.token_issued(grant_type);
    tracing::info!(client_id = %grant.client_id, route = %route.route.path, grant_type, "access token issued");
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": grant.scope,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// RFC 7009: revokes a refresh token (with its family) or an access token;
/// answers 200 for tokens it does not know.
pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|err| {
        OAuthError::InvalidRequest(format!("expected an application/x-www-form-urlencoded body: {}", err.body_text()))
    })?;
    let client = authenticate(&state, &headers, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return Err(OAuthError::InvalidRequest("token is required".into()));
    };
    let issued_at = now();
    if token.split('.').count() == 3 {
        if let Ok(claims) = state.tokens.verify(&token)
            && claims.client_id == client.client_id
        {
            let revoked = RevokedAccess { jti: claims.jti, expires_at: claims.exp };
            let stored = revoked.clone();
            state.store.run(move |store| store.revoke_access(&stored, issued_at)).await?;
            state.revocations.add([revoked]);
            tracing::info!(client_id = %client.client_id, "access token revoked");
        }
    } else {
        let hash = sha256_hex(&token);
        let owner = client.client_id.clone();
        if let Some(revoked) =
            state.store.run(move |store| store.revoke_refresh_family(&hash, &owner, issued_at)).await?
        {
            tracing::info!(client_id = %client.client_id, revoked_access_tokens = revoked.len(), "refresh token family revoked");
            state.revocations.add(revoked);
        }
    }
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
