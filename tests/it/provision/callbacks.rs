//! What a stack serves is never dropped by a run that did not name it: without
//! `--gateway-url` an existing stack keeps its gateway URL and every
//! registered callback; a URL list that leaves one out shows it as a removal
//! and is applied unattended only with `--prune-callbacks`.

use std::collections::HashMap;

use crate::support::aws_proxy::AwsProxy;
use crate::support::cli::{Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;

const GATEWAY: &str = "https://mcp.example.com";
const GATEWAY_CALLBACK: &str = "https://mcp.example.com/oauth/callback";
const LOCAL_CALLBACK: &str = "http://localhost:9000/oauth/callback";

fn env(ws: &Workspace, file: &str) -> HashMap<String, String> {
    ws.read(file)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The app client's callback URLs as Cognito (moto) holds them.
fn registered(endpoint: &str, ws: &Workspace, file: &str) -> Vec<String> {
    let values = env(ws, file);
    let aws = sdk(endpoint);
    block_on(async {
        let client = aws
            .describe_user_pool_client()
            .user_pool_id(&values["COGNITO_USER_POOL_ID"])
            .client_id(&values["COGNITO_CLIENT_ID"])
            .send()
            .await
            .unwrap()
            .user_pool_client
            .unwrap();
        client.callback_urls().to_vec()
    })
}

#[test]
fn up_without_gateway_url_on_an_existing_stack_changes_nothing() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("keepurl");
    ws.run(&["up", "--stack", &stack, "--gateway-url", GATEWAY]).success();
    assert_eq!(registered(moto.endpoint(), &ws, ".env"), [GATEWAY_CALLBACK, LOCAL_CALLBACK]);

    let plan = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "a plain plan proposes a change:\n{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(&format!("Callback URLs: [{GATEWAY_CALLBACK}, {LOCAL_CALLBACK}]")),
        "plan names the callbacks it keeps:\n{}",
        plan.stdout
    );

    proxy.reset();
    let up = ws.run(&["up", "--stack", &stack, "--yes"]).success();
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert!(up.stdout.contains(&format!("callbacks   {GATEWAY_CALLBACK}, {LOCAL_CALLBACK}")), "{}", up.stdout);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], GATEWAY, "the env file was pointed elsewhere");

    // The README's next step (a group) changes the groups only.
    proxy.reset();
    ws.run(&["up", "--stack", &stack, "--group", "readers"]).success();
    assert_eq!(proxy.mutating_calls(), ["CreateGroup"], "{:?}", proxy.calls());
    assert_eq!(registered(moto.endpoint(), &ws, ".env"), [GATEWAY_CALLBACK, LOCAL_CALLBACK]);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], GATEWAY);

    // With no env file, the URL comes from the registered callbacks.
    std::fs::remove_file(ws.path(".env")).unwrap();
    proxy.reset();
    ws.run(&["up", "--stack", &stack, "--env-file", "fresh.env"]).success();
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert_eq!(env(&ws, "fresh.env")["COGNIGATE_PUBLIC_URL"], GATEWAY);
}

#[test]
fn a_local_mode_stack_keeps_its_own_port_on_a_plain_plan() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("localport");
    ws.run(&["up", "--stack", &stack, "--gateway-url", "http://localhost:8123", "--no-localhost-callback"]).success();
    let plan = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("removed"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &stack]).success();
    assert_eq!(registered(moto.endpoint(), &ws, ".env"), ["http://localhost:8123/oauth/callback"]);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], "http://localhost:8123");
}

#[test]
fn an_unattended_run_never_removes_a_registered_callback_it_did_not_name() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("prune");
    ws.run(&["up", "--stack", &stack, "--gateway-url", GATEWAY]).success();

    // A list that leaves the live gateway out: the plan shows the removal.
    let other = "https://other.example.com";
    let plan = ws.run(&["plan", "--stack", &stack, "--gateway-url", other]).success();
    assert!(plan.stdout.contains(&format!("- callback URL removed: {GATEWAY_CALLBACK}")), "{}", plan.stdout);
    assert!(plan.stdout.contains("--prune-callbacks"), "{}", plan.stdout);

    // --yes (and no terminal, as here) refuses it before changing anything.
    for args in [
        vec!["up", "--stack", &stack, "--gateway-url", other, "--yes"],
        vec!["up", "--stack", &stack, "--gateway-url", other],
    ] {
        proxy.reset();
        ws.run(&args)
            .failure(64, &format!("refusing to remove the registered callback URL(s) {GATEWAY_CALLBACK}"))
            .failure(64, "--prune-callbacks");
        assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    }
    assert_eq!(registered(moto.endpoint(), &ws, ".env"), [GATEWAY_CALLBACK, LOCAL_CALLBACK]);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], GATEWAY);

    // Naming both keeps both; asking for the prune applies it.
    ws.run(&["up", "--stack", &stack, "--gateway-url", &format!("{GATEWAY},{other}"), "--yes"]).success();
    let both = registered(moto.endpoint(), &ws, ".env");
    assert!(both.contains(&GATEWAY_CALLBACK.to_owned()) && both.len() == 3, "{both:?}");
    ws.run(&["up", "--stack", &stack, "--gateway-url", other, "--yes", "--prune-callbacks"]).success();
    assert_eq!(registered(moto.endpoint(), &ws, ".env"), ["https://other.example.com/oauth/callback", LOCAL_CALLBACK]);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], other);
}

