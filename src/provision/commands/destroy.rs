//! `cognigate destroy` (alias `down`): find the stack's pools, refuse what
//! cognigate does not own unless `--force`, confirm, tear each pool down
//! (domains, clients, pool; see [`crate::provision::teardown`]), and with
//! `--clean-files` take our keys and stanza out of the local files.
//!
//! A stack is found by name and `cognigate:stack` tag, every pool of it (twins
//! left by concurrent runs included); `--user-pool-id` names one pool instead.
//! A stack with no pool is not an error: a second destroy says so and exits 0.

use std::path::PathBuf;

use futures_util::future::try_join_all;
use serde_json::json;

use super::{confirm, hint_from_env_file, prepare};
use crate::provision::cli::{DestroyArgs, GlobalArgs, OutputFormat};
use crate::provision::cognito::Cognito;
use crate::provision::cognito::discover::PoolState;
use crate::provision::error::{Error, Refusal, Result};
use crate::provision::progress::Progress;
use crate::provision::render::{self, Cleaned};
use crate::provision::spec::{PoolTarget, StackSpec};
use crate::provision::stdout::outln;
use crate::provision::teardown::{self, Guard, Removed};

/// The pools `destroy` would delete, and namesakes it leaves alone.
struct Found {
    pools: Vec<PoolState>,
    /// Pools named like the stack that are not tagged as its own.
    strangers: Vec<PoolState>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &DestroyArgs) -> Result<()> {
    let (spec, cognito) = prepare(global, &args.stack_args()).await?;
    let mut found = find(&cognito, &spec).await?;
    if found.pools.is_empty() && spec.pool == PoolTarget::Managed {
        // No tagged pool: an adopted one is found through the env file of `up`.
        found.pools.extend(env_file_pool(&cognito, &spec).await?);
    }
    if !args.force
        && let [pool] = found.pools.as_slice()
        && teardown::guards(pool, Some(spec.stack.as_str())) == [Guard::NotManaged]
    {
        // Only when `up` left something there; a pool it never touched is refused below.
        let domain = our_domain(&spec, pool);
        if domain.is_some() || !cognito.clients_named(&pool.id, &spec.client_name()).await?.is_empty() {
            return destroy_in_adopted(global, args, &spec, &cognito, pool, domain).await;
        }
    }

    if !args.force {
        refuse_unowned(&spec, &found.pools)?;
    }
    if !found.pools.is_empty() {
        confirm(&question(&spec, &found.pools), args.yes)?;
    }

    let progress = Progress::new(global.output == OutputFormat::Text);
    let mut removed = Vec::new();
    for pool in &found.pools {
        removed.push(teardown::remove(&cognito, pool, &progress).await?);
    }
    let files = if args.clean_files { clean_files(&spec)? } else { Vec::new() };

    match global.output {
        OutputFormat::Json => print_json(&spec, &removed, &found.strangers, &files),
        OutputFormat::Text if global.quiet => {}
        OutputFormat::Text => print_text(&spec, &removed, &found.strangers, &files, args.clean_files),
    }
    Ok(())
}

/// The pool the env file names, when it is not another stack's.
async fn env_file_pool(cognito: &Cognito, spec: &StackSpec) -> Result<Option<PoolState>> {
    let Some(id) = hint_from_env_file(&spec.files.env_file, &spec.region).pool_id else { return Ok(None) };
    let pool = cognito.describe_pool(&id).await?;
    Ok(pool.filter(|p| p.stack_tag().is_none_or(|s| s == spec.stack.as_str())))
}

/// `up` keeps an adopted pool's own domain unless told another; a domain it
/// created is the stack's (derived or given) one.
fn our_domain<'a>(spec: &StackSpec, pool: &'a PoolState) -> Option<&'a str> {
    let ours = spec.domain.api_name();
    [pool.domain.as_deref(), pool.custom_domain.as_deref()].into_iter().flatten().find(|d| *d == ours)
}

/// An adopted pool (untagged, `up --user-pool-id`) stays without `--force`:
/// only the app client `up` created there and the domain `up` gave it go.
async fn destroy_in_adopted(
    global: &GlobalArgs,
    args: &DestroyArgs,
    spec: &StackSpec,
    cognito: &Cognito,
    pool: &PoolState,
    domain: Option<&str>,
) -> Result<()> {
    let client_name = spec.client_name();
    let domain_text = domain.map(|d| format!("the domain {d} and ")).unwrap_or_default();
    confirm(
        &format!(
            "User pool {} ({}) was adopted: it stays. Delete {domain_text}the app client {client_name} that cognigate created in it?",
            pool.id, pool.name
        ),
        args.yes,
    )?;
    let progress = Progress::new(global.output == OutputFormat::Text);
    let removed = teardown::remove_from_adopted(cognito, pool, domain, &client_name, &progress).await?;
    let files = if args.clean_files { clean_files(spec)? } else { Vec::new() };
    match global.output {
        OutputFormat::Json => print_json(spec, std::slice::from_ref(&removed), &[], &files),
        OutputFormat::Text if global.quiet => {}
        OutputFormat::Text => {
            outln!("Destroyed what cognigate created in adopted user pool {} ({}).", pool.id, pool.name);
            for domain in &removed.domains {
                outln!("  domain      {domain}  deleted");
            }
            for client in &removed.app_clients {
                outln!("  app client  {client}  deleted");
            }
            for server in &removed.resource_servers {
                outln!("  scopes      {server}  deleted (resource server)");
            }
            outln!(
                "  user pool   {}  kept (adopted with --user-pool-id; `cognigate destroy --user-pool-id {} --force` deletes it)",
                pool.id,
                pool.id
            );
            for (kind, path, outcome) in &files {
                outln!("  {kind:<11} {}  {}", path.display(), render::cleaned_label(*outcome));
            }
        }
    }
    Ok(())
}

