//! `cognigate-gateway`: the MCP gateway. Parses flags, hands them to
//! `cognigate::gateway::serve`, maps failures to exit codes (1: boot or
//! configuration error, message on stderr; 64: usage error).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cognigate::gateway::audit::AuditTarget;
use cognigate::gateway::{OAuthOptions, ServeOptions, StoreUrl, serve};

const EXIT_BOOT: u8 = 1;
const EXIT_USAGE: u8 = 64;

/// MCP gateway: MCP clients log in through Amazon Cognito and reach upstream MCP servers.
#[derive(Debug, Parser)]
#[command(name = "cognigate-gateway", version)]
struct Cli {
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
    /// State store: sqlite:PATH, or redis://HOST:PORT[/DB] for replicas sharing state.
    #[arg(long, env = "COGNIGATE_STORE", default_value = "sqlite:cognigate-gateway.db", value_parser = parse_store)]
    store: StoreUrl,
    /// Serving threads (one per CPU by default); each has its own listener on the address.
    #[arg(long, env = "COGNIGATE_WORKERS")]
    workers: Option<usize>,
    /// Seconds during which a refresh token presented again by the same client
    /// gets the same new tokens as the first time (two sessions refreshing at
    /// once), instead of revoking its grant. 0 turns the grace off; at most 60.
    #[arg(long, env = "COGNIGATE_REFRESH_GRACE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=60))]
    refresh_grace_seconds: u64,
    /// Hosts whose URLs MCP clients may use as client ids (Client ID Metadata
    /// Documents), comma-separated. Default: any public host.
    #[arg(long, env = "COGNIGATE_CLIENT_ID_HOSTS", value_delimiter = ',')]
    client_id_hosts: Vec<String>,
    /// Lets client-id documents be fetched from loopback and private
    /// addresses (refused by default: the gateway would fetch inside your network).
    #[arg(long, env = "COGNIGATE_CLIENT_ID_PRIVATE_ADDRESSES")]
    client_id_private_addresses: bool,
    /// Audit log of MCP requests, one JSON line each: `stdout` or a file path
    /// (appended, created 0600). Off by default; when on, every MCP POST body
    /// is read to name its method and tool.
    #[arg(long, env = "COGNIGATE_AUDIT_LOG", value_parser = parse_audit)]
    audit_log: Option<AuditTarget>,
}

fn parse_audit(value: &str) -> Result<AuditTarget, String> {
    value.parse()
}

fn parse_store(value: &str) -> Result<StoreUrl, String> {
    value.parse()
}

fn main() -> ExitCode {
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
        oauth: OAuthOptions {
            refresh_grace: std::time::Duration::from_secs(cli.refresh_grace_seconds),
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
        audit_log: cli.audit_log,
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
