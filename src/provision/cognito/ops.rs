//! Mutating Cognito calls, each shaped by a fact of the Cognito API (what it
//! resets when a field is omitted, what it refuses, what it cannot change).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, AttributeDataType, CustomDomainConfigType, DeletionProtectionType,
    ExplicitAuthFlowsType, OAuthFlowType, PreventUserExistenceErrorTypes, SchemaAttributeType, UserPoolTierType,
    UsernameConfigurationType, VerifiedAttributeType,
};

use super::discover::{ClientState, PoolState};
use super::errors::{CognitoError, Result};
use super::{Cognito, errors};
use crate::provision::progress::Progress;
use crate::provision::spec::{DomainSpec, ManagedLogin, OAUTH_SCOPES, StackSpec, tags};
use crate::secret::Secret;

/// How long a domain may take to go away.
const DELETE_LIMIT: Duration = Duration::from_secs(3600);

/// DeleteUserPool attempts while Cognito still sees a just-deleted domain, and
/// the first pause between them (doubled each time: 0.5 + 1 + 2 + 4 s at most).
const DOMAIN_LINGER_ATTEMPTS: u32 = 5;
const DOMAIN_LINGER_FIRST_PAUSE: Duration = Duration::from_millis(500);

/// "User pool cannot be deleted. It has a domain configured that should be
/// deleted first." after the domain was deleted and seen gone.
fn domain_lingers<E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata, R>(
    err: &aws_sdk_cognitoidentityprovider::error::SdkError<E, R>,
) -> bool {
    errors::code(err) == Some("InvalidParameterException")
        && errors::message(err).is_some_and(|m| m.to_ascii_lowercase().contains("domain configured"))
}

/// The settings of the app client that cognigate owns; every other field of an
/// existing client is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientSettings {
    pub(crate) callback_urls: Vec<String>,
    pub(crate) oauth_flows: Vec<String>,
    pub(crate) oauth_scopes: Vec<String>,
    pub(crate) identity_providers: Vec<String>,
    pub(crate) oauth_flows_user_pool_client: bool,
}

impl ClientSettings {
    pub(crate) fn desired(spec: &StackSpec) -> Self {
        Self {
            callback_urls: spec.callback_urls.clone(),
            oauth_flows: vec!["code".into()],
            oauth_scopes: OAUTH_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            identity_providers: vec!["COGNITO".into()],
            oauth_flows_user_pool_client: true,
        }
    }

