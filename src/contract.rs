//! What `cognigate` and `cognigate-gateway` agree on, written once.
//!
//! `cognigate up` writes an env file and a policy stanza; the gateway reads
//! them back. Every rule both sides must apply the same way lives here: the
//! identifier types and their validation (region, user pool id, hosted-UI
//! domain), the four URLs derived from a stack, where the gateway's callback
//! is, the env keys, and the policy stanza as one typed struct that
//! provisioning serializes and the gateway deserializes. Neither side keeps a
//! copy of any of it, so they cannot drift apart.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// A value that breaks a rule of the contract: which setting, the value, and
/// what was wrong with how to fix it (one sentence a user can act on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {setting} {value:?}: {problem}")]
pub struct InvalidValue {
    pub(crate) setting: &'static str,
    pub(crate) value: String,
    pub(crate) problem: String,
}

pub(crate) fn invalid(setting: &'static str, value: &str, problem: impl Into<String>) -> InvalidValue {
    InvalidValue { setting, value: value.to_owned(), problem: problem.into() }
}

/// The gateway's OAuth callback, relative to its public URL. Cognito matches
/// callback URLs exactly, so this path is part of what `up` registers.
pub(crate) const CALLBACK_PATH: &str = "/oauth/callback";

/// Where the gateway lists its routes in the MCP Server Registry API (v0.1),
/// relative to its public URL; `up` prints it.
pub(crate) const MCP_REGISTRY_PATH: &str = "/mcp-registry/v0.1/servers";

/// The public URL of a gateway run locally with its defaults.
pub(crate) const DEFAULT_PUBLIC_URL: &str = "http://localhost:9000";

/// The callback URL of a gateway reached at `public_url` (no trailing slash).
pub(crate) fn callback_url(public_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'))
}

/// The URL clients and browsers reach the gateway at: what `cognigate up
/// --gateway-url` registers (its callback is this URL plus [`CALLBACK_PATH`])
/// and what `cognigate-gateway --public-url` serves as its issuer. Both parse
/// it here, so a URL one side takes the other cannot refuse.
///
/// It is an origin: http(s), a host, an optional port, nothing else. The
/// gateway answers `/mcp/…`, `/oauth/…` and `/.well-known/…` at the root of
/// its host (RFC 8414 and RFC 9728 place the metadata there), so a path
/// prefix would publish URLs nobody serves; it is refused, and so is a URL
/// that already ends in the callback path, which would register
/// `…/oauth/callback/oauth/callback`. Which schemes Cognito accepts in a
/// callback (https, or http on localhost) is Cognito's rule, checked by `up`
/// on every callback URL it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicUrl(String);

