//! Outputs: the env file, the `policies.json` stanza and a starter routes file,
//! rendered from the handlebars templates in `templates/` and merged into what
//! is already on disk.
//!
//! Rules: other keys and policies are kept; a file is rewritten only when its
//! content changes; writes are atomic (temp file in the same directory, fsync,
//! rename); the env file is mode 0600 because it holds the client secret. A
//! file that cannot be parsed is never overwritten.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use handlebars::{Handlebars, handlebars_helper};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::{Error, Result};
use super::spec::StackSpec;
use crate::contract::{self, HostedUiDomain, Region, StackUrls, UserPoolId, env_keys};
use crate::secret::Secret;

const ENV_TEMPLATE: &str = include_str!("../../templates/provision/env.hbs");
const ROUTES_TEMPLATE: &str = include_str!("../../templates/provision/routes.oas.json.hbs");

/// Upstream of the starter route until the user points it at their server.
pub(crate) const STARTER_UPSTREAM: &str = "http://localhost:8000/mcp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileOutcome {
    Created,
    Updated,
    Unchanged,
}

pub(crate) fn label(outcome: FileOutcome) -> &'static str {
    match outcome {
        FileOutcome::Created => "created",
        FileOutcome::Updated => "updated",
        FileOutcome::Unchanged => "unchanged",
    }
}

/// What goes into the env file.
#[derive(Debug, Clone)]
pub(crate) struct EnvValues<'a> {
    pub(crate) stack: &'a str,
    pub(crate) region: &'a Region,
    pub(crate) user_pool_id: &'a str,
    pub(crate) user_pool_domain: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a Secret,
    /// The gateway's public URL (its callback is registered at Cognito).
    pub(crate) public_url: &'a str,
    /// The endpoint override `up` ran against, if any (an emulator).
    pub(crate) aws_endpoint: Option<&'a str>,
}

impl<'a> EnvValues<'a> {
    /// The values for `spec`'s stack once it exists in Cognito.
    pub(crate) fn new(
        spec: &'a StackSpec,
        aws_endpoint: Option<&'a str>,
        user_pool_id: &'a str,
        user_pool_domain: &'a str,
        client_id: &'a str,
        client_secret: &'a Secret,
    ) -> Self {
        Self {
            stack: spec.stack.as_str(),
            region: &spec.region,
            user_pool_id,
            user_pool_domain,
            client_id,
            client_secret,
            public_url: spec.public_url(),
            aws_endpoint,
        }
    }

    /// The four URLs the gateway will derive from these values.
    pub(crate) fn urls(&self) -> Result<StackUrls> {
        let pool = UserPoolId::parse(self.user_pool_id)?;
        let domain = HostedUiDomain::parse(self.user_pool_domain)?;
        Ok(StackUrls::derive(self.region, &pool, &domain, self.aws_endpoint)?)
    }

    fn entries(&self) -> Vec<(&'static str, &'a str)> {
        let mut entries = vec![
            (env_keys::USER_POOL_ID, self.user_pool_id),
            (env_keys::USER_POOL_DOMAIN, self.user_pool_domain),
            (env_keys::CLIENT_ID, self.client_id),
            (env_keys::CLIENT_SECRET, self.client_secret.expose()),
            (env_keys::PUBLIC_URL, self.public_url),
        ];
        entries.extend(self.aws_endpoint.map(|endpoint| (env_keys::AWS_ENDPOINT_URL, endpoint)));
        entries
    }
}

fn engine() -> Handlebars<'static> {
    handlebars_helper!(json_helper: |v: Json| v.to_string());
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("json", Box::new(json_helper));
    hb
}

fn render_template(template: &str, data: &Value) -> Result<String> {
    engine().render_template(template, data).map_err(|e| Error::Internal(format!("template error: {e}")))
}

/// The env block for the given values, as the template lays it out.
pub(crate) fn render_env_block(values: &EnvValues) -> Result<String> {
    let entries: Vec<Value> =
        values.entries().into_iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
    render_template(
        ENV_TEMPLATE,
        &json!({ "stack": values.stack, "region": values.region.as_str(), "entries": entries }),
    )
}

