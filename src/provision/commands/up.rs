//! `cognigate up` (alias `apply`): read → plan → apply → write outputs.

use serde_json::json;

use super::{confirm, prepare, read_and_plan_with_scopes, unattended};
use crate::contract::StackUrls;
use crate::provision::apply::{Applied, apply};
use crate::provision::cli::{GlobalArgs, OutputFormat, UpArgs};
use crate::provision::cognito::branding::Branding;
use crate::provision::error::{Error, Result};
use crate::provision::plan::Plan;
use crate::provision::progress::Progress;
use crate::provision::render::{self, EnvValues, FileOutcome};
use crate::provision::report::label;
use crate::provision::spec::StackSpec;
use crate::provision::stdout::{out, outln};

pub(crate) async fn run(global: &GlobalArgs, args: &UpArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack).await?;
    let endpoint = cognito.endpoint_override();
    let (actual, plan) = read_and_plan_with_scopes(&cognito, &mut spec).await?;
    let text = global.output == OutputFormat::Text;
    if text && !global.quiet && plan.has_changes() {
        out!("{}", plan.render());
    }
    if !plan.removed_callbacks.is_empty() && !args.prune_callbacks && unattended(args.yes) {
        return Err(Error::Usage(format!(
            "refusing to remove the registered callback URL(s) {} of the stack's app client unattended: the users \
             of a gateway there could no longer sign in. Nothing was changed. To keep them, name their gateway \
             with --gateway-url (or --callback-url); to remove them, run again with --prune-callbacks",
            plan.removed_callbacks.join(", ")
        )));
    }
    if plan.has_changes() {
        confirm("Apply these changes?", args.yes)?;
    }
    let progress = Progress::new(text);
    let mut applied = apply(&cognito, &spec, actual, &plan, &progress).await?;
    applied.client_secret = super::secret_to_write(
        &cognito,
        &spec.files.env_file,
        &applied.pool_id,
        &applied.client_id,
        &applied.client_secret,
    )
    .await?;
    let values = EnvValues::new(
        &spec,
        endpoint.as_deref(),
        &applied.pool_id,
        &applied.domain_host,
        &applied.client_id,
        &applied.client_secret,
    );
    let urls = values.urls()?;
    let files = write_outputs(&spec, &values)?;

    let changed = plan.has_changes() || files.iter().any(|(_, _, o)| *o != FileOutcome::Unchanged);
    let summary = Summary { spec: &spec, applied: &applied, urls: &urls, files: &files, changed };
    match global.output {
        OutputFormat::Json => print_json(&summary, &plan, args.show_secret),
        // Quiet: the files are written; nothing else was asked for.
        OutputFormat::Text if global.quiet => {}
        OutputFormat::Text => print_text(&summary, args.show_secret),
    }
    Ok(())
}

/// What `up` did, for printing.
struct Summary<'a> {
    spec: &'a StackSpec,
    applied: &'a Applied,
    urls: &'a StackUrls,
    files: &'a [FileReport],
    changed: bool,
}

