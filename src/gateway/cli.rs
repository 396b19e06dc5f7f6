//! The `cognigate-gateway` program: its flags and environment variables, the
//! operator subcommands on the store (`revoke`, `rotate-key`), logging, the
//! runtime, and the exit codes (1: boot or configuration error, message on
//! stderr; 64: usage error). Flags become [`ServeOptions`] here, so the
//! options types stay private to the crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use super::audit::AuditTarget;
use super::client_address::Cidr;
use super::options::{OAuthOptions, SecurityOptions};
use super::server::ConnectionLimits;
use super::store::StoreUrl;
use super::telemetry::TraceSubject;
use super::{KeyRotation, ServeOptions, admin, serve};

const EXIT_BOOT: u8 = 1;
const EXIT_USAGE: u8 = 64;

/// MCP gateway: MCP clients log in through Amazon Cognito and reach upstream MCP servers.
#[derive(Debug, Parser)]
#[command(name = "cognigate-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory holding policies.json and routes.oas.json.
    #[arg(long, env = "COGNIGATE_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
    /// Env file whose variables `$env(NAME)` may use (the process environment
    /// wins over it). Default: `.env` when it exists.
    #[arg(long, env = "COGNIGATE_ENV_FILE")]
    env_file: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "COGNIGATE_LISTEN", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// URL clients reach the gateway at (issuer, resource URLs, IdP callback).
    /// Default: COGNIGATE_PUBLIC_URL from the env file (`cognigate up` writes
    /// it), else http://localhost:PORT for a loopback --listen.
    #[arg(long, env = "COGNIGATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// State store: sqlite:PATH, or redis[s]://[USER:PASSWORD@]HOST:PORT[/DB] for replicas
    /// sharing state (rediss: TLS; SSL_CERT_FILE names a private CA).
    #[arg(long, global = true, env = "COGNIGATE_STORE", default_value = "sqlite:cognigate-gateway.db", value_parser = parse_store)]
    store: StoreUrl,
    /// Serving threads (one per CPU by default); each has its own listener on the address.
    #[arg(long, env = "COGNIGATE_WORKERS")]
    workers: Option<usize>,
    /// Serve /metrics on this address only (e.g. 127.0.0.1:9100), not on --listen.
    #[arg(long, env = "COGNIGATE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Origin a browser-based MCP client may call from besides the public URL's
    /// (e.g. http://localhost:6274 for MCP Inspector); repeat or comma-separate.
    #[arg(long = "allowed-origin", env = "COGNIGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Reverse proxy (IP or CIDR) whose X-Forwarded-For is believed; repeat or comma-separate.
    #[arg(long = "trusted-proxy", env = "COGNIGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<Cidr>,
    /// Time a client has to send request headers (and to start its next request
    /// on an idle keep-alive connection).
    #[arg(long, env = "COGNIGATE_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// Connections kept open at once; more are closed on accept.
    #[arg(long, env = "COGNIGATE_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Dynamic client registrations per client IP per minute.
    #[arg(long, env = "COGNIGATE_REGISTER_RATE", default_value_t = 20)]
    register_rate: u64,
    /// Authorization requests per client IP per minute (and, counted apart,
    /// device authorization requests).
    #[arg(long, env = "COGNIGATE_AUTHORIZE_RATE", default_value_t = 120)]
    authorize_rate: u64,
    /// Logins one client may have pending at the identity provider at once.
    #[arg(long, env = "COGNIGATE_PENDING_LOGINS_PER_CLIENT", default_value_t = 50)]
    pending_logins_per_client: u64,
    /// A registration never used for a login this long is deleted.
    #[arg(long, env = "COGNIGATE_UNUSED_REGISTRATION_TTL", default_value = "7d", value_parser = parse_duration)]
    unused_registration_ttl: Duration,
    /// A refresh-token family ends this long after its login, however often it rotates.
    #[arg(long, env = "COGNIGATE_REFRESH_FAMILY_LIFETIME", default_value = "30d", value_parser = parse_duration)]
    refresh_family_lifetime: Duration,
    /// Seconds during which a refresh token presented again by the same client
    /// gets the same new tokens as the first time (two sessions refreshing at
    /// once), instead of revoking its grant. 0 turns the grace off; at most 60.
    #[arg(long, env = "COGNIGATE_REFRESH_GRACE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=60))]
    refresh_grace_seconds: u64,
    /// A refresh whose login last checked the user at Cognito longer ago than
    /// this asks Cognito again (with Cognito's refresh token of the login) and
    /// fails for a disabled or deleted user; it bounds how long such a user
    /// keeps getting tokens. 0 checks on every refresh.
    #[arg(long, env = "COGNIGATE_IDP_RECHECK_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    idp_recheck_interval: Duration,
    /// How long a device login (`mcp-remote --device-code` and other clients
    /// without a browser) waits for the user to approve it.
    #[arg(long, env = "COGNIGATE_DEVICE_CODE_LIFETIME", default_value = "10m", value_parser = parse_duration)]
    device_code_lifetime: Duration,
    /// Hosts whose URLs MCP clients may use as client ids (Client ID Metadata
    /// Documents), comma-separated. Default: any public host.
    #[arg(long, env = "COGNIGATE_CLIENT_ID_HOSTS", value_delimiter = ',')]
    client_id_hosts: Vec<String>,
    /// Lets client-id documents be fetched from loopback and private
    /// addresses (refused by default: the gateway would fetch inside your network).
    #[arg(long, env = "COGNIGATE_CLIENT_ID_PRIVATE_ADDRESSES")]
    client_id_private_addresses: bool,
    /// How long to wait for an upstream's response headers before answering
    /// 502 (a JSON-mode `tools/call` answers only when the tool is done).
    #[arg(long, env = "COGNIGATE_UPSTREAM_TIMEOUT", default_value = "300s", value_parser = humantime::parse_duration)]
    upstream_timeout: Duration,
    /// After SIGTERM, how long open requests and streams get to finish
    /// before they are closed and the process exits.
    #[arg(long, env = "COGNIGATE_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Audit log of MCP requests, one JSON line each: `stdout` or a file path
    /// (appended, created 0600). Off by default; when on, every MCP POST body
    /// is read to name its method and tool.
    #[arg(long, env = "COGNIGATE_AUDIT_LOG", value_parser = parse_audit)]
    audit_log: Option<AuditTarget>,
    /// A new signing key every this long (e.g. 30d, 7d); `off` or 0: only
    /// with `rotate-key`. Retired keys keep verifying until their tokens expire.
    #[arg(long, env = "COGNIGATE_SIGNING_KEY_ROTATION", default_value = "30d", value_parser = parse_rotation)]
    signing_key_rotation: Rotation,
    /// What traces say about the user: `hashed` (SHA-256 of the subject,
    /// as enduser.pseudo.id), `plain` (enduser.id) or `off`. Traces are
    /// exported when OTEL_EXPORTER_OTLP_ENDPOINT is set (see README, Traces).
    #[arg(long, env = "COGNIGATE_TRACE_SUBJECT", value_enum, default_value = "hashed")]
    trace_subject: TraceSubject,
    /// How long a retired signing key stays published after the longest token
    /// it signed can have expired (clock skew, replicas switching, upstream JWKS caches).
    #[arg(long, env = "COGNIGATE_SIGNING_KEY_GRACE", default_value = "10m", value_parser = parse_duration)]
    signing_key_grace: Duration,
}

