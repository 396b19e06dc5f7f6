//! Managed login branding: a domain on managed login (`ManagedLoginVersion`
//! 2) shows its sign-in pages to an app client only once that client has a
//! branding style; without one the pages answer an error. cognigate creates
//! the style Cognito provides (`UseCognitoProvidedValues`) when none exists.
//! A 2024 API: an endpoint that lacks it (an emulator) gets a clear warning.

use super::Cognito;
use super::errors::{self, Result};

/// What [`Cognito::ensure_branding`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branding {
    /// The client already had a style (perhaps a custom one): left as it is.
    Existing,
    Created,
    /// The endpoint does not implement the branding API.
    Unsupported,
}

impl Cognito {
    /// Gives the app client Cognito's default managed login style unless it has one.
    pub(crate) async fn ensure_branding(&self, pool_id: &str, client_id: &str) -> Result<Branding> {
        let described = self
            .client
            .describe_managed_login_branding_by_client()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .send()
            .await;
        match described {
            Ok(found) if found.managed_login_branding().is_some() => return Ok(Branding::Existing),
            Ok(_) => {}
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => {}
            Err(e) if errors::unknown_operation(&e) => return Ok(Branding::Unsupported),
            Err(e) => return Err(errors::map("DescribeManagedLoginBrandingByClient", self.target(), e)),
        }
        let created = self
            .client
            .create_managed_login_branding()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .use_cognito_provided_values(true)
            .send()
            .await;
        match created {
            Ok(_) => Ok(Branding::Created),
            // A concurrent run created it first.
            Err(e) if errors::code(&e) == Some("ManagedLoginBrandingExistsException") => Ok(Branding::Existing),
            Err(e) if errors::unknown_operation(&e) => Ok(Branding::Unsupported),
            Err(e) => Err(errors::map("CreateManagedLoginBranding", self.target(), e)),
        }
    }
}
