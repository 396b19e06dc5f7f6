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
use super::cognito::errors::CognitoError;
use super::cognito::machine::ResourceServerState;
use super::cognito::pool::PoolChange;
use super::error::{Error, Result};
use super::plan::{Action, FieldChange, Plan, Resource, merged_resource_server, plan};
use super::progress::Progress;
use super::spec::{DomainSpec, ManagedLogin, ResourceServerSpec, StackSpec};
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
    pub(crate) pool_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) domain_host: String,
    /// A custom domain's CloudFront distribution: the alias record's target.
    pub(crate) cloudfront: Option<String>,
    pub(crate) pool: Outcome,
    pub(crate) domain: Outcome,
    pub(crate) client: Outcome,
    /// The stack's listed groups and what happened to each.
    pub(crate) groups: Vec<(String, Outcome)>,
    /// Managed login v2 only: the app client's branding.
    pub(crate) branding: Option<Branding>,
    /// The machine clients' resource server as it now is, and what happened to it.
    pub(crate) resource_server: Option<(ResourceServerState, Outcome)>,
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
        (Some(pool), action) => {
            let outcome = if action == Action::Update {
                let changed = |field: &str| {
                    plan_.step(Resource::UserPool).is_some_and(|s| s.changes.iter().any(|c| c.field == field))
                };
                let change = PoolChange {
                    admin_only: changed("sign_up").then_some(!spec.self_signup),
                    verify_email: changed("auto_verified_attributes"),
                    feature_plan: changed("feature_plan").then_some(spec.feature_plan),
                };
                cognito.change_pool(&pool.id, &change).await?;
                tracing::info!(pool = %pool.id, ?change, "updated the pool's settings");
                Outcome::Updated
            } else if matches!(spec.pool, super::spec::PoolTarget::Adopted(_)) {
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
    let domain_changes = plan_.step(Resource::Domain).map(|s| s.changes.as_slice()).unwrap_or_default();
    let client_step = plan_.step(Resource::AppClient).map_or(Action::Keep, |s| s.action);
    let (domain, client, groups, resource_server) = tokio::try_join!(
        converge_domain(cognito, spec, &pool, (domain_step, domain_changes), plan_.old_domain.as_deref(), progress),
        converge_client(cognito, spec, &pool, actual.client.clone(), client_step, &plan_),
        converge_groups(cognito, spec, &pool, &plan_),
        converge_resource_server(cognito, spec, &pool, actual.resource_server.as_ref(), &plan_),
    )?;
    let (domain_outcome, created_cloudfront) = domain;
    let (client, client_outcome) = client;
    let branding = match spec.managed_login {
        ManagedLogin::V1 => None,
        ManagedLogin::V2 => Some(cognito.ensure_branding(&pool.id, &client.id).await?),
    };
    let described = actual.domain.as_ref().filter(|d| d.pool_id == pool.id);
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
        groups,
        branding,
        resource_server,
    })
}

/// Creates the machine clients' resource server, or gives it the scopes it
/// lacks (sending back the ones it has: an update drops what it is not sent).
async fn converge_resource_server(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    actual: Option<&ResourceServerState>,
    plan_: &Plan,
) -> Result<Option<(ResourceServerState, Outcome)>> {
    let (Some(desired), Some(step)) = (&spec.resource_server, plan_.step(Resource::MachineScopes)) else {
        return Ok(None);
    };
    Ok(Some(match (step.action, actual) {
        (Action::Create, _) | (Action::Update, None) => {
            match cognito.create_resource_server(&pool.id, desired).await? {
                Some(created) => {
                    tracing::info!(identifier = %desired.identifier, "created the resource server");
                    (created, Outcome::Created)
                }
                // A concurrent run of the stack made it: converge to that one.
                None => match cognito.describe_resource_server(&pool.id, &desired.identifier).await? {
                    Some(existing) => {
                        let merged = merged_resource_server(desired, &existing);
                        if merged.scopes.len() == existing.scopes.len() {
                            (existing, Outcome::Reused)
                        } else {
                            give_scopes(cognito, &pool.id, &merged, existing).await?
                        }
                    }
                    None => (
                        cognito.create_resource_server(&pool.id, desired).await?.ok_or_else(|| {
                            Error::Internal(format!(
                                "resource server {} comes and goes; run `cognigate up` again",
                                desired.identifier
                            ))
                        })?,
                        Outcome::Created,
                    ),
                },
            }
        }
        (Action::Update, Some(actual)) => {
            give_scopes(cognito, &pool.id, &merged_resource_server(desired, actual), actual.clone()).await?
        }
        (_, Some(actual)) => (actual.clone(), Outcome::Reused),
        (_, None) => return Ok(None),
    }))
}