/// The key of a dotenv line (`KEY=…` or `export KEY=…`), if it is an assignment.
fn env_key(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// Merges the rendered block into an existing env file: our keys are replaced
/// where they stand (later duplicates dropped), a key of ours that the block no
/// longer has (an endpoint override from an earlier run) is dropped, other
/// lines are kept verbatim, and missing keys appended with the template's
/// comment.
pub(crate) fn merge_env(existing: Option<&str>, block: &str) -> String {
    let Some(existing) = existing.filter(|e| !e.trim().is_empty()) else { return block.to_owned() };
    let ours: HashMap<&str, &str> = block.lines().filter_map(|l| Some((env_key(l)?, l))).collect();
    let mut written: Vec<&str> = Vec::new();
    let mut out = String::with_capacity(existing.len() + block.len());
    for line in existing.lines() {
        match env_key(line).and_then(|k| ours.get_key_value(k)) {
            Some((key, ours_line)) => {
                if !written.contains(key) {
                    out.push_str(ours_line);
                    out.push('\n');
                    written.push(key);
                }
            }
            None if env_key(line).is_some_and(|key| env_keys::ALL.contains(&key)) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if written.len() < ours.len() {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        for line in block.lines() {
            match env_key(line) {
                Some(key) if written.contains(&key) => {}
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

pub(crate) fn read_env_file(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file("read", path, e)),
    }
}

pub(crate) fn write_env_file(path: &Path, values: &EnvValues) -> Result<FileOutcome> {
    let existing = read_env_file(path)?;
    let merged = merge_env(existing.as_deref(), &render_env_block(values)?);
    write_if_changed(path, existing.as_deref(), &merged, Some(0o600))
}

/// The policy stanza as JSON (never holds a secret: only `$env(...)` references).
pub(crate) fn render_policy(policy_name: &str, region: &Region) -> Result<Value> {
    serde_json::to_value(contract::cognito_stanza(policy_name, region))
        .map_err(|e| Error::Internal(format!("cannot serialize the policy stanza: {e}")))
}

/// Inserts or replaces the stanza by `name`; every other policy is kept in place.
pub(crate) fn merge_policies(existing: Option<&str>, stanza: Value, path: &Path) -> Result<String> {
    let mut document: Value = match existing.filter(|t| !t.trim().is_empty()) {
        None => json!({ "policies": [] }),
        Some(text) => serde_json::from_str(text).map_err(|e| Error::FileContent {
            path: path.to_owned(),
            problem: format!(
                "not valid JSON (line {}, column {}: {e}); fix it or move it away — cognigate does not overwrite a file it cannot read",
                e.line(),
                e.column()
            ),
        })?,
    };
    let policies = document
        .as_object_mut()
        .ok_or_else(|| shape_error(path))?
        .entry("policies")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| shape_error(path))?;
    let name = stanza.get("name").cloned();
    match policies.iter_mut().find(|p| p.get("name") == name.as_ref()) {
        Some(slot) => *slot = stanza,
        None => policies.push(stanza),
    }
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| Error::Internal(format!("cannot serialize the policies file: {e}")))?;
    text.push('\n');
    Ok(text)
}

fn shape_error(path: &Path) -> Error {
    Error::FileContent {
        path: path.to_owned(),
        problem: "expected an object with a \"policies\" array ({\"policies\": [...]}); fix it or pass --policies-file"
            .into(),
    }
}

pub(crate) fn write_policies_file(path: &Path, policy_name: &str, region: &Region) -> Result<FileOutcome> {
    let existing = read_env_file(path)?;
    let merged = merge_policies(existing.as_deref(), render_policy(policy_name, region)?, path)?;
    write_if_changed(path, existing.as_deref(), &merged, None)
}

/// Writes a starter routes file only when none exists: routes are the user's.
pub(crate) fn write_starter_routes(path: &Path, policy_name: &str) -> Result<FileOutcome> {
    if path.exists() {
        return Ok(FileOutcome::Unchanged);
    }
    let text =
        render_template(ROUTES_TEMPLATE, &json!({ "policy_name": policy_name, "upstream_url": STARTER_UPSTREAM }))?;
    write_if_changed(path, None, &text, None)
}

/// The slug of the starter route (`/mcp/example`).
pub(crate) const STARTER_SLUG: &str = "example";

/// The route slugs of a routes file (`/mcp/{slug}` paths, Zuplo's
/// `paths` object); a missing file stands for the starter route `up` writes.
pub(crate) fn route_slugs(path: &Path) -> Result<Vec<String>> {
    let Some(text) = read_env_file(path)? else { return Ok(vec![STARTER_SLUG.to_owned()]) };
    let document: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::FileContent { path: path.to_owned(), problem: format!("not JSON: {e}") })?;
    let paths = document.get("paths").and_then(|p| p.as_object()).into_iter().flatten();
    let mut slugs: Vec<String> = paths
        .filter_map(|(route, _)| route.strip_prefix("/mcp/"))
        .filter(|slug| !slug.is_empty() && !slug.contains('/'))
        .map(str::to_owned)
        .collect();
    slugs.sort();
    slugs.dedup();
    Ok(slugs)
}

/// Atomic write (temp file + fsync + rename) when the content differs; a
/// wanted mode is also enforced on an unchanged file.
pub(crate) fn write_if_changed(
    path: &Path,
    existing: Option<&str>,
    content: &str,
    mode: Option<u32>,
) -> Result<FileOutcome> {
    if existing == Some(content) {
        if let Some(mode) = mode {
            set_mode(path, mode)?;
        }
        return Ok(FileOutcome::Unchanged);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::file("create directory", dir, e))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".cognigate-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::file("create a temporary file in", dir, e))?;
    // tempfile creates files 0600; others keep their mode, or get the usual 0644.
    let existing_mode = existing.and_then(|_| file_mode(path));
    set_mode(temp.path(), mode.or(existing_mode).unwrap_or(0o644))?;
    temp.write_all(content.as_bytes()).map_err(|e| Error::file("write", temp.path(), e))?;
    temp.as_file().sync_all().map_err(|e| Error::file("sync", temp.path(), e))?;
    temp.persist(path).map_err(|e| Error::file("replace", path, e.error))?;
    Ok(if existing.is_some() { FileOutcome::Updated } else { FileOutcome::Created })
}

/// What `destroy --clean-files` did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cleaned {
    /// Nothing of ours was in it (or it does not exist).
    Unchanged,
    /// Our part was removed, everything else kept.
    Updated,
    /// It held nothing but our part, so the file itself was removed.
    Removed,
}

pub(crate) fn cleaned_label(outcome: Cleaned) -> &'static str {
    match outcome {
        Cleaned::Unchanged => "unchanged",
        Cleaned::Updated => "cleaned",
        Cleaned::Removed => "removed",
    }
}

