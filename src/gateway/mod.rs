//! The `cognigate-gateway` server: boots from the env file and `config/`, runs
//! the OAuth 2.1 authorization server for MCP clients and proxies
//! `/mcp/{slug}` to upstream MCP servers.
//!
//! Data flow: [`config`] (files → validated routes and policies) → [`state`]
//! (runtime objects: store, signing key, HTTP clients) → [`router`]:
//! [`oauth`] (the authorization server and the IdP leg in [`oidc`]) and
//! [`proxy`]. [`store`] holds what outlives a request ([`sealing`] encrypts
//! what it keeps of the identity provider); [`tokens`] the gateway's own
//! access tokens; [`metrics`] the Prometheus counters;
//! [`audit`] the one-line-per-MCP-request audit log. [`main`] is the
//! `cognigate-gateway` program: its flags and subcommands are in `cli`.

pub(crate) mod admin;
pub(crate) mod aggregate;
pub(crate) mod audit;
pub(crate) mod claims;
mod cli;
pub(crate) mod client_address;
pub(crate) mod clients;
pub(crate) mod config;
mod cors;
pub(crate) mod crypto;
pub(crate) mod jsonrpc;
pub(crate) mod keyring;
pub(crate) mod metrics;
pub(crate) mod oauth;
mod oauth_error;
pub(crate) mod oidc;
pub(crate) mod options;
mod pages;
pub(crate) mod policy;
pub(crate) mod proxy;
pub(crate) mod registry;
pub(crate) mod sealing;
pub(crate) mod security;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod telemetry;
pub(crate) mod tokens;
pub(crate) mod upstream_oauth;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::contract;
use store::StoreUrl;

// The program the binary runs, and what the integration tests drive: the
// router over a state built from a config directory and a store, and the
// serving loop with its connection limits. Everything else stays in the crate.
pub use self::{
    cli::main,
    client_address::Cidr,
    config::{GatewayConfig, env::Env, error::ConfigError},
    keyring::{KeyRingError, KeyRotation},
    options::{OAuthOptions, SecurityOptions},
    server::{ConnectionLimits, serve_listener},
    state::{AppState, StateError},
    store::{StoreError, StoreHandle, now, redis::RedisStore, sqlite::SqliteStore},
    telemetry::{SamplerChoice, TelemetryError, TraceSettings, TraceSubject, Tracing},
    tokens::TokenError,
};

/// How often expired rows are deleted and revocations re-read from the store.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// The gateway's HTTP surface.
pub fn router(state: AppState) -> Router {
    let mut endpoints = Router::new().route("/healthz", get(|| async { "ok" }));
    if !state.security.metrics_separate {
        endpoints = endpoints.route("/metrics", get(metrics_text));
    }
    let endpoints = endpoints
        .route(registry::REGISTRY_PATH, get(registry::servers))
        .route(registry::ZUPLO_REGISTRY_PATH, get(registry::servers))
        .merge(oauth::routes())
        .merge(upstream_oauth::connect::routes())
        .layer(middleware::from_fn_with_state(state.clone(), oauth::limit_client_id_fetches))
        .layer(middleware::from_fn_with_state(state.clone(), security::guard))
        .layer(middleware::from_fn(cors::cors))
        .layer(middleware::from_fn_with_state(state.clone(), observe));
    // The proxy route records its own metrics and CORS (see `proxy::proxy`).
    Router::new().route("/mcp/{slug}", any(proxy::proxy)).merge(endpoints).with_state(state)
}

