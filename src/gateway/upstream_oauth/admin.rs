//! The operator's side of upstream grants: `cognigate-gateway connections`
//! lists what a user has connected and can disconnect one; `revoke --sub` /
//! `--user` deletes every upstream grant of that user. A deleted grant is
//! also revoked at the upstream's authorization server where it offers RFC
//! 7009 revocation; that needs the tokens opened, so the command reads the
//! gateway's config and env file for the sealing secret (without them the
//! grants are still deleted, and the output says the upstream kept them).

use std::collections::HashMap;
use std::path::Path;

use super::grants::{StoredGrant, all_grants, parse, revoke_at_upstream};
use super::registration::RegisteredClient;
use super::{ClientRegistration, keys, sealing_key};
use crate::gateway::config::{Env, GatewayConfig};
use crate::gateway::sealing::SealingKey;
use crate::gateway::store::{Store, StoreError, now};
use crate::secret::Secret;

/// One upstream grant as an operator sees it.
#[derive(Debug, PartialEq)]
pub(crate) struct Connection {
    pub(crate) upstream: String,
    pub(crate) subject: String,
    pub(crate) user: Option<String>,
    pub(crate) connected_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) refreshable: bool,
    pub(crate) scope: Option<String>,
}

/// What deleting grants did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Disconnected {
    pub(crate) deleted: usize,
    /// Revoked at the upstream's authorization server too.
    pub(crate) revoked_upstream: usize,
    /// Why some were not revoked upstream (no config, a failed call).
    pub(crate) notes: Vec<String>,
}

/// What the command needs to revoke at an upstream: the sealing key and,
/// for a manual client, its secret.
pub(crate) struct Revoker {
    upstreams: HashMap<String, (SealingKey, Option<Secret>)>,
}

impl Revoker {
    /// Built from the gateway's config and env file, as the gateway boots.
    pub(crate) fn load(config_dir: &Path, env_file: Option<&Path>) -> Result<Self, String> {
        let env = Env::from_file_and_process(env_file).map_err(|err| err.to_string())?;
        let config = GatewayConfig::load(config_dir, &env).map_err(|err| err.to_string())?;
        let store_key = env.get(crate::gateway::options::STORE_KEY_VAR).filter(|key| !key.is_empty()).map(Secret::new);
        let mut upstreams = HashMap::new();
        for route in config.routes.values() {
            let secret = store_key.as_ref().unwrap_or(&route.policy.browser_login.client_secret);
            for upstream in route.inbound.iter().filter_map(|policy| policy.upstream_oauth()) {
                let key = sealing_key(secret, &upstream.id).map_err(|err| err.to_string())?;
                let client_secret = match &upstream.registration {
                    ClientRegistration::Manual { client_secret, .. } => client_secret.clone(),
                    ClientRegistration::Auto => None,
                };
                upstreams.entry(upstream.id.clone()).or_insert((key, client_secret));
            }
        }
        Ok(Self { upstreams })
    }
}

/// The user grants of `subject` (or of a user known by e-mail or
/// username), at every upstream.
pub(crate) fn connections(
    store: &dyn Store,
    subject: Option<&str>,
    user: Option<&str>,
) -> Result<Vec<Connection>, StoreError> {
    let mut out = Vec::new();
    for (upstream, owner, raw) in all_grants(store)? {
        let Ok(grant) = parse(&raw) else { continue };
        let named = |name: &str| {
            [&grant.email, &grant.username].into_iter().flatten().any(|known| known.eq_ignore_ascii_case(name))
        };
        if subject.is_some_and(|subject| subject != owner) || user.is_some_and(|user| !named(user)) {
            continue;
        }
        out.push(Connection {
            upstream,
            subject: owner,
            user: grant.email.clone().or_else(|| grant.username.clone()),
            connected_at: grant.connected_at,
            expires_at: grant.access_expires_at,
            refreshable: grant.sealed_refresh.is_some(),
            scope: grant.scope.clone(),
        });
    }
    Ok(out)
}

/// Deletes the grants listed (all of the user's, or the one at `upstream`)
/// and revokes them upstream where it can.
pub(crate) fn disconnect(
    store: &dyn Store,
    subject: Option<&str>,
    user: Option<&str>,
    upstream: Option<&str>,
    revoker: Result<&Revoker, &str>,
) -> Result<Disconnected, StoreError> {
    let mut done = Disconnected::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| StoreError::Task(err.to_string()))?;
    for connection in connections(store, subject, user)? {
        if upstream.is_some_and(|upstream| upstream != connection.upstream) {
            continue;
        }
        let key = keys::grant(&connection.upstream, &connection.subject);
        let Some(raw) = store.take_record(&key, now())? else { continue };
        done.deleted += 1;
        let Ok(grant) = parse(&raw) else { continue };
        match revoke_one(&runtime, &grant, &connection, revoker) {
            Ok(true) => done.revoked_upstream += 1,
            Ok(false) => {}
            Err(note) => done.notes.push(format!("{}: {note}", connection.upstream)),
        }
    }
    Ok(done)
}

fn revoke_one(
    runtime: &tokio::runtime::Runtime,
    grant: &StoredGrant,
    connection: &Connection,
    revoker: Result<&Revoker, &str>,
) -> Result<bool, String> {
    if grant.revocation_endpoint.is_none() {
        return Ok(false);
    }
    let revoker = revoker.map_err(|why| format!("not revoked at the upstream ({why})"))?;
    let Some((sealing, client_secret)) = revoker.upstreams.get(&connection.upstream) else {
        return Err("not revoked at the upstream (no such upstream in the config)".into());
    };
    let client = RegisteredClient { client_id: grant.client_id.clone(), client_secret: client_secret.clone() };
    runtime
        .block_on(revoke_at_upstream(grant, sealing, &connection.upstream, &connection.subject, &client))
        .map_err(|err| format!("not revoked at the upstream: {err}"))
}
