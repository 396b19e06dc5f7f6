//! Test peers and helpers: a minimal IdP, an upstream MCP stand-in, a gateway
//! router on a temp config dir and store.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cognigate::gateway::AppState;
use cognigate::gateway::OAuthOptions;
use cognigate::gateway::SecurityOptions;
use cognigate::gateway::SqliteStore;
use cognigate::gateway::{Env, GatewayConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Digest;
use tower::ServiceExt;

pub const POOL: &str = "us-east-1_TestPool1";
pub const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool1";
pub const COGNITO_CLIENT_ID: &str = "cognito-client-id";
pub const COGNITO_SECRET: &str = "cognito-client-secret";
pub const PUBLIC_URL: &str = "http://gw.test";
pub const REDIRECT_URI: &str = "http://127.0.0.1:33418/callback";

pub async fn spawn(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

pub fn now() -> i64 {
    cognigate::gateway::now()
}

// ---------------------------------------------------------------- the IdP

/// (Authorization header, form pairs) of a request to the IdP's token endpoint.
pub type TokenRequest = (Option<String>, Vec<(String, String)>);

#[derive(Default)]
pub struct IdpState {
    /// The ID token the next code exchange returns (`None`: 400 invalid_grant).
    pub next_id_token: Mutex<Option<String>>,
    /// (Authorization header, form) of each token request.
    pub token_requests: Mutex<Vec<TokenRequest>>,
    pub jwks_fetches: AtomicUsize,
    /// The last hosted-UI URL the gateway sent a browser to.
    pub last_authorize: Mutex<Option<url::Url>>,
}

pub struct Idp {
    pub addr: SocketAddr,
    pub state: Arc<IdpState>,
}

impl Idp {
    pub async fn start() -> Self {
        let state = Arc::new(IdpState::default());
        let router = Router::new()
            .route(&format!("/{POOL}/.well-known/jwks.json"), get(jwks))
            .route("/oauth2/token", post(idp_token))
            .with_state(state.clone());
        Self { addr: spawn(router).await, state }
    }

    pub fn will_return(&self, id_token: String) {
        *self.state.next_id_token.lock().unwrap() = Some(id_token);
    }
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let body: Value = serde_json::from_str(include_str!("fixtures/moto-jwks-public.json")).unwrap();
    axum::Json(body).into_response()
}

async fn idp_token(State(state): State<Arc<IdpState>>, headers: HeaderMap, body: String) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
    state.token_requests.lock().unwrap().push((auth, form));
    match state.next_id_token.lock().unwrap().take() {
        Some(id_token) => axum::Json(
            json!({"id_token": id_token, "access_token": "cognito-access", "token_type": "Bearer", "expires_in": 3600}),
        )
        .into_response(),
        None => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response(),
    }
}

/// Valid Cognito ID-token claims for `nonce`.
pub fn id_claims(nonce: &str) -> Value {
    json!({
        "sub": "user-sub-1",
        "iss": ISSUER,
        "aud": COGNITO_CLIENT_ID,
        "token_use": "id",
        "email": "alice@example.com",
        "cognito:username": "alice",
        "nonce": nonce,
        "iat": now(),
        "auth_time": now(),
        "exp": now() + 3600,
    })
}

/// Signs with moto's RSA key (kid `dummy` unless given).
pub fn sign_id_token(claims: &Value, kid: &str) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("fixtures/moto-idp-rsa.pem")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// An unsigned `alg: none` token.
pub fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"dummy"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

// ------------------------------------------------------------ the upstream

pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// The SSE stream holds its second event until this is notified, so a
    /// test can tell a streamed first event from a buffered body without
    /// looking at a clock.
    pub release_second_event: Arc<tokio::sync::Notify>,
}

impl Upstream {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let sse = {
            let release = release.clone();
            move |headers: HeaderMap| upstream_sse(headers, release.clone())
        };
        let router = Router::new()
            .route("/mcp", post(upstream_post).get(sse).delete(upstream_delete))
            .route("/other", post(upstream_post))
            .with_state(hits.clone());
        Self { addr: spawn(router).await, hits, release_second_event: release }
    }
}