impl PublicUrl {
    pub(crate) fn parse(value: &str) -> Result<Self, InvalidValue> {
        const SETTING: &str = "gateway public URL";
        const EXAMPLE: &str = "such as https://mcp.example.com or http://localhost:9000";
        let trimmed = value.trim();
        let url =
            Url::parse(trimmed).map_err(|e| invalid(SETTING, value, format!("{e}; give an absolute URL {EXAMPLE}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                SETTING,
                value,
                format!("scheme {:?} is not http(s); give a URL {EXAMPLE}", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(SETTING, value, format!("it has no host; give a URL {EXAMPLE}")));
        }
        let mut origin = url.clone();
        origin.set_path("");
        origin.set_query(None);
        origin.set_fragment(None);
        let _ = origin.set_username("");
        let _ = origin.set_password(None);
        let origin = origin.as_str().trim_end_matches('/').to_owned();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(SETTING, value, format!("remove the user name and password: give {origin}")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(SETTING, value, format!("remove the query and fragment: give {origin}")));
        }
        let path = url.path().trim_end_matches('/');
        if let Some(base) = path.strip_suffix(CALLBACK_PATH) {
            return Err(invalid(
                SETTING,
                value,
                format!(
                    "it ends in the callback path {CALLBACK_PATH}, which cognigate appends itself; give the \
                     gateway's base URL: {origin}{base}"
                ),
            ));
        }
        if !path.is_empty() {
            return Err(invalid(
                SETTING,
                value,
                format!(
                    "a path ({path}) is not supported: the gateway serves /mcp/, /oauth/ and /.well-known/ at the \
                     root of its host; give {origin} (serve the gateway on a host name of its own)"
                ),
            ));
        }
        Ok(Self(origin))
    }

    /// The URL without a trailing slash, e.g. `https://mcp.example.com`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Where Cognito sends the browser back to: this URL plus [`CALLBACK_PATH`].
    #[cfg(test)]
    pub(crate) fn callback_url(&self) -> String {
        callback_url(&self.0)
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keys of the env file that `cognigate up` owns and the gateway reads.
/// Machine clients (OAuth client credentials). `cognigate up` gives the pool a
/// resource server, identified by the gateway's public URL, with one scope
/// for every route and one per route; Cognito puts `{identifier}/{name}` in
/// the tokens of a machine client, and the gateway's own tokens carry the
/// names, which decide the routes a machine token reaches.
pub(crate) mod machine_scopes {
    /// Every route of the gateway.
    pub(crate) const ALL: &str = "mcp:all";
    /// Followed by a route's slug: that route only.
    pub(crate) const ROUTE_PREFIX: &str = "mcp:route.";

    /// The scope of the route `/mcp/{slug}`.
    pub(crate) fn route(slug: &str) -> String {
        format!("{ROUTE_PREFIX}{slug}")
    }

    /// Whether scopes named `held` reach the route `slug`.
    pub(crate) fn reach(held: &str, slug: &str) -> bool {
        held.split_whitespace().any(|scope| scope == ALL || scope.strip_prefix(ROUTE_PREFIX) == Some(slug))
    }
}

pub(crate) mod env_keys {
    pub(crate) const USER_POOL_ID: &str = "COGNITO_USER_POOL_ID";
    pub(crate) const USER_POOL_DOMAIN: &str = "COGNITO_USER_POOL_DOMAIN";
    pub(crate) const CLIENT_ID: &str = "COGNITO_CLIENT_ID";
    pub(crate) const CLIENT_SECRET: &str = "COGNITO_CLIENT_SECRET";
    /// The gateway's public URL, so the callback it sends is the one Cognito has.
    pub(crate) const PUBLIC_URL: &str = "COGNIGATE_PUBLIC_URL";
    /// Written only when `up` ran against an endpoint override (an emulator):
    /// the gateway then fetches keys from the same place.
    pub(crate) const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

    /// Every key `up` may write, in the order it writes them.
    pub(crate) const ALL: [&str; 6] =
        [USER_POOL_ID, USER_POOL_DOMAIN, CLIENT_ID, CLIENT_SECRET, PUBLIC_URL, AWS_ENDPOINT_URL];
}

/// Where the AWS SDK convention says Cognito's API is reached instead of AWS:
/// the service-specific variable first, then the general one. Trailing slash
/// removed; empty values ignored.
pub(crate) fn aws_endpoint_override(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| lookup(name))
        .map(|value| value.trim().trim_end_matches('/').to_owned())
        .find(|value| !value.is_empty())
}

/// An AWS region code such as `us-east-1`, `eu-central-2` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let parts: Vec<&str> = value.split('-').collect();
        let well_formed = parts.len() >= 3
            && parts[0].len() == 2
            && parts[0].chars().all(|c| c.is_ascii_lowercase())
            && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n > 0);
        if !well_formed {
            return Err(invalid("region", value, "expected a region code like \"us-east-1\" or \"eu-west-3\""));
        }
        Ok(Self(value.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Cognito user pool id: `<region>_<letters and digits>`, e.g. `us-east-1_AbC123xyz`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct UserPoolId(String);

impl UserPoolId {
    pub(crate) fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fix = "a user pool id looks like \"us-east-1_AbC123xyz\" (region, underscore, letters and digits)";
        let Some((region, suffix)) = value.split_once('_') else {
            return Err(invalid("user pool id", value, fix));
        };
        if Region::parse(region).is_err() || suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("user pool id", value, fix));
        }
        Ok(Self(value.to_owned()))
    }

    /// A pool id that must belong to `region` (a pool lives in exactly one).
    pub(crate) fn parse_in(value: &str, region: &Region) -> Result<Self, InvalidValue> {
        let id = Self::parse(value)?;
        if id.region() != region.as_str() {
            return Err(invalid(
                "user pool id",
                value,
                format!("the pool is in {}, but the region is {region}; use the region of the pool", id.region()),
            ));
        }
        Ok(id)
    }

