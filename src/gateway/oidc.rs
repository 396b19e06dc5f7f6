//! The identity-provider leg: the redirect to the hosted login page, the
//! confidential code exchange, and ID-token verification against the
//! provider's JWKS.
//!
//! ID tokens are checked in full (OpenID Connect Core 3.1.3.7): RS256 only (so
//! `alg: none` and HMAC confusion are impossible), a known `kid`, the exact
//! issuer, our client id as audience, expiry with a small leeway, the nonce we
//! sent and, for Cognito, `token_use: id`. Keys are cached; an unknown `kid`
//! triggers one re-fetch, at most once per [`JWKS_REFETCH_INTERVAL`], so a
//! stream of forged tokens cannot turn the gateway into a JWKS hammer.
//!
//! The provider's refresh token of a login is kept, sealed with a key of this
//! provider (see `sealing`), and used on the gateway's own refresh grant to
//! ask the provider whether the user may still sign in (`refresh`); the ID
//! token that comes back is verified like the login's, except that it carries
//! no nonce (OpenID Connect Core 12.2) and must name the same subject.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use super::policy::OAuthPolicy;
use super::sealing::{SealingError, SealingKey};
use crate::secret::Secret;

pub(crate) const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const ID_TOKEN_LEEWAY_SECONDS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcError {
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    #[error("the token endpoint answered {status}: {error}")]
    TokenEndpoint { status: u16, error: String },
    #[error("the token endpoint answered without an id_token")]
    MissingIdToken,
    #[error("cannot fetch the JWKS: {0}")]
    Jwks(String),
    #[error("the ID token header is unreadable: {0}")]
    Header(jsonwebtoken::errors::Error),
    #[error("the ID token uses alg {0:?}; only RS256 is accepted")]
    Algorithm(Algorithm),
    #[error("the ID token has no kid")]
    MissingKid,
    #[error("the ID token's kid `{0}` is not in the provider's JWKS")]
    UnknownKid(String),
    #[error("the ID token is invalid: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    #[error("the ID token's token_use is {0:?}, not \"id\"")]
    TokenUse(Option<String>),
    #[error("the ID token's nonce does not match the login")]
    Nonce,
    #[error("the refreshed ID token names another subject than the login's")]
    Subject,
    #[error("the access token of the client credentials grant is not one of this client's: {0}")]
    MachineToken(&'static str),
}

impl OidcError {
    /// Whether the provider (not the token) is at fault: the callback answers
    /// 502 for those and 401 for a bad token.
    pub(crate) fn is_upstream(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::TokenEndpoint { .. } | Self::MissingIdToken | Self::Jwks(_))
    }
}

/// The claims of a verified ID token that the gateway uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IdClaims {
    pub(crate) sub: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default, rename = "cognito:username")]
    pub(crate) cognito_username: Option<String>,
    #[serde(default)]
    pub(crate) preferred_username: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    /// Every other claim, for the group and role claims a route names.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl IdClaims {
    /// The strings of the claim `name`: an array of strings (Cognito's
    /// `cognito:groups`) or one space- or comma-separated string.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        match self.other.get(name) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).collect()
            }
            Some(serde_json::Value::String(text)) => {
                text.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        }
    }

    /// What a grant keeps of the user: e-mail, and the groups and roles of
    /// the claims the route reads.
    pub(crate) fn identity(&self, claims: &crate::gateway::claims::ClaimNames) -> crate::gateway::store::Identity {
        crate::gateway::store::Identity {
            email: self.email.clone(),
            username: self.cognito_username.clone().or_else(|| self.preferred_username.clone()),
            groups: self.values(&claims.groups),
            roles: claims.roles.as_deref().map(|name| self.values(name)).unwrap_or_default(),
            machine: false,
        }
    }

    /// The user's name at the IdP, else their e-mail, else nothing.
    pub(crate) fn username(&self) -> &str {
        self.cognito_username.as_deref().or(self.preferred_username.as_deref()).or(self.email.as_deref()).unwrap_or("")
    }

    /// What the consent screen calls the user.
    pub(crate) fn display_name(&self) -> &str {
        self.email
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.cognito_username.as_deref())
            .unwrap_or(&self.sub)
    }
}

/// One provider (one inbound policy): its settings, cached keys and the key
/// its refresh tokens are sealed with.
pub(crate) struct IdentityProvider {
    pub(crate) policy: Arc<OAuthPolicy>,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
    sealing: SealingKey,
}

/// What the provider's token endpoint answered (the parts the gateway uses).
#[derive(Deserialize)]
pub(crate) struct IdpTokens {
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    /// Present on a code exchange; on a refresh only when the provider
    /// rotates its refresh tokens.
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
}

