//! Settings: flags and environment (already merged by clap) over `cognigate.toml`,
//! over defaults, validated into a [`StackSpec`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cli::{FeaturePlanArg, GlobalArgs, ManagedLoginArg, StackArgs};
use super::error::{Error, Result};
use super::spec::{DomainSpec, FeaturePlan, ManagedLogin, OutputFiles, PoolTarget, StackSpec};
use super::validate::{self, Region, StackName, UserPoolId};
use crate::contract::{self, DEFAULT_POLICY_NAME};

/// `cognigate.toml`: the same settings as the flags, for a project to commit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) struct SettingsFile {
    pub(crate) stack: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) user_pool_id: Option<String>,
    pub(crate) domain_prefix: Option<String>,
    pub(crate) custom_domain: Option<String>,
    pub(crate) certificate_arn: Option<String>,
    #[serde(default)]
    pub(crate) gateway_urls: Vec<String>,
    #[serde(default)]
    pub(crate) callback_urls: Vec<String>,
    pub(crate) localhost_callback: Option<bool>,
    pub(crate) ttl: Option<String>,
    pub(crate) deletion_protection: Option<bool>,
    pub(crate) self_signup: Option<bool>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// "v1" or "v2".
    pub(crate) managed_login: Option<String>,
    /// "lite", "essentials" or "plus".
    pub(crate) feature_plan: Option<String>,
    pub(crate) env_file: Option<PathBuf>,
    pub(crate) policies_file: Option<PathBuf>,
    pub(crate) policy_name: Option<String>,
    pub(crate) routes_file: Option<PathBuf>,
    pub(crate) resource_server: Option<String>,
    pub(crate) resource_server_name: Option<String>,
}

impl SettingsFile {
    /// Reads the file if it exists; a missing default file is not an error.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::file("read", path, e)),
        };
        toml::from_str(&text).map_err(|e| Error::SettingsFile { path: path.to_owned(), problem: e.to_string() })
    }
}

/// Where to reach AWS: resolved from flags/env over the settings file.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsTarget {
    pub(crate) profile: Option<String>,
    /// `None` lets aws-config's chain (the profile's region) decide.
    pub(crate) region: Option<Region>,
    pub(crate) endpoint_url: Option<String>,
}

pub(crate) fn aws_target(global: &GlobalArgs, file: &SettingsFile) -> Result<AwsTarget> {
    let region = global.region.clone().or_else(|| file.region.clone());
    let region = region.filter(|r| !r.is_empty()).map(|r| Region::parse(&r)).transpose()?;
    let endpoint_url = global.endpoint_url.clone().or_else(|| file.endpoint_url.clone()).filter(|u| !u.is_empty());
    if let Some(url) = &endpoint_url {
        validate::endpoint_url(url)?;
    }
    Ok(AwsTarget {
        profile: global.profile.clone().or_else(|| file.profile.clone()).filter(|p| !p.is_empty()),
        region,
        endpoint_url,
    })
}

/// Builds the validated desired state. `region` is the one the AWS client resolved.
pub(crate) fn stack_spec(args: &StackArgs, file: &SettingsFile, region: Region) -> Result<StackSpec> {
    let stack = stack_name(args, file)?;
    let pool = pool_target(args, file, &region)?;
    let (domain, domain_is_derived) = domain_spec(args, file, &stack, &region)?;
    let gateway_urls = gateway_urls(args, file)?;
    let extra = if args.shape.callback_urls.is_empty() { &file.callback_urls } else { &args.shape.callback_urls };
    let extra_callback_urls: Vec<String> = extra.iter().filter(|u| !u.is_empty()).cloned().collect();
    let localhost_callback = !args.shape.no_localhost_callback && file.localhost_callback.unwrap_or(true);
    let callback_urls = callback_urls(&gateway_urls, localhost_callback, &extra_callback_urls)?;
    let managed_login = managed_login(args, file)?;
    let feature_plan = feature_plan(args, file)?;
    if (feature_plan, managed_login) == (Some(FeaturePlan::Lite), ManagedLogin::V2) {
        return Err(Error::Usage(
            "managed login (--managed-login v2) is not available on the Lite feature plan (Cognito answers \
             FeatureUnavailableInTierException); pass --feature-plan essentials, or keep the classic hosted UI \
             with --managed-login v1"
                .into(),
        ));
    }
    Ok(StackSpec {
        callback_list_given: !gateway_urls.is_empty() || !localhost_callback,
        localhost_callback,
        extra_callback_urls,
        stack,
        region,
        pool,
        domain,
        domain_is_derived,
        callback_urls,
        gateway_urls,
        ttl: ttl(args, file)?,
        deletion_protection: args.shape.deletion_protection || file.deletion_protection.unwrap_or(false),
        self_signup: args.shape.self_signup || file.self_signup.unwrap_or(false),
        signup_given: args.shape.self_signup || file.self_signup.is_some(),
        groups: groups(args, file)?,
        managed_login,
        feature_plan: feature_plan.unwrap_or(match managed_login {
            ManagedLogin::V1 => FeaturePlan::Lite,
            ManagedLogin::V2 => FeaturePlan::Essentials,
        }),
        feature_plan_given: feature_plan.is_some(),
        files: output_files(args, file)?,
        resource_server_id: resource_server_id(args, file)?,
        resource_server_name: resource_server_name(args, file)?,
        resource_server: None,
    })
}

