//! `cognigate doctor` against moto: a healthy stack passes (exit 0), and
//! stacks broken on purpose through the emulator's API or by editing the env
//! file fail the check that names the problem, with its fix (exit 1). One test
//! runs the real gateway and checks its discovery endpoints and 401 challenge.

use std::process::Command;

use serde_json::Value;

use crate::support::cli::{Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;
use crate::support::peers::{Peer, free_port, http_status};

const GATEWAY: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

/// A workspace with a stack `up` made.
fn stack(label: &str, extra: &[&str]) -> (Workspace, String) {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack(label);
    let mut args = vec!["up", "--stack", stack.as_str()];
    args.extend_from_slice(extra);
    ws.run(&args).success();
    (ws, stack)
}

fn doctor(ws: &Workspace, stack: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["doctor", "--stack", stack, "--output", "json"];
    args.extend_from_slice(extra);
    let run = ws.run(&args);
    let doc = run.json();
    (run.code, doc)
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id}: {doc:#}"))
}

/// The failed checks' ids, in order.
fn failed(doc: &Value) -> Vec<String> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An UpdateUserPoolClient request carrying the client's described settings.
fn kept_client_update(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    client_id: &str,
) -> aws_sdk_cognitoidentityprovider::operation::update_user_pool_client::builders::UpdateUserPoolClientFluentBuilder {
    let described = block_on(client.describe_user_pool_client().user_pool_id(pool).client_id(client_id).send())
        .expect("describe client")
        .user_pool_client
        .expect("the client");
    client
        .update_user_pool_client()
        .user_pool_id(pool)
        .client_id(client_id)
        .set_client_name(described.client_name)
        .set_callback_urls(described.callback_urls)
        .set_allowed_o_auth_flows(described.allowed_o_auth_flows)
        .set_allowed_o_auth_scopes(described.allowed_o_auth_scopes)
        .set_supported_identity_providers(described.supported_identity_providers)
        .set_allowed_o_auth_flows_user_pool_client(described.allowed_o_auth_flows_user_pool_client)
        .set_explicit_auth_flows(described.explicit_auth_flows)
        .set_prevent_user_existence_errors(described.prevent_user_existence_errors)
}

fn env_value(ws: &Workspace, key: &str) -> String {
    let env = ws.read(".env");
    env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}")).to_owned()
}

fn set_env(ws: &Workspace, key: &str, value: &str) {
    let env = ws.read(".env");
    let edited: Vec<String> = env
        .lines()
        .map(|l| if l.starts_with(&format!("{key}=")) { format!("{key}={value}") } else { l.to_owned() })
        .collect();
    ws.write(".env", &(edited.join("\n") + "\n"));
}

#[test]
fn a_healthy_stack_passes_every_check() {
    let (ws, stack) = stack("doctor-ok", &[]);
    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["stack"], stack.as_str());
    assert_eq!(doc["region"], "us-east-1");
    assert_eq!(doc["failed"], 0);
    let ids: Vec<&str> = doc["checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    for id in [
        "credentials",
        "user-pool",
        "domain",
        "app-client",
        "client-secret",
        "oauth-flow",
        "scopes",
        "callback-url",
        "env-file",
        "env-domain",
        "policy-stanza",
        "login-page",
        "discovery",
        "jwks",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // moto has no hosted UI: skipped with a note, not failed.
    assert_eq!(check(&doc, "login-page")["status"], "skip");
    assert!(check(&doc, "login-page")["detail"].as_str().unwrap().contains("--login-page"));
    let pool_id = env_value(&ws, "COGNITO_USER_POOL_ID");
    assert!(check(&doc, "jwks")["detail"].as_str().unwrap().contains(&format!("/{pool_id}/.well-known/jwks.json")));
    assert!(check(&doc, "discovery")["detail"].as_str().unwrap().contains("issuer https://cognito-idp.us-east-1"));
    for c in doc["checks"].as_array().unwrap() {
        assert!(c.get("fix").is_none(), "a passing check carries no fix: {c}");
    }

    let text = ws.run(&["doctor", "--stack", &stack]).success();
    assert!(text.stdout.contains("All checks passed."), "{}", text.stdout);
    assert!(text.stdout.contains("[ok]   client is confidential"), "{}", text.stdout);
    let secret = env_value(&ws, "COGNITO_CLIENT_SECRET");
    assert!(!text.stdout.contains(&secret) && !doc.to_string().contains(&secret), "the secret is never printed");
}

