//! plan, drift repair, outputs, rotate-secret, and convergence after failures,
//! concurrency and throttling, against moto.

use std::process::Stdio;

use serde_json::Value;

use crate::support::aws_proxy::AwsProxy;
use crate::support::cli::{Run, Workspace, block_on, pools_named, sdk, unique_stack};
use crate::support::moto::MotoServer;

fn env_value(ws: &Workspace, key: &str) -> String {
    ws.read(".env")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{key} missing from .env"))
}

#[test]
fn plan_reports_changes_with_detailed_exit_codes() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("plan");

    let fresh = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(fresh.code, 2, "{}{}", fresh.stdout, fresh.stderr);
    assert!(fresh.stdout.contains("+ user pool") && fresh.stdout.contains("Plan: 4 to create"), "{}", fresh.stdout);
    assert!(fresh.stdout.contains("+ resource server http://localhost:9000: will be created"), "{}", fresh.stdout);
    assert!(fresh.stdout.contains("scopes: [mcp:all, mcp:route.example]"), "{}", fresh.stdout);
    let json = ws.run(&["plan", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(json["changes"], true);
    let actions: Vec<&str> = json["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "create", "create", "create"]);
    assert!(proxy.mutating_calls().is_empty(), "plan changed something: {:?}", proxy.calls());
    assert!(pools_named(&sdk(moto.endpoint()), &stack).is_empty());

    ws.run(&["up", "--stack", &stack]).success();
    let settled = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);
    assert!(settled.stdout.contains("No changes"));
    // Without --detailed-exitcode, changes still exit 0.
    ws.run(&["plan", "--stack", &stack, "--gateway-url", "https://new.example.com"]).success();
}

#[test]
fn drift_is_shown_then_repaired_keeping_fields_cognigate_does_not_own() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("drift");
    let doc = ws
        .run(&["up", "--stack", &stack, "--gateway-url", "https://gw.example.com", "--output", "json"])
        .success()
        .json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    let client_id = doc["clientId"].as_str().unwrap().to_owned();

    // Someone edits the client in the console.
    let aws = sdk(moto.endpoint());
    block_on(async {
        aws.update_user_pool_client()
            .user_pool_id(&pool_id)
            .client_id(&client_id)
            .callback_urls("https://evil.example.com/cb")
            .allowed_o_auth_scopes("openid")
            .logout_urls("https://gw.example.com/bye")
            .send()
            .await
            .unwrap();
    });

    let plan = ws.run(&["plan", "--stack", &stack, "--gateway-url", "https://gw.example.com", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("~ app client"), "{}", plan.stdout);
    assert!(plan.stdout.contains("callback_urls: [https://evil.example.com/cb] → [https://gw.example.com/oauth/callback, http://localhost:9000/oauth/callback]"), "{}", plan.stdout);
    assert!(plan.stdout.contains("allowed_oauth_scopes: [openid] → [openid, profile, email]"), "{}", plan.stdout);
    assert!(!plan.stdout.contains(&env_value(&ws, "COGNITO_CLIENT_SECRET")), "plan shows the secret");

    // The repair drops a registered callback: unattended, only when asked.
    ws.run(&["up", "--stack", &stack, "--gateway-url", "https://gw.example.com"])
        .failure(64, "refusing to remove the registered callback URL(s) https://evil.example.com/cb");
    let up = ws
        .run(&[
            "up",
            "--stack",
            &stack,
            "--gateway-url",
            "https://gw.example.com",
            "--prune-callbacks",
            "--output",
            "json",
        ])
        .success()
        .json();
    assert_eq!(up["resources"]["appClient"], "updated");
    block_on(async {
        let client = aws
            .describe_user_pool_client()
            .user_pool_id(&pool_id)
            .client_id(&client_id)
            .send()
            .await
            .unwrap()
            .user_pool_client
            .unwrap();
        assert_eq!(
            client.callback_urls(),
            ["https://gw.example.com/oauth/callback", "http://localhost:9000/oauth/callback"]
        );
        let mut scopes = client.allowed_o_auth_scopes().to_vec();
        scopes.sort();
        assert_eq!(scopes, ["email", "openid", "profile"]);
        assert_eq!(client.logout_urls(), ["https://gw.example.com/bye"], "a field cognigate does not own was lost");
    });
    let settled =
        ws.run(&["plan", "--stack", &stack, "--gateway-url", "https://gw.example.com", "--detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}", settled.stdout);
}

#[test]
fn changed_domain_prefix_is_replaced() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("reprefix");
    let first = format!("a-{stack}");
    let second = format!("b-{stack}");
    ws.run(&["up", "--stack", &stack, "--domain-prefix", &first]).success();
    let plan = ws.run(&["plan", "--stack", &stack, "--domain-prefix", &second]).success();
    assert!(
        plan.stdout.contains(&format!("-/+ domain {second}: will be replaced"))
            && plan.stdout.contains(&format!("domain: {first} → {second}")),
        "{}",
        plan.stdout
    );
    proxy.reset();
    ws.run(&["up", "--stack", &stack, "--domain-prefix", &second]).success();
    let mutating = proxy.mutating_calls();
    assert_eq!(mutating, ["DeleteUserPoolDomain", "CreateUserPoolDomain"]);
    assert_eq!(env_value(&ws, "COGNITO_USER_POOL_DOMAIN"), format!("{second}.auth.us-east-1.amazoncognito.com"));
    let aws = sdk(moto.endpoint());
    block_on(async {
        let old = aws.describe_user_pool_domain().domain(&first).send().await.unwrap();
        assert!(old.domain_description().and_then(|d| d.user_pool_id()).is_none(), "old domain still exists");
    });
}

#[test]
fn outputs_rewrites_files_without_touching_aws() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("outputs");
    ws.run(&["up", "--stack", &stack]).success();
    let env_before = ws.read(".env");
    std::fs::remove_file(ws.path(".env")).unwrap();
    std::fs::remove_file(ws.path("config/policies.json")).unwrap();

    proxy.reset();
    ws.run(&["outputs", "--stack", &stack]).success();
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert_eq!(ws.read(".env"), env_before);
    let policies: Value = serde_json::from_str(&ws.read("config/policies.json")).unwrap();
    assert_eq!(policies["policies"][0]["policyType"], "mcp-cognito-oauth-inbound");

    let secret = env_value(&ws, "COGNITO_CLIENT_SECRET");
    let masked = ws.run(&["outputs", "--stack", &stack, "--output", "json"]).success();
    assert!(!masked.stdout.contains(&secret));
    assert_eq!(masked.json()["env"]["COGNITO_CLIENT_SECRET"], "(sensitive)");
    let shown = ws.run(&["outputs", "--stack", &stack, "--output", "json", "--show-secret"]).success();
    assert_eq!(shown.json()["env"]["COGNITO_CLIENT_SECRET"], secret.as_str());

    ws.run(&["outputs", "--stack", &unique_stack("never-made")]).failure(1, "run `cognigate up` first");
}

