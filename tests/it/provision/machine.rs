//! Machine clients on the provisioning side, against moto behind the strict
//! peer (which knows Cognito's rules for client credentials clients and keeps
//! the resource servers): `up` and `plan` with the resource server and its
//! route scopes, `cognigate client add|list|rotate-secret|remove`, where the
//! secret goes, and `destroy` taking the machine clients with the pool.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::cli::{Workspace, block_on, sdk, unique_stack};
use crate::support::moto::MotoServer;

fn routes(slugs: &[&str]) -> String {
    let paths: serde_json::Map<String, Value> = slugs
        .iter()
        .map(|slug| {
            let handler = serde_json::json!({"export": "McpProxyHandler", "module": "$import(@zuplo/runtime/mcp-gateway)",
                "options": {"rewritePattern": "http://127.0.0.1:8000/mcp"}});
            let route = serde_json::json!({"post": {"x-zuplo-route": {"handler": handler,
                "policies": {"inbound": ["cognito-managed-oauth"]}}}});
            (format!("/mcp/{slug}"), route)
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({"openapi": "3.1.0", "paths": paths})).unwrap()
}

fn mode(ws: &Workspace, file: &str) -> u32 {
    std::fs::metadata(ws.path(file)).unwrap().permissions().mode() & 0o777
}

#[test]
fn up_gives_the_pool_route_scopes_and_plan_shows_new_routes() {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack("m2m-up");
    let gw = ["--gateway-url", "https://mcp.example.com"];
    ws.write("config/routes.oas.json", &routes(&["docs"]));
    let up = ws.run(&[&["up", "--stack", &stack, "--output", "json"], &gw[..]].concat()).success().json();
    assert_eq!(up["resourceServer"]["identifier"], "https://mcp.example.com", "{up:#}");
    assert_eq!(up["resourceServer"]["outcome"], "created");
    assert_eq!(up["resourceServer"]["scopes"], serde_json::json!(["mcp:all", "mcp:route.docs"]));
    let settled = ws.run(&[&["plan", "--stack", &stack, "--detailed-exitcode"], &gw[..]].concat());
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);

    // A route added later: plan shows the scope it gets, up adds it and keeps the others.
    ws.write("config/routes.oas.json", &routes(&["docs", "search"]));
    let planned = ws.run(&[&["plan", "--stack", &stack, "--detailed-exitcode"], &gw[..]].concat());
    assert_eq!(planned.code, 2, "{}{}", planned.stdout, planned.stderr);
    assert!(
        planned.stdout.contains("~ resource server https://mcp.example.com: will be updated in place")
            && planned
                .stdout
                .contains("scopes: [mcp:all, mcp:route.docs] → [mcp:all, mcp:route.docs, mcp:route.search]"),
        "{}",
        planned.stdout
    );
    ws.write("config/routes.oas.json", &routes(&["search"]));
    let up = ws.run(&[&["up", "--stack", &stack, "--output", "json"], &gw[..]].concat()).success().json();
    assert_eq!(up["resourceServer"]["outcome"], "updated");
    assert_eq!(
        up["resourceServer"]["scopes"],
        serde_json::json!(["mcp:all", "mcp:route.docs", "mcp:route.search"]),
        "a scope a client may hold is kept"
    );
    ws.run(&["destroy", "--stack", &stack, "--yes"]).success();
}

