//! SDK errors → [`Error`] with the operation, the AWS error code and a hint.

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

use crate::provision::error::Error;

/// The AWS error code of a failed call, if the service answered.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

pub fn message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().message(),
        _ => None,
    }
}

/// Maps a failed call. `endpoint` names where we tried to go, for connection errors.
pub fn map<E, R>(operation: &'static str, endpoint: Option<&str>, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let target = endpoint.unwrap_or("the Cognito endpoint of the region");
    match &err {
        SdkError::DispatchFailure(failure) => {
            let why = failure.as_connector_error().map(|c| c.to_string()).unwrap_or_else(|| "dispatch failed".into());
            Error::Connection(format!(
                "cannot reach {target} for {operation}: {why}; check --endpoint-url / AWS_ENDPOINT_URL, your network and proxy settings"
            ))
        }
        SdkError::TimeoutError(_) => {
            Error::Connection(format!("{operation} timed out talking to {target}; check your network, or try again"))
        }
        SdkError::ServiceError(_) => {
            let code = code(&err).unwrap_or("Unknown").to_owned();
            let message = message(&err).unwrap_or("").to_owned();
            let hint = hint(operation, &code);
            Error::Aws { operation, code, message, hint }
        }
        _ => Error::Aws {
            operation,
            code: "Unknown".into(),
            message: aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err).to_string(),
            hint: None,
        },
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
        _ => return None,
    };
    Some(hint)
}