/// Whether `line` is one of the comment lines of the env template (the
/// literal text before the first `{{` of a template comment line).
fn is_template_comment(line: &str) -> bool {
    ENV_TEMPLATE.lines().filter(|t| t.starts_with('#')).any(|template| match template.split_once("{{") {
        Some((fixed, _)) => fixed.len() > 2 && line.starts_with(fixed),
        None => line.trim_end() == template.trim_end(),
    })
}

/// Removes our keys ([`env_keys::ALL`]) and the template's comment lines from an
/// env file, keeping every other line verbatim. A blank line that only
/// separated our block from what came before goes with it.
pub(crate) fn strip_env(existing: &str) -> String {
    let lines: Vec<&str> = existing.lines().collect();
    let ours = |line: &str| env_key(line).is_some_and(|k| env_keys::ALL.contains(&k)) || is_template_comment(line);
    let mut keep: Vec<bool> = lines.iter().map(|l| !ours(l)).collect();
    let mut i = 0;
    while i < lines.len() {
        if keep[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !keep[i] {
            i += 1;
        }
        let blank_before = start > 0 && keep[start - 1] && lines[start - 1].trim().is_empty();
        let blank_or_end_after = i == lines.len() || lines[i].trim().is_empty();
        if blank_before && blank_or_end_after {
            keep[start - 1] = false;
        }
    }
    let mut out = String::with_capacity(existing.len());
    for (line, kept) in lines.iter().zip(&keep) {
        if *kept {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Removes the policy named `policy_name` from a policies document; `None`
/// when there is none (the text is then left exactly as it is).
pub(crate) fn strip_policy(existing: &str, policy_name: &str, path: &Path) -> Result<Option<String>> {
    if existing.trim().is_empty() {
        return Ok(None);
    }
    let mut document: Value = serde_json::from_str(existing).map_err(|e| Error::FileContent {
        path: path.to_owned(),
        problem: format!(
            "not valid JSON (line {}, column {}: {e}); cognigate does not rewrite a file it cannot read",
            e.line(),
            e.column()
        ),
    })?;
    let Some(policies) = document.get_mut("policies").and_then(Value::as_array_mut) else { return Ok(None) };
    let before = policies.len();
    policies.retain(|p| p.get("name").and_then(Value::as_str) != Some(policy_name));
    if policies.len() == before {
        return Ok(None);
    }
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| Error::Internal(format!("cannot serialize the policies file: {e}")))?;
    text.push('\n');
    Ok(Some(text))
}

/// `destroy --clean-files` on the env file: our keys and comments go, the
/// rest stays (with its mode); a file left empty is removed.
pub(crate) fn clean_env_file(path: &Path) -> Result<Cleaned> {
    let Some(existing) = read_env_file(path)? else { return Ok(Cleaned::Unchanged) };
    let stripped = strip_env(&existing);
    if stripped.trim().is_empty() {
        std::fs::remove_file(path).map_err(|e| Error::file("remove", path, e))?;
        return Ok(Cleaned::Removed);
    }
    match write_if_changed(path, Some(&existing), &stripped, None)? {
        FileOutcome::Unchanged => Ok(Cleaned::Unchanged),
        _ => Ok(Cleaned::Updated),
    }
}

/// `destroy --clean-files` on the policies file: our stanza goes, every
/// other policy stays. A file that held nothing but our stanza (as `up`
/// creates it) is removed; one with anything else in it is kept.
pub(crate) fn clean_policies_file(path: &Path, policy_name: &str) -> Result<Cleaned> {
    let Some(existing) = read_env_file(path)? else { return Ok(Cleaned::Unchanged) };
    match strip_policy(&existing, policy_name, path)? {
        None => Ok(Cleaned::Unchanged),
        Some(text) if serde_json::from_str::<Value>(&text).ok() == Some(json!({ "policies": [] })) => {
            std::fs::remove_file(path).map_err(|e| Error::file("remove", path, e))?;
            Ok(Cleaned::Removed)
        }
        Some(text) => {
            write_if_changed(path, Some(&existing), &text, None)?;
            Ok(Cleaned::Updated)
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::file("set permissions of", path, e))
}

#[cfg(unix)]
fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Region {
        Region::parse(code).unwrap()
    }

    fn values<'a>(secret: &'a Secret, region: &'a Region) -> EnvValues<'a> {
        EnvValues {
            stack: "demo",
            region,
            user_pool_id: "us-east-1_abc",
            user_pool_domain: "demo-1.auth.us-east-1.amazoncognito.com",
            client_id: "client123",
            client_secret: secret,
            public_url: "https://mcp.example.com",
            aws_endpoint: None,
        }
    }

    #[test]
    fn fresh_env_file_is_the_template() {
        let secret = Secret::new("s3cret");
        let us_east_1 = region("us-east-1");
        let block = render_env_block(&values(&secret, &us_east_1)).unwrap();
        let parsed = crate::dotenv::parse(&block).unwrap();
        assert_eq!(parsed["COGNITO_USER_POOL_ID"], "us-east-1_abc");
        assert_eq!(parsed["COGNITO_USER_POOL_DOMAIN"], "demo-1.auth.us-east-1.amazoncognito.com");
        assert_eq!(parsed["COGNITO_CLIENT_ID"], "client123");
        assert_eq!(parsed["COGNITO_CLIENT_SECRET"], "s3cret");
        assert_eq!(parsed["COGNIGATE_PUBLIC_URL"], "https://mcp.example.com");
        assert!(!parsed.contains_key("AWS_ENDPOINT_URL"), "no override, no endpoint key");
        assert_eq!(merge_env(None, &block), block);
    }

    #[test]
    fn an_endpoint_override_is_written_and_dropped_again_without_one() {
        let secret = Secret::new("s3cret");
        let us_east_1 = region("us-east-1");
        let emulated = EnvValues { aws_endpoint: Some("http://127.0.0.1:5000"), ..values(&secret, &us_east_1) };
        let block = render_env_block(&emulated).unwrap();
        assert_eq!(crate::dotenv::parse(&block).unwrap()["AWS_ENDPOINT_URL"], "http://127.0.0.1:5000");
        let merged = merge_env(Some("KEEP=1\n"), &block);
        let real = merge_env(Some(&merged), &render_env_block(&values(&secret, &us_east_1)).unwrap());
        let parsed = crate::dotenv::parse(&real).unwrap();
        assert!(!parsed.contains_key("AWS_ENDPOINT_URL"), "{real}");
        assert_eq!(parsed["KEEP"], "1");
    }

    #[test]
    fn merge_keeps_other_keys_and_replaces_ours_in_place() {
        let secret = Secret::new("new-secret");
        let us_east_1 = region("us-east-1");
        let block = render_env_block(&values(&secret, &us_east_1)).unwrap();
        let existing = "# mine\nPORT=9000\nCOGNITO_CLIENT_ID=old\nexport OTHER=\"x y\"\nCOGNITO_CLIENT_ID=dup\n";
        let merged = merge_env(Some(existing), &block);
        let lines: Vec<&str> = merged.lines().collect();
        assert_eq!(&lines[..4], ["# mine", "PORT=9000", "COGNITO_CLIENT_ID=client123", "export OTHER=\"x y\""]);
        assert_eq!(merged.matches("COGNITO_CLIENT_ID=").count(), 1);
        let parsed = crate::dotenv::parse(&merged).unwrap();
        assert_eq!(parsed["COGNITO_CLIENT_SECRET"], "new-secret");
        assert_eq!(parsed["OTHER"], "x y");
        assert_eq!(parsed["PORT"], "9000");
        // Merging again is stable.
        assert_eq!(merge_env(Some(&merged), &block), merged);
    }

    #[test]
    fn stanza_matches_the_contract() {
        let stanza = render_policy("cognito-managed-oauth", &region("eu-west-1")).unwrap();
        let expected = json!({ "name": "cognito-managed-oauth", "policyType": "mcp-cognito-oauth-inbound",
          "handler": { "module": "$import(@zuplo/runtime/mcp-gateway)",
            "export": "McpCognitoOAuthInboundPolicy",
            "options": { "awsRegion": "eu-west-1",
              "userPoolId": "$env(COGNITO_USER_POOL_ID)",
              "userPoolDomain": "$env(COGNITO_USER_POOL_DOMAIN)",
              "clientId": "$env(COGNITO_CLIENT_ID)",
              "clientSecret": "$env(COGNITO_CLIENT_SECRET)" } } });
        assert_eq!(stanza, expected);
    }

    #[test]
    fn policy_names_with_quotes_stay_valid_json() {
        let stanza = render_policy("we\"ird", &region("us-east-1")).unwrap();
        assert_eq!(stanza["name"], "we\"ird");
    }

    #[test]
    fn policies_merge_by_name() {
        let path = Path::new("policies.json");
        let existing = r#"{"policies":[{"name":"rate-limit","policyType":"rate-limit-inbound"},{"name":"cognito-managed-oauth","old":true}]}"#;
        let merged =
            merge_policies(Some(existing), render_policy("cognito-managed-oauth", &region("us-east-1")).unwrap(), path)
                .unwrap();
        let doc: Value = serde_json::from_str(&merged).unwrap();
        let policies = doc["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 2);
        assert_eq!(policies[0]["name"], "rate-limit");
        assert_eq!(policies[1]["policyType"], "mcp-cognito-oauth-inbound");
        assert!(policies[1].get("old").is_none());
        let again =
            merge_policies(Some(&merged), render_policy("cognito-managed-oauth", &region("us-east-1")).unwrap(), path)
                .unwrap();
        assert_eq!(again, merged);
    }

    #[test]
    fn unreadable_policies_are_refused_with_position() {
        let err =
            merge_policies(Some("{\"policies\": [\n  {,}\n]}"), json!({"name": "x"}), Path::new("p.json")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2") && text.contains("does not overwrite"), "{text}");
        let err = merge_policies(Some("[1,2]"), json!({"name": "x"}), Path::new("p.json")).unwrap_err();
        assert!(err.to_string().contains("\"policies\" array"));
    }

    #[test]
    fn starter_routes_point_at_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/routes.oas.json");
        assert_eq!(write_starter_routes(&path, "my-policy").unwrap(), FileOutcome::Created);
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let route = &doc["paths"]["/mcp/example"]["post"]["x-zuplo-route"];
        assert_eq!(route["handler"]["export"], "McpProxyHandler");
        assert_eq!(route["policies"]["inbound"][0], "my-policy");
        assert_eq!(write_starter_routes(&path, "other").unwrap(), FileOutcome::Unchanged);
    }

    #[test]
    fn strip_env_removes_our_keys_and_comments_only() {
        let secret = Secret::new("s3cret");
        let us_east_1 = region("us-east-1");
        let block = render_env_block(&values(&secret, &us_east_1)).unwrap();
        let merged = merge_env(Some("# mine\nPORT=9000\nexport OTHER=\"x y\"\n"), &block);
        assert_eq!(strip_env(&merged), "# mine\nPORT=9000\nexport OTHER=\"x y\"\n");
        // Only our block: nothing left.
        assert_eq!(strip_env(&block), "");
        // Keys replaced in place, among other keys; `export` and duplicates too.
        let text = "A=1\nCOGNITO_CLIENT_ID=x\nB=2\n\nexport COGNITO_CLIENT_SECRET=y\nCOGNITO_CLIENT_SECRET=z\n\nC=3\n";
        assert_eq!(strip_env(text), "A=1\nB=2\n\nC=3\n");
        // Other comments, and look-alike keys, stay.
        let text = "# Amazon is great\nCOGNITO_USER_POOL_ID_OLD=1\nMY_COGNITO_CLIENT_ID=2\n";
        assert_eq!(strip_env(text), text);
        // Idempotent.
        assert_eq!(strip_env(&strip_env(&merged)), strip_env(&merged));
    }

    #[test]
    fn strip_policy_removes_only_the_named_stanza() {
        let path = Path::new("policies.json");
        let existing = r#"{"policies":[{"name":"rate-limit","policyType":"rate-limit-inbound"},{"name":"cognito-managed-oauth","x":1}],"other":true}"#;
        let text = strip_policy(existing, "cognito-managed-oauth", path).unwrap().unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc,
            json!({"policies": [{"name": "rate-limit", "policyType": "rate-limit-inbound"}], "other": true})
        );
        assert_eq!(strip_policy(&text, "cognito-managed-oauth", path).unwrap(), None);
        assert_eq!(strip_policy("", "x", path).unwrap(), None);
        assert_eq!(strip_policy("{}", "x", path).unwrap(), None);
        assert!(strip_policy("{oops", "x", path).unwrap_err().to_string().contains("does not rewrite"));
    }

    #[test]
    fn clean_files_keep_the_rest_and_remove_an_env_file_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let secret = Secret::new("s3cret");
        let us_east_1 = region("us-east-1");
        write_env_file(&env, &values(&secret, &us_east_1)).unwrap();
        assert_eq!(clean_env_file(&env).unwrap(), Cleaned::Removed);
        assert!(!env.exists());
        assert_eq!(clean_env_file(&env).unwrap(), Cleaned::Unchanged);

        std::fs::write(&env, "KEEP=1\n").unwrap();
        write_env_file(&env, &values(&secret, &us_east_1)).unwrap();
        assert_eq!(clean_env_file(&env).unwrap(), Cleaned::Updated);
        assert_eq!(std::fs::read_to_string(&env).unwrap(), "KEEP=1\n");
        assert_eq!(clean_env_file(&env).unwrap(), Cleaned::Unchanged);

        let policies = dir.path().join("policies.json");
        write_policies_file(&policies, "ours", &region("us-east-1")).unwrap();
        // Only our stanza: the file goes (no empty {"policies": []} left behind).
        assert_eq!(clean_policies_file(&policies, "ours").unwrap(), Cleaned::Removed);
        assert!(!policies.exists());
        // Anything else in it: the file stays without our stanza.
        std::fs::write(&policies, "{\"policies\": [], \"note\": \"mine\"}").unwrap();
        write_policies_file(&policies, "ours", &region("us-east-1")).unwrap();
        assert_eq!(clean_policies_file(&policies, "ours").unwrap(), Cleaned::Updated);
        assert_eq!(std::fs::read_to_string(&policies).unwrap(), "{\n  \"policies\": [],\n  \"note\": \"mine\"\n}\n");
        assert_eq!(clean_policies_file(&policies, "ours").unwrap(), Cleaned::Unchanged);
        assert_eq!(clean_policies_file(&dir.path().join("missing.json"), "ours").unwrap(), Cleaned::Unchanged);
    }

    #[cfg(unix)]
    #[test]
    fn env_file_is_private_and_rewritten_only_on_change() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "KEEP=1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let secret = Secret::new("s3cret");
        let us_east_1 = region("us-east-1");
        assert_eq!(write_env_file(&path, &values(&secret, &us_east_1)).unwrap(), FileOutcome::Updated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("KEEP=1\n"));
        assert_eq!(write_env_file(&path, &values(&secret, &us_east_1)).unwrap(), FileOutcome::Unchanged);
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != ".env").collect();
        assert!(leftovers.is_empty(), "temp files left behind");
    }
}
