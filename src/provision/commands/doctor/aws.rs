//! The AWS half of `doctor`: credentials, the pool, its domain and the app
//! client, read through the `cognito` layer and judged against what the
//! gateway needs from Cognito.
//!
//! The pool is found the way the gateway would meet it: the env file's pool
//! first (so an adopted, untagged pool is found too), else by the stack's name
//! and tag. The client checked is the one the env file names, because that is
//! the one the gateway authenticates as; the stack's own client is the fallback.

use aws_sdk_cognitoidentityprovider::types::OAuthFlowType;

use super::Check;
use super::env_file::EnvFile;
use crate::contract::env_keys;
use crate::provision::cognito::Cognito;
use crate::provision::cognito::discover::{ClientState, PoolState};
use crate::provision::error::Result;
use crate::provision::spec::{OAUTH_SCOPES, PoolTarget, StackSpec, tags};

/// Client checks, listed so they can be skipped by name when there is no pool.
pub(super) const CLIENT_CHECKS: [(&str, &str); 5] = [
    ("app-client", "app client found"),
    ("client-secret", "client is confidential"),
    ("oauth-flow", "authorization code flow"),
    ("scopes", "scopes openid, profile, email"),
    ("callback-url", "gateway callback registered"),
];

const CREDENTIALS: &str = "AWS credentials and region";

/// What was found in Cognito for the stack.
pub(super) struct Found {
    pub(super) pool: PoolState,
    /// Not tagged as the stack's own: adopted with `--user-pool-id`.
    pub(super) adopted: bool,
    /// The hosted-UI host (`prefix.auth.region.amazoncognito.com` or the custom host).
    pub(super) domain_host: Option<String>,
    /// The client the env file names, else the stack's own.
    pub(super) client: Option<ClientState>,
    /// The client `up` made for the stack (`<stack>-gateway`), if any.
    pub(super) stack_client_id: Option<String>,
}

/// A `--profile` that neither AWS file defines; `None` when it exists.
pub(super) fn missing_profile(profile: &str) -> Option<Check> {
    let problem = crate::provision::profile::missing(profile)?;
    Some(Check::fail("credentials", CREDENTIALS, problem, crate::provision::profile::fix(profile)))
}

pub(super) fn credentials_failed(problem: &str) -> Check {
    Check::fail(
        "credentials",
        CREDENTIALS,
        problem,
        "give working credentials for the region (--profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`) \
         and check them with `aws sts get-caller-identity`",
    )
}

/// Credentials, pool and domain checks; the pool and client when found.
pub(super) async fn inspect(
    cognito: &Cognito,
    spec: &StackSpec,
    env: &EnvFile,
    checks: &mut Vec<Check>,
) -> Option<Found> {
    let pool = match find_pool(cognito, spec, env).await {
        Ok(pool) => pool,
        Err(e) => {
            checks.push(credentials_failed(&e.to_string()));
            return None;
        }
    };
    let place = match cognito.endpoint_override() {
        Some(endpoint) => format!("{} through {endpoint}", spec.region),
        None => spec.region.to_string(),
    };
    checks.push(Check::pass("credentials", CREDENTIALS, format!("Cognito answered in {place}")));

    let Some((pool, adopted)) = pool else {
        checks.push(Check::fail(
            "user-pool",
            "user pool found and tagged",
            format!(
                "no user pool named {} tagged {}={} in {}, and the env file names none",
                spec.pool_name(),
                tags::STACK,
                spec.stack,
                spec.region
            ),
            format!(
                "run `cognigate up --stack {}` (or pass --user-pool-id for a pool adopted with it, and --region for \
                 another region)",
                spec.stack
            ),
        ));
        checks.push(Check::skip("domain", "hosted UI domain ACTIVE", "needs the user pool"));
        return None;
    };
    checks.push(pool_check(spec, &pool, adopted));
    let (domain_check, domain_host) = domain_check(cognito, spec, &pool).await;
    checks.push(domain_check);

    let env_client = env.value(env_keys::CLIENT_ID).filter(|id| !id.is_empty());
    let client_name = spec.client_name();
    let (env_client, stack_clients) = tokio::join!(
        async {
            match env_client {
                Some(id) => cognito.describe_client(&pool.id, id).await.ok().flatten(),
                None => None,
            }
        },
        cognito.clients_named(&pool.id, &client_name),
    );
    let stack_clients = stack_clients.unwrap_or_default();
    let stack_client_id = stack_clients.first().map(|c| c.id.clone());
    let client = env_client.or_else(|| stack_clients.into_iter().next());
    Some(Found { pool, adopted, domain_host, client, stack_client_id })
}

