//! The OAuth 2.1 authorization server MCP clients talk to (MCP authorization
//! spec 2025-06-18 / 2025-11-25). Cognito has no dynamic client registration
//! and cannot bind tokens to one MCP route, so the gateway is the
//! authorization server: it registers clients, sends the browser to the
//! Cognito hosted UI, asks the user's consent and issues its own tokens.
//!
//! - [`metadata`]: RFC 9728 protected-resource and RFC 8414 server metadata
//! - [`register`]: RFC 7591 dynamic client registration
//! - [`authorize`]: `/oauth/authorize` and the IdP `/oauth/callback`
//! - [`consent`]: the consent screen and its CSRF-protected form
//! - [`redirect`]: the redirects back to the client and how the consent screen shows them
//! - [`device`]: the device authorization grant (RFC 8628)
//! - [`token`]: `/oauth/token` (code + PKCE, refresh rotation) and RFC 7009 revocation
//! - [`machine`]: the client credentials grant of machine clients, proved at Cognito
//! - [`fetch_limit`]: the per-address limit on client-id document fetches
//! - [`recheck`]: the refresh grant's re-check of the user at the identity provider

mod authorize;
pub(crate) mod client_auth;
mod consent;
mod device;
mod fetch_limit;
mod grace;
mod machine;
mod metadata;
mod recheck;
mod redirect;
pub(crate) mod register;
mod token;

use axum::Router;
use axum::routing::{get, post};

use super::clients::cimd;
pub(crate) use super::oauth_error::{ClientLookupError, OAuthError, PageError};
pub(crate) use super::options::STORE_KEY_VAR;

use super::policy::{OAuthPolicy, OFFLINE_ACCESS};
use super::state::AppState;
use super::store::Client;

/// Pending logins (browser at the IdP) live 10 minutes.
pub(crate) const PENDING_LOGIN_TTL: i64 = 600;
/// A consent screen may stay open 10 minutes.
pub(crate) const CONSENT_TTL: i64 = 600;
/// Authorization codes: single use, 60 seconds.
pub(crate) const CODE_TTL: i64 = 60;

pub(crate) use authorize::sign_in_to_connect;
pub(crate) use fetch_limit::limit_client_id_fetches;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata::authorization_server))
        .route("/.well-known/openid-configuration", get(metadata::authorization_server))
        .route("/.well-known/oauth-protected-resource", get(metadata::protected_resource_root))
        .route("/.well-known/oauth-protected-resource/mcp/{slug}", get(metadata::protected_resource))
        .route("/oauth/jwks", get(metadata::jwks))
        .route("/oauth/register", post(register::register))
        .route("/oauth/authorize", get(authorize::authorize))
        .route(crate::contract::CALLBACK_PATH, get(authorize::callback))
        .route("/oauth/consent", post(consent::decide))
        .route("/oauth/device_authorization", post(device::device_authorization))
        .route("/oauth/device", get(device::verify).post(device::start_sign_in))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
}

/// A form's CSRF cookie `name`, when it holds a token of the shape
/// `random_token(32)` makes (43 URL-safe characters); anything else is as if
/// it were not sent.
pub(crate) fn csrf_token_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    request_cookie(headers, name)
        .filter(|value| value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The value of the cookie `name` in a request, if it is sent.
pub(crate) fn request_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// The client `client_id` names: a client-id metadata document (fetched or
/// cached) when it is an https URL, else a registration in the store.
pub(crate) async fn find_client(state: &AppState, client_id: &str) -> Result<Option<Client>, ClientLookupError> {
    if cimd::is_client_id_url(client_id) {
        return Ok(Some(state.cimd.client(client_id).await?));
    }
    let lookup = client_id.to_owned();
    Ok(state.store.run(move |store| store.client(&lookup)).await?)
}

/// The granted scope: the requested scopes the route supports (and
/// `offline_access`, which clients send to ask for refresh tokens and which
/// stays with the gateway), or all the route's scopes when the client asked
/// for none of them (RFC 6749 3.3 lets the server choose; the token response
/// always says what was granted).
pub(crate) fn granted_scope(requested: Option<&str>, policy: &OAuthPolicy) -> String {
    let supported = policy.supported_scopes();
    let requested: Vec<&str> = requested.unwrap_or_default().split_whitespace().collect();
    let mut granted: Vec<&str> = requested.iter().copied().filter(|scope| supported.contains(scope)).collect();
    if granted.is_empty() {
        granted = supported;
    }
    if requested.contains(&OFFLINE_ACCESS) {
        granted.push(OFFLINE_ACCESS);
    }
    granted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::granted_scope;
    use crate::gateway::policy::OAuthPolicy;

    fn policy(required: &[&str]) -> OAuthPolicy {
        let mut policy = OAuthPolicy::for_tests();
        policy.required_scopes = required.iter().map(|s| (*s).to_owned()).collect();
        policy
    }

    #[test]
    fn scope_is_narrowed_to_supported() {
        let policy = policy(&[]);
        assert_eq!(granted_scope(Some("email openid offline_access"), &policy), "email openid offline_access");
        assert_eq!(granted_scope(Some("offline_access"), &policy), "openid profile email offline_access");
        assert_eq!(granted_scope(Some("admin"), &policy), "openid profile email");
        assert_eq!(granted_scope(None, &policy), "openid profile email");
    }

    #[test]
    fn required_scopes_are_grantable_and_offline_access_is_not_a_resource_scope() {
        let policy = policy(&["mcp:admin"]);
        assert_eq!(policy.supported_scopes(), ["openid", "profile", "email", "mcp:admin"]);
        assert_eq!(granted_scope(Some("openid mcp:admin"), &policy), "openid mcp:admin");
        assert_eq!(granted_scope(Some("openid"), &policy), "openid");
    }
}
