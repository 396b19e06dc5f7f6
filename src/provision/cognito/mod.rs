//! Talking to Cognito: building the SDK client, reading what exists
//! ([`discover`]), changing it ([`ops`], [`pool`], [`secrets`], [`branding`]), its groups
//! and users ([`groups`], [`users`]), machine clients and their resource server
//! ([`machine`]), pacing requests under Cognito's rate
//! quotas ([`pace`]), and turning SDK errors into typed errors that say what
//! to do ([`errors`]).
//!
//! Everything here is a thin, typed layer over `aws-sdk-cognitoidentityprovider`;
//! deciding *what* to call lives in `plan` and `apply`. Every SDK call of the
//! CLI is made here: the client itself is private to this module.

pub(crate) mod branding;
pub(crate) mod discover;
pub(crate) mod errors;
pub(crate) mod groups;
pub(crate) mod machine;
pub(crate) mod ops;
pub(crate) mod pace;
pub(crate) mod pool;
#[cfg(test)]
pub(crate) mod replay;
pub(crate) mod secrets;
pub(crate) mod users;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cognitoidentityprovider::config::interceptors::{BeforeTransmitInterceptorContextMut, InterceptorContext};
use aws_sdk_cognitoidentityprovider::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, ProvideCredentials};
use aws_sdk_cognitoidentityprovider::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

use errors::CognitoError;

use super::error::{Error, Result};
use super::settings::AwsTarget;
use super::validate::Region;

/// The Cognito operations each subcommand may call, in the order the README's
/// IAM table lists them: the table is rendered from this list (a test keeps
/// them equal), a test checks that the list names every SDK call of this
/// module, and the integration tests check each command's calls against it
/// through the README.
// Read by the tests that keep the README, the code and the calls in line.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const OPERATIONS: &[(&str, &[&str])] = &[
    (
        "plan",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListGroups",
            "DescribeResourceServer",
        ],
    ),
    (
        "up",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "CreateUserPool",
            "CreateUserPoolDomain",
            "UpdateUserPoolDomain",
            "DeleteUserPoolDomain",
            "CreateUserPoolClient",
            "UpdateUserPoolClient",
            "DeleteUserPoolClient",
            "DeleteUserPool",
            "UpdateUserPool",
            "ListUserPoolClientSecrets",
            "DescribeManagedLoginBrandingByClient",
            "CreateManagedLoginBranding",
            "ListGroups",
            "CreateGroup",
            "DescribeResourceServer",
            "CreateResourceServer",
            "UpdateResourceServer",
        ],
    ),
    (
        "outputs",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListUserPoolClientSecrets",
            "ListGroups",
        ],
    ),
    (
        "rotate-secret",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListUserPoolClientSecrets",
            "AddUserPoolClientSecret",
            "DeleteUserPoolClientSecret",
            "ListGroups",
        ],
    ),
    (
        "destroy",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "DeleteUserPoolDomain",
            "DeleteUserPoolClient",
            "UpdateUserPool",
            "DeleteUserPool",
            "ListResourceServers",
            "DeleteResourceServer",
        ],
    ),
    (
        "user",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "AdminCreateUser",
            "AdminSetUserPassword",
            "AdminDeleteUser",
            "ListUsers",
            "ListGroups",
            "ListUsersInGroup",
            "AdminListGroupsForUser",
            "AdminAddUserToGroup",
            "AdminRemoveUserFromGroup",
        ],
    ),
    (
        "client",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "ListResourceServers",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "CreateUserPoolClient",
            "DeleteUserPoolClient",
            "ListUserPoolClientSecrets",
            "AddUserPoolClientSecret",
            "DeleteUserPoolClientSecret",
        ],
    ),
    (
        "export",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListGroups",
        ],
    ),
    (
        "doctor",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
        ],
    ),
    (
        "gc",
        &[
            "ListUserPools",
            "DescribeUserPool",
            "DescribeUserPoolDomain",
            "ListUserPoolClients",
            "DeleteUserPoolDomain",
            "DeleteUserPoolClient",
            "UpdateUserPool",
            "DeleteUserPool",
            "ListResourceServers",
        ],
    ),
];

