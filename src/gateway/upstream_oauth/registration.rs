//! The gateway as a client of an upstream's authorization server.
//!
//! `manual`: the operator registered it and gave its id (and secret) with
//! `$env(...)`. `auto`: when the server supports client-id metadata documents
//! and the gateway is on https, the client id is the URL of a document the
//! gateway serves itself (`/oauth/upstream/{id}/client.json`), so nothing is
//! registered; otherwise dynamic registration (RFC 7591), once per
//! authorization server for all replicas (the first stored registration
//! wins), as a public client: PKCE protects the code, and no secret has to be
//! kept.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::discovery::{Discovered, http, read_bounded};
use super::{ClientRegistration, Upstream, UpstreamAuthError, keys};
use crate::gateway::store::{StoreHandle, now};
use crate::secret::Secret;

/// Where the upstream's authorization server sends the browser back.
pub(crate) const CALLBACK_PATH: &str = "/oauth/upstream/callback";

/// The client the gateway is at one authorization server.
#[derive(Debug)]
pub(crate) struct RegisteredClient {
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
}

/// A dynamic registration as stored (the secret, if the server insisted on
/// one, sealed).
#[derive(Debug, Serialize, Deserialize)]
struct StoredClient {
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
}

pub(crate) fn redirect_uri(public_url: &str) -> String {
    format!("{public_url}{CALLBACK_PATH}")
}

/// The URL of the client-id metadata document of `upstream_id`.
pub(crate) fn document_url(public_url: &str, upstream_id: &str) -> String {
    format!("{public_url}/oauth/upstream/{upstream_id}/client.json")
}

/// The client-id metadata document the gateway serves for an upstream.
pub(crate) fn document(public_url: &str, upstream: &Upstream) -> serde_json::Value {
    json!({
        "client_id": document_url(public_url, &upstream.id),
        "client_name": "cognigate gateway",
        "client_uri": public_url,
        "redirect_uris": [redirect_uri(public_url)],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

impl Upstream {
    /// The client to use at the discovered authorization server.
    pub(crate) async fn registered_client(
        &self,
        store: &StoreHandle,
        found: &Discovered,
    ) -> Result<RegisteredClient, UpstreamAuthError> {
        if let ClientRegistration::Manual { client_id, client_secret } = &self.registration {
            return Ok(RegisteredClient { client_id: client_id.clone(), client_secret: client_secret.clone() });
        }
        let runtime = self.runtime()?;
        if found.client_id_documents && runtime.public_url.starts_with("https://") {
            return Ok(RegisteredClient {
                client_id: document_url(&runtime.public_url, &self.id),
                client_secret: None,
            });
        }
        let key = keys::client(&self.id, &found.issuer);
        let lookup = key.clone();
        if let Some(stored) = store.run(move |store| store.record(&lookup, now())).await? {
            return self.open_client(&stored);
        }
        let Some(endpoint) = &found.registration_endpoint else {
            return Err(UpstreamAuthError::Unavailable(format!(
                "the authorization server {} offers neither client-id metadata documents (on an https gateway) nor \
                 dynamic registration; register the gateway there and use clientRegistration.mode \"manual\"",
                found.issuer
            )));
        };
        let registered = self.register(endpoint, &runtime.public_url).await?;
        let stored = StoredClient {
            client_id: registered.client_id.clone(),
            sealed_secret: registered
                .client_secret
                .as_ref()
                .and_then(|secret| runtime.sealing.seal(secret.expose(), &client_binding(&self.id))),
        };
        let text = serde_json::to_string(&stored).map_err(crate::gateway::store::StoreError::from)?;
        let inserted = store.run(move |store| store.insert_record(&key, &text, None, now())).await?;
        if !inserted {
            // Another replica registered first: everyone uses its client.
            let lookup = keys::client(&self.id, &found.issuer);
            if let Some(stored) = store.run(move |store| store.record(&lookup, now())).await? {
                return self.open_client(&stored);
            }
        }
        tracing::info!(upstream = %self.id, issuer = %found.issuer, client_id = %registered.client_id, "gateway registered at the upstream's authorization server");
        Ok(registered)
    }

    fn open_client(&self, stored: &str) -> Result<RegisteredClient, UpstreamAuthError> {
        let stored: StoredClient = serde_json::from_str(stored).map_err(crate::gateway::store::StoreError::from)?;
        let client_secret = match &stored.sealed_secret {
            Some(sealed) => {
                Some(Secret::new(self.runtime()?.sealing.open(sealed, &client_binding(&self.id)).ok_or_else(|| {
                    UpstreamAuthError::Unavailable(
                        "the stored upstream client secret does not open with this gateway's key".into(),
                    )
                })?))
            }
            None => None,
        };
        Ok(RegisteredClient { client_id: stored.client_id, client_secret })
    }

    async fn register(&self, endpoint: &url::Url, public_url: &str) -> Result<RegisteredClient, UpstreamAuthError> {
        #[derive(Deserialize)]
        struct Registered {
            client_id: String,
            client_secret: Option<String>,
        }
        let body = json!({
            "client_name": "cognigate gateway",
            "redirect_uris": [redirect_uri(public_url)],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        let response = http()?
            .post(endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(|err| UpstreamAuthError::Unavailable(format!("registration at {endpoint}: {err}")))?;
        let status = response.status();
        let bytes = read_bounded(response).await?;
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>();
            return Err(UpstreamAuthError::Unavailable(format!(
                "registration at {endpoint} answered HTTP {}: {detail}",
                status.as_u16()
            )));
        }
        let registered: Registered = serde_json::from_slice(&bytes)
            .map_err(|err| UpstreamAuthError::Unavailable(format!("registration at {endpoint}: {err}")))?;
        Ok(RegisteredClient {
            client_id: registered.client_id,
            client_secret: registered.client_secret.map(Secret::new),
        })
    }
}

fn client_binding(upstream_id: &str) -> String {
    format!("client secret\0{upstream_id}")
}

/// Adds the client's authentication to a token-endpoint form: HTTP Basic
/// with a secret (RFC 6749 2.3.1), else its id in the form (a public client).
pub(crate) fn authenticate(
    request: reqwest::RequestBuilder,
    form: &mut Vec<(&'static str, String)>,
    client: &RegisteredClient,
) -> reqwest::RequestBuilder {
    match &client.client_secret {
        Some(secret) => {
            let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
            request.basic_auth(encode(&client.client_id), Some(encode(secret.expose())))
        }
        None => {
            form.push(("client_id", client.client_id.clone()));
            request
        }
    }
}
