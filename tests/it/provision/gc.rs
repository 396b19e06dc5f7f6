//! `cognigate gc` against moto: stacks made directly with the SDK (tags with a
//! `created-at` in the past, a domain and a client each), next to unmanaged,
//! young and protected pools sharing the prefix. Every test has a prefix of
//! its own because moto is shared by the whole test process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::DeletionProtectionType;
use serde_json::Value;

use crate::support::aws_proxy::AwsProxy;
use crate::support::cli::{Run, Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// How a test pool is made.
#[derive(Clone, Copy, Default)]
struct Make {
    managed: bool,
    /// `cognigate:created-at` this long ago; `None` leaves the tag out.
    age: Option<Duration>,
    ttl: Option<&'static str>,
    protected: bool,
}

impl Make {
    fn managed(age: Duration) -> Self {
        Self { managed: true, age: Some(age), ..Self::default() }
    }
}

/// A pool named `name` with a prefix domain and a confidential client, like a
/// stack `up` makes; returns its id.
fn make(aws: &Client, name: &str, how: Make) -> String {
    let mut tags = HashMap::new();
    if how.managed {
        tags.insert("cognigate:managed".to_owned(), "true".to_owned());
        tags.insert("cognigate:stack".to_owned(), name.to_owned());
    }
    if let Some(age) = how.age {
        tags.insert(
            "cognigate:created-at".to_owned(),
            humantime::format_rfc3339_seconds(SystemTime::now() - age).to_string(),
        );
    }
    if let Some(ttl) = how.ttl {
        tags.insert("cognigate:ttl".to_owned(), ttl.to_owned());
    }
    let protection = if how.protected { DeletionProtectionType::Active } else { DeletionProtectionType::Inactive };
    block_on(async {
        let id = aws
            .create_user_pool()
            .pool_name(name)
            .set_user_pool_tags(Some(tags).filter(|t| !t.is_empty()))
            .deletion_protection(protection)
            .send()
            .await
            .unwrap()
            .user_pool
            .unwrap()
            .id
            .unwrap();
        aws.create_user_pool_domain().user_pool_id(&id).domain(name).send().await.unwrap();
        aws.create_user_pool_client()
            .user_pool_id(&id)
            .client_name(format!("{name}-gateway"))
            .generate_secret(true)
            .send()
            .await
            .unwrap();
        id
    })
}

/// Names of the pools that start with `prefix`.
fn pools_with_prefix(aws: &Client, prefix: &str) -> BTreeSet<String> {
    block_on(async {
        let pools = aws.list_user_pools().max_results(60).into_paginator().items().send().try_collect().await.unwrap();
        pools.into_iter().filter_map(|p| p.name).filter(|n| n.starts_with(prefix)).collect()
    })
}

fn domain_exists(aws: &Client, domain: &str) -> bool {
    block_on(async {
        let described = aws.describe_user_pool_domain().domain(domain).send().await.unwrap();
        described.domain_description().and_then(|d| d.user_pool_id()).is_some_and(|id| !id.is_empty())
    })
}

/// `name` of every entry of a JSON list in gc's report.
fn names(doc: &Value, list: &str) -> BTreeSet<String> {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {doc}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&String]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).clone()).collect()
}

