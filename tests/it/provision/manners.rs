//! The CLI behaves like the tools people already know: a reader that closes
//! the output early ends the command quietly (as `ls | head`), `--profile`
//! wins over keys in the environment (as the aws CLI), and a malformed
//! `--endpoint-url` is bad input, refused before anything runs.

use std::process::Stdio;

use crate::support::cli::{Run, Workspace, unique_stack};
use crate::support::moto::MotoServer;

/// `cognigate ARGS` writing into a pipe whose reader is already gone, so the
/// first write to stdout fails with EPIPE (Rust ignores SIGPIPE).
fn run_into_closed_pipe(ws: &Workspace, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = ws
        .command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cognigate");
    Run::from(child.wait_with_output().expect("wait"))
}

#[test]
fn a_reader_that_closes_early_ends_every_command_quietly() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("pipe");
    ws.run(&["up", "--stack", &stack, "--group", "readers"]).success();
    ws.run(&["user", "add", "pipe@example.com", "--stack", &stack, "--suppress-invite"]).success();
    let commands: [&[&str]; 9] = [
        &["user", "list", "--stack", &stack],
        &["plan", "--stack", &stack],
        &["plan", "--stack", &stack, "--output", "json"],
        &["doctor", "--stack", &stack],
        &["outputs", "--stack", &stack],
        &["export", "terraform", "--stack", &stack],
        &["man"],
        &["completions", "bash"],
        &["up", "--stack", &stack],
    ];
    for args in commands {
        let reading = ws.run(args);
        let closed = run_into_closed_pipe(&ws, args);
        assert!(
            !closed.stderr.contains("panicked") && !closed.stderr.contains("Broken pipe"),
            "`cognigate {}` into a closed pipe complained:\n{}",
            args.join(" "),
            closed.stderr
        );
        assert_eq!(
            closed.code,
            reading.code,
            "`cognigate {}` exits differently when nobody reads its output:\n{}",
            args.join(" "),
            closed.stderr
        );
    }
}

#[test]
fn a_named_profile_wins_over_keys_in_the_environment_as_in_the_aws_cli() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("profile");
    // The environment holds access keys (Workspace::command sets them).
    let named = ws.run(&["plan", "--stack", &stack, "--profile", "nosuch"]);
    let named = named.failure(64, "the AWS profile \"nosuch\" does not exist");
    assert!(named.stderr.contains("aws configure --profile nosuch"), "no fix named:\n{}", named.stderr);
    assert!(!named.stderr.contains("no AWS credentials found"), "{}", named.stderr);

    // A profile the credentials file defines is used through the same path.
    ws.write(".aws/credentials", "[team]\naws_access_key_id = team-key\naws_secret_access_key = team-secret\n");
    ws.run(&["plan", "--stack", &stack, "--profile", "team"]).success();

    // AWS_PROFILE yields to the keys, as in the aws CLI; doctor, without keys,
    // still names it.
    ws.run_env(&["plan", "--stack", &stack], &[("AWS_PROFILE", "nosuch")]).success();
    let doctor = ws.run_env(&["doctor", "--stack", &stack], &[("AWS_PROFILE", "nosuch"), ("AWS_ACCESS_KEY_ID", "")]);
    assert!(doctor.stdout.contains("\"nosuch\" does not exist"), "{}\n{}", doctor.stdout, doctor.stderr);
}

#[test]
fn an_endpoint_without_a_scheme_is_refused_while_parsing() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    for args in [
        &["plan", "--stack", "x", "--endpoint-url", "localhost:4566"][..],
        &["user", "list", "--endpoint-url", "localhost:4566"],
    ] {
        let run = ws.run(args).failure(64, "localhost:4566");
        assert!(run.stderr.contains("no scheme") && run.stderr.contains("http://localhost:4566"), "{}", run.stderr);
    }
    let from_env = ws.run_env(&["plan", "--stack", "x"], &[("AWS_ENDPOINT_URL", "127.0.0.1:4566")]);
    from_env.failure(64, "write http://127.0.0.1:4566");
    ws.write("cognigate.toml", "endpoint_url = \"localhost:4566\"\n");
    let from_file = ws.run_env(&["plan", "--stack", "x"], &[("AWS_ENDPOINT_URL", "")]);
    from_file.failure(64, "no scheme");
}

#[test]
fn user_commands_find_the_pool_through_the_env_file_alone() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("envonly");
    ws.run(&["up", "--stack", &stack, "--env-file", "gateway.env"]).success();
    ws.run(&["user", "add", "envonly@example.com", "--env-file", "gateway.env", "--suppress-invite"]).success();
    let list = ws.run(&["user", "list", "--env-file", "gateway.env", "--output", "json"]).success().json();
    let users = list["users"].as_array().expect("users");
    assert!(users.iter().any(|u| u.to_string().contains("envonly@example.com")), "{list}");
    // Without the file, the error still says how to name the stack.
    ws.run(&["user", "list"]).failure(64, "no stack name");
}
