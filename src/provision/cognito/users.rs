//! A pool's users: created by an administrator (the pool refuses self sign-up
//! by default), listed with their groups, moved between groups, deleted.
//!
//! The username is the user's e-mail address, which is also set as a verified
//! `email` attribute: Cognito sends the invitation there, and the hosted login
//! puts it into the ID token the gateway reads.

use std::collections::BTreeMap;

use aws_sdk_cognitoidentityprovider::types::{AttributeType, DeliveryMediumType, MessageActionType};
use futures_util::future::try_join_all;

use super::Cognito;
use super::discover::PoolState;
use super::errors::{self, CognitoError, Result};
use crate::secret::Secret;

/// Cognito's page size limits for ListUsers and the group listings.
const USERS_PAGE: i32 = 60;
const GROUPS_PAGE: i32 = 60;

/// One user as `user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct UserSummary {
    /// What people know the user by: the username, or on a pool whose
    /// username is the e-mail (Cognito then keeps the `sub` as the username)
    /// the e-mail.
    pub(crate) username: String,
    pub(crate) email: Option<String>,
    /// The user's subject, as ID tokens carry it (`cognigate-gateway revoke --sub`).
    pub(crate) sub: Option<String>,
    /// Cognito's status: CONFIRMED, FORCE_CHANGE_PASSWORD, ...
    pub(crate) status: String,
    pub(crate) enabled: bool,
    pub(crate) groups: Vec<String>,
}

/// How a new user gets their first password.
pub(crate) enum FirstPassword<'a> {
    /// Cognito e-mails a temporary one (the invitation).
    Invite,
    /// Cognito makes a temporary one and sends nothing.
    Suppressed,
    /// This one, made permanent right away; no invitation.
    Permanent(&'a Secret),
}

impl Cognito {
    /// Creates the user, then (for a permanent password) sets it, and returns
    /// the username Cognito knows them by. A password Cognito refuses leaves
    /// no user behind: the new user is deleted again, so the command can
    /// simply be re-run with a better one.
    ///
    /// On a pool with the `email` alias Cognito refuses an e-mail-shaped
    /// username, so the user gets a generated one and signs in with the
    /// e-mail; elsewhere the e-mail is the username.
    pub(crate) async fn create_user(
        &self,
        pool: &PoolState,
        email: &str,
        password: FirstPassword<'_>,
    ) -> Result<String> {
        let pool_id = pool.id.as_str();
        let username = if pool.traits.email_alias { generated_username() } else { email.to_owned() };
        let attributes = [attribute("email", email)?, attribute("email_verified", "true")?];
        self.pace.wait("AdminCreateUser").await;
        let mut request = self
            .client
            .admin_create_user()
            .user_pool_id(pool_id)
            .username(&username)
            .set_user_attributes(Some(attributes.to_vec()));
        request = match password {
            FirstPassword::Invite => request.desired_delivery_mediums(DeliveryMediumType::Email),
            // No temporary password of ours: setting the same value again as
            // the permanent one is refused on pools with a password history
            // (PasswordHistoryPolicyViolationException). Cognito makes one up.
            FirstPassword::Suppressed | FirstPassword::Permanent(_) => {
                request.message_action(MessageActionType::Suppress)
            }
        };
        if let Err(e) = request.send().await {
            return Err(match errors::code(&e) {
                Some("UsernameExistsException" | "AliasExistsException") => {
                    CognitoError::UserExists { username: email.to_owned() }
                }
                _ => errors::map("AdminCreateUser", self.target(), e),
            });
        }
        let FirstPassword::Permanent(secret) = password else { return Ok(username) };
        self.pace.wait("AdminSetUserPassword").await;
        let set = self
            .client
            .admin_set_user_password()
            .user_pool_id(pool_id)
            .username(&username)
            .password(secret.expose())
            .permanent(true)
            .send()
            .await;
        let Err(e) = set else { return Ok(username) };
        let error = match errors::code(&e) {
            Some("InvalidPasswordException" | "PasswordHistoryPolicyViolationException") => {
                self.weak_password(pool_id).await
            }
            _ => errors::map("AdminSetUserPassword", self.target(), e),
        };
        self.delete_user(pool_id, &username).await?;
        Err(error)
    }

    /// The username of the user with this e-mail: on an alias pool the one
    /// [`Self::create_user`] generated (found with `ListUsers`), elsewhere the
    /// e-mail itself, which Cognito takes as the username.
    pub(crate) async fn username_of(&self, pool: &PoolState, email: &str) -> Result<String> {
        if !pool.traits.email_alias {
            return Ok(email.to_owned());
        }
        let escaped = email.replace('\\', "\\\\").replace('"', "\\\"");
        self.pace.wait("ListUsers").await;
        let found = self
            .client
            .list_users()
            .user_pool_id(&pool.id)
            .filter(format!("email = \"{escaped}\""))
            .limit(2)
            .send()
            .await
            .map_err(|e| errors::map("ListUsers", self.target(), e))?;
        found
            .users()
            .iter()
            .find_map(|u| u.username().map(str::to_owned))
            .ok_or_else(|| CognitoError::UserNotFound { username: email.to_owned() })
    }

    /// The weak-password error, naming the pool's policy when it can be read.
    async fn weak_password(&self, pool_id: &str) -> CognitoError {
        let policy = match self.password_policy(pool_id).await {
            Ok(Some(policy)) => super::pool::describe_password_policy(&policy),
            _ => "see the pool's password policy in the Cognito console".to_owned(),
        };
        CognitoError::WeakPassword { policy }
    }

