//! `/oauth/authorize` (the MCP client's browser arrives) and `/oauth/callback`
//! (the browser returns from the IdP's hosted login).
//!
//! Errors here are shown as a page: before the client and its redirect URI
//! are known to be genuine (RFC 6749 4.1.2.1: never redirect to an
//! unverified URI), and after that too, because no user has acted yet (RFC
//! 9700 4.11.2). Errors after the user signed in go back to the client as
//! `error=` on its redirect URI.
//!
//! The browser that starts a login gets a cookie bound to it. The IdP's
//! `state` is no secret (whoever started the login read it in the redirect),
//! so an IdP error arriving in a browser without that cookie is answered with
//! a page: otherwise anyone could send a victim to
//! `/oauth/callback?state=S&error=access_denied` and have the gateway redirect
//! them to a URI the attacker registered, with no interaction at all.

use axum::extract::{RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::consent::render_consent;
use super::redirect::{found, redirect_error, redirect_matches};
use super::{PENDING_LOGIN_TTL, PageError, find_client, granted_scope, request_cookie};
use crate::gateway::client_address::{client_ip, counter_key, peer};
use crate::gateway::clients::cimd::is_client_id_url;
use crate::gateway::crypto::{constant_time_eq, is_valid_challenge, pkce_challenge, random_token, sha256_hex};
use crate::gateway::oidc::IdClaims;
use crate::gateway::security::{MAX_AUTHORIZE_PARAM_LEN, limit};
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::{IdpSession, PendingLogin, now};

/// Query parameters, kept as pairs so repeated `resource` values are seen.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        Self(url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    }
}

pub(super) async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::parse(query.as_deref());
    let (client_id, redirect_uri) = trusted_redirect(&state, &params).await?;
    // Errors before any user interaction are pages, even to a registered URI
    // (RFC 9700 section 4.11.2): anyone can register a client, and an error
    // redirect without the user's involvement would make this endpoint an
    // open redirector to the attacker's registered URI.
    let (challenge, route) = match checked_request(&state, &params) {
        Ok(checked) => checked,
        Err((error, description)) => {
            return Err(PageError::bad_request(format!("The request was refused ({error}): {description}.")));
        }
    };
    if let Err(response) = limit_pending_logins(&state, &client_id, &headers, &extensions).await {
        return Ok(response);
    }
    let client_state = params.get("state");

    let idp_verifier = random_token(32);
    let login = PendingLogin {
        state: random_token(32),
        client_id,
        redirect_uri,
        client_state: client_state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        slug: route.route.slug.clone(),
        scope: granted_scope(params.get("scope"), &route.route.policy),
        nonce: random_token(32),
        idp_code_verifier: idp_verifier.clone(),
        expires_at: now() + PENDING_LOGIN_TTL,
        device_user_code: None,
        upstream_connect: None,
    };
    let location =
        route.idp.authorize_url(&callback_url(&state), &login.state, &login.nonce, &pkce_challenge(&idp_verifier));
    tracing::info!(client_id = %login.client_id, route = %route.route.path, "login started; browser sent to the identity provider");
    let binding = browser_binding(&login);
    state.store.run(move |store| store.insert_pending_login(&login)).await?;
    let mut response = found(location.as_str());
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={binding}; Path=/; HttpOnly; SameSite=Lax; Max-Age={PENDING_LOGIN_TTL}{secure}",
        login_cookie_name(&state)
    );
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(PageError::internal)?);
    Ok(response)
}

/// Sends the browser that opened an upstream connect link to the route's
/// identity provider, to prove who it is: the callback then shows the
/// connect page only to the user the link was made for.
pub(crate) async fn sign_in_to_connect(
    state: &AppState,
    route: &RouteState,
    ticket: String,
) -> Result<Response, PageError> {
    let idp_verifier = random_token(32);
    let login = PendingLogin {
        state: random_token(32),
        client_id: String::new(),
        redirect_uri: String::new(),
        client_state: None,
        code_challenge: String::new(),
        slug: route.route.slug.clone(),
        scope: String::new(),
        nonce: random_token(32),
        idp_code_verifier: idp_verifier.clone(),
        expires_at: now() + PENDING_LOGIN_TTL,
        device_user_code: None,
        upstream_connect: Some(ticket),
    };
    let location =
        route.idp.authorize_url(&callback_url(state), &login.state, &login.nonce, &pkce_challenge(&idp_verifier));
    let binding = browser_binding(&login);
    state.store.run(move |store| store.insert_pending_login(&login)).await?;
    let mut response = found(location.as_str());
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={binding}; Path=/; HttpOnly; SameSite=Lax; Max-Age={PENDING_LOGIN_TTL}{secure}",
        login_cookie_name(state)
    );
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(PageError::internal)?);
    Ok(response)
}

