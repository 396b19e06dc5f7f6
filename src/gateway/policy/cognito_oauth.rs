//! `mcp-cognito-oauth-inbound`: an Amazon Cognito user pool as the identity
//! provider. Its options are the contract's [`CognitoOptions`] (what `cognigate
//! up` writes); the four URLs are derived from region, pool and domain by the
//! contract's one derivation, so they match what `up` printed.

use serde_json::Value;

use super::oauth::{BrowserLogin, OAuthPolicy, Oidc, gateway_settings, problem_of, scope_or_default};
use super::{Built, PolicyKind};
use crate::contract::{
    self, COGNITO_POLICY_EXPORT, COGNITO_POLICY_TYPE, CognitoOptions, HostedUiDomain, Region, StackUrls, UserPoolId,
};
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::secret::Secret;

pub(super) const KIND: PolicyKind =
    PolicyKind { policy_type: COGNITO_POLICY_TYPE, export: COGNITO_POLICY_EXPORT, export_aliases: &[], build };

fn build(name: &str, options: Value, env: &Env) -> Result<Built, ConfigError> {
    let options: CognitoOptions = typed_options(options, &format!("policy `{name}`"))?;
    Ok(Built::OAuth(std::sync::Arc::new(OAuthPolicy::from_cognito(name, options, env)?)))
}

impl OAuthPolicy {
    pub(crate) fn from_cognito(name: &str, options: CognitoOptions, env: &Env) -> Result<Self, ConfigError> {
        let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
            owner: format!("policy `{name}`"),
            option: option.to_owned(),
            problem,
            fix: fix.to_owned(),
        };
        let region = Region::parse(options.aws_region.trim()).map_err(|err| {
            invalid("awsRegion", problem_of(err), "use the region of the user pool, e.g. us-east-1 or eu-west-3")
        })?;
        let pool = UserPoolId::parse_in(options.user_pool_id.trim(), &region).map_err(|err| {
            invalid("userPoolId", problem_of(err), "use the pool id `cognigate up` wrote to the env file (COGNITO_USER_POOL_ID), e.g. us-east-1_AbC123xyz, in the pool's region")
        })?;
        let domain = HostedUiDomain::parse(options.user_pool_domain.trim()).map_err(|err| {
            invalid("userPoolDomain", problem_of(err), "give the host only, e.g. my-prefix.auth.us-east-1.amazoncognito.com (no https://, no path, no trailing slash)")
        })?;
        if options.client_id.trim().is_empty() {
            return Err(invalid("clientId", "is empty".into(), "set the app client id (COGNITO_CLIENT_ID)"));
        }
        if options.client_secret.is_empty() {
            return Err(invalid(
                "clientSecret",
                "is empty".into(),
                "set the app client secret (COGNITO_CLIENT_SECRET); the app client must be confidential",
            ));
        }
        let endpoint = contract::aws_endpoint_override(|name| env.get(name).map(str::to_owned));
        let urls = StackUrls::derive(&region, &pool, &domain, endpoint.as_deref())
            .map_err(|err| invalid("userPoolId", problem_of(err), "check AWS_ENDPOINT_URL and the pool id"))?;
        let settings = gateway_settings(name, options.gateway)?;
        Ok(Self {
            name: name.to_owned(),
            oidc: Oidc { issuer: urls.issuer, jwks_url: urls.jwks },
            browser_login: BrowserLogin {
                url: urls.authorize,
                token_url: urls.token,
                client_id: options.client_id.trim().to_owned(),
                client_secret: Secret::new(options.client_secret),
                scope: scope_or_default(options.scope),
            },
            require_token_use_id: true,
            access_token_ttl: settings.access,
            refresh_token_ttl: settings.refresh,
            allowed_groups: settings.allowed_groups,
            required_scopes: settings.required_scopes,
            resource_server: settings.resource_server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::OAuthPolicy;
    use crate::contract::CognitoOptions;
    use crate::gateway::config::ConfigError;
    use crate::gateway::config::env::Env;

    fn options(domain: &str) -> CognitoOptions {
        serde_json::from_value(serde_json::json!({
            "awsRegion": "eu-west-3",
            "userPoolId": "eu-west-3_AbC123",
            "userPoolDomain": domain,
            "clientId": "client123",
            "clientSecret": "secret456",
        }))
        .unwrap()
    }

    #[test]
    fn derives_the_generic_policy_by_the_table() {
        let policy =
            OAuthPolicy::from_cognito("p", options("team.auth.eu-west-3.amazoncognito.com"), &Env::default()).unwrap();
        assert_eq!(policy.oidc.issuer, "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_AbC123");
        assert_eq!(
            policy.oidc.jwks_url.as_str(),
            "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_AbC123/.well-known/jwks.json"
        );
        assert_eq!(policy.browser_login.url.as_str(), "https://team.auth.eu-west-3.amazoncognito.com/oauth2/authorize");
        assert_eq!(
            policy.browser_login.token_url.as_str(),
            "https://team.auth.eu-west-3.amazoncognito.com/oauth2/token"
        );
        assert_eq!(policy.browser_login.client_id, "client123");
        assert_eq!(policy.browser_login.client_secret.expose(), "secret456");
        assert_eq!(policy.browser_login.scope, "openid profile email");
        assert_eq!(policy.access_token_ttl.as_secs(), 900);
        assert_eq!(policy.refresh_token_ttl.as_secs(), 2_592_000);
        assert!(policy.require_token_use_id);
    }

    #[test]
    fn aws_endpoint_moves_only_the_jwks() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")]);
        let policy = OAuthPolicy::from_cognito("p", options("auth.example.com"), &env).unwrap();
        assert_eq!(policy.oidc.issuer, "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_AbC123");
        assert_eq!(policy.oidc.jwks_url.as_str(), "http://127.0.0.1:5000/eu-west-3_AbC123/.well-known/jwks.json");
        assert_eq!(policy.browser_login.url.as_str(), "https://auth.example.com/oauth2/authorize");
    }

    #[test]
    fn domain_errors_name_policy_option_and_fix() {
        for (domain, problem) in [
            ("https://team.auth.us-east-1.amazoncognito.com", "has a scheme"),
            ("team.auth.us-east-1.amazoncognito.com/", "trailing slash"),
            ("team.auth.us-east-1.amazoncognito.com/login", "has a path"),
        ] {
            let err = OAuthPolicy::from_cognito("cognito-managed-oauth", options(domain), &Env::default()).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, ConfigError::InvalidOption { .. }));
            assert!(text.contains("policy `cognito-managed-oauth`"), "{text}");
            assert!(text.contains("userPoolDomain"), "{text}");
            assert!(text.contains(problem), "{text}");
            assert!(text.contains("Fix: give the host only"), "{text}");
        }
    }

    #[test]
    fn region_and_pool_rules() {
        let mut opts = options("a.example.com");
        opts.aws_region = "us-east".into();
        let text = OAuthPolicy::from_cognito("p", opts, &Env::default()).unwrap_err().to_string();
        assert!(text.contains("awsRegion") && text.contains("Fix:"), "{text}");

        for (pool, needle) in [
            ("us-east-1_AbC", "in us-east-1"),
            ("eu-west-3-AbC", "looks like"),
            ("eu-west-3_ab-c", "letters and digits"),
        ] {
            let mut opts = options("a.example.com");
            opts.user_pool_id = pool.into();
            let text = OAuthPolicy::from_cognito("p", opts, &Env::default()).unwrap_err().to_string();
            assert!(text.contains("userPoolId") && text.contains(needle) && text.contains("Fix:"), "{text}");
        }
    }
}
