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

/// A recipe file as JSON (through PyYAML, installed with moto).
fn recipe(path: &str) -> Value {
    let output = Command::new(crate::support::venv().join("bin/python"))
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(repo_root().join(path))
        .output()
        .expect("run python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn the_github_recipe_runs_one_job_per_pull_request_and_caches_the_build() {
    let github = recipe(RECIPES[0]);
    let preview = &github["jobs"]["preview"];
    let group = preview["concurrency"]["group"].as_str().unwrap_or_default();
    assert!(
        group.contains("github.event.pull_request.number"),
        "two runs of one pull request share stack pr-N: the preview job needs a concurrency group per pull request, got {:?}",
        preview["concurrency"]
    );
    for job in ["preview", "gc"] {
        let steps = github["jobs"][job]["steps"].as_array().unwrap();
        let cache = steps.iter().position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache@")));
        let install = steps.iter().position(|s| s["run"].as_str().is_some_and(|r| r.contains("cargo install")));
        let (Some(cache), Some(install)) = (cache, install) else {
            panic!("{job}: no cached build before `cargo install`: {steps:?}")
        };
        assert!(cache < install, "{job}: the cache is restored after the build");
        let id = steps[cache]["id"].as_str().unwrap_or_default();
        let condition = steps[install]["if"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && condition.contains(&format!("steps.{id}.outputs.cache-hit")),
            "{job}: cargo install runs even when the cache has the binary"
        );
        assert!(steps[cache]["with"]["path"].as_str().unwrap_or_default().contains("cognigate"));
    }
}
