//! `cognigate destroy` (alias `down`) against moto: the order of deletions (read
//! from the proxy's call log, because moto's DeleteUserPool would also delete a
//! pool that still has a domain), what is refused without `--force`, and what
//! happens to the local files.
//!
//! moto ignores deletion protection and domains on DeleteUserPool, so the
//! refusals asserted here are cognigate's own checks, made before any call
//! that changes something.

use std::collections::HashMap;

use serde_json::Value;

use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, DeletionProtectionType, LambdaConfigType, PasswordPolicyType, UserPoolPolicyType,
};

use crate::support::aws_proxy::AwsProxy;
use crate::support::cli::{Workspace, block_on, pools_named, sdk, unique_stack};
use crate::support::moto::MotoServer;

const PRE_SIGN_UP: &str = "arn:aws:lambda:us-east-1:123456789012:function:pre-sign-up";

fn position(calls: &[String], operation: &str) -> usize {
    calls.iter().position(|c| c == operation).unwrap_or_else(|| panic!("no {operation} in {calls:?}"))
}

fn domain_exists(aws: &aws_sdk_cognitoidentityprovider::Client, domain: &str) -> bool {
    block_on(async {
        let described = aws.describe_user_pool_domain().domain(domain).send().await.unwrap();
        described.domain_description().and_then(|d| d.user_pool_id()).is_some_and(|id| !id.is_empty())
    })
}

fn pool_exists(aws: &aws_sdk_cognitoidentityprovider::Client, pool_id: &str) -> bool {
    block_on(async { aws.describe_user_pool().user_pool_id(pool_id).send().await.is_ok() })
}

fn untagged_pool(aws: &aws_sdk_cognitoidentityprovider::Client, name: &str) -> String {
    block_on(async { aws.create_user_pool().pool_name(name).send().await.unwrap().user_pool.unwrap().id.unwrap() })
}

#[test]
fn destroy_deletes_domain_then_clients_then_pool_and_a_second_run_is_a_noop() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("destroy");
    let prefix = format!("d-{stack}");
    let up = ws.run(&["up", "--stack", &stack, "--domain-prefix", &prefix, "--output", "json"]).success().json();
    let pool_id = up["userPoolId"].as_str().unwrap().to_owned();
    let client_id = up["clientId"].as_str().unwrap().to_owned();
    let env_before = ws.read(".env");
    let policies_before = ws.read("config/policies.json");

    proxy.reset();
    let out = ws.run(&["destroy", "--stack", &stack]).success();
    assert_eq!(proxy.mutating_calls(), ["DeleteUserPoolDomain", "DeleteUserPoolClient", "DeleteUserPool"]);
    // The domain is waited for (described until empty) before anything else goes.
    let calls = proxy.calls();
    let domain_deleted = position(&calls, "DeleteUserPoolDomain");
    let waited = calls[domain_deleted..].iter().position(|c| c == "DescribeUserPoolDomain").map(|i| i + domain_deleted);
    assert!(waited.is_some_and(|w| w < position(&calls, "DeleteUserPoolClient")), "no wait for the domain: {calls:?}");

    // Nothing is left, through the AWS API.
    assert!(pools_named(&aws, &stack).is_empty());
    assert!(!pool_exists(&aws, &pool_id));
    assert!(!domain_exists(&aws, &prefix), "domain {prefix} survived");
    // The output names what went; the local files were not touched.
    for deleted in [&pool_id, &client_id, &prefix] {
        assert!(out.stdout.contains(deleted.as_str()), "{deleted} not in output:\n{}", out.stdout);
    }
    assert_eq!(ws.read(".env"), env_before);
    assert_eq!(ws.read("config/policies.json"), policies_before);

    // Again, by its alias: nothing to do, nothing changed, success.
    proxy.reset();
    let again = ws.run(&["down", "--stack", &stack]).success();
    assert!(again.stdout.contains("Nothing to destroy"), "{}", again.stdout);
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    let json = ws.run(&["down", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(json["nothingToDestroy"], true);
    assert_eq!(json["destroyed"], Value::Array(vec![]));
}

#[test]
fn untagged_pool_is_refused_without_force_and_removed_with_it() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("untagged");
    let pool_id = untagged_pool(&aws, &stack);

    // By name it is not the stack's: left alone, and the output says how to delete it.
    let out = ws.run(&["destroy", "--stack", &stack]).success();
    assert!(
        out.stdout.contains("Nothing to destroy") && out.stdout.contains(&format!("--user-pool-id {pool_id} --force")),
        "{}",
        out.stdout
    );
    // By id: refused, with the reason and the way out, before any change.
    let refused = ws
        .run(&["destroy", "--stack", &stack, "--user-pool-id", &pool_id])
        .failure(1, "not tagged cognigate:managed=true");
    assert!(refused.stderr.contains("--force") && refused.stderr.contains("nothing was deleted"), "{}", refused.stderr);
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert!(pool_exists(&aws, &pool_id));

    ws.run(&["destroy", "--stack", &stack, "--user-pool-id", &pool_id, "--force"]).success();
    assert!(!pool_exists(&aws, &pool_id));
}

