//! `cognigate doctor`: checks a live stack end to end and prints a checklist,
//! each failure with the command or edit that fixes it.
//!
//! The order follows what a login needs: credentials and region, the user
//! pool, its hosted-UI domain, the app client (confidential, code flow, the
//! three scopes, the gateway's callback), the local files the gateway reads
//! (env file, policy stanza), then the URLs everything derives from (login
//! page, discovery document, JWKS) and, with `--gateway-url`, the running
//! gateway itself. A check whose prerequisite failed is skipped with the
//! reason, so the first failure is the one to fix. The AWS part reads through
//! the `cognito` layer ([`aws`]), the files are compared in [`files`], and the
//! HTTP probes run concurrently ([`http`]).

mod aws;
mod env_file;
mod files;
mod http;

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use crate::contract::{self, HostedUiDomain, StackUrls, UserPoolId};
use crate::provision::cli::{DoctorArgs, GlobalArgs, OutputFormat};
use crate::provision::cognito::{Cognito, resolve_region};
use crate::provision::error::{ExitCode, Result};
use crate::provision::settings::{self, SettingsFile};
use crate::provision::spec::StackSpec;
use crate::provision::stdout::outln;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Pass,
    Fail,
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// Stable identifier (`callback-url`), for scripts reading `--output json`.
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) status: Status,
    /// What was found (pass), what is wrong (fail), or why it was not run (skip).
    pub(crate) detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(id: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { id, title, status: Status::Pass, detail: detail.into(), fix: None }
    }

    pub(crate) fn fail(
        id: &'static str,
        title: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self { id, title, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }

    pub(crate) fn skip(id: &'static str, title: &'static str, why: impl Into<String>) -> Self {
        Self { id, title, status: Status::Skip, detail: why.into(), fix: None }
    }
}

/// Exit 0 when every check passed (or was skipped with a note), 1 otherwise.
pub(crate) async fn run(global: &GlobalArgs, args: &DoctorArgs) -> Result<ExitCode> {
    let file = SettingsFile::load(&global.config)?;
    let target = settings::aws_target(global, &file)?;
    let mut checks = Vec::new();
    let stack_args = args.stack_args();
    let mut stack_label = args.id.stack.clone().or_else(|| file.stack.clone()).unwrap_or_default();
    let mut region_label = target.region.as_ref().map(ToString::to_string).unwrap_or_default();

    if let Some(problem) = target.profile.as_deref().and_then(aws::missing_profile) {
        checks.push(problem);
    } else {
        match resolve_region(&target).await {
            Err(e) => checks.push(aws::credentials_failed(&e.to_string())),
            Ok(region) => {
                region_label = region.to_string();
                let spec = settings::stack_spec(&stack_args, &file, region)?;
                stack_label = spec.stack.to_string();
                match Cognito::connect(&target, &spec.region).await {
                    Err(e) => checks.push(aws::credentials_failed(&e.to_string())),
                    Ok(cognito) => check_stack(&cognito, &spec, args, &mut checks).await,
                }
            }
        }
    }

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    match global.output {
        OutputFormat::Json => print_json(&stack_label, &region_label, &checks),
        OutputFormat::Text => print_text(&stack_label, &region_label, &checks, global.quiet),
    }
    Ok(if failed == 0 { ExitCode::Success } else { ExitCode::Failure })
}

/// Everything after a working connection: AWS, files, then HTTP.
async fn check_stack(cognito: &Cognito, spec: &StackSpec, args: &DoctorArgs, checks: &mut Vec<Check>) {
    let env = env_file::EnvFile::read(&spec.files.env_file);
    let found = aws::inspect(cognito, spec, &env, checks).await;
    let gateway_url = args.gateway_url.clone();
    let public_url = gateway_url
        .clone()
        .or_else(|| env.value(contract::env_keys::PUBLIC_URL).map(str::to_owned))
        .unwrap_or_else(|| contract::DEFAULT_PUBLIC_URL.to_owned());
    let callback = contract::callback_url(&public_url);
    let endpoint = cognito.endpoint_override();

    match &found {
        Some(found) => {
            checks.extend(aws::client_checks(spec, found, &callback));
            let login_host = args.login_page.as_deref().and_then(http::host_of);
            checks.extend(files::env_checks(
                &env,
                found,
                spec,
                endpoint.as_deref(),
                gateway_url.as_deref(),
                login_host,
            ));
        }
        None => {
            for (id, title) in aws::CLIENT_CHECKS.iter().chain(files::ENV_CHECKS.iter()) {
                checks.push(Check::skip(id, title, "needs the user pool and its app client (see above)"));
            }
        }
    }
    checks.push(files::stanza_check(spec));

    let urls = found.as_ref().and_then(|f| {
        let pool = UserPoolId::parse(&f.pool.id).ok()?;
        let domain = HostedUiDomain::parse(f.domain_host.as_deref()?).ok()?;
        StackUrls::derive(&spec.region, &pool, &domain, endpoint.as_deref()).ok()
    });
    let probes = http::Probes {
        urls: urls.as_ref(),
        client_id: found.as_ref().and_then(|f| f.client.as_ref()).map(|c| c.id.as_str()),
        callback: &callback,
        emulated: endpoint.is_some(),
        login_page: args.login_page.as_deref(),
        gateway: gateway_url.as_deref(),
        route: first_route(&spec.files.routes_file),
    };
    checks.extend(http::run(&probes).await);
}

/// The first MCP route of the gateway's routes file, for the 401 probe.
fn first_route(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut paths: Vec<&String> = doc.get("paths")?.as_object()?.keys().collect();
    paths.sort();
    paths.first().map(|p| (*p).clone())
}

fn print_json(stack: &str, region: &str, checks: &[Check]) {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let doc = json!({
        "stack": stack,
        "region": region,
        "ok": count(Status::Fail) == 0,
        "passed": count(Status::Pass),
        "failed": count(Status::Fail),
        "skipped": count(Status::Skip),
        "checks": checks,
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_text(stack: &str, region: &str, checks: &[Check], quiet: bool) {
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if quiet {
        // Only what needs doing.
        for check in checks.iter().filter(|c| c.status == Status::Fail) {
            print_check(check);
        }
        return;
    }
    outln!("cognigate doctor: stack {stack} ({region})");
    for check in checks {
        print_check(check);
    }
    if failed == 0 {
        outln!("All checks passed.");
    } else {
        outln!("{failed} check{} failed.", if failed == 1 { "" } else { "s" });
    }
}

fn print_check(check: &Check) {
    let mark = match check.status {
        Status::Pass => "[ok]  ",
        Status::Fail => "[FAIL]",
        Status::Skip => "[skip]",
    };
    outln!("  {mark} {:<34} {}", check.title, check.detail);
    if let Some(fix) = &check.fix {
        outln!("         fix: {fix}");
    }
}
