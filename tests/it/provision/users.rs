//! Who may sign in: admin-only sign-up on new pools (and its repair on a pool
//! that drifted), the stack's groups, and `cognigate user` against moto.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::support::cli::{Run, Workspace, block_on, pools_named, sdk, unique_stack};
use crate::support::moto::MotoServer;

/// `cognigate ARGS` with `input` on stdin.
fn run_with_stdin(ws: &Workspace, args: &[&str], input: &str) -> Run {
    let mut child = ws
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cognigate");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    Run::from(child.wait_with_output().expect("wait"))
}

fn admin_only(endpoint: &str, pool_id: &str) -> bool {
    let aws = sdk(endpoint);
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(pool_id).send().await.unwrap().user_pool.unwrap();
        pool.admin_create_user_config().expect("AdminCreateUserConfig").allow_admin_create_user_only
    })
}

fn group_names(endpoint: &str, pool_id: &str) -> Vec<String> {
    let aws = sdk(endpoint);
    let mut names: Vec<String> = block_on(async {
        let groups = aws.list_groups().user_pool_id(pool_id).send().await.unwrap();
        groups.groups().iter().filter_map(|g| g.group_name().map(str::to_owned)).collect()
    });
    names.sort();
    names
}

fn users(ws: &Workspace, stack: &str) -> Vec<Value> {
    let doc = ws.run(&["user", "list", "--stack", stack, "--output", "json"]).success().json();
    doc["users"].as_array().expect("users").clone()
}

fn user<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|u| u["username"] == name)
}

#[test]
fn new_pools_are_admin_only_unless_self_signup_and_plan_shows_it() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("signup");
    let plan = ws.run(&["plan", "--stack", &stack]).success();
    assert!(plan.stdout.contains("sign_up: admin only"), "{}", plan.stdout);
    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(doc["selfSignup"], false);
    assert!(admin_only(moto.endpoint(), doc["userPoolId"].as_str().unwrap()));

    let open = unique_stack("selfsignup");
    let plan = ws.run(&["plan", "--stack", &open, "--self-signup"]).success();
    assert!(plan.stdout.contains("sign_up: self sign-up (anyone)"), "{}", plan.stdout);
    ws.write("cognigate.toml", "self_signup = true\n");
    let doc = ws.run(&["up", "--stack", &open, "--env-file", "open.env", "--output", "json"]).success().json();
    assert!(!admin_only(moto.endpoint(), doc["userPoolId"].as_str().unwrap()), "self_signup = true in cognigate.toml");
}