#[test]
fn gc_removes_exactly_the_expired_managed_stacks() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let prefix = format!("{}-", unique_stack("gc"));
    let name = |label: &str| format!("{prefix}{label}");

    let old = name("old");
    let ancient = name("ancient");
    let ttl_passed = name("ttl-passed");
    let young = name("young");
    let ttl_alive = name("ttl-alive");
    let untagged_age = name("no-created-at");
    let stranger = name("unmanaged");
    let protected = name("protected");
    make(&aws, &old, Make::managed(3 * HOUR));
    make(&aws, &ancient, Make::managed(30 * 24 * HOUR));
    make(&aws, &ttl_passed, Make { ttl: Some("10m"), ..Make::managed(30 * MINUTE) });
    make(&aws, &young, Make::managed(5 * MINUTE));
    make(&aws, &ttl_alive, Make { ttl: Some("1day"), ..Make::managed(30 * MINUTE) });
    // No created-at tag: the pool's CreationDate (just now) counts.
    make(&aws, &untagged_age, Make { managed: true, ..Make::default() });
    // An old created-at, but not cognigate's.
    make(&aws, &stranger, Make { managed: false, age: Some(3 * HOUR), ..Make::default() });
    make(&aws, &protected, Make { protected: true, ..Make::managed(3 * HOUR) });
    // Old and managed, but another prefix: never listed as a candidate.
    let elsewhere = format!("other-{}", unique_stack("gc"));
    make(&aws, &elsewhere, Make::managed(3 * HOUR));
    let everything = pools_with_prefix(&aws, &prefix);
    assert_eq!(everything.len(), 8);
    let expired = set(&[&old, &ancient, &ttl_passed]);

    // Dry run: the same judgement, nothing deleted.
    let dry =
        ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h", "--dry-run", "--output", "json"]).success().json();
    assert_eq!(names(&dry, "wouldRemove"), expired);
    assert!(names(&dry, "removed").is_empty());
    assert!(proxy.mutating_calls().is_empty(), "dry run changed something: {:?}", proxy.mutating_calls());
    assert_eq!(pools_with_prefix(&aws, &prefix), everything);

    // The real run removes exactly those, and says why it kept the others.
    proxy.reset();
    let doc = ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h", "--output", "json"]).success().json();
    assert_eq!(names(&doc, "removed"), expired);
    assert!(names(&doc, "failed").is_empty());
    let reasons: BTreeMap<String, String> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> = [
        (&young, "too-young"),
        (&ttl_alive, "too-young"),
        (&untagged_age, "too-young"),
        (&stranger, "not-managed"),
        (&protected, "deletion-protection"),
    ]
    .into_iter()
    .map(|(n, r)| (n.clone(), r.to_owned()))
    .collect();
    assert_eq!(reasons, expected);
    let kept: BTreeSet<String> = everything.difference(&expired).cloned().collect();
    assert_eq!(pools_with_prefix(&aws, &prefix), kept);
    for gone in &expired {
        assert!(!domain_exists(&aws, gone), "domain of {gone} survived");
    }
    assert!(domain_exists(&aws, &young));
    assert_eq!(pools_with_prefix(&aws, &elsewhere).len(), 1, "a pool outside the prefix was touched");
    // Each removed stack went in order: its domain, its client, its pool.
    assert_eq!(proxy.count("DeleteUserPoolDomain"), 3);
    assert_eq!(proxy.count("DeleteUserPoolClient"), 3);
    assert_eq!(proxy.count("DeleteUserPool"), 3);
    assert_eq!(proxy.count("UpdateUserPool"), 0);

    // --force also takes the protected one (protection off first), never the unmanaged one.
    proxy.reset();
    let text = ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h", "--force"]).success();
    assert!(
        text.stdout.lines().any(|l| l.trim_start().starts_with("removed") && l.contains(&protected)),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("not managed"), "{}", text.stdout);
    assert_eq!(proxy.count("UpdateUserPool"), 1);
    let kept: BTreeSet<String> = kept.into_iter().filter(|n| *n != protected).collect();
    assert_eq!(pools_with_prefix(&aws, &prefix), kept);
}

#[test]
fn a_failed_deletion_is_reported_the_rest_removed_and_a_rerun_finishes() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let prefix = format!("{}-", unique_stack("gcfail"));
    for i in 0..3 {
        make(&aws, &format!("{prefix}{i}"), Make::managed(2 * HOUR));
    }
    proxy.fail("DeleteUserPool", 400, "InvalidParameterException", "injected by the test", 1);
    let run = ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h"]).failure(1, "could not be examined or removed");
    assert!(run.stdout.contains("2 removed") && run.stdout.contains("1 failed"), "{}", run.stdout);
    assert!(run.stdout.contains("InvalidParameterException"), "{}", run.stdout);
    assert_eq!(proxy.count("DeleteUserPool"), 3, "gc stopped after the failure");
    assert_eq!(pools_with_prefix(&aws, &prefix).len(), 1);

    ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h"]).success();
    assert!(pools_with_prefix(&aws, &prefix).is_empty());
}

