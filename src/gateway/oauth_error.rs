//! How OAuth endpoints fail: RFC 6749 section 5.2 JSON for the API endpoints,
//! an HTML page for the browser endpoints. Both log the detail (never a token,
//! code or secret: the variants carry only our own descriptions) and show a
//! generic message for internal failures.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::store::StoreError;
use crate::gateway::tokens::TokenError;

/// `Retry-After` (seconds) when the store cannot be reached: it backs off
/// for about a second, and a restarting Redis is usually back within this.
const RETRY_AFTER_SECONDS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    #[error("authorization_pending: {0}")]
    AuthorizationPending(String),
    #[error("slow_down: {0}")]
    SlowDown(String),
    #[error("expired_token: {0}")]
    ExpiredToken(String),
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// A peer the answer depends on (the identity provider) cannot be asked
    /// right now: 503 with `Retry-After`, nothing revoked.
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("token: {0}")]
    Token(#[from] TokenError),
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::AuthorizationPending(_) => "authorization_pending",
            Self::SlowDown(_) => "slow_down",
            Self::ExpiredToken(_) => "expired_token",
            Self::AccessDenied(_) => "access_denied",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::Store(StoreError::Unavailable(_)) => "temporarily_unavailable",
            Self::Store(_) | Self::Token(_) => "server_error",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, description) = match &self {
            Self::Store(StoreError::Unavailable(_)) => {
                tracing::warn!(error = %self, "oauth endpoint unavailable: the store does not answer");
                (StatusCode::SERVICE_UNAVAILABLE, "the authorization server is briefly unavailable; retry".to_owned())
            }
            Self::TemporarilyUnavailable(detail) => {
                tracing::warn!(error = %self, "oauth request deferred");
                (StatusCode::SERVICE_UNAVAILABLE, detail.clone())
            }
            Self::Store(_) | Self::Token(_) => {
                tracing::error!(error = %self, "oauth endpoint failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
            Self::InvalidClient(detail) => {
                tracing::info!(error = "invalid_client", detail = %detail, "oauth request refused");
                (StatusCode::UNAUTHORIZED, detail.clone())
            }
            Self::InvalidRequest(detail)
            | Self::InvalidGrant(detail)
            | Self::UnauthorizedClient(detail)
            | Self::UnsupportedGrantType(detail)
            | Self::InvalidTarget(detail)
            | Self::InvalidScope(detail)
            | Self::InvalidRedirectUri(detail)
            | Self::InvalidClientMetadata(detail)
            | Self::ExpiredToken(detail)
            | Self::AccessDenied(detail) => {
                tracing::info!(error = self.code(), detail = %detail, "oauth request refused");
                (StatusCode::BAD_REQUEST, detail.clone())
            }
            // RFC 8628 3.5: the normal answers while a device polls; not worth a log line each.
            Self::AuthorizationPending(detail) | Self::SlowDown(detail) => (StatusCode::BAD_REQUEST, detail.clone()),
        };
        let mut response =
            (status, axum::Json(json!({"error": self.code(), "error_description": description}))).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// A browser-facing failure: an HTML page with a short explanation.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
    detail: String,
}

impl PageError {
    /// `message` is shown to the user; `detail` is only logged.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { status, message: message.into(), detail: detail.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        let message = message.into();
        Self { status: StatusCode::BAD_REQUEST, detail: message.clone(), message }
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The gateway failed to complete the sign-in. Try again.",
            detail.to_string(),
        )
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway is briefly unavailable. Try again in a moment.",
                err.to_string(),
            ),
            _ => Self::internal(err),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), detail = %self.detail, "sign-in failed");
        } else {
            tracing::warn!(status = self.status.as_u16(), detail = %self.detail, "sign-in refused");
        }
        let body = super::pages::error(&self.message, self.status.is_server_error());
        let mut response = (self.status, axum::response::Html(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'"),
        );
        response
    }
}

/// Why a client could not be looked up: the store failed, or its client-id
/// metadata document was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientLookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Document(#[from] super::clients::cimd::CimdError),
}

impl From<ClientLookupError> for OAuthError {
    fn from(err: ClientLookupError) -> Self {
        match err {
            ClientLookupError::Store(err) => Self::Store(err),
            ClientLookupError::Document(err) => Self::InvalidClient(err.to_string()),
        }
    }
}

impl From<ClientLookupError> for PageError {
    fn from(err: ClientLookupError) -> Self {
        match err {
            ClientLookupError::Store(err) => Self::internal(err),
            ClientLookupError::Document(err) => Self::bad_request(format!("The application cannot sign in: {err}.")),
        }
    }
}
