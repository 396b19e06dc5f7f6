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
//! - [`pages`]: the consent screen and the error page (HTML, escaped by handlebars)
//! - [`redirect`]: the redirects back to the client and how the consent screen shows them
//! - [`token`]: `/oauth/token` (code + PKCE, refresh rotation) and RFC 7009 revocation

mod authorize;
pub(crate) mod client_auth;
mod consent;
mod error;
mod metadata;
pub(crate) mod pages;
mod redirect;
pub(crate) mod register;
mod token;

use axum::Router;
use axum::routing::{get, post};

pub(crate) use error::{OAuthError, PageError};

use super::state::AppState;

/// Pending logins (browser at the IdP) live 10 minutes.
pub(crate) const PENDING_LOGIN_TTL: i64 = 600;
/// A consent screen may stay open 10 minutes.
pub(crate) const CONSENT_TTL: i64 = 600;
/// Authorization codes: single use, 60 seconds.
pub(crate) const CODE_TTL: i64 = 60;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata::authorization_server))
        .route("/.well-known/oauth-protected-resource", get(metadata::protected_resource_root))
        .route("/.well-known/oauth-protected-resource/mcp/{slug}", get(metadata::protected_resource))
        .route("/oauth/jwks", get(metadata::jwks))
        .route("/oauth/register", post(register::register))
        .route("/oauth/authorize", get(authorize::authorize))
        .route(crate::contract::CALLBACK_PATH, get(authorize::callback))
        .route("/oauth/consent", post(consent::decide))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
}

/// The scopes a route's tokens may carry: the policy's login scopes.
pub(crate) fn supported_scopes(scope: &str) -> Vec<&str> {
    scope.split_whitespace().collect()
}

/// The granted scope: the requested scopes we support, or all of them when the
/// client asked for none we know (RFC 6749 3.3 lets the server choose; the
/// token response always says what was granted).
pub(crate) fn granted_scope(requested: Option<&str>, supported: &str) -> String {
    let supported = supported_scopes(supported);
    let granted: Vec<&str> =
        requested.unwrap_or_default().split_whitespace().filter(|scope| supported.contains(scope)).collect();
    if granted.is_empty() { supported.join(" ") } else { granted.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::granted_scope;

    #[test]
    fn scope_is_narrowed_to_supported() {
        let supported = "openid profile email";
        assert_eq!(granted_scope(Some("email openid offline_access"), supported), "email openid");
        assert_eq!(granted_scope(Some("offline_access"), supported), supported);
        assert_eq!(granted_scope(None, supported), supported);
    }
}