    pub(crate) fn actual(client: &ClientState) -> Self {
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
pub(crate) fn pool_tags(spec: &StackSpec, now: SystemTime) -> HashMap<String, String> {
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
    pub(crate) async fn create_pool(&self, spec: &StackSpec) -> Result<PoolState> {
        let tags = pool_tags(spec, SystemTime::now());
        let protection =
            if spec.deletion_protection { DeletionProtectionType::Active } else { DeletionProtectionType::Inactive };
        self.pace.wait("CreateUserPool").await;
        let mut request = self
            .client
            .create_user_pool()
            .pool_name(spec.pool_name())
            .set_user_pool_tags(Some(tags.clone()))
            .deletion_protection(protection)
            .admin_create_user_config(
                AdminCreateUserConfigType::builder().allow_admin_create_user_only(!spec.self_signup).build(),
            )
            // Cognito's default (true) is fixed at creation: Alice@x.com and
            // alice@x.com would be two users forever.
            .username_configuration(
                UsernameConfigurationType::builder()
                    .case_sensitive(false)
                    .build()
                    .map_err(|e| CognitoError::Internal { operation: "CreateUserPool", problem: e.to_string() })?,
            )
            // Left out, Cognito picks Essentials, billed higher than Lite.
            .user_pool_tier(UserPoolTierType::from(spec.feature_plan.tier()));
        // Self sign-up confirms users by the code Cognito e-mails: without
        // auto-verified e-mail they stay UNCONFIRMED, and their ID tokens
        // carry no e-mail. A required e-mail can only be set now.
        if spec.self_signup {
            request = request.auto_verified_attributes(VerifiedAttributeType::Email).schema(
                SchemaAttributeType::builder()
                    .name("email")
                    .attribute_data_type(AttributeDataType::String)
                    .required(true)
                    .mutable(true)
                    .build(),
            );
        }
        let response = request.send().await.map_err(|e| errors::map("CreateUserPool", self.target(), e))?;
        let pool = response
            .user_pool()
            .ok_or(CognitoError::EmptyResponse { operation: "CreateUserPool", missing: "the user pool" })?;
        Ok(PoolState {
            id: pool.id().unwrap_or_default().to_owned(),
            name: spec.pool_name().to_owned(),
            tags,
            domain: None,
            custom_domain: None,
            deletion_protection: spec.deletion_protection,
            admin_only_signup: !spec.self_signup,
            created: pool.creation_date().and_then(|d| SystemTime::try_from(*d).ok()),
            traits: super::discover::PoolTraits::of(pool),
        })
    }

    /// Deletes the pool. Right after its domain is gone (DescribeUserPoolDomain
    /// empty), Cognito may still answer that the pool "has a domain
    /// configured" for a few seconds: that answer is retried
    /// a bounded number of times with a short, growing pause.
    pub(crate) async fn delete_pool(&self, pool_id: &str) -> Result<()> {
        let mut pause = DOMAIN_LINGER_FIRST_PAUSE;
        for attempt in 1.. {
            self.pace.wait("DeleteUserPool").await;
            match self.client.delete_user_pool().user_pool_id(pool_id).send().await {
                Ok(_) => return Ok(()),
                Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(()),
                Err(e) if attempt < DOMAIN_LINGER_ATTEMPTS && domain_lingers(&e) => {
                    tracing::debug!(pool = %pool_id, attempt, "Cognito still sees the deleted domain; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => return Err(errors::map("DeleteUserPool", self.target(), e)),
            }
        }
        Ok(())
    }

    /// Turns deletion protection off, keeping every other setting of the pool
    /// (see [`super::pool::merged_pool_update`]). Called right before `DeleteUserPool`,
    /// so a teardown that stops earlier leaves the pool protected.
    pub(crate) async fn disable_deletion_protection(&self, pool_id: &str) -> Result<()> {
        let described = self.describe_pool_settings(pool_id).await?;
        self.pace.wait("UpdateUserPool").await;
        super::pool::merged_pool_update(&self.client, &described)
            .deletion_protection(DeletionProtectionType::Inactive)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::map("UpdateUserPool", self.target(), e))
    }

    /// Creates the hosted UI domain; one that this pool already has (a
    /// concurrent run of the stack made it) counts as created. Cognito answers
    /// `InvalidParameterException` both for a domain another pool holds and for
    /// other refusals, with only its message telling them apart; describing the
    /// domain finds an owner in this account, and otherwise the error carries
    /// Cognito's own message, with a hint for the other-account case only when
    /// the message says the name is held elsewhere ("the user
    /// pool already has a domain configured" is about this pool).
    /// The login pages are chosen explicitly (`ManagedLoginVersion`): Cognito's
    /// own default has changed over time, and cognigate's app client works with
    /// the classic hosted UI without a branding style.
    /// Returns the CloudFront distribution a custom domain's alias record must
    /// point at (Cognito answers it here; a prefix domain has none to set up).
    pub(crate) async fn create_domain(
        &self,
        pool_id: &str,
        domain: &DomainSpec,
        managed_login: ManagedLogin,
    ) -> Result<Option<String>> {
        self.pace.wait("CreateUserPoolDomain").await;
        let mut request = self
            .client
            .create_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(domain.api_name())
            // Sent explicitly: Cognito's default for a new domain has changed before.
            .managed_login_version(managed_login.version());
        if let DomainSpec::Custom { certificate_arn, .. } = domain {
            request = request.custom_domain_config(custom_domain_config("CreateUserPoolDomain", certificate_arn)?);
        }
        let e = match request.send().await {
            Ok(created) => return Ok(created.cloud_front_domain().filter(|d| !d.is_empty()).map(str::to_owned)),
            Err(e) => e,
        };
        if errors::code(&e) != Some("InvalidParameterException") {
            return Err(errors::map("CreateUserPoolDomain", self.target(), e));
        }
        match self.describe_domain(domain.api_name()).await? {
            Some(existing) if existing.pool_id == pool_id => Ok(existing.cloudfront),
            Some(existing) => Err(domain_taken(domain.api_name(), existing.pool_id)),
            None => Err(match (errors::map("CreateUserPoolDomain", self.target(), e), domain) {
                (CognitoError::Service { operation, code, message, hint: None }, DomainSpec::Prefix(prefix))
                    if means_prefix_taken(&message) =>
                {
                    let hint = Some(format!(
                        "if another AWS account holds this prefix (prefixes are unique per region across all \
                         accounts), choose another one, for example --domain-prefix {}",
                        suggested_prefix(prefix)
                    ));
                    CognitoError::Service { operation, code, message, hint }
                }
                (other, _) => other,
            }),
        }
    }

    /// Switches the domain's login pages between v1 and v2; a custom domain's
    /// certificate goes along, as UpdateUserPoolDomain takes both together.
    pub(crate) async fn update_domain_version(
        &self,
        pool_id: &str,
        domain: &DomainSpec,
        login: ManagedLogin,
    ) -> Result<()> {
        self.pace.wait("UpdateUserPoolDomain").await;
        let mut request = self
            .client
            .update_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(domain.api_name())
            .managed_login_version(login.version());
        if let DomainSpec::Custom { certificate_arn, .. } = domain {
            request = request.custom_domain_config(custom_domain_config("UpdateUserPoolDomain", certificate_arn)?);
        }
        request.send().await.map(|_| ()).map_err(|e| errors::map("UpdateUserPoolDomain", self.target(), e))
    }

    /// Points a custom domain at another ACM certificate. UpdateUserPoolDomain
    /// also sets `ManagedLoginVersion`, and an omitted one may put a managed
    /// login (v2) domain back on the classic pages: the described version is
    /// sent back.
    pub(crate) async fn update_domain_certificate(
        &self,
        pool_id: &str,
        domain: &str,
        certificate_arn: &str,
    ) -> Result<()> {
        let version = self.describe_domain(domain).await?.and_then(|d| d.managed_login_version);
        self.pace.wait("UpdateUserPoolDomain").await;
        self.client
            .update_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(domain)
            .set_managed_login_version(version)
            .custom_domain_config(custom_domain_config("UpdateUserPoolDomain", certificate_arn)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::map("UpdateUserPoolDomain", self.target(), e))
    }

    pub(crate) async fn delete_domain(&self, pool_id: &str, domain: &str) -> Result<()> {
        self.pace.wait("DeleteUserPoolDomain").await;
        match self.client.delete_user_pool_domain().user_pool_id(pool_id).domain(domain).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteUserPoolDomain", self.target(), e)),
        }
    }

    /// Polls until the domain is ACTIVE. Prefix domains take about a minute,
    /// custom domains up to an hour (a CloudFront distribution is created).
    pub(crate) async fn wait_domain_active(&self, domain: &str, custom: bool, progress: &Progress) -> Result<()> {
        let (interval, limit) = if custom {
            (Duration::from_secs(15), Duration::from_secs(3600))
        } else {
            (Duration::from_secs(3), Duration::from_secs(600))
        };
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
                    return Err(CognitoError::DomainFailed { domain: domain.to_owned() });
                }
                None => {
                    return Err(CognitoError::DomainVanished { domain: domain.to_owned() });
                }
                Some(other) => task.update(other),
            }
            if started.elapsed() > limit {
                return Err(CognitoError::WaitTimedOut {
                    what: format!("domain {domain}"),
                    status: status.unwrap_or_default(),
                    waited: limit,
                    next: "run `cognigate up` again later to keep waiting",
                });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Polls until the domain is gone (a pool with a domain cannot be deleted).
    pub(crate) async fn wait_domain_gone(&self, domain: &str, progress: &Progress) -> Result<()> {
        let started = Instant::now();
        let task = progress.task(format!("deleting domain {domain}"));
        loop {
            let status = match self.describe_domain(domain).await? {
                None => {
                    task.finish("deleted");
                    return Ok(());
                }
                Some(state) => state.status,
            };
            task.update(&status);
            if started.elapsed() > DELETE_LIMIT {
                return Err(CognitoError::WaitTimedOut {
                    what: format!("domain {domain}"),
                    status,
                    waited: DELETE_LIMIT,
                    next: "try again later",
                });
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    pub(crate) async fn create_client(
        &self,
        pool_id: &str,
        name: &str,
        settings: &ClientSettings,
    ) -> Result<ClientState> {
        self.pace.wait("CreateUserPoolClient").await;
        let response = self
            .client
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(name)
            .generate_secret(true)
            // The gateway only uses the authorization code flow: no password or
            // SRP sign-in through the API, and no hint whether a user exists.
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
            .set_callback_urls(Some(settings.callback_urls.clone()))
            .set_allowed_o_auth_flows(Some(
                settings.oauth_flows.iter().map(|f| OAuthFlowType::from(f.as_str())).collect(),
            ))
            .set_allowed_o_auth_scopes(Some(settings.oauth_scopes.clone()))
            .set_supported_identity_providers(Some(settings.identity_providers.clone()))
            .allowed_o_auth_flows_user_pool_client(settings.oauth_flows_user_pool_client)
            .send()
            .await
            .map_err(|e| errors::map("CreateUserPoolClient", self.target(), e))?;
        let described = response
            .user_pool_client()
            .cloned()
            .ok_or(CognitoError::EmptyResponse { operation: "CreateUserPoolClient", missing: "the app client" })?;
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
    /// only cognigate's own fields replaced. Empty lists are not sent, except
    /// `ExplicitAuthFlows`, whose omission means Cognito's defaults.
    pub(crate) async fn update_client(
        &self,
        pool_id: &str,
        current: &ClientState,
        settings: &ClientSettings,
    ) -> Result<ClientState> {
        self.pace.wait("UpdateUserPoolClient").await;
        let request = merged_client_update(&self.client, pool_id, current, settings);
        let response = request.send().await.map_err(|e| errors::map("UpdateUserPoolClient", self.target(), e))?;
        let mut described = response.user_pool_client().cloned().unwrap_or_else(|| current.described.clone());
        // UpdateUserPoolClient does not return the secret; keep the one we read.
        if described.client_secret().is_none() {
            described.client_secret = current.described.client_secret.clone();
        }
        Ok(ClientState { described, ..current.clone() })
    }

    pub(crate) async fn delete_client(&self, pool_id: &str, client_id: &str) -> Result<()> {
        self.pace.wait("DeleteUserPoolClient").await;
        match self.client.delete_user_pool_client().user_pool_id(pool_id).client_id(client_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(errors::map("DeleteUserPoolClient", self.target(), e)),
        }
    }
}

fn non_empty<T: Clone>(values: &[T]) -> Option<Vec<T>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// Builds the full `UpdateUserPoolClient` request (separate so request-shape
/// tests can inspect exactly what is sent).
pub(crate) fn merged_client_update(
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
        // Sent even when empty: an omitted list makes Cognito give the client
        // its three default flows.
        .set_explicit_auth_flows(Some(c.explicit_auth_flows().to_vec()))
        .set_logout_urls(non_empty(c.logout_urls()))
        // Cognito refuses the whole update when the default redirect is not one
        // of the new callback URLs.
        .set_default_redirect_uri(
            c.default_redirect_uri().filter(|uri| settings.callback_urls.iter().any(|u| u == uri)).map(str::to_owned),
        )
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

/// Whether a CreateUserPoolDomain refusal means another pool holds the name.
/// "The user pool already has a domain configured" does not:
/// it is this pool's own domain, and a suggestion of another prefix would mislead.
fn means_prefix_taken(message: &str) -> bool {
    let text = message.to_ascii_lowercase();
    text.contains("associated with another user pool") || text.contains("already exists")
}

/// The error for a prefix that another pool holds, with a free-looking suggestion.
pub(crate) fn domain_taken(prefix: &str, owner: String) -> CognitoError {
    CognitoError::DomainTaken { prefix: prefix.to_owned(), owner, suggestion: suggested_prefix(prefix) }
}

/// The prefix with a random suffix, still within Cognito's 63 characters.
fn suggested_prefix(prefix: &str) -> String {
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let base: String = prefix.chars().take(63 - 7).collect();
    format!("{base}-{suffix}")
}

/// The certificate part of a custom domain request.
fn custom_domain_config(operation: &'static str, certificate_arn: &str) -> Result<CustomDomainConfigType> {
    CustomDomainConfigType::builder()
        .certificate_arn(certificate_arn)
        .build()
        .map_err(|e| CognitoError::Internal { operation, problem: e.to_string() })
}

/// Request-shape tests on the SDK's replay client: moto merges on
/// UpdateUserPoolClient, so only the request itself can show that cognigate
/// sends the full field set the real service needs.
#[cfg(test)]
mod request_shape {

    use aws_sdk_cognitoidentityprovider::types::{
        ExplicitAuthFlowsType, OAuthFlowType, TimeUnitsType, TokenValidityUnitsType, UserPoolClientType,
    };
    use aws_smithy_http_client::test_util::StaticReplayClient;

    use serde_json::json;

    use super::*;
    use crate::provision::cognito::replay::{answer, cognito, sent};

    /// What CreateUserPool sends: usernames that ignore case, the plan asked
    /// for, and of the sign-up configuration only the members that are set.
    #[tokio::test]
    async fn a_new_pool_ignores_username_case_and_names_its_plan() {
        let created = r#"{"UserPool":{"Id":"us-east-1_abc","Name":"demo"}}"#;
        let replay = StaticReplayClient::new(vec![answer(created), answer(created)]);
        let cognito = cognito(&replay);
        let mut spec = crate::provision::plan::tests_support::spec();
        cognito.create_pool(&spec).await.unwrap();
        spec.self_signup = true;
        spec.feature_plan = crate::provision::spec::FeaturePlan::Essentials;
        cognito.create_pool(&spec).await.unwrap();
        let sent = sent(&replay);
        let (admin_only, open) = (&sent[0].1, &sent[1].1);
        assert_eq!(admin_only["UsernameConfiguration"], json!({ "CaseSensitive": false }));
        assert_eq!(admin_only["UserPoolTier"], "LITE");
        assert_eq!(admin_only["AdminCreateUserConfig"], json!({ "AllowAdminCreateUserOnly": true }), "{admin_only}");
        assert!(admin_only.get("AutoVerifiedAttributes").is_none(), "{admin_only}");
        assert_eq!(open["UserPoolTier"], "ESSENTIALS");
        assert_eq!(open["AutoVerifiedAttributes"], json!(["email"]));
        assert_eq!(open["Schema"][0]["Name"], "email");
        assert_eq!(open["Schema"][0]["Required"], true);
    }

    fn customised_client() -> ClientState {
        let described = UserPoolClientType::builder()
            .user_pool_id("us-east-1_abc")
            .client_id("c1")
            .client_name("demo-gateway")
            .client_secret("s3cret")
            .refresh_token_validity(10)
            .access_token_validity(2)
            .token_validity_units(TokenValidityUnitsType::builder().access_token(TimeUnitsType::Hours).build())
            .read_attributes("email")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .logout_urls("https://gw.example.com/logout")
            .enable_token_revocation(true)
            .callback_urls("https://evil.example.com/cb")
            .allowed_o_auth_flows(OAuthFlowType::Implicit)
            .allowed_o_auth_scopes("openid")
            .supported_identity_providers("Google")
            .allowed_o_auth_flows_user_pool_client(false)
            .build();
        ClientState {
            id: "c1".into(),
            name: "demo-gateway".into(),
            secret: Some(Secret::new("s3cret")),
            created: None,
            described,
        }
    }

    fn desired() -> ClientSettings {
        ClientSettings {
            callback_urls: vec![
                "https://gw.example.com/oauth/callback".into(),
                "http://localhost:9000/oauth/callback".into(),
            ],
            oauth_flows: vec!["code".into()],
            oauth_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            identity_providers: vec!["COGNITO".into()],
            oauth_flows_user_pool_client: true,
        }
    }

    #[tokio::test]
    async fn client_update_sends_the_full_merged_field_set() {
        let replay = StaticReplayClient::new(vec![answer(
            r#"{"UserPoolClient":{"ClientId":"c1","ClientName":"demo-gateway"}}"#,
        )]);
        let updated = cognito(&replay).update_client("us-east-1_abc", &customised_client(), &desired()).await.unwrap();
        assert_eq!(updated.secret.as_ref().map(Secret::expose), Some("s3cret"), "the secret read before is kept");

        let requests = sent(&replay);
        assert_eq!(requests.len(), 1);
        let (operation, body) = &requests[0];
        assert_eq!(operation, "UpdateUserPoolClient");
        assert_eq!(
            *body,
            json!({
                "UserPoolId": "us-east-1_abc",
                "ClientId": "c1",
                "ClientName": "demo-gateway",
                // Fields cognigate does not own go back exactly as described.
                "RefreshTokenValidity": 10,
                "AccessTokenValidity": 2,
                "TokenValidityUnits": { "AccessToken": "hours" },
                "ReadAttributes": ["email"],
                "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
                "LogoutURLs": ["https://gw.example.com/logout"],
                "EnableTokenRevocation": true,
                // Fields cognigate owns are the desired ones.
                "CallbackURLs": ["https://gw.example.com/oauth/callback", "http://localhost:9000/oauth/callback"],
                "AllowedOAuthFlows": ["code"],
                "AllowedOAuthScopes": ["openid", "profile", "email"],
                "SupportedIdentityProviders": ["COGNITO"],
                "AllowedOAuthFlowsUserPoolClient": true,
            })
        );
    }

    #[tokio::test]
    async fn client_update_never_sends_empty_lists() {
        let replay = StaticReplayClient::new(vec![answer(r#"{"UserPoolClient":{"ClientId":"c1"}}"#)]);
        let bare = ClientState {
            id: "c1".into(),
            name: "demo-gateway".into(),
            secret: Some(Secret::new("x")),
            created: None,
            described: UserPoolClientType::builder().client_id("c1").client_name("demo-gateway").build(),
        };
        cognito(&replay).update_client("us-east-1_abc", &bare, &desired()).await.unwrap();
        let (_, body) = &sent(&replay)[0];
        for (key, value) in body.as_object().unwrap() {
            if key != "ExplicitAuthFlows" {
                assert!(value.as_array().is_none_or(|a| !a.is_empty()), "{key} sent as an empty list");
            }
        }
        assert!(body.get("RefreshTokenValidity").is_none(), "an unset validity must not be sent as 0");
    }

    /// An omitted `ExplicitAuthFlows` becomes Cognito's three defaults.
    #[tokio::test]
    async fn client_update_sends_an_empty_auth_flow_list_back_as_empty() {
        let replay = StaticReplayClient::new(vec![answer(r#"{"UserPoolClient":{"ClientId":"c1"}}"#)]);
        let mut bare = customised_client();
        bare.described.explicit_auth_flows = None;
        cognito(&replay).update_client("us-east-1_abc", &bare, &desired()).await.unwrap();
        let (_, body) = &sent(&replay)[0];
        assert_eq!(body["ExplicitAuthFlows"], json!([]));
    }

    /// Cognito refuses a default redirect outside the callback URLs.
    #[tokio::test]
    async fn client_update_keeps_the_default_redirect_only_when_it_is_a_new_callback() {
        for (redirect, kept) in [("https://evil.example.com/cb", false), ("http://localhost:9000/oauth/callback", true)]
        {
            let replay = StaticReplayClient::new(vec![answer(r#"{"UserPoolClient":{"ClientId":"c1"}}"#)]);
            let mut client = customised_client();
            client.described.default_redirect_uri = Some(redirect.into());
            cognito(&replay).update_client("us-east-1_abc", &client, &desired()).await.unwrap();
            let (_, body) = &sent(&replay)[0];
            assert_eq!(body.get("DefaultRedirectURI").is_some(), kept, "{redirect}: {body}");
        }
    }

    /// New clients get the code flow's refresh only, and no user enumeration.
    #[tokio::test]
    async fn client_is_created_with_refresh_only_auth_flows_and_no_user_existence_errors() {
        let replay =
            StaticReplayClient::new(vec![answer(r#"{"UserPoolClient":{"ClientId":"c1","ClientSecret":"s"}}"#)]);
        cognito(&replay).create_client("us-east-1_abc", "demo-gateway", &desired()).await.unwrap();
        let (operation, body) = &sent(&replay)[0];
        assert_eq!(operation, "CreateUserPoolClient");
        assert_eq!(body["ExplicitAuthFlows"], json!(["ALLOW_REFRESH_TOKEN_AUTH"]));
        assert_eq!(body["PreventUserExistenceErrors"], "ENABLED");
    }

    /// Only "associated with another user pool" / "already exists" mean taken.
    #[test]
    fn only_a_foreign_owner_means_the_prefix_is_taken() {
        assert!(means_prefix_taken("Domain already associated with another user pool."));
        assert!(means_prefix_taken("Domain my-prefix already exists."));
        assert!(!means_prefix_taken("The user pool already has a domain configured."));
    }

    /// Lifting protection sends back every setting
    /// DescribeUserPool shows (UpdateUserPool resets what it is not sent), with
    /// the reserved `aws:` tags left out and only the protection changed.
    #[tokio::test]
    async fn lifting_protection_keeps_every_described_setting() {
        let described = json!({ "UserPool": {
            "Id": "us-east-1_abc", "Name": "adopted", "DeletionProtection": "ACTIVE",
            "Policies": { "PasswordPolicy": { "MinimumLength": 12, "RequireSymbols": true,
                                              "TemporaryPasswordValidityDays": 3 } },
            "LambdaConfig": { "PreSignUp": "arn:aws:lambda:us-east-1:123456789012:function:pre" },
            "AutoVerifiedAttributes": ["email"],
            "MfaConfiguration": "OPTIONAL",
            "EmailConfiguration": { "EmailSendingAccount": "DEVELOPER",
                                    "SourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com" },
            "AdminCreateUserConfig": { "AllowAdminCreateUserOnly": true, "UnusedAccountValidityDays": 7 },
            "UserPoolTier": "PLUS",
            "UserPoolAddOns": { "AdvancedSecurityMode": "ENFORCED" },
            "AccountRecoverySetting": { "RecoveryMechanisms": [{ "Priority": 1, "Name": "verified_email" }] },
            "VerificationMessageTemplate": { "DefaultEmailOption": "CONFIRM_WITH_CODE" },
            "UserPoolTags": { "cognigate:stack": "demo", "aws:cloudformation:stack-name": "other" }
        }});
        let replay = StaticReplayClient::new(vec![answer(&described.to_string()), answer("{}")]);
        cognito(&replay).disable_deletion_protection("us-east-1_abc").await.unwrap();
        let sent = sent(&replay);
        assert_eq!(sent.iter().map(|(op, _)| op.as_str()).collect::<Vec<_>>(), ["DescribeUserPool", "UpdateUserPool"]);
        let body = &sent[1].1;
        let pool = &described["UserPool"];
        assert_eq!(body["DeletionProtection"], "INACTIVE");
        let password = &body["Policies"]["PasswordPolicy"];
        assert_eq!((&password["MinimumLength"], &password["RequireSymbols"]), (&json!(12), &json!(true)), "{body}");
        assert_eq!(password["TemporaryPasswordValidityDays"], 3);
        for kept in [
            "LambdaConfig",
            "AutoVerifiedAttributes",
            "MfaConfiguration",
            "EmailConfiguration",
            "UserPoolTier",
            "UserPoolAddOns",
            "AccountRecoverySetting",
            "VerificationMessageTemplate",
        ] {
            assert_eq!(body[kept], pool[kept], "{kept} not sent back: {body}");
        }
        assert_eq!(body["PoolName"], "adopted");
        // Cognito refuses UnusedAccountValidityDays beside TemporaryPasswordValidityDays
        // (the SDK always serializes the number): it is never sent.
        assert_eq!(body["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], true);
        assert!(body["AdminCreateUserConfig"].get("UnusedAccountValidityDays").is_none(), "{body}");
        assert_eq!(body["UserPoolTags"], json!({ "cognigate:stack": "demo" }));
    }

    /// A certificate change sends the described
    /// ManagedLoginVersion back, so a managed login domain stays on version 2.
    #[tokio::test]
    async fn certificate_update_keeps_the_described_managed_login_version() {
        let described = r#"{"DomainDescription":{"Domain":"auth.example.com","UserPoolId":"us-east-1_abc",
            "Status":"ACTIVE","ManagedLoginVersion":2}}"#;
        let replay = StaticReplayClient::new(vec![answer(described), answer("{}")]);
        let certificate = "arn:aws:acm:us-east-1:123456789012:certificate/new";
        cognito(&replay).update_domain_certificate("us-east-1_abc", "auth.example.com", certificate).await.unwrap();
        let (operation, body) = &sent(&replay)[1];
        assert_eq!(operation, "UpdateUserPoolDomain");
        assert_eq!(body["ManagedLoginVersion"], 2);
        assert_eq!(body["CustomDomainConfig"]["CertificateArn"], certificate);
    }

    #[tokio::test]
    async fn pool_is_created_with_the_stack_tags() {
        let replay = StaticReplayClient::new(vec![answer(r#"{"UserPool":{"Id":"us-east-1_new","Name":"demo"}}"#)]);
        let mut spec = crate::provision::plan::tests_support::spec();
        spec.ttl = Some(std::time::Duration::from_secs(3600));
        let pool = cognito(&replay).create_pool(&spec).await.unwrap();
        assert_eq!(pool.id, "us-east-1_new");
        let (operation, body) = &sent(&replay)[0];
        assert_eq!(operation, "CreateUserPool");
        assert_eq!(body["PoolName"], "demo");
        assert_eq!(body["DeletionProtection"], "INACTIVE");
        let tags = &body["UserPoolTags"];
        assert_eq!(tags["cognigate:stack"], "demo");
        assert_eq!(tags["cognigate:managed"], "true");
        assert_eq!(tags["cognigate:ttl"], "1h");
        assert!(humantime::parse_rfc3339(tags["cognigate:created-at"].as_str().unwrap()).is_ok());
    }
}
