//! What can go wrong talking to Cognito, as typed values: the SDK's errors
//! mapped to the operation, the AWS error code and a hint, plus the outcomes of
//! Cognito calls that callers act on (a domain prefix that is taken, a domain
//! that failed or timed out). Callers match on variants, never on message text.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

pub(crate) type Result<T, E = CognitoError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CognitoError {
    /// Cognito answered with an error code; retrying will not fix it.
    #[error("{operation} failed: {code}: {message}{hint}", hint = hint_line(hint.as_deref()))]
    Service { operation: &'static str, code: String, message: String, hint: Option<String> },

    /// Something answered, but not the way Cognito does (an HTML error page for
    /// an unknown region, a proxy, a wrong endpoint), so the SDK could not read it.
    #[error("{operation} got an answer that is not Cognito's (HTTP {status}) from {target}; {hint}")]
    Unreadable { operation: &'static str, status: u16, target: String, hint: String },

    /// AWS could not be reached.
    #[error(
        "cannot reach {target} for {operation}: {why}; check --endpoint-url / AWS_ENDPOINT_URL, your network and proxy settings"
    )]
    Unreachable { operation: &'static str, target: String, why: String },

    /// The SDK's own time limit for one call ran out.
    #[error("{operation} timed out talking to {target}; check your network, or try again")]
    CallTimedOut { operation: &'static str, target: String },

    /// A call succeeded but its answer lacks what it always carries.
    #[error("{operation} answered without {missing}; run again, and report it if it persists")]
    EmptyResponse { operation: &'static str, missing: &'static str },

    /// The endpoint does not implement an operation (emulators, older partitions).
    #[error(
        "{operation} is not available at {target}: this endpoint does not implement Cognito's {feature}. Nothing was changed. {workaround}"
    )]
    Unsupported { operation: &'static str, target: String, feature: &'static str, workaround: &'static str },

    #[error(
        "the domain prefix {prefix:?} is already taken (it belongs to user pool {owner}); prefixes are unique per \
         region across all AWS accounts. Choose another one, for example --domain-prefix {suggestion}"
    )]
    DomainTaken { prefix: String, owner: String, suggestion: String },

    #[error(
        "domain {domain} failed to provision; for a custom domain check that the ACM certificate is \
         ISSUED in us-east-1 and covers the host, then run `cognigate up` again"
    )]
    DomainFailed { domain: String },

    #[error("domain {domain} disappeared while waiting for it; run `cognigate up` again")]
    DomainVanished { domain: String },

    /// Waited as long as the operation can take and it has not finished.
    #[error("{what} is still {status} after {}; {next}", humantime::format_duration(*.waited))]
    WaitTimedOut { what: String, status: String, waited: Duration, next: &'static str },

    #[error(
        "no AWS credentials found. Provide them the way the AWS CLI reads them: \
         --profile NAME (or AWS_PROFILE) for a profile in ~/.aws/config, \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, \
         `aws sso login` for an SSO profile, or an instance/container role"
    )]
    NoCredentials,

    #[error(
        "user {username} already exists in this pool; change their groups with `cognigate user groups {username} \
         --add GROUP`, or remove them first with `cognigate user remove {username}`"
    )]
    UserExists { username: String },

    #[error("no user {username} in this pool; `cognigate user list` shows who is there")]
    UserNotFound { username: String },

    /// Groups a command names that the pool does not have.
    #[error(
        "{} not exist in this pool; create {} with `cognigate up {}` (or list {} in `groups` in cognigate.toml)",
        group_list(groups), if groups.len() == 1 { "it" } else { "them" }, group_flags(groups),
        if groups.len() == 1 { "it" } else { "them" }
    )]
    GroupNotFound { groups: Vec<String> },

    /// The pool's password policy refused a password; nothing was created.
    #[error(
        "the password does not meet the pool's password policy: {policy}. No user was created; run the command \
         again with a password that does"
    )]
    WeakPassword { policy: String },

    /// A request the SDK refused to build: cognigate built it wrong.
    #[error("cannot build the {operation} request (a cognigate bug): {problem}")]
    Internal { operation: &'static str, problem: String },
}