/// Echoes what it received: the headers (so tests see what was forwarded)
/// and the body.
async fn upstream_post(
    State(hits): State<Arc<AtomicUsize>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let seen: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?")))).collect();
    let mut response =
        axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {"headers": seen, "body": body, "query": uri.query()}}))
            .into_response();
    response.headers_mut().insert("mcp-session-id", "session-from-upstream".parse().unwrap());
    response.headers_mut().insert(header::SET_COOKIE, "upstream=1".parse().unwrap());
    response
}

/// An SSE stream: one event now, one when the test releases it, then ends.
async fn upstream_sse(headers: HeaderMap, release: Arc<tokio::sync::Notify>) -> Response {
    let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
    let stream = async_stream(last_event, release);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn async_stream(
    last_event: String,
    release: Arc<tokio::sync::Notify>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(0u8, move |step| {
        let (last_event, release) = (last_event.clone(), release.clone());
        async move {
            match step {
                0 => Some((Ok(bytes::Bytes::from(format!("id: 1\ndata: first last-event-id={last_event}\n\n"))), 1)),
                1 => {
                    release.notified().await;
                    Some((Ok(bytes::Bytes::from_static(b"id: 2\ndata: second\n\n")), 2))
                }
                _ => None,
            }
        }
    })
}

async fn upstream_delete() -> StatusCode {
    StatusCode::NO_CONTENT
}

// ------------------------------------------------------------- the gateway

pub struct Gateway {
    pub state: AppState,
    pub router: Router,
    pub idp: Idp,
    pub upstream: Upstream,
    pub dir: tempfile::TempDir,
}

/// `policies.json` with the stanza `cognigate up` writes (the contract's own).
pub fn policies() -> Value {
    let region = cognigate::contract::Region::parse("us-east-1").expect("region");
    let stanza = cognigate::contract::cognito_stanza(cognigate::contract::DEFAULT_POLICY_NAME, &region);
    json!({ "policies": [serde_json::to_value(stanza).expect("stanza")] })
}

pub fn route(upstream: &str) -> Value {
    let op = json!({"x-zuplo-route": {
        "handler": {"export": "McpProxyHandler", "module": "$import(@zuplo/runtime)", "options": {"rewritePattern": upstream}},
        "policies": {"inbound": ["cognito-managed-oauth"]}
    }});
    json!({"post": op, "get": op, "delete": op})
}

pub fn env_text(idp: SocketAddr) -> String {
    format!(
        "COGNITO_USER_POOL_ID={POOL}\nCOGNITO_USER_POOL_DOMAIN={idp}\nCOGNITO_CLIENT_ID={COGNITO_CLIENT_ID}\nCOGNITO_CLIENT_SECRET={COGNITO_SECRET}\nAWS_ENDPOINT_URL=http://{idp}\n"
    )
}

impl Gateway {
    /// Two routes: `/mcp/echo` (→ upstream `/mcp`) and `/mcp/other` (→ `/other`).
    pub async fn start() -> Self {
        Self::start_with(|upstream| {
            json!({"paths": {
                "/mcp/echo": route(&format!("http://{upstream}/mcp")),
                "/mcp/other": route(&format!("http://{upstream}/other")),
            }})
        })
        .await
    }

    pub async fn start_with(routes: impl FnOnce(SocketAddr) -> Value) -> Self {
        Self::start_on(routes, None).await
    }

    /// `redis`: a Redis URL for the store instead of SQLite.
    /// No refresh grace window: the reuse tests present a spent refresh
    /// token at once and expect its family revoked (spec.rs tests the window).
    pub async fn start_on(routes: impl FnOnce(SocketAddr) -> Value, redis: Option<&str>) -> Self {
        Self::start_full(routes, redis, policies(), no_grace()).await
    }

    /// The two default routes with the given security options.
    pub async fn start_with_security(security: SecurityOptions) -> Self {
        Self::start_secured(
            |upstream| {
                json!({"paths": {
                    "/mcp/echo": route(&format!("http://{upstream}/mcp")),
                    "/mcp/other": route(&format!("http://{upstream}/other")),
                }})
            },
            None,
            policies(),
            no_grace(),
            security,
        )
        .await
    }

    /// Everything chosen: routes, store, `policies.json` and the
    /// authorization server's options.
    pub async fn start_full(
        routes: impl FnOnce(SocketAddr) -> Value,
        redis: Option<&str>,
        policies: Value,
        options: OAuthOptions,
    ) -> Self {
        Self::start_secured(routes, redis, policies, options, SecurityOptions::default()).await
    }

    /// [`Gateway::start_full`] with security options.
    pub async fn start_secured(
        routes: impl FnOnce(SocketAddr) -> Value,
        redis: Option<&str>,
        policies: Value,
        options: OAuthOptions,
        security: SecurityOptions,
    ) -> Self {
        let idp = Idp::start().await;
        let upstream = Upstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policies.json"), policies.to_string()).unwrap();
        std::fs::write(dir.path().join("routes.oas.json"), routes(upstream.addr).to_string()).unwrap();
        std::fs::write(dir.path().join(".env"), env_text(idp.addr)).unwrap();
        let store: cognigate::gateway::StoreHandle = match redis {
            None => SqliteStore::open(&dir.path().join("gw.db")).unwrap().into(),
            Some(url) => cognigate::gateway::RedisStore::open(url).unwrap().into(),
        };
        let state = Self::state_full(dir.path(), store, options).with_security(security);
        let router = cognigate::gateway::router(state.clone());
        Self { state, router, idp, upstream, dir }
    }

    /// A state over the same config dir and store (a "restart").
    pub fn state(dir: &std::path::Path) -> AppState {
        Self::state_with(dir, SqliteStore::open(&dir.join("gw.db")).unwrap().into())
    }

    pub fn state_with(dir: &std::path::Path, store: cognigate::gateway::StoreHandle) -> AppState {
        Self::state_full(dir, store, no_grace())
    }

    pub fn state_full(
        dir: &std::path::Path,
        store: cognigate::gateway::StoreHandle,
        options: OAuthOptions,
    ) -> AppState {
        let text = std::fs::read_to_string(dir.join(".env")).unwrap();
        let env =
            Env::from_pairs(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())));
        let config = GatewayConfig::load(dir, &env).unwrap();
        AppState::build_with(config, PUBLIC_URL, store, options).unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn get(&self, uri: &str) -> Response {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(&self, uri: &str, pairs: &[(&str, &str)]) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> Response {
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// Registers a public client with [`REDIRECT_URI`] and refresh tokens.
    /// `POST /oauth/token` with a refresh grant.
    pub async fn refresh(&self, refresh_token: &str, client_id: &str) -> Response {
        self.post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)],
        )
        .await
    }

    pub async fn register(&self) -> String {
        let response = self
            .post_json(
                "/oauth/register",
                &json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "Test <Client>", "grant_types": ["authorization_code", "refresh_token"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json_body(response).await["client_id"].as_str().unwrap().to_owned()
    }

    /// A gateway access token for a route, minted directly.
    pub fn mint(&self, slug: &str, iat: i64, ttl: i64) -> String {
        let jti = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(format!("{slug}{iat}{ttl}{}", rand_suffix())));
        self.state
            .mint_access_token("user-sub-1", &format!("{PUBLIC_URL}/mcp/{slug}"), "client-x", "openid", iat, ttl, jti)
            .unwrap()
    }
}

