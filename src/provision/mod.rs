//! The `cognigate` CLI: desired state → plan → apply → rendered outputs.
//!
//! Data flow: [`cli`] (clap) and [`settings`] (flags over `cognigate.toml`)
//! produce a validated [`spec::StackSpec`]; [`state`] reads what exists through
//! [`cognito`]; [`plan`] diffs the two; [`apply`] executes the plan in
//! dependency order; [`render`] writes the env file and the policies stanza.
//! [`commands`] holds one file per subcommand.

pub mod apply;
pub mod cli;
pub mod cognito;
pub mod commands;
pub mod error;
pub mod plan;
pub mod progress;
pub mod render;
pub mod report;
pub mod settings;
pub mod spec;
pub mod state;
pub mod teardown;
pub mod validate;

use cli::{Cli, Command};
use error::Result;

/// Runs a parsed command line; `Ok(code)` is the exit code of a command that
/// succeeded but reports something through it (`plan --detailed-exitcode`).
pub async fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Up(args) => commands::up::run(&cli.global, args).await.map(|()| 0),
        Command::Plan(args) => commands::plan::run(&cli.global, args).await,
        Command::Outputs(args) => commands::outputs::run(&cli.global, args).await.map(|()| 0),
        Command::RotateSecret(args) => commands::rotate_secret::run(&cli.global, args).await.map(|()| 0),
        Command::Destroy(args) => commands::destroy::run(&cli.global, args).await.map(|()| 0),
        Command::Gc(args) => commands::gc::run(&cli.global, args).await.map(|()| 0),
        Command::Doctor(args) => commands::doctor::run(&cli.global, args).await,
        Command::Export(args) => commands::export::run(&cli.global, args).await.map(|()| 0),
        Command::Completions(args) => commands::shell::completions(args.shell).map(|()| 0),
        Command::Man => commands::shell::man().map(|()| 0),
    }
}