#[test]
fn rotate_secret_says_clearly_when_the_endpoint_lacks_the_api() {
    let moto = MotoServer::shared();
    // The strict peer emulates the secret API; moto alone lacks it.
    let ws = Workspace::bare(moto.bare_endpoint());
    let stack = unique_stack("rotate");
    ws.run(&["up", "--stack", &stack]).success();
    let before = ws.read(".env");
    ws.run(&["rotate-secret", "--stack", &stack]).failure(1, "does not implement Cognito's client secret rotation API");
    assert_eq!(ws.read(".env"), before, "the env file changed although nothing was rotated");
}

#[test]
fn an_up_that_failed_half_way_converges_on_the_next_run() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("half");
    proxy.fail("CreateUserPoolDomain", 400, "InvalidParameterException", "injected failure", 1);

    let failed = ws
        .run(&["up", "--stack", &stack])
        .failure(1, "CreateUserPoolDomain failed: InvalidParameterException: injected failure");
    assert!(!failed.stderr.contains("panicked"));
    let aws = sdk(moto.endpoint());
    assert_eq!(pools_named(&aws, &stack).len(), 1, "the pool made before the failure");

    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(doc["resources"]["userPool"], "reused");
    assert_eq!(doc["resources"]["domain"], "created");
    let pools = pools_named(&aws, &stack);
    assert_eq!(pools.len(), 1, "a duplicate pool was created");
    block_on(async {
        let clients = aws.list_user_pool_clients().user_pool_id(&pools[0]).send().await.unwrap();
        assert_eq!(clients.user_pool_clients().len(), 1, "a duplicate client was created");
    });
}

