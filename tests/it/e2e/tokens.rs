//! The gateway's token rules over plain HTTP after a real login
//! (`tests/e2e/token_checks.py`): single-use codes, the 401 challenge, tokens
//! bound to one route, refresh rotation with reuse detection, revocation, and
//! state that survives a restart (SQLite store, signing key).

use serde_json::Value;

use super::{PASSWORD, USERNAME, World};

fn token_checks(world: &World, extra: &[&str]) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/token_checks.py");
    cmd.args(["--gateway", &world.gateway_url, "--username", USERNAME, "--password", PASSWORD])
        .args(["--route", "/mcp/echo", "--other-route", "/mcp/other"])
        .args(extra);
    world.run_json("token_checks.py", cmd)
}

fn challenge_names(out: &Value, slug: &str, gateway: &str) -> bool {
    let expected = format!("resource_metadata=\"{gateway}/.well-known/oauth-protected-resource/mcp/{slug}\"");
    out["www_authenticate"].as_str().is_some_and(|h| h.starts_with("Bearer") && h.contains(&expected))
}

#[test]
fn codes_route_binding_refresh_rotation_reuse_and_revocation() {
    let world = World::start();
    let out = token_checks(&world, &[]);
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    let gw = world.gateway_url.as_str();

    assert!(out["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{}", ctx());
    assert_eq!(out["expires_in"], 900, "the default access token TTL: {}", ctx());
    assert_eq!(out["code_reuse"]["status"], 400, "{}", ctx());
    assert_eq!(out["code_reuse"]["error"], "invalid_grant", "{}", ctx());
    assert_eq!(out["access_after_code_reuse"]["status"], 401, "a replayed code revokes its tokens: {}", ctx());

    assert_eq!(out["no_token"]["status"], 401, "{}", ctx());
    assert!(challenge_names(&out["no_token"], "echo", gw), "{}", ctx());
    assert_eq!(out["garbage_token"]["status"], 401, "{}", ctx());
    assert!(challenge_names(&out["garbage_token"], "echo", gw), "{}", ctx());
    assert_eq!(out["access_on_route"]["status"], 200, "{}", ctx());
    assert_eq!(out["access_on_other_route"]["status"], 401, "a token is bound to its route: {}", ctx());
    assert!(challenge_names(&out["access_on_other_route"], "other", gw), "{}", ctx());

    assert_eq!(out["refresh"]["status"], 200, "{}", ctx());
    assert_eq!(out["refresh"]["rotated"], true, "{}", ctx());
    assert_eq!(out["refreshed_access_on_route"]["status"], 200, "{}", ctx());
    assert_eq!(out["refresh_reuse"]["status"], 400, "{}", ctx());
    assert_eq!(out["refresh_reuse"]["error"], "invalid_grant", "{}", ctx());
    assert_eq!(out["rotated_after_reuse"]["error"], "invalid_grant", "reuse revokes the family: {}", ctx());
    assert_eq!(out["refreshed_access_after_reuse"]["status"], 401, "and its access tokens: {}", ctx());

    assert_eq!(out["revoke_status"], 200, "{}", ctx());
    assert_eq!(out["refresh_after_revoke"]["error"], "invalid_grant", "{}", ctx());
    assert_eq!(out["access_after_revoke"]["status"], 401, "{}", ctx());
}

#[test]
fn grants_survive_a_graceful_gateway_restart() {
    let mut world = World::start();
    let saved = world.cognito.path().join("tokens.json");
    let saved_arg = saved.to_string_lossy().into_owned();
    let before = token_checks(&world, &["--save", &saved_arg]);
    assert_eq!(before["access_on_route"]["status"], 200, "{before:#}\n\n{}", world.logs());

    world.restart_gateway();

    let after = token_checks(&world, &["--resume", &saved_arg]);
    let ctx = || format!("{after:#}\n\n{}", world.logs());
    // The signing key, the registered client and the refresh token were kept.
    assert_eq!(after["old_access_on_route"]["status"], 200, "{}", ctx());
    assert_eq!(after["refresh_status"], 200, "{}", ctx());
    assert_eq!(after["new_access_on_route"]["status"], 200, "{}", ctx());
}