fn group_list(groups: &[String]) -> String {
    match groups {
        [one] => format!("group {one} does"),
        many => format!("groups {} do", many.join(", ")),
    }
}

fn group_flags(groups: &[String]) -> String {
    groups.iter().map(|g| format!("--group {g}")).collect::<Vec<_>>().join(" ")
}

fn hint_line(hint: Option<&str>) -> String {
    hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
}

/// The AWS error code of a failed call, if the service answered with one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

pub(crate) fn message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().message(),
        _ => None,
    }
}

/// Whether the endpoint does not implement the operation (emulators, older
/// partitions): an unknown-operation code, or a bare HTTP 404/500/501.
pub(crate) fn unknown_operation<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let code = code(err);
    matches!(code, Some("UnknownOperationException" | "InvalidAction" | "NotImplemented"))
        || (code.is_none() && matches!(status(err), Some(404 | 500 | 501)))
}

/// The HTTP status of the answer, if there was one.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Maps a failed call. `endpoint` names where we tried to go (`None`: AWS itself).
pub(crate) fn map<E>(operation: &'static str, endpoint: Option<&str>, err: SdkError<E, HttpResponse>) -> CognitoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = endpoint.unwrap_or("the Cognito endpoint of the region").to_owned();
    match &err {
        SdkError::DispatchFailure(failure) => {
            let why = failure.as_connector_error().map(|c| c.to_string()).unwrap_or_else(|| "dispatch failed".into());
            CognitoError::Unreachable { operation, target, why }
        }
        SdkError::TimeoutError(_) => CognitoError::CallTimedOut { operation, target },
        SdkError::ServiceError(_) if code(&err).is_some() => {
            let code = code(&err).unwrap_or_default().to_owned();
            let message = message(&err).unwrap_or_default().to_owned();
            let hint = hint(operation, &code);
            CognitoError::Service { operation, code, message, hint }
        }
        // No error code: the body was not Cognito's JSON. Say so in one line;
        // the SDK's own rendering of such an answer is a debug dump.
        _ => match status(&err) {
            Some(status) => {
                CognitoError::Unreadable { operation, status, target, hint: unreadable_hint(status, endpoint) }
            }
            None => CognitoError::Internal {
                operation,
                problem: aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err).to_string(),
            },
        },
    }
}

fn unreadable_hint(status: u16, endpoint: Option<&str>) -> String {
    let place = match endpoint {
        Some(_) => {
            "check that --endpoint-url / AWS_ENDPOINT_URL points at a Cognito API (an emulator or a proxy to it)"
        }
        None => "check the region: it must be an AWS region that offers Cognito (for example us-east-1)",
    };
    match status {
        500..=599 => format!("{place}; if it does, the service had a fault: run again later"),
        _ => place.to_owned(),
    }
}

fn hint(operation: &str, code: &str) -> Option<String> {
    let hint = match code {
        "AccessDeniedException" | "NotAuthorizedException" => format!(
            "the credentials in use lack permission for cognito-idp:{operation}; the README lists the IAM actions cognigate needs"
        ),
        "UnrecognizedClientException" | "InvalidSignatureException" | "InvalidClientTokenId" => {
            "the AWS credentials are not valid for this account or region; check AWS_PROFILE / AWS_ACCESS_KEY_ID".into()
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            "the AWS session has expired; refresh it (for SSO: aws sso login) and run again".into()
        }
        "TooManyRequestsException" | "ThrottlingException" => {
            "Cognito kept throttling after retries; wait a minute and run again (nothing is lost: cognigate converges)"
                .into()
        }
        "LimitExceededException" => {
            "a Cognito quota was reached for this account; see Service Quotas for Amazon Cognito".into()
        }
        "ResourceNotFoundException" => "it was deleted meanwhile or is in another region; run again to re-plan".into(),
        "FeatureUnavailableInTierException" => "the pool's feature plan lacks this feature (managed login needs \
             Essentials or Plus): run `cognigate up --feature-plan essentials`, or keep the classic hosted UI with \
             --managed-login v1"
            .into(),
        "PasswordHistoryPolicyViolationException" => {
            "the pool's password history refuses a password this user had before; choose a new one".into()
        }
        _ => return None,
    };
    Some(hint)
}
