//! Executes a plan in dependency order: the pool first, then the domain and the
//! app client concurrently (both need only the pool id).
//!
//! Every step is idempotent so an interrupted `up` converges on the next run,
//! and creation is followed by a twin check so two concurrent runs of one stack
//! end with one pool and one client: the older resource wins (ties broken by
//! id, so both runs agree) and the loser deletes what it just made.

use serde::Serialize;

use super::cognito::Cognito;
use super::cognito::branding::Branding;
use super::cognito::discover::{ClientState, PoolState};
use super::error::{Error, Result};
use super::plan::{Action, Plan, Resource, plan};
use super::progress::Progress;
use super::spec::{DomainSpec, ManagedLogin, StackSpec};
use super::state::{Actual, Hint};
use crate::secret::Secret;

/// What happened to each resource, for the summary and `--output json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Reused,
    Updated,
    Replaced,
    Adopted,
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub pool_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub domain_host: String,
    /// A custom domain's CloudFront distribution: the alias record's target.
    pub cloudfront: Option<String>,
    pub pool: Outcome,
    pub domain: Outcome,
    pub client: Outcome,
}

pub async fn apply(
    cognito: &Cognito,
    spec: &StackSpec,
    actual: Actual,
    plan_: &Plan,
    progress: &Progress,
) -> Result<Applied> {
    for twin in &actual.twin_pools {
        tracing::warn!(pool = %twin.id, "stack has a second, newer pool (left by an interrupted concurrent run); `cognigate destroy --user-pool-id {}` removes it", twin.id);
    }
    let pool_action = plan_.step(Resource::UserPool).map_or(Action::Keep, |s| s.action);
    let (pool, pool_outcome, actual, plan_) = match (actual.pool.clone(), pool_action) {
        (Some(pool), _) => {
            let outcome = if matches!(spec.pool, super::spec::PoolTarget::Adopted(_)) {
                Outcome::Adopted
            } else {
                Outcome::Reused
            };
            (pool, outcome, actual, plan_.clone())
        }
        (None, _) => {
            let created = cognito.create_pool(spec).await?;
            tracing::info!(pool = %created.id, "created user pool");
            let winner = settle_pool_race(cognito, spec, created.clone()).await?;
            if winner.id == created.id {
                (winner, Outcome::Created, actual, plan_.clone())
            } else {
                // Re-read around the pool that won: the other run may already
                // have given it a domain or a client.
                let hint = Hint { pool_id: Some(winner.id.clone()), client_id: None };
                let actual = cognito.read_stack(spec, &hint).await?;
                let replanned = plan(spec, &actual)?;
                (winner, Outcome::Reused, actual, replanned)
            }
        }
    };

    let domain_step = plan_.step(Resource::Domain).map_or(Action::Keep, |s| s.action);
    let client_step = plan_.step(Resource::AppClient).map_or(Action::Keep, |s| s.action);
    let (domain, client) = tokio::try_join!(
        converge_domain(cognito, spec, &pool, domain_step, plan_.old_domain.as_deref(), progress),
        converge_client(cognito, spec, &pool, actual.client.clone(), client_step, &plan_),
    )?;
    let (domain_outcome, created_cloudfront) = domain;
    let (client, client_outcome) = client;
    // The version the domain serves now: the spec's when cognigate just made
    // it, else the described one (an adopted domain may be on managed login).
    let described = actual.domain.as_ref().filter(|d| d.pool_id == pool.id);
    let version = match domain_outcome {
        Outcome::Created | Outcome::Replaced => Some(spec.managed_login),
        _ => described.and_then(|d| d.managed_login_version).map(ManagedLogin::from_version),
    };
    if version == Some(ManagedLogin::Branded) {
        ensure_branding(cognito, spec, &pool.id, &client.id).await?;
    }
    let cloudfront = match spec.domain {
        DomainSpec::Custom { .. } => created_cloudfront.or_else(|| described.and_then(|d| d.cloudfront.clone())),
        DomainSpec::Prefix(_) => None,
    };
    let client_secret = client
        .secret
        .clone()
        .ok_or_else(|| Error::ClientWithoutSecret { name: client.name.clone(), id: client.id.clone() })?;
    Ok(Applied {
        pool_id: pool.id,
        client_id: client.id,
        client_secret,
        domain_host: spec.domain.host(&spec.region),
        cloudfront,
        pool: pool_outcome,
        domain: domain_outcome,
        client: client_outcome,
    })
}