/// The default options without the refresh grace window.
pub fn no_grace() -> OAuthOptions {
    OAuthOptions::default().with_refresh_grace(Duration::ZERO)
}

fn rand_suffix() -> usize {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A GET of `uri` as if it came over TCP from `ip`.
pub fn from_address(ip: &str, uri: &str) -> Request<Body> {
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
    request
}

pub async fn body_text(response: Response) -> String {
    String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

pub async fn json_body(response: Response) -> Value {
    serde_json::from_str(&body_text(response).await).unwrap()
}

pub fn location(response: &Response) -> url::Url {
    url::Url::parse(response.headers().get(header::LOCATION).expect("a Location header").to_str().unwrap()).unwrap()
}

pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!("verifier-{}-{}", rand_suffix(), "x".repeat(40));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorize URL for a registered client.
pub fn authorize_uri(client_id: &str, challenge: &str, resource: Option<&str>) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    serializer
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "client-state-1")
        .append_pair("scope", "openid email");
    if let Some(resource) = resource {
        serializer.append_pair("resource", resource);
    }
    format!("/oauth/authorize?{}", serializer.finish())
}

/// What a login produced up to the consent screen.
pub struct ConsentPage {
    pub html: String,
    pub cookie: String,
    pub consent_id: String,
    pub csrf_token: String,
    pub headers: HeaderMap,
}