/// The pool and whether it is adopted (untagged); `None` when there is none.
async fn find_pool(cognito: &Cognito, spec: &StackSpec, env: &EnvFile) -> Result<Option<(PoolState, bool)>> {
    let ours = |p: &PoolState| p.is_managed() && p.stack_tag() == Some(spec.stack.as_str());
    let named = match &spec.pool {
        PoolTarget::Adopted(id) => Some(id.as_str().to_owned()),
        PoolTarget::Managed => env.value(env_keys::USER_POOL_ID).filter(|id| !id.is_empty()).map(str::to_owned),
    };
    if let Some(id) = named
        && let Some(pool) = cognito.describe_pool(&id).await?
    {
        // A pool another stack manages is not this stack's, whatever the env file says.
        let someone_elses = pool.stack_tag().is_some_and(|s| s != spec.stack.as_str());
        if !someone_elses {
            let adopted = !ours(&pool);
            return Ok(Some((pool, adopted)));
        }
    }
    let pool = cognito.stack_pools(spec.pool_name(), spec.stack.as_str()).await?.into_iter().next();
    Ok(pool.map(|p| {
        let adopted = !ours(&p);
        (p, adopted)
    }))
}

fn pool_check(spec: &StackSpec, pool: &PoolState, adopted: bool) -> Check {
    const TITLE: &str = "user pool found and tagged";
    if adopted {
        return Check::pass(
            "user-pool",
            TITLE,
            format!("{} ({}), adopted: cognigate leaves it untagged and never deletes it", pool.id, pool.name),
        );
    }
    if pool.tags.get(tags::MANAGED).is_none_or(|v| v != "true") {
        return Check::fail(
            "user-pool",
            TITLE,
            format!("{} carries {}={} but not {}=true", pool.id, tags::STACK, spec.stack, tags::MANAGED),
            format!("run `cognigate up --stack {}`", spec.stack),
        );
    }
    Check::pass("user-pool", TITLE, format!("{} ({}), tagged {}={}", pool.id, pool.name, tags::STACK, spec.stack))
}

async fn domain_check(cognito: &Cognito, spec: &StackSpec, pool: &PoolState) -> (Check, Option<String>) {
    const TITLE: &str = "hosted UI domain ACTIVE";
    let up = format!("run `cognigate up --stack {}`", spec.stack);
    let (name, host) = match (&pool.custom_domain, &pool.domain) {
        (Some(custom), _) => (custom.clone(), custom.clone()),
        (None, Some(prefix)) => (prefix.clone(), format!("{prefix}.auth.{}.amazoncognito.com", spec.region)),
        (None, None) => {
            return (Check::fail("domain", TITLE, format!("user pool {} has no hosted UI domain", pool.id), up), None);
        }
    };
    let check = match cognito.describe_domain(&name).await {
        Err(e) => Check::fail("domain", TITLE, e.to_string(), "check the credentials' cognito-idp permissions"),
        Ok(None) => Check::fail("domain", TITLE, format!("domain {name} does not exist"), up),
        Ok(Some(d)) if d.pool_id != pool.id => {
            Check::fail("domain", TITLE, format!("domain {name} belongs to user pool {}", d.pool_id), up)
        }
        Ok(Some(d)) if d.status == "ACTIVE" => Check::pass("domain", TITLE, format!("{host} (ACTIVE)")),
        Ok(Some(d)) if d.status == "FAILED" => Check::fail(
            "domain",
            TITLE,
            format!("domain {name} is FAILED"),
            "for a custom domain, check that its ACM certificate is ISSUED in us-east-1 and covers the host; then \
             delete the domain and run `cognigate up` again",
        ),
        Ok(Some(d)) => Check::fail(
            "domain",
            TITLE,
            format!("domain {name} is {}", d.status),
            "wait: a prefix domain takes about a minute, a custom domain up to an hour; run `cognigate doctor` again",
        ),
    };
    (check, Some(host))
}

