//! RFC 7591 dynamic client registration.
//!
//! Redirect URIs follow OAuth 2.1 / RFC 8252: https anywhere; plain http only
//! on a loopback host (any port, since native apps pick one at run time); or a
//! private-use scheme (`cursor://…`, `com.example.app:/cb`) for native apps.
//! Schemes a browser would execute or open locally are refused.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::OAuthError;
pub(crate) use crate::gateway::clients::{DEVICE_CODE_GRANT, SUPPORTED_GRANTS};
use crate::gateway::clients::{MAX_REDIRECT_URI_LEN, check_redirect_uri};
use crate::gateway::crypto::{random_token, sha256_hex};
use crate::gateway::state::AppState;
use crate::gateway::store::{Client, now};

const MAX_REDIRECT_URIS: usize = 20;
const MAX_CLIENT_NAME: usize = 200;

/// The registration request; metadata we do not use (logo_uri, client_uri,
/// software_id, contacts, scope) is accepted and ignored, per RFC 7591 2.
#[derive(Debug, Deserialize)]
pub(super) struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    application_type: Option<String>,
}

pub(super) async fn register(State(state): State<AppState>, body: axum::body::Bytes) -> Result<Response, OAuthError> {
    let request: RegistrationRequest = serde_json::from_slice(&body)
        .map_err(|err| OAuthError::InvalidClientMetadata(format!("the body is not a registration request: {err}")))?;
    let application_type = request.application_type.clone();
    let (client, secret) = validate(request, now())?;
    let stored = client.clone();
    state.store.run(move |store| store.insert_client(&stored)).await?;
    tracing::info!(client_id = %client.client_id, client_name = client.client_name.as_deref().unwrap_or(""), "client registered");
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    });
    if let Some(name) = &client.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(kind) = application_type {
        body["application_type"] = json!(kind);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Checks the request and builds the client; returns the secret in the clear
/// (shown once) for confidential clients.
fn validate(request: RegistrationRequest, now: i64) -> Result<(Client, Option<String>), OAuthError> {
    let grant_types = checked_grant_types(request.grant_types)?;
    // A device-grant-only client has no browser coming back to it.
    let redirect_uris = match request.redirect_uris {
        None if !grant_types.iter().any(|g| g == "authorization_code") => Vec::new(),
        uris => checked_redirect_uris(uris.unwrap_or_default())?,
    };
    check_application_type(request.application_type.as_deref(), &redirect_uris)?;
    // RFC 7591 2: the default method is client_secret_basic.
    let method = request.token_endpoint_auth_method.unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(method.as_str(), "none" | "client_secret_post" | "client_secret_basic") {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "token_endpoint_auth_method `{method}` is not supported (none, client_secret_post, client_secret_basic)"
        )));
    }
    let response_types = request.response_types.unwrap_or_else(|| vec!["code".into()]);
    if response_types != ["code"] {
        return Err(OAuthError::InvalidClientMetadata("response_types must be [\"code\"]".into()));
    }
    let client_name = request
        .client_name
        .map(|name| name.trim().chars().take(MAX_CLIENT_NAME).collect::<String>())
        .filter(|n| !n.is_empty());
    let secret = (method != "none").then(|| random_token(32));
    let client = Client {
        client_id: random_token(18),
        client_name,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: method,
        client_secret_hash: secret.as_deref().map(sha256_hex),
        client_id_issued_at: now,
    };
    Ok((client, secret))
}

fn checked_redirect_uris(redirect_uris: Vec<String>) -> Result<Vec<String>, OAuthError> {
    if redirect_uris.is_empty() {
        return Err(OAuthError::InvalidRedirectUri("redirect_uris is required".into()));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri(format!("at most {MAX_REDIRECT_URIS} redirect_uris")));
    }
    for uri in &redirect_uris {
        if uri.len() > MAX_REDIRECT_URI_LEN {
            return Err(OAuthError::InvalidRedirectUri(format!(
                "a redirect URI is {} bytes long; at most {MAX_REDIRECT_URI_LEN}",
                uri.len()
            )));
        }
        check_redirect_uri(uri).map_err(OAuthError::InvalidRedirectUri)?;
    }
    Ok(redirect_uris)
}

