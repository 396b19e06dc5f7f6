//! Reading what exists, without a state file.
//!
//! Cognito has no tag-based lookup for pools: `ListUserPools` gives names only,
//! `DescribeUserPool` gives tags and domains. So pools are filtered by name
//! first and only those are described (concurrently). The env file of a
//! previous run gives ids that let a re-run skip the listing altogether; such a
//! hint is always verified against the pool's tags before it is trusted.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_cognitoidentityprovider::types::{
    DeletionProtectionType, UserPoolClientType, UserPoolType, VerifiedAttributeType,
};
use futures_util::future::try_join_all;

use super::Cognito;
use super::errors;
use super::errors::Result;
use crate::provision::spec::{FeaturePlan, tags};
use crate::secret::Secret;

/// Cognito's page size limit for ListUserPools and ListUserPoolClients.
const PAGE_SIZE: i32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolState {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) tags: HashMap<String, String>,
    /// The prefix domain, if any (`my-prefix`, not the full host).
    pub(crate) domain: Option<String>,
    pub(crate) custom_domain: Option<String>,
    pub(crate) deletion_protection: bool,
    /// `AdminCreateUserConfig.AllowAdminCreateUserOnly`: no self sign-up.
    pub(crate) admin_only_signup: bool,
    pub(crate) created: Option<SystemTime>,
    pub(crate) traits: PoolTraits,
}

/// What a described pool says that commands act on beyond its identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PoolTraits {
    /// `UserPoolTier`; `None` when the endpoint reports none (an emulator).
    pub(crate) tier: Option<FeaturePlan>,
    /// `AutoVerifiedAttributes` holds `email`: sign-up sends a code and confirms the address.
    pub(crate) verifies_email: bool,
    /// `AliasAttributes` holds `email`: users sign in with it, and a username
    /// must not be e-mail-shaped.
    pub(crate) email_alias: bool,
    /// `UsernameAttributes` holds `email`: the e-mail is what users sign in
    /// with, and Cognito keeps their `sub` as the username.
    pub(crate) email_username: bool,
}

impl PoolTraits {
    pub(crate) fn of(pool: &UserPoolType) -> Self {
        let email = |list: &[_]| list.iter().any(|a: &VerifiedAttributeType| a.as_str() == "email");
        Self {
            tier: pool.user_pool_tier().and_then(|t| FeaturePlan::from_tier(t.as_str())),
            verifies_email: email(pool.auto_verified_attributes()),
            email_alias: pool.alias_attributes().iter().any(|a| a.as_str() == "email"),
            email_username: pool.username_attributes().iter().any(|a| a.as_str() == "email"),
        }
    }
}

impl PoolState {
    pub(crate) fn stack_tag(&self) -> Option<&str> {
        self.tags.get(tags::STACK).map(String::as_str)
    }

    pub(crate) fn is_managed(&self) -> bool {
        self.tags.get(tags::MANAGED).is_some_and(|v| v == "true")
    }

