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