/// Authorize → (IdP) → callback with an ID token built by `id_token`
/// from the nonce the gateway sent. Returns the callback response.
pub async fn login_until_callback(
    gw: &Gateway,
    client_id: &str,
    challenge: &str,
    resource: &str,
    id_token: impl FnOnce(&str) -> String,
) -> Response {
    let response = gw.get(&authorize_uri(client_id, challenge, Some(resource))).await;
    assert_eq!(response.status(), StatusCode::FOUND, "authorize redirects to the IdP");
    let to_idp = location(&response);
    let nonce = query(&to_idp, "nonce").unwrap();
    let state = query(&to_idp, "state").unwrap();
    *gw.idp.state.last_authorize.lock().unwrap() = Some(to_idp);
    gw.idp.will_return(id_token(&nonce));
    gw.get(&format!("/oauth/callback?code=idp-code-1&state={state}")).await
}

pub async fn consent_page(response: Response) -> ConsentPage {
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = body_text(response).await;
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    ConsentPage { consent_id: field("consent_id"), csrf_token: field("csrf_token"), cookie, html, headers }
}

pub async fn post_consent(gw: &Gateway, page: &ConsentPage, decision: &str) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("consent_id", &page.consent_id)
        .append_pair("csrf_token", &page.csrf_token)
        .append_pair("decision", decision)
        .finish();
    gw.send(
        Request::post("/oauth/consent")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &page.cookie)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// The whole flow for `/mcp/echo`: returns the token response.
pub async fn full_login(gw: &Gateway, client_id: &str) -> Value {
    let (verifier, challenge) = pkce();
    let callback = login_until_callback(gw, client_id, &challenge, &format!("{PUBLIC_URL}/mcp/echo"), |nonce| {
        sign_id_token(&id_claims(nonce), "dummy")
    })
    .await;
    let page = consent_page(callback).await;
    let approved = post_consent(gw, &page, "approve").await;
    assert_eq!(approved.status(), StatusCode::FOUND);
    let code = query(&location(&approved), "code").unwrap();
    let response = gw
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
                ("client_id", client_id),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await
}

pub fn bearer(uri: &str, token: &str) -> axum::http::request::Builder {
    Request::post(uri).header(header::AUTHORIZATION, format!("Bearer {token}"))
}

/// A private `redis-server` on a free port, stopped on drop.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_with(port, &[])
    }

    /// On `port`, with more `redis-server` arguments (e.g. `--dir` to keep a
    /// dump between two servers).
    pub fn start_with(port: u16, args: &[&str]) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start redis-server ({err}); run scripts/test, which installs it"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, url: format!("redis://127.0.0.1:{port}/") }
    }
}

impl RedisServer {
    /// Sends `signal` (`STOP`, `CONT`, `KILL`...) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} redis-server failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A stopped server ignores nothing but SIGKILL; resume it anyway so
        // it does not linger as a stopped process.
        let _ = std::process::Command::new("kill").arg("-CONT").arg(self.child.id().to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