fn checked_grant_types(grant_types: Option<Vec<String>>) -> Result<Vec<String>, OAuthError> {
    // RFC 7591 defaults to authorization_code alone, but MCP clients that omit
    // grant_types still expect to refresh; 3.2.1 lets the server adjust
    // metadata as long as the response says so, and it does.
    let mut grant_types = grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    // Stored with the client: a list repeating one value is kept once.
    let mut seen = std::collections::HashSet::new();
    grant_types.retain(|grant| seen.insert(grant.clone()));
    if grant_types.is_empty() || grant_types.iter().any(|g| !SUPPORTED_GRANTS.contains(&g.as_str())) {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "grant_types may only hold authorization_code, refresh_token and {DEVICE_CODE_GRANT}"
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code" || g == DEVICE_CODE_GRANT) {
        return Err(OAuthError::InvalidClientMetadata(format!(
            "grant_types must include authorization_code or {DEVICE_CODE_GRANT}"
        )));
    }
    Ok(grant_types)
}

/// `application_type` (OpenID Connect Registration 2, as MCP 2026-07-28
/// asks registrations to send it): a `web` client's redirects are https on a
/// host of its own; a `native` one uses loopback, a private-use scheme or a
/// claimed https URL (RFC 8252 7). Absent, the redirect rules alone apply,
/// as before the field existed.
fn check_application_type(kind: Option<&str>, redirect_uris: &[String]) -> Result<(), OAuthError> {
    match kind {
        None | Some("native") => Ok(()),
        Some("web") => match redirect_uris.iter().find(|uri| !is_web_redirect(uri)) {
            Some(uri) => Err(OAuthError::InvalidRedirectUri(format!(
                "`{uri}` is not a web redirect: a web application redirects to https on a non-loopback host (register as application_type native for loopback or app schemes)"
            ))),
            None => Ok(()),
        },
        Some(other) => {
            Err(OAuthError::InvalidClientMetadata(format!("application_type `{other}` is neither web nor native")))
        }
    }
}

fn is_web_redirect(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|url| url.scheme() == "https" && !crate::contract::is_loopback(&url))
}

#[cfg(test)]
mod tests {
    use super::{RegistrationRequest, validate};

    fn request(json: serde_json::Value) -> RegistrationRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn registration_defaults_and_secrets() {
        let (client, secret) = validate(request(serde_json::json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none", "client_name": "Claude"})), 5).unwrap();
        assert!(secret.is_none());
        assert_eq!(client.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(client.client_name.as_deref(), Some("Claude"));
        let (client, secret) =
            validate(request(serde_json::json!({"redirect_uris": ["https://a.example/cb"]})), 5).unwrap();
        assert_eq!(client.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(client.client_secret_hash, Some(crate::gateway::crypto::sha256_hex(&secret.unwrap())));
        assert!(validate(request(serde_json::json!({"redirect_uris": []})), 5).is_err());
        assert!(
            validate(
                request(serde_json::json!({"redirect_uris": ["https://a/cb"], "grant_types": ["client_credentials"]})),
                5
            )
            .is_err()
        );
        assert!(
            validate(request(serde_json::json!({"redirect_uris": ["https://a/cb"], "response_types": ["token"]})), 5)
                .is_err()
        );
        assert!(validate(request(serde_json::json!({"redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "private_key_jwt"})), 5).is_err());
    }

    #[test]
    fn application_type_matches_redirect_kinds() {
        let ok = |json| validate(request(json), 5).is_ok();
        assert!(ok(serde_json::json!({"redirect_uris": ["https://app.example/cb"], "application_type": "web"})));
        assert!(!ok(serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "web"})));
        assert!(!ok(serde_json::json!({"redirect_uris": ["cursor://x/cb"], "application_type": "web"})));
        assert!(ok(
            serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb", "cursor://x/cb"], "application_type": "native"})
        ));
        assert!(!ok(serde_json::json!({"redirect_uris": ["https://a/cb"], "application_type": "desktop"})));
    }

    #[test]
    fn device_grant_clients_need_no_redirect() {
        let (client, _) = validate(
            request(serde_json::json!({"grant_types": [super::DEVICE_CODE_GRANT, "refresh_token"], "token_endpoint_auth_method": "none"})),
            5,
        )
        .unwrap();
        assert!(client.redirect_uris.is_empty());
        assert!(validate(request(serde_json::json!({"grant_types": ["refresh_token"]})), 5).is_err());
    }
}
