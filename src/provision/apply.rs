//! Executes a plan in dependency order: the pool first, then the domain and the
//! app client concurrently (both need only the pool id).
//!
//! Every step is idempotent so an interrupted `up` converges on the next run,
//! and creation is followed by a twin check so two concurrent runs of one stack
//! end with one pool and one client: the older resource wins (ties broken by
//! id, so both runs agree) and the loser deletes what it just made.

use serde::Serialize;

use super::cognito::Cognito;
use super::cognito::discover::{ClientState, PoolState};
use super::error::{Error, Result};
use super::plan::{Action, Plan, Resource, plan};
use super::progress::Progress;
use super::spec::{DomainSpec, StackSpec};
use super::state::{Actual, Hint};
use crate::secret::Secret;

/// What happened to each resource, for the summary and `--output json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Created,
    Reused,
    Updated,
    Replaced,
    Adopted,
}

#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub pool_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub domain_host: String,
    pub pool: Outcome,
    pub domain: Outcome,
    pub client: Outcome,
}

pub(crate) async fn apply(
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
    let (domain_outcome, client) = tokio::try_join!(
        converge_domain(cognito, spec, &pool, domain_step, plan_.old_domain.as_deref(), progress),
        converge_client(cognito, spec, &pool, actual.client.clone(), client_step, &plan_),
    )?;
    let (client, client_outcome) = client;
    let client_secret = client
        .secret
        .clone()
        .ok_or_else(|| Error::ClientWithoutSecret { name: client.name.clone(), id: client.id.clone() })?;
    Ok(Applied {
        pool_id: pool.id,
        client_id: client.id,
        client_secret,
        domain_host: spec.domain.host(&spec.region),
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
            cognito.delete_pool(&created.id).await?;
            Ok(oldest)
        }
        _ => Ok(created),
    }
}

async fn converge_domain(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    action: Action,
    old_domain: Option<&str>,
    progress: &Progress,
) -> Result<Outcome> {
    let name = spec.domain.api_name();
    let custom = matches!(spec.domain, DomainSpec::Custom { .. });
    match action {
        Action::Keep => Ok(Outcome::Reused),
        Action::Wait => {
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok(Outcome::Reused)
        }
        Action::Create => {
            cognito.create_domain(&pool.id, &spec.domain).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok(Outcome::Created)
        }
        Action::Replace => {
            if let Some(old) = old_domain {
                cognito.delete_domain(&pool.id, old).await?;
                cognito.wait_domain_gone(old, progress).await?;
            }
            cognito.create_domain(&pool.id, &spec.domain).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok(Outcome::Replaced)
        }
        Action::Update => {
            let DomainSpec::Custom { certificate_arn, .. } = &spec.domain else { return Ok(Outcome::Reused) };
            cognito.update_domain_certificate(&pool.id, name, certificate_arn).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok(Outcome::Updated)
        }
        Action::Delete => Ok(Outcome::Reused),
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