/// `/metrics` alone, for `--metrics-listen` (an address only the scraper reaches).
pub(crate) fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(state)
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    text.push_str(&upstream_oauth::render_metrics(upstream_oauth::connect::upstreams(&state).into_iter()));
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Records metrics and logs one line per request: method, path (never the
/// query: it carries codes and state), status, latency. Allocates nothing
/// unless debug logging is on.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let logged =
        tracing::enabled!(tracing::Level::DEBUG).then(|| (request.method().clone(), request.uri().path().to_owned()));
    let label =
        metrics::label(request.uri().path(), |slug| state.routes.get(slug).map(|route| route.route.path.as_str()));
    let response = match &state.tracing {
        None => next.run(request).await,
        // Boxed: off the path of a gateway without traces.
        Some(tracing) => Box::pin(telemetry::within_request_span(tracing, label, request, next)).await,
    };
    let elapsed = started.elapsed();
    state.metrics.record(label, response.status().as_u16(), elapsed);
    if let Some((method, path)) = logged {
        tracing::debug!(%method, %path, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    }
    response
}

/// What the command line (`cli`) passes in.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    pub(crate) config_dir: PathBuf,
    /// `None`: no env file (process environment only).
    pub(crate) env_file: Option<PathBuf>,
    pub(crate) listen: SocketAddr,
    /// `None`: `http://localhost:{port}` for a loopback or unspecified listen
    /// address (matching the callback URL `cognigate up` registers),
    /// `http://{listen}` otherwise.
    pub(crate) public_url: Option<String>,
    pub(crate) store: StoreUrl,
    /// Serving threads, each with its own single-threaded runtime and listener
    /// (SO_REUSEPORT); `None`: one per CPU.
    pub(crate) workers: Option<usize>,
    pub(crate) security: security::SecurityOptions,
    /// Serve `/metrics` here instead of on `listen`.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Header deadline and the connection cap, for the whole process (the
    /// cap is shared out between the serving threads).
    pub(crate) limits: server::ConnectionLimits,
    /// The authorization server's options (refresh grace, client-id documents).
    pub(crate) oauth: OAuthOptions,
    /// Waiting longer than this for an upstream's response headers is a 502.
    pub(crate) upstream_timeout: Duration,
    /// After SIGTERM, open requests and streams (SSE) get this long to finish.
    pub(crate) shutdown_grace: Duration,
    /// Where the audit log goes; `None`: no audit log.
    pub(crate) audit_log: Option<audit::AuditTarget>,
    /// When the signing key rotates and how long retired keys are kept.
    pub(crate) key_rotation: KeyRotation,
    /// What traces say about the user (traces are on when `OTEL_*` says so).
    pub(crate) trace_subject: telemetry::TraceSubject,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BootError {
    #[error(transparent)]
    Env(#[from] config::EnvFileError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}. Fix: choose a free address with --listen")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Audit(String),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
}

pub(crate) fn default_public_url(listen: SocketAddr) -> String {
    if listen.ip().is_loopback() || listen.ip().is_unspecified() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}

/// Loads the config, opens the store and builds the state (blocking).
pub(crate) fn boot(options: &ServeOptions) -> Result<AppState, BootError> {
    let env = Env::from_file_and_process(options.env_file.as_deref())?;
    let config = GatewayConfig::load(&options.config_dir, &env)?;
    let store = store::StoreHandle::new(options.store.open()?);
    let public_url = public_url(options, &env);
    let mut security = options.security.clone();
    security.loopback_only |= options.listen.ip().is_loopback();
    security.metrics_separate |= options.metrics_listen.is_some();
    let audit = options.audit_log.as_ref().map(audit::AuditLog::open).transpose().map_err(BootError::Audit)?;
    let mut oauth = options.oauth.clone();
    if oauth.store_key.is_none() {
        oauth.store_key = env.get(oauth::STORE_KEY_VAR).filter(|key| !key.is_empty()).map(crate::secret::Secret::new);
    }
    let settings = telemetry::TraceSettings::from_env(|name| env.get(name).map(str::to_owned), options.trace_subject)?;
    let tracing = settings.as_ref().map(telemetry::Tracing::start).transpose()?;
    if let Some(settings) = &settings {
        tracing::info!(
            endpoint = %settings.endpoint_for_log(),
            sampler = ?settings.sampler,
            service_name = %settings.service_name,
            subject = ?settings.subject,
            "traces exported over OTLP"
        );
    }
    Ok(AppState::build_with(config, &public_url, store, oauth)?
        .with_security(security)
        .with_audit(audit)
        .with_key_rotation(options.key_rotation)
        .with_tracing(tracing.map(std::sync::Arc::new)))
}

/// The URL clients reach the gateway at: `--public-url`, else the one `cognigate
/// up` wrote to the env file (so the callback sent to Cognito is the one it
/// has), else `http://localhost:PORT`. A `--public-url` that differs from the
/// env file's wins, with a warning: Cognito will refuse its callback unless
/// the app client lists it too.
fn public_url(options: &ServeOptions, env: &Env) -> String {
    let from_env_file = env.get(contract::env_keys::PUBLIC_URL).map(|url| url.trim().trim_end_matches('/'));
    match (&options.public_url, from_env_file) {
        (Some(flag), Some(written)) if !written.is_empty() && flag.trim_end_matches('/') != written => {
            let callback = contract::callback_url(flag);
            tracing::warn!(
                public_url = %flag,
                env_file_public_url = %written,
                "--public-url differs from the env file's {}: the Cognito app client must list {callback} as a \
                 callback URL, or the login fails with redirect_mismatch. Fix: cognigate up --gateway-url {}",
                contract::env_keys::PUBLIC_URL,
                flag.trim_end_matches('/'),
            );
            flag.clone()
        }
        (Some(flag), _) => flag.clone(),
        (None, Some(written)) if !written.is_empty() => written.to_owned(),
        (None, _) => default_public_url(options.listen),
    }
}

/// Boots and serves until SIGTERM or Ctrl-C.
pub(crate) async fn serve(options: ServeOptions) -> Result<(), BootError> {
    let boot_options = options.clone();
    let state = tokio::task::spawn_blocking(move || boot(&boot_options))
        .await
        .map_err(|err| BootError::Serve(std::io::Error::other(err.to_string())))??;
    let workers = options.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let mut listeners =
        bind_listeners(options.listen, workers).map_err(|source| BootError::Bind { addr: options.listen, source })?;
    let local = listeners[0].local_addr().map_err(BootError::Serve)?;
    let metrics_listener = match options.metrics_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| BootError::Bind { addr, source })?)
        }
        None => None,
    };
    log_ready(&state, local, workers);
    proxy::set_upstream_timeout(options.upstream_timeout);
    spawn_maintenance(state.clone());

    let app = server::App::with_proxy(router(state.clone()), state.clone());
    let limits = server::ConnectionLimits {
        max_connections: options.limits.max_connections.div_ceil(workers).max(1),
        ..options.limits
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let first = listeners.remove(0);
    let finished = spawn_workers(listeners, &app, limits, &stop_rx)?;
    if let Some(listener) = metrics_listener {
        tracing::info!(metrics_listen = ?listener.local_addr().ok(), "metrics served on their own address");
        let metrics_limits = server::ConnectionLimits { max_connections: 64, ..limits };
        tokio::spawn(server::serve_listener(listener, metrics_router(state.clone()), metrics_limits, stop_rx.clone()));
    }
    let listener = tokio::net::TcpListener::from_std(first).map_err(BootError::Serve)?;
    let server = server::serve_app(listener, app, limits, stop_rx);
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(BootError::Serve),
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: no new connections; waiting for open requests");
    let _ = stop_tx.send(true);
    let drained = drain(server, finished, options.shutdown_grace).await;
    if let Some(tracing) = state.tracing.clone() {
        // The spans of the last requests, before the process ends.
        let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
    }
    drained
}

