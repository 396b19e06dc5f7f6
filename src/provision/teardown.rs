//! Deleting one stack in the order Cognito requires, shared by `destroy` and `gc`.
//!
//! A pool with a domain cannot be deleted, and a domain takes a while to go
//! (DESIGN.md section 2), so the order is: deletion protection off (only when
//! the caller allows it), the prefix and custom domains deleted and waited
//! for until `DescribeUserPoolDomain` comes back empty, every app client, and
//! last the pool. Each step treats "not found" as done, so a teardown that was
//! interrupted, or that races another one, converges when run again.
//!
//! What may be deleted at all is decided here too ([`guards`]): cognigate
//! deletes the pools it created (tagged `cognigate:managed=true`) and asks
//! for `--force` for anything else.

use serde::Serialize;

use super::cognito::Cognito;
use super::cognito::discover::PoolState;
use super::error::Result;
use super::progress::Progress;

/// A reason not to delete a pool without `--force`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// No `cognigate:managed=true` tag: created by hand or by another tool, or
    /// adopted with `--user-pool-id` (cognigate never tags an adopted pool).
    NotManaged,
    /// Managed, but by another stack (a `--user-pool-id` naming someone else's pool).
    OtherStack(String),
    /// `DeletionProtection=ACTIVE`.
    Protected,
}

impl Guard {
    /// Why, for messages: "user pool X is <why>".
    pub fn why(&self) -> String {
        match self {
            Self::NotManaged => {
                "not tagged cognigate:managed=true, so cognigate did not create it (it was made elsewhere or adopted with --user-pool-id)".into()
            }
            Self::OtherStack(other) => format!("managed by another stack ({other})"),
            Self::Protected => "protected against deletion (DeletionProtection=ACTIVE)".into(),
        }
    }

    /// A short label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotManaged => "not managed",
            Self::OtherStack(_) => "another stack",
            Self::Protected => "deletion protection on",
        }
    }
}

/// Every reason to refuse deleting `pool` without `--force`. `stack` is the
/// stack the caller means; `None` accepts any managed pool (gc).
pub fn guards(pool: &PoolState, stack: Option<&str>) -> Vec<Guard> {
    let mut guards = Vec::new();
    if !pool.is_managed() {
        guards.push(Guard::NotManaged);
    } else if let (Some(wanted), Some(tagged)) = (stack, pool.stack_tag())
        && wanted != tagged
    {
        guards.push(Guard::OtherStack(tagged.to_owned()));
    }
    if pool.deletion_protection {
        guards.push(Guard::Protected);
    }
    guards
}

/// What a teardown deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub user_pool_id: String,
    pub name: String,
    /// Domains as Cognito names them: the prefix, or the custom host.
    pub domains: Vec<String>,
    pub app_clients: Vec<String>,
    pub deletion_protection_disabled: bool,
}

/// Deletes the pool's domains (waiting until they are gone), its app clients
/// and the pool. The caller has checked [`guards`]: a protected pool reaching
/// this function has its protection turned off.
pub async fn remove(cognito: &Cognito, pool: &PoolState, progress: &Progress) -> Result<Removed> {
    let mut removed = Removed {
        user_pool_id: pool.id.clone(),
        name: pool.name.clone(),
        domains: Vec::new(),
        app_clients: Vec::new(),
        deletion_protection_disabled: false,
    };

    // First, so that a refusal (permissions) leaves the whole stack in place.
    // UpdateUserPool resets every field it is not sent to its default; that is
    // acceptable only because the pool is about to be deleted. Its tags are
    // sent back, so a teardown that fails later can be resumed by destroy or gc.
    if pool.deletion_protection {
        cognito.disable_deletion_protection(pool).await?;
        removed.deletion_protection_disabled = true;
    }

    let domains: Vec<&str> = [pool.domain.as_deref(), pool.custom_domain.as_deref()].into_iter().flatten().collect();
    for domain in &domains {
        cognito.delete_domain(&pool.id, domain).await?;
    }
    for domain in &domains {
        cognito.wait_domain_gone(domain, progress).await?;
        removed.domains.push((*domain).to_owned());
    }

    // One at a time: a stack has one client (two after a race), and gc runs
    // several teardowns at once already; the request rate stays low.
    for (client_id, _) in cognito.clients(&pool.id).await? {
        cognito.delete_client(&pool.id, &client_id).await?;
        removed.app_clients.push(client_id);
    }

    cognito.delete_pool(&pool.id).await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn pool(tags: &[(&str, &str)], protected: bool) -> PoolState {
        PoolState {
            id: "us-east-1_abc".into(),
            name: "demo".into(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>(),
            domain: None,
            custom_domain: None,
            deletion_protection: protected,
            created: None,
        }
    }

    const MANAGED: [(&str, &str); 2] = [("cognigate:managed", "true"), ("cognigate:stack", "demo")];

    #[test]
    fn a_managed_pool_of_the_stack_passes() {
        assert!(guards(&pool(&MANAGED, false), Some("demo")).is_empty());
        assert!(guards(&pool(&MANAGED, false), None).is_empty());
    }

    #[test]
    fn untagged_and_adopted_pools_need_force() {
        assert_eq!(guards(&pool(&[], false), Some("demo")), [Guard::NotManaged]);
        // A stack tag alone is not ownership; neither is managed=false.
        assert_eq!(guards(&pool(&[("cognigate:stack", "demo"), ("cognigate:managed", "false")], false), None), [Guard::NotManaged]);
    }

    #[test]
    fn another_stacks_pool_needs_force() {
        assert_eq!(guards(&pool(&MANAGED, false), Some("other")), [Guard::OtherStack("demo".into())]);
    }

    #[test]
    fn protection_is_reported_with_the_other_reasons() {
        assert_eq!(guards(&pool(&MANAGED, true), Some("demo")), [Guard::Protected]);
        assert_eq!(guards(&pool(&[], true), Some("demo")), [Guard::NotManaged, Guard::Protected]);
        assert!(Guard::Protected.why().contains("DeletionProtection"));
    }
}
