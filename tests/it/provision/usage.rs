//! The command line itself: each subcommand's help lists only the flags that
//! apply to it, values from the environment are never echoed, and the short
//! forms agree across subcommands.

use crate::support::cli::isolated_command;

fn help(subcommand: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = isolated_command(dir.path())
        .args([subcommand, "--help"])
        .env("COGNIGATE_STACK", "stack-from-the-environment")
        .env("COGNIGATE_ENV_FILE", "env-from-the-environment")
        .output()
        .unwrap();
    assert!(output.status.success(), "{subcommand} --help failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn flags(help: &str) -> Vec<String> {
    help.split_whitespace()
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn outputs_and_rotate_secret_list_only_their_flags() {
    let shaping = ["--ttl", "--deletion-protection", "--callback-url", "--no-localhost-callback", "--gateway-url"];
    for subcommand in ["outputs", "rotate-secret"] {
        let listed = flags(&help(subcommand));
        for flag in shaping {
            assert!(!listed.iter().any(|f| f == flag), "`{subcommand} --help` lists {flag}: {listed:?}");
        }
        assert!(listed.iter().any(|f| f == "--env-file"), "{subcommand}: {listed:?}");
    }
    assert!(!flags(&help("rotate-secret")).iter().any(|f| f == "--policies-file"));
    let up = flags(&help("up"));
    for flag in shaping {
        assert!(up.iter().any(|f| f == flag), "`up --help` lacks {flag}");
    }
}

#[test]
fn environment_values_are_never_echoed() {
    for subcommand in ["up", "plan", "outputs", "destroy"] {
        let text = help(subcommand);
        assert!(text.contains("COGNIGATE_STACK"), "the variable is named: {text}");
        assert!(!text.contains("stack-from-the-environment"), "`{subcommand} --help` shows an env value");
        assert!(!text.contains("env-from-the-environment"), "`{subcommand} --help` shows an env value");
    }
}

#[test]
fn destroy_takes_dash_y_like_up() {
    let dir = tempfile::tempdir().unwrap();
    for subcommand in ["up", "destroy"] {
        let output = isolated_command(dir.path()).args([subcommand, "-y", "--stack", "x"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("unexpected argument"), "{subcommand} -y: {stderr}");
    }
}
