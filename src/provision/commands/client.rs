//! `cognigate client add|list|remove|rotate-secret`: machine clients.
//!
//! A machine client (an agent, a CI job, a back-office service) is a Cognito
//! app client with a secret, the client credentials grant only and custom
//! scopes only, on the resource server `up` gave the pool: `mcp:all` reaches
//! every route of the gateway, `mcp:route.{slug}` one route. It asks the
//! gateway's `/oauth/token` for a token with its id and secret; the gateway
//! proves them at Cognito every time, so `client remove` stops new tokens at
//! once and the ones issued end within their lifetime.
//!
//! The secret is shown once: printed, or written to a file or env file (mode
//! 0600, atomically), or in `--output json` with `--show-secret` (masked
//! otherwise). Rotation works as for the gateway's own client: a second
//! secret while the old one keeps working, then `--finish`.

use serde_json::json;

use super::confirm;
use super::user::open_pool;
use crate::contract::{self, env_keys, machine_scopes};
use crate::provision::cli::{
    ClientAddArgs, ClientCommand, ClientListArgs, ClientRemoveArgs, ClientRotateArgs, GlobalArgs, OutputFormat,
    SecretOutArgs, UserPoolArgs,
};
use crate::provision::cognito::Cognito;
use crate::provision::cognito::discover::{ClientState, PoolState};
use crate::provision::cognito::machine::ResourceServerState;
use crate::provision::error::{Error, Result};
use crate::provision::render::{self, FileOutcome};
use crate::provision::settings::SettingsFile;
use crate::provision::stdout::{out, outln};
use crate::secret::Secret;

/// Printed by `client add` and in the README: the cost is not obvious.
pub(crate) const BILLING_NOTE: &str = "Cognito bills machine-to-machine use per app client and per token request \
     (see Amazon Cognito pricing, \"machine-to-machine\"); the gateway asks Cognito once for each token a machine \
     client asks it for.";

/// The keys `--write-env` writes.
const ENV_CLIENT_ID: &str = "MCP_CLIENT_ID";
const ENV_CLIENT_SECRET: &str = "MCP_CLIENT_SECRET";
const ENV_TOKEN_URL: &str = "MCP_TOKEN_URL";
const ENV_SERVER_URL: &str = "MCP_SERVER_URL";

pub(crate) async fn run(global: &GlobalArgs, command: &ClientCommand) -> Result<()> {
    match command {
        ClientCommand::Add(args) => add(global, args).await,
        ClientCommand::List(args) => list(global, args).await,
        ClientCommand::Remove(args) => remove(global, args).await,
        ClientCommand::RotateSecret(args) => rotate(global, args).await,
    }
}

/// Cognito's `ClientNameType`: `[\w\s+=,.@-]+`, 1 to 128 characters.
fn check_name(name: &str) -> Result<()> {
    let valid = (1..=128).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ' ' || "+=,.@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "client name {name:?}: Cognito takes 1 to 128 letters, digits, spaces and + = , . @ - _ (e.g. ci-bot)"
        )))
    }
}