/// After creating a pool, look for a twin of the same stack; the oldest wins.
async fn settle_pool_race(cognito: &Cognito, spec: &StackSpec, created: PoolState) -> Result<PoolState> {
    let others: Vec<String> = cognito
        .all_pools()
        .await?
        .into_iter()
        .filter(|(id, name)| name == spec.pool_name() && *id != created.id)
        .map(|(id, _)| id)
        .collect();
    if others.is_empty() {
        return Ok(created);
    }
    let mut pools = cognito.stack_pools(spec.pool_name(), spec.stack.as_str()).await?;
    if !pools.iter().any(|p| p.id == created.id) {
        pools.push(created.clone());
        pools.sort_by_key(PoolState::age_key);
    }
    match pools.into_iter().next() {
        Some(oldest) if oldest.id != created.id => {
            tracing::warn!(ours = %created.id, kept = %oldest.id, "a concurrent run created the same stack first; removing our pool");
            // Cognito refuses to delete a protected pool (issue 13, item 2); the
            // pool is our own and seconds old, so lifting it loses nothing.
            if created.deletion_protection {
                cognito.disable_deletion_protection(&created.id).await?;
            }
            cognito.delete_pool(&created.id).await?;
            Ok(oldest)
        }
        _ => Ok(created),
    }
}

/// A managed login (v2) domain shows no sign-in page to a client without a
/// branding style (issue 13, item 5); Cognito's default style is created.
async fn ensure_branding(cognito: &Cognito, spec: &StackSpec, pool_id: &str, client_id: &str) -> Result<()> {
    match cognito.ensure_branding(pool_id, client_id).await? {
        Branding::Created => tracing::info!(client = %client_id, "created the managed login branding style"),
        Branding::Existing => {}
        Branding::Unsupported => tracing::warn!(
            "domain {} uses managed login (version 2), whose sign-in pages need a branding style for app client \
             {client_id}, and this endpoint does not implement CreateManagedLoginBranding: the login pages will \
             not work until one exists. On AWS: aws cognito-idp create-managed-login-branding --user-pool-id \
             {pool_id} --client-id {client_id} --use-cognito-provided-values",
            spec.domain.api_name()
        ),
    }
    Ok(())
}

/// The outcome, and a new custom domain's CloudFront distribution.
async fn converge_domain(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    action: Action,
    old_domain: Option<&str>,
    progress: &Progress,
) -> Result<(Outcome, Option<String>)> {
    let name = spec.domain.api_name();
    let custom = matches!(spec.domain, DomainSpec::Custom { .. });
    match action {
        Action::Keep => Ok((Outcome::Reused, None)),
        Action::Wait => {
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok((Outcome::Reused, None))
        }
        Action::Create => {
            let cloudfront = cognito.create_domain(&pool.id, &spec.domain, spec.managed_login).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok((Outcome::Created, cloudfront))
        }
        Action::Replace => {
            if let Some(old) = old_domain {
                cognito.delete_domain(&pool.id, old).await?;
                cognito.wait_domain_gone(old, progress).await?;
            }
            let cloudfront = cognito.create_domain(&pool.id, &spec.domain, spec.managed_login).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok((Outcome::Replaced, cloudfront))
        }
        Action::Update => {
            let DomainSpec::Custom { certificate_arn, .. } = &spec.domain else { return Ok((Outcome::Reused, None)) };
            cognito.update_domain_certificate(&pool.id, name, certificate_arn).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok((Outcome::Updated, None))
        }
        Action::Delete => Ok((Outcome::Reused, None)),
    }
}