    /// The region the id belongs to.
    pub(crate) fn region(&self) -> &str {
        self.0.split_once('_').map_or("", |(region, _)| region)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserPoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hosted-UI domain as the env file carries it (`COGNITO_USER_POOL_DOMAIN`):
/// a host, optionally with a port, and nothing else. A loopback host is reached
/// over http (that is how a local login page stands in for Cognito's); every
/// other host over https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostedUiDomain {
    host: String,
    base_url: Url,
}

impl HostedUiDomain {
    pub(crate) fn parse(value: &str) -> Result<Self, InvalidValue> {
        const FIX: &str = "give the host only, e.g. my-prefix.auth.us-east-1.amazoncognito.com (no https://, no path, no trailing slash)";
        let problem = |what: &str| invalid("hosted UI domain", value, format!("{what}; {FIX}"));
        if value.is_empty() {
            return Err(problem("it is empty"));
        }
        if value.contains("://") {
            return Err(problem("it has a scheme"));
        }
        if value.ends_with('/') {
            return Err(problem("it has a trailing slash"));
        }
        if value.contains('/') {
            return Err(problem("it has a path"));
        }
        if value.contains(['?', '#', '@']) || value.chars().any(char::is_whitespace) {
            return Err(problem("it is not a host name"));
        }
        let https = Url::parse(&format!("https://{value}/")).map_err(|err| problem(&format!("{err}")))?;
        if https.host_str().is_none_or(str::is_empty) {
            return Err(problem("it is not a host name"));
        }
        let base_url = if is_loopback(&https) { as_http(https, value) } else { https };
        Ok(Self { host: value.to_owned(), base_url })
    }

    /// The value as written: host and optional port.
    pub(crate) fn as_str(&self) -> &str {
        &self.host
    }

    /// `https://{host}/` (`http://` for loopback), ending in a slash.
    pub(crate) fn base_url(&self) -> &Url {
        &self.base_url
    }
}

impl fmt::Display for HostedUiDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

/// http keeps an explicit port even when it equals https's default (443).
fn as_http(https: Url, written: &str) -> Url {
    let mut http = https;
    // Infallible between two special schemes.
    let _ = http.set_scheme("http");
    if http.port().is_none()
        && let Some((_, port)) = written.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
    {
        let _ = http.set_port(Some(port));
    }
    http
}

/// Whether the URL's host is `localhost` or a loopback address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The four URLs a stack gives the gateway. The issuer is always Cognito's
/// canonical one (it is what tokens carry); only where the keys are fetched
/// from follows an endpoint override, which is how an emulator stands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackUrls {
    pub(crate) issuer: String,
    pub(crate) jwks: Url,
    pub(crate) authorize: Url,
    pub(crate) token: Url,
}

impl StackUrls {
    pub(crate) fn derive(
        region: &Region,
        pool: &UserPoolId,
        domain: &HostedUiDomain,
        aws_endpoint: Option<&str>,
    ) -> Result<Self, InvalidValue> {
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let jwks = match aws_endpoint {
            Some(endpoint) => format!("{}/{pool}/.well-known/jwks.json", endpoint.trim_end_matches('/')),
            None => format!("{issuer}/.well-known/jwks.json"),
        };
        let jwks = Url::parse(&jwks).map_err(|err| {
            invalid("AWS endpoint URL", aws_endpoint.unwrap_or_default(), format!("{err}; give an absolute URL"))
        })?;
        let join = |path: &str| {
            domain.base_url().join(path).map_err(|err| invalid("hosted UI domain", domain.as_str(), err.to_string()))
        };
        Ok(Self { authorize: join("oauth2/authorize")?, token: join("oauth2/token")?, jwks, issuer })
    }
}

/// The Zuplo module that provides the MCP gateway's handlers and policies.
pub(crate) const ZUPLO_MCP_MODULE: &str = "$import(@zuplo/runtime/mcp-gateway)";
pub(crate) const COGNITO_POLICY_TYPE: &str = "mcp-cognito-oauth-inbound";
pub(crate) const COGNITO_POLICY_EXPORT: &str = "McpCognitoOAuthInboundPolicy";
/// The policy name `up` writes unless told otherwise.
pub const DEFAULT_POLICY_NAME: &str = "cognito-managed-oauth";

/// One entry of `policies.json`'s `policies` array, in Zuplo's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStanza<Options> {
    pub(crate) name: String,
    pub(crate) policy_type: String,
    pub(crate) handler: PolicyHandler<Options>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PolicyHandler<Options> {
    /// Zuplo's `$import(...)`; the export names the behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) module: Option<String>,
    pub(crate) export: String,
    pub(crate) options: Options,
}

