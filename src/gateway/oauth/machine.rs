//! The client credentials grant (RFC 6749 section 4.4, MCP's OAuth client
//! credentials extension) for machine clients: agents, CI jobs and services
//! that hold a Cognito app client of their own (`cognigate client add`).
//!
//! The client authenticates with its Cognito client id and secret
//! (`client_secret_basic` or `client_secret_post`). The gateway proves them
//! with one client credentials grant at Cognito's token endpoint, every time:
//! nothing is cached, so a client deleted at Cognito, or a secret removed
//! there, mints no new token. Cognito's answer names the scopes the client
//! holds on the pool's resource server (`{identifier}/mcp:route.{slug}`); the
//! gateway's own access token carries their names, is bound to the route
//! asked for like every other token, names the client id as its subject, is
//! marked as a machine's, and comes without a refresh token. Which routes it
//! reaches is decided at the route (see `contract::machine_scopes`).

use axum::http::HeaderMap;
use axum::response::Response;

use super::OAuthError;
use super::client_auth::basic_credentials;
use super::token::{TokenForm, respond};
use crate::contract::machine_scopes;
use crate::gateway::client_address::{client_ip, counter_key, peer};
use crate::gateway::crypto::{random_token, sha256_hex};
use crate::gateway::oidc::OidcError;
use crate::gateway::policy::OFFLINE_ACCESS;
use crate::gateway::security::limit;
use crate::gateway::state::{AppState, RouteState};
use crate::gateway::store::{Grant, Identity, RefreshToken, now};
use crate::secret::Secret;

pub(crate) const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";

pub(super) async fn token(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    form: &TokenForm,
) -> Result<Response, OAuthError> {
    // Each request asks Cognito (which bills it): as many per client address
    // as authorization requests, counted apart, so a stream of made-up
    // client ids cannot turn the gateway into Cognito's load generator.
    let ip = client_ip(&state.security.trusted_proxies, headers, peer(extensions));
    let key = format!("client-credentials:{}", counter_key(ip));
    let allowed = state.security.authorize_per_minute;
    if let Err(refused) = limit(state, key, allowed, 60, "client credentials requests").await {
        return Ok(refused);
    }
    let (client_id, secret) = credentials(headers, form)?;
    let route = route_asked_for(state, form.resource.as_deref())?;
    let resource_server =
        route.route.policy.resource_server.clone().unwrap_or_else(|| state.public_url.trim_end_matches('/').to_owned());
    let asked = requested_scope(form.scope.as_deref(), &resource_server, &route.route.policy.supported_scopes())?;
    let granted = route
        .idp
        .prove_client(&state.idp_http, &client_id, &secret, asked.as_deref())
        .await
        .map_err(|err| refused_by_idp(&client_id, err))?;
    let prefix = format!("{resource_server}/");
    let scope: Vec<&str> = granted.iter().filter_map(|s| s.strip_prefix(&prefix)).collect();
    if scope.is_empty() && !granted.is_empty() {
        // Most likely the gateway runs under another URL than the one `up`
        // named the resource server after: say which, so the fix is clear.
        tracing::warn!(
            client_id = %client_id,
            expected = %resource_server,
            granted = %granted.join(" "),
            "the machine client holds no scope of this gateway's resource server; set gateway.resourceServer on the policy to the identifier `cognigate up` created"
        );
    }
    // A machine has no groups; its roles are its scopes, which is how a
    // capability filter names what a machine client may see (`roles`, the
    // way Zuplo reads a role claim).
    let roles: Vec<String> = scope.iter().map(|s| (*s).to_owned()).collect();
    let grant = Grant {
        client_id: client_id.clone(),
        slug: route.route.slug.clone(),
        scope: scope.join(" "),
        subject: client_id,
        identity: Identity { machine: true, roles, ..Identity::default() },
        idp: None,
    };
    let issued_at = now();
    let jti = random_token(16);
    record_for_revocation(state, route, &grant, &jti, issued_at).await?;
    tracing::info!(client_id = %grant.client_id, route = %route.route.path, scope = %grant.scope, "machine client proved at the identity provider");
    respond(state, &grant, jti, None, issued_at, CLIENT_CREDENTIALS_GRANT)
}

/// The client id and secret, from the Authorization header or the form. A
/// machine client is always confidential: there is no `none` here.
fn credentials(headers: &HeaderMap, form: &TokenForm) -> Result<(String, Secret), OAuthError> {
    if let Some((id, secret)) = basic_credentials(headers)? {
        if form.client_id.as_deref().is_some_and(|form_id| form_id != id) {
            return Err(OAuthError::InvalidRequest("client_id differs from the Authorization header".into()));
        }
        return Ok((id, Secret::new(secret)));
    }
    match (form.client_id.as_deref(), form.client_secret.as_deref()) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok((id.to_owned(), Secret::new(secret))),
        _ => Err(OAuthError::InvalidClient(
            "the client credentials grant needs the Cognito app client's id and secret (client_secret_basic or \
             client_secret_post); `cognigate client add` creates one"
                .into(),
        )),
    }
}

/// The route named by `resource` (RFC 8707); without one, the gateway's only
/// route, since a token is always bound to one route.
fn route_asked_for<'a>(state: &'a AppState, resource: Option<&str>) -> Result<&'a RouteState, OAuthError> {
    if let Some(resource) = resource {
        return state
            .route_for_resource(resource)
            .ok_or_else(|| OAuthError::InvalidTarget(format!("`{resource}` is not an MCP server of this gateway")));
    }
    let mut routes = state.routes.values();
    match (routes.next(), routes.next()) {
        (Some(only), None) => Ok(only),
        _ => Err(OAuthError::InvalidTarget(format!(
            "resource is required: name the MCP server's URL, e.g. {}/mcp/SLUG",
            state.public_url.trim_end_matches('/')
        ))),
    }
}

