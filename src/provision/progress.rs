//! Progress for long waits (domains): a spinner on a terminal, plain lines
//! otherwise (CI logs), always on stderr so stdout stays machine-readable.

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `(escapes allowed, quiet)`, set once from the global flags.
static MODE: OnceLock<(bool, bool)> = OnceLock::new();

/// Applies `--no-color`/`NO_COLOR` (no spinner: it is drawn with escapes) and
/// `--quiet` (no progress at all) to every [`Progress`] made afterwards.
pub(crate) fn configure(color: bool, quiet: bool) {
    let _ = MODE.set((color, quiet));
}

#[derive(Debug)]
pub(crate) struct Progress {
    bars: Option<MultiProgress>,
    quiet: bool,
}

impl Progress {
    /// Spinners only when stderr is a terminal and output is not JSON.
    pub(crate) fn new(interactive: bool) -> Self {
        let (color, quiet) = MODE.get().copied().unwrap_or((true, false));
        let bars = (interactive && color && !quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { bars, quiet }
    }

    pub(crate) fn task(&self, label: String) -> Task {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Task { label, bar, quiet: self.quiet, last: Mutex::new(String::new()) }
    }
}

pub(crate) struct Task {
    label: String,
    bar: Option<ProgressBar>,
    quiet: bool,
    last: Mutex<String>,
}

impl Task {
    /// Reports a status; plain output prints a line only when it changes.
    pub(crate) fn update(&self, status: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(status.to_owned()),
            None if self.quiet => {}
            None => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                if *last != status {
                    eprintln!("{}: {status}", self.label);
                    *last = status.to_owned();
                }
            }
        }
    }

    pub(crate) fn finish(&self, status: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(status.to_owned()),
            None => self.update(status),
        }
    }
}