async fn find(cognito: &Cognito, spec: &StackSpec) -> Result<Found> {
    match &spec.pool {
        PoolTarget::Adopted(id) => {
            Ok(Found { pools: cognito.describe_pool(id.as_str()).await?.into_iter().collect(), strangers: Vec::new() })
        }
        PoolTarget::Managed => {
            // As `Cognito::stack_pools`, but keeping the namesakes that are not
            // the stack's, so "nothing to destroy" can point at them.
            let ids: Vec<String> = cognito
                .all_pools()
                .await?
                .into_iter()
                .filter(|(_, name)| name == spec.pool_name())
                .map(|(id, _)| id)
                .collect();
            let described = try_join_all(ids.iter().map(|id| cognito.describe_pool(id))).await?;
            let (mut pools, strangers): (Vec<_>, Vec<_>) =
                described.into_iter().flatten().partition(|p| p.stack_tag() == Some(spec.stack.as_str()));
            pools.sort_by_key(PoolState::age_key);
            Ok(Found { pools, strangers })
        }
    }
}

/// Without `--force`, any pool that is not the stack's own, or is protected,
/// stops the whole destroy before anything is deleted.
fn refuse_unowned(spec: &StackSpec, pools: &[PoolState]) -> Result<()> {
    let refusals: Vec<Refusal> = pools
        .iter()
        .map(|p| Refusal {
            pool: format!("user pool {} ({})", p.id, p.name),
            guards: teardown::guards(p, Some(spec.stack.as_str())),
        })
        .filter(|r| !r.guards.is_empty())
        .collect();
    if refusals.is_empty() { Ok(()) } else { Err(Error::DestroyRefused(refusals)) }
}

fn question(spec: &StackSpec, pools: &[PoolState]) -> String {
    let mut text = format!("Destroying stack {} ({}) deletes:", spec.stack, spec.region);
    for pool in pools {
        let domains: Vec<&str> =
            [pool.domain.as_deref(), pool.custom_domain.as_deref()].into_iter().flatten().collect();
        let domains = if domains.is_empty() { String::new() } else { format!(", domain {}", domains.join(" and ")) };
        text.push_str(&format!("\n  user pool {} ({}){domains}, all its app clients and users", pool.id, pool.name));
    }
    text.push_str("\nDestroy?");
    text
}

type FileReport = (&'static str, PathBuf, Cleaned);

fn clean_files(spec: &StackSpec) -> Result<Vec<FileReport>> {
    let files = &spec.files;
    Ok(vec![
        ("env file", files.env_file.clone(), render::clean_env_file(&files.env_file)?),
        (
            "policies",
            files.policies_file.clone(),
            render::clean_policies_file(&files.policies_file, &files.policy_name)?,
        ),
    ])
}

fn print_json(spec: &StackSpec, removed: &[Removed], strangers: &[PoolState], files: &[FileReport]) {
    let doc = json!({
        "stack": spec.stack.as_str(),
        "region": spec.region.as_str(),
        "destroyed": removed,
        "nothingToDestroy": removed.is_empty(),
        "untaggedNamesakes": strangers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        "files": files
            .iter()
            .map(|(kind, path, outcome)| (kind.to_string(), json!({ "path": path, "outcome": outcome })))
            .collect::<serde_json::Map<_, _>>(),
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_text(spec: &StackSpec, removed: &[Removed], strangers: &[PoolState], files: &[FileReport], clean: bool) {
    if removed.is_empty() {
        outln!("Nothing to destroy: stack {} has no user pool in {}.", spec.stack, spec.region);
    } else {
        outln!("Destroyed stack {} ({}).", spec.stack, spec.region);
    }
    for r in removed {
        if r.deletion_protection_disabled {
            outln!("  protection  {}  turned off", r.user_pool_id);
        }
        for domain in &r.domains {
            outln!("  domain      {domain}  deleted");
        }
        for client in &r.app_clients {
            outln!("  app client  {client}  deleted");
        }
        for server in &r.resource_servers {
            outln!("  scopes      {server}  deleted with the pool (resource server)");
        }
        outln!("  user pool   {} ({})  deleted", r.user_pool_id, r.name);
    }
    for pool in strangers {
        outln!(
            "  note: user pool {} is also named {} but is not tagged cognigate:stack={}; left alone. \
             To delete it: cognigate destroy --stack {} --user-pool-id {} --force",
            pool.id,
            pool.name,
            spec.stack,
            spec.stack,
            pool.id
        );
    }
    for (kind, path, outcome) in files {
        outln!("  {kind:<11} {}  {}", path.display(), render::cleaned_label(*outcome));
    }
    if !clean && !removed.is_empty() {
        outln!("Local files were left as they are; `cognigate destroy --clean-files` removes our keys and stanza.");
    }
}
