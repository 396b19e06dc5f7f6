//! What real Cognito does that moto does not, taught to the strict peer rule
//! by rule: usernames that ignore case, self sign-up that can finish, an
//! adopted pool's sign-up setting, feature plans and managed login, e-mail
//! alias pools, password history, and what `user list` shows.

use std::io::Write;
use std::process::Stdio;

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, AliasAttributeType, PasswordPolicyType, UserPoolPolicyType, UserPoolType,
    UsernameAttributeType, VerifiedAttributeType,
};
use serde_json::Value;

use crate::support::cli::{Run, Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;

fn describe(endpoint: &str, pool_id: &str) -> UserPoolType {
    block_on(sdk(endpoint).describe_user_pool().user_pool_id(pool_id).send()).unwrap().user_pool.unwrap()
}

fn run_with_stdin(ws: &Workspace, args: &[&str], input: &str) -> Run {
    let mut child =
        ws.command().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// A pool made outside cognigate (straight in moto), for adoption.
fn foreign_pool(
    aws: &Client,
    name: &str,
    shape: impl FnOnce(
    aws_sdk_cognitoidentityprovider::operation::create_user_pool::builders::CreateUserPoolFluentBuilder,
) -> aws_sdk_cognitoidentityprovider::operation::create_user_pool::builders::CreateUserPoolFluentBuilder,
) -> String {
    let request = shape(aws.create_user_pool().pool_name(name));
    block_on(request.send()).unwrap().user_pool.unwrap().id.unwrap()
}

#[test]
fn usernames_of_a_new_pool_ignore_case() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("case");
    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    let pool = describe(&ws.endpoint, doc["userPoolId"].as_str().unwrap());
    assert_eq!(pool.username_configuration().map(|c| c.case_sensitive()), Some(false));

    ws.run(&["user", "add", "Alice@Example.com", "--stack", &stack, "--suppress-invite"]).success();
    ws.run(&["user", "add", "alice@example.com", "--stack", &stack, "--suppress-invite"]).failure(1, "already exists");
    let list = ws.run(&["user", "list", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(list["users"].as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn self_signup_pools_auto_verify_email_on_create_and_on_repair() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let open = unique_stack("open");
    let doc = ws.run(&["up", "--stack", &open, "--self-signup", "--output", "json"]).success().json();
    let pool = describe(moto.endpoint(), doc["userPoolId"].as_str().unwrap());
    assert!(!pool.admin_create_user_config().unwrap().allow_admin_create_user_only);
    assert_eq!(pool.auto_verified_attributes(), [VerifiedAttributeType::Email]);

    // An admin-only stack opened later gets the same.
    let later = unique_stack("opened");
    let doc = ws.run(&["up", "--stack", &later, "--env-file", "later.env", "--output", "json"]).success().json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    assert!(describe(moto.endpoint(), &pool_id).auto_verified_attributes().is_empty());
    let plan = ws.run(&["plan", "--stack", &later, "--env-file", "later.env", "--self-signup"]).success();
    assert!(plan.stdout.contains("sign_up: admin only → self sign-up (anyone)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("auto_verified_attributes: [] → [email]"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &later, "--env-file", "later.env", "--self-signup"]).success();
    let pool = describe(moto.endpoint(), &pool_id);
    assert!(!pool.admin_create_user_config().unwrap().allow_admin_create_user_only);
    assert_eq!(pool.auto_verified_attributes(), [VerifiedAttributeType::Email]);
}

#[test]
fn an_adopted_pool_keeps_its_signup_setting_unless_one_is_asked_for() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.bare_endpoint());
    let stack = unique_stack("adoptopen");
    let pool_id = foreign_pool(&aws, &format!("{stack}-theirs"), |r| {
        r.admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(false).build())
            .auto_verified_attributes(VerifiedAttributeType::Email)
    });
    let ws = Workspace::new(moto.endpoint());
    let plan = ws.run(&["plan", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    assert!(!plan.stdout.contains("sign_up"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    assert!(!describe(moto.endpoint(), &pool_id).admin_create_user_config().unwrap().allow_admin_create_user_only);

    // Asked for in cognigate.toml: changed, and the plan said so.
    ws.write("cognigate.toml", "self_signup = false\n");
    let plan = ws.run(&["plan", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    assert!(plan.stdout.contains("sign_up: self sign-up (anyone) → admin only"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    assert!(describe(moto.endpoint(), &pool_id).admin_create_user_config().unwrap().allow_admin_create_user_only);
}

#[test]
fn the_feature_plan_is_chosen_shown_and_checked_against_managed_login() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("tier");
    let plan = ws.run(&["plan", "--stack", &stack]).success();
    assert!(plan.stdout.contains("feature_plan: lite"), "{}", plan.stdout);
    ws.run(&["plan", "--stack", &stack, "--managed-login", "v2", "--feature-plan", "lite"])
        .failure(64, "not available on the Lite feature plan")
        .failure(64, "--feature-plan essentials");
    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    assert_eq!(describe(moto.endpoint(), &pool_id).user_pool_tier().map(|t| t.as_str()), Some("LITE"));

    // Managed login on that Lite pool: refused before any change, with the fix.
    ws.run(&["up", "--stack", &stack, "--managed-login", "v2"])
        .failure(64, &format!("user pool {pool_id} is on the Lite feature plan"))
        .failure(64, "--feature-plan essentials");
    let plan = ws.run(&["plan", "--stack", &stack, "--managed-login", "v2", "--feature-plan", "essentials"]).success();
    assert!(plan.stdout.contains("feature_plan: lite → essentials"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &stack, "--managed-login", "v2", "--feature-plan", "essentials"]).success();
    assert_eq!(describe(moto.endpoint(), &pool_id).user_pool_tier().map(|t| t.as_str()), Some("ESSENTIALS"));

    // A new managed-login stack is on Essentials without being told.
    let v2 = unique_stack("tierv2");
    let doc = ws
        .run(&["up", "--stack", &v2, "--env-file", "v2.env", "--managed-login", "v2", "--output", "json"])
        .success()
        .json();
    let tier = describe(moto.endpoint(), doc["userPoolId"].as_str().unwrap()).user_pool_tier().cloned();
    assert_eq!(tier.as_ref().map(|t| t.as_str()), Some("ESSENTIALS"));
}

#[test]
fn users_of_an_email_alias_pool_get_a_generated_username() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.bare_endpoint());
    let stack = unique_stack("alias");
    let pool_id = foreign_pool(&aws, &format!("{stack}-alias"), |r| {
        r.alias_attributes(AliasAttributeType::Email)
            .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(true).build())
    });
    let ws = Workspace::new(moto.endpoint());
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id, "--group", "readers"]).success();
    let added = ws
        .run(&[
            "user",
            "add",
            "bob@example.com",
            "--stack",
            &stack,
            "--user-pool-id",
            &pool_id,
            "--group",
            "readers",
            "--suppress-invite",
            "--output",
            "json",
        ])
        .success()
        .json();
    let username = added["username"].as_str().unwrap().to_owned();
    assert!(!username.contains('@'), "{added}");
    let list =
        ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    let bob = &list["users"][0];
    assert_eq!(
        (bob["email"].as_str(), bob["groups"].clone()),
        (Some("bob@example.com"), serde_json::json!(["readers"]))
    );
    ws.run(&[
        "user",
        "groups",
        "bob@example.com",
        "--stack",
        &stack,
        "--user-pool-id",
        &pool_id,
        "--remove",
        "readers",
    ])
    .success();
    ws.run(&["user", "remove", "bob@example.com", "--stack", &stack, "--user-pool-id", &pool_id, "--yes"]).success();
    let list =
        ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    assert_eq!(list["users"], serde_json::json!([]));
}

#[test]
fn a_permanent_password_is_set_once_on_a_pool_with_password_history() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.bare_endpoint());
    let stack = unique_stack("history");
    let pool_id = foreign_pool(&aws, &format!("{stack}-history"), |r| {
        let policy = PasswordPolicyType::builder().minimum_length(8).password_history_size(3).build();
        r.policies(UserPoolPolicyType::builder().password_policy(policy).build())
            .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(true).build())
    });
    let ws = Workspace::new(moto.endpoint());
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    run_with_stdin(
        &ws,
        &["user", "add", "dana@example.com", "--stack", &stack, "--user-pool-id", &pool_id, "--password-stdin"],
        "Correct-Horse-9\n",
    )
    .success();
    let list =
        ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    assert_eq!(list["users"][0]["status"], "CONFIRMED", "{list}");
}

#[test]
fn user_list_shows_the_sub_and_on_email_username_pools_the_email_as_name() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.bare_endpoint());
    let stack = unique_stack("subs");
    let pool_id = foreign_pool(&aws, &format!("{stack}-email"), |r| {
        r.username_attributes(UsernameAttributeType::Email)
            .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(true).build())
    });
    let ws = Workspace::new(moto.endpoint());
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id]).success();
    ws.run(&["user", "add", "carol@example.com", "--stack", &stack, "--user-pool-id", &pool_id, "--suppress-invite"])
        .success();
    let list =
        ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    let carol: &Value = &list["users"][0];
    let sub = carol["sub"].as_str().unwrap_or_default().to_owned();
    assert!(!sub.is_empty() && !sub.contains('@'), "{list}");
    assert_eq!(carol["username"], "carol@example.com", "the e-mail is the name, not the sub: {list}");
    let table = ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id]).success().stdout;
    assert!(table.lines().next().unwrap().contains("SUB"), "{table}");
    let row = table.lines().find(|l| l.starts_with("carol@example.com")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&sub), "{table}");
}
