//! Client secret rotation: Cognito keeps up to two secrets per app client
//! (`AddUserPoolClientSecret`), lists them with their creation dates, and
//! deletes one by id. A 2025 API: emulators and older partitions may lack it,
//! which shows as an unknown operation or a bare HTTP 404/500/501, and is
//! reported as [`CognitoError::Unsupported`] so nothing half-done is implied.

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

use super::Cognito;
use super::errors::{self, CognitoError, Result};
use crate::secret::Secret;

/// A secret that was just added; its value goes to the env file only.
pub(crate) struct NewSecret {
    pub(crate) id: String,
    pub(crate) value: Secret,
}

impl Cognito {
    pub(crate) async fn add_client_secret(&self, pool_id: &str, client_id: &str) -> Result<NewSecret> {
        self.pace.wait("AddUserPoolClientSecret").await;
        let response = self
            .client
            .add_user_pool_client_secret()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .send()
            .await
            .map_err(|e| self.unavailable_or("AddUserPoolClientSecret", e))?;
        let descriptor = response.client_secret_descriptor();
        let value = descriptor
            .and_then(|d| d.client_secret_value())
            .map(Secret::new)
            .ok_or(CognitoError::EmptyResponse { operation: "AddUserPoolClientSecret", missing: "the secret value" })?;
        let id = descriptor.and_then(|d| d.client_secret_id()).unwrap_or_default().to_owned();
        Ok(NewSecret { id, value })
    }

    /// The ids of the client's secrets, oldest first.
    pub(crate) async fn client_secret_ids(&self, pool_id: &str, client_id: &str) -> Result<Vec<String>> {
        self.pace.wait("ListUserPoolClientSecrets").await;
        let listed = self
            .client
            .list_user_pool_client_secrets()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .send()
            .await
            .map_err(|e| self.unavailable_or("ListUserPoolClientSecrets", e))?;
        let mut secrets: Vec<_> = listed.client_secrets().to_vec();
        secrets.sort_by_key(|s| s.client_secret_create_date().map(|d| d.as_nanos()));
        Ok(secrets.iter().filter_map(|s| s.client_secret_id().map(str::to_owned)).collect())
    }

    pub(crate) async fn delete_client_secret(&self, pool_id: &str, client_id: &str, secret_id: &str) -> Result<()> {
        self.pace.wait("DeleteUserPoolClientSecret").await;
        self.client
            .delete_user_pool_client_secret()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .client_secret_id(secret_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.unavailable_or("DeleteUserPoolClientSecret", e))
    }

    fn unavailable_or<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> CognitoError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if errors::unknown_operation(&err) {
            return CognitoError::Unsupported {
                operation,
                target: self.target().unwrap_or("this endpoint").to_owned(),
                feature: "client secret rotation API",
                workaround: "On AWS it is available in all commercial regions; with an emulator, rotate by \
                             deleting the app client and running `cognigate up` (the client id changes)",
            };
        }
        errors::map(operation, self.target(), err)
    }
}
