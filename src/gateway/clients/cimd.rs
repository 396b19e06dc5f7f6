//! Client ID Metadata Documents (MCP authorization 2025-11-25,
//! draft-ietf-oauth-client-id-metadata-document): a `client_id` that is an
//! https URL names a JSON document, served by the client's owner, that holds
//! its metadata. The gateway fetches it, checks it and caches it as its HTTP
//! caching headers say, instead of asking the client to register.
//!
//! The fetch is a request the gateway makes to a URL an anonymous caller
//! chose, so it is hardened against server-side request forgery: https only;
//! no redirects; the host's addresses are resolved by our own resolver, which
//! refuses loopback, private, link-local and other non-public ranges (unless
//! an option allows them), so a DNS answer cannot point the fetch inside the
//! network; a size and a time limit; and an optional allow-list of hosts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use url::{Host, Url};

use super::check_redirect_uri;
use crate::gateway::error_chain;
use crate::gateway::options::OAuthOptions;
use crate::gateway::store::{Client, now};

/// The draft suggests 5 KB; documents with long names or many redirect URIs
/// get some room above that.
const MAX_DOCUMENT_BYTES: usize = 10 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when the response says nothing about caching.
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
/// A document is re-fetched at least daily, whatever its headers say.
const MAX_CACHE: Duration = Duration::from_secs(86_400);
const MAX_CACHED_DOCUMENTS: usize = 1000;
/// A refused document is refused again from memory this long: repeated
/// requests naming it do not each make the gateway fetch.
const NEGATIVE_CACHE: Duration = Duration::from_secs(30);

/// Why a client-id document was refused; the message is shown to the user on
/// the sign-in page and returned as `error_description`.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CimdError {
    #[error(
        "the client_id `{0}` is not a valid client-id URL: {1}. Fix: the application must use an https URL with a path, without a fragment, credentials or dot segments"
    )]
    BadUrl(String, &'static str),
    #[error("the client-id host `{0}` is not allowed on this gateway. Fix: add it to --client-id-hosts")]
    HostNotAllowed(String),
    #[error(
        "the client-id `{0}` names a non-public address. Fix: serve the document from a public host, or start the gateway with --client-id-private-addresses"
    )]
    PrivateAddress(String),
    /// The fetch failed before an answer: the name did not resolve, resolved
    /// only to non-public addresses, or the connection failed. The caller is
    /// anonymous, so what the gateway's resolver and network said (internal
    /// names and addresses) stays in the log.
    #[error(
        "the client-id document `{0}` could not be fetched from a public address. Fix: serve it over https from a public host (the gateway's log has the reason)"
    )]
    Unreachable(String),
    #[error("the client-id document `{0}` answered with a redirect; client-id documents must be served directly")]
    Redirect(String),
    #[error("the client-id document `{0}` answered HTTP {1}")]
    Status(String, u16),
    #[error("the client-id document `{0}` is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge(String),
    #[error("the client-id document `{0}` is invalid: {1}")]
    Invalid(String, String),
}

/// The document's fields the gateway uses; others are ignored (RFC 7591).
#[derive(Debug, Deserialize)]
struct Document {
    client_id: Option<String>,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_secret: Option<serde_json::Value>,
}

