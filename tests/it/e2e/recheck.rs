//! The refresh grant re-checks the user at Cognito, so that disabling or
//! deleting a user there ends their access:
//! after a real login through the hosted UI stand-in, the user is disabled or
//! deleted in moto, and the next refresh past `--idp-recheck-interval` fails
//! with `invalid_grant`, its family's access token refused on the route;
//! within the interval the refresh still succeeds (the interval bounds how
//! long a disabled user keeps access); Cognito down defers the refresh (503)
//! without revoking; and the store never holds Cognito's refresh token in
//! the clear.

use std::path::Path;

use serde_json::Value;

use super::{Extras, PASSWORD, USERNAME, World};
use crate::support::peers::HostedUi;

fn world(interval: &str) -> World {
    World::start_with(Extras { idp_recheck_interval: Some(interval.to_owned()), ..Extras::default() })
}

fn recheck_checks(world: &World, extra: &[&str]) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/recheck_checks.py");
    cmd.args(["--gateway", &world.gateway_url, "--username", USERNAME, "--password", PASSWORD])
        .args(["--moto", world.cognito.moto.endpoint(), "--pool-id", &world.cognito.provisioned.pool_id])
        .args(extra);
    world.run_json("recheck_checks.py", cmd)
}

/// The refresh grants the stand-in answered (`ok`: tokens, else refused).
fn idp_refreshes(world: &World) -> Vec<Value> {
    world
        .cognito
        .hosted_ui
        .log()
        .into_iter()
        .filter(|e| e["grant_type"] == "refresh_token" && e.get("ok").is_some())
        .collect()
}

