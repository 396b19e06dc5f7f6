//! ID tokens the gateway must refuse at `/oauth/callback`.
//!
//! The hosted UI stand-in hands out a crafted ID token (minted with moto's
//! shipped private key unless the case is about the key) on its next token
//! response; the browser leg is walked to the callback; the gateway must stop
//! there: no consent page, no code for the client. A clean login first proves
//! the walk reaches the consent page when nothing is wrong.

use serde_json::{Value, json};

use super::{PASSWORD, USERNAME, World};

/// One walker process for all cases: `--decision stop` ends on the consent page.
fn walk(world: &World, cases: &[(&str, Option<Value>)]) -> Vec<Value> {
    let cases: Vec<Value> = cases.iter().map(|(name, m)| json!({"name": name, "mutation": m})).collect();
    let mut cmd = world.tools().python_script("tests/e2e/browser_walk.py");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/echo"])
        .args(["--username", USERNAME, "--password", PASSWORD, "--decision", "stop"])
        .args(["--hosted-ui", world.cognito.hosted_ui.url()])
        .args(["--cases", &Value::Array(cases).to_string()]);
    let out = world.run_json("browser_walk.py", cmd);
    out["results"].as_array().cloned().unwrap_or_else(|| panic!("no results: {out}"))
}

fn reached_consent(out: &Value) -> bool {
    out["consent_text"].as_str().is_some_and(|t| !t.is_empty())
}

#[test]
fn callback_rejects_crafted_id_tokens() {
    let mut world = World::start();
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{}", world.cognito.provisioned.pool_id);
    let rejected: Vec<(&str, Value)> = vec![
        ("expired", json!({"exp_offset": -600})),
        (
            "wrong issuer",
            json!({"claims": {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeoneElse"}}),
        ),
        (
            "issuer of another region",
            json!({"claims": {"iss": issuer.replace("us-east-1.amazonaws", "eu-west-1.amazonaws")}}),
        ),
        ("wrong audience", json!({"claims": {"aud": "another-app-client"}})),
        ("token_use access", json!({"claims": {"token_use": "access"}})),
        ("unknown kid", json!({"kid": "kid-nobody-publishes", "key": "random"})),
        ("alg none", json!({"alg": "none"})),
        ("signed by another key under moto's kid", json!({"key": "random"})),
        ("wrong nonce", json!({"claims": {"nonce": "not-the-gateways-nonce"}})),
        ("no nonce", json!({"claims": {"nonce": null}})),
    ];
    // A clean login first and last: the walk reaches the consent page when nothing is
    // wrong, and a refused token poisons nothing for the next login.
    let mut cases: Vec<(&str, Option<Value>)> = vec![("clean before", None)];
    cases.extend(rejected.iter().map(|(n, m)| (*n, Some(m.clone()))));
    cases.push(("clean after", None));
    let results = walk(&world, &cases);
    assert_eq!(results.len(), cases.len());

    let served = world.cognito.hosted_ui.log();
    let mut failures = Vec::new();
    for (out, (name, mutation)) in results.iter().zip(&cases) {
        let Some(mutation) = mutation else {
            if !reached_consent(out) {
                failures.push(format!("{name}: a clean login must reach the consent page\n  {out}"));
            }
            continue;
        };
        let was_served = served.iter().any(|e| e.get("crafted_id_token") == Some(mutation));
        let got_code = out["params"]["code"].is_string();
        let refused = match out["kind"].as_str() {
            Some("page") => out["status"].as_u64().is_some_and(|s| s >= 400),
            Some("redirect") => out["params"]["error"].is_string(),
            _ => false,
        };
        if !was_served || reached_consent(out) || got_code || !refused {
            failures.push(format!(
                "{name}: served={was_served} reached_consent={} got_code={got_code} refused={refused}\n  {out}",
                reached_consent(out)
            ));
        }
    }
    assert!(world.gateway.is_running(), "the gateway died:\n{}", world.logs());
    assert!(failures.is_empty(), "callback outcomes:\n{}\n\n{}", failures.join("\n"), world.logs());
}
