//! Command-line surface of `cognigate`: clap definitions only.
//!
//! Values here are raw and optional; [`super::settings`] merges them with
//! `cognigate.toml` and validates them into a [`super::spec::StackSpec`].

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cognigate",
    version,
    about = "Provision Amazon Cognito for an MCP gateway, reproducibly",
    long_about = "Creates or reuses a Cognito user pool, its hosted UI domain and a confidential \
                  app client for an MCP gateway, then writes the env file and the policies.json \
                  stanza that cognigate-gateway (or Zuplo) reads."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Parses the process's arguments. `AWS_PROFILE` yields to access keys in
    /// the environment, as it does in the aws CLI (its credential chain reads
    /// the keys first); `--profile` on the command line does not yield.
    pub(crate) fn parse_as_the_aws_cli_would() -> Result<Self, clap::Error> {
        let matches = Self::command().try_get_matches()?;
        let mut cli = Self::from_arg_matches(&matches)?;
        let keys_in_env = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty());
        if keys_in_env && matches.value_source("profile") == Some(ValueSource::EnvVariable) {
            cli.global.profile = None;
        }
        Ok(cli)
    }
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// AWS named profile (as the AWS CLI's --profile: used even when access keys are in the environment).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,

    /// AWS region, e.g. us-east-1 (as the AWS CLI's --region).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub(crate) region: Option<String>,

    /// Send AWS API calls to this endpoint instead of AWS (a local emulator, a proxy).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_parser = endpoint_url)]
    pub(crate) endpoint_url: Option<String>,

    /// Settings file; flags and environment variables override it.
    #[arg(long, global = true, env = "COGNIGATE_CONFIG", default_value = "cognigate.toml")]
    pub(crate) config: PathBuf,

    /// Output format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, env = "COGNIGATE_OUTPUT")]
    pub(crate) output: OutputFormat,

    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,

    /// Print only errors and the data asked for: no progress, no summaries.
    #[arg(short, long, global = true, env = "COGNIGATE_QUIET")]
    pub(crate) quiet: bool,

    /// No colours or other terminal escapes in any output (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
}

/// Checked while parsing, so a malformed endpoint is bad input (exit 64)
/// before anything runs; an empty `AWS_ENDPOINT_URL` means "not set".
fn endpoint_url(value: &str) -> Result<String, String> {
    if !value.is_empty() {
        super::validate::endpoint_url(value).map_err(|e| e.problem)?;
    }
    Ok(value.to_owned())
}

impl GlobalArgs {
    /// Whether terminal escapes (colours, spinners) are allowed at all:
    /// not with `--no-color`, not when `NO_COLOR` is set to anything non-empty
    /// (no-color.org).
    pub(crate) fn color(&self) -> bool {
        !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or reuse the stack's user pool, domain and app client, then write the outputs.
    #[command(visible_alias = "apply")]
    Up(UpArgs),

    /// Show what `up` would change, field by field, without changing anything.
    Plan(PlanArgs),

    /// Re-write the env file and policies stanza for an existing stack (no AWS change).
    Outputs(OutputsArgs),

    /// Add a new client secret (the old one keeps working), then `--finish` to drop the old one.
    RotateSecret(RotateSecretArgs),

    /// Delete the stack's domain, app clients and user pool (only pools cognigate created, unless --force).
    #[command(visible_alias = "down")]
    Destroy(DestroyArgs),

    /// Destroy managed stacks whose name starts with a prefix once they are older than a duration or past their ttl.
    Gc(GcArgs),

    /// Check a live stack end to end and print a checklist, with the fix for each failure.
    Doctor(DoctorArgs),

    /// Write the stack as infrastructure code (Terraform) with import blocks for the live ids.
    Export(ExportArgs),

    /// Print a shell completion script, e.g. `cognigate completions bash > /etc/bash_completion.d/cognigate`.
    Completions(CompletionsArgs),

    /// Print the man page (roff), e.g. `cognigate man > cognigate.1`.
    Man,

    /// Manage the stack's users: add (with an invitation or a password), list, remove, change groups.
    #[command(subcommand)]
    User(UserCommand),

    /// Manage machine clients (agents, CI jobs) that call the gateway with the client credentials grant.
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,
    #[command(flatten)]
    pub(crate) policies: PolicyFileArgs,

    /// The gateway's public URL: its callback must be registered, and the running gateway is probed.
    #[arg(long, env = "COGNIGATE_GATEWAY_URL")]
    pub(crate) gateway_url: Option<String>,

    /// Gateway routes file; its first route is probed for the 401 challenge.
    #[arg(long, env = "COGNIGATE_ROUTES_FILE")]
    pub(crate) routes_file: Option<PathBuf>,

    /// Against an emulator: the local login page standing in for the hosted UI (checked instead of skipped).
    #[arg(long, env = "COGNIGATE_LOGIN_PAGE")]
    pub(crate) login_page: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// aws_cognito_user_pool, aws_cognito_user_pool_domain and aws_cognito_user_pool_client, with import blocks.
    Terraform,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// What to write.
    #[arg(value_enum)]
    pub(crate) format: ExportFormat,

    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    #[command(flatten)]
    pub(crate) domain: DomainArgs,
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,

    /// Write to this file instead of stdout.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Which stack: every command that reads or changes one takes these.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StackIdArgs {
    /// Stack name: the user pool's name and its `cognigate:stack` tag.
    #[arg(long, env = "COGNIGATE_STACK", hide_env_values = true)]
    pub(crate) stack: Option<String>,

    /// Use this existing user pool instead of finding the stack's own by name and tag (an adopted
    /// pool stays untagged).
    #[arg(long, env = "COGNIGATE_USER_POOL_ID", hide_env_values = true)]
    pub(crate) user_pool_id: Option<String>,
}

/// The hosted UI domain, for the commands that find or create it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DomainArgs {
    /// Hosted UI prefix: <prefix>.auth.<region>.amazoncognito.com (default: derived from the stack).
    #[arg(long, env = "COGNIGATE_DOMAIN_PREFIX", hide_env_values = true, conflicts_with = "custom_domain")]
    pub(crate) domain_prefix: Option<String>,

