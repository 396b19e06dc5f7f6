//! Mutating Cognito calls, each shaped by a Cognito fact from DESIGN.md section 2.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cognitoidentityprovider::types::{
    CustomDomainConfigType, DeletionProtectionType, OAuthFlowType,
};

use super::discover::{ClientState, PoolState};
use super::{Cognito, errors};
use crate::provision::error::{Error, Result};
use crate::provision::progress::Progress;
use crate::provision::spec::{DomainSpec, OAUTH_SCOPES, StackSpec, tags};
use crate::secret::Secret;

/// The settings of the app client that cognigate owns; every other field of an
/// existing client is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub callback_urls: Vec<String>,
    pub oauth_flows: Vec<String>,
    pub oauth_scopes: Vec<String>,
    pub identity_providers: Vec<String>,
    pub oauth_flows_user_pool_client: bool,
}

impl ClientSettings {
    pub fn desired(spec: &StackSpec) -> Self {
        Self {
            callback_urls: spec.callback_urls.clone(),
            oauth_flows: vec!["code".into()],
            oauth_scopes: OAUTH_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            identity_providers: vec!["COGNITO".into()],
            oauth_flows_user_pool_client: true,
        }
    }

    pub fn actual(client: &ClientState) -> Self {
        let c = &client.described;
        Self {
            callback_urls: c.callback_urls().to_vec(),
            oauth_flows: c.allowed_o_auth_flows().iter().map(|f| f.as_str().to_owned()).collect(),
            oauth_scopes: c.allowed_o_auth_scopes().to_vec(),
            identity_providers: c.supported_identity_providers().to_vec(),
            oauth_flows_user_pool_client: c.allowed_o_auth_flows_user_pool_client().unwrap_or(false),
        }
    }
}

/// The tags a managed pool is created with.
pub fn pool_tags(spec: &StackSpec, now: SystemTime) -> HashMap<String, String> {
    let mut tags = HashMap::from([
        (tags::STACK.to_owned(), spec.stack.as_str().to_owned()),
        (tags::MANAGED.to_owned(), "true".to_owned()),
        (tags::CREATED_AT.to_owned(), humantime::format_rfc3339_seconds(now).to_string()),
    ]);
    if let Some(ttl) = spec.ttl {
        tags.insert(tags::TTL.to_owned(), humantime::format_duration(ttl).to_string());
    }
    tags
}

impl Cognito {
    pub async fn create_pool(&self, spec: &StackSpec) -> Result<PoolState> {
        let tags = pool_tags(spec, SystemTime::now());
        let protection =
            if spec.deletion_protection { DeletionProtectionType::Active } else { DeletionProtectionType::Inactive };
        let response = self
            .client
            .create_user_pool()
            .pool_name(spec.pool_name())
            .set_user_pool_tags(Some(tags.clone()))
            .deletion_protection(protection)
            .send()
            .await
            .map_err(|e| errors::map("CreateUserPool", self.endpoint.as_deref(), e))?;
        let pool = response.user_pool().ok_or_else(|| Error::Aws {
            operation: "CreateUserPool",
            code: "EmptyResponse".into(),
            message: "the response carried no user pool".into(),
            hint: None,
        })?;
        Ok(PoolState {
            id: pool.id().unwrap_or_default().to_owned(),
            name: spec.pool_name().to_owned(),
            tags,
            domain: None,
            custom_domain: None,
            deletion_protection: spec.deletion_protection,
            created: pool.creation_date().and_then(|d| SystemTime::try_from(*d).ok()),
        })
    }

    pub async fn delete_pool(&self, pool_id: &str) -> Result<()> {
        match self.client.delete_user_pool().user_pool_id(pool_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteUserPool", self.endpoint.as_deref(), e)),
        }
    }