#[test]
fn two_concurrent_ups_of_one_stack_end_with_one_pool_and_one_client() {
    let moto = MotoServer::shared();
    let stack = unique_stack("race");
    let (a, b) = (Workspace::new(moto.endpoint()), Workspace::new(moto.endpoint()));
    let spawn = |ws: &Workspace| {
        ws.command()
            .args(["up", "--stack", &stack, "--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    let first = Run::from(first.wait_with_output().unwrap()).success().json();
    let second = Run::from(second.wait_with_output().unwrap()).success().json();

    let aws = sdk(moto.endpoint());
    let pools = pools_named(&aws, &stack);
    assert_eq!(pools.len(), 1, "twin pools survived: {pools:?}");
    assert_eq!(first["userPoolId"], pools[0].as_str());
    assert_eq!(second["userPoolId"], pools[0].as_str());
    assert_eq!(first["clientId"], second["clientId"], "the runs disagree on the client");
    block_on(async {
        let clients = aws.list_user_pool_clients().user_pool_id(&pools[0]).send().await.unwrap();
        assert_eq!(clients.user_pool_clients().len(), 1, "twin clients survived");
    });
}

#[test]
fn throttling_is_retried_and_a_persistent_one_explained() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("throttle");
    proxy.fail("CreateUserPoolClient", 400, "TooManyRequestsException", "Rate exceeded", 2);
    proxy.fail("ListUserPools", 400, "TooManyRequestsException", "Rate exceeded", 1);
    let run = Run::from(
        ws.command().env("COGNIGATE_AWS_MAX_ATTEMPTS", "4").args(["up", "--stack", &stack]).output().unwrap(),
    )
    .success();
    assert!(run.stdout.contains("is ready"));
    assert_eq!(proxy.count("CreateUserPoolClient"), 3, "two throttled attempts, then success: {:?}", proxy.calls());

    // A throttle that outlasts the retries stops with the code, the operation and what to do.
    let other = unique_stack("throttle-hard");
    proxy.fail("CreateUserPool", 400, "TooManyRequestsException", "Rate exceeded", 10);
    let failed = ws.run(&["up", "--stack", &other]).failure(1, "CreateUserPool failed: TooManyRequestsException");
    assert!(failed.stderr.contains("hint:") && failed.stderr.contains("run again"), "{}", failed.stderr);
}

/// A quota is not throttling; retrying it only delays the error.
#[test]
fn a_reached_quota_stops_at_once_with_its_name() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let quota = "The maximum number of user pools per account (1000) has been reached";
    proxy.fail("CreateUserPool", 400, "LimitExceededException", quota, 10);
    let run = Run::from(
        ws.command()
            .env("COGNIGATE_AWS_MAX_ATTEMPTS", "4")
            .args(["up", "--stack", &unique_stack("quota")])
            .output()
            .unwrap(),
    )
    .failure(1, "CreateUserPool failed: LimitExceededException");
    assert!(run.stderr.contains(quota) && run.stderr.contains("quota"), "{}", run.stderr);
    assert_eq!(proxy.count("CreateUserPool"), 1, "a quota was retried: {:?}", proxy.calls());
}

/// With two secrets present a third is refused by Cognito;
/// rotate-secret says to finish the rotation first and adds nothing.
#[test]
fn rotate_secret_twice_says_finish_first_then_rotates_again() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("rotate2");
    ws.run(&["up", "--stack", &stack]).success();
    ws.run(&["rotate-secret", "--stack", &stack, "--yes"]).success();
    let rotated = ws.read(".env");
    proxy.reset();
    ws.run(&["rotate-secret", "--stack", &stack, "--yes"]).failure(1, "--finish");
    assert_eq!(proxy.count("AddUserPoolClientSecret"), 0, "a third secret was asked for: {:?}", proxy.calls());
    assert_eq!(ws.read(".env"), rotated, "the env file changed although nothing was rotated");
    ws.run(&["rotate-secret", "--stack", &stack, "--finish", "--yes"]).success();
    ws.run(&["rotate-secret", "--stack", &stack, "--yes"]).success();
}