/// Attempts per AWS call (first try included). Throttling and transient errors
/// are retried by the SDK with exponential backoff; `COGNIGATE_AWS_MAX_ATTEMPTS`
/// overrides it (tests set 1 so an emulator's gap costs no seconds).
const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// A connected Cognito client and where it points.
#[derive(Clone, Debug)]
pub(crate) struct Cognito {
    client: aws_sdk_cognitoidentityprovider::Client,
    /// Shown in connection errors; `None` means the public AWS endpoint.
    endpoint: Option<String>,
    /// Every call waits here for its quota category's turn (shared by clones).
    pace: std::sync::Arc<pace::Pace>,
}

/// The region from flags/env/settings, else the AWS profile's; makes no AWS call.
pub(crate) async fn resolve_region(target: &AwsTarget) -> Result<Region> {
    if let Some(region) = &target.region {
        return Ok(region.clone());
    }
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(profile) = &target.profile {
        chain = chain.profile_name(profile);
    }
    let region = chain.build().region().await.ok_or_else(|| {
        Error::Usage("no AWS region: pass --region, set AWS_REGION, or set a region in your AWS profile".into())
    })?;
    Ok(Region::parse(region.as_ref())?)
}

impl Cognito {
    /// Resolves credentials the way the AWS CLI does and fails early, with
    /// instructions, when there are none. Makes no AWS API call.
    pub(crate) async fn connect(target: &AwsTarget, region: &Region) -> Result<Self> {
        let max_attempts = std::env::var("COGNIGATE_AWS_MAX_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        // Standard mode: exponential backoff with jitter on throttling and
        // transient errors. Adaptive mode was measured here: after one throttle
        // its client-side limiter, fed by a CLI's low request rate, stalled the
        // next calls for ~25 s each (52 s vs 2.9 s for the same injected
        // throttles), so request rates are bounded by our own concurrency limits.
        let retry =
            RetryConfig::standard().with_max_attempts(max_attempts).with_initial_backoff(Duration::from_millis(200));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts)
            .region(aws_sdk_cognitoidentityprovider::config::Region::new(region.as_str().to_owned()));
        if let Some(profile) = &target.profile {
            // The profile alone, as the aws CLI's --profile: keys in the
            // environment would otherwise come first in the default chain.
            let named = aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile).build();
            loader = loader.profile_name(profile).credentials_provider(named);
        }
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;

        let credentials = config.credentials_provider().ok_or(CognitoError::NoCredentials)?;
        if let Err(e) = credentials.provide_credentials().await {
            tracing::debug!(error = %e, "credential chain failed");
            return Err(match &target.profile {
                Some(profile) => match super::profile::missing(profile) {
                    Some(problem) => Error::ProfileMissing { problem, fix: super::profile::fix(profile) },
                    None => Error::ProfileUnusable { profile: profile.clone(), problem: e.to_string() },
                },
                None => CognitoError::NoCredentials.into(),
            });
        }

        let endpoint = target.endpoint_url.clone().or_else(|| config.endpoint_url().map(str::to_owned));
        let client_config = aws_sdk_cognitoidentityprovider::config::Builder::from(&config)
            .retry_classifier(QuotaIsFinal)
            .interceptor(OnlyMembersThatAreSet)
            .build();
        Ok(Self {
            client: aws_sdk_cognitoidentityprovider::Client::from_conf(client_config),
            endpoint,
            pace: Default::default(),
        })
    }
}

impl Cognito {
    /// The endpoint override in use (an emulator or proxy); `None` for AWS itself.
    pub(crate) fn endpoint_override(&self) -> Option<String> {
        self.endpoint.clone()
    }

