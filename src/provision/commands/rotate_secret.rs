//! `cognigate rotate-secret`: zero-downtime client secret rotation.
//!
//! Cognito keeps up to two secrets per app client (AddUserPoolClientSecret), so
//! rotation is two steps: add a new secret and write it to the env file while
//! the old one keeps working; once every gateway runs with the new env file,
//! `--finish` deletes the older secrets.

use aws_sdk_cognitoidentityprovider::error::SdkError;

use super::{confirm, prepare, read_and_plan};
use crate::provision::cli::{GlobalArgs, OutputFormat, RotateSecretArgs};
use crate::provision::cognito::{Cognito, errors};
use crate::provision::error::{Error, Result};
use crate::provision::render::{self, EnvValues};
use crate::secret::Secret;

pub async fn run(global: &GlobalArgs, args: &RotateSecretArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack).await?;
    let (actual, _) = read_and_plan(&cognito, &mut spec).await?;
    let (Some(pool), Some(client)) = (&actual.pool, &actual.client) else {
        return Err(Error::Conflict(format!("stack {} has no app client yet; run `cognigate up` first", spec.stack)));
    };

    if args.finish {
        let deleted = finish(&cognito, &pool.id, &client.id, args.yes).await?;
        report(
            global,
            &serde_json::json!({ "stack": spec.stack.as_str(), "clientId": client.id, "deletedSecretIds": deleted }),
            || {
                if deleted.is_empty() {
                    println!("Only one secret is active; nothing to delete.");
                } else {
                    println!("Deleted {} older secret(s); the env file's secret is the only one left.", deleted.len());
                }
            },
        );
        return Ok(());
    }

    // Cognito holds at most two secrets per client (issue 13, item 7): with two
    // already, a third is refused, and the half-finished rotation must end first.
    let held = list_secrets(&cognito, &pool.id, &client.id).await?;
    if held.len() >= 2 {
        return Err(Error::Conflict(format!(
            "app client {} already has {} client secrets, the most Cognito allows: a rotation is half done. \
             Once every gateway runs with the env file's secret, run `cognigate rotate-secret --stack {} --finish` \
             first, then rotate again",
            client.id,
            held.len(),
            spec.stack
        )));
    }
    confirm("Add a new client secret and write it to the env file?", args.yes)?;
    let response =
        cognito.client.add_user_pool_client_secret().user_pool_id(&pool.id).client_id(&client.id).send().await;
    let descriptor = match response {
        Ok(r) => r.client_secret_descriptor,
        Err(e) => return Err(unavailable_or(e, "AddUserPoolClientSecret", &cognito)),
    };
    let secret = descriptor
        .as_ref()
        .and_then(|d| d.client_secret_value())
        .map(Secret::new)
        .ok_or_else(|| Error::Conflict("AddUserPoolClientSecret returned no secret value".into()))?;
    let domain_host = spec.domain.host(&spec.region);
    let endpoint = cognito.endpoint_override();
    let outcome = render::write_env_file(
        &spec.files.env_file,
        &EnvValues::new(&spec, endpoint.as_deref(), &pool.id, &domain_host, &client.id, &secret),
    )?;
    let id = descriptor.as_ref().and_then(|d| d.client_secret_id()).unwrap_or_default();
    report(
        global,
        &serde_json::json!({ "stack": spec.stack.as_str(), "clientId": client.id, "newSecretId": id, "envFile": outcome }),
        || {
            println!("Added secret {id}; {} {}.", spec.files.env_file.display(), render::label(outcome));
            println!(
                "The previous secret keeps working. Restart the gateways, then run `cognigate rotate-secret --finish`."
            );
        },
    );
    Ok(())
}

async fn list_secrets(
    cognito: &Cognito,
    pool_id: &str,
    client_id: &str,
) -> Result<Vec<aws_sdk_cognitoidentityprovider::types::ClientSecretDescriptorType>> {
    let listed = cognito
        .client
        .list_user_pool_client_secrets()
        .user_pool_id(pool_id)
        .client_id(client_id)
        .send()
        .await
        .map_err(|e| unavailable_or(e, "ListUserPoolClientSecrets", cognito))?;
    Ok(listed.client_secrets().to_vec())
}

async fn finish(cognito: &Cognito, pool_id: &str, client_id: &str, yes: bool) -> Result<Vec<String>> {
    let mut secrets = list_secrets(cognito, pool_id, client_id).await?;
    secrets.sort_by_key(|s| s.client_secret_create_date().map(|d| d.as_nanos()));
    let Some((_newest, older)) = secrets.split_last() else { return Ok(vec![]) };
    if older.is_empty() {
        return Ok(vec![]);
    }
    confirm(
        &format!("Delete {} older secret(s)? Gateways still using them will fail to log users in.", older.len()),
        yes,
    )?;
    let mut deleted = Vec::new();
    for secret in older {
        let Some(id) = secret.client_secret_id() else { continue };
        cognito
            .client
            .delete_user_pool_client_secret()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .client_secret_id(id)
            .send()
            .await
            .map_err(|e| unavailable_or(e, "DeleteUserPoolClientSecret", cognito))?;
        deleted.push(id.to_owned());
    }
    Ok(deleted)
}

/// Secret rotation is a 2025 Cognito API; emulators and older partitions may
/// lack it, which shows as an unknown operation or a bare HTTP 500/501/404.
fn unavailable_or<E, R>(err: SdkError<E, R>, operation: &'static str, cognito: &Cognito) -> Error
where
    E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HasStatus,
{
    let status = err.raw_response().map(HasStatus::status_code);
    let code = errors::code(&err);
    let unknown_operation = matches!(code, Some("UnknownOperationException" | "InvalidAction" | "NotImplemented"))
        || (code.is_none() && matches!(status, Some(404 | 500 | 501)));
    if unknown_operation {
        return Error::Conflict(format!(
            "{operation} is not available at {}: this endpoint does not implement Cognito's client secret rotation API. \
             Nothing was changed. On AWS it is available in all commercial regions; with an emulator, rotate by \
             deleting the app client and running `cognigate up` (the client id changes)",
            cognito.endpoint.as_deref().unwrap_or("this endpoint")
        ));
    }
    errors::map(operation, cognito.endpoint.as_deref(), err)
}

/// The HTTP status of a raw response, whatever its concrete type.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_cognitoidentityprovider::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn report(global: &GlobalArgs, json: &serde_json::Value, text: impl FnOnce()) {
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        OutputFormat::Text => text(),
    }
}