/// `--signing-key-rotation`: an interval, or off.
#[derive(Debug, Clone, Copy)]
struct Rotation(Option<Duration>);

/// Operator commands on the store (without one, the gateway serves).
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Revoke a user's or a client's grants: their refresh tokens and the
    /// access tokens those issued (running replicas refuse them within
    /// seconds). With --client, the registration is deleted too.
    Revoke {
        /// The user's subject (the Cognito `sub`; the gateway logs it at each sign-in).
        #[arg(long = "sub", required_unless_present_any = ["client", "user"], conflicts_with = "user")]
        sub: Option<String>,
        /// The user's e-mail or username, as the gateway saw them at sign-in.
        #[arg(long, value_name = "EMAIL_OR_USERNAME")]
        user: Option<String>,
        /// The client id the gateway gave the MCP client at registration.
        #[arg(long)]
        client: Option<String>,
    },
    /// List the upstream accounts a user has connected (mcp-token-exchange-inbound),
    /// or disconnect one: its grant is deleted and, where the upstream offers
    /// it, revoked there too (RFC 7009).
    Connections {
        /// The user's subject (the Cognito `sub`).
        #[arg(long = "sub", required_unless_present = "user", conflicts_with = "user")]
        sub: Option<String>,
        /// The user's e-mail or username, as the gateway saw them when they connected.
        #[arg(long, value_name = "EMAIL_OR_USERNAME")]
        user: Option<String>,
        /// Disconnect the user from this upstream (the policy's `id`, else its name).
        #[arg(long, value_name = "UPSTREAM")]
        disconnect: Option<String>,
    },
    /// Make a new signing key current now (e.g. after a suspected leak). The
    /// old key keeps verifying tokens it signed until they expire; running
    /// replicas switch within seconds. Prints the new key id, never the key.
    RotateKey {
        /// Withdraw every older key at once (after a leak): tokens they signed
        /// are refused within seconds, and clients refresh or log in again.
        #[arg(long)]
        retire_previous: bool,
    },
}

fn parse_audit(value: &str) -> Result<AuditTarget, String> {
    value.parse()
}

fn parse_rotation(value: &str) -> Result<Rotation, String> {
    match value.trim() {
        "off" | "0" => Ok(Rotation(None)),
        other => match humantime::parse_duration(other) {
            Ok(every) if every.is_zero() => Ok(Rotation(None)),
            Ok(every) => Ok(Rotation(Some(every))),
            Err(_) => Err(format!("`{value}` is not a duration; use e.g. 30d, 7d, 12h, or `off`")),
        },
    }
}

fn parse_store(value: &str) -> Result<StoreUrl, String> {
    value.parse()
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|_| format!("`{value}` is not a duration; use e.g. 30s, 15m, 7d"))
}

