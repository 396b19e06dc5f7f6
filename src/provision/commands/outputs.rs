//! `cognigate outputs`: re-render the env file and stanza of an existing stack
//! without changing anything in AWS (or print them with `--output json`).

use serde_json::json;

use super::{prepare, public_url_of, read_and_plan};
use crate::provision::cli::{GlobalArgs, OutputFormat, OutputsArgs};
use crate::provision::error::{Error, Result};
use crate::provision::render::{self, EnvValues};
use crate::provision::stdout::outln;

pub(crate) async fn run(global: &GlobalArgs, args: &OutputsArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack_args()).await?;
    let (actual, _) = read_and_plan(&cognito, &mut spec).await?;
    let domain_is_ours = actual.domain.as_ref().zip(actual.pool.as_ref()).is_some_and(|(d, p)| d.pool_id == p.id);
    let (Some(pool), Some(client), true) = (&actual.pool, &actual.client, domain_is_ours) else {
        return Err(Error::NotProvisioned {
            stack: spec.stack.to_string(),
            region: spec.region.to_string(),
            needs: format!("pool, domain {} and app client are needed", spec.domain.api_name()),
        });
    };
    let described = client.secret.clone().unwrap_or_default();
    let secret = super::secret_to_write(&cognito, &spec.files.env_file, &pool.id, &client.id, &described).await?;
    let domain_host = spec.domain.host(&spec.region);
    let endpoint = cognito.endpoint_override();
    let mut values = EnvValues::new(&spec, endpoint.as_deref(), &pool.id, &domain_host, &client.id, &secret);
    values.public_url = public_url_of(&spec, client);
    match global.output {
        OutputFormat::Json => {
            let urls = values.urls()?;
            let masked = crate::secret::Secret::new(secret.masked());
            let env_values = EnvValues { client_secret: if args.show_secret { &secret } else { &masked }, ..values };
            let doc = json!({
                "stack": spec.stack.as_str(),
                "region": spec.region.as_str(),
                "env": crate::dotenv::parse(&render::render_env_block(&env_values)?)
                    .map_err(|(line, problem)| Error::Internal(format!("env template line {line}: {problem}")))?,
                "policy": render::render_policy(&spec.files.policy_name, &spec.region)?,
                "issuer": urls.issuer,
                "jwksUrl": urls.jwks.as_str(),
                "authorizationUrl": urls.authorize.as_str(),
                "tokenUrl": urls.token.as_str(),
            });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Text => {
            let files = &spec.files;
            let env = render::write_env_file(&files.env_file, &values)?;
            let policies = render::write_policies_file(&files.policies_file, &files.policy_name, &spec.region)?;
            if !global.quiet {
                outln!("  env file    {}  {}", files.env_file.display(), render::label(env));
                outln!("  policies    {}  {}", files.policies_file.display(), render::label(policies));
            }
        }
    }
    Ok(())
}
