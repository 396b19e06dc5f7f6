//! Machine-to-machine: the pool's resource server (the custom scopes machine
//! clients carry) and the machine clients themselves, app clients whose only
//! flow is `client_credentials` with only custom scopes (Cognito refuses that
//! flow beside `code` or with `openid`). Cognito bills each such client and
//! each token request.

use aws_sdk_cognitoidentityprovider::types::{OAuthFlowType, ResourceServerScopeType, ResourceServerType};
use futures_util::future::try_join_all;

use super::Cognito;
use super::discover::ClientState;
use super::errors::{self, CognitoError, Result};
use crate::provision::spec::ResourceServerSpec;

/// A resource server as Cognito describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceServerState {
    pub(crate) identifier: String,
    pub(crate) name: String,
    /// `(name, description)` of each scope, in Cognito's order.
    pub(crate) scopes: Vec<(String, String)>,
}

impl ResourceServerState {
    fn from_described(server: &ResourceServerType) -> Self {
        Self {
            identifier: server.identifier().unwrap_or_default().to_owned(),
            name: server.name().unwrap_or_default().to_owned(),
            scopes: server
                .scopes()
                .iter()
                .map(|s| (s.scope_name().to_owned(), s.scope_description().to_owned()))
                .collect(),
        }
    }
}

/// What Cognito keeps of `spec` (when an answer omits the server).
fn state_of(spec: &ResourceServerSpec) -> ResourceServerState {
    ResourceServerState { identifier: spec.identifier.clone(), name: spec.name.clone(), scopes: spec.scopes.clone() }
}

/// The client credentials flow, Cognito's name for it.
pub(crate) const CLIENT_CREDENTIALS: &str = "client_credentials";

fn scope_types(spec: &ResourceServerSpec) -> Result<Vec<ResourceServerScopeType>> {
    spec.scopes
        .iter()
        .map(|(name, description)| {
            ResourceServerScopeType::builder()
                .scope_name(name)
                .scope_description(description)
                .build()
                .map_err(|e| CognitoError::Internal { operation: "CreateResourceServer", problem: e.to_string() })
        })
        .collect()
}

impl Cognito {
    /// `DescribeResourceServer`; `None` when the pool has none with this identifier.
    pub(crate) async fn describe_resource_server(
        &self,
        pool_id: &str,
        identifier: &str,
    ) -> Result<Option<ResourceServerState>> {
        self.pace.wait("DescribeResourceServer").await;
        match self.client.describe_resource_server().user_pool_id(pool_id).identifier(identifier).send().await {
            Ok(r) => Ok(r.resource_server().map(ResourceServerState::from_described)),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(errors::map("DescribeResourceServer", self.target(), e)),
        }
    }

    /// Every resource server of the pool (its identifiers), all pages.
    pub(crate) async fn resource_servers(&self, pool_id: &str) -> Result<Vec<ResourceServerState>> {
        self.pace.wait("ListResourceServers").await;
        let servers: Vec<ResourceServerType> = self
            .client
            .list_resource_servers()
            .user_pool_id(pool_id)
            .max_results(50)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::map("ListResourceServers", self.target(), e))?;
        Ok(servers.iter().map(ResourceServerState::from_described).collect())
    }

    /// `None` when the pool has one with this identifier already (a
    /// concurrent `up` of the stack made it a moment ago).
    pub(crate) async fn create_resource_server(
        &self,
        pool_id: &str,
        spec: &ResourceServerSpec,
    ) -> Result<Option<ResourceServerState>> {
        self.pace.wait("CreateResourceServer").await;
        let sent = self
            .client
            .create_resource_server()
            .user_pool_id(pool_id)
            .identifier(&spec.identifier)
            .name(&spec.name)
            .set_scopes(Some(scope_types(spec)?))
            .send()
            .await;
        match sent {
            Ok(r) => {
                Ok(Some(r.resource_server().map(ResourceServerState::from_described).unwrap_or_else(|| state_of(spec))))
            }
            Err(e)
                if errors::code(&e) == Some("InvalidParameterException")
                    && errors::message(&e).is_some_and(|m| m.contains("already exists")) =>
            {
                Ok(None)
            }
            Err(e) => Err(errors::map("CreateResourceServer", self.target(), e)),
        }
    }

    /// `UpdateResourceServer` resets what it is not sent: the name and every
    /// scope are sent, the scopes cognigate wants and those the server has
    /// beyond them (a client may hold one; removing it is not cognigate's call).
    /// `None`: the endpoint does not implement the operation (moto, the local
    /// mode's emulator, has no UpdateResourceServer).
    pub(crate) async fn update_resource_server(
        &self,
        pool_id: &str,
        spec: &ResourceServerSpec,
    ) -> Result<Option<ResourceServerState>> {
        self.pace.wait("UpdateResourceServer").await;
        let response = match self
            .client
            .update_resource_server()
            .user_pool_id(pool_id)
            .identifier(&spec.identifier)
            .name(&spec.name)
            .set_scopes(Some(scope_types(spec)?))
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) if errors::unknown_operation(&e) => return Ok(None),
            Err(e) => return Err(errors::map("UpdateResourceServer", self.target(), e)),
        };
        Ok(Some(response.resource_server().map(ResourceServerState::from_described).unwrap_or_else(|| state_of(spec))))
    }

    pub(crate) async fn delete_resource_server(&self, pool_id: &str, identifier: &str) -> Result<()> {
        self.pace.wait("DeleteResourceServer").await;
        match self.client.delete_resource_server().user_pool_id(pool_id).identifier(identifier).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteResourceServer", self.target(), e)),
        }
    }

    /// A confidential app client with the client credentials flow only and
    /// `scopes` (full `identifier/name` custom scopes).
    pub(crate) async fn create_machine_client(
        &self,
        pool_id: &str,
        name: &str,
        scopes: &[String],
    ) -> Result<ClientState> {
        self.pace.wait("CreateUserPoolClient").await;
        let response = self
            .client
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(name)
            .generate_secret(true)
            .set_allowed_o_auth_flows(Some(vec![OAuthFlowType::ClientCredentials]))
            .set_allowed_o_auth_scopes(Some(scopes.to_vec()))
            .allowed_o_auth_flows_user_pool_client(true)
            .send()
            .await
            .map_err(|e| errors::map("CreateUserPoolClient", self.target(), e))?;
        let described = response
            .user_pool_client()
            .cloned()
            .ok_or(CognitoError::EmptyResponse { operation: "CreateUserPoolClient", missing: "the app client" })?;
        Ok(ClientState::from_described(described))
    }

    /// The pool's machine clients (the client credentials flow), described,
    /// oldest first.
    pub(crate) async fn machine_clients(&self, pool_id: &str) -> Result<Vec<ClientState>> {
        let ids: Vec<String> = self.clients(pool_id).await?.into_iter().map(|(id, _)| id).collect();
        let described = try_join_all(ids.iter().map(|id| self.describe_client(pool_id, id))).await?;
        let mut clients: Vec<ClientState> = described.into_iter().flatten().filter(ClientState::is_machine).collect();
        clients.sort_by_key(ClientState::age_key);
        Ok(clients)
    }
}

impl ClientState {
    /// An app client of a machine: the client credentials flow.
    pub(crate) fn is_machine(&self) -> bool {
        self.described.allowed_o_auth_flows().iter().any(|f| f.as_str() == CLIENT_CREDENTIALS)
    }
}
