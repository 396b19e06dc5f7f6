//! Property tests standing in for fuzzing: each runs a fixed number of
//! generated cases inside `cargo test` (bounded time, stable toolchain), and a
//! failing case is written to `proptest-regressions/fuzz_tests.txt`, which is
//! committed and replayed first on every run. Targets: the env-file merger
//! and stripper, the policies merger, the policies+routes loader with `$env`
//! substitution, domain and callback validation, and the gateway's parsing
//! of redirect URIs, PKCE values, `Authorization` headers, CIDRs and `Host`.
//!
//! Cases per property are in [`CASES`] and [`LOADER_CASES`]; the total per
//! run is what the security notes quote.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use crate::contract::env_keys;
use crate::gateway::client_address::Cidr;
use crate::gateway::clients::check_redirect_uri;
use crate::gateway::crypto::{is_valid_challenge, pkce_challenge, verify_pkce};
use crate::gateway::oauth::client_auth::basic_credentials;
use crate::gateway::security::is_loopback_host;
use crate::provision::render::{merge_env, merge_policies, strip_env};
use crate::provision::validate;

/// Cases per cheap property.
pub(crate) const CASES: u32 = 2_000;
/// Cases for the config loader, which writes two files per case.
pub(crate) const LOADER_CASES: u32 = 200;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/fuzz_tests.txt"))),
        ..Config::default()
    }
}

/// Env-file lines: ours, others, comments, blanks, odd spacing and junk.
fn env_line() -> impl Strategy<Value = String> {
    let ours = proptest::sample::select(env_keys::ALL.to_vec());
    prop_oneof![
        (ours.clone(), "[ -~]{0,20}").prop_map(|(k, v)| format!("{k}={v}")),
        (ours, "[ -~]{0,10}").prop_map(|(k, v)| format!("  {k} = {v}")),
        ("[A-Z_]{1,12}", "[ -~]{0,20}").prop_map(|(k, v)| format!("{k}={v}")),
        "#[ -~]{0,30}",
        Just(String::new()),
        "[ -~\t]{0,40}",
    ]
}

fn env_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(env_line(), 0..20).prop_map(|lines| lines.join("\n"))
}

fn block() -> String {
    env_keys::ALL.iter().take(4).map(|key| format!("{key}=value-of-{key}\n")).collect()
}