fn print_json(summary: &Summary, plan: &Plan, show_secret: bool) {
    let Summary { spec, applied, urls, files, changed } = summary;
    let mut doc = json!({
        "stack": spec.stack.as_str(),
        "region": spec.region.as_str(),
        "userPoolId": applied.pool_id,
        "userPoolDomain": applied.domain_host,
        "clientId": applied.client_id,
        "issuer": urls.issuer,
        "jwksUrl": urls.jwks.as_str(),
        "authorizationUrl": urls.authorize.as_str(),
        "tokenUrl": urls.token.as_str(),
        "callbackUrls": spec.callback_urls,
        "publicUrl": spec.public_url(),
        "registryUrl": format!("{}{}", spec.public_url().trim_end_matches('/'), crate::contract::MCP_REGISTRY_PATH),
        "resources": { "userPool": applied.pool, "domain": applied.domain, "appClient": applied.client },
        "selfSignup": spec.self_signup,
        "managedLogin": { "version": spec.managed_login.version(), "branding": applied.branding.map(branding_label) },
        "resourceServer": applied.resource_server.as_ref().map(|(server, outcome)| json!({
            "identifier": server.identifier,
            "outcome": outcome,
            "scopes": server.scopes.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
        })),
        "groups": applied.groups.iter().map(|(name, outcome)| (name.clone(), json!(outcome))).collect::<serde_json::Map<_, _>>(),
        "files": files.iter().map(|(kind, path, outcome)| (kind.to_string(), json!({ "path": path, "outcome": outcome }))).collect::<serde_json::Map<_, _>>(),
        "changed": changed,
        "plan": plan,
    });
    if let Some(target) = &applied.cloudfront {
        doc["customDomain"] = json!({
            "host": applied.domain_host,
            "cloudFrontDomain": target,
            "aliasRecord": { "name": applied.domain_host, "type": "CNAME", "value": target,
                             "route53": { "type": "A", "alias": true, "hostedZoneId": CLOUDFRONT_ZONE } },
        });
    }
    if show_secret {
        doc["clientSecret"] = json!(applied.client_secret.expose());
    }
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_text(summary: &Summary, show_secret: bool) {
    let Summary { spec, applied, urls, files, changed } = summary;
    if *changed {
        outln!("Stack {} ({}) is ready.", spec.stack, spec.region);
    } else {
        outln!("No changes: stack {} ({}) is up to date.", spec.stack, spec.region);
    }
    outln!("  user pool   {}  {}", applied.pool_id, label(applied.pool));
    outln!("  domain      {}  {}", applied.domain_host, label(applied.domain));
    outln!("  app client  {}  {}", applied.client_id, label(applied.client));
    if let Some(branding) = applied.branding {
        outln!("  branding    managed login v2  {}", branding_label(branding));
    }
    for (group, outcome) in &applied.groups {
        outln!("  group       {group}  {}", label(*outcome));
    }
    if let Some((server, outcome)) = &applied.resource_server {
        outln!(
            "  scopes      {}  {} (for machine clients: `cognigate client add`)",
            server.identifier,
            label(*outcome)
        );
    }
    for (kind, path, outcome) in files.iter() {
        outln!("  {kind:<11} {}  {}", path.display(), render::label(*outcome));
    }
    outln!("  callbacks   {}", spec.callback_urls.join(", "));
    outln!("  issuer      {}", urls.issuer);
    outln!("  registry    {}{}", spec.public_url().trim_end_matches('/'), crate::contract::MCP_REGISTRY_PATH);
    if let Some(target) = &applied.cloudfront {
        let host = &applied.domain_host;
        outln!("  cloudfront  {target}");
        outln!(
            "DNS: the custom domain answers only once {host} points at {target}: create a CNAME {host} -> \
             {target} (Route 53: an A alias record to that distribution, hosted zone {CLOUDFRONT_ZONE})."
        );
    }
    if show_secret {
        outln!("  secret      {}", applied.client_secret.expose());
    }
    if *changed {
        outln!(
            "Next: cognigate-gateway --env-file {} --config-dir {}",
            spec.files.env_file.display(),
            spec.files.policies_file.parent().map_or(".".into(), |p| p.display().to_string())
        );
    }
}

/// The hosted zone id every CloudFront distribution's alias target uses in Route 53.
const CLOUDFRONT_ZONE: &str = "Z2FDTNDATAQYW2";
/// The branding outcome; an endpoint without the API is a note, not a failure.
fn branding_label(branding: Branding) -> &'static str {
    match branding {
        Branding::Present => "reused",
        Branding::Created => "created",
        Branding::Unsupported => "unsupported by this endpoint (on AWS it is created; nothing to do here)",
    }
}

type FileReport = (&'static str, std::path::PathBuf, FileOutcome);

fn write_outputs(spec: &StackSpec, values: &EnvValues) -> Result<Vec<FileReport>> {
    let files = &spec.files;
    Ok(vec![
        ("env file", files.env_file.clone(), render::write_env_file(&files.env_file, values)?),
        (
            "policies",
            files.policies_file.clone(),
            render::write_policies_file(&files.policies_file, &files.policy_name, &spec.region)?,
        ),
        ("routes", files.routes_file.clone(), render::write_starter_routes(&files.routes_file, &files.policy_name)?),
    ])
}