#[test]
fn a_removed_callback_url_is_named_with_its_fix() {
    let (ws, stack) = stack("doctor-cb", &[]);
    let client = sdk(&ws.endpoint);
    let (pool, client_id) = (env_value(&ws, "COGNITO_USER_POOL_ID"), env_value(&ws, "COGNITO_CLIENT_ID"));
    // UpdateUserPoolClient resets what it is not sent (the strict peer too):
    // everything else goes back as described.
    block_on(
        kept_client_update(&client, &pool, &client_id)
            .set_callback_urls(None)
            .callback_urls("https://elsewhere.example.com/cb")
            .send(),
    )
    .expect("update client");
    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["callback-url"], "{doc:#}");
    let callback = check(&doc, "callback-url");
    assert!(callback["detail"].as_str().unwrap().contains("http://localhost:9000/oauth/callback is not among"));
    assert!(callback["detail"].as_str().unwrap().contains("redirect_mismatch"));
    assert_eq!(callback["fix"], format!("run `cognigate up --stack {stack} --gateway-url http://localhost:9000`"));
}

#[test]
fn changed_scopes_are_named_with_their_fix() {
    let (ws, stack) = stack("doctor-scope", &[]);
    let client = sdk(&ws.endpoint);
    let (pool, client_id) = (env_value(&ws, "COGNITO_USER_POOL_ID"), env_value(&ws, "COGNITO_CLIENT_ID"));
    // UpdateUserPoolClient resets what it is not sent (the strict peer too):
    // everything else goes back as described.
    block_on(
        kept_client_update(&client, &pool, &client_id)
            .set_allowed_o_auth_scopes(None)
            .allowed_o_auth_scopes("openid")
            .send(),
    )
    .expect("update client");
    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["scopes"], "{doc:#}");
    assert!(check(&doc, "scopes")["detail"].as_str().unwrap().contains("does not allow profile, email"));
    assert!(check(&doc, "scopes")["fix"].as_str().unwrap().contains(&format!("cognigate up --stack {stack}")));
}

#[test]
fn a_client_without_a_secret_is_invalid_client() {
    let (ws, stack) = stack("doctor-public", &[]);
    let client = sdk(&ws.endpoint);
    let pool = env_value(&ws, "COGNITO_USER_POOL_ID");
    let public = block_on(
        client
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name("hand-made")
            .generate_secret(false)
            .callback_urls("http://localhost:9000/oauth/callback")
            .allowed_o_auth_flows(aws_sdk_cognitoidentityprovider::types::OAuthFlowType::Code)
            .set_allowed_o_auth_scopes(Some(vec!["openid".into(), "profile".into(), "email".into()]))
            .supported_identity_providers("COGNITO")
            .allowed_o_auth_flows_user_pool_client(true)
            .send(),
    )
    .expect("create client");
    let public_id = public.user_pool_client().unwrap().client_id().unwrap().to_owned();
    set_env(&ws, "COGNITO_CLIENT_ID", &public_id);

    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 1);
    assert!(failed(&doc).contains(&"client-secret".to_owned()), "{doc:#}");
    let secret = check(&doc, "client-secret");
    assert!(secret["detail"].as_str().unwrap().contains(&format!("app client {public_id} has no secret")));
    assert!(secret["detail"].as_str().unwrap().contains("invalid_client"));
    assert!(secret["fix"].as_str().unwrap().contains("take COGNITO_CLIENT_ID out of the env file"));
    assert!(check(&doc, "env-file")["detail"].as_str().unwrap().contains("not the stack's client"));
}