#[test]
fn a_gateway_url_with_a_path_is_refused_with_the_base_url_to_give() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("cbpath");
    ws.run(&["plan", "--stack", &stack, "--gateway-url", GATEWAY_CALLBACK])
        .failure(64, "ends in the callback path /oauth/callback")
        .failure(64, &format!("give the gateway's base URL: {GATEWAY}"));
    ws.run(&["up", "--stack", &stack, "--gateway-url", "https://mcp.example.com/base"])
        .failure(64, "a path (/base) is not supported");
}

/// The `sh` blocks of a README section (`## title` up to the next `## `),
/// continuation lines joined.
fn readme_commands(readme: &str, title: &str) -> Vec<String> {
    let start = readme.find(&format!("\n## {title}")).unwrap_or_else(|| panic!("README has no section {title:?}"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let mut commands = Vec::new();
    for block in section.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default().replace("\\\n", " ");
        commands
            .extend(block.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
    }
    commands
}

/// The README's own examples, run in order on one stack (the provisioning
/// ones; the gateway is started at the end from what they wrote): the stack
/// still serves its gateway, and the gateway boots at that URL.
#[test]
fn the_readme_examples_run_in_order_leave_the_stack_working() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("readme");
    let readme = std::fs::read_to_string(crate::support::peers::repo_root().join("README.md")).unwrap();
    let mut commands = readme_commands(&readme, "In your AWS account");
    commands.extend(readme_commands(&readme, "Who may sign in"));
    let provisioning: Vec<String> = commands
        .iter()
        .filter(|c| c.starts_with("cognigate ") || c.contains("| cognigate "))
        .map(|c| c.replace("my-mcp", &stack))
        .collect();
    assert!(provisioning.len() >= 8, "the README's examples were not found: {commands:?}");
    assert!(provisioning[0].contains("--gateway-url https://mcp.example.com"), "{provisioning:?}");

    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(crate::support::cli::BIN, bin.path().join("cognigate")).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    for command in &provisioning {
        let mut shell = std::process::Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .current_dir(ws.dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", ws.dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("COGNIGATE_AWS_MAX_ATTEMPTS", "2")
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &ws.endpoint)
            // The reader's AWS profile has a region; the first example names it.
            .env("AWS_REGION", "us-east-1")
            .env("PASSWORD", "Correct-Horse-9");
        let run = crate::support::cli::Run::from(shell.output().expect("run sh"));
        assert_eq!(run.code, 0, "README example `{command}` failed:\n{}\n{}", run.stdout, run.stderr);
    }

    assert_eq!(registered(moto.endpoint(), &ws, ".env"), [GATEWAY_CALLBACK, LOCAL_CALLBACK]);
    assert_eq!(env(&ws, ".env")["COGNIGATE_PUBLIC_URL"], GATEWAY);
    let plan = ws.run(&["plan", "--stack", &stack, "--group", "readers", "--group", "writers", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);

    // The gateway boots from what the examples wrote, at the URL they registered.
    let port = crate::support::peers::free_port();
    let mut gateway = std::process::Command::new(env!("CARGO_BIN_EXE_cognigate-gateway"));
    gateway
        .current_dir(ws.dir.path())
        .args(["--env-file", ".env", "--config-dir", "config", "--store", "sqlite:gw.db", "--workers", "1"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("COGNIGATE_PUBLIC_URL")
        .env_remove("RUST_LOG");
    let url = format!("http://127.0.0.1:{port}");
    let health = format!("{url}/healthz");
    let gw = crate::support::peers::Peer::spawn_polled("gateway", gateway, ws.dir.path(), &url, || {
        crate::support::peers::http_status(&health) == Some(200)
    });
    let metadata: serde_json::Value = crate::support::peers::block_on(async {
        let response = crate::support::peers::http_client()
            .get(format!("{url}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .expect("metadata");
        response.json().await.expect("metadata JSON")
    });
    assert_eq!(metadata["issuer"], GATEWAY, "{}", gw.log_tail());
}
