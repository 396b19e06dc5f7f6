//! The contract checked from both ends, in process: what the provisioning path
//! writes is read back by the gateway's loader, and both sides accept and
//! refuse the same identifiers. A copy of a rule on either side, or a
//! derivation that drifts, fails here.

use std::path::Path;

use serde_json::json;

use crate::contract::{Region, StackUrls};
use crate::gateway::config::{Env, GatewayConfig};
use crate::gateway::policy::OAuthPolicy;
use crate::provision::cli::{GlobalArgs, OutputFormat, StackArgs, StackIdArgs};
use crate::provision::plan::tests_support;
use crate::provision::render::{self, EnvValues};
use crate::provision::settings::{self, SettingsFile};
use crate::secret::Secret;

const POOL: &str = "us-east-1_Contract1";
const DOMAIN: &str = "demo-prefix.auth.us-east-1.amazoncognito.com";

/// Writes the three files exactly as `up` does into `dir`, and returns the
/// URLs `up --output json` prints for them.
fn write_as_up(dir: &Path, aws_endpoint: Option<&str>) -> StackUrls {
    let mut spec = tests_support::spec();
    spec.files.env_file = dir.join(".env");
    spec.files.policies_file = dir.join("config/policies.json");
    spec.files.routes_file = dir.join("config/routes.oas.json");
    let secret = Secret::new("contract-secret");
    let values = EnvValues::new(&spec, aws_endpoint, POOL, DOMAIN, "contract-client", &secret);
    render::write_env_file(&spec.files.env_file, &values).unwrap();
    render::write_policies_file(&spec.files.policies_file, &spec.files.policy_name, &spec.region).unwrap();
    render::write_starter_routes(&spec.files.routes_file, &spec.files.policy_name).unwrap();
    values.urls().unwrap()
}

/// The gateway's view: only the env file's variables (the test process's own
/// environment must not leak in).
fn load_as_gateway(dir: &Path) -> GatewayConfig {
    let text = std::fs::read_to_string(dir.join(".env")).unwrap();
    let env = Env::from_pairs(crate::dotenv::parse(&text).unwrap());
    GatewayConfig::load(&dir.join("config"), &env).unwrap()
}

fn gateway_urls(policy: &OAuthPolicy) -> (String, String, String, String) {
    (
        policy.oidc.issuer.clone(),
        policy.oidc.jwks_url.to_string(),
        policy.browser_login.url.to_string(),
        policy.browser_login.token_url.to_string(),
    )
}

fn printed(urls: &StackUrls) -> (String, String, String, String) {
    (urls.issuer.clone(), urls.jwks.to_string(), urls.authorize.to_string(), urls.token.to_string())
}

#[test]
fn what_up_writes_the_gateway_loads_with_the_same_four_urls() {
    for endpoint in [None, Some("http://127.0.0.1:5000")] {
        let dir = tempfile::tempdir().unwrap();
        let urls = write_as_up(dir.path(), endpoint);
        let config = load_as_gateway(dir.path());
        let route = config.routes.get("example").expect("the starter route");
        assert_eq!(gateway_urls(&route.policy), printed(&urls), "endpoint override: {endpoint:?}");
        assert_eq!(route.policy.browser_login.client_secret.expose(), "contract-secret");
        match endpoint {
            Some(endpoint) => assert!(urls.jwks.as_str().starts_with(endpoint), "{}", urls.jwks),
            None => assert!(urls.jwks.as_str().starts_with(&urls.issuer), "{}", urls.jwks),
        }
    }
}

#[test]
fn the_gateway_learns_the_public_url_up_registered() {
    let dir = tempfile::tempdir().unwrap();
    write_as_up(dir.path(), None);
    let text = std::fs::read_to_string(dir.path().join(".env")).unwrap();
    let written = crate::dotenv::parse(&text).unwrap();
    let spec = tests_support::spec();
    let public_url = &written[crate::contract::env_keys::PUBLIC_URL];
    assert_eq!(public_url, spec.public_url());
    let callback = crate::contract::callback_url(public_url);
    assert!(spec.callback_urls.contains(&callback), "{callback} not among {:?}", spec.callback_urls);
}

fn global() -> GlobalArgs {
    GlobalArgs {
        profile: None,
        region: None,
        endpoint_url: None,
        config: "cognigate.toml".into(),
        output: OutputFormat::Text,
        verbose: 0,
        quiet: false,
        no_color: false,
    }
}

/// The gateway's verdict on a Cognito policy with these options.
fn gateway_accepts(region: &str, pool: &str, domain: &str) -> bool {
    let options = serde_json::from_value(json!({
        "awsRegion": region, "userPoolId": pool, "userPoolDomain": domain,
        "clientId": "c", "clientSecret": "s",
    }))
    .unwrap();
    OAuthPolicy::from_cognito("p", options, &Env::default()).is_ok()
}

#[test]
fn cli_and_gateway_accept_and_refuse_the_same_regions() {
    for region in ["us-east-1", "eu-west-3", "us-gov-west-1", "ap-southeast-2", "us-east-0", "us-east", "US-EAST-1", ""]
    {
        let mut global = global();
        global.region = Some(region.to_owned());
        let cli = !region.is_empty() && settings::aws_target(&global, &SettingsFile::default()).is_ok();
        let pool = format!("{region}_Abc123");
        let gateway = gateway_accepts(region, &pool, DOMAIN);
        assert_eq!(cli, gateway, "region {region:?}: cli {cli}, gateway {gateway}");
    }
}

#[test]
fn cli_and_gateway_accept_and_refuse_the_same_pool_ids() {
    let region = Region::parse("us-east-1").unwrap();
    for pool in ["us-east-1_Abc123", "us-east-1_", "us-east-1-Abc", "us-east-1_ab-c", "eu-west-1_Abc123", "nope"] {
        let id = StackIdArgs { stack: Some("demo".into()), user_pool_id: Some(pool.into()) };
        let args = StackArgs { id, ..StackArgs::default() };
        let cli = settings::stack_spec(&args, &SettingsFile::default(), region.clone()).is_ok();
        let gateway = gateway_accepts("us-east-1", pool, DOMAIN);
        assert_eq!(cli, gateway, "pool id {pool:?}: cli {cli}, gateway {gateway}");
    }
}

#[test]
fn cli_and_gateway_accept_and_refuse_the_same_domains() {
    for domain in [
        DOMAIN,
        "auth.example.com",
        "https://auth.example.com",
        "auth.example.com/",
        "auth.example.com/login",
        "auth example.com",
        "",
    ] {
        // What `up` writes goes through the same check before it is written.
        let spec = tests_support::spec();
        let secret = Secret::new("s");
        let cli = EnvValues::new(&spec, None, POOL, domain, "c", &secret).urls().is_ok();
        let gateway = gateway_accepts("us-east-1", POOL, domain);
        assert_eq!(cli, gateway, "domain {domain:?}: cli {cli}, gateway {gateway}");
    }
}