#[test]
fn adopted_pool_keeps_the_pool_and_loses_what_cognigate_created_in_it() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("adopted");
    let pool_id = untagged_pool(&aws, &format!("{stack}-theirs"));
    let adopt = ["--stack", stack.as_str(), "--user-pool-id", pool_id.as_str()];
    let up = ws.run(&[&["up", "--output", "json"], &adopt[..]].concat()).success().json();
    let host = up["userPoolDomain"].as_str().unwrap().to_owned();
    let prefix = host.split('.').next().unwrap().to_owned();

    // Without --force: the domain, client and resource server cognigate made
    // go, the pool stays, and the output says so.
    proxy.reset();
    let out = ws.run(&[&["destroy"], &adopt[..]].concat()).success();
    assert_eq!(proxy.mutating_calls(), ["DeleteUserPoolDomain", "DeleteUserPoolClient", "DeleteResourceServer"]);
    assert!(out.stdout.contains("deleted (resource server)"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("Destroyed what cognigate created in adopted user pool {pool_id}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kept (adopted") && out.stdout.contains("--force` deletes it"), "{}", out.stdout);
    assert!(pool_exists(&aws, &pool_id) && !domain_exists(&aws, &prefix));

    // Found through the env file alone (no --user-pool-id), as `up` left it.
    ws.run(&[&["up"], &adopt[..]].concat()).success();
    proxy.reset();
    let doc = ws.run(&["destroy", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(proxy.mutating_calls(), ["DeleteUserPoolDomain", "DeleteUserPoolClient", "DeleteResourceServer"]);
    assert_eq!(doc["destroyed"][0]["poolKept"], true, "{doc}");
    assert_eq!(doc["destroyed"][0]["resourceServers"][0], "http://localhost:9000", "{doc}");
    assert!(pool_exists(&aws, &pool_id));

    // --force deletes the pool itself, in order.
    ws.run(&[&["up"], &adopt[..]].concat()).success();
    proxy.reset();
    let doc = ws.run(&[&["destroy", "--force", "--output", "json"], &adopt[..]].concat()).success().json();
    assert_eq!(proxy.mutating_calls(), ["DeleteUserPoolDomain", "DeleteUserPoolClient", "DeleteUserPool"]);
    assert_eq!(doc["destroyed"][0]["userPoolId"], pool_id.as_str());
    assert_eq!(doc["destroyed"][0]["domains"][0], prefix.as_str());
    assert!(!pool_exists(&aws, &pool_id) && !domain_exists(&aws, &prefix));
}

#[test]
fn deletion_protection_is_refused_then_turned_off_with_force() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("protected");
    let pool_id =
        ws.run(&["up", "--stack", &stack, "--deletion-protection", "--output", "json"]).success().json()["userPoolId"]
            .as_str()
            .unwrap()
            .to_owned();

    proxy.reset();
    let refused = ws.run(&["destroy", "--stack", &stack]).failure(1, "DeletionProtection=ACTIVE");
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert!(pool_exists(&aws, &pool_id));

    // An adopted-looking pool carries settings of its own: a trigger, a
    // password policy, admin-only sign-up (set through the strict peer, which
    // like Cognito resets what UpdateUserPool is not sent).
    // By hand, as in the console (moto itself: the SDK's request carries the
    // deprecated UnusedAccountValidityDays, which Cognito refuses).
    let console = sdk(moto.bare_endpoint());
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        console
            .update_user_pool()
            .user_pool_id(&pool_id)
            .deletion_protection(DeletionProtectionType::Active)
            .set_user_pool_tags(pool.user_pool_tags().cloned())
            .lambda_config(LambdaConfigType::builder().pre_sign_up(PRE_SIGN_UP).build())
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(PasswordPolicyType::builder().minimum_length(12).require_symbols(true).build())
                    .build(),
            )
            .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(true).build())
            .send()
            .await
            .unwrap();
    });

    // --force: the usual order, and protection off right before DeleteUserPool,
    // every other setting sent back. The last step fails
    // once, to show that a half-done destroy resumes and loses nothing.
    proxy.reset();
    proxy.fail("DeleteUserPool", 400, "InvalidParameterException", "injected by the test", 1);
    ws.run(&["destroy", "--stack", &stack, "--force"]).failure(1, "DeleteUserPool failed");
    assert_eq!(
        proxy.mutating_calls(),
        ["DeleteUserPoolDomain", "DeleteUserPoolClient", "UpdateUserPool", "DeleteUserPool"]
    );
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        assert_eq!(pool.deletion_protection().map(|d| d.as_str()), Some("INACTIVE"));
        let tags = pool.user_pool_tags().cloned().unwrap_or_default();
        assert_eq!(
            tags.get("cognigate:managed").map(String::as_str),
            Some("true"),
            "UpdateUserPool dropped the tags: {tags:?}"
        );
        assert_eq!(pool.lambda_config().and_then(|l| l.pre_sign_up()), Some(PRE_SIGN_UP), "trigger wiped");
        let password = pool.policies().and_then(|p| p.password_policy()).expect("password policy wiped");
        assert_eq!((password.minimum_length(), password.require_symbols()), (Some(12), true));
        assert!(pool.admin_create_user_config().is_some_and(|c| c.allow_admin_create_user_only()), "sign-up reopened");
    });

    // What is left is an unprotected managed pool: no --force needed any more.
    proxy.reset();
    ws.run(&["destroy", "--stack", &stack]).success();
    assert_eq!(proxy.mutating_calls(), ["DeleteUserPool"]);
    assert!(!pool_exists(&aws, &pool_id));
}