/// `mcp-cognito-oauth-inbound` options. In the file they are `$env(NAME)`
/// references (the stanza never holds a secret); the gateway substitutes them
/// before it reads this struct. Unknown fields are refused: a misspelt
/// `userPoolID` must stop the boot, not fall back to nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CognitoOptions {
    pub(crate) aws_region: String,
    pub(crate) user_pool_id: String,
    pub(crate) user_pool_domain: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gateway: Option<GatewayOptions>,
}

/// cognigate's own options under `gateway` (Zuplo has none of these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GatewayOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) access_token_ttl_seconds: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token_ttl_seconds: Option<Seconds>,
    /// Scopes a token must carry to call the routes of this policy (beyond
    /// the login's); a token without one gets 403 `insufficient_scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) required_scopes: Option<Vec<String>>,
    /// Route-level group access: only users in one of these Cognito groups
    /// (the ID token's `cognito:groups`) get past consent and refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) allowed_groups: Option<Vec<String>>,
    /// The identifier of the pool's resource server whose scopes machine
    /// clients carry (default: the gateway's public URL, as `cognigate up`
    /// creates it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_server: Option<String>,
}

/// A number of seconds, written as a JSON number or (after `$env`) a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Seconds {
    Number(u64),
    Text(String),
}

/// `$env(NAME)`: how a policy option refers to a value of the env file.
pub(crate) fn env_ref(key: &str) -> String {
    format!("$env({key})")
}

