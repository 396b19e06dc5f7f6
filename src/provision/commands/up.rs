//! `cognigate up` (alias `apply`): read → plan → apply → write outputs.

use serde_json::json;

use super::{confirm, prepare, read_and_plan};
use crate::contract::StackUrls;
use crate::provision::apply::{Applied, apply};
use crate::provision::cli::{GlobalArgs, OutputFormat, UpArgs};
use crate::provision::error::Result;
use crate::provision::plan::Plan;
use crate::provision::progress::Progress;
use crate::provision::render::{self, EnvValues, FileOutcome};
use crate::provision::report::label;
use crate::provision::spec::StackSpec;

pub(crate) async fn run(global: &GlobalArgs, args: &UpArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack_args()).await?;
    let endpoint = cognito.endpoint_override();
    let (actual, plan) = read_and_plan(&cognito, &mut spec).await?;
    let text = global.output == OutputFormat::Text;
    if text && plan.has_changes() {
        print!("{}", plan.render());
    }
    if plan.has_changes() {
        confirm("Apply these changes?", args.yes)?;
    }
    let progress = Progress::new(text);
    let applied = apply(&cognito, &spec, actual, &plan, &progress).await?;
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
        "resources": { "userPool": applied.pool, "domain": applied.domain, "appClient": applied.client },
        "files": files.iter().map(|(kind, path, outcome)| (kind.to_string(), json!({ "path": path, "outcome": outcome }))).collect::<serde_json::Map<_, _>>(),
        "changed": changed,
        "plan": plan,
    });
    if show_secret {
        doc["clientSecret"] = json!(applied.client_secret.expose());
    }
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_text(summary: &Summary, show_secret: bool) {
    let Summary { spec, applied, urls, files, changed } = summary;
    if *changed {
        println!("Stack {} ({}) is ready.", spec.stack, spec.region);
    } else {
        println!("No changes: stack {} ({}) is up to date.", spec.stack, spec.region);
    }
    println!("  user pool   {}  {}", applied.pool_id, label(applied.pool));
    println!("  domain      {}  {}", applied.domain_host, label(applied.domain));
    println!("  app client  {}  {}", applied.client_id, label(applied.client));
    for (kind, path, outcome) in files.iter() {
        println!("  {kind:<11} {}  {}", path.display(), render::label(*outcome));
    }
    println!("  issuer      {}", urls.issuer);
    if show_secret {
        println!("  secret      {}", applied.client_secret.expose());
    }
    if *changed {
        println!(
            "Next: cognigate-gateway --env-file {} --config-dir {}",
            spec.files.env_file.display(),
            spec.files.policies_file.parent().map_or(".".into(), |p| p.display().to_string())
        );
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