async fn converge_client(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    current: Option<ClientState>,
    action: Action,
    plan_: &Plan,
) -> Result<(ClientState, Outcome)> {
    let settings = &plan_.client_settings;
    match (current, action) {
        (Some(client), Action::Update) => {
            let updated = cognito.update_client(&pool.id, &client, settings).await?;
            tracing::info!(client = %updated.id, "updated app client");
            Ok((updated, Outcome::Updated))
        }
        (Some(client), _) => Ok((client, Outcome::Reused)),
        (None, _) => {
            let name = spec.client_name();
            let created = cognito.create_client(&pool.id, &name, settings).await?;
            tracing::info!(client = %created.id, "created app client");
            // Twin check, as for pools: describe only when there are others.
            let others =
                cognito.clients(&pool.id).await?.into_iter().filter(|(id, n)| *n == name && *id != created.id).count();
            if others == 0 {
                return Ok((created, Outcome::Created));
            }
            let clients = cognito.clients_named(&pool.id, &name).await?;
            match clients.into_iter().next() {
                Some(oldest) if oldest.id != created.id => {
                    tracing::warn!(ours = %created.id, kept = %oldest.id, "a concurrent run created the client first; removing ours");
                    cognito.delete_client(&pool.id, &created.id).await?;
                    Ok((oldest, Outcome::Reused))
                }
                _ => Ok((created, Outcome::Created)),
            }
        }
    }
}

/// The twin clean-up on the SDK's replay client (the race itself cannot be
/// staged deterministically against moto).
#[cfg(test)]
mod twin_race {
    use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn answer(body: &str) -> ReplayEvent {
        ReplayEvent::new(
            http::Request::builder()
                .uri("https://cognito-idp.us-east-1.amazonaws.com/")
                .body(SdkBody::empty())
                .unwrap(),
            http::Response::builder().status(200).body(SdkBody::from(body.to_owned())).unwrap(),
        )
    }

    fn described(id: &str, created: u64) -> String {
        format!(
            r#"{{"UserPool":{{"Id":"{id}","Name":"demo","CreationDate":{created},"DeletionProtection":"ACTIVE",
                "UserPoolTags":{{"cognigate:stack":"demo","cognigate:managed":"true"}}}}}}"#
        )
    }

    /// Issue 13, item 2: the loser of a `--deletion-protection` race must lift
    /// protection on its own pool before deleting it, or Cognito refuses.
    #[tokio::test]
    async fn the_loser_of_a_protected_race_lifts_protection_before_deleting_its_pool() {
        let listed = r#"{"UserPools":[{"Id":"us-east-1_new","Name":"demo"},{"Id":"us-east-1_old","Name":"demo"}]}"#;
        let replay = StaticReplayClient::new(vec![
            answer(listed),
            answer(listed),
            answer(&described("us-east-1_new", 2_000_000_000)),
            answer(&described("us-east-1_old", 1_000_000_000)),
            answer(&described("us-east-1_new", 2_000_000_000)),
            answer("{}"),
            answer("{}"),
        ]);
        let config = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .http_client(replay.clone())
            .build();
        let cognito = Cognito::from_conf(config);
        let mut spec = crate::provision::plan::tests_support::spec();
        spec.deletion_protection = true;
        let ours = PoolState {
            id: "us-east-1_new".into(),
            name: "demo".into(),
            tags: std::collections::HashMap::from([("cognigate:stack".to_owned(), "demo".to_owned())]),
            domain: None,
            custom_domain: None,
            deletion_protection: true,
            created: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000)),
        };
        let kept = settle_pool_race(&cognito, &spec, ours).await.unwrap();
        assert_eq!(kept.id, "us-east-1_old");
        let sent: Vec<(String, serde_json::Value)> = replay
            .actual_requests()
            .map(|r| {
                let target = r.headers().get("x-amz-target").unwrap_or_default();
                let body = r.body().bytes().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or_default();
                (target.rsplit('.').next().unwrap_or_default().to_owned(), body)
            })
            .collect();
        let mutating: Vec<&(String, serde_json::Value)> =
            sent.iter().filter(|(op, _)| op.starts_with("Update") || op.starts_with("Delete")).collect();
        assert_eq!(mutating.len(), 2, "{sent:?}");
        assert_eq!(mutating[0].0, "UpdateUserPool");
        assert_eq!(mutating[0].1["UserPoolId"], "us-east-1_new");
        assert_eq!(mutating[0].1["DeletionProtection"], "INACTIVE");
        assert_eq!(mutating[1].0, "DeleteUserPool");
        assert_eq!(mutating[1].1["UserPoolId"], "us-east-1_new");
    }
}