/// The stanza `up` writes for a stack in `region`.
pub fn cognito_stanza(name: &str, region: &Region) -> PolicyStanza<CognitoOptions> {
    PolicyStanza {
        name: name.to_owned(),
        policy_type: COGNITO_POLICY_TYPE.to_owned(),
        handler: PolicyHandler {
            module: Some(ZUPLO_MCP_MODULE.to_owned()),
            export: COGNITO_POLICY_EXPORT.to_owned(),
            options: CognitoOptions {
                aws_region: region.to_string(),
                user_pool_id: env_ref(env_keys::USER_POOL_ID),
                user_pool_domain: env_ref(env_keys::USER_POOL_DOMAIN),
                client_id: env_ref(env_keys::CLIENT_ID),
                client_secret: env_ref(env_keys::CLIENT_SECRET),
                scope: None,
                gateway: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for good in ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"] {
            assert!(Region::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "us-east", "useast1", "US-EAST-1", "us-east-0", "u-east-1", "us--1", "us-east-1a"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_ids() {
        let id = UserPoolId::parse("eu-west-1_AbC123").unwrap();
        assert_eq!(id.region(), "eu-west-1");
        for bad in ["", "eu-west-1", "eu-west-1_", "eu-west-1_ab-c", "nope_abc", "us-east-0_abc"] {
            assert!(UserPoolId::parse(bad).is_err(), "{bad}");
        }
        let region = Region::parse("us-east-1").unwrap();
        let err = UserPoolId::parse_in("eu-west-1_AbC123", &region).unwrap_err();
        assert!(err.problem.contains("in eu-west-1"), "{err}");
    }

    #[test]
    fn hosted_ui_domains() {
        let domain = HostedUiDomain::parse("team.auth.eu-west-3.amazoncognito.com").unwrap();
        assert_eq!(domain.base_url().as_str(), "https://team.auth.eu-west-3.amazoncognito.com/");
        assert_eq!(HostedUiDomain::parse("127.0.0.1:8123").unwrap().base_url().as_str(), "http://127.0.0.1:8123/");
        assert_eq!(HostedUiDomain::parse("localhost:443").unwrap().base_url().as_str(), "http://localhost:443/");
        assert_eq!(
            HostedUiDomain::parse("auth.example.com:8443").unwrap().base_url().as_str(),
            "https://auth.example.com:8443/"
        );
        for (bad, says) in [
            ("", "empty"),
            ("https://team.auth.us-east-1.amazoncognito.com", "scheme"),
            ("team.auth.us-east-1.amazoncognito.com/", "trailing slash"),
            ("team.auth.us-east-1.amazoncognito.com/login", "path"),
            ("a b.example.com", "not a host"),
            ("user@auth.example.com", "not a host"),
        ] {
            let err = HostedUiDomain::parse(bad).unwrap_err();
            assert!(err.problem.contains(says) && err.problem.contains("give the host only"), "{bad}: {err}");
        }
    }

    #[test]
    fn derives_the_four_urls() {
        let region = Region::parse("eu-west-3").unwrap();
        let pool = UserPoolId::parse("eu-west-3_AbC123").unwrap();
        let domain = HostedUiDomain::parse("team.auth.eu-west-3.amazoncognito.com").unwrap();
        let urls = StackUrls::derive(&region, &pool, &domain, None).unwrap();
        assert_eq!(urls.issuer, "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_AbC123");
        assert_eq!(
            urls.jwks.as_str(),
            "https://cognito-idp.eu-west-3.amazonaws.com/eu-west-3_AbC123/.well-known/jwks.json"
        );
        assert_eq!(urls.authorize.as_str(), "https://team.auth.eu-west-3.amazoncognito.com/oauth2/authorize");
        assert_eq!(urls.token.as_str(), "https://team.auth.eu-west-3.amazoncognito.com/oauth2/token");

        let moved = StackUrls::derive(&region, &pool, &domain, Some("http://127.0.0.1:5000/")).unwrap();
        assert_eq!(moved.issuer, urls.issuer, "the issuer never moves");
        assert_eq!(moved.jwks.as_str(), "http://127.0.0.1:5000/eu-west-3_AbC123/.well-known/jwks.json");
        assert_eq!(moved.authorize, urls.authorize);
    }

    #[test]
    fn endpoint_override_follows_the_sdk_convention() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(aws_endpoint_override(vars(&[])), None);
        assert_eq!(aws_endpoint_override(vars(&[("AWS_ENDPOINT_URL", "http://a:1/")])).as_deref(), Some("http://a:1"));
        assert_eq!(
            aws_endpoint_override(vars(&[
                ("AWS_ENDPOINT_URL", "http://a:1"),
                ("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "http://b:2")
            ]))
            .as_deref(),
            Some("http://b:2")
        );
        assert_eq!(aws_endpoint_override(vars(&[("AWS_ENDPOINT_URL", " ")])), None);
    }

    #[test]
    fn the_stanza_round_trips_and_holds_no_secret() {
        let stanza = cognito_stanza("cognito-managed-oauth", &Region::parse("us-east-1").unwrap());
        let value = serde_json::to_value(&stanza).unwrap();
        assert_eq!(value["policyType"], COGNITO_POLICY_TYPE);
        assert_eq!(value["handler"]["export"], COGNITO_POLICY_EXPORT);
        assert_eq!(value["handler"]["options"]["clientSecret"], "$env(COGNITO_CLIENT_SECRET)");
        assert!(value["handler"]["options"].get("scope").is_none());
        let back: PolicyStanza<CognitoOptions> = serde_json::from_value(value).unwrap();
        assert_eq!(back, stanza);
    }

    #[test]
    fn public_urls_are_origins() {
        assert_eq!(PublicUrl::parse("https://MCP.example.com/").unwrap().as_str(), "https://mcp.example.com");
        assert_eq!(
            PublicUrl::parse("http://localhost:9000").unwrap().callback_url(),
            "http://localhost:9000/oauth/callback"
        );
        assert_eq!(PublicUrl::parse("http://gw.test:8080").unwrap().as_str(), "http://gw.test:8080");
        for (bad, says) in [
            ("mcp.example.com", "absolute URL"),
            ("ftp://mcp.example.com", "not http(s)"),
            ("https://mcp.example.com/oauth/callback", "ends in the callback path /oauth/callback"),
            (
                "https://mcp.example.com/base/oauth/callback/",
                "give the gateway's base URL: https://mcp.example.com/base",
            ),
            ("https://mcp.example.com/base", "a path (/base) is not supported"),
            ("https://mcp.example.com/?a=b", "remove the query"),
            ("https://mcp.example.com/#x", "remove the query and fragment: give https://mcp.example.com"),
            ("https://user:pw@mcp.example.com", "remove the user name and password"),
        ] {
            let err = PublicUrl::parse(bad).unwrap_err();
            assert!(err.problem.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn callback_is_under_the_public_url() {
        assert_eq!(callback_url("https://mcp.example.com/"), "https://mcp.example.com/oauth/callback");
        assert_eq!(callback_url(DEFAULT_PUBLIC_URL), "http://localhost:9000/oauth/callback");
    }
}
