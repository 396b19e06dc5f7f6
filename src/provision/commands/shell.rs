//! `cognigate completions <shell>` and `cognigate man`: generated from the
//! clap definitions, so they always list the flags the binary has.

use clap::CommandFactory;

use crate::provision::cli::Cli;
use crate::provision::error::{Error, Result};
use crate::provision::stdout;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "cognigate", &mut out);
    stdout::write_bytes(&out);
    Ok(())
}

/// Prints the man page (section 1, roff) on stdout: the top-level page, then
/// one section per subcommand with its own flags.
pub(crate) fn man() -> Result<()> {
    let command = Cli::command();
    let mut out = Vec::new();
    let render = |command: clap::Command, out: &mut Vec<u8>| {
        clap_mangen::Man::new(command)
            .render(out)
            .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))
    };
    render(command.clone(), &mut out)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("cognigate-{}", sub.get_name());
        render(sub.clone().name(name), &mut out)?;
    }
    stdout::write_bytes(&out);
    Ok(())
}
