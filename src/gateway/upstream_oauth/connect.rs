//! The browser side of connecting an upstream account.
//!
//! 1. `GET /oauth/upstream/connect?ticket=…` (the connect-required link)
//!    sends the browser to the route's identity provider: the page is shown
//!    only to the gateway user the link was made for, whoever opens it.
//! 2. Back at the gateway's callback, the signed-in user sees the connect
//!    page: who connects what, where they will sign in. Its form is
//!    protected like the consent page: a CSRF token in an HttpOnly,
//!    SameSite=Lax cookie and in the form, whose hash the server keeps.
//! 3. `POST /oauth/upstream/connect` sends the browser to the upstream's
//!    authorization server (code flow, PKCE S256, `resource`).
//! 4. `GET /oauth/upstream/callback` takes the code back (the browser must
//!    carry the same CSRF cookie, so a code cannot be planted in another
//!    user's session), exchanges it and stores the grant.
//!
//! The client-id metadata document the gateway serves for `auto`
//! registration is here too.

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::elicit::Ticket;
use super::grants::token_call;
use super::registration::redirect_uri;
use super::{Upstream, keys};
use crate::gateway::crypto::{constant_time_eq, pkce_challenge, random_token, sha256_hex};
use crate::gateway::oauth::{PageError, csrf_token_cookie};
use crate::gateway::oidc::IdClaims;
use crate::gateway::pages::{self, ConnectPage};
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::{StoreError, now};

/// The connect page may stay open 10 minutes, as may the upstream sign-in.
const CONNECT_TTL: i64 = 600;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/upstream/connect", get(open_link).post(decide))
        .route(super::registration::CALLBACK_PATH, get(callback))
        .route("/oauth/upstream/{id}/client.json", get(client_document))
}

/// The connect page as the server keeps it while it is open.
#[derive(Debug, Serialize, Deserialize)]
struct ConnectConsent {
    csrf_hash: String,
    subject: String,
    upstream: String,
    slug: String,
    email: Option<String>,
    username: Option<String>,
    expires_at: i64,
}

/// A browser at the upstream's authorization server.
#[derive(Debug, Serialize, Deserialize)]
struct PendingConnect {
    csrf_hash: String,
    subject: String,
    upstream: String,
    slug: String,
    code_verifier: String,
    email: Option<String>,
    username: Option<String>,
    expires_at: i64,
}

fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-` requires Secure, which cookie jars refuse over plain http.
    if state.secure_cookies { "__Host-cognigate_connect" } else { "cognigate_connect" }
}

fn csrf_cookie(state: &AppState, headers: &HeaderMap) -> Option<String> {
    csrf_token_cookie(headers, cookie_name(state))
}

/// The upstream of the route `slug` named `id`.
pub(crate) fn upstream_of<'a>(route: &'a RouteState, id: &str) -> Option<&'a Arc<Upstream>> {
    route.route.inbound.iter().filter_map(|policy| policy.upstream_oauth()).find(|upstream| upstream.id == id)
}

/// Every upstream the gateway serves, once each.
pub(crate) fn upstreams(state: &AppState) -> Vec<&Arc<Upstream>> {
    let mut out: Vec<&Arc<Upstream>> = Vec::new();
    for route in state.routes.values() {
        for upstream in route.route.inbound.iter().filter_map(|policy| policy.upstream_oauth()) {
            if !out.iter().any(|known| Arc::ptr_eq(known, upstream)) {
                out.push(upstream);
            }
        }
    }
    out
}

fn expired_link() -> PageError {
    PageError::bad_request(
        "This connect link has expired or was already used. Call the tool again from your MCP client: it gives a new link.",
    )
}

/// Step 1: the link. The ticket stays (it is taken once the user has
/// signed in), so opening the link twice does not spend it.
async fn open_link(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let ticket = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "ticket")
        .map(|(_, value)| value.into_owned())
        .filter(|ticket| ticket.len() == 43)
        .ok_or_else(expired_link)?;
    let key = keys::ticket(&ticket);
    let Some(text) = state.store.run(move |store| store.record(&key, now())).await? else {
        return Err(expired_link());
    };
    let record: Ticket = serde_json::from_str(&text).map_err(|err| PageError::internal(StoreError::from(err)))?;
    let Some(route) = state.routes.get(&record.slug) else {
        return Err(expired_link());
    };
    crate::gateway::oauth::sign_in_to_connect(&state, route, ticket).await
}

/// Step 2: the user has signed in at the identity provider. Called by the
/// gateway's sign-in callback for a login that carries a connect ticket.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    ticket: &str,
    route: &RouteState,
    claims: &IdClaims,
) -> Result<Response, PageError> {
    let key = keys::ticket(ticket);
    let Some(text) = state.store.run(move |store| store.take_record(&key, now())).await? else {
        return Err(expired_link());
    };
    let record: Ticket = serde_json::from_str(&text).map_err(|err| PageError::internal(StoreError::from(err)))?;
    if record.subject != claims.sub {
        tracing::warn!(upstream = %record.upstream, link_sub = %record.subject, signed_in_sub = %claims.sub, "connect link opened by another user; refused");
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!(
                "You signed in as {}, but this connect link was made for another gateway user. Connect from your own MCP client.",
                claims.display_name()
            ),
            "connect link of another user",
        ));
    }
    let Some(upstream) = upstream_of(route, &record.upstream) else {
        return Err(expired_link());
    };
    let found = upstream.discovered(&route.route.upstream).await.map_err(|err| {
        PageError::new(
            StatusCode::BAD_GATEWAY,
            format!("{}'s authorization server could not be reached. Try again later.", upstream.display_name),
            format!("upstream {}: {err}", upstream.id),
        )
    })?;
    let csrf = csrf_cookie(state, headers).unwrap_or_else(|| random_token(32));
    let id = random_token(32);
    let consent = ConnectConsent {
        csrf_hash: sha256_hex(&csrf),
        subject: claims.sub.clone(),
        upstream: upstream.id.clone(),
        slug: route.route.slug.clone(),
        email: claims.email.clone(),
        username: Some(claims.username().to_owned()).filter(|name| !name.is_empty()),
        expires_at: now() + CONNECT_TTL,
    };
    let host = |url: &url::Url| match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let html = pages::connect(&ConnectPage {
        display_name: &upstream.display_name,
        route: &route.route.path,
        user: claims.display_name(),
        upstream_host: &host(&route.route.upstream),
        authorization_host: &host(&found.authorization_endpoint),
        resource: &found.resource,
        scope: &upstream.requested_scope(&found),
        consent_id: &id,
        csrf_token: &csrf,
    })
    .map_err(PageError::internal)?;
    let text = serde_json::to_string(&consent).map_err(|err| PageError::internal(StoreError::from(err)))?;
    let key = keys::consent(&id);
    let expires_at = consent.expires_at;
    state.store.run(move |store| store.put_record(&key, &text, Some(expires_at))).await?;
    page_response(state, Html(html).into_response(), &csrf, &found.authorization_endpoint)
}

/// The connect page with its CSRF cookie and the headers that keep it out
/// of frames; its form may submit to us, and the redirect that follows may
/// go to the upstream's authorization server.
fn page_response(
    state: &AppState,
    mut response: Response,
    csrf: &str,
    authorize: &url::Url,
) -> Result<Response, PageError> {
    let out = response.headers_mut();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{}={csrf}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CONNECT_TTL}{secure}", cookie_name(state));
    out.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(PageError::internal)?);
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = format!(
        "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}",
        authorize.origin().ascii_serialization()
    );
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).map_err(PageError::internal)?);
    Ok(response)
}

#[derive(Deserialize)]
struct ConnectForm {
    #[serde(default)]
    consent_id: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
}

/// Step 3: the user's decision; on approval, the browser goes to the
/// upstream's authorization server.
async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ConnectForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) =
        form.map_err(|err| PageError::bad_request(format!("The connect form is malformed: {}", err.body_text())))?;
    let forbidden = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "The connect form could not be verified. Open the connect link again.",
            "CSRF check failed",
        )
    };
    let cookie = csrf_cookie(&state, &headers).ok_or_else(forbidden)?;
    if !constant_time_eq(cookie.as_bytes(), form.csrf_token.as_bytes()) {
        return Err(forbidden());
    }
    let key = keys::consent(&form.consent_id);
    let Some(text) = state.store.run(move |store| store.take_record(&key, now())).await? else {
        return Err(PageError::bad_request("This connect page has expired or was already answered."));
    };
    let consent: ConnectConsent =
        serde_json::from_str(&text).map_err(|err| PageError::internal(StoreError::from(err)))?;
    if !constant_time_eq(sha256_hex(&form.csrf_token).as_bytes(), consent.csrf_hash.as_bytes()) {
        return Err(forbidden());
    }
    let Some(route) = state.routes.get(&consent.slug) else { return Err(expired_link()) };
    let Some(upstream) = upstream_of(route, &consent.upstream) else { return Err(expired_link()) };
    if form.decision != "approve" {
        tracing::info!(upstream = %upstream.id, sub = %consent.subject, "upstream connect cancelled by the user");
        return Ok(Html(pages::connect_done(&upstream.display_name, "Not connected. You can close this page."))
            .into_response());
    }
    let unavailable = |err: super::UpstreamAuthError| {
        PageError::new(
            StatusCode::BAD_GATEWAY,
            format!("{}'s authorization server could not be reached. Try again later.", upstream.display_name),
            format!("upstream {}: {err}", upstream.id),
        )
    };
    let found = upstream.discovered(&route.route.upstream).await.map_err(unavailable)?;
    let client = upstream.registered_client(&state.store, &found).await.map_err(unavailable)?;
    let verifier = random_token(32);
    let connect_state = random_token(32);
    let pending = PendingConnect {
        csrf_hash: consent.csrf_hash,
        subject: consent.subject,
        upstream: consent.upstream,
        slug: consent.slug,
        code_verifier: verifier.clone(),
        email: consent.email,
        username: consent.username,
        expires_at: now() + CONNECT_TTL,
    };
    let mut location = found.authorization_endpoint.clone();
    {
        let mut query = location.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri(&state.public_url))
            .append_pair("state", &connect_state)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &found.resource);
        let scope = upstream.requested_scope(&found);
        if !scope.is_empty() {
            query.append_pair("scope", &scope);
        }
    }
    let text = serde_json::to_string(&pending).map_err(|err| PageError::internal(StoreError::from(err)))?;
    let key = keys::pending(&connect_state);
    let expires_at = pending.expires_at;
    state.store.run(move |store| store.put_record(&key, &text, Some(expires_at))).await?;
    tracing::info!(upstream = %upstream.id, sub = %pending.subject, "browser sent to the upstream's authorization server");
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(location.as_str()).map_err(PageError::internal)?);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Step 4: the upstream's authorization server sends the browser back.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let Some(connect_state) = param("state").map(str::to_owned) else {
        return Err(PageError::bad_request("The upstream's authorization server returned without a state."));
    };
    let key = keys::pending(&connect_state);
    let Some(text) = state.store.run(move |store| store.take_record(&key, now())).await? else {
        return Err(PageError::bad_request(
            "This connection has expired or was already completed. Open the connect link again.",
        ));
    };
    let pending: PendingConnect =
        serde_json::from_str(&text).map_err(|err| PageError::internal(StoreError::from(err)))?;
    let same_browser = csrf_cookie(&state, &headers)
        .is_some_and(|cookie| constant_time_eq(sha256_hex(&cookie).as_bytes(), pending.csrf_hash.as_bytes()));
    if !same_browser {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This connection was started in another browser. Open the connect link again in this one.",
            "upstream callback without the connect cookie",
        ));
    }
    let Some(route) = state.routes.get(&pending.slug) else { return Err(expired_link()) };
    let Some(upstream) = upstream_of(route, &pending.upstream) else { return Err(expired_link()) };
    if let Some(error) = param("error") {
        tracing::info!(upstream = %upstream.id, error = %error, "the upstream's authorization server returned an error");
        let message = if error == "access_denied" {
            "You did not allow the access, so nothing was connected. You can close this page."
        } else {
            "The upstream's authorization server refused the connection. Try again later."
        };
        return Ok(Html(pages::connect_done(&upstream.display_name, message)).into_response());
    }
    let Some(code) = param("code") else {
        return Err(PageError::bad_request("The upstream's authorization server returned without a code."));
    };
    let failed = |detail: String| {
        PageError::new(
            StatusCode::BAD_GATEWAY,
            format!("{} did not complete the connection. Try again later.", upstream.display_name),
            format!("upstream {}: {detail}", upstream.id),
        )
    };
    let found = upstream.discovered(&route.route.upstream).await.map_err(|err| failed(err.to_string()))?;
    let client = upstream.registered_client(&state.store, &found).await.map_err(|err| failed(err.to_string()))?;
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri(&state.public_url)),
        ("code_verifier", pending.code_verifier.clone()),
        ("resource", found.resource.clone()),
    ];
    let response = token_call(&found.token_endpoint, &client, form).await.map_err(|err| failed(format!("{err:?}")))?;
    let mut grant = upstream
        .record_from(&found, &client, &pending.subject, response, None)
        .map_err(|err| failed(err.to_string()))?;
    grant.email = pending.email.clone();
    grant.username = pending.username.clone();
    let text = serde_json::to_string(&grant).map_err(|err| PageError::internal(StoreError::from(err)))?;
    let key = keys::grant(&upstream.id, &pending.subject);
    state.store.run(move |store| store.put_record(&key, &text, None)).await?;
    Upstream::count(&upstream.counters.connects);
    tracing::info!(upstream = %upstream.id, sub = %pending.subject, "upstream account connected");
    let message = format!(
        "Your {} account is connected. Go back to your MCP client and try again: it works from now on.",
        upstream.display_name
    );
    Ok(Html(pages::connect_done(&upstream.display_name, &message)).into_response())
}

/// The client-id metadata document of an upstream (`auto` registration on
/// an https gateway).
async fn client_document(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(upstream) = upstreams(&state).into_iter().find(|upstream| upstream.id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = axum::Json(super::registration::document(&state.public_url, upstream)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