/// The claims of a provider's access token from a client credentials grant
/// (Cognito: `token_use: access`, `client_id`, the granted `scope`).
#[derive(Deserialize)]
struct MachineAccessClaims {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct MachineTokens {
    access_token: String,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: Option<String>,
}

impl IdentityProvider {
    /// `store_key`: the operator's `COGNIGATE_STORE_KEY`; without it the
    /// sealing key is derived from the policy's client secret.
    pub(crate) fn new(policy: Arc<OAuthPolicy>, store_key: Option<&Secret>) -> Result<Self, SealingError> {
        let login = &policy.browser_login;
        let secret = store_key.unwrap_or(&login.client_secret);
        let sealing =
            SealingKey::derive(secret.expose().as_bytes(), &format!("idp refresh token {}", login.client_id))?;
        Ok(Self {
            policy,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            refetch_interval: JWKS_REFETCH_INTERVAL,
            sealing,
        })
    }

    /// The provider's refresh token sealed for the user `subject`.
    pub(crate) fn seal_refresh(&self, refresh_token: &str, subject: &str) -> Option<String> {
        self.sealing.seal(refresh_token, subject)
    }

    /// What [`IdentityProvider::seal_refresh`] sealed; `None` when it does
    /// not open (another key, another subject, tampered).
    pub(crate) fn open_refresh(&self, sealed: &str, subject: &str) -> Option<String> {
        self.sealing.open(sealed, subject)
    }

    /// The hosted-UI URL the browser is sent to.
    pub(crate) fn authorize_url(&self, redirect_uri: &str, state: &str, nonce: &str, code_challenge: &str) -> Url {
        let login = &self.policy.browser_login;
        let mut url = login.url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &login.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &login.scope)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Exchanges the provider's code (client_secret_basic, RFC 6749 2.3.1):
    /// the raw ID token, and the provider's refresh token if it sent one.
    pub(crate) async fn exchange_code(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<(String, Option<String>), OidcError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier)
            .append_pair("client_id", &self.policy.browser_login.client_id)
            .finish();
        let tokens = self.token_request(http, form).await?;
        Ok((tokens.id_token.ok_or(OidcError::MissingIdToken)?, tokens.refresh_token))
    }