#[test]
fn a_drifted_signup_setting_is_planned_and_repaired_keeping_the_other_settings() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("drift");
    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    // Someone opens sign-up by hand (in the console: moto itself, since the
    // SDK's request would carry the deprecated UnusedAccountValidityDays), with
    // a full update that also sets a stricter password policy and a
    // verification subject of their own.
    let aws = sdk(moto.bare_endpoint());
    block_on(async {
        use aws_sdk_cognitoidentityprovider::types::{
            AdminCreateUserConfigType, PasswordPolicyType, UserPoolPolicyType,
        };
        let described = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        let policy = PasswordPolicyType::builder()
            .minimum_length(14)
            .require_numbers(true)
            .temporary_password_validity_days(3)
            .build();
        aws.update_user_pool()
            .user_pool_id(&pool_id)
            .set_user_pool_tags(described.user_pool_tags().cloned())
            .policies(UserPoolPolicyType::builder().password_policy(policy).build())
            .email_verification_subject("Your code for the team")
            .admin_create_user_config(AdminCreateUserConfigType::builder().allow_admin_create_user_only(false).build())
            .send()
            .await
            .unwrap();
    });
    assert!(!admin_only(moto.endpoint(), &pool_id));

    let plan = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains(&format!("~ user pool {pool_id}: will be updated in place")), "{}", plan.stdout);
    assert!(plan.stdout.contains("sign_up: self sign-up (anyone) → admin only"), "{}", plan.stdout);

    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(doc["resources"]["userPool"], "updated");
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        assert!(pool.admin_create_user_config().unwrap().allow_admin_create_user_only);
        let policy = pool.policies().unwrap().password_policy().unwrap();
        assert_eq!(policy.minimum_length(), Some(14), "the password policy was reset");
        assert_eq!(policy.temporary_password_validity_days(), 3);
        assert_eq!(pool.email_verification_subject(), Some("Your code for the team"));
        assert_eq!(pool.user_pool_tags().unwrap()["cognigate:stack"], stack, "the tags were dropped");
    });
    let again = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn groups_are_created_shown_in_plan_kept_when_unlisted_and_destroyed_with_the_pool() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("groups");
    let plan = ws.run(&["plan", "--stack", &stack, "--group", "readers", "--group", "writers"]).success();
    assert!(plan.stdout.contains("+ group readers: will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("+ group writers: will be created"), "{}", plan.stdout);
    let doc = ws
        .run(&["up", "--stack", &stack, "--group", "readers", "--group", "writers", "--output", "json"])
        .success()
        .json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    assert_eq!(doc["groups"], serde_json::json!({ "readers": "created", "writers": "created" }));
    assert_eq!(group_names(moto.endpoint(), &pool_id), ["readers", "writers"]);

    // From cognigate.toml; a group not listed any more is kept and the plan says so.
    ws.write("cognigate.toml", "groups = [\"readers\", \"admins\"]\n");
    let plan = ws.run(&["plan", "--stack", &stack]).success();
    assert!(plan.stdout.contains("+ group admins: will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("group readers: no change"), "{}", plan.stdout);
    assert!(plan.stdout.contains("group writers: no change"), "{}", plan.stdout);
    assert!(plan.stdout.contains("kept (cognigate never deletes groups)"), "{}", plan.stdout);
    ws.run(&["up", "--stack", &stack]).success();
    assert_eq!(group_names(moto.endpoint(), &pool_id), ["admins", "readers", "writers"]);
    let rerun = ws.run(&["plan", "--stack", &stack, "--detailed-exitcode"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stdout);

    ws.run(&["destroy", "--stack", &stack, "--yes"]).success();
    assert!(pools_named(&sdk(moto.endpoint()), &stack).is_empty());
    let gone = block_on(sdk(moto.endpoint()).list_groups().user_pool_id(&pool_id).send());
    assert!(gone.is_err(), "the groups outlived their pool");
}

#[test]
fn users_are_added_listed_moved_between_groups_and_removed() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("users");
    ws.run(&["up", "--stack", &stack, "--group", "readers", "--group", "writers"]).success();

    let added = run_with_stdin(
        &ws,
        &["user", "add", "alice@example.com", "--stack", &stack, "--group", "readers", "--password-stdin"],
        "Correct-Horse-9\n",
    )
    .success();
    assert!(added.stdout.contains("Added user alice@example.com"), "{}", added.stdout);
    assert!(!added.stdout.contains("Correct-Horse-9") && !added.stderr.contains("Correct-Horse-9"), "password echoed");
    let invited = ws.run(&["user", "add", "bob@example.com", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(invited["invited"], true);
    ws.run(&["user", "add", "carol@example.com", "--stack", &stack, "--suppress-invite"]).success();

    let list = users(&ws, &stack);
    assert_eq!(list.len(), 3, "{list:?}");
    let alice = user(&list, "alice@example.com").unwrap();
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["status"], "CONFIRMED", "a --password-stdin password is permanent");
    assert_eq!(alice["enabled"], true);
    assert_eq!(alice["groups"], serde_json::json!(["readers"]));
    let bob = user(&list, "bob@example.com").unwrap();
    assert_eq!(bob["status"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(bob["groups"], serde_json::json!([]));

    let moved = ws
        .run(&[
            "user",
            "groups",
            "alice@example.com",
            "--stack",
            &stack,
            "--add",
            "writers",
            "--remove",
            "readers",
            "--output",
            "json",
        ])
        .success()
        .json();
    assert_eq!(moved["groups"], serde_json::json!(["writers"]));
    let table = ws.run(&["user", "list", "--stack", &stack]).success().stdout;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("USERNAME")
            && header.contains("EMAIL")
            && header.contains("STATUS")
            && header.contains("ENABLED")
            && header.contains("GROUPS"),
        "{table}"
    );
    let alice_row = table.lines().find(|l| l.starts_with("alice@example.com")).unwrap();
    assert!(alice_row.contains("CONFIRMED") && alice_row.ends_with("writers"), "{table}");

    ws.run(&["user", "remove", "bob@example.com", "--stack", &stack, "--yes"]).success();
    let list = users(&ws, &stack);
    assert!(user(&list, "bob@example.com").is_none(), "{list:?}");
    assert_eq!(list.len(), 2);
}

#[test]
fn user_errors_say_what_is_wrong_and_how_to_fix_it() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("usererr");
    let doc = ws.run(&["up", "--stack", &stack, "--group", "readers", "--output", "json"]).success().json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    ws.run(&["user", "add", "dave@example.com", "--stack", &stack]).success();

    // An existing user.
    ws.run(&["user", "add", "dave@example.com", "--stack", &stack])
        .failure(1, "user dave@example.com already exists")
        .failure(1, "cognigate user groups dave@example.com --add GROUP");

    // An unknown group: named, with the `up --group` fix, and no user created.
    ws.run(&["user", "add", "erin@example.com", "--stack", &stack, "--group", "readers", "--group", "nope"])
        .failure(1, "group nope does not exist in this pool")
        .failure(1, "cognigate up --group nope");
    ws.run(&["user", "groups", "dave@example.com", "--stack", &stack, "--add", "nope"])
        .failure(1, "cognigate up --group nope");

    // A weak password: the pool's policy named, nothing left behind.
    run_with_stdin(&ws, &["user", "add", "frank@example.com", "--stack", &stack, "--password-stdin"], "short\n")
        .failure(1, "does not meet the pool's password policy: at least 8 characters, with an uppercase letter, a lowercase letter, a number and a symbol");
    let list = users(&ws, &stack);
    assert!(user(&list, "erin@example.com").is_none() && user(&list, "frank@example.com").is_none(), "{list:?}");

    // An unknown user, a bad address, and an env file naming the pool.
    ws.run(&["user", "remove", "nobody@example.com", "--stack", &stack, "--yes"])
        .failure(1, "no user nobody@example.com in this pool; `cognigate user list`");
    ws.run(&["user", "groups", "nobody@example.com", "--stack", &stack, "--add", "readers"])
        .failure(1, "no user nobody@example.com");
    ws.run(&["user", "add", "not-an-address", "--stack", &stack]).failure(64, "e-mail address");
    ws.run(&["user", "list", "--stack", "no-such-stack-here"]).failure(1, "run `cognigate up` first");
    let by_id =
        ws.run(&["user", "list", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    assert_eq!(by_id["userPoolId"], pool_id.as_str());
}