/// `--resource-server` (Cognito's `ResourceServerIdentifierType`).
fn resource_server_id(args: &StackArgs, file: &SettingsFile) -> Result<Option<String>> {
    let Some(id) = args.shape.resource_server.clone().or_else(|| file.resource_server.clone()) else { return Ok(None) };
    let valid = (1..=256).contains(&id.len())
        && id.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if !valid {
        return Err(Error::Usage(format!(
            "--resource-server {id:?}: Cognito takes 1 to 256 printable characters without spaces, quotes or \
             backslashes; give a URL such as https://mcp.example.com (the default is the gateway URL)"
        )));
    }
    Ok(Some(id))
}

/// `--resource-server-name` (Cognito's `ResourceServerNameType`: `[\w\s+=,.@-]+`).
fn resource_server_name(args: &StackArgs, file: &SettingsFile) -> Result<Option<String>> {
    let Some(name) = args.shape.resource_server_name.clone().or_else(|| file.resource_server_name.clone()) else {
        return Ok(None);
    };
    let valid = (1..=256).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c.is_whitespace() || "+=,.@-".contains(c));
    if !valid {
        return Err(Error::Usage(format!(
            "--resource-server-name {name:?}: Cognito takes 1 to 256 letters, digits, spaces and + = , . @ - _"
        )));
    }
    Ok(Some(name))
}

fn stack_name(args: &StackArgs, file: &SettingsFile) -> Result<StackName> {
    let stack = args.id.stack.clone().or_else(|| file.stack.clone()).ok_or_else(|| {
        Error::Usage(
            "no stack name: pass --stack NAME, set COGNIGATE_STACK, or put stack = \"NAME\" in cognigate.toml".into(),
        )
    })?;
    Ok(StackName::parse(&stack)?)
}

fn pool_target(args: &StackArgs, file: &SettingsFile, region: &Region) -> Result<PoolTarget> {
    let Some(id) = args.id.user_pool_id.clone().or_else(|| file.user_pool_id.clone()) else {
        return Ok(PoolTarget::Managed);
    };
    let id = UserPoolId::parse(&id)?;
    if id.region() != region.as_str() {
        return Err(Error::Usage(format!(
            "user pool {id} is in {}, but the region is {region}; pass --region {}",
            id.region(),
            id.region()
        )));
    }
    Ok(PoolTarget::Adopted(id))
}

/// The domain asked for, and whether it was derived (nothing asked).
fn domain_spec(
    args: &StackArgs,
    file: &SettingsFile,
    stack: &StackName,
    region: &Region,
) -> Result<(DomainSpec, bool)> {
    let custom_domain = args.domain.custom_domain.clone().or_else(|| file.custom_domain.clone());
    let domain_prefix = args.domain.domain_prefix.clone().or_else(|| file.domain_prefix.clone());
    let domain = match (custom_domain, domain_prefix) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage("give either a domain prefix or a custom domain, not both".into()));
        }
        (Some(host), None) => {
            validate::custom_domain(&host)?;
            let arn =
                args.domain.certificate_arn.clone().or_else(|| file.certificate_arn.clone()).ok_or_else(|| {
                    Error::Usage(format!(
                        "custom domain {host} needs --certificate-arn (an ACM certificate in us-east-1)"
                    ))
                })?;
            validate::certificate_arn(&arn)?;
            DomainSpec::Custom { host, certificate_arn: arn }
        }
        (None, Some(prefix)) => {
            validate::domain_prefix(&prefix)?;
            DomainSpec::Prefix(prefix)
        }
        (None, None) => return Ok((DomainSpec::Prefix(validate::derived_domain_prefix(stack, region)), true)),
    };
    Ok((domain, false))
}

