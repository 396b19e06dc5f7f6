//! ID tokens the gateway must refuse at `/oauth/callback`.
//!
//! The hosted UI stand-in hands out a crafted ID token (minted with moto's
//! shipped private key unless the case is about the key) on its next token
//! response; the browser leg is walked to the callback; the gateway must stop
//! there: no consent page, no code for the client. A clean login first proves
//! the walk reaches the consent page when nothing is wrong.

use serde_json::{Value, json};

use super::{PASSWORD, USERNAME, World};

fn walk(world: &World) -> Value {
    let mut cmd = world.tools().python_script("tests/e2e/browser_walk.py");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/echo"])
        .args(["--username", USERNAME, "--password", PASSWORD, "--decision", "stop"]);
    world.run_json("browser_walk.py", cmd)
}

#[test]
fn callback_rejects_crafted_id_tokens() {
    let mut world = World::start();

    let clean = walk(&world);
    assert!(
        clean["consent_text"].as_str().is_some_and(|t| !t.is_empty()),
        "a clean login must reach the consent page: {clean:#}\n\n{}",
        world.logs()
    );

    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{}", world.cognito.provisioned.pool_id);
    let cases: Vec<(&str, Value)> = vec![
        ("expired", json!({"exp_offset": -600})),
        ("wrong issuer", json!({"claims": {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeoneElse"}})),
        ("issuer of another region", json!({"claims": {"iss": issuer.replace("us-east-1.amazonaws", "eu-west-1.amazonaws")}})),
        ("wrong audience", json!({"claims": {"aud": "another-app-client"}})),
        ("token_use access", json!({"claims": {"token_use": "access"}})),
        ("unknown kid", json!({"kid": "kid-nobody-publishes", "key": "random"})),
        ("alg none", json!({"alg": "none"})),
        ("signed by another key under moto's kid", json!({"key": "random"})),
        ("wrong nonce", json!({"claims": {"nonce": "not-the-gateways-nonce"}})),
        ("no nonce", json!({"claims": {"nonce": null}})),
    ];
    let mut failures = Vec::new();
    for (name, mutation) in &cases {
        world.cognito.hosted_ui.queue_id_token_mutation(mutation);
        let out = walk(&world);
        let served = world
            .cognito
            .hosted_ui
            .log()
            .iter()
            .any(|e| e.get("crafted_id_token") == Some(mutation));
        let reached_consent = out["consent_text"].as_str().is_some_and(|t| !t.is_empty());
        let got_code = out["params"]["code"].is_string();
        let refused = match out["kind"].as_str() {
            Some("page") => out["status"].as_u64().is_some_and(|s| s >= 400),
            Some("redirect") => out["params"]["error"].is_string(),
            _ => false,
        };
        if !served || reached_consent || got_code || !refused {
            failures.push(format!(
                "{name}: served={served} reached_consent={reached_consent} got_code={got_code} refused={refused}\n  {out}"
            ));
        }
    }
    assert!(world.gateway.is_running(), "the gateway died:\n{}", world.logs());
    assert!(failures.is_empty(), "ID tokens accepted at the callback:\n{}\n\n{}", failures.join("\n"), world.logs());

    // The gateway still logs users in afterwards (a refused token poisons nothing).
    let after = walk(&world);
    assert!(after["consent_text"].as_str().is_some_and(|t| !t.is_empty()), "{after:#}\n\n{}", world.logs());
}
