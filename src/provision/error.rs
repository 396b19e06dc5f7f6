//! Errors of the provisioning path and their exit codes.
//!
//! Two families: the user asked for something invalid (exit 64, EX_USAGE), or
//! something failed while doing it (exit 1). Every message says what went wrong
//! and what to do; none carries a secret.

use std::path::{Path, PathBuf};

use super::validate::InvalidValue;

pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),

    /// A missing or contradictory setting.
    #[error("{0}")]
    Usage(String),

    #[error("{path}: {problem}")]
    SettingsFile { path: PathBuf, problem: String },

    /// An AWS call failed for a reason that retrying will not fix.
    #[error("{operation} failed: {code}: {message}{hint}", hint = hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Aws { operation: &'static str, code: String, message: String, hint: Option<String> },

    /// AWS could not be reached or authenticated with.
    #[error("{0}")]
    Connection(String),

    /// The requested state conflicts with what exists and cognigate will not force it.
    #[error("{0}")]
    Conflict(String),

    #[error("{action} {path}: {source}")]
    File { action: &'static str, path: PathBuf, source: std::io::Error },

    #[error("{path}: {problem}")]
    FileContent { path: PathBuf, problem: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Invalid(_) | Self::Usage(_) | Self::SettingsFile { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    pub fn file(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::File { action, path: path.to_owned(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