/// Confidential, code flow, scopes and the gateway's callback.
pub(super) fn client_checks(spec: &StackSpec, found: &Found, callback: &str) -> Vec<Check> {
    let up = format!("run `cognigate up --stack {}`, which sets it on the client", spec.stack);
    let Some(client) = &found.client else {
        let mut checks = vec![Check::fail(
            "app-client",
            "app client found",
            format!("user pool {} has no app client named {}", found.pool.id, spec.client_name()),
            format!("run `cognigate up --stack {}`", spec.stack),
        )];
        checks.extend(CLIENT_CHECKS[1..].iter().map(|(id, title)| Check::skip(id, title, "needs the app client")));
        return checks;
    };
    let described = &client.described;
    let mut checks = vec![Check::pass("app-client", "app client found", format!("{} ({})", client.id, client.name))];

    checks.push(if client.secret.is_some() {
        Check::pass("client-secret", "client is confidential", "it has a client secret")
    } else {
        Check::fail(
            "client-secret",
            "client is confidential",
            format!(
                "app client {} has no secret; the gateway authenticates to the token endpoint with one, and Cognito \
                 answers invalid_client",
                client.id
            ),
            format!(
                "a secret cannot be added to an existing client: take COGNITO_CLIENT_ID out of the env file and run \
                 `cognigate up --stack {}`, which uses (or creates) the stack's confidential client",
                spec.stack
            ),
        )
    });

    let code = described.allowed_o_auth_flows().contains(&OAuthFlowType::Code);
    let enabled = described.allowed_o_auth_flows_user_pool_client().unwrap_or(false);
    let cognito_idp = described.supported_identity_providers().iter().any(|p| p == "COGNITO");
    checks.push(match (code, enabled, cognito_idp) {
        (true, true, true) => {
            Check::pass("oauth-flow", "authorization code flow", "code flow, Cognito user pool sign-in")
        }
        _ => {
            let mut missing = Vec::new();
            if !code {
                missing.push("the code flow is not allowed");
            }
            if !enabled {
                missing.push("OAuth flows are not enabled for the client (AllowedOAuthFlowsUserPoolClient)");
            }
            if !cognito_idp {
                missing.push("COGNITO is not among its identity providers");
            }
            Check::fail("oauth-flow", "authorization code flow", missing.join("; "), up.clone())
        }
    });

    let granted = described.allowed_o_auth_scopes();
    let missing: Vec<&str> = OAUTH_SCOPES.iter().copied().filter(|s| !granted.iter().any(|g| g == s)).collect();
    checks.push(if missing.is_empty() {
        Check::pass("scopes", "scopes openid, profile, email", granted.join(" "))
    } else {
        Check::fail(
            "scopes",
            "scopes openid, profile, email",
            format!("the client does not allow {} (it allows: {})", missing.join(", "), granted.join(" ")),
            up.clone(),
        )
    });

    let registered = described.callback_urls();
    checks.push(if registered.iter().any(|u| u == callback) {
        Check::pass("callback-url", "gateway callback registered", callback)
    } else {
        let near = registered.iter().find(|u| u.trim_end_matches('/').eq_ignore_ascii_case(callback));
        let near =
            near.map(|u| format!(" ({u} is close, but Cognito compares callback URLs exactly)")).unwrap_or_default();
        let base = callback.strip_suffix(crate::contract::CALLBACK_PATH).unwrap_or(callback);
        Check::fail(
            "callback-url",
            "gateway callback registered",
            format!(
                "{callback} is not among the client's callback URLs [{}]{near}; Cognito answers redirect_mismatch",
                registered.join(", ")
            ),
            format!("run `cognigate up --stack {} --gateway-url {base}`", spec.stack),
        )
    });
    checks
}
