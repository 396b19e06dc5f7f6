//! `cognigate-gateway`: the MCP gateway. Parses flags, hands them to
//! `cognigate::gateway::serve`, maps failures to exit codes (1: boot or
//! configuration error, message on stderr; 64: usage error).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cognigate::gateway::audit::AuditTarget;
use cognigate::gateway::{ServeOptions, StoreUrl, serve};

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
        upstream_timeout: cli.upstream_timeout,
        shutdown_grace: cli.shutdown_grace,
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
