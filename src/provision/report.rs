//! Shared pieces of command output: outcome labels.

use super::apply::Outcome;

pub(crate) fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Reused => "reused",
        Outcome::Updated => "updated",
        Outcome::Replaced => "replaced",
        Outcome::Adopted => "adopted",
    }
}
