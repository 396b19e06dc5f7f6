//! Shared pieces of command output: the derived URLs and outcome labels.

use super::apply::Outcome;
use super::validate::RegionName;

/// The four URLs the gateway derives from a stack (DESIGN.md section 3).
#[derive(Debug, Clone)]
pub struct StackUrls {
    pub issuer: String,
    pub jwks: String,
    pub authorize: String,
    pub token: String,
}

impl StackUrls {
    pub fn new(region: &RegionName, pool_id: &str, domain_host: &str) -> Self {
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}");
        Self {
            jwks: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            authorize: format!("https://{domain_host}/oauth2/authorize"),
            token: format!("https://{domain_host}/oauth2/token"),
        }
    }
}

pub fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Reused => "reused",
        Outcome::Updated => "updated",
        Outcome::Replaced => "replaced",
        Outcome::Adopted => "adopted",
    }
}
