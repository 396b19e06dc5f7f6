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

/// Prints the man page (section 1, roff) on stdout: one page with one NAME,
/// the top-level synopsis and options, the list of commands, then a section
/// per command (`COGNIGATE UP`, `COGNIGATE USER ADD`, …) with its own synopsis
/// and flags, so `man ./cognigate.1` reads as one document.
pub(crate) fn man() -> Result<()> {
    let mut command = Cli::command();
    command.build();
    let page = || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let top = clap_mangen::Man::new(command.clone());
        top.render_title(&mut out)?;
        top.render_name_section(&mut out)?;
        top.render_synopsis_section(&mut out)?;
        top.render_description_section(&mut out)?;
        top.render_options_section(&mut out)?;
        let mut list = Vec::new();
        top.render_subcommands_section(&mut list)?;
        out.extend(commands_list(&list, &command));
        for sub in commands_below(&command) {
            let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name()).to_uppercase();
            out.extend_from_slice(format!(".SH \"{name}\"\n").as_bytes());
            let man = clap_mangen::Man::new(sub.clone());
            let mut section = Vec::new();
            man.render_description_section(&mut section)?;
            man.render_synopsis_section(&mut section)?;
            if sub.get_arguments().any(|a| !a.is_hide_set()) {
                man.render_options_section(&mut section)?;
            }
            out.extend(subsections(&section));
        }
        top.render_version_section(&mut out)?;
        Ok(strings_defined_once(&out))
    };
    let out = page().map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
    stdout::write_bytes(&out);
    Ok(())
}

/// Every command below the top, depth first (`user`, then `user add`, …),
/// without clap's generated `help`.
fn commands_below(command: &clap::Command) -> Vec<&clap::Command> {
    let mut below = Vec::new();
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        below.push(sub);
        below.extend(commands_below(sub));
    }
    below
}

/// The rendered list of commands, pointing at the sections of this page
/// instead of one page per command (`cognigate\-up(1)` becomes
/// `cognigate up`), without `help`.
fn commands_list(roff: &[u8], command: &clap::Command) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(roff).into_owned();
    for sub in command.get_subcommands() {
        let page = format!("cognigate\\-{}(1)", sub.get_name().replace('-', "\\-"));
        let section = format!("\\fBcognigate {}\\fR", sub.get_name().replace('-', "\\-"));
        text = text.replace(&page, &section);
    }
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == ".TP" && lines.peek().is_some_and(|next| next.contains("cognigate help")) {
            lines.next();
            lines.next();
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

/// A rendered page's sections (`.SH`) as subsections (`.SS`) of a command's section.
fn subsections(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.strip_prefix(".SH ") {
            Some(title) => out.push_str(&format!(".SS {title}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// clap_mangen opens every part it renders with the same two string
/// definitions; the page needs them once, before its title.
fn strings_defined_once(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut seen = Vec::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let defines = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if defines && seen.contains(&line) {
            continue;
        }
        if defines {
            seen.push(line);
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}
