//! One file per subcommand; each reads settings, talks to Cognito through
//! `cognito`, and prints through `report`.

pub(crate) mod destroy;
pub(crate) mod doctor;
pub(crate) mod export;
pub(crate) mod gc;
pub(crate) mod outputs;
pub(crate) mod plan;
pub(crate) mod rotate_secret;
pub(crate) mod shell;
pub(crate) mod up;
pub(crate) mod user;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::cli::{GlobalArgs, StackArgs};
use super::cognito::discover::ClientState;
use super::cognito::errors::CognitoError;
use super::cognito::{Cognito, resolve_region};
use super::error::{Error, Result};
use super::plan::{Plan, plan};
use super::render;
use super::settings::{self, AwsTarget, SettingsFile};
use super::spec::{DomainSpec, ManagedLogin, PoolTarget, StackSpec};
use super::state::{Actual, Hint};
use super::validate::Region;
use crate::contract::{UserPoolId, env_keys};
use crate::secret::Secret;

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
    let hint = hint_from_env_file(&spec.files.env_file, &spec.region);
    let mut actual = cognito.read_stack(spec, &hint).await?;
    // An adopted pool keeps the domain it has unless another one was asked
    // for, and a domain on managed login (v2) stays on it: the default v1
    // must not put someone else's login pages back on the classic UI;
    // its app client then gets a branding style.
    if let (PoolTarget::Adopted(_), true) = (&spec.pool, spec.domain_is_derived)
        && let Some(existing) = actual.pool.as_ref().and_then(|p| p.domain.clone())
    {
        actual.domain = cognito.describe_domain(&existing).await?;
        spec.domain = DomainSpec::Prefix(existing);
        if actual.domain.as_ref().and_then(|d| d.managed_login_version) == Some(ManagedLogin::V2.version()) {
            spec.managed_login = ManagedLogin::V2;
        }
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
/// An id of the wrong shape or of another region (a hand-edited file, one
/// copied from another stack) is never sent to AWS: it is dropped with a
/// warning, and discovery by name takes over.
pub(crate) fn hint_from_env_file(path: &Path, region: &Region) -> Hint {
    let Ok(Some(text)) = render::read_env_file(path) else { return Hint::default() };
    // A file we cannot parse gives no hint; discovery by name still works.
    let values = crate::dotenv::parse(&text).unwrap_or_default();
    let value = |key: &str| values.get(key).filter(|v| !v.is_empty()).cloned();
    let pool_id = value(env_keys::USER_POOL_ID).filter(|id| match UserPoolId::parse_in(id, region) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(file = %path.display(), "ignoring {}: {e}", env_keys::USER_POOL_ID);
            false
        }
    });
    let client_id = value(env_keys::CLIENT_ID).filter(|id| {
        let valid = is_client_id(id);
        if !valid {
            tracing::warn!(
                file = %path.display(),
                "ignoring {}: {id:?} is not an app client id (1 to 128 letters, digits, '_' or '+')",
                env_keys::CLIENT_ID
            );
        }
        valid
    });
    Hint { pool_id, client_id }
}

/// Cognito's `ClientIdType`: `[\w+]+`, at most 128 characters.
fn is_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+')
}

/// The client secret to write to the env file. DescribeUserPoolClient shows
/// one of the client's secrets; while a rotation is half done (two secrets),
/// the env file's secret is the new one the gateways are moving to, so it is
/// kept instead of being swapped back. Secrets are listed
/// only when the env file's differs; an endpoint without the rotation API
/// cannot hold two.
pub(crate) async fn secret_to_write(
    cognito: &Cognito,
    env_file: &Path,
    pool_id: &str,
    client_id: &str,
    described: &Secret,
) -> Result<Secret> {
    let Ok(Some(text)) = render::read_env_file(env_file) else { return Ok(described.clone()) };
    let values = crate::dotenv::parse(&text).unwrap_or_default();
    let same_client = values.get(env_keys::CLIENT_ID).is_some_and(|id| id == client_id);
    let Some(written) = values.get(env_keys::CLIENT_SECRET).filter(|s| same_client && !s.is_empty()) else {
        return Ok(described.clone());
    };
    if written == described.expose() {
        return Ok(described.clone());
    }
    match cognito.client_secret_ids(pool_id, client_id).await {
        Ok(ids) if ids.len() >= 2 => Ok(Secret::new(written.clone())),
        Ok(_) | Err(CognitoError::Unsupported { .. }) => Ok(described.clone()),
        Err(e) => Err(e.into()),
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
