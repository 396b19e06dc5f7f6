//! The shell touches and `export terraform`: completions and the man page come
//! from the clap definitions, NO_COLOR and --quiet hold on real runs, and the
//! Terraform export parses as HCL with the live ids, settings and groups, laid
//! out as `terraform fmt` leaves it.

use std::process::Command;

use serde_json::Value;

use crate::support::cli::{Workspace, unique_stack};
use crate::support::moto::MotoServer;

#[test]
fn bash_completions_list_the_subcommands() {
    let ws = Workspace::bare("http://127.0.0.1:9");
    let out = ws.run(&["completions", "bash"]).success();
    for sub in ["up", "plan", "outputs", "rotate-secret", "destroy", "gc", "doctor", "export", "completions", "man"] {
        assert!(out.stdout.contains(sub), "{sub} missing from the bash completions");
    }
    assert!(out.stdout.contains("complete -F"), "not a bash completion script");
    assert!(out.stdout.contains("--login-page"), "subcommand flags are completed too");
}

#[test]
fn the_man_page_renders() {
    let ws = Workspace::bare("http://127.0.0.1:9");
    let out = ws.run(&["man"]).success();
    assert!(out.stdout.starts_with(".ie") || out.stdout.contains(".TH cognigate 1"), "{}", &out.stdout[..200]);
    // One page: one title and one NAME, then a section per command that
    // points nowhere else (no cognigate-up(1) pages exist).
    assert_eq!(out.stdout.matches(".TH ").count(), 1, "more than one page title");
    assert_eq!(out.stdout.matches(".SH NAME").count(), 1, "NAME appears more than once");
    for section in ["COGNIGATE UP", "COGNIGATE DOCTOR", "COGNIGATE USER ADD", "COGNIGATE ROTATE-SECRET"] {
        assert!(out.stdout.contains(&format!(".SH \"{section}\"")), "no section {section}");
    }
    assert!(!out.stdout.contains("(1)"), "the page refers to pages that do not exist");
    assert!(out.stdout.contains("\\fB\\-\\-login\\-page\\fR"), "a command's own flags are listed");
    let page = ws.path("cognigate.1");
    std::fs::write(&page, &out.stdout).unwrap();
    // groff is what `man` uses; when it is installed, the page must format without warnings.
    if let Ok(rendered) = Command::new("groff").args(["-man", "-Tutf8", "-ww"]).arg(&page).output() {
        assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
        assert!(
            String::from_utf8_lossy(&rendered.stderr).trim().is_empty(),
            "{}",
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
}

#[test]
fn quiet_prints_nothing_on_a_no_op_up_and_no_color_leaves_no_escapes() {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack("quiet");
    ws.run(&["up", "--stack", &stack]).success();
    let quiet = ws.run(&["up", "--stack", &stack, "--quiet"]).success();
    assert_eq!(quiet.stdout, "", "quiet no-op up printed something");
    assert_eq!(quiet.stderr, "");
    // An error still goes out under --quiet.
    ws.run(&["up", "--quiet"]).failure(64, "no stack name");
    // Nor do the other commands' summaries; data asked for (json) still does.
    for args in [&["outputs", "--stack", &stack, "--quiet"][..], &["gc", "--prefix", &stack, "--quiet"][..]] {
        let run = ws.run(args).success();
        assert_eq!(run.stdout, "", "{args:?} printed under --quiet");
    }
    let json = ws.run(&["outputs", "--stack", &stack, "--quiet", "--output", "json"]).success();
    assert!(json.json()["stack"] == stack.as_str(), "{}", json.stdout);
    let destroyed = ws.run(&["destroy", "--stack", &stack, "--quiet", "--yes"]).success();
    assert_eq!(destroyed.stdout, "", "destroy printed under --quiet");

    // NO_COLOR (and --no-color), even with logs at trace level: no ANSI escape anywhere.
    for args in [vec!["-vvv"], vec!["-vvv", "--no-color"]] {
        let mut cmd = ws.command();
        cmd.env("NO_COLOR", "1").args(["doctor", "--stack", &stack]).args(&args);
        let out = cmd.output().unwrap();
        let all = [out.stdout, out.stderr].concat();
        assert!(!all.is_empty());
        assert!(!all.contains(&0x1b), "an escape in {}", String::from_utf8_lossy(&all));
    }
}

#[test]
fn export_terraform_parses_as_hcl_with_the_live_ids() {
    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack("tf");
    let up = ws
        .run(&[
            "up",
            "--stack",
            &stack,
            "--gateway-url",
            "https://mcp.example.com",
            "--group",
            "readers",
            "--group",
            "team.a",
            "--show-secret",
            "--output",
            "json",
        ])
        .success()
        .json();
    let out = ws.run(&["export", "terraform", "--stack", &stack, "--out", "stack.tf"]).success();
    assert_eq!(out.stdout, "", "the file is written, stdout stays empty");
    let text = ws.read("stack.tf");
    assert!(!text.contains(up["clientSecret"].as_str().unwrap()), "the client secret is never exported");
    let same = ws.run(&["export", "terraform", "--stack", &stack]).success();
    assert_eq!(same.stdout, text, "stdout and --out write the same");

    let python = crate::support::venv().join("bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/parse_hcl.py");
    let parsed = Command::new(python).arg(script).arg(ws.path("stack.tf")).output().unwrap();
    assert!(
        parsed.status.success(),
        "python-hcl2 (tests/requirements.txt) could not parse it: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let doc: Value = serde_json::from_slice(&parsed.stdout).unwrap();

    // Laid out as `terraform fmt` leaves it: checked by the rules in
    // tests/support/hcl_format.py, and by terraform itself where installed.
    let format = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hcl_format.py");
    let checked =
        Command::new(crate::support::venv().join("bin/python")).arg(format).arg(ws.path("stack.tf")).output().unwrap();
    assert!(checked.status.success(), "not terraform fmt's layout:\n{}", String::from_utf8_lossy(&checked.stdout));
    if let Ok(fmt) = Command::new("terraform").args(["fmt", "-check", "-diff"]).arg(ws.path("stack.tf")).output() {
        assert!(fmt.status.success(), "terraform fmt would change it:\n{}", String::from_utf8_lossy(&fmt.stdout));
    }

    let (pool_id, client_id) = (up["userPoolId"].as_str().unwrap(), up["clientId"].as_str().unwrap());
    let prefix = up["userPoolDomain"].as_str().unwrap().split('.').next().unwrap();
    let imports: Vec<(String, String)> = doc["import"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["to"].as_str().unwrap().trim_matches(|c| c == '$' || c == '{' || c == '}').to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        imports,
        [
            ("aws_cognito_user_pool.stack".to_owned(), pool_id.to_owned()),
            ("aws_cognito_user_group.readers".to_owned(), format!("{pool_id}/readers")),
            ("aws_cognito_user_group.team_a".to_owned(), format!("{pool_id}/team.a")),
            ("aws_cognito_user_pool_domain.stack".to_owned(), prefix.to_owned()),
            ("aws_cognito_user_pool_client.gateway".to_owned(), format!("{pool_id}/{client_id}")),
        ]
    );
    let resource = |kind: &str, name: &str| -> Value {
        doc["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| r.get(kind).and_then(|r| r.get(name)).cloned())
            .unwrap_or_else(|| panic!("no {kind}.{name}"))
    };
    let pool = resource("aws_cognito_user_pool", "stack");
    assert_eq!(pool["name"], stack.as_str());
    assert_eq!(pool["tags"]["cognigate:stack"], stack.as_str());
    assert_eq!(resource("aws_cognito_user_pool_domain", "stack")["domain"], prefix);
    for (resource_name, group) in [("readers", "readers"), ("team_a", "team.a")] {
        let group_resource = resource("aws_cognito_user_group", resource_name);
        assert_eq!(group_resource["name"], group);
        assert_eq!(group_resource["user_pool_id"], "${aws_cognito_user_pool.stack.id}");
    }
    let client = resource("aws_cognito_user_pool_client", "gateway");
    assert_eq!(client["name"], format!("{stack}-gateway"));
    assert_eq!(client["generate_secret"], true);
    assert_eq!(client["allowed_oauth_flows"], serde_json::json!(["code"]));
    assert_eq!(client["allowed_oauth_scopes"], serde_json::json!(["openid", "profile", "email"]));
    assert_eq!(client["callback_urls"], up["callbackUrls"]);
    assert!(client.get("client_secret").is_none());
}
