//! A pool's user groups: listing them and creating the missing ones.
//!
//! cognigate never deletes a group: a group may carry an IAM role or
//! precedence set by hand, and its members lose it with it. A group goes away
//! with its pool (`destroy`).

use super::Cognito;
use super::errors::{self, Result};

/// Cognito's page size limit for ListGroups.
const PAGE_SIZE: i32 = 60;

impl Cognito {
    /// Every group name of a pool, all pages of `ListGroups`.
    pub(crate) async fn group_names(&self, pool_id: &str) -> Result<Vec<String>> {
        self.pace.wait("ListGroups").await;
        let groups = self
            .client
            .list_groups()
            .user_pool_id(pool_id)
            .limit(PAGE_SIZE)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::map("ListGroups", self.target(), e))?;
        Ok(groups.into_iter().filter_map(|g| g.group_name).collect())
    }

    /// `CreateGroup`; a group that exists already (a concurrent run made it)
    /// counts as created.
    pub(crate) async fn create_group(&self, pool_id: &str, name: &str) -> Result<()> {
        self.pace.wait("CreateGroup").await;
        match self.client.create_group().user_pool_id(pool_id).group_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("GroupExistsException") => Ok(()),
            Err(e) => Err(errors::map("CreateGroup", self.target(), e)),
        }
    }
}
