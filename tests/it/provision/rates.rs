//! Cognito's request rate quotas: the strict peer holds a workspace to them
//! (a token bucket per category, TooManyRequestsException past it), and the
//! commands that fan out, `user list` over many groups and `gc` over many
//! pools, finish without being throttled once.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cognitoidentityprovider::Client;

use crate::support::cli::{Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;
use crate::support::strict::{throttle, throttle_at, throttled};

/// A pool tagged as a cognigate stack created `age` ago, made in moto itself.
fn managed_pool(aws: &Client, name: &str, age: Duration) -> String {
    let tags = HashMap::from([
        ("cognigate:managed".to_owned(), "true".to_owned()),
        ("cognigate:stack".to_owned(), name.to_owned()),
        ("cognigate:created-at".to_owned(), humantime::format_rfc3339_seconds(SystemTime::now() - age).to_string()),
    ]);
    block_on(aws.create_user_pool().pool_name(name).set_user_pool_tags(Some(tags)).send())
        .unwrap()
        .user_pool
        .unwrap()
        .id
        .unwrap()
}

#[test]
fn the_strict_peer_throttles_past_a_categorys_quota() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    // Two a second: 40 calls at once overrun it however slowly this machine answers.
    throttle_at(&ws.endpoint, 2);
    let aws = sdk(&ws.endpoint);
    let answers: Vec<Option<String>> = block_on(async {
        let calls = (0..40).map(|_| aws.list_user_pools().max_results(1).send());
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.err().and_then(|e| e.into_service_error().meta().code().map(str::to_owned)))
            .collect()
    });
    let refused = answers.iter().filter(|code| code.as_deref() == Some("TooManyRequestsException")).count();
    assert!(refused > 0 && throttled(&ws.endpoint) as usize >= refused, "{answers:?}");
}

#[test]
fn user_list_over_many_groups_stays_under_the_quota() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("fanout");
    let doc = ws.run(&["up", "--stack", &stack, "--output", "json"]).success().json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    let aws = sdk(moto.bare_endpoint());
    block_on(async {
        for i in 0..45 {
            aws.create_group().user_pool_id(&pool_id).group_name(format!("team-{i}")).send().await.unwrap();
        }
    });
    ws.run(&["user", "add", "erin@example.com", "--stack", &stack, "--group", "team-7", "--suppress-invite"]).success();

    throttle(&ws.endpoint);
    let list = ws.run(&["user", "list", "--stack", &stack, "--output", "json"]).success().json();
    assert_eq!(list["users"][0]["groups"], serde_json::json!(["team-7"]), "{list}");
    assert_eq!(throttled(&ws.endpoint), 0, "user list was throttled");
}

#[test]
fn gc_over_many_pools_finishes_under_the_quota() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.bare_endpoint());
    let prefix = format!("{}-", unique_stack("gcrate"));
    for i in 0..40 {
        let age = if i < 3 { Duration::from_secs(3 * 3600) } else { Duration::from_secs(60) };
        managed_pool(&aws, &format!("{prefix}{i}"), age);
    }
    let ws = Workspace::new(moto.endpoint());
    throttle(&ws.endpoint);
    let out = ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h"]).success();
    assert!(out.stdout.contains("3 removed"), "{}", out.stdout);
    assert_eq!(throttled(&ws.endpoint), 0, "gc was throttled:\n{}", out.stdout);
}
