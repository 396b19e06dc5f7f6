//! The desired state of a stack, validated: what `up` converges Cognito to.
//!
//! Built by [`super::settings`] from flags, environment and `cognigate.toml`;
//! everything downstream (plan, apply, render) trusts these values.

use std::path::PathBuf;
use std::time::Duration;

use super::validate::StackName;
use crate::contract::{self, Region, UserPoolId};

/// Tag keys cognigate puts on the pools it creates.
pub(crate) mod tags {
    pub(crate) const STACK: &str = "cognigate:stack";
    pub(crate) const MANAGED: &str = "cognigate:managed";
    pub(crate) const CREATED_AT: &str = "cognigate:created-at";
    pub(crate) const TTL: &str = "cognigate:ttl";
}

/// The OAuth scopes the gateway asks Cognito for.
pub(crate) const OAUTH_SCOPES: [&str; 3] = ["openid", "profile", "email"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PoolTarget {
    /// Find the pool by name and `cognigate:stack` tag; create it when absent.
    Managed,
    /// Use this existing pool as it is (`--user-pool-id`); never created or tagged.
    Adopted(UserPoolId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomainSpec {
    /// `<prefix>.auth.<region>.amazoncognito.com`
    Prefix(String),
    /// A custom domain served through CloudFront with an ACM certificate.
    Custom { host: String, certificate_arn: String },
}

impl DomainSpec {
    /// The name Cognito's domain APIs take: the prefix, or the full custom host.
    pub(crate) fn api_name(&self) -> &str {
        match self {
            Self::Prefix(prefix) => prefix,
            Self::Custom { host, .. } => host,
        }
    }

    /// The host the hosted UI answers on (`COGNITO_USER_POOL_DOMAIN`).
    pub(crate) fn host(&self, region: &Region) -> String {
        match self {
            Self::Prefix(prefix) => format!("{prefix}.auth.{region}.amazoncognito.com"),
            Self::Custom { host, .. } => host.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputFiles {
    pub(crate) env_file: PathBuf,
    pub(crate) policies_file: PathBuf,
    pub(crate) policy_name: String,
    pub(crate) routes_file: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct StackSpec {
    pub(crate) stack: StackName,
    pub(crate) region: Region,
    pub(crate) pool: PoolTarget,
    pub(crate) domain: DomainSpec,
    /// True when no prefix or custom domain was given; an adopted pool then
    /// keeps the domain it already has.
    pub(crate) domain_is_derived: bool,
    /// Exact callback URLs for the app client, deduplicated, in order.
    pub(crate) callback_urls: Vec<String>,
    /// The gateway's public base URLs; the first is the one the gateway
    /// learns from the env file. Without `--gateway-url` an existing stack's
    /// own URL is filled in once the stack is read.
    pub(crate) gateway_urls: Vec<String>,
    /// Whether the callback URL list was spelled out (`--gateway-url`,
    /// `gateway_urls`, `--no-localhost-callback`). Only such a list may leave
    /// out a callback URL the app client has registered; otherwise registered
    /// ones are kept, so a run that names no URL never locks a gateway out.
    pub(crate) callback_list_given: bool,
    /// Register the local gateway's callback (`http://localhost:9000/oauth/callback`).
    pub(crate) localhost_callback: bool,
    /// `--callback-url`: exact extra callback URLs, validated.
    pub(crate) extra_callback_urls: Vec<String>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) deletion_protection: bool,
    /// Anyone may sign up through the login pages; off by default, so only an
    /// administrator (`cognigate user add`) creates users.
    pub(crate) self_signup: bool,
    /// Whether the sign-up setting was asked for (`--self-signup`,
    /// `self_signup`): an adopted pool's own setting is changed only then.
    pub(crate) signup_given: bool,
    /// The feature plan for a new pool; an existing one is moved to it only
    /// when it was asked for (`feature_plan_given`).
    pub(crate) feature_plan: FeaturePlan,
    pub(crate) feature_plan_given: bool,
    /// Groups the pool must have; others it has are kept.
    pub(crate) groups: Vec<String>,
    pub(crate) managed_login: ManagedLogin,
    pub(crate) files: OutputFiles,
    /// `--resource-server` / `--resource-server-name`: the machine clients'
    /// resource server; the identifier defaults to the gateway's public URL.
    pub(crate) resource_server_id: Option<String>,
    pub(crate) resource_server_name: Option<String>,
    /// The resource server `up` converges to, once the public URL is settled
    /// and the routes are read (`commands::read_and_plan_with_scopes`); `None` plans none.
    pub(crate) resource_server: Option<ResourceServerSpec>,
}

/// The pool's resource server for machine clients: one scope for every route
/// and one per route (`contract::machine_scopes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceServerSpec {
    pub(crate) identifier: String,
    pub(crate) name: String,
    /// `(name, description)`.
    pub(crate) scopes: Vec<(String, String)>,
}

impl ResourceServerSpec {
    /// For the public URL and the route slugs of the routes file.
    pub(crate) fn new(identifier: String, name: String, slugs: &[String]) -> Self {
        use crate::contract::machine_scopes;
        let mut scopes = vec![(machine_scopes::ALL.to_owned(), "Every MCP route of the gateway".to_owned())];
        for slug in slugs {
            scopes.push((machine_scopes::route(slug), format!("The MCP route /mcp/{slug}")));
        }
        Self { identifier, name, scopes }
    }
}

/// A pool's feature plan (`UserPoolTier`), billed per monthly active user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeaturePlan {
    /// The cheapest; the classic hosted UI only (no managed login).
    Lite,
    /// Cognito's default for a new pool; needed by managed login (v2).
    Essentials,
    Plus,
}

impl FeaturePlan {
    /// The value of Cognito's `UserPoolTier`.
    pub(crate) fn tier(self) -> &'static str {
        match self {
            Self::Lite => "LITE",
            Self::Essentials => "ESSENTIALS",
            Self::Plus => "PLUS",
        }
    }

    /// As the flag and plans write it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Lite => "lite",
            Self::Essentials => "essentials",
            Self::Plus => "plus",
        }
    }

    /// The plan a described `UserPoolTier` names; `None` for an endpoint that
    /// reports none (an emulator) or a value cognigate does not know.
    pub(crate) fn from_tier(tier: &str) -> Option<Self> {
        match tier {
            "LITE" => Some(Self::Lite),
            "ESSENTIALS" => Some(Self::Essentials),
            "PLUS" => Some(Self::Plus),
            _ => None,
        }
    }
}

/// The hosted login pages' version (the domain's `ManagedLoginVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ManagedLogin {
    /// The classic hosted UI: works without any branding.
    #[default]
    V1,
    /// Managed login: needs a branding style per app client, or the pages
    /// answer "login pages unavailable".
    V2,
}

impl ManagedLogin {
    /// The number Cognito's `ManagedLoginVersion` takes.
    pub(crate) fn version(self) -> i32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

impl StackSpec {
    pub(crate) fn pool_name(&self) -> &str {
        self.stack.as_str()
    }

    /// The gateway's public URL as the env file carries it: the first
    /// `--gateway-url`, or the local default.
    pub(crate) fn public_url(&self) -> &str {
        self.gateway_urls.first().map_or(contract::DEFAULT_PUBLIC_URL, String::as_str)
    }

    pub(crate) fn client_name(&self) -> String {
        format!("{}-gateway", self.stack)
    }
}