/// Gives the resource server the scopes of `merged`. An endpoint without
/// UpdateResourceServer (the local mode's emulator) keeps `actual` as it is,
/// with a warning naming the scopes it lacks: the rest of the stack works,
/// and only a machine client asking for a missing scope is refused.
async fn give_scopes(
    cognito: &Cognito,
    pool_id: &str,
    merged: &ResourceServerSpec,
    actual: ResourceServerState,
) -> Result<(ResourceServerState, Outcome)> {
    match cognito.update_resource_server(pool_id, merged).await? {
        Some(updated) => {
            tracing::info!(identifier = %merged.identifier, "gave the resource server its missing scopes");
            Ok((updated, Outcome::Updated))
        }
        None => {
            let missing: Vec<&str> = merged
                .scopes
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| !actual.scopes.iter().any(|(have, _)| have == name))
                .collect();
            tracing::warn!(
                identifier = %merged.identifier,
                missing = %missing.join(", "),
                "this endpoint does not implement UpdateResourceServer (an emulator); the resource server keeps \
                 its scopes and machine clients cannot be given the missing ones here (on AWS, `up` adds them)"
            );
            Ok((actual, Outcome::Reused))
        }
    }
}

/// Creates the listed groups the plan found missing, one after another
/// (a handful at most, and Cognito throttles bursts of CreateGroup).
async fn converge_groups(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    plan_: &Plan,
) -> Result<Vec<(String, Outcome)>> {
    let mut groups = Vec::new();
    for step in plan_.steps.iter().filter(|s| s.resource == Resource::Group && spec.groups.contains(&s.name)) {
        let outcome = if step.action == Action::Create {
            cognito.create_group(&pool.id, &step.name).await?;
            tracing::info!(group = %step.name, "created group");
            Outcome::Created
        } else {
            Outcome::Reused
        };
        groups.push((step.name.clone(), outcome));
    }
    Ok(groups)
}

/// After creating a pool, look for a twin of the same stack; the oldest wins.
///
/// "Oldest" is by CreationDate, which Cognito stamps when it starts a create,
/// while the pool shows in listings only once the create is done; so a run
/// can create the younger pool, list before the older one is visible, see no
/// twin and keep its pool, while the other run sees that younger twin and
/// keeps its own older one: two stacks (seen under load). The older run
/// therefore does not decide alone: it watches each younger twin until the
/// twin's run either yields (the twin disappears) or has committed to it (it
/// has a domain or an app client, which a yielding run never creates), and
/// in that case yields itself.
async fn settle_pool_race(cognito: &Cognito, spec: &StackSpec, created: PoolState) -> Result<PoolState> {
    let others = twin_ids(cognito, spec, &created).await?;
    if others.is_empty() {
        return Ok(created);
    }
    let mut pools = cognito.stack_pools_among(&others, spec.stack.as_str()).await?;
    if !pools.iter().any(|p| p.id == created.id) {
        pools.push(created.clone());
        pools.sort_by_key(PoolState::age_key);
    }
    let winner = match pools.first() {
        Some(oldest) if oldest.id != created.id => Some(oldest.clone()),
        _ => committed_younger_twin(cognito, &pools[1..]).await?,
    };
    match winner {
        Some(kept) => {
            tracing::warn!(ours = %created.id, kept = %kept.id, "a concurrent run created the same stack; removing our pool");
            // Cognito refuses to delete a protected pool; the
            // pool is our own and seconds old, so lifting it loses nothing.
            if created.deletion_protection {
                cognito.disable_deletion_protection(&created.id).await?;
            }
            cognito.delete_pool(&created.id).await?;
            Ok(kept)
        }
        None => Ok(created),
    }
}