    /// `AdminDeleteUser`.
    pub(crate) async fn delete_user(&self, pool_id: &str, username: &str) -> Result<()> {
        self.pace.wait("AdminDeleteUser").await;
        match self.client.admin_delete_user().user_pool_id(pool_id).username(username).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("UserNotFoundException") => {
                Err(CognitoError::UserNotFound { username: username.to_owned() })
            }
            Err(e) => Err(errors::map("AdminDeleteUser", self.target(), e)),
        }
    }

    /// Every user of the pool with their groups: `ListUsers`, then each group's
    /// members (`ListUsersInGroup`), which takes one call per group instead of
    /// one per user.
    pub(crate) async fn users(&self, pool: &PoolState) -> Result<Vec<UserSummary>> {
        let pool_id = pool.id.as_str();
        let (users, groups) = tokio::try_join!(
            async {
                self.pace.wait("ListUsers").await;
                self.client
                    .list_users()
                    .user_pool_id(pool_id)
                    .limit(USERS_PAGE)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| errors::map("ListUsers", self.target(), e))
            },
            self.group_names(pool_id),
        )?;
        let members = try_join_all(groups.iter().map(|group| self.members(pool_id, group))).await?;
        let mut groups_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, users) in groups.iter().zip(members) {
            for user in users {
                groups_of.entry(user).or_default().push(group.clone());
            }
        }
        Ok(users
            .into_iter()
            .map(|user| {
                let cognito_name = user.username().unwrap_or_default().to_owned();
                let attribute = |name: &str| {
                    user.attributes().iter().find(|a| a.name() == name).and_then(|a| a.value()).map(str::to_owned)
                };
                let email = attribute("email");
                let username = match &email {
                    Some(email) if pool.traits.email_username => email.clone(),
                    _ => cognito_name.clone(),
                };
                UserSummary {
                    groups: groups_of.remove(&cognito_name).unwrap_or_default(),
                    email,
                    sub: attribute("sub"),
                    status: user.user_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    enabled: user.enabled(),
                    username,
                }
            })
            .collect())
    }

    /// The usernames in one group.
    async fn members(&self, pool_id: &str, group: &str) -> Result<Vec<String>> {
        self.pace.wait("ListUsersInGroup").await;
        let users = self
            .client
            .list_users_in_group()
            .user_pool_id(pool_id)
            .group_name(group)
            .limit(USERS_PAGE)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::map("ListUsersInGroup", self.target(), e))?;
        Ok(users.into_iter().filter_map(|u| u.username).collect())
    }

    /// The groups one user is in (`AdminListGroupsForUser`).
    pub(crate) async fn groups_of(&self, pool_id: &str, username: &str) -> Result<Vec<String>> {
        self.pace.wait("AdminListGroupsForUser").await;
        let groups = self
            .client
            .admin_list_groups_for_user()
            .user_pool_id(pool_id)
            .username(username)
            .limit(GROUPS_PAGE)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        match groups {
            Ok(groups) => Ok(groups.into_iter().filter_map(|g| g.group_name).collect()),
            Err(e) if errors::code(&e) == Some("UserNotFoundException") => {
                Err(CognitoError::UserNotFound { username: username.to_owned() })
            }
            Err(e) => Err(errors::map("AdminListGroupsForUser", self.target(), e)),
        }
    }

    /// `AdminAddUserToGroup`.
    pub(crate) async fn add_to_group(&self, pool_id: &str, username: &str, group: &str) -> Result<()> {
        self.pace.wait("AdminAddUserToGroup").await;
        let sent = self
            .client
            .admin_add_user_to_group()
            .user_pool_id(pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await;
        sent.map(|_| ()).map_err(|e| self.membership_error("AdminAddUserToGroup", username, group, e))
    }

    /// `AdminRemoveUserFromGroup`.
    pub(crate) async fn remove_from_group(&self, pool_id: &str, username: &str, group: &str) -> Result<()> {
        self.pace.wait("AdminRemoveUserFromGroup").await;
        let sent = self
            .client
            .admin_remove_user_from_group()
            .user_pool_id(pool_id)
            .username(username)
            .group_name(group)
            .send()
            .await;
        sent.map(|_| ()).map_err(|e| self.membership_error("AdminRemoveUserFromGroup", username, group, e))
    }

    /// Cognito answers `ResourceNotFoundException` for a missing group and
    /// `UserNotFoundException` for a missing user; callers check both first,
    /// so these only happen when something was deleted meanwhile.
    fn membership_error<E>(
        &self,
        operation: &'static str,
        username: &str,
        group: &str,
        e: aws_sdk_cognitoidentityprovider::error::SdkError<
            E,
            aws_sdk_cognitoidentityprovider::config::http::HttpResponse,
        >,
    ) -> CognitoError
    where
        E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match errors::code(&e) {
            Some("UserNotFoundException") => CognitoError::UserNotFound { username: username.to_owned() },
            Some("ResourceNotFoundException") => CognitoError::GroupNotFound { groups: vec![group.to_owned()] },
            _ => errors::map(operation, self.target(), e),
        }
    }
}

/// A username for an alias pool: random, never e-mail-shaped, stable once made.
fn generated_username() -> String {
    format!("user-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>())
}

fn attribute(name: &str, value: &str) -> Result<AttributeType> {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|e| CognitoError::Internal { operation: "AdminCreateUser", problem: e.to_string() })
}