/// The scope names the client asks for, each checked against Cognito's
/// scope name rule; full `identifier/name` forms are reduced to the name.
fn check_scopes(scopes: &[String], server: &ResourceServerState) -> Result<Vec<String>> {
    if scopes.is_empty() {
        return Err(Error::Usage(format!(
            "no scope: give --scope {}SLUG for one route (e.g. --scope {}) or --scope {} for every route",
            machine_scopes::ROUTE_PREFIX,
            machine_scopes::route(render::STARTER_SLUG),
            machine_scopes::ALL
        )));
    }
    let prefix = format!("{}/", server.identifier);
    let available: Vec<&str> = server.scopes.iter().map(|(name, _)| name.as_str()).collect();
    let mut names = Vec::new();
    for scope in scopes {
        let name = scope.strip_prefix(&prefix).unwrap_or(scope);
        if !available.contains(&name) {
            return Err(Error::Usage(format!(
                "scope {scope:?} is not on the resource server {}; it has: {}. A new route gets its scope with \
                 `cognigate up` once it is in the routes file",
                server.identifier,
                available.join(", ")
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// The resource server `up` made (the one with the `mcp:all` scope), or the one named.
async fn resource_server(cognito: &Cognito, pool: &PoolState, named: Option<&str>) -> Result<ResourceServerState> {
    let servers = cognito.resource_servers(&pool.id).await?;
    let ours: Vec<ResourceServerState> = match named {
        Some(id) => servers.into_iter().filter(|s| s.identifier == id).collect(),
        None => servers.into_iter().filter(|s| s.scopes.iter().any(|(n, _)| n == machine_scopes::ALL)).collect(),
    };
    match <[_; 1]>::try_from(ours) {
        Ok([server]) => Ok(server),
        Err(ours) if ours.is_empty() => Err(Error::Usage(format!(
            "user pool {} has no resource server for machine clients{}; run `cognigate up` (it creates one)",
            pool.id,
            named.map(|id| format!(" named {id}")).unwrap_or_default()
        ))),
        Err(ours) => Err(Error::Usage(format!(
            "user pool {} has {} resource servers with machine scopes ({}); name one with --resource-server",
            pool.id,
            ours.len(),
            ours.iter().map(|s| s.identifier.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The gateway's public URL for the printed commands: the env file's when it
/// belongs to this pool, else the resource server's identifier when it is a
/// URL (`up` names it after the gateway), else the local default.
fn public_url(
    global: &GlobalArgs,
    args: &UserPoolArgs,
    pool: &PoolState,
    server: Option<&ResourceServerState>,
) -> String {
    let file = SettingsFile::load(&global.config).unwrap_or_default();
    let path = args.env.env_file.clone().or(file.env_file).unwrap_or_else(|| ".env".into());
    let written = render::read_env_file(&path).ok().flatten().and_then(|text| crate::dotenv::parse(&text).ok());
    if let Some(values) = written
        && values.get(env_keys::USER_POOL_ID) == Some(&pool.id)
        && let Some(url) = values.get(env_keys::PUBLIC_URL).filter(|u| !u.is_empty())
    {
        return url.trim_end_matches('/').to_owned();
    }
    server
        .map(|s| s.identifier.as_str())
        .filter(|id| contract::PublicUrl::parse(id).is_ok())
        .unwrap_or(contract::DEFAULT_PUBLIC_URL)
        .to_owned()
}

/// The route a client's command names: its one route scope's, else the first
/// route the resource server knows.
fn route_slug(scopes: &[String], server: &ResourceServerState) -> String {
    let own = scopes.iter().filter_map(|s| s.strip_prefix(machine_scopes::ROUTE_PREFIX));
    let known = server.scopes.iter().filter_map(|(s, _)| s.strip_prefix(machine_scopes::ROUTE_PREFIX));
    own.chain(known).next().unwrap_or(render::STARTER_SLUG).to_owned()
}

/// The scope names of a client on `server` (its `identifier/name` scopes).
fn scope_names(client: &ClientState, identifier: &str) -> Vec<String> {
    let prefix = format!("{identifier}/");
    client.described.allowed_o_auth_scopes().iter().map(|s| s.strip_prefix(&prefix).unwrap_or(s).to_owned()).collect()
}

async fn add(global: &GlobalArgs, args: &ClientAddArgs) -> Result<()> {
    check_name(&args.name)?;
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let server = resource_server(&cognito, &pool, args.resource_server.as_deref()).await?;
    let names = check_scopes(&args.scopes, &server)?;
    let existing = cognito.machine_clients(&pool.id).await?;
    if let Some(same) = existing.iter().find(|c| c.name == args.name) {
        return Err(Error::Usage(format!(
            "user pool {} already has a machine client named {} ({}); pick another name, or `cognigate client \
             remove {}` first",
            pool.id, args.name, same.id, args.name
        )));
    }
    let full: Vec<String> = names.iter().map(|n| format!("{}/{n}", server.identifier)).collect();
    let client = cognito.create_machine_client(&pool.id, &args.name, &full).await?;
    let secret = client
        .secret
        .clone()
        .ok_or_else(|| Error::ClientWithoutSecret { name: client.name.clone(), id: client.id.clone() })?;
    let base = public_url(global, &args.pool, &pool, Some(&server));
    let issued =
        Issued { client: &client, secret: &secret, scopes: &names, base: &base, slug: route_slug(&names, &server) };
    let written = issued.write(&args.out)?;
    match global.output {
        OutputFormat::Json => {
            let mut doc = issued.json(&pool, written.as_ref(), args.out.show_secret);
            doc["billingNote"] = json!(BILLING_NOTE);
            print_json(&doc);
        }
        OutputFormat::Text => {
            outln!(
                "Added machine client {} (client id {}) to user pool {}, scopes: {}.",
                args.name,
                client.id,
                pool.id,
                names.join(" ")
            );
            issued.print_text(written.as_ref());
            if !global.quiet {
                outln!("Note: {BILLING_NOTE}");
            }
        }
    }
    Ok(())
}

/// A secret just issued (a new client, a rotation) and where it went.
struct Issued<'a> {
    client: &'a ClientState,
    secret: &'a Secret,
    scopes: &'a [String],
    base: &'a str,
    slug: String,
}

impl Issued<'_> {
    fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base)
    }

    fn server_url(&self) -> String {
        format!("{}/mcp/{}", self.base, self.slug)
    }

    /// Writes the secret where `out` says; `None` when it goes to the terminal.
    fn write(&self, out: &SecretOutArgs) -> Result<Option<(&'static str, std::path::PathBuf, FileOutcome)>> {
        if let Some(path) = &out.secret_file {
            let existing = render::read_env_file(path)?;
            let outcome = render::write_if_changed(
                path,
                existing.as_deref(),
                &format!("{}\n", self.secret.expose()),
                Some(0o600),
            )?;
            return Ok(Some(("secret file", path.clone(), outcome)));
        }
        if let Some(path) = &out.write_env {
            let existing = render::read_env_file(path)?;
            let values = [
                (ENV_CLIENT_ID, self.client.id.clone()),
                (ENV_CLIENT_SECRET, self.secret.expose().to_owned()),
                (ENV_TOKEN_URL, self.token_url()),
                (ENV_SERVER_URL, self.server_url()),
            ];
            let merged = merge_env(existing.as_deref(), &values);
            let outcome = render::write_if_changed(path, existing.as_deref(), &merged, Some(0o600))?;
            return Ok(Some(("env file", path.clone(), outcome)));
        }
        Ok(None)
    }

    fn json(
        &self,
        pool: &PoolState,
        written: Option<&(&str, std::path::PathBuf, FileOutcome)>,
        show: bool,
    ) -> serde_json::Value {
        let mut doc = json!({
            "userPoolId": pool.id,
            "name": self.client.name,
            "clientId": self.client.id,
            "scopes": self.scopes,
            "tokenUrl": self.token_url(),
            "serverUrl": self.server_url(),
            "clientSecret": if show { self.secret.expose() } else { self.secret.masked() },
        });
        if let Some((kind, path, outcome)) = written {
            doc["written"] = json!({ "kind": kind, "path": path, "outcome": outcome });
        }
        doc
    }

    /// The secret (when no file took it) and a ready command that gets a
    /// token with no browser.
    fn print_text(&self, written: Option<&(&str, std::path::PathBuf, FileOutcome)>) {
        let secret_ref = match written {
            Some((kind, path, outcome)) => {
                outln!("  {kind:<11} {}  {} (mode 0600)", path.display(), render::label(*outcome));
                match *kind {
                    "env file" => {
                        outln!("Load it with: set -a; . {}; set +a", shell_quote(&path.display().to_string()));
                        format!("${ENV_CLIENT_SECRET}")
                    }
                    _ => format!("$(cat {})", shell_quote(&path.display().to_string())),
                }
            }
            None => {
                outln!("Client secret (shown this once; keep it in your secret store): {}", self.secret.expose());
                outln!("Put it in the environment first: export {ENV_CLIENT_SECRET}=<the secret above>");
                format!("${ENV_CLIENT_SECRET}")
            }
        };
        outln!("Get an access token for {} (no browser; it lasts the route's token lifetime):", self.server_url());
        outln!(
            "  curl -s -u \"{}:{secret_ref}\" -d grant_type=client_credentials --data-urlencode resource={} {}",
            self.client.id,
            self.server_url(),
            self.token_url()
        );
        outln!(
            "MCP SDKs take the same id, secret and server URL (Python: mcp.client.auth.extensions.client_credentials.ClientCredentialsOAuthProvider)."
        );
    }
}

/// Replaces the keys of `values` where they stand and appends the rest;
/// every other line of the file stays as it is.
fn merge_env(existing: Option<&str>, values: &[(&str, String)]) -> String {
    let key_of = |line: &str| {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        line.split_once('=').map(|(k, _)| k.trim().to_owned())
    };
    let mut out = String::new();
    let mut written: Vec<&str> = Vec::new();
    for line in existing.unwrap_or_default().lines() {
        match key_of(line).and_then(|k| values.iter().find(|(key, _)| *key == k)) {
            Some((key, value)) if !written.contains(key) => {
                out.push_str(&format!("{key}={value}\n"));
                written.push(key);
            }
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (key, value) in values.iter().filter(|(key, _)| !written.contains(key)) {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

async fn list(global: &GlobalArgs, args: &ClientListArgs) -> Result<()> {
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let servers = cognito.resource_servers(&pool.id).await?;
    let identifier = servers
        .iter()
        .find(|s| s.scopes.iter().any(|(n, _)| n == machine_scopes::ALL))
        .map(|s| s.identifier.clone())
        .unwrap_or_default();
    let clients = cognito.machine_clients(&pool.id).await?;
    let rows: Vec<serde_json::Value> = clients
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "clientId": c.id,
                "scopes": scope_names(c, &identifier),
                "created": c.created.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            })
        })
        .collect();
    match global.output {
        OutputFormat::Json => {
            print_json(&json!({ "userPoolId": pool.id, "resourceServer": identifier, "clients": rows }))
        }
        OutputFormat::Text if rows.is_empty() => {
            outln!("No machine clients yet; add one with `cognigate client add NAME --scope mcp:route.SLUG`.")
        }
        OutputFormat::Text => out!("{}", table(&rows)),
    }
    Ok(())
}

/// Aligned columns: NAME, CLIENT ID, SCOPES, CREATED.
fn table(rows: &[serde_json::Value]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let scopes: Vec<&str> = r["scopes"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
            [
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["clientId"].as_str().unwrap_or_default().to_owned(),
                scopes.join(" "),
                r["created"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    crate::provision::report::columns(["NAME", "CLIENT ID", "SCOPES", "CREATED"], &cells)
}

/// The machine client named `wanted` (its name or client id).
async fn find(cognito: &Cognito, pool: &PoolState, wanted: &str) -> Result<ClientState> {
    let clients = cognito.machine_clients(&pool.id).await?;
    let found: Vec<ClientState> = clients.into_iter().filter(|c| c.id == wanted || c.name == wanted).collect();
    match <[_; 1]>::try_from(found) {
        Ok([client]) => Ok(client),
        Err(found) if found.is_empty() => Err(Error::Usage(format!(
            "user pool {} has no machine client named {wanted:?} (a name or client id); `cognigate client list` \
             shows them",
            pool.id
        ))),
        Err(found) => Err(Error::Usage(format!(
            "{} machine clients are named {wanted:?}; give the client id ({})",
            found.len(),
            found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

async fn remove(global: &GlobalArgs, args: &ClientRemoveArgs) -> Result<()> {
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let client = find(&cognito, &pool, &args.client).await?;
    confirm(&format!("Delete machine client {} ({}) from user pool {}?", client.name, client.id, pool.id), args.yes)?;
    cognito.delete_client(&pool.id, &client.id).await?;
    match global.output {
        OutputFormat::Json => print_json(&json!({
            "userPoolId": pool.id, "name": client.name, "clientId": client.id, "removed": true,
        })),
        OutputFormat::Text => {
            outln!("Removed machine client {} ({}) from user pool {}.", client.name, client.id, pool.id);
            outln!(
                "It gets no new token from the gateway; a token it holds ends with its lifetime (15 minutes by \
                 default), or at once with `cognigate-gateway revoke --client {}`.",
                client.id
            );
        }
    }
    Ok(())
}

async fn rotate(global: &GlobalArgs, args: &ClientRotateArgs) -> Result<()> {
    let (cognito, pool) = open_pool(global, &args.pool).await?;
    let client = find(&cognito, &pool, &args.client).await?;
    if args.finish {
        let ids = cognito.client_secret_ids(&pool.id, &client.id).await?;
        let Some((_, older)) = ids.split_last() else { return Ok(()) };
        if !older.is_empty() {
            confirm(
                &format!(
                    "Delete {} older secret(s) of {}? Whoever still uses them gets no new token.",
                    older.len(),
                    client.name
                ),
                args.yes,
            )?;
        }
        for id in older {
            cognito.delete_client_secret(&pool.id, &client.id, id).await?;
        }
        match global.output {
            OutputFormat::Json => print_json(&json!({ "clientId": client.id, "deletedSecretIds": older })),
            OutputFormat::Text if older.is_empty() => outln!("Only one secret is active; nothing to delete."),
            OutputFormat::Text => outln!("Deleted {} older secret(s); only the newest works now.", older.len()),
        }
        return Ok(());
    }
    let held = cognito.client_secret_ids(&pool.id, &client.id).await?;
    if held.len() >= 2 {
        return Err(Error::Usage(format!(
            "machine client {} already has {} secrets (Cognito keeps at most two); finish the rotation first: \
             `cognigate client rotate-secret {} --finish`",
            client.name,
            held.len(),
            client.name
        )));
    }
    confirm(&format!("Add a new secret to machine client {}?", client.name), args.yes)?;
    let added = cognito.add_client_secret(&pool.id, &client.id).await?;
    let servers = cognito.resource_servers(&pool.id).await?;
    let server = servers.into_iter().find(|s| s.scopes.iter().any(|(n, _)| n == machine_scopes::ALL));
    let names = scope_names(&client, server.as_ref().map(|s| s.identifier.as_str()).unwrap_or_default());
    let base = public_url(global, &args.pool, &pool, server.as_ref());
    let slug = server.as_ref().map_or_else(|| render::STARTER_SLUG.to_owned(), |s| route_slug(&names, s));
    let issued = Issued { client: &client, secret: &added.value, scopes: &names, base: &base, slug };
    let written = issued.write(&args.out)?;
    match global.output {
        OutputFormat::Json => {
            let mut doc = issued.json(&pool, written.as_ref(), args.out.show_secret);
            doc["newSecretId"] = json!(added.id);
            print_json(&doc);
        }
        OutputFormat::Text => {
            outln!("Added secret {} to machine client {}; the previous secret keeps working.", added.id, client.name);
            issued.print_text(written.as_ref());
            outln!("Once the client runs with the new secret: cognigate client rotate-secret {} --finish", client.name);
        }
    }
    Ok(())
}

fn print_json(doc: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ResourceServerState {
        ResourceServerState {
            identifier: "https://mcp.example.com".into(),
            name: "demo-gateway".into(),
            scopes: vec![("mcp:all".into(), "all".into()), ("mcp:route.example".into(), "one".into())],
        }
    }

    #[test]
    fn scopes_must_be_on_the_resource_server_and_at_least_one_is_needed() {
        let named = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(check_scopes(&named(&["mcp:route.example"]), &server()).unwrap(), ["mcp:route.example"]);
        assert_eq!(
            check_scopes(&named(&["https://mcp.example.com/mcp:all", "mcp:all"]), &server()).unwrap(),
            ["mcp:all"]
        );
        let missing = check_scopes(&named(&["mcp:route.other"]), &server()).unwrap_err().to_string();
        assert!(missing.contains("mcp:all, mcp:route.example"), "{missing}");
        assert!(check_scopes(&[], &server()).unwrap_err().to_string().contains("--scope mcp:route.example"));
    }

    #[test]
    fn the_env_file_keeps_other_lines_and_replaces_its_own_keys() {
        let merged = merge_env(
            Some("# mine\nOTHER=1\nMCP_CLIENT_ID=old\n"),
            &[("MCP_CLIENT_ID", "new".into()), ("MCP_CLIENT_SECRET", "s".into())],
        );
        assert_eq!(merged, "# mine\nOTHER=1\nMCP_CLIENT_ID=new\nMCP_CLIENT_SECRET=s\n");
    }

    #[test]
    fn client_names_follow_cognito() {
        assert!(check_name("ci-bot").is_ok());
        assert!(check_name("ci/bot").is_err());
        assert!(check_name("").is_err());
    }
}
