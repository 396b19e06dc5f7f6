//! Talking to Cognito: building the SDK client, reading what exists
//! ([`discover`]), changing it ([`ops`], [`pool`], [`secrets`], [`branding`]), its groups
//! and users ([`groups`], [`users`]), and turning SDK errors
//! into typed errors that say what to do ([`errors`]).
//!
//! Everything here is a thin, typed layer over `aws-sdk-cognitoidentityprovider`;
//! deciding *what* to call lives in `plan` and `apply`. Every SDK call of the
//! CLI is made here: the client itself is private to this module.

pub(crate) mod branding;
pub(crate) mod discover;
pub(crate) mod errors;
pub(crate) mod groups;
pub(crate) mod ops;
pub(crate) mod pool;
pub(crate) mod secrets;
pub(crate) mod users;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, ProvideCredentials};

use errors::CognitoError;

use super::error::{Error, Result};
use super::settings::AwsTarget;
use super::validate::Region;

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
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &target.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;

        let credentials = config.credentials_provider().ok_or(CognitoError::NoCredentials)?;
        credentials.provide_credentials().await.map_err(|e| {
            tracing::debug!(error = %e, "credential chain failed");
            CognitoError::NoCredentials
        })?;

        let endpoint = target.endpoint_url.clone().or_else(|| config.endpoint_url().map(str::to_owned));
        Ok(Self { client: aws_sdk_cognitoidentityprovider::Client::new(&config), endpoint })
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
        Self { client: aws_sdk_cognitoidentityprovider::Client::from_conf(config), endpoint: None }
    }
}
