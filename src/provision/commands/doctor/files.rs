//! The local half of `doctor`: the env file and the policy stanza the gateway
//! boots from, compared with what is in AWS and with what `up` writes.
//! Values are compared, never printed: the env file holds the client secret.

use std::path::Path;

use serde_json::Value;

use super::Check;
use super::aws::Found;
use super::env_file::EnvFile;
use crate::contract::{self, HostedUiDomain, env_keys};
use crate::provision::render;
use crate::provision::spec::StackSpec;

/// Env checks, listed so they can be skipped by name when there is no pool.
pub(super) const ENV_CHECKS: [(&str, &str); 2] =
    [("env-file", "env file matches AWS"), ("env-domain", "env file's hosted UI domain")];

/// `--stack S`, plus `--user-pool-id` for an adopted pool: what `outputs` and
/// `up` need to find this stack again.
fn stack_flags(spec: &StackSpec, found: &Found) -> String {
    let mut flags = format!("--stack {}", spec.stack);
    if found.adopted {
        flags.push_str(&format!(" --user-pool-id {}", found.pool.id));
    }
    if spec.files.env_file != Path::new(".env") {
        flags.push_str(&format!(" --env-file {}", spec.files.env_file.display()));
    }
    flags
}

pub(super) fn env_checks(
    env: &EnvFile,
    found: &Found,
    spec: &StackSpec,
    endpoint: Option<&str>,
    gateway_url: Option<&str>,
    login_host: Option<String>,
) -> Vec<Check> {
    let rewrite = format!(
        "run `cognigate outputs {}`: it re-writes these keys from AWS and keeps the other lines",
        stack_flags(spec, found)
    );
    let values = match &env.values {
        Ok(values) => values,
        Err(problem) => {
            let detail = format!("{}: {problem}", env.path.display());
            return vec![
                Check::fail("env-file", ENV_CHECKS[0].1, detail, rewrite),
                Check::skip("env-domain", ENV_CHECKS[1].1, "needs the env file"),
            ];
        }
    };
    let get = |key: &str| values.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let mut problems: Vec<String> = Vec::new();
    match get(env_keys::USER_POOL_ID) {
        None => problems.push(format!("{} is missing", env_keys::USER_POOL_ID)),
        Some(id) if id != found.pool.id => {
            problems.push(format!("{} is {id}, but the stack's pool is {}", env_keys::USER_POOL_ID, found.pool.id))
        }
        Some(_) => {}
    }
    let client = found.client.as_ref();
    match get(env_keys::CLIENT_ID) {
        None => problems.push(format!("{} is missing", env_keys::CLIENT_ID)),
        Some(id) if client.is_none_or(|c| c.id != id) => {
            problems.push(format!("{} is {id}, which is no app client of pool {}", env_keys::CLIENT_ID, found.pool.id))
        }
        Some(id) if found.stack_client_id.as_deref().is_some_and(|ours| ours != id) => problems.push(format!(
            "{} is {id}, not the stack's client {} ({})",
            env_keys::CLIENT_ID,
            found.stack_client_id.as_deref().unwrap_or_default(),
            spec.client_name()
        )),
        Some(_) => {}
    }
    match (get(env_keys::CLIENT_SECRET), client.and_then(|c| c.secret.as_ref())) {
        (None, Some(_)) => problems.push(format!("{} is missing", env_keys::CLIENT_SECRET)),
        (Some(written), Some(actual)) if written != actual.expose() => problems.push(format!(
            "{} differs from the client's secret in AWS (rotated, or another client's)",
            env_keys::CLIENT_SECRET
        )),
        _ => {}
    }
    match (get(env_keys::PUBLIC_URL), gateway_url) {
        (None, _) => problems.push(format!("{} is missing", env_keys::PUBLIC_URL)),
        (Some(written), Some(wanted)) if written.trim_end_matches('/') != wanted.trim_end_matches('/') => {
            problems.push(format!("{} is {written}, but --gateway-url is {wanted}", env_keys::PUBLIC_URL))
        }
        _ => {}
    }
    match (get(env_keys::AWS_ENDPOINT_URL), endpoint) {
        (Some(written), None) => problems.push(format!(
            "{} is {written}: the gateway would fetch keys from there, but this stack is in AWS",
            env_keys::AWS_ENDPOINT_URL
        )),
        (written, Some(wanted)) if written.map(|w| w.trim_end_matches('/')) != Some(wanted.trim_end_matches('/')) => {
            problems
                .push(format!("{} should be {wanted} (the endpoint this stack lives at)", env_keys::AWS_ENDPOINT_URL))
        }
        _ => {}
    }
    let env_check = if problems.is_empty() {
        Check::pass("env-file", ENV_CHECKS[0].1, format!("{}: ids, secret and public URL match", env.path.display()))
    } else {
        Check::fail(
            "env-file",
            ENV_CHECKS[0].1,
            format!("{}: {}", env.path.display(), problems.join("; ")),
            rewrite.clone(),
        )
    };
    vec![env_check, domain_check(get(env_keys::USER_POOL_DOMAIN), found, login_host, &rewrite)]
}

