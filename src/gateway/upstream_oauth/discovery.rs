//! Where an upstream's authorization server is and what it offers: the
//! upstream's protected-resource metadata (RFC 9728: `resource`,
//! `authorization_servers`), then the server's own metadata (RFC 8414
//! `/.well-known/oauth-authorization-server`, else OpenID discovery).
//!
//! The fetches follow the client-id document fetcher's rules where they
//! apply: https only (plain http for loopback addresses: tests, local mode),
//! no redirects, a size and a time limit, a private CA through
//! `SSL_CERT_FILE`. Unlike client-id documents, the URLs come from the
//! operator's config, so private addresses are allowed (an internal upstream
//! is a normal case).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Upstream, UpstreamAuthError};

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Metadata documents and token responses are small; more is refused.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the gateway knows of an upstream's authorization server.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    /// The protected resource's identifier: the `resource` parameter and
    /// the audience of the tokens the upstream accepts (RFC 8707).
    pub(crate) resource: String,
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) registration_endpoint: Option<Url>,
    pub(crate) revocation_endpoint: Option<Url>,
    /// `client_id_metadata_document_supported`.
    pub(crate) client_id_documents: bool,
    /// The resource's `scopes_supported`, asked for when the policy lists none.
    pub(crate) resource_scopes: Vec<String>,
}

#[derive(Deserialize)]
struct ResourceMetadata {
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    registration_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    #[serde(default)]
    client_id_metadata_document_supported: bool,
}

/// The client every upstream fetch goes through (built once per process).
pub(crate) fn http() -> Result<&'static reqwest::Client, UpstreamAuthError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(FETCH_TIMEOUT);
            if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
                let pem = std::fs::read(&path)
                    .map_err(|err| format!("cannot read the CA file {}: {err}", path.to_string_lossy()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
                    format!("the CA file {} holds no PEM certificates: {err}", path.to_string_lossy())
                })?;
                builder = builder.tls_certs_merge(certs);
            }
            builder.build().map_err(|err| format!("cannot build the upstream OAuth HTTP client: {err}"))
        })
        .as_ref()
        .map_err(|err| UpstreamAuthError::Unavailable(err.clone()))
}

/// Whether the gateway may send an OAuth request to `url`: https, or http
/// to a loopback address.
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::contract::is_loopback(url) => Ok(()),
        _ => Err(format!("`{url}` is not https (plain http is allowed only for loopback addresses)")),
    }
}

fn parse_checked(text: &str, what: &str) -> Result<Url, UpstreamAuthError> {
    let url = Url::parse(text).map_err(|err| UpstreamAuthError::Unavailable(format!("{what} `{text}`: {err}")))?;
    check_url(&url).map_err(|problem| UpstreamAuthError::Unavailable(format!("{what}: {problem}")))?;
    Ok(url)
}

/// A JSON document from `url` (bounded, no redirects).
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(url: &Url) -> Result<Option<T>, UpstreamAuthError> {
    check_url(url).map_err(UpstreamAuthError::Unavailable)?;
    let response = http()?
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| UpstreamAuthError::Unavailable(format!("{url}: {}", crate::gateway::error_chain(&err))))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(UpstreamAuthError::Unavailable(format!("{url} answered HTTP {}", response.status().as_u16())));
    }
    let body = read_bounded(response).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|err| UpstreamAuthError::Unavailable(format!("{url} is not the expected JSON: {err}")))
}

/// A response body of at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, UpstreamAuthError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|err| UpstreamAuthError::Unavailable(format!("reading an answer: {err}")))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(UpstreamAuthError::Unavailable(format!("an answer is larger than {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Well-known URLs for `base`'s metadata: the path-aware form first
/// (`/.well-known/{name}{path}`, RFC 8414 3.1 and RFC 9728 3.1), then the
/// root or, for OpenID, the path-appended form.
fn well_known(base: &Url, name: &str) -> Vec<Url> {
    let path = base.path().trim_end_matches('/');
    let mut out = Vec::new();
    let mut inserted = base.clone();
    inserted.set_query(None);
    inserted.set_path(&format!("/.well-known/{name}{path}"));
    out.push(inserted);
    let mut appended = base.clone();
    appended.set_query(None);
    appended.set_path(&format!("{path}/.well-known/{name}"));
    if !out.contains(&appended) {
        out.push(appended);
    }
    out
}