    /// Older first; the id breaks ties so that concurrent runs agree.
    pub(crate) fn age_key(&self) -> (Option<SystemTime>, String) {
        (self.created, self.id.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainState {
    pub(crate) domain: String,
    pub(crate) pool_id: String,
    /// CREATING | DELETING | UPDATING | ACTIVE | FAILED
    pub(crate) status: String,
    pub(crate) certificate_arn: Option<String>,
    pub(crate) cloudfront: Option<String>,
    /// 1 (classic hosted UI) or 2 (managed login); `None` when the endpoint
    /// does not report it (emulators).
    pub(crate) managed_login_version: Option<i32>,
}

#[derive(Debug, Clone)]
pub(crate) struct ClientState {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) secret: Option<Secret>,
    pub(crate) created: Option<SystemTime>,
    /// The full description, kept so an update can send back every field it
    /// does not own (UpdateUserPoolClient resets omitted fields to defaults).
    pub(crate) described: UserPoolClientType,
}

impl ClientState {
    /// The gateway URL this client was provisioned for: its first callback URL
    /// under the gateway's callback path, without that path; the local
    /// default only when no other gateway is registered.
    pub(crate) fn registered_public_url(&self) -> Option<&str> {
        let mut bases =
            self.described.callback_urls().iter().filter_map(|url| url.strip_suffix(crate::contract::CALLBACK_PATH));
        let first = bases.next()?;
        if first != crate::contract::DEFAULT_PUBLIC_URL {
            return Some(first);
        }
        Some(bases.next().unwrap_or(first))
    }

    pub(crate) fn from_described(described: UserPoolClientType) -> Self {
        Self {
            id: described.client_id().unwrap_or_default().to_owned(),
            name: described.client_name().unwrap_or_default().to_owned(),
            secret: described.client_secret().map(Secret::new),
            created: described.creation_date().and_then(|d| SystemTime::try_from(*d).ok()),
            described,
        }
    }

    pub(crate) fn age_key(&self) -> (Option<SystemTime>, String) {
        (self.created, self.id.clone())
    }
}

impl Cognito {
    /// `DescribeUserPool`; `None` when it does not exist.
    pub(crate) async fn describe_pool(&self, id: &str) -> Result<Option<PoolState>> {
        self.pace.wait("DescribeUserPool").await;
        let response = self.client.describe_user_pool().user_pool_id(id).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(errors::map("DescribeUserPool", self.target(), e)),
        };
        let Some(pool) = response.user_pool() else { return Ok(None) };
        Ok(Some(PoolState {
            id: pool.id().unwrap_or(id).to_owned(),
            name: pool.name().unwrap_or_default().to_owned(),
            tags: pool.user_pool_tags().cloned().unwrap_or_default(),
            domain: pool.domain().filter(|d| !d.is_empty()).map(str::to_owned),
            custom_domain: pool.custom_domain().filter(|d| !d.is_empty()).map(str::to_owned),
            deletion_protection: pool.deletion_protection() == Some(&DeletionProtectionType::Active),
            admin_only_signup: pool.admin_create_user_config().is_some_and(|c| c.allow_admin_create_user_only),
            created: pool.creation_date().and_then(|d| SystemTime::try_from(*d).ok()),
            traits: PoolTraits::of(pool),
        }))
    }

    /// Every pool (id, name) in the region, all pages of `ListUserPools`.
    /// A page token can stop being valid when pools are deleted between
    /// pages (moto says `InvalidToken`); the listing then starts over, a
    /// few times at most.
    pub(crate) async fn all_pools(&self) -> Result<Vec<(String, String)>> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 1;
        loop {
            self.pace.wait("ListUserPools").await;
            let listed = self
                .client
                .list_user_pools()
                .max_results(PAGE_SIZE)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await;
            match listed {
                Ok(pools) => return Ok(pools.into_iter().filter_map(|p| Some((p.id?, p.name?))).collect()),
                Err(e) if errors::code(&e) == Some("InvalidToken") && attempt < ATTEMPTS => attempt += 1,
                Err(e) => return Err(errors::map("ListUserPools", self.target(), e)),
            }
        }
    }

    /// The pools of a stack: named like it and tagged `cognigate:stack=<stack>`,
    /// oldest first. More than one means a race left twins behind.
    pub(crate) async fn stack_pools(&self, pool_name: &str, stack: &str) -> Result<Vec<PoolState>> {
        let ids: Vec<String> =
            self.all_pools().await?.into_iter().filter(|(_, name)| name == pool_name).map(|(id, _)| id).collect();
        self.stack_pools_among(&ids, stack).await
    }

    /// Of the pools `ids`, those tagged `cognigate:stack=<stack>` that still
    /// exist, described, oldest first.
    pub(crate) async fn stack_pools_among(&self, ids: &[String], stack: &str) -> Result<Vec<PoolState>> {
        let described = try_join_all(ids.iter().map(|id| self.describe_pool(id))).await?;
        let mut pools: Vec<PoolState> =
            described.into_iter().flatten().filter(|p| p.stack_tag() == Some(stack)).collect();
        pools.sort_by_key(PoolState::age_key);
        Ok(pools)
    }