/// How long the older run watches a younger twin, and how often.
const TWIN_WATCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
const TWIN_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Watches the younger twins until each is gone or one was committed to by
/// its run (a domain or an app client); returns that one. A twin that does
/// neither within the limit is left, with the warning `up` gives for twins.
async fn committed_younger_twin(cognito: &Cognito, younger: &[PoolState]) -> Result<Option<PoolState>> {
    let started = std::time::Instant::now();
    let mut pending: Vec<PoolState> = younger.to_vec();
    while !pending.is_empty() && started.elapsed() < TWIN_WATCH_LIMIT {
        let mut still = Vec::new();
        for twin in pending {
            let Some(now) = cognito.describe_pool(&twin.id).await? else { continue };
            if now.domain.is_some() || now.custom_domain.is_some() {
                return Ok(Some(now));
            }
            match cognito.clients(&now.id).await {
                Ok(clients) if !clients.is_empty() => return Ok(Some(now)),
                Ok(_) => still.push(now),
                // Deleted between the two calls: its run yielded.
                Err(CognitoError::Service { code, .. }) if code == "ResourceNotFoundException" => {}
                Err(e) => return Err(e.into()),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(TWIN_WATCH_INTERVAL).await;
        }
    }
    Ok(None)
}

/// Pools named like the stack other than the one just created.
async fn twin_ids(cognito: &Cognito, spec: &StackSpec, created: &PoolState) -> Result<Vec<String>> {
    Ok(cognito
        .all_pools()
        .await?
        .into_iter()
        .filter(|(id, name)| name == spec.pool_name() && *id != created.id)
        .map(|(id, _)| id)
        .collect())
}

async fn converge_domain(
    cognito: &Cognito,
    spec: &StackSpec,
    pool: &PoolState,
    (action, changes): (Action, &[FieldChange]),
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
        Action::Update if changes.iter().any(|c| c.field == "managed_login_version") => {
            // Sends the certificate of a custom domain along.
            cognito.update_domain_version(&pool.id, &spec.domain, spec.managed_login).await?;
            cognito.wait_domain_active(name, custom, progress).await?;
            Ok((Outcome::Updated, None))
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
            settle_client_race(cognito, &pool.id, &name, created).await
        }
    }
}

/// After creating the app client, look for a twin of the same name; the
/// oldest wins, as for pools, and for the same reason the oldest does not
/// decide alone. Two creates in one second are ordered by id (CreationDate
/// has whole seconds on some endpoints), so the run whose client is younger
/// by that order may have listed before the other client was visible, kept
/// its own and returned. A run whose client comes first therefore watches
/// the younger twin for a moment: a yielding run deletes its client within a
/// few calls; one that stays was kept by a run that never saw ours, and ours
/// yields to it.
async fn settle_client_race(
    cognito: &Cognito,
    pool_id: &str,
    name: &str,
    created: ClientState,
) -> Result<(ClientState, Outcome)> {
    // Describe only when there are others.
    let others = cognito.clients(pool_id).await?.into_iter().filter(|(id, n)| n == name && *id != created.id).count();
    if others == 0 {
        return Ok((created, Outcome::Created));
    }
    let clients = cognito.clients_named(pool_id, name).await?;
    let winner = match clients.first() {
        Some(oldest) if oldest.id != created.id => Some(oldest.clone()),
        _ => kept_younger_client(cognito, pool_id, &clients[1..]).await?,
    };
    match winner {
        Some(kept) => {
            tracing::warn!(ours = %created.id, kept = %kept.id, "a concurrent run created the client too; removing ours");
            cognito.delete_client(pool_id, &created.id).await?;
            Ok((kept, Outcome::Reused))
        }
        None => Ok((created, Outcome::Created)),
    }
}

/// How long a run whose client came first waits for a younger twin's run to
/// yield: it deletes its client a list, a describe and a delete after
/// creating it.
const CLIENT_TWIN_WATCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The first younger twin still there once the watch ends (its run kept it);
/// `None` when every one disappeared.
async fn kept_younger_client(cognito: &Cognito, pool_id: &str, younger: &[ClientState]) -> Result<Option<ClientState>> {
    let started = std::time::Instant::now();
    let mut pending: Vec<ClientState> = younger.to_vec();
    loop {
        let mut still = Vec::new();
        for twin in pending {
            if let Some(now) = cognito.describe_client(pool_id, &twin.id).await? {
                still.push(now);
            }
        }
        if still.is_empty() || started.elapsed() >= CLIENT_TWIN_WATCH_LIMIT {
            return Ok(still.into_iter().next());
        }
        pending = still;
        tokio::time::sleep(TWIN_WATCH_INTERVAL).await;
    }
}

