//! The desired state of a stack, validated: what `up` converges Cognito to.
//!
//! Built by [`super::settings`] from flags, environment and `cognigate.toml`;
//! everything downstream (plan, apply, render) trusts these values.

use std::path::PathBuf;
use std::time::Duration;

use super::validate::StackName;
use crate::contract::{self, Region, UserPoolId};

/// Tag keys cognigate puts on the pools it creates.
pub mod tags {
    pub const STACK: &str = "cognigate:stack";
    pub const MANAGED: &str = "cognigate:managed";
    pub const CREATED_AT: &str = "cognigate:created-at";
    pub const TTL: &str = "cognigate:ttl";
}

/// The OAuth scopes the gateway asks Cognito for.
pub const OAUTH_SCOPES: [&str; 3] = ["openid", "profile", "email"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolTarget {
    /// Find the pool by name and `cognigate:stack` tag; create it when absent.
    Managed,
    /// Use this existing pool as it is (`--user-pool-id`); never created or tagged.
    Adopted(UserPoolId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainSpec {
    /// `<prefix>.auth.<region>.amazoncognito.com`
    Prefix(String),
    /// A custom domain served through CloudFront with an ACM certificate.
    Custom { host: String, certificate_arn: String },
}

impl DomainSpec {
    /// The name Cognito's domain APIs take: the prefix, or the full custom host.
    pub fn api_name(&self) -> &str {
        match self {
            Self::Prefix(prefix) => prefix,
            Self::Custom { host, .. } => host,
        }
    }

    /// The host the hosted UI answers on (`COGNITO_USER_POOL_DOMAIN`).
    pub fn host(&self, region: &Region) -> String {
        match self {
            Self::Prefix(prefix) => format!("{prefix}.auth.{region}.amazoncognito.com"),
            Self::Custom { host, .. } => host.clone(),
        }
    }
}

/// Which login pages a domain serves, as Cognito's `ManagedLoginVersion`:
/// the classic hosted UI (1) or managed login (2), whose pages need a
/// branding style for each app client before they work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManagedLogin {
    #[default]
    Classic,
    Branded,
}

impl ManagedLogin {
    pub fn version(self) -> i32 {
        match self {
            Self::Classic => 1,
            Self::Branded => 2,
        }
    }

    pub fn from_version(version: i32) -> Self {
        if version == 2 { Self::Branded } else { Self::Classic }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFiles {
    pub env_file: PathBuf,
    pub policies_file: PathBuf,
    pub policy_name: String,
    pub routes_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct StackSpec {
    pub stack: StackName,
    pub region: Region,
    pub pool: PoolTarget,
    pub domain: DomainSpec,
    /// True when no prefix or custom domain was given; an adopted pool then
    /// keeps the domain it already has.
    pub domain_is_derived: bool,
    /// The login pages a domain cognigate creates serves; an existing
    /// domain keeps its own version.
    pub managed_login: ManagedLogin,
    /// Exact callback URLs for the app client, deduplicated, in order.
    pub callback_urls: Vec<String>,
    /// The gateway's public base URLs; the first is the one the gateway
    /// learns from the env file.
    pub gateway_urls: Vec<String>,
    pub ttl: Option<Duration>,
    pub deletion_protection: bool,
    pub files: OutputFiles,
}

impl StackSpec {
    pub fn pool_name(&self) -> &str {
        self.stack.as_str()
    }

    /// The gateway's public URL as the env file carries it: the first
    /// `--gateway-url`, or the local default.
    pub fn public_url(&self) -> &str {
        self.gateway_urls.first().map_or(contract::DEFAULT_PUBLIC_URL, String::as_str)
    }

    pub fn client_name(&self) -> String {
        format!("{}-gateway", self.stack)
    }
}