fn log_ready(state: &AppState, local: SocketAddr, workers: usize) {
    let mut routes: Vec<&str> = state.routes.values().map(|r| r.route.path.as_str()).collect();
    routes.sort_unstable();
    tracing::info!(listen = %local, public_url = %state.public_url, ?routes, workers, "cognigate-gateway ready");
}

/// Thread per core, as nginx's worker processes: each extra thread runs its
/// own single-threaded runtime on its own listener, so a request, its
/// upstream call and their wake-ups stay on one core. Measured on 2 cores: a
/// shared 2-thread runtime served fewer requests/s than a single thread.
/// Returns, per thread, a receiver that completes when the thread is done.
fn spawn_workers(
    listeners: Vec<std::net::TcpListener>,
    app: &server::App,
    limits: server::ConnectionLimits,
    stop_rx: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::sync::oneshot::Receiver<()>>, BootError> {
    let mut finished = Vec::new();
    for listener in listeners {
        let (app, stop_rx) = (app.clone(), stop_rx.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        finished.push(done_rx);
        std::thread::Builder::new()
            .name("gateway-worker".into())
            .spawn(move || {
                serve_on_this_thread(listener, app, limits, stop_rx);
                let _ = done_tx.send(());
            })
            .map_err(BootError::Serve)?;
    }
    Ok(finished)
}

/// One serving thread: its own current-thread runtime, until the stop flag.
fn serve_on_this_thread(
    listener: std::net::TcpListener,
    app: server::App,
    limits: server::ConnectionLimits,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return tracing::error!(error = %err, "cannot start a serving thread"),
    };
    runtime.block_on(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                if let Err(err) = server::serve_app(listener, app, limits, stop_rx).await {
                    tracing::error!(error = %err, "serving thread failed");
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot register a listener"),
        }
    });
}

