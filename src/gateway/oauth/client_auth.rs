//! Client authentication at the token and revocation endpoints (RFC 6749
//! 2.3.1): `client_secret_basic`, `client_secret_post`, or `none` with a
//! `client_id` for public clients (the norm for MCP clients, which then rely on
//! PKCE).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{OAuthError, find_client};
use crate::gateway::crypto::{constant_time_eq, sha256_hex};
use crate::gateway::state::AppState;
use crate::gateway::store::Client;

/// Authenticates the calling client from the Authorization header and the
/// form's `client_id` / `client_secret`.
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Client, OAuthError> {
    let basic = basic_credentials(headers)?;
    let (client_id, secret, method) = match (&basic, form_client_id) {
        (Some((id, secret)), form_id) => {
            if form_id.is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::InvalidRequest("client_id differs from the Authorization header".into()));
            }
            (id.clone(), Some(secret.clone()), "client_secret_basic")
        }
        (None, Some(id)) => match form_secret {
            Some(secret) => (id.to_owned(), Some(secret.to_owned()), "client_secret_post"),
            None => (id.to_owned(), None, "none"),
        },
        (None, None) => return Err(OAuthError::InvalidClient("no client_id".into())),
    };
    let client =
        find_client(state, &client_id).await?.ok_or_else(|| OAuthError::InvalidClient("unknown client".into()))?;
    match client.client_secret_hash.as_deref() {
        None => Ok(client),
        Some(expected) => {
            let Some(secret) = secret else {
                return Err(OAuthError::InvalidClient(format!(
                    "the client authenticates with {}, not {method}",
                    client.token_endpoint_auth_method
                )));
            };
            if constant_time_eq(sha256_hex(&secret).as_bytes(), expected.as_bytes()) {
                Ok(client)
            } else {
                Err(OAuthError::InvalidClient("wrong client secret".into()))
            }
        }
    }
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}
