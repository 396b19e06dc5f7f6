//! Why a pool may not be deleted without `--force`: the reasons `destroy` and
//! `gc` find (in `teardown`) and the errors that refuse with them (in `error`).
//! It stands apart so both can name it without importing each other.

/// A reason not to delete a pool without `--force`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guard {
    /// No `cognigate:managed=true` tag: created by hand or by another tool, or
    /// adopted with `--user-pool-id` (cognigate never tags an adopted pool).
    NotManaged,
    /// Managed, but by another stack (a `--user-pool-id` naming someone else's pool).
    OtherStack(String),
    /// `DeletionProtection=ACTIVE`.
    Protected,
}

impl Guard {
    /// Why, for messages: "user pool X is <why>".
    pub(crate) fn why(&self) -> String {
        match self {
            Self::NotManaged => {
                "not tagged cognigate:managed=true, so cognigate did not create it (it was made elsewhere or adopted with --user-pool-id)".into()
            }
            Self::OtherStack(other) => format!("managed by another stack ({other})"),
            Self::Protected => "protected against deletion (DeletionProtection=ACTIVE)".into(),
        }
    }
}
