//! Standard output that its reader may close early (`cognigate user list |
//! head`, `plan | true`). `println!` panics there; here what is left to print
//! is dropped and the command finishes and exits quietly, as `ls | head` does.
//! Finishing matters: `up | head -1` must not stop half-applied because its
//! reader went away. Any other write failure (a full disk behind `>`) is
//! reported once and makes the command exit 1, so lost output is never silent.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader is gone: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// A write failed for another reason than a closed reader.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout unless its reader is gone.
pub(crate) fn write_bytes(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => CLOSED.store(true, Ordering::Relaxed),
        Err(e) => {
            if !FAILED.swap(true, Ordering::Relaxed) {
                eprintln!("error: cannot write to stdout: {e}");
            }
        }
    }
}

/// Writes formatted text to stdout; [`out!`] and [`outln!`] call it.
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    match args.as_str() {
        Some(text) => write_bytes(text.as_bytes()),
        None => write_bytes(args.to_string().as_bytes()),
    }
}

/// Whether some output was lost to a write failure other than a closed reader.
pub(crate) fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

/// `print!` that never panics on a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::provision::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that never panics on a closed stdout.
macro_rules! outln {
    () => {
        $crate::provision::stdout::write_bytes(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::provision::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
