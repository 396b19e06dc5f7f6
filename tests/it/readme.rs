//! The README's promises, held against the binaries: the sample `up` output
//! is what `up` prints, the gateway's flag table is one table listing every
//! flag, the flags said to have no environment variable are exactly those,
//! and `--detailed-exitcode`'s codes include bad input's 64.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::cli::{BIN, Workspace, isolated_command, unique_stack};
use crate::support::moto::MotoServer;

const GATEWAY: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The `--flags` a `--help` text lists, and those of them without `[env: …]`.
fn help_flags(help: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut all, mut without_env) = (BTreeSet::new(), BTreeSet::new());
    let mut current: Option<(String, bool)> = None;
    let mut close = |entry: Option<(String, bool)>| {
        if let Some((flag, has_env)) = entry {
            if !has_env {
                without_env.insert(flag.clone());
            }
            all.insert(flag);
        }
    };
    for line in help.lines() {
        let trimmed = line.trim_start();
        let option = trimmed.strip_prefix("-").filter(|_| line.starts_with("  ")).map(|_| {
            trimmed
                .split([',', ' ', '='])
                .find(|w| w.starts_with("--"))
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_owned()
        });
        if let Some(flag) = option.filter(|f| !f.is_empty()) {
            close(current.take());
            current = Some((flag, line.contains("[env:")));
        } else if let Some((_, has_env)) = current.as_mut() {
            *has_env |= line.contains("[env:");
        }
    }
    close(current.take());
    for builtin in ["--help", "--version"] {
        all.remove(builtin);
        without_env.remove(builtin);
    }
    (all, without_env)
}

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(binary).args(args).arg("--help").output().expect("run --help");
    assert!(out.status.success(), "{binary} {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` with the ids that differ per run replaced by placeholders.
fn without_ids(text: &str, stack: &str) -> String {
    let mut words = Vec::new();
    for line in text.replace(stack, "my-mcp").lines() {
        let line: Vec<String> = line
            .split(' ')
            .map(|word| {
                if let Some(at) = word.find("us-east-1_") {
                    format!("{}POOL", &word[..at])
                } else if let Some(rest) = word.strip_prefix("my-mcp-").filter(|r| r.len() >= 8) {
                    format!("my-mcp-PREFIX{}", &rest[8..])
                } else {
                    word.to_owned()
                }
            })
            .collect();
        let line = line.join(" ");
        // The app client id is the word after "app client" in the summary.
        let line = match line.strip_prefix("  app client  ") {
            Some(rest) => format!("  app client  CLIENT{}", &rest[rest.find(' ').unwrap_or(rest.len())..]),
            None => line,
        };
        words.push(line);
    }
    words.join("\n")
}

#[test]
fn the_sample_up_output_is_what_up_prints() {
    let readme = readme();
    let start = readme.find("$ cognigate up --stack my-mcp --gateway-url https://mcp.example.com\n").expect("sample");
    let sample = &readme[start..];
    let sample = &sample[sample.find('\n').unwrap() + 1..sample.find("```").unwrap()];

    let ws = Workspace::new(MotoServer::shared().endpoint());
    let stack = unique_stack("readme");
    let up = ws.run(&["up", "--stack", &stack, "--gateway-url", "https://mcp.example.com", "--yes"]).success();
    assert_eq!(
        without_ids(sample.trim_end(), "my-mcp"),
        without_ids(up.stdout.trim_end(), &stack),
        "README.md's sample `up` output differs from what `up` prints"
    );
}

#[test]
fn the_gateway_flag_table_is_one_table_listing_every_flag() {
    let readme = readme();
    let header = "| flag (env) | default | meaning |";
    let start = readme.find(header).expect("the gateway's flag table");
    let after: Vec<&str> = readme[start..].lines().collect();
    let rows: Vec<&str> = after.iter().skip(2).take_while(|l| l.starts_with('|')).copied().collect();
    let rest = after.iter().skip(2 + rows.len()).take_while(|l| !l.starts_with('#') && !l.starts_with("```"));
    let stray: Vec<&&str> = rest.filter(|l| l.starts_with("| `")).collect();
    assert!(stray.is_empty(), "rows after a break in the table (rendered as text, not as the table): {stray:?}");
    let (flags, _) = help_flags(&help(GATEWAY, &[]));
    let missing: Vec<&String> =
        flags.iter().filter(|flag| !rows.iter().any(|row| row.starts_with(&format!("| `{flag}`")))).collect();
    assert!(missing.is_empty(), "cognigate-gateway flags without a row in the README's table: {missing:?}");
}

#[test]
fn the_flags_the_readme_says_have_no_variable_are_exactly_those() {
    let readme = readme();
    let start = readme.find("The flags\nthat steer one run have no variable").expect("the sentence in Settings");
    let sentence = &readme[start..start + readme[start..].find(".\n").expect("end of the sentence")];
    let listed: BTreeSet<String> =
        sentence.split('`').skip(1).step_by(2).filter(|w| w.starts_with("--")).map(str::to_owned).collect();
    let mut without_env = BTreeSet::new();
    for command in [
        &["up"][..],
        &["plan"],
        &["outputs"],
        &["rotate-secret"],
        &["destroy"],
        &["gc"],
        &["doctor"],
        &["export", "terraform"],
    ] {
        without_env.extend(help_flags(&help(BIN, command)).1);
    }
    assert_eq!(listed, without_env, "README.md's list of flags without an environment variable vs the binary's");
}

#[test]
fn detailed_exitcode_documents_bad_input_as_64() {
    let readme = readme();
    let row = readme.lines().find(|l| l.starts_with("| `cognigate plan` |")).expect("plan's row");
    assert!(row.contains("64 (bad input"), "plan's row does not give bad input's exit code: {row}");
    let dir = tempfile::tempdir().unwrap();
    let out = isolated_command(dir.path())
        .args(["plan", "--detailed-exitcode", "--stack", "-bad", "--region", "us-east-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
}
