//! `cognigate rotate-secret`: zero-downtime client secret rotation.
//!
//! Cognito keeps up to two secrets per app client (AddUserPoolClientSecret), so
//! rotation is two steps: add a new secret and write it to the env file while
//! the old one keeps working; once every gateway runs with the new env file,
//! `--finish` deletes the older secrets.

use super::{confirm, prepare, public_url_of, read_and_plan};
use crate::provision::cli::{GlobalArgs, OutputFormat, RotateSecretArgs};
use crate::provision::cognito::Cognito;
use crate::provision::error::{Error, Result};
use crate::provision::render::{self, EnvValues};
use crate::provision::stdout::outln;

pub(crate) async fn run(global: &GlobalArgs, args: &RotateSecretArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack_args()).await?;
    let (actual, _) = read_and_plan(&cognito, &mut spec).await?;
    let (Some(pool), Some(client)) = (&actual.pool, &actual.client) else {
        return Err(Error::NotProvisioned {
            stack: spec.stack.to_string(),
            region: spec.region.to_string(),
            needs: "it has no app client yet".into(),
        });
    };

    if args.finish {
        let deleted = finish(&cognito, &pool.id, &client.id, args.yes).await?;
        report(
            global,
            &serde_json::json!({ "stack": spec.stack.as_str(), "clientId": client.id, "deletedSecretIds": deleted }),
            || {
                if deleted.is_empty() {
                    outln!("Only one secret is active; nothing to delete.");
                } else {
                    outln!("Deleted {} older secret(s); the env file's secret is the only one left.", deleted.len());
                }
            },
        );
        return Ok(());
    }

    // Cognito holds at most two secrets per client: with two
    // already, a third is refused, and the half-finished rotation must end first.
    let held = cognito.client_secret_ids(&pool.id, &client.id).await?;
    if held.len() >= 2 {
        return Err(Error::RotationUnfinished {
            client_id: client.id.clone(),
            secrets: held.len(),
            stack: spec.stack.to_string(),
        });
    }
    confirm("Add a new client secret and write it to the env file?", args.yes)?;
    let added = cognito.add_client_secret(&pool.id, &client.id).await?;
    let domain_host = spec.domain.host(&spec.region);
    let endpoint = cognito.endpoint_override();
    let outcome = render::write_env_file(
        &spec.files.env_file,
        &EnvValues {
            public_url: public_url_of(&spec, client),
            ..EnvValues::new(&spec, endpoint.as_deref(), &pool.id, &domain_host, &client.id, &added.value)
        },
    )?;
    let id = &added.id;
    report(
        global,
        &serde_json::json!({ "stack": spec.stack.as_str(), "clientId": client.id, "newSecretId": id, "envFile": outcome }),
        || {
            outln!("Added secret {id}; {} {}.", spec.files.env_file.display(), render::label(outcome));
            outln!(
                "The previous secret keeps working. Restart the gateways, then run `cognigate rotate-secret --finish`."
            );
        },
    );
    Ok(())
}

async fn finish(cognito: &Cognito, pool_id: &str, client_id: &str, yes: bool) -> Result<Vec<String>> {
    let secrets = cognito.client_secret_ids(pool_id, client_id).await?;
    let Some((_newest, older)) = secrets.split_last() else { return Ok(vec![]) };
    if older.is_empty() {
        return Ok(vec![]);
    }
    confirm(
        &format!("Delete {} older secret(s)? Gateways still using them will fail to log users in.", older.len()),
        yes,
    )?;
    let mut deleted = Vec::new();
    for id in older {
        cognito.delete_client_secret(pool_id, client_id, id).await?;
        deleted.push(id.clone());
    }
    Ok(deleted)
}

fn report(global: &GlobalArgs, json: &serde_json::Value, text: impl FnOnce()) {
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        OutputFormat::Text if global.quiet => {}
        OutputFormat::Text => text(),
    }
}