    /// Custom hosted UI domain (needs --certificate-arn, an ACM certificate in us-east-1).
    #[arg(long, env = "COGNIGATE_CUSTOM_DOMAIN", hide_env_values = true, requires = "certificate_arn")]
    pub(crate) custom_domain: Option<String>,

    /// ACM certificate for --custom-domain.
    #[arg(long, env = "COGNIGATE_CERTIFICATE_ARN", hide_env_values = true)]
    pub(crate) certificate_arn: Option<String>,
}

/// What the stack should look like: only `up` and `plan` take these.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ShapeArgs {
    /// Public URL of the gateway; `/oauth/callback` is appended for the client's callback URL. Repeatable.
    /// The first one is written to the env file as COGNIGATE_PUBLIC_URL for the gateway.
    #[arg(long = "gateway-url", env = "COGNIGATE_GATEWAY_URL", hide_env_values = true, value_delimiter = ',')]
    pub(crate) gateway_urls: Vec<String>,

    /// An extra exact callback URL for the app client. Repeatable.
    #[arg(long = "callback-url", env = "COGNIGATE_CALLBACK_URL", hide_env_values = true, value_delimiter = ',')]
    pub(crate) callback_urls: Vec<String>,

    /// Do not add http://localhost:9000/oauth/callback (the local gateway's callback).
    #[arg(long, env = "COGNIGATE_NO_LOCALHOST_CALLBACK", hide_env_values = true)]
    pub(crate) no_localhost_callback: bool,

    /// Mark the stack for `cognigate gc` after this long, e.g. 2h or 7days.
    #[arg(long, env = "COGNIGATE_TTL", hide_env_values = true)]
    pub(crate) ttl: Option<String>,

    /// Turn on the pool's deletion protection when creating it.
    #[arg(long, env = "COGNIGATE_DELETION_PROTECTION", hide_env_values = true)]
    pub(crate) deletion_protection: bool,

    /// Gateway routes file; a starter one is written when it does not exist.
    #[arg(long, env = "COGNIGATE_ROUTES_FILE", hide_env_values = true)]
    pub(crate) routes_file: Option<PathBuf>,

    /// Let anyone sign up through the login pages (default: only an administrator creates users,
    /// with `cognigate user add`).
    #[arg(long, env = "COGNIGATE_SELF_SIGNUP", hide_env_values = true)]
    pub(crate) self_signup: bool,

    /// A user group the pool should have (created when missing; groups not listed are kept). Repeatable;
    /// the variable takes a comma-separated list.
    #[arg(
        long = "group",
        value_name = "NAME",
        env = "COGNIGATE_GROUPS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub(crate) groups: Vec<String>,

    /// The hosted login's version: v1 (the classic hosted UI) or v2 (managed login, with
    /// Cognito's default branding created for the app client). Default: v1.
    #[arg(long, value_enum, env = "COGNIGATE_MANAGED_LOGIN", hide_env_values = true)]
    pub(crate) managed_login: Option<ManagedLoginArg>,

    /// The pool's feature plan (billed per monthly active user, Lite cheapest). Default for a new
    /// pool: lite with --managed-login v1, essentials with v2 (managed login needs it). An existing
    /// pool keeps its plan unless this is given.
    #[arg(long, value_enum, env = "COGNIGATE_FEATURE_PLAN", hide_env_values = true)]
    pub(crate) feature_plan: Option<FeaturePlanArg>,

    /// Identifier of the resource server whose scopes machine clients carry (default: the gateway URL).
    /// Give the gateway the same one (`gateway.resourceServer` on its policy) when it differs.
    #[arg(long, value_name = "ID", env = "COGNIGATE_RESOURCE_SERVER", hide_env_values = true)]
    pub(crate) resource_server: Option<String>,

    /// Display name of that resource server (default: <stack>-gateway).
    #[arg(long, value_name = "NAME", env = "COGNIGATE_RESOURCE_SERVER_NAME", hide_env_values = true)]
    pub(crate) resource_server_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FeaturePlanArg {
    Lite,
    Essentials,
    Plus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ManagedLoginArg {
    V1,
    V2,
}

/// The env file cognigate writes the stack's settings into.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct EnvFileArgs {
    /// Env file holding the Cognito settings (other keys in it are kept).
    #[arg(long, env = "COGNIGATE_ENV_FILE", hide_env_values = true)]
    pub(crate) env_file: Option<PathBuf>,
}