/// Every byte of the SQLite store (the database and its WAL).
fn store_bytes(dir: &Path) -> Vec<u8> {
    ["gw.db", "gw.db-wal", "gw.db-shm"].iter().filter_map(|name| std::fs::read(dir.join(name)).ok()).flatten().collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[test]
fn a_disabled_user_cannot_refresh_and_the_family_access_token_is_refused() {
    let world = world("0s");
    let out = recheck_checks(&world, &["--then", "disable"]);
    let ctx = || format!("{out:#}\n\n{}", world.logs());

    assert_eq!(out["first_refresh"]["status"], 200, "{}", ctx());
    assert_eq!(out["first_refresh"]["rotated"], true, "{}", ctx());
    assert_eq!(out["access_after_first_refresh"], 200, "{}", ctx());
    let checks = idp_refreshes(&world);
    assert_eq!(
        checks.first().map(|e| &e["ok"]),
        Some(&Value::Bool(true)),
        "the first refresh asked Cognito: {}",
        ctx()
    );

    assert_eq!(out["second_refresh"]["status"], 400, "{}", ctx());
    assert_eq!(out["second_refresh"]["error"], "invalid_grant", "{}", ctx());
    assert!(
        out["second_refresh"]["error_description"].as_str().is_some_and(|d| d.contains("identity provider")),
        "the description says why: {}",
        ctx()
    );
    assert_eq!(
        idp_refreshes(&world).last().map(|e| &e["reason"]),
        Some(&Value::from("User is disabled.")),
        "{}",
        ctx()
    );
    assert_eq!(out["access_after_second_refresh"], 401, "the family's access token is revoked: {}", ctx());

    // Cognito's refresh tokens never reach the store in the clear.
    let issued = world.cognito.hosted_ui.issued_refresh_tokens();
    assert!(!issued.is_empty(), "the stand-in handed out a refresh token: {}", ctx());
    let stored = store_bytes(world.cognito.path());
    let client_id = out["client_id"].as_str().expect("client id");
    assert!(contains(&stored, client_id), "the store file holds the family (client {client_id}): {}", ctx());
    for token in &issued {
        assert!(!contains(&stored, token), "Cognito's refresh token is stored in the clear: {}", ctx());
    }
}

#[test]
fn a_deleted_user_cannot_refresh() {
    let world = world("0s");
    let out = recheck_checks(&world, &["--then", "delete"]);
    let ctx = || format!("{out:#}\n\n{}", world.logs());

    assert_eq!(out["first_refresh"]["status"], 200, "{}", ctx());
    assert_eq!(out["second_refresh"]["status"], 400, "{}", ctx());
    assert_eq!(out["second_refresh"]["error"], "invalid_grant", "{}", ctx());
    assert_eq!(
        idp_refreshes(&world).last().map(|e| &e["reason"]),
        Some(&Value::from("User does not exist.")),
        "{}",
        ctx()
    );
    assert_eq!(out["access_after_second_refresh"], 401, "{}", ctx());
}

#[test]
fn within_the_interval_a_disabled_user_still_refreshes() {
    let world = world("1h");
    let out = recheck_checks(&world, &["--then", "disable"]);
    let ctx = || format!("{out:#}\n\n{}", world.logs());

    assert_eq!(out["first_refresh"]["status"], 200, "{}", ctx());
    assert_eq!(out["second_refresh"]["status"], 200, "not re-checked before the interval: {}", ctx());
    assert_eq!(out["second_refresh"]["rotated"], true, "{}", ctx());
    assert_eq!(out["access_after_second_refresh"], 200, "{}", ctx());
    assert!(idp_refreshes(&world).is_empty(), "no refresh reached Cognito within the interval: {}", ctx());
}

#[test]
fn a_replay_within_the_grace_window_gets_the_same_answer_without_asking_cognito_again() {
    let world = World::start_with(Extras {
        idp_recheck_interval: Some("0s".into()),
        refresh_grace_seconds: Some(30),
        ..Extras::default()
    });
    let out = recheck_checks(&world, &["--replay"]);
    let ctx = || format!("{out:#}\n\n{}", world.logs());

    assert_eq!(out["first_refresh"]["status"], 200, "{}", ctx());
    assert_eq!(out["replay"]["status"], 200, "{}", ctx());
    assert_eq!(out["replay"]["same_answer"], true, "the earlier answer: {}", ctx());
    assert_eq!(idp_refreshes(&world).len(), 1, "one re-check for the refresh and its replay: {}", ctx());
}

#[test]
fn cognito_down_defers_the_refresh_without_revoking_the_family() {
    let mut world = world("0s");
    let saved = world.cognito.path().join("recheck-tokens.json");
    let saved_arg = saved.to_string_lossy().into_owned();
    let before = recheck_checks(&world, &["--save", &saved_arg]);
    assert_eq!(before["first_refresh"]["status"], 200, "{before:#}\n\n{}", world.logs());

    let port = world.cognito.hosted_ui.port();
    world.cognito.hosted_ui.stop();
    let down = recheck_checks(&world, &["--resume", &saved_arg]);
    let ctx = || format!("{down:#}\n\n{}", world.logs());
    assert_eq!(down["refresh"]["status"], 503, "{}", ctx());
    assert_eq!(down["refresh"]["error"], "temporarily_unavailable", "{}", ctx());
    assert!(down["refresh"]["retry_after"].is_string(), "{}", ctx());
    assert_eq!(down["access"], 200, "the family's access token still works: {}", ctx());

    // Cognito back: the same refresh token works (nothing was rotated or revoked).
    let cognito = &world.cognito;
    let restarted =
        HostedUi::start_on(&cognito.tools, cognito.moto.endpoint(), &cognito.provisioned.pool_id, cognito.path(), port);
    world.cognito.hosted_ui = restarted;
    let back = recheck_checks(&world, &["--resume", &saved_arg]);
    assert_eq!(back["refresh"]["status"], 200, "{back:#}\n\n{}", world.logs());
    assert_eq!(back["refresh"]["rotated"], true, "{back:#}");
    assert_eq!(idp_refreshes(&world).len(), 1, "the restarted stand-in answered the re-check: {}", world.logs());
}