    /// `DescribeUserPoolDomain`; Cognito answers an empty description for a
    /// domain that does not exist (in this account).
    pub(crate) async fn describe_domain(&self, domain: &str) -> Result<Option<DomainState>> {
        self.pace.wait("DescribeUserPoolDomain").await;
        let response = self.client.describe_user_pool_domain().domain(domain).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(errors::map("DescribeUserPoolDomain", self.target(), e)),
        };
        let Some(description) = response.domain_description() else { return Ok(None) };
        let Some(pool_id) = description.user_pool_id().filter(|id| !id.is_empty()) else { return Ok(None) };
        Ok(Some(DomainState {
            domain: description.domain().unwrap_or(domain).to_owned(),
            pool_id: pool_id.to_owned(),
            status: description.status().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "ACTIVE".into()),
            certificate_arn: description.custom_domain_config().map(|c| c.certificate_arn().to_owned()),
            cloudfront: description.cloud_front_distribution().map(str::to_owned),
            managed_login_version: description.managed_login_version(),
        }))
    }

    /// `DescribeUserPoolClient`; `None` when it does not exist.
    pub(crate) async fn describe_client(&self, pool_id: &str, client_id: &str) -> Result<Option<ClientState>> {
        self.pace.wait("DescribeUserPoolClient").await;
        let response = self.client.describe_user_pool_client().user_pool_id(pool_id).client_id(client_id).send().await;
        match response {
            Ok(r) => Ok(r.user_pool_client().cloned().map(ClientState::from_described)),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(errors::map("DescribeUserPoolClient", self.target(), e)),
        }
    }

    /// All app clients of a pool named `name`, described, oldest first.
    pub(crate) async fn clients_named(&self, pool_id: &str, name: &str) -> Result<Vec<ClientState>> {
        let ids: Vec<String> =
            self.clients(pool_id).await?.into_iter().filter(|(_, n)| n == name).map(|(id, _)| id).collect();
        let described = try_join_all(ids.iter().map(|id| self.describe_client(pool_id, id))).await?;
        let mut clients: Vec<ClientState> = described.into_iter().flatten().collect();
        clients.sort_by_key(ClientState::age_key);
        Ok(clients)
    }

    /// Every app client (id, name) of a pool, all pages of `ListUserPoolClients`.
    pub(crate) async fn clients(&self, pool_id: &str) -> Result<Vec<(String, String)>> {
        self.pace.wait("ListUserPoolClients").await;
        let clients = self
            .client
            .list_user_pool_clients()
            .user_pool_id(pool_id)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::map("ListUserPoolClients", self.target(), e))?;
        Ok(clients.into_iter().filter_map(|c| Some((c.client_id?, c.client_name.unwrap_or_default()))).collect())
    }
}

/// Listing pools on the SDK's replay client: a page token the service no
/// longer knows (pools deleted between pages) restarts the listing.
#[cfg(test)]
mod listing {
    use aws_smithy_http_client::test_util::StaticReplayClient;

    use crate::provision::cognito::replay::{answer, answer_with, cognito, sent};

    const PAGE_ONE: &str = r#"{"UserPools":[{"Id":"us-east-1_a","Name":"a"}],"NextToken":"t1"}"#;
    const STALE: &str = r#"{"__type":"InvalidToken","message":"Invalid Token: Resource not found!"}"#;
    const WHOLE: &str = r#"{"UserPools":[{"Id":"us-east-1_a","Name":"a"},{"Id":"us-east-1_c","Name":"c"}]}"#;

    #[tokio::test]
    async fn a_stale_page_token_starts_the_listing_over() {
        let replay = StaticReplayClient::new(vec![answer(PAGE_ONE), answer_with(400, STALE), answer(WHOLE)]);
        let pools = cognito(&replay).all_pools().await.expect("the listing restarts");
        assert_eq!(pools, [("us-east-1_a".to_owned(), "a".to_owned()), ("us-east-1_c".to_owned(), "c".to_owned())]);
        let calls = sent(&replay);
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[1].1["NextToken"], "t1");
        assert!(calls[2].1.get("NextToken").is_none(), "the third call starts over: {:?}", calls[2]);
    }

    #[tokio::test]
    async fn a_token_that_stays_stale_is_an_error_after_three_attempts() {
        let events = (0..3).flat_map(|_| [answer(PAGE_ONE), answer_with(400, STALE)]).collect();
        let replay = StaticReplayClient::new(events);
        let err = cognito(&replay).all_pools().await.expect_err("three stale tokens");
        assert!(err.to_string().contains("ListUserPools"), "{err}");
        assert_eq!(sent(&replay).len(), 6);
    }
}
