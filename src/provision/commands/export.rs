//! `cognigate export terraform`: the live stack as Terraform, for a team that
//! moves it into Terraform later. One resource per Cognito object, each with
//! the settings read from AWS and an `import` block naming its live id, so the
//! first `terraform apply` adopts the stack instead of creating a second one.
//!
//! The client secret never appears: Terraform reads it from AWS itself. Values
//! are written as HCL string literals (JSON escapes, which HCL shares, plus
//! `$${` and `%%{` so no value is read as a template).

use handlebars::{Handlebars, handlebars_helper};
use serde_json::{Value, json};

use super::{prepare, read_and_plan};
use crate::provision::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::provision::cognito::discover::{ClientState, DomainState, PoolState};
use crate::provision::error::{Error, Result};
use crate::provision::render;
use crate::provision::stdout::out;

const TERRAFORM_TEMPLATE: &str = include_str!("../../../templates/provision/terraform.tf.hbs");

pub(crate) async fn run(global: &GlobalArgs, args: &ExportArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack_args()).await?;
    let (actual, _) = read_and_plan(&cognito, &mut spec).await?;
    let Some(pool) = &actual.pool else {
        return Err(Error::NotProvisioned {
            stack: spec.stack.to_string(),
            region: spec.region.to_string(),
            needs: "a user pool; pass --user-pool-id for an adopted one".into(),
        });
    };
    let domain = actual.domain.as_ref().filter(|d| d.pool_id == pool.id);
    let text = match args.format {
        ExportFormat::Terraform => {
            terraform(spec.region.as_str(), spec.stack.as_str(), pool, domain, actual.client.as_ref())?
        }
    };
    match &args.out {
        None => out!("{text}"),
        Some(path) => {
            let existing = render::read_env_file(path)?;
            let outcome = render::write_if_changed(path, existing.as_deref(), &text, None)?;
            if !global.quiet {
                eprintln!("{} {}", path.display(), render::label(outcome));
            }
        }
    }
    Ok(())
}

/// The Terraform for one stack; `client` and `domain` are left out when absent.
pub(crate) fn terraform(
    region: &str,
    stack: &str,
    pool: &PoolState,
    domain: Option<&DomainState>,
    client: Option<&ClientState>,
) -> Result<String> {
    let mut tags: Vec<(&String, &String)> = pool.tags.iter().collect();
    tags.sort();
    let data = json!({
        "stack": stack,
        "region": region,
        "pool": {
            "id": pool.id,
            "name": pool.name,
            "deletion_protection": if pool.deletion_protection { "ACTIVE" } else { "INACTIVE" },
            "tags": tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        },
        "domain": domain.map(|d| json!({ "name": d.domain, "certificate_arn": d.certificate_arn })),
        "client": client.map(|c| client_data(&pool.id, c)),
    });
    engine().render_template(TERRAFORM_TEMPLATE, &data).map_err(|e| Error::Internal(format!("Terraform template: {e}")))
}

fn client_data(pool_id: &str, client: &ClientState) -> Value {
    let c = &client.described;
    let strings = |values: &[String]| values.to_vec();
    let units = c.token_validity_units().map(|u| {
        let mut units = serde_json::Map::new();
        for (key, unit) in
            [("access_token", u.access_token()), ("id_token", u.id_token()), ("refresh_token", u.refresh_token())]
        {
            if let Some(unit) = unit {
                units.insert(key.to_owned(), json!(unit.as_str()));
            }
        }
        units
    });
    json!({
        "import_id": format!("{pool_id}/{}", client.id),
        "name": client.name,
        "generate_secret": client.secret.is_some(),
        "oauth_enabled": c.allowed_o_auth_flows_user_pool_client().unwrap_or(false),
        "flows": c.allowed_o_auth_flows().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "scopes": strings(c.allowed_o_auth_scopes()),
        "callback_urls": strings(c.callback_urls()),
        "identity_providers": strings(c.supported_identity_providers()),
        "logout_urls": strings(c.logout_urls()),
        "explicit_auth_flows": c.explicit_auth_flows().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "refresh_token_validity": Some(c.refresh_token_validity()).filter(|v| *v > 0),
        "access_token_validity": c.access_token_validity(),
        "id_token_validity": c.id_token_validity(),
        "token_validity_units": units.filter(|u| !u.is_empty()),
        "enable_token_revocation": c.enable_token_revocation().unwrap_or(false),
        "prevent_user_existence_errors": c.prevent_user_existence_errors().map(|p| p.as_str()),
    })
}

/// A JSON value as an HCL literal: JSON's string escapes are HCL's, but HCL
/// also expands `${…}` and `%{…}` inside strings, so those are doubled.
fn hcl(value: &Value) -> String {
    value.to_string().replace("${", "$${").replace("%{", "%%{")
}

fn engine() -> Handlebars<'static> {
    handlebars_helper!(hcl_helper: |v: Json| hcl(v));
    let mut hb = Handlebars::new();
    hb.set_strict_mode(false);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("hcl", Box::new(hcl_helper));
    hb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_literals_escape_templates_and_quotes() {
        assert_eq!(hcl(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(hcl(&json!("https://x/${evil}/%{if}")), r#""https://x/$${evil}/%%{if}""#);
        assert_eq!(hcl(&json!(["a", "b"])), r#"["a","b"]"#);
    }
}
