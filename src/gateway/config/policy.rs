//! Inbound OAuth policies: the Cognito policy, the generic OIDC policy it
//! derives (DESIGN.md section 3, the derivation table), and their validation.

use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::env::Env;
use super::files::{CognitoOptions, GatewayOptions, GenericOptions, Seconds};
use crate::secret::Secret;

pub(crate) const COGNITO_POLICY_TYPE: &str = "mcp-cognito-oauth-inbound";
pub(crate) const COGNITO_EXPORT: &str = "McpCognitoOAuthInboundPolicy";
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
        let region = options.aws_region.trim();
        if !is_region(region) {
            return Err(invalid(
                "awsRegion",
                format!("`{region}` is not an AWS region"),
                "use a region code such as us-east-1 or eu-west-3",
            ));
        }
        let pool = options.user_pool_id.trim();
        check_pool_id(pool, region).map_err(|problem| {
            invalid("userPoolId", problem, "use the pool id `cognigate up` wrote to the env file (COGNITO_USER_POOL_ID), e.g. us-east-1_AbC123xyz, in the pool's region")
        })?;
        let domain = options.user_pool_domain.trim();
        let base = domain_base_url(domain).map_err(|problem| {
            invalid(
                "userPoolDomain",
                problem,
                "give the host only, e.g. my-prefix.auth.us-east-1.amazoncognito.com (no https://, no path, no trailing slash)",
            )
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
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let jwks = match aws_endpoint(env) {
            Some(endpoint) => format!("{endpoint}/{pool}/.well-known/jwks.json"),
            None => format!("{issuer}/.well-known/jwks.json"),
        };
        let jwks_url = parse_url(&jwks)
            .map_err(|problem| invalid("userPoolId", problem, "check AWS_ENDPOINT_URL and the pool id"))?;
        let (access, refresh) = ttls(name, options.gateway)?;
        Ok(Self {
            name: name.to_owned(),
            oidc: Oidc { issuer, jwks_url },
            browser_login: BrowserLogin {
                url: base
                    .join("oauth2/authorize")
                    .map_err(|err| invalid("userPoolDomain", err.to_string(), "give the host only"))?,
                token_url: base
                    .join("oauth2/token")
                    .map_err(|err| invalid("userPoolDomain", err.to_string(), "give the host only"))?,
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
            if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback_host(&url)) {
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

/// `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or `AWS_ENDPOINT_URL` (the AWS
/// SDK convention), without a trailing slash.
fn aws_endpoint(env: &Env) -> Option<String> {
    ["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| env.get(name))
        .map(|value| value.trim().trim_end_matches('/').to_owned())
        .find(|value| !value.is_empty())
}

fn parse_url(value: &str) -> Result<Url, String> {
    Url::parse(value.trim()).map_err(|err| format!("`{value}` is not a URL ({err})"))
}

pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// AWS region codes: `us-east-1`, `eu-west-3`, `us-gov-west-1`, `ap-southeast-2`.
pub(crate) fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words[0].len() == 2
        && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// `<region>_<alphanumeric>` with the region of the policy.
fn check_pool_id(pool: &str, region: &str) -> Result<(), String> {
    let Some((prefix, id)) = pool.split_once('_') else {
        return Err(format!("`{pool}` is not a user pool id (expected <region>_<id>)"));
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("`{pool}` is not a user pool id (expected <region>_<letters and digits>)"));
    }
    if prefix != region {
        return Err(format!("`{pool}` belongs to region `{prefix}`, but awsRegion is `{region}`"));
    }
    Ok(())
}

/// The hosted UI base URL for a `userPoolDomain` that must be a bare host
/// (optionally with a port). Loopback hosts are reached over http so tests can
/// put a stand-in there; everything else is https.
fn domain_base_url(domain: &str) -> Result<Url, String> {
    if domain.is_empty() {
        return Err("is empty".into());
    }
    if domain.contains("://") {
        return Err(format!("`{domain}` has a scheme"));
    }
    if domain.ends_with('/') {
        return Err(format!("`{domain}` has a trailing slash"));
    }
    if domain.contains('/') {
        return Err(format!("`{domain}` has a path"));
    }
    if domain.contains(['?', '#', '@', ' ']) {
        return Err(format!("`{domain}` is not a host name"));
    }
    let https =
        Url::parse(&format!("https://{domain}/")).map_err(|err| format!("`{domain}` is not a host name ({err})"))?;
    if https.host_str().is_none() {
        return Err(format!("`{domain}` is not a host name"));
    }
    if is_loopback_host(&https) {
        let mut http = https;
        // Infallible for a special scheme to another special scheme.
        let _ = http.set_scheme("http");
        // Keep an explicit port even when it equals https's default.
        if http.port().is_none()
            && let Some((_, port)) = domain.rsplit_once(':')
            && let Ok(port) = port.parse::<u16>()
        {
            let _ = http.set_port(Some(port));
        }
        return Ok(http);
    }
    Ok(https)
}

#[cfg(test)]
mod tests {
    use super::{OAuthPolicy, domain_base_url, is_region};
    use crate::gateway::config::ConfigError;
    use crate::gateway::config::env::Env;
    use crate::gateway::config::files::CognitoOptions;

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
    fn loopback_domains_use_http() {
        assert_eq!(domain_base_url("127.0.0.1:8123").unwrap().as_str(), "http://127.0.0.1:8123/");
        assert_eq!(domain_base_url("localhost:443").unwrap().as_str(), "http://localhost:443/");
        assert_eq!(domain_base_url("auth.example.com:8443").unwrap().as_str(), "https://auth.example.com:8443/");
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
        for ok in ["us-east-1", "eu-west-3", "us-gov-west-1", "ap-southeast-2"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "useast1", "u-east-1", "us--1", ""] {
            assert!(!is_region(bad), "{bad}");
        }
        let mut opts = options("a.example.com");
        opts.aws_region = "us-east".into();
        let text = OAuthPolicy::from_cognito("p", opts, &Env::default()).unwrap_err().to_string();
        assert!(text.contains("awsRegion") && text.contains("Fix:"), "{text}");

        for (pool, needle) in [
            ("us-east-1_AbC", "region `us-east-1`"),
            ("eu-west-3-AbC", "not a user pool id"),
            ("eu-west-3_ab-c", "letters and digits"),
        ] {
            let mut opts = options("a.example.com");
            opts.user_pool_id = pool.into();
            let text = OAuthPolicy::from_cognito("p", opts, &Env::default()).unwrap_err().to_string();
            assert!(text.contains("userPoolId") && text.contains(needle) && text.contains("Fix:"), "{text}");
        }
    }
}
