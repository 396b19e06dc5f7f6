//! `cognigate`: provision Amazon Cognito for an MCP gateway.

use clap::Parser;
use cognigate::provision::{self, cli::Cli, error::ExitCode};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    init_logging(cli.global.verbose, cli.global.quiet, cli.global.color());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    match runtime.block_on(provision::run(cli)) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code().into()
        }
    }
}

/// Logs go to stderr. Our own crate gets the verbosity asked for; the AWS SDK
/// and HTTP stack stay at `warn` (aws-config at `error`: our own message explains
/// missing credentials) unless RUST_LOG says otherwise, because their
/// debug output can include response bodies, and those carry the client secret.
/// `--quiet` keeps errors only; `--no-color`/`NO_COLOR` turn off ANSI escapes.
fn init_logging(verbose: u8, quiet: bool, color: bool) {
    let level = match verbose {
        _ if quiet => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{},aws_config=error,cognigate={level}", if quiet { "error" } else { "warn" }))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