#[test]
fn client_add_list_rotate_remove_and_destroy() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("m2m-client");
    let s = stack.as_str();
    let up = ws.run(&["up", "--stack", s, "--gateway-url", "https://mcp.example.com", "--output", "json"]).success();
    let pool_id = up.json()["userPoolId"].as_str().unwrap().to_owned();

    // Bad input is refused before anything is created, naming the fix.
    ws.run(&["client", "add", "bot", "--stack", s]).failure(64, "--scope mcp:route.example");
    ws.run(&["client", "add", "bot", "--stack", s, "--scope", "mcp:route.nope"])
        .failure(64, "it has: mcp:all, mcp:route.example");
    ws.run(&["client", "add", "ci/bot", "--stack", s, "--scope", "mcp:all"]).failure(64, "client name");

    // To a secret file: never on stdout, mode 0600, Cognito's secret.
    let added =
        ws.run(&["client", "add", "bot", "--stack", s, "--scope", "mcp:route.example", "--secret-file", "bot.secret"]);
    let added = added.success();
    assert!(added.stdout.contains("per app client and per token request"), "{}", added.stdout);
    let client_id = added.stdout.split("(client id ").nth(1).and_then(|r| r.split(')').next()).unwrap().to_owned();
    let described = block_on(aws.describe_user_pool_client().user_pool_id(&pool_id).client_id(&client_id).send())
        .unwrap()
        .user_pool_client
        .unwrap();
    let secret = described.client_secret().unwrap().to_owned();
    assert_eq!(ws.read("bot.secret").trim(), secret);
    assert_eq!(mode(&ws, "bot.secret"), 0o600);
    assert!(!added.stdout.contains(&secret), "{}", added.stdout);
    assert!(added.stdout.contains("$(cat bot.secret)"), "{}", added.stdout);
    let flows: Vec<&str> = described.allowed_o_auth_flows().iter().map(|f| f.as_str()).collect();
    assert_eq!(flows, ["client_credentials"]);
    assert_eq!(described.allowed_o_auth_scopes(), ["https://mcp.example.com/mcp:route.example"]);
    assert!(described.callback_urls().is_empty());

    // JSON: masked unless asked; an env file of its own, mode 0600.
    let masked = ws.run(&["client", "add", "bot2", "--stack", s, "--scope", "mcp:all", "--output", "json"]).success();
    assert_eq!(masked.json()["clientSecret"], "(sensitive)", "{}", masked.stdout);
    ws.write("agent.env", "KEEP=me\n");
    let shown = ws
        .run(&[
            "client",
            "add",
            "bot3",
            "--stack",
            s,
            "--scope",
            "mcp:all",
            "--write-env",
            "agent.env",
            "--output",
            "json",
            "--show-secret",
        ])
        .success()
        .json();
    let env = ws.read("agent.env");
    assert!(env.starts_with("KEEP=me\n"), "{env}");
    assert!(env.contains(&format!("MCP_CLIENT_SECRET={}", shown["clientSecret"].as_str().unwrap())), "{env}");
    assert!(env.contains("MCP_TOKEN_URL=https://mcp.example.com/oauth/token"), "{env}");
    assert_eq!(mode(&ws, "agent.env"), 0o600);
    ws.run(&["client", "add", "bot", "--stack", s, "--scope", "mcp:all"]).failure(64, "already has a machine client");

    let listed = ws.run(&["client", "list", "--stack", s, "--output", "json"]).success().json();
    let clients = listed["clients"].as_array().unwrap();
    let mut names: Vec<&str> = clients.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["bot", "bot2", "bot3"], "machine clients only, not the gateway's: {listed:#}");
    let bot = clients.iter().find(|c| c["name"] == "bot").unwrap();
    assert_eq!(bot["scopes"], serde_json::json!(["mcp:route.example"]));

    // Rotation: two secrets, then one.
    let secrets = || {
        block_on(aws.list_user_pool_client_secrets().user_pool_id(&pool_id).client_id(&client_id).send())
            .unwrap()
            .client_secrets()
            .len()
    };
    let rotated = ws.run(&["client", "rotate-secret", "bot", "--stack", s, "--yes", "--secret-file", "bot.secret"]);
    assert!(rotated.success().stdout.contains("previous secret keeps working"));
    assert_eq!(secrets(), 2);
    assert_ne!(ws.read("bot.secret").trim(), secret);
    ws.run(&["client", "rotate-secret", "bot", "--stack", s, "--yes"]).failure(64, "--finish");
    ws.run(&["client", "rotate-secret", "bot", "--stack", s, "--finish", "--yes"]).success();
    assert_eq!(secrets(), 1);

    let removed = ws.run(&["client", "remove", "bot", "--stack", s, "--yes"]).success();
    assert!(removed.stdout.contains(&format!("revoke --client {client_id}")), "{}", removed.stdout);
    let gone = block_on(aws.describe_user_pool_client().user_pool_id(&pool_id).client_id(&client_id).send());
    assert!(gone.is_err(), "the app client is deleted");
    ws.run(&["client", "remove", "bot", "--stack", s, "--yes"]).failure(64, "no machine client named");

    // destroy takes the machine clients and the resource server with the pool.
    let destroyed = ws.run(&["destroy", "--stack", s, "--yes", "--output", "json"]).success().json();
    let deleted = destroyed["destroyed"][0]["appClients"].as_array().unwrap().len();
    assert_eq!(deleted, 3, "the gateway's client and bot2, bot3: {destroyed:#}");
    assert_eq!(destroyed["destroyed"][0]["resourceServers"], serde_json::json!(["https://mcp.example.com"]));
}

#[test]
fn gc_takes_the_machine_clients_and_the_resource_server_with_an_expired_stack() {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack("m2m-gc");
    let s = stack.as_str();
    ws.run(&["up", "--stack", s, "--ttl", "1s"]).success();
    ws.run(&["client", "add", "nightly", "--stack", s, "--scope", "mcp:route.example", "--secret-file", "n"]).success();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let gc = ws.run(&["gc", "--prefix", s, "--output", "json"]).success().json();
    let deleted = &gc["removed"][0]["deleted"];
    assert_eq!(deleted["appClients"].as_array().map(Vec::len), Some(2), "the gateway's and nightly: {gc:#}");
    assert_eq!(deleted["resourceServers"], serde_json::json!(["http://localhost:9000"]), "{gc:#}");
}
