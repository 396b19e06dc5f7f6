//! Inbound OAuth policies: the Cognito policy, the generic OIDC policy it
//! derives (issuer, JWKS, authorize and token URLs, by the contract's
//! derivation), and their validation.

use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::env::Env;
use super::files::GenericOptions;
use crate::contract::{
    self, CognitoOptions, GatewayOptions, HostedUiDomain, InvalidValue, Region, Seconds, StackUrls, UserPoolId,
};
use crate::secret::Secret;

pub(crate) const GENERIC_POLICY_TYPE: &str = "mcp-oauth-inbound";
pub(crate) const GENERIC_EXPORT: &str = "McpOAuthInboundPolicy";

const DEFAULT_SCOPE: &str = "openid profile email";
const DEFAULT_ACCESS_TTL: u64 = 900;
const DEFAULT_REFRESH_TTL: u64 = 2_592_000;

/// A validated inbound OAuth policy: where users log in and how their ID token
/// is checked, plus the lifetimes of the gateway's own tokens.
#[derive(Debug)]
pub struct OAuthPolicy {
    pub name: String,
    pub oidc: Oidc,
    pub browser_login: BrowserLogin,
    /// Cognito ID tokens carry `token_use: id`; an access token presented in
    /// their place must be refused. Generic OIDC providers have no such claim.
    pub require_token_use_id: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
}

#[derive(Debug)]
pub struct Oidc {
    /// Compared byte for byte with the ID token's `iss`.
    pub issuer: String,
    /// Where the signing keys are fetched (may differ from the issuer's host
    /// under `AWS_ENDPOINT_URL`).
    pub jwks_url: Url,
}

#[derive(Debug)]
pub struct BrowserLogin {
    pub url: Url,
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: String,
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
        let (access, refresh) = ttls(name, options.gateway)?;
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
            access_token_ttl: access,
            refresh_token_ttl: refresh,
        })
    }

    pub(crate) fn from_generic(name: &str, options: GenericOptions) -> Result<Self, ConfigError> {
        let url_option = |option: &str, value: &str| {
            let url = parse_url(value).map_err(|problem| ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: option.to_owned(),
                problem,
                fix: "give an absolute https URL (http only for localhost / 127.0.0.1)".to_owned(),
            })?;
            if url.scheme() != "https" && !(url.scheme() == "http" && contract::is_loopback(&url)) {
                return Err(ConfigError::InvalidOption {
                    owner: format!("policy `{name}`"),
                    option: option.to_owned(),
                    problem: format!("`{value}` is not https"),
                    fix: "use https (http is accepted only for localhost / 127.0.0.1)".to_owned(),
                });
            }
            Ok(url)
        };
        url_option("oidc.issuer", &options.oidc.issuer)?;
        let (access, refresh) = ttls(name, options.gateway)?;
        let login = options.browser_login;
        if login.client_id.trim().is_empty() {
            return Err(ConfigError::InvalidOption {
                owner: format!("policy `{name}`"),
                option: "browserLogin.clientId".into(),
                problem: "is empty".into(),
                fix: "set the OIDC client id".into(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            oidc: Oidc { issuer: options.oidc.issuer, jwks_url: url_option("oidc.jwksUrl", &options.oidc.jwks_url)? },
            browser_login: BrowserLogin {
                url: url_option("browserLogin.url", &login.url)?,
                token_url: url_option("browserLogin.tokenUrl", &login.token_url)?,
                client_id: login.client_id.trim().to_owned(),
                client_secret: Secret::new(login.client_secret),
                scope: scope_or_default(login.scope),
            },
            require_token_use_id: false,
            access_token_ttl: access,
            refresh_token_ttl: refresh,
        })
    }
}

fn scope_or_default(scope: Option<String>) -> String {
    match scope {
        Some(scope) if !scope.trim().is_empty() => scope.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => DEFAULT_SCOPE.to_owned(),
    }
}

fn ttls(name: &str, gateway: Option<GatewayOptions>) -> Result<(Duration, Duration), ConfigError> {
    let gateway = gateway.unwrap_or_default();
    let access = seconds(name, "gateway.accessTokenTtlSeconds", gateway.access_token_ttl_seconds, DEFAULT_ACCESS_TTL)?;
    let refresh =
        seconds(name, "gateway.refreshTokenTtlSeconds", gateway.refresh_token_ttl_seconds, DEFAULT_REFRESH_TTL)?;
    Ok((access, refresh))
}

fn seconds(name: &str, option: &str, value: Option<Seconds>, default: u64) -> Result<Duration, ConfigError> {
    let parsed = match value {
        None => Some(default),
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Text(text)) => text.trim().parse().ok(),
    };
    match parsed {
        Some(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError::InvalidOption {
            owner: format!("policy `{name}`"),
            option: option.to_owned(),
            problem: "is not a positive whole number of seconds".into(),
            fix: format!("give a number of seconds, e.g. {default}"),
        }),
    }
}

/// The problem of a contract rule, without the value it repeats (the option
/// names it already).
fn problem_of(err: InvalidValue) -> String {
    format!("`{}`: {}", err.value, err.problem)
}

fn parse_url(value: &str) -> Result<Url, String> {
    Url::parse(value.trim()).map_err(|err| format!("`{value}` is not a URL ({err})"))
}

#[cfg(test)]
mod tests {
    use super::OAuthPolicy;
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