/// The guide's first pitfall: a domain written as a URL (scheme, slash, path).
fn domain_check(written: Option<&str>, found: &Found, login_host: Option<String>, rewrite: &str) -> Check {
    let (id, title) = ENV_CHECKS[1];
    let Some(expected) = found.domain_host.as_deref() else {
        return Check::skip(id, title, "needs the pool's domain");
    };
    let host_only = format!("set {}={expected} (the host only)", env_keys::USER_POOL_DOMAIN);
    let Some(written) = written else {
        return Check::fail(id, title, format!("{} is missing", env_keys::USER_POOL_DOMAIN), rewrite);
    };
    if let Err(e) = HostedUiDomain::parse(written) {
        return Check::fail(id, title, format!("{}: {e}", env_keys::USER_POOL_DOMAIN), host_only);
    }
    if written == expected {
        return Check::pass(id, title, written);
    }
    // The local mode points the domain at the local login page on purpose.
    if login_host.as_deref() == Some(written) {
        return Check::pass(id, title, format!("{written} (the local login page, standing in for {expected})"));
    }
    Check::fail(
        id,
        title,
        format!("{} is {written}, but the pool's domain is {expected}", env_keys::USER_POOL_DOMAIN),
        host_only,
    )
}

/// The stanza in the policies file must be exactly the one `up` writes.
pub(super) fn stanza_check(spec: &StackSpec) -> Check {
    const TITLE: &str = "policy stanza";
    let files = &spec.files;
    let fix = format!(
        "run `cognigate outputs --stack {}`: it writes the stanza {:?} into {} and keeps the other policies",
        spec.stack,
        files.policy_name,
        files.policies_file.display()
    );
    let text = match render::read_env_file(&files.policies_file) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Check::fail(
                "policy-stanza",
                TITLE,
                format!("{} does not exist", files.policies_file.display()),
                fix,
            );
        }
        Err(e) => return Check::fail("policy-stanza", TITLE, e.to_string(), fix),
    };
    let document: Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(e) => {
            return Check::fail(
                "policy-stanza",
                TITLE,
                format!("{}: not valid JSON: {e}", files.policies_file.display()),
                fix,
            );
        }
    };
    let stanza = document.get("policies").and_then(Value::as_array).and_then(|policies| {
        policies.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(&files.policy_name))
    });
    let Some(stanza) = stanza else {
        return Check::fail(
            "policy-stanza",
            TITLE,
            format!("{} has no policy named {:?}", files.policies_file.display(), files.policy_name),
            fix,
        );
    };
    let expected = match serde_json::to_value(contract::cognito_stanza(&files.policy_name, &spec.region)) {
        Ok(value) => value,
        Err(e) => {
            return Check::fail("policy-stanza", TITLE, format!("cannot build the stanza (a cognigate bug): {e}"), fix);
        }
    };
    if *stanza == expected {
        return Check::pass(
            "policy-stanza",
            TITLE,
            format!("{} in {}", files.policy_name, files.policies_file.display()),
        );
    }
    let options = |v: &Value| v.pointer("/handler/options").cloned().unwrap_or(Value::Null);
    let (have, want) = (options(stanza), options(&expected));
    let mut differ: Vec<String> = want
        .as_object()
        .map(|want| {
            want.iter()
                .filter(|(k, v)| have.get(k.as_str()) != Some(v))
                .map(|(k, v)| format!("{k} should be {v}"))
                .collect()
        })
        .unwrap_or_default();
    if differ.is_empty() {
        differ.push("its type, handler or extra options differ from what `cognigate up` writes".to_owned());
    }
    Check::fail(
        "policy-stanza",
        TITLE,
        format!("{:?} in {}: {}", files.policy_name, files.policies_file.display(), differ.join("; ")),
        fix,
    )
}