fn gateway_urls(args: &StackArgs, file: &SettingsFile) -> Result<Vec<String>> {
    let given = if args.shape.gateway_urls.is_empty() { &file.gateway_urls } else { &args.shape.gateway_urls };
    Ok(given.iter().filter(|u| !u.is_empty()).map(|u| validate::gateway_url(u)).collect::<Result<Vec<_>, _>>()?)
}

/// Each gateway's callback, the local gateway's (unless turned off), then the
/// extra ones; exact, deduplicated, in order, within Cognito's limit.
pub(crate) fn callback_urls(gateway_urls: &[String], localhost: bool, extra: &[String]) -> Result<Vec<String>> {
    let candidates = gateway_urls
        .iter()
        .map(|base| contract::callback_url(base))
        .chain(localhost.then(|| contract::callback_url(contract::DEFAULT_PUBLIC_URL)))
        .chain(extra.iter().cloned());
    limited(candidates)
}

/// Validates, deduplicates in order, and holds to Cognito's limit.
pub(crate) fn limited(candidates: impl IntoIterator<Item = String>) -> Result<Vec<String>> {
    let mut urls: Vec<String> = Vec::new();
    for url in candidates {
        validate::callback_url(&url)?;
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    if urls.is_empty() {
        return Err(Error::Usage(
            "no callback URLs: pass --gateway-url URL, --callback-url URL, or drop --no-localhost-callback".into(),
        ));
    }
    if urls.len() > validate::MAX_CALLBACK_URLS {
        return Err(Error::Usage(format!(
            "{} callback URLs given; Cognito allows at most {}",
            urls.len(),
            validate::MAX_CALLBACK_URLS
        )));
    }
    Ok(urls)
}

/// Flags replace the file's list; names are checked and deduplicated in order.
fn groups(args: &StackArgs, file: &SettingsFile) -> Result<Vec<String>> {
    let given = if args.shape.groups.is_empty() { &file.groups } else { &args.shape.groups };
    let mut groups: Vec<String> = Vec::new();
    for name in given {
        validate::group_name(name)?;
        if !groups.contains(name) {
            groups.push(name.clone());
        }
    }
    Ok(groups)
}

fn managed_login(args: &StackArgs, file: &SettingsFile) -> Result<ManagedLogin> {
    if let Some(arg) = args.shape.managed_login {
        return Ok(match arg {
            ManagedLoginArg::V1 => ManagedLogin::V1,
            ManagedLoginArg::V2 => ManagedLogin::V2,
        });
    }
    match file.managed_login.as_deref() {
        None | Some("v1") => Ok(ManagedLogin::V1),
        Some("v2") => Ok(ManagedLogin::V2),
        Some(other) => Err(validate::InvalidValue {
            setting: "managed_login",
            value: other.to_owned(),
            problem: "write \"v1\" (the classic hosted UI) or \"v2\" (managed login)".into(),
        }
        .into()),
    }
}

fn feature_plan(args: &StackArgs, file: &SettingsFile) -> Result<Option<FeaturePlan>> {
    if let Some(arg) = args.shape.feature_plan {
        return Ok(Some(match arg {
            FeaturePlanArg::Lite => FeaturePlan::Lite,
            FeaturePlanArg::Essentials => FeaturePlan::Essentials,
            FeaturePlanArg::Plus => FeaturePlan::Plus,
        }));
    }
    match file.feature_plan.as_deref() {
        None => Ok(None),
        Some("lite") => Ok(Some(FeaturePlan::Lite)),
        Some("essentials") => Ok(Some(FeaturePlan::Essentials)),
        Some("plus") => Ok(Some(FeaturePlan::Plus)),
        Some(other) => Err(validate::InvalidValue {
            setting: "feature_plan",
            value: other.to_owned(),
            problem: "write \"lite\", \"essentials\" or \"plus\"".into(),
        }
        .into()),
    }
}

fn ttl(args: &StackArgs, file: &SettingsFile) -> Result<Option<std::time::Duration>> {
    let Some(text) = args.shape.ttl.clone().or_else(|| file.ttl.clone()) else { return Ok(None) };
    let ttl = humantime::parse_duration(text.trim()).map_err(|_| validate::InvalidValue {
        setting: "ttl",
        value: text.clone(),
        problem: "not a duration; write a number and a unit, such as 30m, 2h, 7days or 1day 12h".into(),
    })?;
    Ok(Some(ttl))
}

fn output_files(args: &StackArgs, file: &SettingsFile) -> Result<OutputFiles> {
    let policy_name = args.policies.policy_name.clone().or_else(|| file.policy_name.clone());
    let policy_name = policy_name.unwrap_or_else(|| DEFAULT_POLICY_NAME.to_owned());
    if policy_name.trim().is_empty() {
        return Err(Error::Usage("the policy name must not be empty (--policy-name)".into()));
    }
    Ok(OutputFiles {
        env_file: pick(&args.env.env_file, &file.env_file, ".env"),
        policies_file: pick(&args.policies.policies_file, &file.policies_file, "config/policies.json"),
        policy_name,
        routes_file: pick(&args.shape.routes_file, &file.routes_file, "config/routes.oas.json"),
    })
}

fn pick(flag: &Option<PathBuf>, file: &Option<PathBuf>, default: &str) -> PathBuf {
    flag.clone().or_else(|| file.clone()).unwrap_or_else(|| PathBuf::from(default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::cli::StackIdArgs;

    fn args(stack: &str) -> StackArgs {
        StackArgs { id: StackIdArgs { stack: Some(stack.into()), user_pool_id: None }, ..StackArgs::default() }
    }

    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    #[test]
    fn defaults() {
        let spec = stack_spec(&args("demo"), &SettingsFile::default(), region()).unwrap();
        assert_eq!(spec.callback_urls, vec![contract::callback_url(contract::DEFAULT_PUBLIC_URL)]);
        assert_eq!(spec.files.env_file, PathBuf::from(".env"));
        assert_eq!(spec.files.policies_file, PathBuf::from("config/policies.json"));
        assert_eq!(spec.files.policy_name, DEFAULT_POLICY_NAME);
        assert!(matches!(spec.domain, DomainSpec::Prefix(ref p) if p.starts_with("demo-")));
        assert_eq!(spec.pool, PoolTarget::Managed);
    }

    #[test]
    fn gateway_urls_become_callbacks_first_and_deduplicated() {
        let mut a = args("demo");
        a.shape.gateway_urls = vec!["https://gw.example.com/".into(), "http://localhost:9000".into()];
        a.shape.callback_urls = vec!["https://other.example.com/cb".into()];
        let spec = stack_spec(&a, &SettingsFile::default(), region()).unwrap();
        assert_eq!(
            spec.callback_urls,
            vec![
                "https://gw.example.com/oauth/callback".to_owned(),
                contract::callback_url(contract::DEFAULT_PUBLIC_URL),
                "https://other.example.com/cb".to_owned()
            ]
        );
    }

    #[test]
    fn flags_override_the_file() {
        let file: SettingsFile = toml::from_str(
            "stack = \"from-file\"\ndomain_prefix = \"file-prefix\"\ngateway_urls = [\"https://file.example.com\"]\nttl = \"2h\"\n",
        )
        .unwrap();
        let mut a = args("from-flag");
        a.domain.domain_prefix = Some("flag-prefix".into());
        let spec = stack_spec(&a, &file, region()).unwrap();
        assert_eq!(spec.stack.as_str(), "from-flag");
        assert_eq!(spec.domain, DomainSpec::Prefix("flag-prefix".into()));
        assert_eq!(spec.callback_urls[0], "https://file.example.com/oauth/callback");
        assert_eq!(spec.ttl, Some(std::time::Duration::from_secs(7200)));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<SettingsFile>("stak = \"typo\"").is_err());
    }

    #[test]
    fn bad_inputs_are_usage_errors() {
        let mut a = args("demo");
        a.id.stack = None;
        let err = stack_spec(&a, &SettingsFile::default(), region()).unwrap_err();
        assert!(err.to_string().contains("--stack"), "{err}");
        assert_eq!(err.exit_code(), crate::provision::error::ExitCode::Usage);

        let mut a = args("demo");
        a.shape.no_localhost_callback = true;
        assert!(
            stack_spec(&a, &SettingsFile::default(), region()).unwrap_err().to_string().contains("no callback URLs")
        );

        let mut a = args("demo");
        a.id.user_pool_id = Some("eu-west-1_abc".into());
        assert!(
            stack_spec(&a, &SettingsFile::default(), region()).unwrap_err().to_string().contains("--region eu-west-1")
        );

        let mut a = args("demo");
        a.shape.ttl = Some("forever".into());
        let text = stack_spec(&a, &SettingsFile::default(), region()).unwrap_err().to_string();
        assert!(text.contains("ttl") && text.contains("such as 30m, 2h"), "{text}");
        assert!(!text.contains("expected number"), "no parser internals: {text}");

        let mut a = args("demo");
        a.shape.callback_urls = (0..100).map(|i| format!("https://e.example.com/{i}")).collect();
        assert!(stack_spec(&a, &SettingsFile::default(), region()).unwrap_err().to_string().contains("at most 100"));
    }
}
