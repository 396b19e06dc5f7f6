//! What the gateway knows about a caller once their token is verified: the
//! claims of its own access tokens, the identity JWT it signs for an
//! upstream, and which ID-token claims a login keeps as groups and roles.
//! Low-level on purpose: the token code, the policies and the login leg all
//! read these types, and none of them should depend on another to do so.

use serde::{Deserialize, Serialize};

use super::store::Identity;

/// Claims of a gateway access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) jti: String,
    /// The user's e-mail, groups and roles from the login (see
    /// `store::Identity`): the proxy's per-user policies read them here, so
    /// they cost no store lookup per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) roles: Vec<String>,
    /// Issued to a machine client (client credentials): `sub` is its client id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) machine: bool,
}

impl AccessClaims {
    /// The user facts policies decide on.
    pub(crate) fn identity(&self) -> Identity {
        Identity {
            email: self.email.clone(),
            username: None,
            groups: self.groups.clone(),
            roles: self.roles.clone(),
            machine: self.machine,
        }
    }
}

/// Claims of the identity JWT sent to an upstream (`cognigate-identity-inbound`).
#[derive(Debug, Serialize)]
pub(crate) struct UpstreamIdentity<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    /// The upstream URL: a token meant for one upstream is useless at another.
    pub(crate) aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    pub(crate) groups: &'a [String],
    pub(crate) client_id: &'a str,
    /// A machine client calls, not a person (`sub` is its client id).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) machine: bool,
    /// The route path, `/mcp/{slug}`.
    pub(crate) route: &'a str,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) jti: String,
}

/// Which ID-token claims hold a user's groups and roles.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClaimNames {
    pub(crate) groups: String,
    pub(crate) roles: Option<String>,
}