    /// The refresh grant at the provider (RFC 6749 section 6, as the
    /// confidential client): succeeds only while the provider still lets the
    /// user sign in. Cognito answers `invalid_grant` for a disabled or
    /// deleted user and a revoked token.
    pub(crate) async fn refresh(&self, http: &reqwest::Client, refresh_token: &str) -> Result<IdpTokens, OidcError> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token)
            .append_pair("client_id", &self.policy.browser_login.client_id)
            .finish();
        self.token_request(http, form).await
    }

    /// Proves a machine client's credentials with one client credentials
    /// grant at the provider's token endpoint (as that client,
    /// client_secret_basic), and returns the scopes the provider granted.
    /// The access token that comes back is verified like an ID token
    /// (signature, issuer, expiry) and must be this client's. Nothing is
    /// cached: a client deleted at the provider, or a secret removed there,
    /// fails the next proof.
    pub(crate) async fn prove_client(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        client_secret: &Secret,
        scope: Option<&str>,
    ) -> Result<Vec<String>, OidcError> {
        // The serializer is not Send: it must be gone before the await.
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let body = self.post_token(http, client_id, client_secret, form).await?;
        let tokens: MachineTokens =
            serde_json::from_slice(&body).map_err(|_| OidcError::MachineToken("no access_token"))?;
        let header = jsonwebtoken::decode_header(&tokens.access_token).map_err(OidcError::Header)?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(OidcError::MissingKid)?;
        let key = self.key(http, &kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.policy.oidc.issuer.as_str()]);
        // Cognito's access tokens have no `aud`; `client_id` names the client.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.leeway = ID_TOKEN_LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<MachineAccessClaims>(&tokens.access_token, &key, &validation)
            .map_err(OidcError::Invalid)?
            .claims;
        if self.policy.require_token_use_id && claims.token_use.as_deref() != Some("access") {
            return Err(OidcError::MachineToken("token_use is not access"));
        }
        if claims.client_id.as_deref() != Some(client_id) {
            return Err(OidcError::MachineToken("it names another client_id"));
        }
        Ok(claims.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect())
    }

    /// The provider's token endpoint, in a span of the request's trace.
    async fn token_request(&self, http: &reqwest::Client, form: String) -> Result<IdpTokens, OidcError> {
        let span = idp_span("idp token", &self.policy.browser_login.token_url);
        let result = self.send_token_request(http, form).await;
        if let (Some(span), Err(err)) = (&span, &result) {
            span.fail(err.to_string());
        }
        result
    }

    async fn send_token_request(&self, http: &reqwest::Client, form: String) -> Result<IdpTokens, OidcError> {
        let login = &self.policy.browser_login;
        let body = self.post_token(http, &login.client_id, &login.client_secret, form).await?;
        serde_json::from_slice(&body).map_err(|_| OidcError::MissingIdToken)
    }

    /// One form POST to the provider's token endpoint as `client_id`
    /// (client_secret_basic, RFC 6749 2.3.1); the body of a 2xx answer.
    async fn post_token(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        client_secret: &Secret,
        form: String,
    ) -> Result<bytes::Bytes, OidcError> {
        let login = &self.policy.browser_login;
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = http
            .post(login.token_url.clone())
            .basic_auth(encode(client_id), Some(encode(client_secret.expose())))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|err| OidcError::Unreachable(without_url(err)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|err| OidcError::Unreachable(without_url(err)))?;
        if !status.is_success() {
            // Only the error code is kept: the body could echo request data.
            let error = serde_json::from_slice::<TokenErrorBody>(&body)
                .ok()
                .and_then(|b| b.error)
                .unwrap_or_else(|| "(no error code)".into());
            return Err(OidcError::TokenEndpoint { status: status.as_u16(), error });
        }
        Ok(body)
    }

    /// Verifies a login's ID token; see the module docs for the checks.
    pub(crate) async fn verify_id_token(
        &self,
        http: &reqwest::Client,
        token: &str,
        nonce: &str,
    ) -> Result<IdClaims, OidcError> {
        let claims = self.verify(http, token).await?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(OidcError::Nonce);
        }
        Ok(claims)
    }

    /// Verifies an ID token from a refresh: the login's checks but the
    /// nonce, which such a token does not carry, and the same subject.
    pub(crate) async fn verify_refreshed_id_token(
        &self,
        http: &reqwest::Client,
        token: &str,
        subject: &str,
    ) -> Result<IdClaims, OidcError> {
        let claims = self.verify(http, token).await?;
        if claims.sub != subject {
            return Err(OidcError::Subject);
        }
        Ok(claims)
    }

    async fn verify(&self, http: &reqwest::Client, token: &str) -> Result<IdClaims, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(OidcError::Header)?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(OidcError::MissingKid)?;
        let key = self.key(http, &kid).await?;
        let policy = &self.policy;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[policy.oidc.issuer.as_str()]);
        validation.set_audience(&[policy.browser_login.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = ID_TOKEN_LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation).map_err(OidcError::Invalid)?.claims;
        if policy.require_token_use_id && claims.token_use.as_deref() != Some("id") {
            return Err(OidcError::TokenUse(claims.token_use));
        }
        Ok(claims)
    }

    async fn key(&self, http: &reqwest::Client, kid: &str) -> Result<Arc<DecodingKey>, OidcError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last = self.last_fetch.lock().await;
        // Another task may have fetched while we waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.refetch_interval) {
            return Err(OidcError::UnknownKid(kid.to_owned()));
        }
        *last = Some(Instant::now());
        let span = idp_span("idp jwks", &self.policy.oidc.jwks_url);
        let keys = fetch_jwks(http, &self.policy.oidc.jwks_url).await.inspect_err(|err| {
            if let Some(span) = &span {
                span.fail(err.to_string());
            }
        })?;
        drop(span);
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        self.cached(kid).ok_or_else(|| OidcError::UnknownKid(kid.to_owned()))
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(kid).cloned()
    }
}

/// A client span for a call to the identity provider (Cognito's token
/// endpoint and key set), when the request is sampled.
fn idp_span(name: &'static str, url: &Url) -> Option<crate::gateway::telemetry::ChildSpan> {
    let span = crate::gateway::telemetry::child(|| name, opentelemetry::trace::SpanKind::Client)?;
    span.set("server.address", url.host_str().unwrap_or_default().to_owned());
    span.set("url.path", url.path().to_owned());
    Some(span)
}

/// The RSA signing keys of a JWKS by `kid`; other key types are skipped.
async fn fetch_jwks(http: &reqwest::Client, url: &Url) -> Result<HashMap<String, Arc<DecodingKey>>, OidcError> {
    let response = http.get(url.clone()).send().await.map_err(|err| OidcError::Jwks(without_url(err)))?;
    if !response.status().is_success() {
        return Err(OidcError::Jwks(format!("{url} answered {}", response.status())));
    }
    let set: JwkSet = response.json().await.map_err(|err| OidcError::Jwks(without_url(err)))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), AlgorithmParameters::RSA(_)) = (&jwk.common.key_id, &jwk.algorithm) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), Arc::new(key));
        }
    }
    Ok(keys)
}

/// reqwest errors print the URL, which for a token request carries no secret
/// but for other calls might; keep the kind of failure only.
fn without_url(err: reqwest::Error) -> String {
    err.without_url().to_string()
}
