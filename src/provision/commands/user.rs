//! `cognigate user add|list|remove|groups`: the stack's users.
//!
//! New pools refuse self sign-up, so this is how people get in: `add` creates
//! a user named by their e-mail address, with Cognito's invitation (a
//! temporary password by e-mail) or a permanent password read from stdin, and
//! puts them in groups the stack created (`up --group`). The pool is found as
//! every command finds it: `--user-pool-id`, the env file of a previous `up`,
//! or the stack's name and tag. Group names are checked before anything is
//! changed, so a typo names the missing group instead of leaving a user half
//! set up.

use std::io::BufRead;

use serde_json::json;

use super::{confirm, hint_from_env_file, prepare};
use crate::contract::env_keys;
use crate::provision::cli::{
    GlobalArgs, OutputFormat, UserAddArgs, UserCommand, UserGroupsArgs, UserListArgs, UserPoolArgs, UserRemoveArgs,
};
use crate::provision::cognito::Cognito;
use crate::provision::cognito::discover::PoolState;
use crate::provision::cognito::errors::CognitoError;
use crate::provision::cognito::users::{FirstPassword, UserSummary};
use crate::provision::error::{Error, Result};
use crate::provision::render;
use crate::provision::settings::{self, SettingsFile};
use crate::provision::stdout::{out, outln};
use crate::provision::validate::{self, Region, UserPoolId};
use crate::secret::Secret;

pub(crate) async fn run(global: &GlobalArgs, command: &UserCommand) -> Result<()> {
    match command {
        UserCommand::Add(args) => add(global, args).await,
        UserCommand::List(args) => list(global, args).await,
        UserCommand::Remove(args) => remove(global, args).await,
        UserCommand::Groups(args) => groups(global, args).await,
    }
}

/// Settings → client → the stack's pool.
pub(super) async fn open_pool(global: &GlobalArgs, args: &UserPoolArgs) -> Result<(Cognito, PoolState)> {
    if let Some(found) = pool_of_the_env_file_alone(global, args).await? {
        return Ok(found);
    }
    let (spec, cognito) = prepare(global, &args.stack_args()).await?;
    let hint = hint_from_env_file(&spec.files.env_file, &spec.region);
    let pool = cognito.find_pool(&spec, &hint).await?;
    Ok((cognito, pool))
}

/// With no stack name and no pool id anywhere (flags, environment,
/// `cognigate.toml`), the env file of a previous `up` is enough: its pool id
/// names the pool and its region. `None` when something else names the stack,
/// or the env file holds no pool id (the usual "no stack name" error follows).
async fn pool_of_the_env_file_alone(global: &GlobalArgs, args: &UserPoolArgs) -> Result<Option<(Cognito, PoolState)>> {
    let file = SettingsFile::load(&global.config)?;
    let named = args.id.stack.is_some() || args.id.user_pool_id.is_some();
    if named || file.stack.is_some() || file.user_pool_id.is_some() {
        return Ok(None);
    }
    let path = args.env.env_file.clone().or_else(|| file.env_file.clone()).unwrap_or_else(|| ".env".into());
    let Some(text) = render::read_env_file(&path)? else { return Ok(None) };
    let values = crate::dotenv::parse(&text).map_err(|(line, problem)| Error::FileContent {
        path: path.clone(),
        problem: format!("line {line}: {problem}"),
    })?;
    let Some(pool_id) = values.get(env_keys::USER_POOL_ID).filter(|v| !v.is_empty()) else { return Ok(None) };
    let pool_id = UserPoolId::parse(pool_id)?;
    let target = settings::aws_target(global, &file)?;
    let region = match &target.region {
        Some(region) if region.as_str() != pool_id.region() => {
            return Err(Error::Usage(format!(
                "{}'s user pool {pool_id} is in {}, but the region is {region}; pass --region {}",
                path.display(),
                pool_id.region(),
                pool_id.region()
            )));
        }
        _ => Region::parse(pool_id.region())?,
    };
    let cognito = Cognito::connect(&target, &region).await?;
    let pool = cognito
        .describe_pool(pool_id.as_str())
        .await?
        .ok_or_else(|| Error::PoolNotFound { id: pool_id.to_string(), region: region.to_string() })?;
    Ok(Some((cognito, pool)))
}

/// Fails naming every group of `wanted` the pool lacks, with the `up` flags that create them.
async fn require_groups(cognito: &Cognito, pool: &PoolState, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let existing = cognito.group_names(&pool.id).await?;
    let missing: Vec<String> = wanted.iter().filter(|g| !existing.contains(g)).cloned().collect();
    if missing.is_empty() { Ok(()) } else { Err(CognitoError::GroupNotFound { groups: missing }.into()) }
}

fn check_names(email: &str, groups: &[&String]) -> Result<()> {
    validate::email(email)?;
    for group in groups {
        validate::group_name(group)?;
    }
    Ok(())
}

/// The first line of stdin, without its line ending; never echoed anywhere.
fn read_password() -> Result<Secret> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Error::Usage(
            "--password-stdin read an empty password; pipe it in, for example: printf '%s' \"$PASSWORD\" | cognigate user add EMAIL --password-stdin".into(),
        ));
    }
    Ok(Secret::new(password))
}

