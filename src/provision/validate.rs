//! Local validation of everything a user can type, done before any AWS call.
//!
//! Each rule mirrors what Cognito itself would reject (or what would break the
//! gateway later), so that a bad value fails fast with a message that says what
//! was wrong and how to fix it, and nothing is created half way.

use std::fmt;

use url::Url;

use crate::contract::invalid;
pub(crate) use crate::contract::{InvalidValue, Region, UserPoolId};

/// The name of a stack: the user pool's name and the `cognigate:stack` tag value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StackName(String);

impl StackName {
    pub(crate) const MAX_LEN: usize = 64;

    pub(crate) fn parse(value: &str) -> Result<Self, InvalidValue> {
        let fix =
            "use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit (for example \"my-mcp\")";
        let mut chars = value.chars();
        let Some(first) = chars.next() else {
            return Err(invalid("stack name", value, format!("it is empty; {fix}")));
        };
        if value.len() > Self::MAX_LEN {
            return Err(invalid("stack name", value, format!("it is {} characters long; {fix}", value.len())));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(invalid("stack name", value, format!("it starts with {first:?}; {fix}")));
        }
        if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
            return Err(invalid("stack name", value, format!("it contains {bad:?}; {fix}")));
        }
        Ok(Self(value.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS endpoint override: an http(s) URL with a host. `localhost:4566`
/// parses as a URL whose scheme is `localhost`, so the scheme is checked by
/// name and the message shows the value as it should have been written.
pub(crate) fn endpoint_url(value: &str) -> Result<(), InvalidValue> {
    let setting = "endpoint URL";
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        let rest = value.split_once("://").map_or(value, |(_, rest)| rest);
        return Err(invalid(
            setting,
            value,
            format!("it has no scheme; write http://{rest} (an emulator on this machine) or https://{rest}"),
        ));
    }
    match Url::parse(value) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err(invalid(setting, value, "it has no host; write http://HOST:PORT")),
        Err(e) => Err(invalid(setting, value, format!("it is not a URL ({e}); write http://HOST:PORT"))),
    }
}

/// Words Cognito refuses anywhere in a prefix domain.
const RESERVED_DOMAIN_WORDS: [&str; 3] = ["aws", "amazon", "cognito"];

/// Checks a hosted UI prefix against Cognito's rules:
/// `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$` and none of the reserved words.
pub(crate) fn domain_prefix(value: &str) -> Result<(), InvalidValue> {
    let setting = "domain prefix";
    if value.is_empty() || value.len() > 63 {
        return Err(invalid(setting, value, "use 1 to 63 characters (flag --domain-prefix)"));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(invalid(
            setting,
            value,
            format!("it contains {bad:?}; use only lowercase letters, digits and '-'"),
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(invalid(setting, value, "it must start and end with a letter or digit"));
    }
    if let Some(word) = RESERVED_DOMAIN_WORDS.iter().find(|w| value.contains(*w)) {
        return Err(invalid(
            setting,
            value,
            format!("Cognito reserves the word {word:?} in domain prefixes; choose a prefix without it"),
        ));
    }
    Ok(())
}

/// A prefix derived from the stack name when none is given: lowercase, with a
/// short stable hash so two stacks named alike in other accounts rarely collide
/// (prefixes are unique per region across all of AWS).
pub(crate) fn derived_domain_prefix(stack: &StackName, region: &Region) -> String {
    use sha2::{Digest, Sha256};

    let mut base = String::with_capacity(stack.as_str().len());
    for c in stack.as_str().chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (base.is_empty() || base.ends_with('-'))) {
            base.push(c);
        }
    }
    for word in RESERVED_DOMAIN_WORDS {
        base = base.replace(word, "");
    }
    let base: String = base.trim_matches('-').chars().take(50).collect();
    let base = base.trim_end_matches('-');
    let digest = Sha256::digest(format!("cognigate:{region}:{stack}").as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    if base.is_empty() { format!("mcp-{hash}") } else { format!("{base}-{hash}") }
}

/// A custom hosted UI domain (`auth.example.com`): a DNS name, no scheme or path.
pub(crate) fn custom_domain(value: &str) -> Result<(), InvalidValue> {
    // The rules every hosted-UI domain follows (the gateway applies the same ones).
    crate::contract::HostedUiDomain::parse(value).map_err(|err| InvalidValue { setting: "custom domain", ..err })?;
    let labels: Vec<&str> = value.split('.').collect();
    let ok = labels.iter().all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if !ok {
        return Err(invalid(
            "custom domain",
            value,
            "not a valid lowercase DNS name (letters a-z, digits and hyphens; for example auth.example.com)",
        ));
    }
    // Cognito's own limits on the `Domain` member: at most 63
    // characters in all, and a subdomain of a domain you own, whose apex needs
    // an A record before Cognito accepts it.
    if value.len() > 63 {
        return Err(invalid("custom domain", value, "longer than the 63 characters Cognito accepts"));
    }
    if labels.len() < 3 {
        return Err(invalid(
            "custom domain",
            value,
            "Cognito needs a subdomain such as auth.example.com (at least three labels), and the parent domain \
             (example.com) must have a DNS A record before the custom domain can be created",
        ));
    }
    Ok(())
}

/// An ACM certificate ARN; Cognito custom domains need one in us-east-1.
pub(crate) fn certificate_arn(value: &str) -> Result<(), InvalidValue> {
    let setting = "certificate ARN";
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "acm" || !parts[5].starts_with("certificate/") {
        return Err(invalid(setting, value, "expected arn:aws:acm:us-east-1:<account>:certificate/<id>"));
    }
    if parts[3] != "us-east-1" {
        return Err(invalid(
            setting,
            value,
            "Cognito custom domains need an ACM certificate in us-east-1; request or import it there",
        ));
    }
    Ok(())
}

fn is_localhost(url: &Url) -> bool {
    url.host_str() == Some("localhost")
}

/// A gateway's public URL: the contract's [`crate::contract::PublicUrl`]
/// (an origin, the same rule the gateway applies to `--public-url`), and
/// Cognito's rule for the callback under it: https, http only on localhost.
/// Returns it without a trailing slash.
pub(crate) fn gateway_url(value: &str) -> Result<String, InvalidValue> {
    let setting = "gateway URL";
    let public = crate::contract::PublicUrl::parse(value).map_err(|e| invalid(setting, value, e.problem))?;
    let url = Url::parse(public.as_str()).map_err(|e| invalid(setting, value, e.to_string()))?;
    if url.scheme() == "http" && !is_localhost(&url) {
        return Err(invalid(
            setting,
            value,
            format!(
                "Cognito accepts http callback URLs only for localhost; use https://{}",
                url.host_str().unwrap_or_default()
            ),
        ));
    }
    Ok(public.as_str().to_owned())
}

/// An exact callback URL: absolute, no fragment, https except http://localhost.
pub(crate) fn callback_url(value: &str) -> Result<(), InvalidValue> {
    let setting = "callback URL";
    let url = Url::parse(value).map_err(|e| invalid(setting, value, format!("{e}; callback URLs must be absolute")))?;
    if url.fragment().is_some() {
        return Err(invalid(setting, value, "callback URLs must not contain a fragment ('#...'); remove it"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_localhost(&url) => Ok(()),
        "http" => Err(invalid(setting, value, "Cognito accepts http only for http://localhost; use https")),
        // Native apps may register private-use schemes (RFC 8252 7.1).
        scheme if scheme.contains('.') => Ok(()),
        other => Err(invalid(setting, value, format!("scheme {other:?} is not accepted; use https"))),
    }
}

/// Cognito's limit on callback URLs per app client.
pub(crate) const MAX_CALLBACK_URLS: usize = 100;

/// A user group name as Cognito takes it: 1 to 128 letters, marks, symbols,
/// digits or punctuation (`[\p{L}\p{M}\p{S}\p{N}\p{P}]+`), so no spaces.
pub(crate) fn group_name(value: &str) -> Result<(), InvalidValue> {
    let fix = "use 1 to 128 characters without spaces (for example \"mcp-users\")";
    if value.is_empty() || value.chars().count() > 128 {
        return Err(invalid("group name", value, fix));
    }
    if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("group name", value, format!("it contains {bad:?}; {fix}")));
    }
    Ok(())
}

/// An e-mail address used as a username: one '@' with text on both sides and
/// no spaces; Cognito checks deliverability itself when it sends the invitation.
pub(crate) fn email(value: &str) -> Result<(), InvalidValue> {
    let fix = "give the user's e-mail address, for example alice@example.com";
    let Some((local, domain)) = value.split_once('@') else {
        return Err(invalid("e-mail address", value, format!("it has no '@'; {fix}")));
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') || value.chars().any(char::is_whitespace) {
        return Err(invalid("e-mail address", value, fix));
    }
    if value.len() > 128 {
        return Err(invalid("e-mail address", value, "Cognito usernames are at most 128 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        assert!(StackName::parse("my-mcp").is_ok());
        assert!(StackName::parse("Team_A.prod-2").is_ok());
        for bad in ["", "-lead", "has space", "slash/name", &"x".repeat(65)] {
            let err = StackName::parse(bad).unwrap_err();
            assert_eq!(err.setting, "stack name", "{bad}");
        }
    }

    #[test]
    fn domain_prefixes() {
        assert!(domain_prefix("my-mcp-1").is_ok());
        assert!(domain_prefix("a").is_ok());
        let problems = [
            ("", "1 to 63"),
            ("-abc", "start and end"),
            ("abc-", "start and end"),
            ("ABC", "lowercase"),
            ("a_b", "lowercase"),
            ("myaws", "\"aws\""),
            ("amazon-x", "\"amazon\""),
            ("my-cognito", "\"cognito\""),
        ];
        for (bad, says) in problems {
            let err = domain_prefix(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(domain_prefix(&"a".repeat(64)).is_err());
        assert!(domain_prefix(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn derived_prefixes_are_valid_and_stable() {
        let region = Region::parse("us-east-1").unwrap();
        for stack in ["my-mcp", "AWS_Demo", "cognito", "x.y_z", &"long".repeat(16)] {
            let stack = StackName::parse(stack).unwrap();
            let prefix = derived_domain_prefix(&stack, &region);
            domain_prefix(&prefix).unwrap_or_else(|e| panic!("{stack}: {e}"));
            assert_eq!(prefix, derived_domain_prefix(&stack, &region));
        }
        let a = derived_domain_prefix(&StackName::parse("my-mcp").unwrap(), &region);
        assert!(a.starts_with("my-mcp-"), "{a}");
        let other_region = Region::parse("eu-west-1").unwrap();
        assert_ne!(a, derived_domain_prefix(&StackName::parse("my-mcp").unwrap(), &other_region));
    }

    #[test]
    fn gateway_urls() {
        assert_eq!(gateway_url("https://mcp.example.com/").unwrap(), "https://mcp.example.com");
        assert_eq!(gateway_url("http://localhost:9000").unwrap(), "http://localhost:9000");
        assert!(gateway_url("http://mcp.example.com").unwrap_err().problem.contains("https"));
        assert!(gateway_url("mcp.example.com").is_err());
        assert!(gateway_url("https://mcp.example.com/#x").is_err());
        assert!(gateway_url("https://mcp.example.com/oauth/callback").unwrap_err().problem.contains("callback path"));
        assert!(gateway_url("https://mcp.example.com/base").unwrap_err().problem.contains("path"));
    }

    #[test]
    fn callback_urls() {
        assert!(callback_url("https://app.example.com/cb").is_ok());
        assert!(callback_url("http://localhost:3000/cb").is_ok());
        assert!(callback_url("https://app.example.com/cb#frag").unwrap_err().problem.contains("fragment"));
        assert!(callback_url("http://app.example.com/cb").is_err());
        assert!(callback_url("/relative").is_err());
    }

    #[test]
    fn custom_domains_and_certificates() {
        assert!(custom_domain("auth.example.com").is_ok());
        assert!(custom_domain("https://auth.example.com").is_err());
        assert!(custom_domain("localhost").is_err());
        // Cognito's limits, not DNS's.
        assert!(custom_domain("Auth.Example.com").unwrap_err().problem.contains("lowercase"));
        assert!(custom_domain("example.com").unwrap_err().problem.contains("A record"));
        let long = format!("{}.{}.example.com", "a".repeat(40), "b".repeat(20));
        assert!(custom_domain(&long).unwrap_err().problem.contains("63"));
        assert!(certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/abc").is_ok());
        assert!(
            certificate_arn("arn:aws:acm:eu-west-1:123456789012:certificate/abc")
                .unwrap_err()
                .problem
                .contains("us-east-1")
        );
        assert!(certificate_arn("nope").is_err());
    }
}