#[test]
fn an_edited_env_file_is_named_with_its_fix() {
    let (ws, stack) = stack("doctor-env", &[]);
    set_env(&ws, "COGNITO_CLIENT_SECRET", "not-the-secret");
    set_env(&ws, "COGNITO_USER_POOL_ID", "us-east-1_Nope123");
    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["env-file"], "{doc:#}");
    let env = check(&doc, "env-file");
    let detail = env["detail"].as_str().unwrap();
    assert!(detail.contains("COGNITO_USER_POOL_ID is us-east-1_Nope123, but the stack's pool is"), "{detail}");
    assert!(detail.contains("COGNITO_CLIENT_SECRET differs from the client's secret in AWS"), "{detail}");
    assert!(!detail.contains("not-the-secret"), "secrets are compared, never shown");
    assert!(env["fix"].as_str().unwrap().contains(&format!("cognigate outputs --stack {stack}")));

    // Text: the failure, then its fix, then the count.
    let text = ws.run(&["doctor", "--stack", &stack]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("[FAIL] env file matches AWS"), "{}", text.stdout);
    assert!(text.stdout.contains("fix: run `cognigate outputs"), "{}", text.stdout);
    assert!(text.stdout.contains("1 check failed."), "{}", text.stdout);
}

#[test]
fn a_domain_with_a_scheme_is_named_with_its_fix() {
    let (ws, stack) = stack("doctor-dom", &[]);
    let host = env_value(&ws, "COGNITO_USER_POOL_DOMAIN");
    set_env(&ws, "COGNITO_USER_POOL_DOMAIN", &format!("https://{host}/"));
    let (code, doc) = doctor(&ws, &stack, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["env-domain"], "{doc:#}");
    let domain = check(&doc, "env-domain");
    assert!(domain["detail"].as_str().unwrap().contains("it has a scheme"), "{domain}");
    assert_eq!(domain["fix"], format!("set COGNITO_USER_POOL_DOMAIN={host} (the host only)"));
}

#[test]
fn a_profile_that_does_not_exist_is_named() {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let (code, doc) = doctor(&ws, "any", &["--profile", "no-such-profile"]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["credentials"], "{doc:#}");
    let credentials = check(&doc, "credentials");
    assert!(credentials["detail"].as_str().unwrap().contains("the AWS profile \"no-such-profile\" does not exist"));
    assert!(credentials["fix"].as_str().unwrap().contains("aws configure --profile no-such-profile"));
}

#[test]
fn a_running_gateway_answers_its_metadata_and_challenge() {
    let port = free_port();
    let public_url = format!("http://localhost:{port}");
    let (ws, stack) = stack("doctor-gw", &["--gateway-url", &public_url]);
    let mut cmd = Command::new(GATEWAY);
    cmd.current_dir(ws.dir.path())
        .args(["--env-file", ".env", "--config-dir", "config", "--store", "sqlite:gateway.db"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "1"])
        .env_remove("COGNIGATE_PUBLIC_URL")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_LOG");
    let health = format!("http://127.0.0.1:{port}/healthz");
    let gw = Peer::spawn_polled("gateway", cmd, ws.dir.path(), &public_url, || http_status(&health) == Some(200));

    let (code, doc) = doctor(&ws, &stack, &["--gateway-url", &public_url]);
    assert_eq!(code, 0, "{doc:#}\n{}", gw.log_tail());
    assert_eq!(check(&doc, "gateway-metadata")["status"], "pass");
    let challenge = check(&doc, "gateway-challenge");
    assert_eq!(challenge["status"], "pass");
    assert!(
        challenge["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("resource_metadata=\"{public_url}/.well-known/oauth-protected-resource/mcp/example\"")),
        "{challenge}"
    );
    drop(gw);

    // Stopped: named, with how to start it.
    let (code, doc) = doctor(&ws, &stack, &["--gateway-url", &public_url]);
    assert_eq!(code, 1);
    assert_eq!(failed(&doc), ["gateway-metadata", "gateway-challenge"], "{doc:#}");
    assert!(check(&doc, "gateway-challenge")["fix"].as_str().unwrap().contains("cognigate-gateway --env-file"));
}
