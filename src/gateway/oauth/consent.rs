//! The consent screen and its form.
//!
//! CSRF protection is a double submit bound to the server-side record: the
//! token is in an HttpOnly, SameSite=Lax cookie and in the form, and its hash
//! is stored with the consent. A cross-site page can neither read the cookie
//! nor guess the consent id and token. The browser keeps one token for all its
//! open consent screens, so two tabs do not invalidate each other. The page is
//! not frameable (clickjacking) and may only submit to us and, via the
//! redirect, to the client's origin.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::redirect::{redirect_csp_source, redirect_error, redirect_host, redirect_with};
use super::{CODE_TTL, CONSENT_TTL, PageError, csrf_token_cookie, device, find_client};
use crate::gateway::clients::cimd::is_client_id_url;
use crate::gateway::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::gateway::oidc::IdClaims;
use crate::gateway::pages::{self, ConsentPage};
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::{AuthCode, Consent, DeviceStatus, Grant, Identity, IdpSession, PendingLogin, now};

fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-` requires Secure, which cookie jars refuse over plain http.
    if state.secure_cookies { "__Host-cognigate_csrf" } else { "cognigate_csrf" }
}

fn csrf_cookie(state: &AppState, headers: &HeaderMap) -> Option<String> {
    csrf_token_cookie(headers, cookie_name(state))
}

pub(super) async fn render_consent(
    state: &AppState,
    headers: &HeaderMap,
    login: PendingLogin,
    route: &RouteState,
    claims: &IdClaims,
    idp_session: Option<IdpSession>,
) -> Result<Response, PageError> {
    let Some(client) = find_client(state, &login.client_id).await? else {
        return Err(PageError::bad_request("The application is no longer registered."));
    };
    let identity = claims.identity(&route.route.claims);
    if !route.route.policy.admits(&identity.groups) {
        return Err(not_in_allowed_groups(route, claims));
    }
    let csrf = csrf_cookie(state, headers).unwrap_or_else(|| random_token(32));
    let consent = consent_record(&login, claims, identity, idp_session, &csrf);
    let redirect_host = match &login.device_user_code {
        Some(code) => format!("your device (code {code})"),
        None => redirect_host(&login.redirect_uri),
    };
    let client_id_host = is_client_id_url(&client.client_id)
        .then(|| url::Url::parse(&client.client_id).ok()?.host_str().map(str::to_owned))
        .flatten();
    let html = pages::consent(&ConsentPage {
        client_name: client.client_name.as_deref().unwrap_or("An unnamed application"),
        client_id_host: client_id_host.as_deref(),
        user_code: login.device_user_code.as_deref(),
        loopback_warning: client_id_host.is_some()
            && url::Url::parse(&login.redirect_uri).is_ok_and(|url| crate::contract::is_loopback(&url)),
        redirect_host: &redirect_host,
        route: &route.route.path,
        resource: &route.resource,
        scope: &login.scope,
        user: claims.display_name(),
        consent_id: &consent.id,
        csrf_token: &csrf,
    })
    .map_err(PageError::internal)?;
    let redirect_uri = login.redirect_uri;
    state.store.run(move |store| store.insert_consent(&consent)).await?;
    consent_response(state, html, &csrf, &redirect_uri)
}

/// The page for a user outside the route's `allowedGroups`: no consent
/// screen, no code. The page does not list the groups (who may use what is
/// the administrator's to tell).
fn not_in_allowed_groups(route: &RouteState, claims: &IdClaims) -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        format!(
            "You are signed in as {}, but your account is not in any of the groups allowed to use {}. Ask an administrator of this gateway to add you to one of them.",
            claims.display_name(),
            route.route.path
        ),
        "user not in the route's allowedGroups",
    )
}

/// What the server keeps while the screen is open; the form must come back
/// with its id and the CSRF token whose hash it holds.
fn consent_record(
    login: &PendingLogin,
    claims: &IdClaims,
    identity: Identity,
    idp: Option<IdpSession>,
    csrf: &str,
) -> Consent {
    Consent {
        id: random_token(32),
        csrf_hash: sha256_hex(csrf),
        redirect_uri: login.redirect_uri.clone(),
        client_state: login.client_state.clone(),
        code_challenge: login.code_challenge.clone(),
        grant: Grant {
            client_id: login.client_id.clone(),
            slug: login.slug.clone(),
            scope: login.scope.clone(),
            subject: claims.sub.clone(),
            identity,
            idp,
        },
        expires_at: now() + CONSENT_TTL,
        device_user_code: login.device_user_code.clone(),
    }
}

/// The page with its CSRF cookie and the headers that keep it out of frames
/// and let its form submit only to us and the client's redirect origin.
fn consent_response(state: &AppState, html: String, csrf: &str, redirect_uri: &str) -> Result<Response, PageError> {
    let form_action = match redirect_csp_source(redirect_uri) {
        Some(source) => format!("'self' {source}"),
        None => "'self'".to_owned(),
    };
    let mut response = (StatusCode::OK, Html(html)).into_response();
    let out = response.headers_mut();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{}={csrf}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CONSENT_TTL}{secure}", cookie_name(state));
    out.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(PageError::internal)?);
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send
    // `Origin: null` with the form, which the Origin check must refuse. The
    // consent URL still never reaches another site.
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = format!(
        "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; script-src {}; form-action {form_action}",
        *pages::CONSENT_SCRIPT_SOURCE
    );
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).map_err(PageError::internal)?);
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct ConsentForm {
    #[serde(default)]
    consent_id: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
}

pub(super) async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) =
        form.map_err(|err| PageError::bad_request(format!("The consent form is malformed: {}", err.body_text())))?;
    let forbidden = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "The consent form could not be verified. Start the sign-in again.",
            "CSRF check failed",
        )
    };
    let Some(cookie) = csrf_cookie(&state, &headers) else {
        return Err(forbidden());
    };
    if !constant_time_eq(cookie.as_bytes(), form.csrf_token.as_bytes()) {
        return Err(forbidden());
    }
    let id = form.consent_id.clone();
    let Some(consent) = state.store.run(move |store| store.take_consent(&id, now())).await? else {
        return Err(PageError::bad_request("This consent screen has expired or was already answered."));
    };
    if !constant_time_eq(sha256_hex(&form.csrf_token).as_bytes(), consent.csrf_hash.as_bytes()) {
        return Err(forbidden());
    }
    if let Some(user_code) = &consent.device_user_code {
        let status = match form.decision.as_str() {
            "approve" => DeviceStatus::Approved(consent.grant.clone()),
            "deny" => DeviceStatus::Denied,
            _ => return Err(PageError::bad_request("The consent form has no decision.")),
        };
        return device::decide(&state, user_code, status).await;
    }
    match form.decision.as_str() {
        "approve" => approve(&state, consent).await,
        "deny" => {
            tracing::info!(client_id = %consent.grant.client_id, route = %consent.grant.slug, "consent denied");
            Ok(redirect_error(
                &state,
                &consent.redirect_uri,
                "access_denied",
                "the user denied access",
                consent.client_state.as_deref(),
            ))
        }
        _ => Err(PageError::bad_request("The consent form has no decision.")),
    }
}

/// Issues the single-use code and sends the browser back with it (RFC 6749
/// 4.1.2, with `iss` per RFC 9207).
async fn approve(state: &AppState, consent: Consent) -> Result<Response, PageError> {
    let code = random_token(32);
    let record = AuthCode {
        redirect_uri: consent.redirect_uri.clone(),
        code_challenge: consent.code_challenge.clone(),
        grant: consent.grant.clone(),
        expires_at: now() + CODE_TTL,
    };
    let hash = sha256_hex(&code);
    state.store.run(move |store| store.insert_code(&hash, &record)).await?;
    tracing::info!(client_id = %consent.grant.client_id, route = %consent.grant.slug, "consent approved; code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(client_state) = consent.client_state.as_deref() {
        pairs.push(("state", client_state));
    }
    pairs.push(("iss", state.public_url.as_str()));
    Ok(redirect_with(&consent.redirect_uri, &pairs))
}
