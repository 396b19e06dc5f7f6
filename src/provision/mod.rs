//! The `cognigate` CLI: desired state → plan → apply → rendered outputs.
//!
//! Data flow: [`cli`] (clap) and [`settings`] (flags over `cognigate.toml`)
//! produce a validated [`spec::StackSpec`]; [`state`] reads what exists through
//! [`cognito`]; [`plan`] diffs the two; [`apply`] executes the plan in
//! dependency order; [`render`] writes the env file and the policies stanza.
//! [`commands`] holds one file per subcommand.

pub(crate) mod apply;
pub mod cli;
pub(crate) mod cognito;
pub(crate) mod commands;
pub mod error;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod settings;
pub(crate) mod spec;
pub(crate) mod state;
pub(crate) mod teardown;
pub(crate) mod validate;

use cli::{Cli, Command};
use error::{ExitCode, Result};

/// Runs a parsed command line; `Ok(code)` is the exit code of a command that
/// succeeded but reports something through it (`plan --detailed-exitcode`).
pub async fn run(cli: Cli) -> Result<ExitCode> {
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
    }
}