/// The twin clean-up on the SDK's replay client (the race itself cannot be
/// staged deterministically against moto).
#[cfg(test)]
mod twin_race {
    use aws_smithy_http_client::test_util::StaticReplayClient;

    use super::*;
    use crate::provision::cognito::replay::{answer, cognito, sent};

    fn described(id: &str, created: u64) -> String {
        format!(
            r#"{{"UserPool":{{"Id":"{id}","Name":"demo","CreationDate":{created},"DeletionProtection":"ACTIVE",
                "UserPoolTags":{{"cognigate:stack":"demo","cognigate:managed":"true"}}}}}}"#
        )
    }

    /// The loser of a `--deletion-protection` race must lift
    /// protection on its own pool before deleting it, or Cognito refuses.
    #[tokio::test]
    async fn the_loser_of_a_protected_race_lifts_protection_before_deleting_its_pool() {
        let listed = r#"{"UserPools":[{"Id":"us-east-1_new","Name":"demo"},{"Id":"us-east-1_old","Name":"demo"}]}"#;
        let replay = StaticReplayClient::new(vec![
            answer(listed),
            answer(&described("us-east-1_old", 1_000_000_000)),
            answer(&described("us-east-1_new", 2_000_000_000)),
            answer("{}"),
            answer("{}"),
        ]);
        let cognito = cognito(&replay);
        let mut spec = crate::provision::plan::tests_support::spec();
        spec.deletion_protection = true;
        let ours = PoolState {
            id: "us-east-1_new".into(),
            name: "demo".into(),
            tags: std::collections::HashMap::from([("cognigate:stack".to_owned(), "demo".to_owned())]),
            domain: None,
            custom_domain: None,
            deletion_protection: true,
            admin_only_signup: false,
            created: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000)),
            traits: Default::default(),
        };
        let kept = settle_pool_race(&cognito, &spec, ours).await.unwrap();
        assert_eq!(kept.id, "us-east-1_old");
        let sent = sent(&replay);
        let mutating: Vec<&(String, serde_json::Value)> =
            sent.iter().filter(|(op, _)| op.starts_with("Update") || op.starts_with("Delete")).collect();
        assert_eq!(mutating.len(), 2, "{sent:?}");
        assert_eq!(mutating[0].0, "UpdateUserPool");
        assert_eq!(mutating[0].1["UserPoolId"], "us-east-1_new");
        assert_eq!(mutating[0].1["DeletionProtection"], "INACTIVE");
        assert_eq!(mutating[1].0, "DeleteUserPool");
        assert_eq!(mutating[1].1["UserPoolId"], "us-east-1_new");
    }

    fn client_described(id: &str, created: u64) -> String {
        format!(
            r#"{{"UserPoolClient":{{"ClientId":"{id}","ClientName":"demo-client","UserPoolId":"us-east-1_p","CreationDate":{created}}}}}"#
        )
    }

    fn client(id: &str, created: u64) -> ClientState {
        ClientState::from_described(
            aws_sdk_cognitoidentityprovider::types::UserPoolClientType::builder()
                .client_id(id)
                .client_name("demo-client")
                .creation_date(aws_sdk_cognitoidentityprovider::primitives::DateTime::from_secs(created as i64))
                .build(),
        )
    }

    /// Two clients created in one second: ours sorts first, but the other
    /// run listed before ours was visible and kept its own. Ours watches the
    /// twin, sees it stay, and yields to it (the flaky concurrent-`up` test).
    #[tokio::test]
    async fn the_first_client_yields_to_a_twin_its_run_kept() {
        let listed = r#"{"UserPoolClients":[{"ClientId":"bbb","ClientName":"demo-client"},{"ClientId":"aaa","ClientName":"demo-client"}]}"#;
        let mut answers = vec![
            answer(listed),
            answer(listed),
            answer(&client_described("aaa", 1_000)),
            answer(&client_described("bbb", 1_000)),
        ];
        // The watch: the twin is described until the limit, then ours is deleted.
        answers.extend((0..40).map(|_| answer(&client_described("bbb", 1_000))));
        let replay = StaticReplayClient::new(answers);
        let cognito = cognito(&replay);
        let (kept, outcome) =
            settle_client_race(&cognito, "us-east-1_p", "demo-client", client("aaa", 1_000)).await.unwrap();
        assert_eq!((kept.id.as_str(), outcome), ("bbb", Outcome::Reused));
        let sent = sent(&replay);
        let deletes: Vec<_> = sent.iter().filter(|(op, _)| op.starts_with("Delete")).collect();
        assert_eq!(deletes.len(), 1, "{sent:?}");
        assert_eq!(
            (deletes[0].0.as_str(), &deletes[0].1["ClientId"]),
            ("DeleteUserPoolClient", &serde_json::json!("aaa"))
        );
    }

    /// The same race where the other run saw ours and yielded: its client
    /// disappears during the watch and ours is kept.
    #[tokio::test]
    async fn the_first_client_is_kept_when_the_twin_yields() {
        let listed = r#"{"UserPoolClients":[{"ClientId":"bbb","ClientName":"demo-client"},{"ClientId":"aaa","ClientName":"demo-client"}]}"#;
        let gone = r#"{"__type":"ResourceNotFoundException","message":"User pool client bbb does not exist."}"#;
        let replay = StaticReplayClient::new(vec![
            answer(listed),
            answer(listed),
            answer(&client_described("aaa", 1_000)),
            answer(&client_described("bbb", 1_000)),
            crate::provision::cognito::replay::answer_with(400, gone),
        ]);
        let cognito = cognito(&replay);
        let (kept, outcome) =
            settle_client_race(&cognito, "us-east-1_p", "demo-client", client("aaa", 1_000)).await.unwrap();
        assert_eq!((kept.id.as_str(), outcome), ("aaa", Outcome::Created));
        assert!(sent(&replay).iter().all(|(op, _)| !op.starts_with("Delete")));
    }

    /// The flaky race: the younger pool's run listed before the older pool was
    /// visible, saw no twin and went on (it gives its pool a domain). The older
    /// run sees that twin, watches it, and yields once the twin is committed
    /// to, instead of keeping a second stack.
    #[tokio::test]
    async fn the_older_run_yields_to_a_younger_twin_that_its_run_kept() {
        let listed = r#"{"UserPools":[{"Id":"us-east-1_old","Name":"demo"},{"Id":"us-east-1_young","Name":"demo"}]}"#;
        let young = described("us-east-1_young", 2_000_000_000).replace("ACTIVE", "INACTIVE");
        let young_with_domain = young.replace(r#""Name":"demo","#, r#""Name":"demo","Domain":"demo-prefix","#);
        let replay = StaticReplayClient::new(vec![
            answer(listed),
            answer(&young),
            answer(&young),
            answer(r#"{"UserPoolClients":[]}"#),
            answer(&young_with_domain),
            answer("{}"),
        ]);
        let cognito = cognito(&replay);
        let spec = crate::provision::plan::tests_support::spec();
        let ours = PoolState {
            id: "us-east-1_old".into(),
            name: "demo".into(),
            tags: std::collections::HashMap::from([("cognigate:stack".to_owned(), "demo".to_owned())]),
            domain: None,
            custom_domain: None,
            deletion_protection: false,
            admin_only_signup: false,
            created: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000)),
            traits: Default::default(),
        };
        let kept = settle_pool_race(&cognito, &spec, ours).await.unwrap();
        assert_eq!(kept.id, "us-east-1_young");
        let last = replay.actual_requests().last().map(|r| {
            let target = r.headers().get("x-amz-target").unwrap_or_default().to_owned();
            let body: serde_json::Value = serde_json::from_slice(r.body().bytes().unwrap()).unwrap();
            (target, body)
        });
        let (target, body) = last.unwrap();
        assert!(target.ends_with("DeleteUserPool"), "{target}");
        assert_eq!(body["UserPoolId"], "us-east-1_old");
    }
}