    /// `UpdateUserPool` resets omitted fields, so turning protection off is done
    /// only by `destroy --force`, right before the pool is deleted. The tags go
    /// back with it: a pool whose deletion then fails must still be recognised
    /// as cognigate's (by `destroy` and `gc`) instead of losing its tags.
    pub async fn disable_deletion_protection(&self, pool: &PoolState) -> Result<()> {
        self.client
            .update_user_pool()
            .user_pool_id(&pool.id)
            .set_user_pool_tags(Some(pool.tags.clone()).filter(|t| !t.is_empty()))
            .deletion_protection(DeletionProtectionType::Inactive)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::map("UpdateUserPool", self.endpoint.as_deref(), e))
    }

    /// Creates the hosted UI domain. "Already exists" from Cognito means the
    /// prefix belongs to another pool, possibly in another AWS account.
    pub async fn create_domain(&self, pool_id: &str, domain: &DomainSpec) -> Result<()> {
        let mut request = self.client.create_user_pool_domain().user_pool_id(pool_id).domain(domain.api_name());
        if let DomainSpec::Custom { certificate_arn, .. } = domain {
            let config = CustomDomainConfigType::builder().certificate_arn(certificate_arn).build().map_err(|e| {
                Error::Usage(format!("invalid custom domain configuration: {e}"))
            })?;
            request = request.custom_domain_config(config);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = errors::message(&e).unwrap_or_default().to_ascii_lowercase();
                if errors::code(&e) == Some("InvalidParameterException")
                    && (text.contains("already") || text.contains("exists"))
                {
                    return Err(domain_taken(domain.api_name(), None));
                }
                Err(errors::map("CreateUserPoolDomain", self.endpoint.as_deref(), e))
            }
        }
    }

    pub async fn delete_domain(&self, pool_id: &str, domain: &str) -> Result<()> {
        match self.client.delete_user_pool_domain().user_pool_id(pool_id).domain(domain).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteUserPoolDomain", self.endpoint.as_deref(), e)),
        }
    }

    /// Polls until the domain is ACTIVE. Prefix domains take about a minute,
    /// custom domains up to an hour (a CloudFront distribution is created).
    pub async fn wait_domain_active(&self, domain: &str, custom: bool, progress: &Progress) -> Result<()> {
        let (interval, limit) =
            if custom { (Duration::from_secs(15), Duration::from_secs(3600)) } else { (Duration::from_secs(3), Duration::from_secs(600)) };
        let started = Instant::now();
        let task = progress.task(format!("domain {domain}"));
        loop {
            let status = self.describe_domain(domain).await?.map(|d| d.status);
            match status.as_deref() {
                Some("ACTIVE") => {
                    task.finish("ACTIVE");
                    return Ok(());
                }
                Some("FAILED") => {
                    task.finish("FAILED");
                    return Err(Error::Conflict(format!(
                        "domain {domain} failed to provision; for a custom domain check that the ACM certificate is \
                         ISSUED in us-east-1 and covers the host, then run `cognigate up` again"
                    )));
                }
                None => {
                    return Err(Error::Conflict(format!(
                        "domain {domain} disappeared while waiting for it; run `cognigate up` again"
                    )));
                }
                Some(other) => task.update(other),
            }
            if started.elapsed() > limit {
                return Err(Error::Conflict(format!(
                    "domain {domain} is still {} after {}; run `cognigate up` again later to keep waiting",
                    status.unwrap_or_default(),
                    humantime::format_duration(limit)
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Polls until the domain is gone (a pool with a domain cannot be deleted).
    pub async fn wait_domain_gone(&self, domain: &str, progress: &Progress) -> Result<()> {
        let started = Instant::now();
        let task = progress.task(format!("deleting domain {domain}"));
        loop {
            match self.describe_domain(domain).await? {
                None => {
                    task.finish("deleted");
                    return Ok(());
                }
                Some(state) => task.update(&state.status),
            }
            if started.elapsed() > Duration::from_secs(3600) {
                return Err(Error::Conflict(format!("domain {domain} is still being deleted after an hour; try again later")));
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    pub async fn create_client(&self, pool_id: &str, name: &str, settings: &ClientSettings) -> Result<ClientState> {
        let response = self
            .client
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(name)
            .generate_secret(true)
            .set_callback_urls(Some(settings.callback_urls.clone()))
            .set_allowed_o_auth_flows(Some(settings.oauth_flows.iter().map(|f| OAuthFlowType::from(f.as_str())).collect()))
            .set_allowed_o_auth_scopes(Some(settings.oauth_scopes.clone()))
            .set_supported_identity_providers(Some(settings.identity_providers.clone()))
            .allowed_o_auth_flows_user_pool_client(settings.oauth_flows_user_pool_client)
            .send()
            .await
            .map_err(|e| errors::map("CreateUserPoolClient", self.endpoint.as_deref(), e))?;
        let described = response.user_pool_client().cloned().ok_or_else(|| Error::Aws {
            operation: "CreateUserPoolClient",
            code: "EmptyResponse".into(),
            message: "the response carried no client".into(),
            hint: None,
        })?;
        Ok(ClientState {
            id: described.client_id().unwrap_or_default().to_owned(),
            name: name.to_owned(),
            secret: described.client_secret().map(Secret::new),
            created: described.creation_date().and_then(|d| SystemTime::try_from(*d).ok()),
            described,
        })
    }

    /// Describe → merge → full update: `UpdateUserPoolClient` resets every field
    /// it is not sent, so every field of the existing client goes back with
    /// only cognigate's own fields replaced. Empty lists are never sent.
    pub async fn update_client(&self, pool_id: &str, current: &ClientState, settings: &ClientSettings) -> Result<ClientState> {
        let request = merged_client_update(&self.client, pool_id, current, settings);
        let response = request.send().await.map_err(|e| errors::map("UpdateUserPoolClient", self.endpoint.as_deref(), e))?;
        let mut described = response.user_pool_client().cloned().unwrap_or_else(|| current.described.clone());
        // UpdateUserPoolClient does not return the secret; keep the one we read.
        if described.client_secret().is_none() {
            described.client_secret = current.described.client_secret.clone();
        }
        Ok(ClientState { described, ..current.clone() })
    }

    pub async fn delete_client(&self, pool_id: &str, client_id: &str) -> Result<()> {
        match self.client.delete_user_pool_client().user_pool_id(pool_id).client_id(client_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteUserPoolClient", self.endpoint.as_deref(), e)),
        }
    }
}

fn non_empty<T: Clone>(values: &[T]) -> Option<Vec<T>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// Builds the full `UpdateUserPoolClient` request (separate so request-shape
/// tests can inspect exactly what is sent).
pub fn merged_client_update(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    current: &ClientState,
    settings: &ClientSettings,
) -> aws_sdk_cognitoidentityprovider::operation::update_user_pool_client::builders::UpdateUserPoolClientFluentBuilder {
    let c = &current.described;
    let flows: Vec<OAuthFlowType> = settings.oauth_flows.iter().map(|f| OAuthFlowType::from(f.as_str())).collect();
    client
        .update_user_pool_client()
        .user_pool_id(pool_id)
        .client_id(&current.id)
        .set_client_name(c.client_name().map(str::to_owned))
        .set_refresh_token_validity(Some(c.refresh_token_validity()).filter(|v| *v > 0))
        .set_access_token_validity(c.access_token_validity())
        .set_id_token_validity(c.id_token_validity())
        .set_token_validity_units(c.token_validity_units().cloned())
        .set_read_attributes(non_empty(c.read_attributes()))
        .set_write_attributes(non_empty(c.write_attributes()))
        .set_explicit_auth_flows(non_empty(c.explicit_auth_flows()))
        .set_logout_urls(non_empty(c.logout_urls()))
        .set_default_redirect_uri(c.default_redirect_uri().map(str::to_owned))
        .set_analytics_configuration(c.analytics_configuration().cloned())
        .set_prevent_user_existence_errors(c.prevent_user_existence_errors().cloned())
        .set_enable_token_revocation(c.enable_token_revocation())
        .set_enable_propagate_additional_user_context_data(c.enable_propagate_additional_user_context_data())
        .set_auth_session_validity(c.auth_session_validity())
        .set_refresh_token_rotation(c.refresh_token_rotation().cloned())
        .set_callback_urls(non_empty(&settings.callback_urls))
        .set_allowed_o_auth_flows(non_empty(&flows))
        .set_allowed_o_auth_scopes(non_empty(&settings.oauth_scopes))
        .set_supported_identity_providers(non_empty(&settings.identity_providers))
        .allowed_o_auth_flows_user_pool_client(settings.oauth_flows_user_pool_client)
}

/// The error for a prefix that another pool holds, with a free-looking suggestion.
pub fn domain_taken(prefix: &str, owner: Option<&str>) -> Error {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{prefix}:{:?}", SystemTime::now()).as_bytes());
    let suffix: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    let base: String = prefix.chars().take(63 - 7).collect();
    let owner = owner.map(|o| format!(" (it belongs to user pool {o})")).unwrap_or_default();
    Error::Conflict(format!(
        "the domain prefix {prefix:?} is already taken{owner}; prefixes are unique per region across all AWS \
         accounts. Choose another one, for example --domain-prefix {base}-{suffix}"
    ))
}
