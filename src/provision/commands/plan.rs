//! `cognigate plan`: what `up` would do, without doing it.

use super::{prepare, read_and_plan_with_scopes};
use crate::provision::cli::{GlobalArgs, OutputFormat, PlanArgs};
use crate::provision::error::{ExitCode, Result};
use crate::provision::stdout::{out, outln};

pub(crate) async fn run(global: &GlobalArgs, args: &PlanArgs) -> Result<ExitCode> {
    let (mut spec, cognito) = prepare(global, &args.stack).await?;
    let (_, plan) = read_and_plan_with_scopes(&cognito, &mut spec).await?;
    match global.output {
        OutputFormat::Text => {
            outln!("Stack {} ({}):", spec.stack, spec.region);
            out!("{}", plan.render());
        }
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "stack": spec.stack.as_str(),
                "region": spec.region.as_str(),
                "changes": plan.has_changes(),
                "steps": plan.steps,
                "callbackUrls": plan.client_settings.callback_urls,
                "removedCallbackUrls": plan.removed_callbacks,
            });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::Changes } else { ExitCode::Success })
}