/// Whether `client_id` is to be resolved as a metadata document.
pub(crate) fn is_client_id_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// Fetches, checks and caches client-id documents.
pub(crate) struct CimdClients {
    http: reqwest::Client,
    allowed_hosts: Vec<String>,
    private_addresses: bool,
    cache: Mutex<HashMap<String, (Client, Instant)>>,
    refused: Mutex<HashMap<String, (CimdError, Instant)>>,
    /// One lock per URL being fetched: concurrent requests for one document
    /// wait for a single fetch and then read its cached outcome.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl CimdClients {
    pub(crate) fn new(options: &OAuthOptions) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .no_proxy()
            .dns_resolver(Arc::new(PublicResolver { private_addresses: options.client_id_private_addresses }));
        if let Some(path) = &options.extra_roots {
            let pem =
                std::fs::read(path).map_err(|err| format!("cannot read the CA file {}: {err}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|err| format!("the CA file {} holds no PEM certificates: {err}", path.display()))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|err| format!("cannot build the client-id HTTP client: {err}"))?;
        Ok(Self {
            http,
            allowed_hosts: options.client_id_hosts.iter().map(|host| host.to_ascii_lowercase()).collect(),
            private_addresses: options.client_id_private_addresses,
            cache: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// The client a client-id URL names: from the cache while fresh, else
    /// fetched and checked (once for all concurrent requests; a refusal is
    /// remembered for a short while).
    pub(crate) async fn client(&self, client_id: &str) -> Result<Client, CimdError> {
        if let Some(outcome) = self.remembered(client_id) {
            return outcome;
        }
        let url = self.checked_url(client_id)?;
        let lock = self.fetch_lock(client_id);
        let outcome = {
            let _fetching = lock.lock().await;
            match self.remembered(client_id) {
                Some(outcome) => outcome,
                None => self.fetched(&url, client_id).await,
            }
        };
        drop(lock);
        self.release_fetch_lock(client_id);
        outcome
    }

    async fn fetched(&self, url: &Url, client_id: &str) -> Result<Client, CimdError> {
        let checked = match self.fetch(url, client_id).await {
            Ok((document, lifetime)) => checked_document(client_id, document).map(|client| (client, lifetime)),
            Err(err) => Err(err),
        };
        match checked {
            Ok((client, lifetime)) => {
                if let Some(lifetime) = lifetime {
                    self.remember(client_id, &client, lifetime);
                }
                tracing::info!(client_id, "client-id metadata document fetched");
                Ok(client)
            }
            Err(err) => {
                remember_bounded(&self.refused, client_id, &err, NEGATIVE_CACHE);
                Err(err)
            }
        }
    }

    /// Whether a request naming `client_id` is answered without a fetch.
    pub(crate) fn is_remembered(&self, client_id: &str) -> bool {
        self.remembered(client_id).is_some()
    }

    /// A fresh cached client, or a recent refusal.
    fn remembered(&self, client_id: &str) -> Option<Result<Client, CimdError>> {
        if let Some(client) = self.cached(client_id) {
            return Some(Ok(client));
        }
        let refused = self.refused.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        refused.get(client_id).filter(|(_, until)| *until > Instant::now()).map(|(err, _)| Err(err.clone()))
    }

    fn fetch_lock(&self, client_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        in_flight.entry(client_id.to_owned()).or_default().clone()
    }

    /// Forgets the URL's lock once no request holds or waits for it.
    fn release_fetch_lock(&self, client_id: &str) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if in_flight.get(client_id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            in_flight.remove(client_id);
        }
    }

    fn cached(&self, client_id: &str) -> Option<Client> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(client_id).filter(|(_, until)| *until > Instant::now()).map(|(client, _)| client.clone())
    }

    fn remember(&self, client_id: &str, client: &Client, lifetime: Duration) {
        remember_bounded(&self.cache, client_id, client, lifetime);
    }

    /// The URL rules of the draft (section 3) plus ours: the allow-list, and
    /// no IP literal outside the public ranges.
    fn checked_url(&self, client_id: &str) -> Result<Url, CimdError> {
        let bad = |why| CimdError::BadUrl(client_id.to_owned(), why);
        let url = Url::parse(client_id).map_err(|_| bad("not a URL"))?;
        if url.scheme() != "https" {
            return Err(bad("not https"));
        }
        if url.fragment().is_some() {
            return Err(bad("it has a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it has credentials"));
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(bad("it has no path"));
        }
        // The parser resolves dot segments; a client id holding them names
        // another URL than the one it spells.
        if client_id.contains("/./") || client_id.contains("/../") || url.as_str() != client_id {
            return Err(bad("it is not in its normal form (dot segments, case or escapes)"));
        }
        let host = url.host_str().ok_or_else(|| bad("it has no host"))?.to_ascii_lowercase();
        if !self.allowed_hosts.is_empty() && !self.allowed_hosts.contains(&host) {
            return Err(CimdError::HostNotAllowed(host));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !self.private_addresses && !is_public(ip)) {
            return Err(CimdError::PrivateAddress(client_id.to_owned()));
        }
        Ok(url)
    }

    /// GETs the document within the size limit; returns it and how long it
    /// may be cached (`None`: not at all).
    async fn fetch(&self, url: &Url, client_id: &str) -> Result<(Document, Option<Duration>), CimdError> {
        let fetch_error = |err: &reqwest::Error| {
            let detail = match private_address_in(err) {
                Some(addresses) => format!("resolves only to non-public addresses ({addresses})"),
                None => error_chain(err),
            };
            tracing::warn!(client_id, reason = %detail, "client-id metadata document could not be fetched");
            CimdError::Unreachable(client_id.to_owned())
        };
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| fetch_error(&err))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Redirect(client_id.to_owned()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(CimdError::Status(client_id.to_owned(), status.as_u16()));
        }
        if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
            return Err(CimdError::TooLarge(client_id.to_owned()));
        }
        let lifetime = cache_lifetime(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| fetch_error(&err))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(CimdError::TooLarge(client_id.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        let document = serde_json::from_slice(&body).map_err(|err| {
            CimdError::Invalid(client_id.to_owned(), format!("not a JSON client metadata object ({err})"))
        })?;
        Ok((document, lifetime))
    }
}

/// Keeps `value` for `lifetime` in a map of at most
/// [`MAX_CACHED_DOCUMENTS`] entries (expired ones make room first; when none
/// has expired, the value is not kept).
fn remember_bounded<T: Clone>(map: &Mutex<HashMap<String, (T, Instant)>>, key: &str, value: &T, lifetime: Duration) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let now = Instant::now();
    if map.len() >= MAX_CACHED_DOCUMENTS {
        map.retain(|_, (_, until)| *until > now);
    }
    if map.len() < MAX_CACHED_DOCUMENTS {
        map.insert(key.to_owned(), (value.clone(), now + lifetime));
    }
}

/// The draft's section 4 checks: the document names itself, lists redirect
/// URIs we accept, and is a public client (no shared secret can be in a
/// public document).
fn checked_document(client_id: &str, document: Document) -> Result<Client, CimdError> {
    let invalid = |why: String| CimdError::Invalid(client_id.to_owned(), why);
    match document.client_id.as_deref() {
        Some(id) if id == client_id => {}
        Some(id) => return Err(invalid(format!("its client_id `{id}` differs from its URL"))),
        None => return Err(invalid("it has no client_id".into())),
    }
    // MCP 2026-07-28 (client registration): client_id, client_name and
    // redirect_uris are required.
    let Some(client_name) = document.client_name.map(|name| name.trim().chars().take(200).collect::<String>()) else {
        return Err(invalid("it has no client_name".into()));
    };
    if client_name.is_empty() {
        return Err(invalid("its client_name is empty".into()));
    }
    if document.client_secret.is_some() {
        return Err(invalid("it holds a client_secret, which a public document must not".into()));
    }
    let method = document.token_endpoint_auth_method.unwrap_or_else(|| "none".into());
    if method != "none" {
        return Err(invalid(format!("token_endpoint_auth_method is `{method}`; only `none` is supported")));
    }
    if document.redirect_uris.is_empty() {
        return Err(invalid("it lists no redirect_uris".into()));
    }
    for uri in &document.redirect_uris {
        check_redirect_uri(uri).map_err(&invalid)?;
    }
    let grant_types = document.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if grant_types.iter().any(|grant| !super::SUPPORTED_GRANTS.contains(&grant.as_str())) {
        return Err(invalid(
            "grant_types may only hold authorization_code, refresh_token and the device code grant".into(),
        ));
    }
    let response_types = document.response_types.unwrap_or_else(|| vec!["code".into()]);
    if response_types != ["code"] {
        return Err(invalid("response_types must be [\"code\"]".into()));
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        client_name: Some(client_name),
        redirect_uris: document.redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: method,
        client_secret_hash: None,
        client_id_issued_at: now(),
    })
}

/// How long a response may be cached (RFC 9111 5.2.2): `no-store` and
/// `no-cache` mean not at all, `max-age` (bounded) is used, and absent both
/// a short default applies.
fn cache_lifetime(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let Some(value) = headers.get(reqwest::header::CACHE_CONTROL).and_then(|value| value.to_str().ok()) else {
        return Some(DEFAULT_CACHE);
    };
    let mut lifetime = DEFAULT_CACHE;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=").and_then(|s| s.trim_matches('"').parse::<u64>().ok())
        {
            if seconds == 0 {
                return None;
            }
            lifetime = Duration::from_secs(seconds).min(MAX_CACHE);
        }
    }
    Some(lifetime)
}