/// The gateway policies file and the name of cognigate's stanza in it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PolicyFileArgs {
    /// Gateway policies file holding the stanza (other policies in it are kept).
    #[arg(long, env = "COGNIGATE_POLICIES_FILE", hide_env_values = true)]
    pub(crate) policies_file: Option<PathBuf>,

    /// Name of the policy stanza in the policies file.
    #[arg(long, env = "COGNIGATE_POLICY_NAME", hide_env_values = true)]
    pub(crate) policy_name: Option<String>,
}

/// Everything a stack is resolved from. `up` and `plan` take all of it as
/// flags; the other commands contribute the groups they take, and
/// [`super::settings`] fills the rest from `cognigate.toml`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct StackArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    #[command(flatten)]
    pub(crate) domain: DomainArgs,
    #[command(flatten)]
    pub(crate) shape: ShapeArgs,
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,
    #[command(flatten)]
    pub(crate) policies: PolicyFileArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) stack: StackArgs,

    /// Print the client secret in the output (it is always written to the env file).
    #[arg(long)]
    pub(crate) show_secret: bool,

    /// Apply without asking (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,

    /// Let an unattended run (--yes, CI) remove callback URLs the app client has registered but the
    /// --gateway-url / --callback-url list leaves out. Without it such a run stops before changing anything.
    #[arg(long)]
    pub(crate) prune_callbacks: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) stack: StackArgs,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 when something failed,
    /// 64 on bad input (flags, settings).
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OutputsArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    #[command(flatten)]
    pub(crate) domain: DomainArgs,
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,
    #[command(flatten)]
    pub(crate) policies: PolicyFileArgs,

    /// Include the client secret in `--output json`.
    #[arg(long)]
    pub(crate) show_secret: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RotateSecretArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    #[command(flatten)]
    pub(crate) domain: DomainArgs,
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,

    /// Delete every secret but the newest, once all gateways run with the new one.
    #[arg(long)]
    pub(crate) finish: bool,

    /// Do not ask for confirmation (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    /// Env file that --clean-files removes cognigate's keys from.
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,
    /// Policies file that --clean-files removes the stanza from.
    #[command(flatten)]
    pub(crate) policies: PolicyFileArgs,

    /// Also delete pools cognigate did not create (untagged or adopted with --user-pool-id) and
    /// pools with deletion protection on (it is turned off first).
    #[arg(long)]
    pub(crate) force: bool,

    /// Do not ask for confirmation (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,

    /// Also remove cognigate's keys from the env file and its stanza from the policies file.
    #[arg(long)]
    pub(crate) clean_files: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Only pools whose name starts with this (required, never empty).
    #[arg(long, env = "COGNIGATE_GC_PREFIX")]
    pub(crate) prefix: String,

    /// Remove managed stacks created longer ago than this, e.g. 2h or 7days. Without it only
    /// stacks whose own `cognigate:ttl` has passed are removed.
    #[arg(long, env = "COGNIGATE_GC_OLDER_THAN", hide_env_values = true)]
    pub(crate) older_than: Option<String>,

    /// Show what would be removed and why; delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Also remove stacks with deletion protection on (it is turned off first).
    #[arg(long)]
    pub(crate) force: bool,
}

impl DoctorArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        let shape = ShapeArgs {
            gateway_urls: self.gateway_url.iter().cloned().collect(),
            routes_file: self.routes_file.clone(),
            ..ShapeArgs::default()
        };
        StackArgs {
            id: self.id.clone(),
            shape,
            env: self.env.clone(),
            policies: self.policies.clone(),
            ..StackArgs::default()
        }
    }
}