fn key_of(line: &str) -> Option<&str> {
    line.split_once('=').map(|(k, _)| k.trim()).filter(|k| !k.is_empty() && !k.starts_with('#'))
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn env_merge_keeps_other_lines_sets_ours_once_and_is_idempotent(existing in env_text()) {
        let block = block();
        let merged = merge_env(Some(&existing), &block);
        prop_assert_eq!(merge_env(Some(&merged), &block), merged.clone(), "idempotent");
        for line in block.lines() {
            prop_assert_eq!(merged.lines().filter(|l| *l == line).count(), 1, "{} once", line);
        }
        // A file of blanks only counts as empty: the block replaces it.
        for line in existing.lines().filter(|_| !existing.trim().is_empty()) {
            let ours = key_of(line).is_some_and(|k| env_keys::ALL.contains(&k));
            if !ours {
                prop_assert!(merged.lines().any(|l| l == line), "kept: {:?}", line);
            }
        }
        let stripped = strip_env(&merged);
        prop_assert!(stripped.lines().all(|l| !key_of(l).is_some_and(|k| env_keys::ALL.contains(&k))));
    }

    #[test]
    fn policies_merge_never_panics_and_holds_the_stanza_once(
        text in prop_oneof![
            "[ -~]{0,60}",
            proptest::collection::vec(("[a-z-]{1,8}", any::<u8>()), 0..5).prop_map(|policies| {
                let list: Vec<_> = policies.iter().map(|(n, x)| serde_json::json!({"name": n, "x": x})).collect();
                serde_json::json!({"policies": list}).to_string()
            }),
        ]
    ) {
        let stanza = serde_json::json!({"name": "cognito", "policyType": "t"});
        let path = std::path::Path::new("config/policies.json");
        if let Ok(merged) = merge_policies(Some(&text), stanza.clone(), path) {
            let doc: serde_json::Value = serde_json::from_str(&merged).unwrap();
            let named = doc["policies"].as_array().unwrap().iter().filter(|p| p["name"] == "cognito").count();
            prop_assert_eq!(named, 1);
            prop_assert_eq!(merge_policies(Some(&merged), stanza, path).unwrap(), merged);
        }
    }

    #[test]
    fn domain_and_callback_validation_never_panic_and_accept_only_sane_values(value in "[ -~]{0,80}") {
        if validate::domain_prefix(&value).is_ok() {
            prop_assert!(value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{}", value);
        }
        if validate::callback_url(&value).is_ok() {
            prop_assert!(!value.contains('#'), "{}", value);
        }
        if let Ok(url) = validate::gateway_url(&value) {
            prop_assert!(url.starts_with("https://") || url.starts_with("http://"), "{}", url);
        }
        let _ = validate::custom_domain(&value);
        let _ = crate::contract::Region::parse(&value);
        let _ = crate::contract::UserPoolId::parse(&value);
        let _ = crate::contract::HostedUiDomain::parse(&value);
    }

    #[test]
    fn redirect_uris_accepted_are_absolute_without_fragment_or_script_schemes(
        uri in prop_oneof![
            "[ -~]{0,60}",
            ("(https?|javascript|data|file|cursor|JavaScript|vbscript)", "(:|://)", "[ -~]{0,40}")
                .prop_map(|(s, sep, rest)| format!("{s}{sep}{rest}")),
        ]
    ) {
        if check_redirect_uri(&uri).is_ok() {
            let url = url::Url::parse(&uri).unwrap();
            prop_assert!(url.fragment().is_none());
            prop_assert!(!["javascript", "data", "file", "vbscript"].contains(&url.scheme()), "{}", uri);
            if url.scheme() == "http" {
                prop_assert!(crate::contract::is_loopback(&url), "{}", uri);
            }
        }
    }

    #[test]
    fn pkce_round_trips_and_only_s256_shapes_are_challenges(verifier in "[A-Za-z0-9._~-]{43,128}", junk in "[ -~]{0,100}") {
        let challenge = pkce_challenge(&verifier);
        prop_assert!(is_valid_challenge(&challenge));
        prop_assert!(verify_pkce(&verifier, &challenge));
        let tampered = format!("{}x", verifier);
        prop_assert!(!verify_pkce(&tampered, &challenge));
        if is_valid_challenge(&junk) {
            prop_assert_eq!(junk.len(), 43);
        }
    }

    #[test]
    fn authorization_headers_never_panic_and_basic_round_trips(
        raw in "[ -~]{0,80}",
        id in "[ -~]{0,20}",
        secret in "[ -~]{0,20}",
    ) {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(value) = axum::http::HeaderValue::from_str(&raw) {
            headers.insert(axum::http::header::AUTHORIZATION, value);
            let _ = basic_credentials(&headers);
        }
        let escape = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", escape(&id), escape(&secret)),
        );
        headers.insert(axum::http::header::AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
        prop_assert_eq!(basic_credentials(&headers).ok().flatten(), Some((id, secret)));
    }

    #[test]
    fn cidrs_and_hosts_never_panic(value in "[ -~]{0,50}", ip in any::<std::net::IpAddr>()) {
        if let Ok(net) = value.parse::<Cidr>() {
            let _ = net.contains(ip);
        }
        let _ = is_loopback_host(&value);
        let bare: Cidr = ip.to_string().parse().unwrap();
        prop_assert!(bare.contains(ip));
    }
}

proptest! {
    #![proptest_config(config(LOADER_CASES))]

    /// Whatever the env holds, loading never panics; values without JSON or
    /// `$env` syntax of their own substitute into a config that loads.
    #[test]
    fn config_loader_with_env_substitution_never_panics(
        client_id in "[ -~]{0,30}",
        pool_suffix in "[A-Za-z0-9]{1,12}",
        upstream in "[ -~]{0,40}",
        slug in "[a-z0-9-]{0,12}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let policies = serde_json::json!({"policies": [crate::contract::cognito_stanza("cognito", &crate::contract::Region::parse("us-east-1").unwrap())]});
        let op = serde_json::json!({"x-zuplo-route": {
            "handler": {"export": "McpProxyHandler", "module": "$import(@zuplo/runtime)", "options": {"rewritePattern": "$env(UPSTREAM)"}},
            "policies": {"inbound": ["cognito"]}
        }});
        let routes = serde_json::json!({"paths": {format!("/mcp/{slug}"): {"post": op}}});
        std::fs::write(dir.path().join("policies.json"), policies.to_string()).unwrap();
        std::fs::write(dir.path().join("routes.oas.json"), routes.to_string()).unwrap();
        let env = crate::gateway::Env::from_pairs([
            (env_keys::USER_POOL_ID, format!("us-east-1_{pool_suffix}")),
            (env_keys::USER_POOL_DOMAIN, "auth.example.com".to_owned()),
            (env_keys::CLIENT_ID, client_id),
            (env_keys::CLIENT_SECRET, "secret".to_owned()),
            ("UPSTREAM", upstream),
        ]);
        let _ = crate::gateway::GatewayConfig::load(dir.path(), &env);
    }
}
