//! One file per subcommand; each reads settings, talks to Cognito through
//! `cognito`, and prints through `report`.

pub(crate) mod client;
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
use super::spec::{DomainSpec, ManagedLogin, PoolTarget, ResourceServerSpec, StackSpec};
use super::state::{Actual, Hint};
use super::validate::Region;
use crate::contract::{self, UserPoolId, env_keys};
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
    let written = written_public_url(&spec.files.env_file, actual.pool.as_ref().map(|p| p.id.as_str()));
    keep_registered_urls(spec, &actual, written.as_deref())?;
    let plan = plan(spec, &actual)?;
    Ok((actual, plan))
}

/// [`read_and_plan`] with the machine clients' resource server, which only
/// `up` and `plan` converge: it is read (one more describe, once the public
/// URL it is named after is settled) and planned too.
pub(crate) async fn read_and_plan_with_scopes(cognito: &Cognito, spec: &mut StackSpec) -> Result<(Actual, Plan)> {
    let (mut actual, _) = read_and_plan(cognito, spec).await?;
    let desired = machine_resource_server(spec)?;
    if let Some(pool) = &actual.pool {
        actual.resource_server = cognito.describe_resource_server(&pool.id, &desired.identifier).await?;
    }
    spec.resource_server = Some(desired);
    let plan = plan(spec, &actual)?;
    Ok((actual, plan))
}

/// The resource server machine clients' scopes live on: identified by the
/// gateway's public URL (once it is settled) unless `--resource-server`
/// names another, with a scope for every route and one per route of the
/// routes file.
pub(crate) fn machine_resource_server(spec: &StackSpec) -> Result<ResourceServerSpec> {
    let identifier = spec.resource_server_id.clone().unwrap_or_else(|| spec.public_url().to_owned());
    let name = spec.resource_server_name.clone().unwrap_or_else(|| spec.client_name());
    let slugs = render::route_slugs(&spec.files.routes_file)?;
    Ok(ResourceServerSpec::new(identifier, name, &slugs))
}

/// Without a spelled-out URL list, an existing stack keeps what it serves: its
/// gateway URL (the env file's `COGNIGATE_PUBLIC_URL`, else the one its
/// callbacks name) and every callback URL its app client registered, plus any
/// `--callback-url`. The local default is only for a new stack: assuming it
/// for an existing one would drop a live gateway's callback and point the env
/// file at localhost.
pub(crate) fn keep_registered_urls(spec: &mut StackSpec, actual: &Actual, written: Option<&str>) -> Result<()> {
    if spec.callback_list_given || actual.pool.is_none() {
        return Ok(());
    }
    let registered: Vec<String> =
        actual.client.as_ref().map(|c| c.described.callback_urls().to_vec()).unwrap_or_default();
    let current = written
        .map(str::to_owned)
        .or_else(|| actual.client.as_ref().and_then(|c| c.registered_public_url()).map(str::to_owned));
    if let Some(url) = current {
        spec.gateway_urls = vec![url];
    }
    if registered.is_empty() {
        spec.callback_urls =
            settings::callback_urls(&spec.gateway_urls, spec.localhost_callback, &spec.extra_callback_urls)?;
        return Ok(());
    }
    let added =
        spec.gateway_urls.iter().map(|base| contract::callback_url(base)).chain(spec.extra_callback_urls.clone());
    let mut urls = registered;
    for url in added {
        // Registered URLs are Cognito's already; only new ones are checked.
        if !urls.contains(&url) {
            crate::provision::validate::callback_url(&url)?;
            urls.push(url);
        }
    }
    if urls.len() > crate::provision::validate::MAX_CALLBACK_URLS {
        return Err(Error::Usage(format!(
            "{} callback URLs; Cognito allows at most {}: drop some with --gateway-url and --prune-callbacks",
            urls.len(),
            crate::provision::validate::MAX_CALLBACK_URLS
        )));
    }
    spec.callback_urls = urls;
    Ok(())
}

/// The env file's `COGNIGATE_PUBLIC_URL`, when the file belongs to `pool_id`
/// (a file of another stack says nothing about this one) and the URL is one
/// `up` would accept.
fn written_public_url(path: &Path, pool_id: Option<&str>) -> Option<String> {
    let text = render::read_env_file(path).ok()??;
    let values = crate::dotenv::parse(&text).ok()?;
    let pool_id = pool_id?;
    if values.get(env_keys::USER_POOL_ID).map(String::as_str) != Some(pool_id) {
        return None;
    }
    let written = values.get(env_keys::PUBLIC_URL).filter(|v| !v.trim().is_empty())?;
    match crate::provision::validate::gateway_url(written) {
        Ok(url) => Some(url),
        Err(e) => {
            tracing::warn!(file = %path.display(), "ignoring {}: {e}", env_keys::PUBLIC_URL);
            None
        }
    }
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

/// Nobody will be asked: `--yes`, or stdin is not a terminal (CI, pipes).
pub(crate) fn unattended(yes: bool) -> bool {
    yes || !std::io::stdin().is_terminal()
}

/// Asks on a terminal; without one (CI, pipes) the answer is yes, as if
/// `--yes` had been given. The question goes to stderr to keep stdout clean.
pub(crate) fn confirm(question: &str, yes: bool) -> Result<()> {
    if unattended(yes) {
        return Ok(());
    }
    let stdin = std::io::stdin();
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).map_err(Error::Prompt)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") { Ok(()) } else { Err(Error::Cancelled) }
}