impl ExportArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        StackArgs { id: self.id.clone(), domain: self.domain.clone(), env: self.env.clone(), ..StackArgs::default() }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user named by their e-mail address; Cognito e-mails an invitation with a temporary
    /// password unless --password-stdin or --suppress-invite is given.
    Add(UserAddArgs),
    /// List the pool's users with their status and groups.
    List(UserListArgs),
    /// Delete a user.
    Remove(UserRemoveArgs),
    /// Add a user to groups or remove them from groups.
    Groups(UserGroupsArgs),
}

/// Which stack's pool a `user` command works on.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct UserPoolArgs {
    #[command(flatten)]
    pub(crate) id: StackIdArgs,
    /// Env file of a previous `up` (its pool id is used when it belongs to the stack).
    #[command(flatten)]
    pub(crate) env: EnvFileArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UserAddArgs {
    /// The user's e-mail address; it is also their username.
    pub(crate) email: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// Add the user to this group (it must exist: `cognigate up --group NAME`). Repeatable.
    #[arg(long = "group", value_name = "NAME")]
    pub(crate) groups: Vec<String>,

    /// Read a permanent password from stdin (first line) instead of sending an invitation.
    #[arg(long)]
    pub(crate) password_stdin: bool,

    /// Do not send the invitation e-mail (hand the temporary password over yourself, or reset it later).
    #[arg(long)]
    pub(crate) suppress_invite: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UserListArgs {
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UserRemoveArgs {
    /// The user's e-mail address (their username).
    pub(crate) email: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// Do not ask for confirmation (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UserGroupsArgs {
    /// The user's e-mail address (their username).
    pub(crate) email: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// Add the user to this group. Repeatable.
    #[arg(long = "add", value_name = "GROUP")]
    pub(crate) add: Vec<String>,

    /// Remove the user from this group. Repeatable.
    #[arg(long = "remove", value_name = "GROUP")]
    pub(crate) remove: Vec<String>,
}

impl UserPoolArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        StackArgs { id: self.id.clone(), env: self.env.clone(), ..StackArgs::default() }
    }
}

impl OutputsArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        StackArgs {
            id: self.id.clone(),
            domain: self.domain.clone(),
            env: self.env.clone(),
            policies: self.policies.clone(),
            ..StackArgs::default()
        }
    }
}

impl RotateSecretArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        StackArgs { id: self.id.clone(), domain: self.domain.clone(), env: self.env.clone(), ..StackArgs::default() }
    }
}

impl DestroyArgs {
    pub(crate) fn stack_args(&self) -> StackArgs {
        StackArgs {
            id: self.id.clone(),
            env: self.env.clone(),
            policies: self.policies.clone(),
            ..StackArgs::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Create a machine client: a confidential app client with only the client credentials grant and
    /// the given route scopes. Its secret is shown once (or written to a file).
    Add(ClientAddArgs),
    /// List the stack's machine clients with their scopes.
    List(ClientListArgs),
    /// Delete a machine client: it gets no new token; tokens it holds end within their lifetime.
    Remove(ClientRemoveArgs),
    /// Add a second secret to a machine client (the old one keeps working), then `--finish` to drop the old one.
    RotateSecret(ClientRotateArgs),
}

/// Where a new client secret goes besides (or instead of) the terminal.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SecretOutArgs {
    /// Write the secret alone to this file (mode 0600, atomically) instead of printing it.
    #[arg(long, value_name = "PATH", conflicts_with = "write_env")]
    pub(crate) secret_file: Option<PathBuf>,

    /// Write MCP_CLIENT_ID, MCP_CLIENT_SECRET, MCP_TOKEN_URL and MCP_SERVER_URL to this env file (mode 0600,
    /// atomically; other lines kept) instead of printing the secret.
    #[arg(long, value_name = "PATH")]
    pub(crate) write_env: Option<PathBuf>,

    /// Include the secret in `--output json` (masked otherwise).
    #[arg(long)]
    pub(crate) show_secret: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ClientAddArgs {
    /// A name for the client (shown in `client list` and the Cognito console).
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// A scope the client may use: mcp:route.SLUG (one route) or mcp:all (every route). Repeatable.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,

    /// The resource server holding the scopes, when the pool has more than one of cognigate's.
    #[arg(long, value_name = "ID")]
    pub(crate) resource_server: Option<String>,

    #[command(flatten)]
    pub(crate) out: SecretOutArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ClientListArgs {
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ClientRemoveArgs {
    /// The client's name or client id.
    pub(crate) client: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// Do not ask for confirmation (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ClientRotateArgs {
    /// The client's name or client id.
    pub(crate) client: String,
    #[command(flatten)]
    pub(crate) pool: UserPoolArgs,

    /// Delete every secret but the newest, once the client runs with the new one.
    #[arg(long)]
    pub(crate) finish: bool,

    /// Do not ask for confirmation (implied when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,

    #[command(flatten)]
    pub(crate) out: SecretOutArgs,
}
