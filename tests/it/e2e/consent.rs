//! The consent page in headless Chromium (Debian `chromium` + npm `playwright-core`):
//! the page names the client, the route and the user; Approve completes the
//! flow (the client's redirect gets a code it can exchange); Deny returns
//! `access_denied`. The Approve run keeps `tests/artifacts/consent.png`.

use super::{EMAIL, PASSWORD, USERNAME, World};

#[test]
fn consent_page_in_chromium_approve_then_deny() {
    let world = World::start();
    let screenshot = World::artifacts_dir().join("consent.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut cmd = world.tools().node_script("consent.mjs");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/echo"])
        .args(["--username", USERNAME, "--password", PASSWORD, "--expect-user", EMAIL])
        .args(["--decisions", "approve,deny"])
        .arg("--executable-path")
        .arg(world.tools().chromium())
        .arg("--screenshot")
        .arg(&screenshot);
    let out = world.run_json("consent.mjs", cmd);
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    let (approved, denied) = (&out["runs"][0], &out["runs"][1]);

    for run in [approved, denied] {
        let checks = &run["checks"];
        assert_eq!(checks["shows_client_name"], true, "{}", ctx());
        assert_eq!(checks["shows_route"], true, "{}", ctx());
        assert_eq!(checks["shows_user"], true, "{}", ctx());
        assert_eq!(checks["url_is_gateway"], true, "{}", ctx());
        assert_eq!(checks["has_deny"], true, "{}", ctx());
        assert_eq!(checks["shows_redirect_host"], true, "the redirect host is named: {}", ctx());
        assert_eq!(checks["not_frameable"], true, "X-Frame-Options DENY or frame-ancestors 'none': {}", ctx());
        assert_eq!(run["redirect"]["state_matches"], true, "{}", ctx());
    }

    assert_eq!(approved["decision"], "approve");
    assert!(approved["redirect"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{}", ctx());
    assert!(approved["redirect"]["error"].is_null(), "{}", ctx());
    assert_eq!(approved["token"]["status"], 200, "the approved code is exchangeable: {}", ctx());
    assert_eq!(approved["token"]["has_access_token"], true, "{}", ctx());
    let png = std::fs::read(&screenshot).unwrap_or_else(|e| panic!("screenshot {}: {e}", screenshot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{} is not a real PNG", screenshot.display());

    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["redirect"]["error"], "access_denied", "{}", ctx());
    assert!(denied["redirect"]["code"].is_null(), "{}", ctx());
}
