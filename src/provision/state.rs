//! The actual state of a stack in Cognito, read with as few dependent round
//! trips as the data allows.
//!
//! Cold path: `ListUserPools` ‖ `DescribeUserPoolDomain`, then the matching
//! pools described, then the clients listed and described. Warm path (the env
//! file of a previous run names the pool and client): `DescribeUserPool` ‖
//! `DescribeUserPoolDomain` ‖ `DescribeUserPoolClient` in one round trip, with
//! the hint verified against the pool's tags before it is trusted.

use super::cognito::Cognito;
use super::cognito::discover::{ClientState, DomainState, PoolState};
use super::error::{Error, Result};
use super::spec::{PoolTarget, StackSpec};

/// Ids remembered from a previous run (the env file); only a shortcut.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    pub(crate) pool_id: Option<String>,
    pub(crate) client_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Actual {
    /// The stack's pool (the oldest one if a race left twins).
    pub(crate) pool: Option<PoolState>,
    /// Newer pools of the same stack, left by concurrent runs.
    pub(crate) twin_pools: Vec<PoolState>,
    /// The desired domain name as Cognito describes it (any owner).
    pub(crate) domain: Option<DomainState>,
    /// The stack's app client (the oldest one if a race left twins).
    pub(crate) client: Option<ClientState>,
    pub(crate) twin_clients: Vec<ClientState>,
    /// The pool's groups; read only when the stack lists groups.
    pub(crate) groups: Option<Vec<String>>,
    /// The machine clients' resource server, when the pool has it.
    pub(crate) resource_server: Option<super::cognito::machine::ResourceServerState>,
}

impl Cognito {
    pub(crate) async fn read_stack(&self, spec: &StackSpec, hint: &Hint) -> Result<Actual> {
        let client_name = spec.client_name();
        let domain_name = spec.domain.api_name();

        // Warm path: everything in one round trip, verified afterwards.
        let hinted_pool = match &spec.pool {
            PoolTarget::Adopted(id) => Some(id.as_str().to_owned()),
            PoolTarget::Managed => hint.pool_id.clone(),
        };
        let (pool, domain, hinted_client) = tokio::try_join!(
            async {
                match &hinted_pool {
                    Some(id) => self.describe_pool(id).await,
                    None => Ok(None),
                }
            },
            self.describe_domain(domain_name),
            async {
                match (&hinted_pool, &hint.client_id) {
                    (Some(pool), Some(client)) => self.describe_client(pool, client).await,
                    _ => Ok(None),
                }
            },
        )?;

        let mut actual = Actual { domain, ..Actual::default() };
        match &spec.pool {
            PoolTarget::Adopted(id) => {
                let pool =
                    pool.ok_or_else(|| Error::PoolNotFound { id: id.to_string(), region: spec.region.to_string() })?;
                actual.pool = Some(pool);
            }
            PoolTarget::Managed => {
                let hint_is_ours = pool
                    .as_ref()
                    .is_some_and(|p| p.name == spec.pool_name() && p.stack_tag() == Some(spec.stack.as_str()));
                if hint_is_ours {
                    actual.pool = pool;
                } else {
                    let mut pools = self.stack_pools(spec.pool_name(), spec.stack.as_str()).await?.into_iter();
                    actual.pool = pools.next();
                    actual.twin_pools = pools.collect();
                }
            }
        }

        let Some(pool) = actual.pool.clone() else { return Ok(actual) };
        let hinted_client =
            hinted_client.filter(|c| c.name == client_name && Some(pool.id.as_str()) == hinted_pool.as_deref());
        let (clients, groups) = tokio::try_join!(
            async {
                match hinted_client {
                    Some(client) => Ok(vec![client]),
                    None => self.clients_named(&pool.id, &client_name).await,
                }
            },
            async {
                // The warm path stays three describes for a stack without groups.
                if spec.groups.is_empty() { Ok(None) } else { self.group_names(&pool.id).await.map(Some) }
            },
        )?;
        let mut clients = clients.into_iter();
        actual.client = clients.next();
        actual.twin_clients = clients.collect();
        actual.groups = groups;
        Ok(actual)
    }

    /// The stack's pool for commands that only need the pool (`user`): the
    /// adopted one, the env file's when it is the stack's, else found by name
    /// and tag (the oldest of twins).
    pub(crate) async fn find_pool(&self, spec: &StackSpec, hint: &Hint) -> Result<PoolState> {
        let not_found = || Error::NotProvisioned {
            stack: spec.stack.to_string(),
            region: spec.region.to_string(),
            needs: "it has no user pool".into(),
        };
        if let PoolTarget::Adopted(id) = &spec.pool {
            return self
                .describe_pool(id.as_str())
                .await?
                .ok_or_else(|| Error::PoolNotFound { id: id.to_string(), region: spec.region.to_string() });
        }
        if let Some(id) = &hint.pool_id
            && let Some(pool) = self.describe_pool(id).await?
            && pool.name == spec.pool_name()
            && pool.stack_tag() == Some(spec.stack.as_str())
        {
            return Ok(pool);
        }
        self.stack_pools(spec.pool_name(), spec.stack.as_str()).await?.into_iter().next().ok_or_else(not_found)
    }
}