impl Upstream {
    /// The upstream's authorization server, discovered once (then kept for
    /// the process: a failure is tried again on the next need).
    pub(crate) async fn discovered(&self, upstream_url: &Url) -> Result<Arc<Discovered>, UpstreamAuthError> {
        let mut slot = self.discovered.lock().await;
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let found = Arc::new(self.discover(upstream_url).await?);
        tracing::info!(upstream = %self.id, issuer = %found.issuer, resource = %found.resource, "upstream authorization server discovered");
        *slot = Some(found.clone());
        Ok(found)
    }

    async fn discover(&self, upstream_url: &Url) -> Result<Discovered, UpstreamAuthError> {
        let candidates = match &self.metadata_url {
            Some(url) => vec![url.clone()],
            None => well_known(upstream_url, "oauth-protected-resource"),
        };
        let mut metadata = None;
        for candidate in &candidates {
            if let Some(found) = fetch_json::<ResourceMetadata>(candidate).await? {
                metadata = Some(found);
                break;
            }
        }
        let Some(metadata) = metadata else {
            return Err(UpstreamAuthError::Unavailable(format!(
                "no protected-resource metadata at {}",
                candidates.iter().map(Url::as_str).collect::<Vec<_>>().join(" or ")
            )));
        };
        let resource = metadata.resource.unwrap_or_else(|| upstream_url.as_str().to_owned());
        let Some(issuer) = metadata.authorization_servers.first() else {
            return Err(UpstreamAuthError::Unavailable(
                "the protected-resource metadata names no authorization server".into(),
            ));
        };
        let issuer_url = parse_checked(issuer, "authorization server")?;
        let mut server = None;
        for name in ["oauth-authorization-server", "openid-configuration"] {
            for candidate in well_known(&issuer_url, name) {
                if let Some(found) = fetch_json::<ServerMetadata>(&candidate).await? {
                    server = Some(found);
                    break;
                }
            }
            if server.is_some() {
                break;
            }
        }
        let Some(server) = server else {
            return Err(UpstreamAuthError::Unavailable(format!("no authorization server metadata for {issuer}")));
        };
        // RFC 8414 3.3: the metadata must be the issuer's own.
        if server.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(UpstreamAuthError::Unavailable(format!(
                "the authorization server metadata names issuer `{}`, not `{issuer}`",
                server.issuer
            )));
        }
        let optional = |text: Option<String>, what: &str| text.map(|text| parse_checked(&text, what)).transpose();
        let authorization_endpoint = match (self.mode, server.authorization_endpoint) {
            (_, Some(text)) => parse_checked(&text, "authorization endpoint")?,
            (super::AuthMode::ServiceAccount, None) => parse_checked(&server.token_endpoint, "token endpoint")?,
            (super::AuthMode::UserOAuth, None) => {
                return Err(UpstreamAuthError::Unavailable(
                    "the authorization server has no authorization endpoint".into(),
                ));
            }
        };
        Ok(Discovered {
            resource,
            issuer: server.issuer,
            authorization_endpoint,
            token_endpoint: parse_checked(&server.token_endpoint, "token endpoint")?,
            registration_endpoint: optional(server.registration_endpoint, "registration endpoint")?,
            revocation_endpoint: optional(server.revocation_endpoint, "revocation endpoint")?,
            client_id_documents: server.client_id_metadata_document_supported,
            resource_scopes: metadata.scopes_supported,
        })
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::{check_url, well_known};

    #[test]
    fn well_known_urls_are_path_aware_first() {
        let base = Url::parse("https://mcp.example.com/v1/mcp?x=1").unwrap();
        let urls: Vec<String> = well_known(&base, "oauth-protected-resource").iter().map(|u| u.to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.example.com/v1/mcp/.well-known/oauth-protected-resource"
            ]
        );
        let root = Url::parse("https://as.example.com").unwrap();
        assert_eq!(well_known(&root, "openid-configuration").len(), 1);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url(&Url::parse("https://as.example.com/token").unwrap()).is_ok());
        assert!(check_url(&Url::parse("http://127.0.0.1:4000/token").unwrap()).is_ok());
        assert!(check_url(&Url::parse("http://localhost:4000/token").unwrap()).is_ok());
        let err = check_url(&Url::parse("http://as.example.com/token").unwrap()).unwrap_err();
        assert!(err.contains("not https"), "{err}");
    }
}