    /// Where calls go, for error messages.
    fn target(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// A client over a given SDK configuration (tests: a fake HTTP client).
    #[cfg(test)]
    pub(crate) fn from_conf(config: aws_sdk_cognitoidentityprovider::Config) -> Self {
        let config = config.to_builder().interceptor(OnlyMembersThatAreSet).build();
        Self {
            client: aws_sdk_cognitoidentityprovider::Client::from_conf(config),
            endpoint: None,
            pace: Default::default(),
        }
    }
}

/// `LimitExceededException` is a Cognito quota (pools, domains, clients per
/// account), not a rate; the SDK retries it as throttling, which only delays
/// the error by the whole backoff. This classifier runs
/// after the SDK's error-code one and forbids the retry.
#[derive(Debug)]
struct QuotaIsFinal;

impl ClassifyRetry for QuotaIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(response) = ctx.response() else { return RetryAction::NoActionIndicated };
        if is_quota(response.headers().get("x-amzn-errortype"), response.body().bytes()) {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "cognigate: a quota is not throttling"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The SDK models `AdminCreateUserConfig.UnusedAccountValidityDays` as a
/// plain integer, so every request carrying the sign-up configuration sends
/// it, as 0 when unset; Cognito refuses that member beside the password
/// policy's `TemporaryPasswordValidityDays`, which replaced it. This drops it
/// from the body before the request is signed, so only members cognigate set
/// are sent.
#[derive(Debug)]
struct OnlyMembersThatAreSet;

impl Intercept for OnlyMembersThatAreSet {
    fn name(&self) -> &'static str {
        "cognigate: only members that are set"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let request = context.request_mut();
        let Some(body) = request.body().bytes() else { return Ok(()) };
        let Some(trimmed) = without_deprecated_validity(body) else { return Ok(()) };
        request.headers_mut().insert("content-length", trimmed.len().to_string());
        *request.body_mut() = trimmed.into();
        Ok(())
    }
}

/// The JSON body without `AdminCreateUserConfig.UnusedAccountValidityDays`;
/// `None` when it has none (the body is then sent as it is).
fn without_deprecated_validity(body: &[u8]) -> Option<Vec<u8>> {
    const MEMBER: &str = "UnusedAccountValidityDays";
    if !body.windows(MEMBER.len()).any(|w| w == MEMBER.as_bytes()) {
        return None;
    }
    let mut document: serde_json::Value = serde_json::from_slice(body).ok()?;
    document.get_mut("AdminCreateUserConfig")?.as_object_mut()?.remove(MEMBER)?;
    serde_json::to_vec(&document).ok()
}

/// The AWS JSON protocol names the error in `X-Amzn-ErrorType` or the body's `__type`.
fn is_quota(error_type: Option<&str>, body: Option<&[u8]>) -> bool {
    const QUOTA: &str = "LimitExceededException";
    let named = |t: &str| t.split([':', '#']).any(|part| part == QUOTA);
    error_type.is_some_and(named)
        || body
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(named))
            .unwrap_or(false)
}

/// The README's IAM table is [`OPERATIONS`], and
/// [`OPERATIONS`] names exactly the Cognito operations this module calls, so a
/// new call cannot ship without its permission.
#[cfg(test)]
mod iam_table {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::OPERATIONS;

    /// `CreateUserPool` for every `client.create_user_pool()` in `dir`.
    fn called(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                called(&path, found);
                continue;
            }
            let text: String = std::fs::read_to_string(&path).unwrap().split_whitespace().collect();
            for call in text.split("client.").skip(1) {
                let name: String = call.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if call[name.len()..].starts_with("()") {
                    found.insert(name.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect());
                }
            }
        }
    }

    fn rendered() -> String {
        let mut table = String::from("| command | actions |\n|---|---|\n");
        for (command, operations) in OPERATIONS {
            let listed: Vec<String> = operations.iter().map(|o| format!("`{o}`")).collect();
            table.push_str(&format!("| `{command}` | {} |\n", listed.join(", ")));
        }
        table
    }

    #[test]
    fn readme_iam_table_is_the_code_list_of_operations() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let start = readme.find("| command | actions |").expect("the README has no IAM table");
        let table = &readme[start..readme[start..].find("\n\n").map_or(readme.len(), |end| start + end + 1)];
        assert_eq!(table, rendered(), "README's IAM table differs from cognito::OPERATIONS; paste:\n{}", rendered());
    }

    #[test]
    fn the_list_of_operations_names_every_call_the_code_makes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut code = BTreeSet::new();
        called(&root.join("src/provision/cognito"), &mut code);
        assert!(code.contains("DeleteUserPool") && code.len() > 15, "the scan found too little: {code:?}");
        let listed: BTreeSet<String> =
            OPERATIONS.iter().flat_map(|(_, ops)| ops.iter().map(|o| (*o).to_owned())).collect();
        let missing: Vec<_> = code.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&code).collect();
        assert!(missing.is_empty(), "cognito::OPERATIONS lacks {missing:?}, which the code calls");
        assert!(stale.is_empty(), "cognito::OPERATIONS lists {stale:?}, which the code never calls");
    }
}
