//! Errors of the provisioning path and the process exit codes.
//!
//! Two families: the user asked for something invalid (exit 64, EX_USAGE), or
//! something failed while doing it (exit 1). Every message says what went wrong
//! and what to do; none carries a secret. Cognito's own failures are typed in
//! [`super::cognito::errors`] and wrapped here.

use std::path::{Path, PathBuf};

use super::cognito::errors::CognitoError;
use super::guard::Guard;
use super::validate::InvalidValue;

/// Every exit code `cognigate` uses, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    Success,
    /// Something failed while doing what was asked.
    Failure,
    /// `plan --detailed-exitcode`: the plan has changes (as Terraform's).
    Changes,
    /// The command line or the settings were invalid (EX_USAGE).
    Usage,
}

impl ExitCode {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Changes => 2,
            Self::Usage => 64,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),

    /// A missing or contradictory setting.
    #[error("{0}")]
    Usage(String),

    #[error("{path}: {problem}")]
    SettingsFile { path: PathBuf, problem: String },

    /// `--user-pool-id` names a pool that is not there.
    #[error(
        "user pool {id} does not exist in {region} (or these credentials cannot see it); check --user-pool-id and --region"
    )]
    PoolNotFound { id: String, region: String },

    #[error(transparent)]
    Cognito(#[from] CognitoError),

    /// `--profile` names a profile that no AWS file defines.
    #[error("{problem}; {fix}")]
    ProfileMissing { problem: String, fix: String },

    /// The named profile exists but gave no credentials (an expired SSO
    /// session, a failing `credential_process`).
    #[error(
        "the AWS profile {profile:?} gave no credentials ({problem}); for an SSO profile run          `aws sso login --profile {profile}`, and check it with `aws sts get-caller-identity --profile {profile}`"
    )]
    ProfileUnusable { profile: String, problem: String },

    /// The user answered no to a confirmation.
    #[error("cancelled; nothing was changed (pass --yes to skip the question)")]
    Cancelled,

    #[error("cannot read the answer from the terminal: {0}; pass --yes to skip the question")]
    Prompt(std::io::Error),

    /// A command that needs an existing stack found none (or part of one).
    #[error("stack {stack} ({region}) is not fully provisioned ({needs}); run `cognigate up` first")]
    NotProvisioned { stack: String, region: String, needs: String },

    #[error(
        "app client {id} ({name}) has no client secret, and Cognito cannot add one to an existing client \
         (GenerateSecret is fixed at creation). cognigate will not delete it for you: delete it \
         (aws cognito-idp delete-user-pool-client --user-pool-id <pool> --client-id {id}) and run \
         `cognigate up` again to create a confidential one"
    )]
    ClientWithoutSecret { name: String, id: String },

    /// `rotate-secret` met a client that already holds Cognito's maximum of two
    /// secrets: the previous rotation was never finished.
    #[error(
        "app client {client_id} already has {secrets} client secrets, the most Cognito allows: a rotation is half \
         done. Once every gateway runs with the env file's secret, run `cognigate rotate-secret --stack {stack} \
         --finish` first, then rotate again"
    )]
    RotationUnfinished { client_id: String, secrets: usize, stack: String },

    /// `destroy` without `--force` met pools it does not own or that are protected.
    #[error("{}", refusal_text(.0))]
    DestroyRefused(Vec<Refusal>),

    /// Some of gc's stacks could not be examined or removed; the rest were handled.
    #[error(
        "{failed} stack(s) could not be examined or removed (listed above); the rest were handled. Run gc again to retry"
    )]
    GcIncomplete { failed: usize },

    #[error("{action} {path}: {source}")]
    File { action: &'static str, path: PathBuf, source: std::io::Error },

    #[error("{path}: {problem}")]
    FileContent { path: PathBuf, problem: String },

    /// A template or serialization failed: cognigate is wrong, not the input.
    #[error("{0} (a cognigate bug; please report it)")]
    Internal(String),
}

/// One pool `destroy` will not delete without `--force`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// "user pool <id> (<name>)"
    pub(crate) pool: String,
    pub(crate) guards: Vec<Guard>,
}

fn refusal_text(refusals: &[Refusal]) -> String {
    let mut message = String::from("refusing to destroy; nothing was deleted:");
    for refusal in refusals {
        let why: Vec<String> = refusal.guards.iter().map(Guard::why).collect();
        message.push_str(&format!("\n  {} is {}", refusal.pool, why.join(", and ")));
    }
    let protected = refusals.iter().any(|r| r.guards.contains(&Guard::Protected));
    message.push_str(if protected {
        "\n  pass --force to delete it anyway (deletion protection is turned off first)"
    } else {
        "\n  pass --force to delete it anyway"
    });
    message
}

impl Error {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Invalid(_)
            | Self::Usage(_)
            | Self::SettingsFile { .. }
            | Self::PoolNotFound { .. }
            | Self::ProfileMissing { .. } => ExitCode::Usage,
            _ => ExitCode::Failure,
        }
    }

    pub(crate) fn file(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::File { action, path: path.to_owned(), source }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