/// Each authorization request stores a pending login: bound what one client
/// can make the store hold, and what all of them together can. A metadata
/// document's `client_id` is a public URL shared by every user of that
/// application, so its cap is counted per client address as well: anyone
/// could otherwise fill it and lock every user of the application out.
async fn limit_pending_logins(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<(), Response> {
    let per_client = if is_client_id_url(client_id) {
        let ip = client_ip(&state.security.trusted_proxies, headers, peer(extensions));
        format!("pending:{client_id}:{}", counter_key(ip))
    } else {
        format!("pending:{client_id}")
    };
    let security = &state.security;
    limit(state, per_client, security.pending_logins_per_client, PENDING_LOGIN_TTL, "pending logins for this client")
        .await?;
    limit(state, "pending-all".to_owned(), security.pending_logins_total, PENDING_LOGIN_TTL, "pending logins").await
}

fn login_cookie_name(state: &AppState) -> &'static str {
    // `__Host-` requires Secure, which cookie jars refuse over plain http.
    if state.secure_cookies { "__Host-cognigate_login" } else { "cognigate_login" }
}

/// The cookie value that ties a pending login to the browser that started
/// it: derived from the IdP PKCE verifier, which never leaves the gateway, so
/// nobody can compute it from what the redirect shows (state, nonce,
/// challenge), and no row or column is needed to keep it.
fn browser_binding(login: &PendingLogin) -> String {
    sha256_hex(&format!("cognigate browser binding\0{}", login.idp_code_verifier))
}

/// Whether this request comes from the browser that started `login`.
fn is_bound_browser(state: &AppState, headers: &HeaderMap, login: &PendingLogin) -> bool {
    request_cookie(headers, login_cookie_name(state))
        .is_some_and(|cookie| constant_time_eq(cookie.as_bytes(), browser_binding(login).as_bytes()))
}

/// The client and the redirect URI it registered. Until both are known to be
/// genuine, failures are pages, never redirects.
async fn trusted_redirect(state: &AppState, params: &Params) -> Result<(String, String), PageError> {
    let Some(client_id) = params.get("client_id").map(str::to_owned) else {
        return Err(PageError::bad_request("The request has no client_id."));
    };
    let Some(client) = find_client(state, &client_id).await? else {
        return Err(PageError::bad_request("This application is not registered with the gateway (unknown client_id)."));
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|registered| redirect_matches(registered, uri)) => uri.to_owned(),
        Some(_) if is_client_id_url(&client_id) => {
            return Err(PageError::bad_request(
                "The redirect_uri is not listed in the application's client-id metadata document.",
            ));
        }
        Some(_) => return Err(PageError::bad_request("The redirect_uri is not registered for this application.")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(PageError::bad_request("The request has no redirect_uri.")),
    };
    Ok((client_id, redirect_uri))
}

/// The PKCE challenge and the route the request is for, or the OAuth error
/// (code, description) to send back to the client.
fn checked_request<'a>(
    state: &'a AppState,
    params: &'a Params,
) -> Result<(&'a str, &'a RouteState), (&'static str, &'static str)> {
    let long = ["state", "scope", "resource", "code_challenge"]
        .into_iter()
        .find(|name| params.all(name).iter().any(|value| value.len() > MAX_AUTHORIZE_PARAM_LEN));
    if long.is_some() {
        return Err(("invalid_request", "a parameter is longer than 1024 bytes"));
    }
    if params.get("response_type") != Some("code") {
        return Err(("unsupported_response_type", "only response_type=code is supported"));
    }
    let Some(challenge) = params.get("code_challenge") else {
        return Err(("invalid_request", "code_challenge is required (PKCE)"));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(("invalid_request", "code_challenge_method must be S256"));
    }
    if !is_valid_challenge(challenge) {
        return Err(("invalid_request", "code_challenge is not an S256 challenge"));
    }
    let resources = params.all("resource");
    let route = match resources.as_slice() {
        [resource] => state.route_for_resource(resource),
        [] if state.routes.len() == 1 => state.routes.values().next(),
        [] => None,
        _ => return Err(("invalid_target", "give exactly one resource")),
    };
    let Some(route) = route else {
        if let [resource] = resources.as_slice()
            && resource.trim_end_matches('/') == state.public_url.trim_end_matches('/')
        {
            return Err((
                "invalid_target",
                "this gateway serves several MCP routes and a token is for one of them: \
                 ask for the route's URL ({public_url}/mcp/{name}) as resource",
            ));
        }
        return Err(("invalid_target", "resource must be one of the gateway's MCP URLs ({public_url}/mcp/{name})"));
    };
    Ok((challenge, route))
}