#[test]
fn throttling_is_retried_with_backoff_and_survived() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let prefix = format!("{}-", unique_stack("gcthrottle"));
    for i in 0..3 {
        make(&aws, &format!("{prefix}{i}"), Make::managed(2 * HOUR));
    }
    // Cognito's answer when a request-rate quota is exceeded.
    proxy.fail("DeleteUserPoolDomain", 400, "TooManyRequestsException", "Rate exceeded", 2);
    proxy.fail("DeleteUserPool", 400, "TooManyRequestsException", "Rate exceeded", 2);
    let run = Run::from(
        ws.command()
            .env("COGNIGATE_AWS_MAX_ATTEMPTS", "6")
            .args(["gc", "--prefix", &prefix, "--older-than", "1h"])
            .output()
            .unwrap(),
    )
    .success();
    assert!(run.stdout.contains("3 removed"), "{}", run.stdout);
    assert_eq!(proxy.count("DeleteUserPoolDomain"), 3 + 2);
    assert_eq!(proxy.count("DeleteUserPool"), 3 + 2);
    assert!(pools_with_prefix(&aws, &prefix).is_empty());
}

#[test]
fn gc_refuses_an_empty_prefix_and_a_bad_duration_before_any_call() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    ws.run(&["gc", "--prefix", "", "--older-than", "1h"]).failure(64, "--prefix must not be empty");
    ws.run(&["gc", "--prefix", "  ", "--older-than", "1h"]).failure(64, "--prefix must not be empty");
    ws.run(&["gc", "--prefix", "ci-", "--older-than", "soon"]).failure(64, "--older-than");
    ws.run(&["gc", "--older-than", "1h"]).failure(64, "--prefix");
    assert!(proxy.calls().is_empty(), "{:?}", proxy.calls());
}

/// A measurement: a gc over 30 stacks, its wall time
/// and its AWS calls by operation (`cargo test --test it gc_of_30 -- --nocapture`).
/// It asserts what was removed, never a timing.
#[test]
fn gc_of_30_stacks_removes_them_all_and_reports_its_calls() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let aws = sdk(moto.endpoint());
    let prefix = format!("{}-", unique_stack("gc30"));
    for i in 0..30 {
        make(&aws, &format!("{prefix}{i:02}"), Make::managed(2 * HOUR));
    }
    let keep = format!("{prefix}young");
    make(&aws, &keep, Make::managed(MINUTE));

    let started = Instant::now();
    let doc = ws.run(&["gc", "--prefix", &prefix, "--older-than", "1h", "--output", "json"]).success().json();
    let elapsed = started.elapsed();
    assert_eq!(doc["removed"].as_array().unwrap().len(), 30);
    assert_eq!(pools_with_prefix(&aws, &prefix), BTreeSet::from([keep]));

    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    for call in proxy.calls() {
        *by_operation.entry(call).or_default() += 1;
    }
    println!("gc of 30 stacks: {:.2} s, {} AWS calls", elapsed.as_secs_f64(), proxy.calls().len());
    for (operation, count) in &by_operation {
        println!("  {operation:<24} {count}");
    }
    assert_eq!(by_operation.get("DeleteUserPool"), Some(&30));
}

#[test]
fn a_stack_without_a_ttl_is_said_never_to_be_collected() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let aws = sdk(moto.endpoint());
    let prefix = format!("{}-", unique_stack("gcnottl"));
    let name = format!("{prefix}a");
    make(&aws, &name, Make::managed(3 * HOUR));
    let doc = ws.run(&["gc", "--prefix", &prefix, "--output", "json"]).success().json();
    let skipped = &doc["skipped"][0];
    assert_eq!(skipped["reason"], "no-ttl", "{doc}");
    let detail = skipped["detail"].as_str().unwrap();
    assert!(
        detail.contains("gc never collects it") && detail.contains("--older-than") && detail.contains("--ttl"),
        "{detail}"
    );
    assert!(!doc.to_string().contains("too-young"));
}