/// Waits for the main server and every serving thread to finish their open
/// requests, up to `grace`; streams still open then are closed.
async fn drain(
    server: impl std::future::Future<Output = std::io::Result<()>>,
    finished: Vec<tokio::sync::oneshot::Receiver<()>>,
    grace: Duration,
) -> Result<(), BootError> {
    let all_done = async {
        let result = server.await;
        for done in finished {
            let _ = done.await;
        }
        result
    };
    match tokio::time::timeout(grace, all_done).await {
        Ok(result) => result.map_err(BootError::Serve),
        Err(_) => {
            tracing::warn!(grace_seconds = grace.as_secs_f64(), "open streams did not finish; closing them");
            Ok(())
        }
    }
}

/// `count` listeners on one address with SO_REUSEPORT, so the kernel spreads
/// connections over the serving threads. Port 0 is resolved by the probe.
///
/// SO_REUSEPORT would also let a second gateway of the same user join the
/// address and take half the connections, silently: a probe bound without it
/// first fails when anything already listens there.
fn bind_listeners(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let socket = |addr: SocketAddr, reuse_port: bool| -> std::io::Result<tokio::net::TcpSocket> {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(reuse_port)?;
        socket.bind(addr)?;
        Ok(socket)
    };
    // Bound, never listening: it takes no connection before it is dropped.
    let probe = socket(addr, false).map_err(|err| match err.kind() {
        std::io::ErrorKind::AddrInUse => std::io::Error::new(
            err.kind(),
            "another process already listens on it (a gateway started twice?): stop that one first",
        ),
        _ => err,
    })?;
    let actual = probe.local_addr()?;
    drop(probe);
    (0..count).map(|_| socket(actual, count > 1)?.listen(1024)?.into_std()).collect()
}

/// One key-ring tick on the blocking pool (see `AppState::sync_signing_keys`).
async fn sync_signing_keys(state: &AppState) {
    let ticking = state.clone();
    match tokio::task::spawn_blocking(move || ticking.sync_signing_keys()).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot sync the signing keys with the store"),
        Err(err) => tracing::warn!(error = %err, "signing-key sync task failed"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Background upkeep: delete expired rows; mirror revocations made elsewhere
/// (other replicas sharing the store) into memory; keep the signing-key ring
/// (rotation, retirement, write-back after a store lost it) and follow it.
fn spawn_maintenance(state: AppState) {
    tokio::spawn(async move {
        let mut sync = tokio::time::interval(REVOCATION_SYNC_INTERVAL);
        let mut last_sweep = Instant::now();
        loop {
            sync.tick().await;
            let started = store::now();
            let mirror = state.clone();
            match state.store.run(move |store| mirror.revocations.sync(store, started)).await {
                Ok(synced) if synced.restarted => tracing::warn!(
                    read = synced.read,
                    "the store's revocation log started again (a Redis without persistence restarted?); re-read it whole"
                ),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot read revocations from the store"),
            }
            sync_signing_keys(&state).await;
            if last_sweep.elapsed() >= SWEEP_INTERVAL {
                last_sweep = Instant::now();
                match state.store.run(move |store| store.sweep(started)).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "expired rows deleted"),
                    Err(err) => tracing::warn!(error = %err, "store sweep failed"),
                }
                let unused_before = started - state.security.unused_registration_ttl.as_secs() as i64;
                match state.store.run(move |store| store.expire_unused_clients(unused_before)).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "registrations never used for a login deleted"),
                    Err(err) => tracing::warn!(error = %err, "cannot delete unused registrations"),
                }
            }
        }
    });
}

/// An error and its sources on one line: the top-level message of an HTTP
/// client error alone says little ("client error (Connect)"), the cause says
/// what to fix.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