pub(crate) fn callback_url(state: &AppState) -> String {
    crate::contract::callback_url(&state.public_url)
}

pub(super) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::parse(query.as_deref());
    let Some(login_state) = params.get("state").map(str::to_owned) else {
        return Err(PageError::bad_request("The identity provider returned without a state."));
    };
    let Some(login) = state.store.run(move |store| store.take_pending_login(&login_state, now())).await? else {
        return Err(PageError::bad_request("This sign-in has expired or was already completed."));
    };
    if let Some(error) = params.get("error") {
        // The user cancelled at the hosted UI, or the IdP refused the request.
        tracing::info!(client_id = %login.client_id, idp_error = %error, "identity provider returned an error");
        let (code, description) = match error {
            "access_denied" => ("access_denied", "the user did not sign in"),
            _ => ("server_error", "the identity provider refused the sign-in"),
        };
        if login.device_user_code.is_some() {
            return Err(PageError::bad_request(
                "You did not sign in, so the device was not signed in. Start again from your device.",
            ));
        }
        if !is_bound_browser(&state, &headers, &login) {
            tracing::info!(client_id = %login.client_id, "identity provider error in a browser that did not start this sign-in; answered with a page");
            return Err(PageError::bad_request(
                "The sign-in was not completed, and it was started in another browser, so this page does not \
                 send you back to the application. Start the sign-in again from the application.",
            ));
        }
        return Ok(redirect_error(&state, &login.redirect_uri, code, description, login.client_state.as_deref()));
    }
    let Some(code) = params.get("code") else {
        return Err(PageError::bad_request("The identity provider returned without a code."));
    };
    let Some(route) = state.routes.get(&login.slug) else {
        return Err(PageError::bad_request("The MCP route of this sign-in no longer exists."));
    };
    if login.upstream_connect.is_some() && !is_bound_browser(&state, &headers, &login) {
        return Err(PageError::bad_request(
            "This sign-in was started in another browser. Open the connect link again in this one.",
        ));
    }
    let (claims, idp_session) = signed_in_claims(&state, route, &login, code).await?;
    if let Some(ticket) = &login.upstream_connect {
        return crate::gateway::upstream_oauth::connect::signed_in(&state, &headers, ticket, route, &claims).await;
    }
    // The sub and name are what an operator's `revoke --sub` / `--user` take.
    tracing::info!(
        client_id = %login.client_id,
        route = %route.route.path,
        sub = %claims.sub,
        username = %claims.username(),
        "user signed in at the identity provider"
    );
    render_consent(&state, &headers, login, route, &claims, idp_session).await
}

/// The IdP leg's end: the code exchanged for an ID token (with our PKCE
/// verifier), and the token verified against the login's nonce. The
/// provider's refresh token, sealed, is what later refreshes re-check the
/// user with (none when the provider sent none).
async fn signed_in_claims(
    state: &AppState,
    route: &RouteState,
    login: &PendingLogin,
    code: &str,
) -> Result<(IdClaims, Option<IdpSession>), PageError> {
    let idp = &route.idp;
    let (id_token, idp_refresh) = idp
        .exchange_code(&state.idp_http, code, &login.idp_code_verifier, &callback_url(state))
        .await
        .map_err(|err| {
            let status = if err.is_upstream()
                && !matches!(err, crate::gateway::oidc::OidcError::TokenEndpoint { status: 400..=499, .. })
            {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            };
            PageError::new(
                status,
                "The identity provider did not complete the sign-in.",
                format!("policy {}: {err}", idp.policy.name),
            )
        })?;
    let claims = idp.verify_id_token(&state.idp_http, &id_token, &login.nonce).await.map_err(|err| {
        let status = if err.is_upstream() { StatusCode::BAD_GATEWAY } else { StatusCode::UNAUTHORIZED };
        PageError::new(
            status,
            "The identity provider's answer could not be verified.",
            format!("policy {}: {err}", idp.policy.name),
        )
    })?;
    let session = idp_refresh
        .and_then(|token| idp.seal_refresh(&token, &claims.sub))
        .map(|sealed_refresh| IdpSession { sealed_refresh, checked_at: now() });
    if session.is_none() {
        tracing::debug!(policy = %idp.policy.name, "no identity-provider refresh token: this login's refreshes are not re-checked");
    }
    Ok((claims, session))
}