/// Resolves names with the system resolver and keeps only public addresses
/// (all of them when private ones are allowed). The connection is made to
/// what this returns, so a name cannot be re-pointed between check and use.
struct PublicResolver {
    private_addresses: bool,
}

/// The resolver's refusal, found again in the error chain for the message.
#[derive(Debug, thiserror::Error)]
#[error("resolves only to non-public addresses ({0})")]
struct NonPublic(String);

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let private_addresses = self.private_addresses;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                found.iter().copied().filter(|addr| private_addresses || is_public(addr.ip())).collect();
            if public.is_empty() {
                let listed = found.iter().map(|addr| addr.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(Box::new(NonPublic(listed)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

fn private_address_in(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(NonPublic(addresses)) = cause.downcast_ref::<NonPublic>() {
            return Some(addresses.clone());
        }
        source = cause.source();
    }
    None
}

/// Whether an address is on the public internet: not loopback, private
/// (RFC 1918, unique local), link-local, shared (CGNAT), documentation,
/// benchmarking, multicast, reserved, unspecified, or an IPv6 address that
/// tunnels an IPv4 one (IPv4-compatible, 6to4, Teredo).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_broadcast()
                || ip.is_documentation()
                || ip.is_unspecified()
                || ip.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = ip.segments();
            // IPv4-compatible (::/96, deprecated), 6to4 (2002::/16) and
            // Teredo (2001::/32) addresses carry an IPv4 address a host may
            // route to, the loopback or a private one included: none is
            // where a public document lives.
            let embeds_ipv4 = u128::from(ip) >> 32 == 0 || first == 0x2002 || (first == 0x2001 && second == 0);
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || embeds_ipv4
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && second == 0x0db8)
                || (first == 0x0064 && second == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CimdClients, CimdError, Document, cache_lifetime, checked_document, is_public};
    use crate::gateway::options::OAuthOptions;

    #[test]
    fn public_addresses() {
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::7f00:1",
            "::8.8.8.8",
            "2002:7f00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn client_id_url_rules() {
        let clients = CimdClients::new(&OAuthOptions::default()).unwrap();
        assert!(clients.checked_url("https://app.example.com/oauth/client.json").is_ok());
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a#b",
            "https://u:p@app.example.com/a",
            "https://app.example.com/a/../b",
            "https://APP.example.com/a",
        ] {
            assert!(matches!(clients.checked_url(bad), Err(CimdError::BadUrl(..))), "{bad}");
        }
        for private in ["https://127.0.0.1/a", "https://[::1]/a", "https://169.254.169.254/latest"] {
            assert!(matches!(clients.checked_url(private), Err(CimdError::PrivateAddress(..))), "{private}");
        }
        let options = OAuthOptions { client_id_hosts: vec!["claude.ai".into()], ..OAuthOptions::default() };
        let clients = CimdClients::new(&options).unwrap();
        assert!(clients.checked_url("https://claude.ai/oauth/mcp-oauth-client-metadata").is_ok());
        assert!(matches!(clients.checked_url("https://evil.example/a"), Err(CimdError::HostNotAllowed(_))));
    }

    fn document(json: serde_json::Value) -> Document {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn document_rules() {
        let id = "https://app.example.com/client.json";
        let client = checked_document(
            id,
            document(
                serde_json::json!({"client_id": id, "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"]}),
            ),
        )
        .unwrap();
        assert_eq!(client.token_endpoint_auth_method, "none");
        assert!(client.client_secret_hash.is_none());
        for (bad, needle) in [
            (
                serde_json::json!({"client_id": "https://other.example/c", "redirect_uris": ["https://a.example/cb"]}),
                "differs",
            ),
            (serde_json::json!({"client_id": id, "client_name": "A"}), "redirect_uris"),
            (serde_json::json!({"client_id": id, "redirect_uris": ["https://a/cb"]}), "client_name"),
            (serde_json::json!({"client_id": id, "client_name": "A", "redirect_uris": ["javascript:x"]}), "javascript"),
            (
                serde_json::json!({"client_id": id, "client_name": "A", "redirect_uris": ["https://a/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
                "none",
            ),
            (
                serde_json::json!({"client_id": id, "client_name": "A", "redirect_uris": ["https://a/cb"], "client_secret": "x"}),
                "client_secret",
            ),
        ] {
            let err = checked_document(id, document(bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn caching_follows_cache_control() {
        let headers = |value: &str| {
            let mut map = reqwest::header::HeaderMap::new();
            map.insert(reqwest::header::CACHE_CONTROL, value.parse().unwrap());
            map
        };
        assert_eq!(cache_lifetime(&headers("public, max-age=60")).unwrap().as_secs(), 60);
        assert_eq!(cache_lifetime(&headers("max-age=99999999")).unwrap().as_secs(), 86_400);
        assert!(cache_lifetime(&headers("no-store")).is_none());
        assert!(cache_lifetime(&headers("max-age=0")).is_none());
        assert_eq!(cache_lifetime(&reqwest::header::HeaderMap::new()).unwrap().as_secs(), 300);
    }
}
