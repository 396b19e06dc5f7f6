//! Deleting one stack in the order Cognito requires, shared by `destroy` and `gc`.
//!
//! A pool with a domain cannot be deleted, and a domain takes a while to go
//! (a prefix domain about a minute), so the order is: the prefix and custom
//! domains deleted and waited for until `DescribeUserPoolDomain` comes back
//! empty, every app client, deletion protection off (only when the caller
//! allows it), and last the pool. Each step treats "not found" as done, so a teardown that was
//! interrupted, or that races another one, converges when run again.
//!
//! What may be deleted at all is decided here too ([`guards`]): cognigate
//! deletes the pools it created (tagged `cognigate:managed=true`) and asks
//! for `--force` for anything else.

use serde::Serialize;

use super::cognito::Cognito;
use super::cognito::discover::PoolState;
use super::error::Result;
pub(crate) use super::guard::Guard;
use super::progress::Progress;

/// Every reason to refuse deleting `pool` without `--force`. `stack` is the
/// stack the caller means; `None` accepts any managed pool (gc).
pub(crate) fn guards(pool: &PoolState, stack: Option<&str>) -> Vec<Guard> {
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
pub(crate) struct Removed {
    pub(crate) user_pool_id: String,
    pub(crate) name: String,
    /// Domains as Cognito names them: the prefix, or the custom host.
    pub(crate) domains: Vec<String>,
    /// Every app client deleted: the gateway's and the machine clients.
    pub(crate) app_clients: Vec<String>,
    /// Resource servers (their identifiers) that went: with the pool, or
    /// cognigate's own (the one with the `mcp:all` scope) from an adopted pool.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) resource_servers: Vec<String>,
    pub(crate) deletion_protection_disabled: bool,
    /// The pool was adopted (`up --user-pool-id`) and stays; only what
    /// cognigate created in it was deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) pool_kept: bool,
}

/// Deletes what `up` created in an adopted pool, and nothing else: the
/// domain `up` would have given it (`domain`, when the pool has it) and the
/// app clients named `client_name`. The pool and its other clients stay.
pub(crate) async fn remove_from_adopted(
    cognito: &Cognito,
    pool: &PoolState,
    domain: Option<&str>,
    client_name: &str,
    progress: &Progress,
) -> Result<Removed> {
    let mut removed = Removed {
        user_pool_id: pool.id.clone(),
        name: pool.name.clone(),
        domains: Vec::new(),
        app_clients: Vec::new(),
        resource_servers: Vec::new(),
        deletion_protection_disabled: false,
        pool_kept: true,
    };
    if let Some(domain) = domain {
        cognito.delete_domain(&pool.id, domain).await?;
        cognito.wait_domain_gone(domain, progress).await?;
        removed.domains.push(domain.to_owned());
    }
    for client in cognito.clients_named(&pool.id, client_name).await? {
        cognito.delete_client(&pool.id, &client.id).await?;
        removed.app_clients.push(client.id);
    }
    // The machine clients' resource server `up` made, and the machine
    // clients whose scopes are all on it (`cognigate client add`).
    let ours: Vec<String> = cognito
        .resource_servers(&pool.id)
        .await?
        .into_iter()
        .filter(|s| s.scopes.iter().any(|(name, _)| name == crate::contract::machine_scopes::ALL))
        .map(|s| s.identifier)
        .collect();
    if !ours.is_empty() {
        for client in cognito.machine_clients(&pool.id).await? {
            let scopes = client.described.allowed_o_auth_scopes();
            if !scopes.is_empty() && scopes.iter().all(|s| ours.iter().any(|id| s.starts_with(&format!("{id}/")))) {
                cognito.delete_client(&pool.id, &client.id).await?;
                removed.app_clients.push(client.id);
            }
        }
    }
    for identifier in ours {
        cognito.delete_resource_server(&pool.id, &identifier).await?;
        removed.resource_servers.push(identifier);
    }
    Ok(removed)
}

/// Deletes the pool's domains (waiting until they are gone), its app clients
/// and the pool. The caller has checked [`guards`]: a protected pool reaching
/// this function has its protection turned off.
pub(crate) async fn remove(cognito: &Cognito, pool: &PoolState, progress: &Progress) -> Result<Removed> {
    let mut removed = Removed {
        user_pool_id: pool.id.clone(),
        name: pool.name.clone(),
        domains: Vec::new(),
        app_clients: Vec::new(),
        resource_servers: Vec::new(),
        deletion_protection_disabled: false,
        pool_kept: false,
    };

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

    // They go with the pool; listed so the report names them.
    removed.resource_servers = cognito.resource_servers(&pool.id).await?.into_iter().map(|s| s.identifier).collect();

    // Last, right before the deletion: a teardown that stops earlier (a
    // permission, a domain that will not go) leaves the pool protected, and
    // the update sends back every other setting as described.
    if pool.deletion_protection {
        cognito.disable_deletion_protection(&pool.id).await?;
        removed.deletion_protection_disabled = true;
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
            admin_only_signup: true,
            created: None,
            traits: Default::default(),
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
        assert_eq!(
            guards(&pool(&[("cognigate:stack", "demo"), ("cognigate:managed", "false")], false), None),
            [Guard::NotManaged]
        );
    }

    #[test]
    fn another_stacks_pool_needs_force() {
        assert_eq!(guards(&pool(&MANAGED, false), Some("other")), [Guard::OtherStack("demo".into())]);
    }

    /// A fake Cognito (the SDK's own test HTTP client) that records each
    /// operation with its JSON body and answers like the real service: the
    /// prefix domain is still DELETING on the first look, gone on the second.
    type CallLog = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

    fn fake_cognito() -> (Cognito, CallLog) {
        use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials};
        use std::sync::Arc;
        let calls: CallLog = Arc::default();
        let log = calls.clone();
        let http = aws_smithy_http_client::test_util::infallible_client_fn(move |request| {
            let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
            let body: serde_json::Value =
                serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap_or_default();
            let mut calls = log.lock().unwrap();
            let looked =
                calls.iter().filter(|(op, b)| op == "DescribeUserPoolDomain" && b["Domain"] == body["Domain"]).count();
            let answer = match operation.as_str() {
                "DescribeUserPoolDomain" if body["Domain"] == "demo-prefix" && looked == 0 => {
                    r#"{"DomainDescription":{"Domain":"demo-prefix","UserPoolId":"us-east-1_abc","Status":"DELETING"}}"#
                }
                "DescribeUserPoolDomain" => r#"{"DomainDescription":{}}"#,
                "DescribeUserPool" => {
                    r#"{"UserPool":{"Id":"us-east-1_abc","Name":"demo","DeletionProtection":"ACTIVE","MfaConfiguration":"OPTIONAL","UserPoolTags":{"cognigate:managed":"true","cognigate:stack":"demo"}}}"#
                }
                "ListUserPoolClients" => {
                    r#"{"UserPoolClients":[{"ClientId":"c1","ClientName":"demo-gateway","UserPoolId":"us-east-1_abc"},{"ClientId":"c2","ClientName":"other","UserPoolId":"us-east-1_abc"}]}"#
                }
                _ => "{}",
            };
            calls.push((operation, body));
            axum::http::Response::builder()
                .status(200)
                .header("content-type", "application/x-amz-json-1.1")
                .body(answer.to_owned())
                .unwrap()
        });
        let config = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_cognitoidentityprovider::config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .http_client(http)
            .build();
        (Cognito::from_conf(config), calls)
    }

    /// What moto cannot show: the real order and request shapes. Both domains
    /// deleted and waited for while they are still DELETING, then every client,
    /// the resource servers listed for the report (they go with the pool),
    /// then protection off (the described settings and tags sent back)
    /// right before the pool is deleted.
    #[tokio::test]
    async fn teardown_request_shapes_and_order() {
        let (cognito, calls) = fake_cognito();
        let mut target = pool(&MANAGED, true);
        target.domain = Some("demo-prefix".into());
        target.custom_domain = Some("auth.example.com".into());
        let removed = remove(&cognito, &target, &Progress::new(false)).await.unwrap();
        assert_eq!(removed.domains, ["demo-prefix", "auth.example.com"]);
        assert_eq!(removed.app_clients, ["c1", "c2"]);
        assert!(removed.deletion_protection_disabled);

        let calls = calls.lock().unwrap().clone();
        let shape: Vec<(String, String)> = calls
            .iter()
            .map(|(op, b)| (op.clone(), b["Domain"].as_str().or(b["ClientId"].as_str()).unwrap_or_default().to_owned()))
            .collect();
        let expected = [
            ("DeleteUserPoolDomain", "demo-prefix"),
            ("DeleteUserPoolDomain", "auth.example.com"),
            ("DescribeUserPoolDomain", "demo-prefix"),
            ("DescribeUserPoolDomain", "demo-prefix"),
            ("DescribeUserPoolDomain", "auth.example.com"),
            ("ListUserPoolClients", ""),
            ("DeleteUserPoolClient", "c1"),
            ("DeleteUserPoolClient", "c2"),
            ("ListResourceServers", ""),
            ("DescribeUserPool", ""),
            ("UpdateUserPool", ""),
            ("DeleteUserPool", ""),
        ];
        assert_eq!(shape, expected.map(|(op, arg)| (op.to_owned(), arg.to_owned())));
        let update = &calls[calls.len() - 2].1;
        assert_eq!(update["DeletionProtection"], "INACTIVE");
        assert_eq!(update["MfaConfiguration"], "OPTIONAL");
        assert_eq!(update["UserPoolTags"]["cognigate:managed"], "true");
        assert_eq!(update["UserPoolTags"]["cognigate:stack"], "demo");
        assert!(calls.iter().all(|(_, b)| b.get("UserPoolId").is_none_or(|id| id == "us-east-1_abc")));
    }

    #[test]
    fn protection_is_reported_with_the_other_reasons() {
        assert_eq!(guards(&pool(&MANAGED, true), Some("demo")), [Guard::Protected]);
        assert_eq!(guards(&pool(&[], true), Some("demo")), [Guard::NotManaged, Guard::Protected]);
        assert!(Guard::Protected.why().contains("DeletionProtection"));
    }
}
