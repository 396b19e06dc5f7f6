//! One file per subcommand; each reads settings, talks to Cognito through
//! `cognito`, and prints through `report`.

pub mod destroy;
pub mod gc;
pub mod up;

use std::path::Path;

use super::cli::GlobalArgs;
use super::cognito::{Cognito, resolve_region};
use super::error::Result;
use super::render;
use super::settings::{self, AwsTarget, SettingsFile};
use super::spec::StackSpec;
use super::state::Hint;
use super::cli::StackArgs;

/// Settings file + flags → validated spec and a connected client. Input is
/// validated before credentials are looked at, so typos fail first.
pub async fn prepare(global: &GlobalArgs, stack: &StackArgs) -> Result<(StackSpec, Cognito)> {
    let file = SettingsFile::load(&global.config)?;
    let target: AwsTarget = settings::aws_target(global, &file)?;
    let region = resolve_region(&target).await?;
    let spec = settings::stack_spec(stack, &file, region)?;
    let cognito = Cognito::connect(&target, &spec.region).await?;
    Ok((spec, cognito))
}

/// Ids from the env file of a previous run: a shortcut, verified before use.
pub fn hint_from_env_file(path: &Path) -> Hint {
    let Ok(Some(text)) = render::read_env_file(path) else { return Hint::default() };
    let values = render::parse_env(&text);
    Hint {
        pool_id: values.get("COGNITO_USER_POOL_ID").filter(|v| !v.is_empty()).cloned(),
        client_id: values.get("COGNITO_CLIENT_ID").filter(|v| !v.is_empty()).cloned(),
    }
}

/// Asks a yes/no question on stderr and reads the answer from stdin. When
/// stdin is not a terminal (CI, pipes) nobody can answer, so it is a yes:
/// commands that change things are safe to script without `--yes`.
pub fn confirm(prompt: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return true;
    }
    eprint!("{prompt} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if stdin.lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