/// Parses the command line, then runs a subcommand or serves until SIGTERM.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // NO_COLOR (no-color.org): no escapes even on a terminal.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();

    if let Some(Command::Connections { sub, user, disconnect }) = &cli.command {
        return crate::gateway::upstream_oauth::cli::connections(
            &cli.store,
            &cli.config_dir,
            cli.env_file.as_deref(),
            sub.as_deref(),
            user.as_deref(),
            disconnect.as_deref(),
        );
    }
    if let Some(Command::Revoke { sub, user, client }) = &cli.command {
        let target =
            admin::RevokeTarget { subject: sub.as_deref(), user: user.as_deref(), client_id: client.as_deref() };
        let upstream = if sub.is_some() || user.is_some() {
            crate::gateway::upstream_oauth::cli::revoke_upstream_grants(
                &cli.store,
                &cli.config_dir,
                cli.env_file.as_deref(),
                sub.as_deref(),
                user.as_deref(),
            )
        } else {
            Ok(None)
        };
        let upstream = match upstream {
            Ok(upstream) => upstream,
            Err(err) => {
                eprintln!("cognigate-gateway revoke: {err}");
                return ExitCode::from(EXIT_BOOT);
            }
        };
        return match admin::revoke(&cli.store, &target) {
            Ok(revoked) if revoked.matched_nothing() && upstream.is_none() => {
                eprintln!(
                    "cognigate-gateway revoke: warning: nothing matched: the store holds no login of that user or client, and no such registration; nothing was revoked. Check the value, and that --store is the gateway's own store"
                );
                ExitCode::from(EXIT_BOOT)
            }
            Ok(revoked) => {
                println!(
                    "revoked: user(s) {}; {} access token(s) refused from now on{}{}",
                    if revoked.subjects.is_empty() { "none".to_owned() } else { revoked.subjects.join(", ") },
                    revoked.access_tokens,
                    if revoked.client_deleted { "; client registration deleted" } else { "" },
                    upstream.unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("cognigate-gateway revoke: {err}");
                ExitCode::from(EXIT_BOOT)
            }
        };
    }
    if let Some(Command::RotateKey { retire_previous }) = &cli.command {
        return match admin::rotate_key(&cli.store, *retire_previous) {
            Ok(rotated) => {
                println!(
                    "signing key rotated: new kid {}{}; {} key(s) in use{} (replicas switch within seconds)",
                    rotated.kid,
                    rotated.previous.map(|kid| format!(" (replaces {kid})")).unwrap_or_default(),
                    rotated.keys,
                    if *retire_previous { ", older keys withdrawn" } else { "" }
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("cognigate-gateway rotate-key: {err}");
                ExitCode::from(EXIT_BOOT)
            }
        };
    }
    let env_file = match cli.env_file {
        Some(path) if !path.is_file() => {
            eprintln!(
                "cognigate-gateway: env file {} does not exist. Fix: run cognigate up, or pass --env-file",
                path.display()
            );
            return ExitCode::from(EXIT_BOOT);
        }
        Some(path) => Some(path),
        None => Some(PathBuf::from(".env")).filter(|path| path.is_file()),
    };
    let options = ServeOptions {
        config_dir: cli.config_dir,
        env_file,
        listen: cli.listen,
        public_url: cli.public_url,
        store: cli.store,
        workers: cli.workers,
        security: SecurityOptions {
            allowed_origins: cli.allowed_origins.iter().map(|o| o.trim().trim_end_matches('/').to_owned()).collect(),
            trusted_proxies: cli.trusted_proxies,
            register_per_minute: cli.register_rate,
            authorize_per_minute: cli.authorize_rate,
            pending_logins_per_client: cli.pending_logins_per_client,
            unused_registration_ttl: cli.unused_registration_ttl,
            refresh_family_lifetime: cli.refresh_family_lifetime,
            ..SecurityOptions::default()
        },
        metrics_listen: cli.metrics_listen,
        limits: ConnectionLimits { header_read_timeout: cli.header_timeout, max_connections: cli.max_connections },
        oauth: OAuthOptions {
            refresh_grace: std::time::Duration::from_secs(cli.refresh_grace_seconds),
            idp_recheck_interval: cli.idp_recheck_interval,
            // COGNIGATE_STORE_KEY is read with the env file at boot.
            store_key: None,
            device_code_lifetime: cli.device_code_lifetime,
            client_id_hosts: cli
                .client_id_hosts
                .into_iter()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect(),
            client_id_private_addresses: cli.client_id_private_addresses,
            // Like curl and OpenSSL-based tools: extra roots for client-id
            // documents served with a private CA.
            extra_roots: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
        },
        upstream_timeout: cli.upstream_timeout,
        shutdown_grace: cli.shutdown_grace,
        audit_log: cli.audit_log,
        key_rotation: KeyRotation { every: cli.signing_key_rotation.0, grace: cli.signing_key_grace },
        trace_subject: cli.trace_subject,
    };
    // The main thread serves too, on a single-threaded runtime like the other
    // serving threads `serve` starts.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cognigate-gateway: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_BOOT);
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cognigate-gateway: {err}");
            ExitCode::from(EXIT_BOOT)
        }
    }
}