#[test]
fn twin_pools_of_the_stack_go_too() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("twins");
    ws.run(&["up", "--stack", &stack]).success();
    // A second pool of the same stack, as a concurrent run may leave behind.
    let tags = HashMap::from([
        ("cognigate:stack".to_owned(), stack.clone()),
        ("cognigate:managed".to_owned(), "true".to_owned()),
    ]);
    block_on(async { aws.create_user_pool().pool_name(&stack).set_user_pool_tags(Some(tags)).send().await.unwrap() });
    assert_eq!(pools_named(&aws, &stack).len(), 2);

    let doc = ws.run(&["destroy", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(doc["destroyed"].as_array().unwrap().len(), 2);
    assert!(pools_named(&aws, &stack).is_empty());
}

#[test]
fn clean_files_removes_our_keys_and_stanza_and_keeps_the_rest() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("clean");
    ws.write(".env", "# my settings\nPORT=9000\nexport OTHER=\"x y\"\n");
    let other_policy = r#"{"name":"rate-limit","policyType":"rate-limit-inbound","handler":{"export":"RateLimitInboundPolicy","module":"$import(@zuplo/runtime)","options":{}}}"#;
    ws.write("config/policies.json", &format!(r#"{{"policies":[{other_policy}]}}"#));
    ws.run(&["up", "--stack", &stack, "--policy-name", "my-cognito"]).success();
    assert!(ws.read(".env").contains("COGNITO_CLIENT_SECRET="));

    let doc = ws
        .run(&["destroy", "--stack", &stack, "--policy-name", "my-cognito", "--clean-files", "--output", "json"])
        .success()
        .json();
    assert_eq!(doc["files"]["env file"]["outcome"], "updated");
    assert_eq!(doc["files"]["policies"]["outcome"], "updated");
    assert_eq!(ws.read(".env"), "# my settings\nPORT=9000\nexport OTHER=\"x y\"\n");
    let policies: Value = serde_json::from_str(&ws.read("config/policies.json")).unwrap();
    assert_eq!(policies["policies"], Value::Array(vec![serde_json::from_str(other_policy).unwrap()]));
    // The routes file is the user's: kept.
    assert!(ws.path("config/routes.oas.json").exists());

    // Cleaning again (nothing left to destroy either) changes nothing.
    let again = ws.run(&["destroy", "--stack", &stack, "--policy-name", "my-cognito", "--clean-files"]).success();
    assert!(again.stdout.contains("Nothing to destroy") && again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(ws.read(".env"), "# my settings\nPORT=9000\nexport OTHER=\"x y\"\n");
}

/// Right after its domain is gone, Cognito may still refuse
/// DeleteUserPool with "It has a domain configured"; the strict peer answers
/// so once, and destroy retries instead of failing.
#[test]
fn a_pool_that_still_sees_its_deleted_domain_is_deleted_on_a_retry() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("linger");
    let pool_id = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json()["userPoolId"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::support::strict::linger_domains(&ws.endpoint);
    proxy.reset();
    ws.run(&["destroy", "--stack", &stack]).success();
    assert_eq!(proxy.count("DeleteUserPool"), 2, "{:?}", proxy.calls());
    assert!(!pool_exists(&aws, &pool_id));
}

#[test]
fn clean_files_removes_a_policies_file_that_held_only_our_stanza() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("cleanonly");
    ws.run(&["up", "--stack", &stack]).success();
    let doc = ws.run(&["destroy", "--stack", &stack, "--clean-files", "--output", "json"]).success().json();
    assert_eq!(doc["files"]["policies"]["outcome"], "removed", "{doc}");
    assert!(!ws.path("config/policies.json").exists(), "no empty {{\"policies\": []}} left behind");
    assert_eq!(doc["files"]["env file"]["outcome"], "removed");
}