async fn add(global: &GlobalArgs, args: &UserAddArgs) -> Result<()> {
    check_names(&args.email, &args.groups.iter().collect::<Vec<_>>())?;
    if args.password_stdin && args.suppress_invite {
        return Err(Error::Usage("--password-stdin sends no invitation already; drop --suppress-invite".into()));
    }
    let password = if args.password_stdin { Some(read_password()?) } else { None };
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    require_groups(&cognito, &pool, &args.groups).await?;

    let first = match (&password, args.suppress_invite) {
        (Some(secret), _) => FirstPassword::Permanent(secret),
        (None, true) => FirstPassword::Suppressed,
        (None, false) => FirstPassword::Invite,
    };
    let username = cognito.create_user(&pool, &args.email, first).await?;
    for group in &args.groups {
        cognito.add_to_group(&pool.id, &username, group).await?;
    }

    let invited = password.is_none() && !args.suppress_invite;
    match global.output {
        OutputFormat::Json => print_json(&json!({
            "userPoolId": pool.id,
            "username": username,
            "email": args.email,
            "groups": args.groups,
            "password": if password.is_some() { "permanent" } else { "temporary" },
            "invited": invited,
        })),
        OutputFormat::Text => {
            let groups = if args.groups.is_empty() { "no groups".to_owned() } else { args.groups.join(", ") };
            outln!("Added user {} to user pool {} ({groups}).", args.email, pool.id);
            outln!(
                "{}",
                match (password.is_some(), invited) {
                    (true, _) => "Their password is set and permanent; they can sign in now.",
                    (false, true) =>
                        "Cognito e-mailed them an invitation with a temporary password (valid 7 days by default).",
                    (false, false) =>
                        "No invitation was sent; Cognito made a temporary password nobody knows. Re-run without --suppress-invite after `cognigate user remove`, or set one with --password-stdin.",
                }
            );
        }
    }
    Ok(())
}

async fn list(global: &GlobalArgs, args: &UserListArgs) -> Result<()> {
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let users = cognito.users(&pool).await?;
    match global.output {
        OutputFormat::Json => print_json(&json!({ "userPoolId": pool.id, "users": users })),
        OutputFormat::Text => out!("{}", table(&users)),
    }
    Ok(())
}

/// Aligned columns: USERNAME, EMAIL, SUB, STATUS, ENABLED, GROUPS.
fn table(users: &[UserSummary]) -> String {
    if users.is_empty() {
        return "No users yet; add one with `cognigate user add EMAIL`.\n".into();
    }
    let rows: Vec<[String; 6]> = users
        .iter()
        .map(|u| {
            [
                u.username.clone(),
                u.email.clone().unwrap_or_else(|| "-".into()),
                u.sub.clone().unwrap_or_else(|| "-".into()),
                u.status.clone(),
                if u.enabled { "yes".into() } else { "no".into() },
                if u.groups.is_empty() { "-".into() } else { u.groups.join(",") },
            ]
        })
        .collect();
    crate::provision::report::columns(["USERNAME", "EMAIL", "SUB", "STATUS", "ENABLED", "GROUPS"], &rows)
}

async fn remove(global: &GlobalArgs, args: &UserRemoveArgs) -> Result<()> {
    validate::email(&args.email)?;
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let username = cognito.username_of(&pool, &args.email).await?;
    confirm(&format!("Delete user {} from user pool {}?", args.email, pool.id), args.yes)?;
    cognito.delete_user(&pool.id, &username).await?;
    match global.output {
        OutputFormat::Json => print_json(&json!({ "userPoolId": pool.id, "username": args.email, "removed": true })),
        OutputFormat::Text => outln!("Removed user {} from user pool {}.", args.email, pool.id),
    }
    Ok(())
}

async fn groups(global: &GlobalArgs, args: &UserGroupsArgs) -> Result<()> {
    check_names(&args.email, &args.add.iter().chain(&args.remove).collect::<Vec<_>>())?;
    if let Some(both) = args.add.iter().find(|g| args.remove.contains(g)) {
        return Err(Error::Usage(format!("group {both} is given to both --add and --remove; keep one")));
    }
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let named: Vec<String> = args.add.iter().chain(&args.remove).cloned().collect();
    // The user first (a typo in the address is the likelier mistake), then the groups.
    let username = cognito.username_of(&pool, &args.email).await?;
    let before = cognito.groups_of(&pool.id, &username).await?;
    require_groups(&cognito, &pool, &named).await?;
    for group in args.add.iter().filter(|g| !before.contains(g)) {
        cognito.add_to_group(&pool.id, &username, group).await?;
    }
    for group in args.remove.iter().filter(|g| before.contains(g)) {
        cognito.remove_from_group(&pool.id, &username, group).await?;
    }
    let after = if args.add.is_empty() && args.remove.is_empty() {
        before
    } else {
        cognito.groups_of(&pool.id, &username).await?
    };
    match global.output {
        OutputFormat::Json => print_json(&json!({ "userPoolId": pool.id, "username": args.email, "groups": after })),
        OutputFormat::Text if after.is_empty() => outln!("{} is in no groups.", args.email),
        OutputFormat::Text => outln!("{} is in: {}", args.email, after.join(", ")),
    }
    Ok(())
}

fn print_json(doc: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}
