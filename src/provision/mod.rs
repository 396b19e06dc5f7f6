//! The `cognigate` CLI: desired state → plan → apply → rendered outputs.
//!
//! Data flow: [`cli`] (clap) and [`settings`] (flags over `cognigate.toml`)
//! produce a validated [`spec::StackSpec`]; [`state`] reads what exists through
//! [`cognito`]; [`plan`] diffs the two; [`apply`] executes the plan in
//! dependency order; [`render`] writes the env file and the policies stanza.
//! [`commands`] holds one file per subcommand. [`main`] is the whole program:
//! the binary only calls it.

pub(crate) mod apply;
pub(crate) mod cli;
pub(crate) mod cognito;
pub(crate) mod commands;
pub(crate) mod error;
pub(crate) mod guard;
pub(crate) mod plan;
pub(crate) mod profile;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod settings;
pub(crate) mod spec;
pub(crate) mod state;
pub(crate) mod stdout;
pub(crate) mod teardown;
pub(crate) mod validate;

use cli::{Cli, Command};
use error::{ExitCode, Result};
use tracing_subscriber::EnvFilter;

/// Parses the command line, runs the command and maps the outcome to the
/// process exit code (64 for bad input, 1 for a failure, see [`ExitCode`]).
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::parse_as_the_aws_cli_would() {
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
    match runtime.block_on(run(cli)) {
        Ok(_) if stdout::failed() => ExitCode::Failure.into(),
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

/// Runs a parsed command line; `Ok(code)` is the exit code of a command that
/// succeeded but reports something through it (`plan --detailed-exitcode`).
async fn run(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    progress::configure(global.color(), global.quiet);
    let done = |()| ExitCode::Success;
    match &cli.command {
        Command::Up(args) => commands::up::run(global, args).await.map(done),
        Command::Plan(args) => commands::plan::run(global, args).await,
        Command::Outputs(args) => commands::outputs::run(global, args).await.map(done),
        Command::RotateSecret(args) => commands::rotate_secret::run(global, args).await.map(done),
        Command::Destroy(args) => commands::destroy::run(global, args).await.map(done),
        Command::Gc(args) => commands::gc::run(global, args).await.map(done),
        Command::Doctor(args) => commands::doctor::run(global, args).await,
        Command::Export(args) => commands::export::run(global, args).await.map(done),
        Command::Completions(args) => commands::shell::completions(args.shell).map(done),
        Command::Man => commands::shell::man().map(done),
        Command::User(command) => commands::user::run(global, command).await.map(done),
        Command::Client(command) => commands::client::run(global, command).await.map(done),
    }
}
