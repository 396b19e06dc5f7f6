//! Managed login (v2) branding: the style a client's login pages are drawn
//! with. A domain on managed login v2 serves "login pages unavailable" for an
//! app client without one, so `up --managed-login v2` makes sure the client
//! has one, created with Cognito's provided values (its default look).
//!
//! A 2024 API that emulators lack (moto answers a bare HTTP 500): that is
//! reported as [`Branding::Unsupported`], a note for the summary rather than
//! a failure, because the rest of the stack is usable and the domain's version
//! is set either way.

use super::Cognito;
use super::errors::{self, Result};

/// What `up` found or did about a client's branding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branding {
    /// The client had one already (cognigate's, or styled by hand): left alone.
    Present,
    /// Created with Cognito's provided values.
    Created,
    /// The endpoint does not implement the branding API.
    Unsupported,
}

impl Cognito {
    /// Describes the client's branding and creates the default one when it
    /// has none.
    pub(crate) async fn ensure_branding(&self, pool_id: &str, client_id: &str) -> Result<Branding> {
        self.pace.wait("DescribeManagedLoginBrandingByClient").await;
        let described = self
            .client
            .describe_managed_login_branding_by_client()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .send()
            .await;
        match described {
            Ok(found) if found.managed_login_branding().is_some() => return Ok(Branding::Present),
            Ok(_) => {}
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => {}
            Err(e) if unsupported(errors::code(&e), errors::status(&e)) => return Ok(Branding::Unsupported),
            Err(e) => return Err(errors::map("DescribeManagedLoginBrandingByClient", self.target(), e)),
        }
        self.pace.wait("CreateManagedLoginBranding").await;
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
            // A concurrent run made it between our describe and create.
            Err(e) if errors::code(&e) == Some("ManagedLoginBrandingExistsException") => Ok(Branding::Present),
            Err(e) if unsupported(errors::code(&e), errors::status(&e)) => Ok(Branding::Unsupported),
            Err(e) => Err(errors::map("CreateManagedLoginBranding", self.target(), e)),
        }
    }
}

/// An unknown operation: named so by the endpoint, or a bare 404/500/501
/// without any Cognito error code (moto's answer to an action it lacks).
fn unsupported(code: Option<&str>, status: Option<u16>) -> bool {
    matches!(code, Some("UnknownOperationException" | "InvalidAction" | "NotImplemented"))
        || (code.is_none() && matches!(status, Some(404 | 500 | 501)))
}

/// Request shapes on the SDK's replay client: moto has no branding API.
#[cfg(test)]
mod request_shape {

    use aws_smithy_http_client::test_util::StaticReplayClient;

    use serde_json::json;

    use super::*;
    use crate::provision::cognito::replay::{answer_with as answer, cognito, sent};
    use crate::provision::spec::{DomainSpec, ManagedLogin};

    const NOT_FOUND: &str = r#"{"__type":"ResourceNotFoundException","message":"no branding"}"#;

    #[tokio::test]
    async fn a_client_without_branding_gets_cognitos_provided_values() {
        let replay = StaticReplayClient::new(vec![
            answer(400, NOT_FOUND),
            answer(200, r#"{"ManagedLoginBranding":{"ManagedLoginBrandingId":"b1","UseCognitoProvidedValues":true}}"#),
        ]);
        assert_eq!(cognito(&replay).ensure_branding("us-east-1_abc", "c1").await.unwrap(), Branding::Created);
        let requests = sent(&replay);
        assert_eq!(
            requests[0],
            ("DescribeManagedLoginBrandingByClient".into(), json!({ "UserPoolId": "us-east-1_abc", "ClientId": "c1" }))
        );
        assert_eq!(
            requests[1],
            (
                "CreateManagedLoginBranding".into(),
                json!({ "UserPoolId": "us-east-1_abc", "ClientId": "c1", "UseCognitoProvidedValues": true })
            )
        );
    }

    #[tokio::test]
    async fn an_existing_branding_is_left_alone() {
        let replay = StaticReplayClient::new(vec![answer(
            200,
            r#"{"ManagedLoginBranding":{"ManagedLoginBrandingId":"b1","UseCognitoProvidedValues":false}}"#,
        )]);
        assert_eq!(cognito(&replay).ensure_branding("us-east-1_abc", "c1").await.unwrap(), Branding::Present);
        assert_eq!(sent(&replay).len(), 1, "no create for a styled client");
    }

    /// moto answers an action it lacks with a bare HTML 500.
    #[tokio::test]
    async fn an_endpoint_without_the_api_is_a_note_not_a_failure() {
        let replay =
            StaticReplayClient::new(vec![answer(500, "<!doctype html><title>500 Internal Server Error</title>")]);
        assert_eq!(cognito(&replay).ensure_branding("us-east-1_abc", "c1").await.unwrap(), Branding::Unsupported);
        let replay = StaticReplayClient::new(vec![answer(400, NOT_FOUND), answer(500, "<html>500</html>")]);
        assert_eq!(cognito(&replay).ensure_branding("us-east-1_abc", "c1").await.unwrap(), Branding::Unsupported);
        // A real refusal still fails.
        let replay =
            StaticReplayClient::new(vec![answer(400, r#"{"__type":"NotAuthorizedException","message":"denied"}"#)]);
        assert!(cognito(&replay).ensure_branding("us-east-1_abc", "c1").await.is_err());
    }

    #[tokio::test]
    async fn the_domain_is_created_and_switched_with_an_explicit_version() {
        let replay = StaticReplayClient::new(vec![answer(200, "{}"), answer(200, "{}")]);
        let cognito = cognito(&replay);
        let prefix = DomainSpec::Prefix("demo-prefix".into());
        cognito.create_domain("us-east-1_abc", &prefix, ManagedLogin::V1).await.unwrap();
        let custom = DomainSpec::Custom {
            host: "auth.example.com".into(),
            certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc".into(),
        };
        cognito.update_domain_version("us-east-1_abc", &custom, ManagedLogin::V2).await.unwrap();
        let requests = sent(&replay);
        assert_eq!(requests[0].0, "CreateUserPoolDomain");
        assert_eq!(requests[0].1["ManagedLoginVersion"], 1);
        assert_eq!(requests[1].0, "UpdateUserPoolDomain");
        assert_eq!(requests[1].1["ManagedLoginVersion"], 2);
        assert_eq!(
            requests[1].1["CustomDomainConfig"]["CertificateArn"],
            "arn:aws:acm:us-east-1:123456789012:certificate/abc"
        );
    }
}