/// A requested `scope` as Cognito names it (`{resource server}/{name}`).
/// The route's own scopes for people (`openid profile email`, which SDKs
/// copy from the 401's `scope`) and `offline_access` are left out: Cognito
/// refuses them to a machine client, and the answer's `scope` says what was
/// granted (RFC 6749 section 3.3). Any other scope is refused. `None`: ask
/// for every scope the client holds.
fn requested_scope(
    scope: Option<&str>,
    resource_server: &str,
    people_scopes: &[&str],
) -> Result<Option<String>, OAuthError> {
    let Some(scope) = scope.filter(|s| !s.trim().is_empty()) else { return Ok(None) };
    let mut named = Vec::new();
    for name in scope.split_whitespace() {
        if name == machine_scopes::ALL || name.starts_with(machine_scopes::ROUTE_PREFIX) {
            named.push(format!("{resource_server}/{name}"));
        } else if !people_scopes.contains(&name) && name != OFFLINE_ACCESS {
            return Err(OAuthError::InvalidScope(format!(
                "`{name}` is not a machine client's scope; ask for {} or {}SLUG, or for no scope",
                machine_scopes::ALL,
                machine_scopes::ROUTE_PREFIX
            )));
        }
    }
    Ok((!named.is_empty()).then(|| named.join(" ")))
}

/// Cognito's refusal as the client's error: wrong id or secret (a deleted
/// client, a removed secret) is `invalid_client`; a client without the grant
/// or the scope is told so; Cognito unreachable is a 503 with nothing issued.
fn refused_by_idp(client_id: &str, err: OidcError) -> OAuthError {
    tracing::info!(client_id, error = %err, "client credentials refused by the identity provider");
    match err {
        OidcError::TokenEndpoint { error, .. } if error == "invalid_client" => {
            OAuthError::InvalidClient("the identity provider refused the client id or secret".into())
        }
        OidcError::TokenEndpoint { error, .. } if error == "unauthorized_client" => OAuthError::UnauthorizedClient(
            "the app client may not use the client credentials grant; create one with `cognigate client add`".into(),
        ),
        OidcError::TokenEndpoint { error, .. } if error == "invalid_scope" => OAuthError::InvalidScope(
            "the app client does not hold that scope; `cognigate client list` shows its scopes".into(),
        ),
        // Any other refusal of the request (4xx) proves nothing about the client.
        OidcError::TokenEndpoint { status, .. } if status < 500 => {
            OAuthError::InvalidClient("the identity provider refused the client credentials grant".into())
        }
        err if err.is_upstream() => {
            OAuthError::TemporarilyUnavailable("the identity provider cannot be asked right now; retry".into())
        }
        _ => OAuthError::InvalidClient("the identity provider's answer does not prove this client".into()),
    }
}

/// A machine token has no refresh token, so nothing in the store would name
/// it for `cognigate-gateway revoke --client ID` (or `--sub ID`). It is
/// recorded as a refresh family of its own whose refresh token nobody holds
/// (a random value, only its hash kept): the revocation of that family then
/// revokes the access token, on every replica, as for a person's grant.
async fn record_for_revocation(
    state: &AppState,
    route: &RouteState,
    grant: &Grant,
    jti: &str,
    issued_at: i64,
) -> Result<(), OAuthError> {
    let expires_at = issued_at + route.route.policy.access_token_ttl.as_secs() as i64;
    let record = RefreshToken {
        family: random_token(16),
        grant: grant.clone(),
        expires_at,
        access_jti: jti.to_owned(),
        access_expires_at: expires_at,
        family_expires_at: Some(expires_at),
        replaced: None,
    };
    let hash = sha256_hex(&random_token(32));
    state.store.run(move |store| store.insert_refresh(&hash, &record)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_machine_scopes_are_named_on_the_resource_server_and_people_scopes_left_out() {
        let rs = "https://mcp.example.com";
        let people = ["openid", "profile", "email"];
        assert_eq!(requested_scope(None, rs, &people).unwrap(), None);
        assert_eq!(
            requested_scope(Some("mcp:all mcp:route.docs"), rs, &people).unwrap().as_deref(),
            Some("https://mcp.example.com/mcp:all https://mcp.example.com/mcp:route.docs")
        );
        assert_eq!(
            requested_scope(Some("openid mcp:all offline_access"), rs, &people).unwrap().as_deref(),
            Some("https://mcp.example.com/mcp:all")
        );
        assert_eq!(requested_scope(Some("openid profile email"), rs, &people).unwrap(), None);
        assert!(matches!(requested_scope(Some("admin mcp:all"), rs, &people), Err(OAuthError::InvalidScope(_))));
    }

    #[test]
    fn a_deleted_client_is_invalid_client_and_an_unreachable_provider_is_unavailable() {
        let refused = OidcError::TokenEndpoint { status: 400, error: "invalid_client".into() };
        assert!(matches!(refused_by_idp("c", refused), OAuthError::InvalidClient(_)));
        let down = OidcError::Unreachable("connection refused".into());
        assert!(matches!(refused_by_idp("c", down), OAuthError::TemporarilyUnavailable(_)));
        let failing = OidcError::TokenEndpoint { status: 502, error: "(no error code)".into() };
        assert!(matches!(refused_by_idp("c", failing), OAuthError::TemporarilyUnavailable(_)));
        let odd = OidcError::TokenEndpoint { status: 400, error: "invalid_grant".into() };
        assert!(matches!(refused_by_idp("c", odd), OAuthError::InvalidClient(_)));
    }
}
