//! The CI recipes in `examples/ci` are parsed as YAML and every `cognigate`
//! command in them is checked against the binary: a renamed or removed flag
//! breaks this test before it breaks a user's pipeline.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::support::cli::BIN;
use crate::support::peers::repo_root;

const RECIPES: [&str; 2] = ["examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"];

fn commands() -> Vec<Value> {
    let root = repo_root();
    let output = Command::new(crate::support::venv().join("bin/python"))
        .arg(root.join("tests/support/ci_recipes.py"))
        .args(RECIPES.iter().map(|r| root.join(r)))
        .output()
        .expect("run ci_recipes.py");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice::<Value>(&output.stdout).expect("JSON").as_array().cloned().unwrap_or_default()
}

fn help(subcommand: &str) -> String {
    let output = Command::new(BIN).args([subcommand, "--help"]).output().expect("run cognigate");
    assert!(
        output.status.success(),
        "`cognigate {subcommand} --help` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_flag_the_recipes_use_exists() {
    let commands = commands();
    let mut helps: HashMap<String, String> = HashMap::new();
    for command in &commands {
        let subcommand = command["subcommand"].as_str().unwrap();
        let help = helps.entry(subcommand.to_owned()).or_insert_with(|| help(subcommand));
        for flag in command["flags"].as_array().unwrap() {
            let flag = flag.as_str().unwrap();
            let listed = help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=').any(|w| w == flag);
            assert!(
                listed,
                "{} ({}): `cognigate {subcommand}` has no {flag}\n{help}",
                command["file"], command["text"]
            );
        }
    }
    let used: Vec<(&str, &str)> =
        commands.iter().map(|c| (c["file"].as_str().unwrap(), c["subcommand"].as_str().unwrap())).collect();
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        for subcommand in ["up", "doctor", "destroy", "gc"] {
            assert!(used.contains(&(file, subcommand)), "{file} does not run `cognigate {subcommand}`");
        }
    }
}

#[test]
fn the_recipes_clean_up_and_keep_the_secret_out_of_logs() {
    let commands = commands();
    let destroy_when = |file: &str| {
        commands
            .iter()
            .find(|c| c["file"] == file && c["subcommand"] == "destroy")
            .map(|c| c["when"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(destroy_when("github-actions.yml").as_deref(), Some("always()"), "destroy must run when tests fail");
    assert_eq!(destroy_when("gitlab-ci.yml").as_deref(), Some("after_script"), "destroy must run when tests fail");

    let github = std::fs::read_to_string(repo_root().join(RECIPES[0])).unwrap();
    assert!(github.contains("::add-mask::"), "the secret is masked before anything prints it");
    assert!(github.contains("$GITHUB_OUTPUT"), "outputs go to $GITHUB_OUTPUT");
    let up = commands.iter().find(|c| c["file"] == "github-actions.yml" && c["subcommand"] == "up").unwrap();
    assert!(up["flags"].as_array().unwrap().contains(&Value::from("--output")), "up --output json feeds the outputs");
}