/// While a rotation is half done, DescribeUserPoolClient
/// shows the old secret (the strict peer answers as Cognito may); `up` and
/// `outputs` keep the env file's new secret instead of swapping it back.
#[test]
fn up_and_outputs_keep_the_rotated_secret_while_two_exist() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("rotkeep");
    ws.run(&["up", "--stack", &stack]).success();
    let secret_in =
        |text: &str| text.lines().find_map(|l| l.strip_prefix("COGNITO_CLIENT_SECRET=")).unwrap_or_default().to_owned();
    let original = secret_in(&ws.read(".env"));
    ws.run(&["rotate-secret", "--stack", &stack, "--yes"]).success();
    let rotated = secret_in(&ws.read(".env"));
    assert!(!rotated.is_empty() && rotated != original);

    ws.run(&["up", "--stack", &stack]).success();
    assert_eq!(secret_in(&ws.read(".env")), rotated, "up wrote the old secret back");
    ws.run(&["outputs", "--stack", &stack]).success();
    assert_eq!(secret_in(&ws.read(".env")), rotated, "outputs wrote the old secret back");

    // Once the rotation is finished, the only secret left is the env file's.
    ws.run(&["rotate-secret", "--stack", &stack, "--finish", "--yes"]).success();
    ws.run(&["up", "--stack", &stack]).success();
    assert_eq!(secret_in(&ws.read(".env")), rotated);
}

/// The README's row for `command` (the table is cognito::OPERATIONS, a unit test says so).
fn iam_row(command: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // A command without a row grants nothing: each call it makes is reported.
    let row = readme.lines().find(|l| l.starts_with(&format!("| `{command}` |"))).unwrap_or_default();
    row.split('`').skip(3).step_by(2).map(str::to_owned).collect()
}

/// Every command calls only the operations its IAM row names (read from the
/// proxy's log), so the README grants what each needs: each command run once,
/// with groups configured in cognigate.toml (which makes several of them list
/// the groups), users added and moved, the stack exported and checked.
#[test]
fn every_command_calls_only_what_its_iam_row_names() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("iamrow");
    ws.write("cognigate.toml", "groups = [\"readers\", \"writers\"]\n");
    let s = stack.as_str();
    // (README row, arguments, whether it must succeed: doctor reports the
    // hosted UI it cannot reach here as a failed check, after its calls.)
    let runs: Vec<(&str, Vec<&str>, bool)> = vec![
        ("plan", vec!["plan", "--stack", s], true),
        ("up", vec!["up", "--stack", s, "--deletion-protection"], true),
        ("plan", vec!["plan", "--stack", s], true),
        ("rotate-secret", vec!["rotate-secret", "--stack", s, "--yes"], true),
        ("up", vec!["up", "--stack", s], true),
        ("outputs", vec!["outputs", "--stack", s], true),
        ("rotate-secret", vec!["rotate-secret", "--stack", s, "--finish", "--yes"], true),
        ("user", vec!["user", "add", "iam@example.com", "--stack", s, "--group", "readers", "--suppress-invite"], true),
        ("user", vec!["user", "list", "--stack", s], true),
        ("user", vec!["user", "groups", "iam@example.com", "--stack", s, "--add", "writers"], true),
        ("user", vec!["user", "remove", "iam@example.com", "--stack", s, "--yes"], true),
        ("client", vec!["client", "add", "iam-bot", "--stack", s, "--scope", "mcp:all", "--secret-file", "bot"], true),
        ("client", vec!["client", "list", "--stack", s], true),
        ("client", vec!["client", "rotate-secret", "iam-bot", "--stack", s, "--yes", "--secret-file", "bot"], true),
        ("client", vec!["client", "rotate-secret", "iam-bot", "--stack", s, "--finish", "--yes"], true),
        ("client", vec!["client", "remove", "iam-bot", "--stack", s, "--yes"], true),
        ("export", vec!["export", "terraform", "--stack", s], true),
        ("doctor", vec!["doctor", "--stack", s], false),
        ("gc", vec!["gc", "--prefix", s, "--older-than", "1h"], true),
        ("destroy", vec!["destroy", "--stack", s, "--force", "--yes"], true),
    ];
    let mut missing = Vec::new();
    for (command, args, must_succeed) in runs {
        proxy.reset();
        let run = ws.run(&args);
        if must_succeed {
            run.success();
        }
        let allowed = iam_row(command);
        let calls = proxy.calls();
        assert!(!calls.is_empty(), "{args:?} made no call");
        // "(none)": a request that is no AWS operation (doctor fetching the JWKS) needs no permission.
        let mut outside: Vec<String> = calls.into_iter().filter(|c| c != "(none)" && !allowed.contains(c)).collect();
        outside.dedup();
        if !outside.is_empty() {
            missing.push(format!("{args:?} called {outside:?}, which the README's `{command}` row lacks"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
