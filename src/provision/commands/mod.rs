//! One file per subcommand; each reads settings, talks to Cognito through
//! `cognito`, and prints through `report`.

pub(crate) mod destroy;
pub(crate) mod gc;
pub(crate) mod outputs;
pub(crate) mod plan;
pub(crate) mod rotate_secret;
pub(crate) mod up;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::cli::{GlobalArgs, StackArgs};
use super::cognito::discover::ClientState;
use super::cognito::{Cognito, resolve_region};
use super::error::{Error, Result};
use super::plan::{Plan, plan};
use super::render;
use super::settings::{self, AwsTarget, SettingsFile};
use super::spec::{DomainSpec, PoolTarget, StackSpec};
use super::state::{Actual, Hint};
use crate::contract::env_keys;

/// Settings file + flags → validated spec and a connected client. Input is
/// validated before credentials are looked at, so typos fail first.
pub(crate) async fn prepare(global: &GlobalArgs, stack: &StackArgs) -> Result<(StackSpec, Cognito)> {
    let file = SettingsFile::load(&global.config)?;
    let target: AwsTarget = settings::aws_target(global, &file)?;
    let region = resolve_region(&target).await?;
    let spec = settings::stack_spec(stack, &file, region)?;
    let cognito = Cognito::connect(&target, &spec.region).await?;
    Ok((spec, cognito))
}

/// Reads the stack and plans it; shared by `up` and `plan` so both always agree.
pub(crate) async fn read_and_plan(cognito: &Cognito, spec: &mut StackSpec) -> Result<(Actual, Plan)> {
    let hint = hint_from_env_file(&spec.files.env_file);
    let mut actual = cognito.read_stack(spec, &hint).await?;
    // An adopted pool keeps the domain it has unless another one was asked for.
    if let (PoolTarget::Adopted(_), true) = (&spec.pool, spec.domain_is_derived)
        && let Some(existing) = actual.pool.as_ref().and_then(|p| p.domain.clone())
    {
        actual.domain = cognito.describe_domain(&existing).await?;
        spec.domain = DomainSpec::Prefix(existing);
    }
    let plan = plan(spec, &actual)?;
    Ok((actual, plan))
}

/// The public URL to write for an existing stack: the first `--gateway-url`
/// when given, else the one its app client registered, so re-rendering the
/// env file (`outputs`, `rotate-secret`) never points the gateway elsewhere.
pub(crate) fn public_url_of<'a>(spec: &'a StackSpec, client: &'a ClientState) -> &'a str {
    match (spec.gateway_urls.first(), client.registered_public_url()) {
        (None, Some(registered)) => registered,
        _ => spec.public_url(),
    }
}

/// Ids from the env file of a previous run: a shortcut, verified before use.
pub(crate) fn hint_from_env_file(path: &Path) -> Hint {
    let Ok(Some(text)) = render::read_env_file(path) else { return Hint::default() };
    // A file we cannot parse gives no hint; discovery by name still works.
    let values = crate::dotenv::parse(&text).unwrap_or_default();
    Hint {
        pool_id: values.get(env_keys::USER_POOL_ID).filter(|v| !v.is_empty()).cloned(),
        client_id: values.get(env_keys::CLIENT_ID).filter(|v| !v.is_empty()).cloned(),
    }
}

/// Asks on a terminal; without one (CI, pipes) the answer is yes, as if
/// `--yes` had been given. The question goes to stderr to keep stdout clean.
pub(crate) fn confirm(question: &str, yes: bool) -> Result<()> {
    let stdin = std::io::stdin();
    if yes || !stdin.is_terminal() {
        return Ok(());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).map_err(Error::Prompt)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") { Ok(()) } else { Err(Error::Cancelled) }
}
