//! The upstream tokens the gateway holds: per (user, upstream) for
//! `user-oauth`, one per upstream for a service account.
//!
//! At rest both tokens are sealed (AES-256-GCM, see `sealing`) and bound to
//! their owner and upstream, so a sealed token moved into another user's
//! record does not open. Records live in the store, shared by replicas.
//!
//! Refresh happens before expiry, once per record however many requests and
//! replicas race: one request per process waits on a local lock, and across
//! replicas the one that takes the store's lease refreshes while the others
//! watch the record until it changes. The refreshed record replaces the old
//! one by compare-and-set, and only after the authorization server answered:
//! the stored refresh token is never given up before its successor is
//! stored. When that write fails, the new record is kept in memory and
//! written by the next request, so a rotated refresh token lost to a store
//! hiccup does not cost the user a reconnect. A refused refresh
//! (`invalid_grant`: revoked or expired upstream) ends the grant; a failed
//! one (network, 5xx) keeps it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::discovery::{Discovered, http, read_bounded};
use super::registration::{RegisteredClient, authenticate};
use super::{AuthMode, Upstream, UpstreamAuthError, keys};
use crate::gateway::crypto::random_token;
use crate::gateway::sealing::SealingKey;
use crate::gateway::store::{StoreError, StoreHandle, now};
use crate::secret::Secret;

/// How long a replica may hold the refresh lease (well above the HTTP
/// client's timeout, so a slow refresh is not started twice).
const LEASE_SECONDS: i64 = 30;
/// The longest a token is refreshed ahead of its expiry.
const MAX_REFRESH_MARGIN: i64 = 60;
/// How often a replica waiting for another's refresh looks at the record.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// A grant as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredGrant {
    pub(crate) sealed_access: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) access_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sealed_refresh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revocation_endpoint: Option<String>,
    /// When the token was issued (the connect, or the last refresh).
    pub(crate) issued_at: i64,
    pub(crate) connected_at: i64,
    /// Who connected, for the operator's `revoke --user` and `connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
}

impl StoredGrant {
    /// Whether the access token is to be refreshed at `now`: within the
    /// margin of its expiry (a minute, or half its lifetime when shorter).
    fn due(&self, now: i64) -> bool {
        let Some(expires_at) = self.access_expires_at else { return false };
        let margin = ((expires_at - self.issued_at) / 2).clamp(0, MAX_REFRESH_MARGIN);
        expires_at - now <= margin
    }

    fn expired(&self, now: i64) -> bool {
        self.access_expires_at.is_some_and(|at| at <= now)
    }
}

/// The owner binding of a record's sealed tokens.
pub(crate) fn binding(upstream_id: &str, owner: &str, which: &str) -> String {
    format!("{upstream_id}\0{owner}\0{which}")
}

/// A token endpoint's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

// Tokens never reach a log through Debug.
impl std::fmt::Debug for StoredGrantView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("issuer", &self.0.issuer).finish_non_exhaustive()
    }
}
struct StoredGrantView<'a>(&'a StoredGrant);

/// Why a token request failed.
#[derive(Debug)]
pub(crate) enum TokenCallError {
    /// The server refused the grant (`invalid_grant` and kin): it is over.
    Refused(String),
    /// The server could not be reached or failed: try again later.
    Failed(String),
}

fn form_body(form: &[(&str, String)]) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in form {
        body.append_pair(key, value);
    }
    body.finish()
}

/// A token-endpoint request with `form` and the client's authentication.
pub(crate) async fn token_call(
    endpoint: &url::Url,
    client: &RegisteredClient,
    mut form: Vec<(&'static str, String)>,
) -> Result<TokenResponse, TokenCallError> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<String>,
    }
    let http = http().map_err(|err| TokenCallError::Failed(err.to_string()))?;
    let request = authenticate(http.post(endpoint.clone()), &mut form, client);
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .send()
        .await
        .map_err(|err| TokenCallError::Failed(format!("{endpoint}: {}", crate::gateway::error_chain(&err))))?;
    let status = response.status();
    let body = read_bounded(response).await.map_err(|err| TokenCallError::Failed(err.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|err| TokenCallError::Failed(format!("{endpoint}: not a token response: {err}")));
    }
    let error = serde_json::from_slice::<ErrorBody>(&body).ok().and_then(|body| body.error);
    match (status.as_u16(), error) {
        (400..=499, Some(error))
            if matches!(
                error.as_str(),
                "invalid_grant" | "invalid_client" | "unauthorized_client" | "invalid_scope"
            ) =>
        {
            Err(TokenCallError::Refused(error))
        }
        (status, error) => Err(TokenCallError::Failed(format!(
            "{endpoint} answered HTTP {status}{}",
            error.map(|error| format!(" ({error})")).unwrap_or_default()
        ))),
    }
}

impl Upstream {
    /// The record a credential lives in: the user's grant, or the route's
    /// service account.
    pub(crate) fn record_key(&self, subject: &str) -> (String, String) {
        match self.mode {
            AuthMode::UserOAuth => (keys::grant(&self.id, subject), subject.to_owned()),
            AuthMode::ServiceAccount => (keys::service(&self.id), "(service account)".to_owned()),
        }
    }

    /// A usable access token for `subject` (the service account's in that
    /// mode), refreshed first when due. `force`: the upstream refused the
    /// current one, so it is renewed whatever its expiry says.
    pub(crate) async fn access_token(
        &self,
        store: &StoreHandle,
        subject: &str,
        upstream_url: &url::Url,
        force: bool,
    ) -> Result<Secret, UpstreamAuthError> {
        let (key, owner) = self.record_key(subject);
        let lock = self.flight_lock(&key);
        let _one_per_process = lock.lock().await;
        self.write_unsaved(store, &key).await;
        self.release_stale_leases(store).await;
        let mut force = force;
        let mut seen_before: Option<String> = None;
        for _ in 0..3 {
            let lookup = key.clone();
            let raw = match store.run(move |store| store.record(&lookup, now())).await {
                Ok(raw) => raw,
                // The store is down: a renewed record it has not taken yet
                // is the freshest there is, and serves until it is due.
                Err(err) => match self.unsaved_record(&key) {
                    Some(unsaved) if !unsaved.due(now()) => return self.open_access(&unsaved, &owner),
                    _ => return Err(err.into()),
                },
            };
            // The record changed while this request waited: another
            // request renewed it, and its result is used.
            if force && seen_before.is_some() && raw != seen_before {
                force = false;
            }
            let grant = raw.as_deref().map(parse).transpose()?;
            match (&grant, self.mode) {
                (None, AuthMode::UserOAuth) => return Err(UpstreamAuthError::ConnectRequired),
                (Some(grant), _) if !force && !grant.due(now()) => return self.open_access(grant, &owner),
                _ => {}
            }
            let lease = keys::lease(&key);
            let holder = random_token(16);
            let (lease_key, lease_holder) = (lease.clone(), holder.clone());
            let won = store
                .run(move |store| store.insert_record(&lease_key, &lease_holder, Some(now() + LEASE_SECONDS), now()))
                .await?;
            if won {
                let result = self.renew(store, &key, &owner, raw.as_deref(), grant.as_ref(), upstream_url).await;
                self.release_lease(store, lease, holder).await;
                return result;
            }
            seen_before = raw.clone();
            if !self.watch(store, &key, &lease, raw.as_deref()).await? {
                // The lease ended with the record unchanged (its holder
                // failed): try again, possibly taking the lease.
                continue;
            }
            force = false;
        }
        Err(UpstreamAuthError::Unavailable("the upstream token could not be renewed; try again".into()))
    }

    /// Waits until the record differs from `raw` (`true`) or the lease is
    /// gone with the record unchanged (`false`).
    async fn watch(
        &self,
        store: &StoreHandle,
        key: &str,
        lease: &str,
        raw: Option<&str>,
    ) -> Result<bool, UpstreamAuthError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(LEASE_SECONDS as u64);
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let (key, lease) = (key.to_owned(), lease.to_owned());
            let (current, leased) = store
                .run(move |store| Ok((store.record(&key, now())?, store.record(&lease, now())?.is_some())))
                .await?;
            if current.as_deref() != raw {
                return Ok(true);
            }
            if !leased {
                return Ok(false);
            }
        }
        Ok(false)
    }

    fn open_access(&self, grant: &StoredGrant, owner: &str) -> Result<Secret, UpstreamAuthError> {
        let sealing = &self.runtime()?.sealing;
        sealing.open(&grant.sealed_access, &binding(&self.id, owner, "access")).map(Secret::new).ok_or_else(|| {
            tracing::warn!(upstream = %self.id, grant = ?StoredGrantView(grant), "a stored upstream token does not open with this gateway's key");
            UpstreamAuthError::ConnectRequired
        })
    }

    /// Renews the record under the lease: a refresh (user) or a new
    /// client-credentials token (service account).
    async fn renew(
        &self,
        store: &StoreHandle,
        key: &str,
        owner: &str,
        raw: Option<&str>,
        grant: Option<&StoredGrant>,
        upstream_url: &url::Url,
    ) -> Result<Secret, UpstreamAuthError> {
        let found = self.discovered(upstream_url).await?;
        let client = self.registered_client(store, &found).await?;
        let sealing = &self.runtime()?.sealing;
        let form = match (self.mode, grant) {
            (AuthMode::ServiceAccount, _) => {
                let mut form =
                    vec![("grant_type", "client_credentials".to_owned()), ("resource", found.resource.clone())];
                let scope = self.requested_scope(&found);
                if !scope.is_empty() {
                    form.push(("scope", scope));
                }
                form
            }
            (AuthMode::UserOAuth, Some(grant)) => {
                let refresh = grant
                    .sealed_refresh
                    .as_deref()
                    .and_then(|sealed| sealing.open(sealed, &binding(&self.id, owner, "refresh")));
                let Some(refresh) = refresh else {
                    // No refresh token: the access token is used until it
                    // expires, then the user connects again.
                    if grant.expired(now()) {
                        if let Some(current) = self.end_grant(store, key, raw).await {
                            return self.open_access(&parse(&current)?, owner);
                        }
                        return Err(UpstreamAuthError::ConnectRequired);
                    }
                    return self.open_access(grant, owner);
                };
                vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh),
                    ("resource", found.resource.clone()),
                ]
            }
            (AuthMode::UserOAuth, None) => return Err(UpstreamAuthError::ConnectRequired),
        };
        match token_call(&found.token_endpoint, &client, form).await {
            Ok(response) => {
                Upstream::count(&self.counters.refreshes);
                let renewed = self.record_from(&found, &client, owner, response, grant)?;
                let token = self.open_access(&renewed, owner)?;
                self.save_renewed(store, key, raw, &renewed).await?;
                tracing::info!(upstream = %self.id, "upstream token renewed");
                Ok(token)
            }
            Err(TokenCallError::Refused(error)) => {
                Upstream::count(&self.counters.refresh_failures);
                tracing::info!(upstream = %self.id, error = %error, "the upstream's authorization server refused the renewal; the grant ends");
                if self.mode == AuthMode::UserOAuth {
                    // Another replica may have rotated the token meanwhile
                    // (its lease ran out while it waited on the server): its
                    // record is the grant now, and nobody must reconnect.
                    if let Some(current) = self.end_grant(store, key, raw).await {
                        return self.open_access(&parse(&current)?, owner);
                    }
                    return Err(UpstreamAuthError::ConnectRequired);
                }
                Err(UpstreamAuthError::Unavailable(format!("the upstream refused the service account: {error}")))
            }
            Err(TokenCallError::Failed(problem)) => {
                Upstream::count(&self.counters.refresh_failures);
                tracing::warn!(upstream = %self.id, problem = %problem, "upstream token renewal failed; the grant is kept");
                match grant {
                    Some(grant) if !grant.expired(now()) => self.open_access(grant, owner),
                    _ => Err(UpstreamAuthError::Unavailable(format!(
                        "the upstream's authorization server failed: {problem}"
                    ))),
                }
            }
        }
    }

    /// Writes the renewed record over `raw` (compare and set). A record
    /// removed meanwhile (the operator revoked it) stays removed; a failed
    /// write is kept in memory for the next request to write.
    async fn save_renewed(
        &self,
        store: &StoreHandle,
        key: &str,
        raw: Option<&str>,
        renewed: &StoredGrant,
    ) -> Result<(), UpstreamAuthError> {
        let text = serde_json::to_string(renewed).map_err(StoreError::from)?;
        let (lookup, expected, value) = (key.to_owned(), raw.map(str::to_owned), text.clone());
        let written = store
            .run(move |store| match expected {
                Some(expected) => store.replace_record(&lookup, &expected, &value, None),
                None => store.insert_record(&lookup, &value, None, now()),
            })
            .await;
        match written {
            Ok(true) => Ok(()),
            Ok(false) => {
                if self.mode == AuthMode::UserOAuth {
                    // Revoked (or reconnected) while the refresh ran.
                    return Err(UpstreamAuthError::ConnectRequired);
                }
                Ok(())
            }
            Err(err) => {
                tracing::error!(upstream = %self.id, error = %err, "the renewed upstream token could not be stored; kept in memory until it is");
                let mut unsaved = self.unsaved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                unsaved.insert(key.to_owned(), (raw.map(str::to_owned), text));
                Ok(())
            }
        }
    }

    /// Ends this request's lease, if it still holds it (compare and set to
    /// an expired record, which reads as absent): a lease that ran out and
    /// another replica took is not touched. Released later when the store is
    /// down, so a store outage does not leave the next refresh waiting for
    /// the lease to run out.
    async fn release_lease(&self, store: &StoreHandle, lease: String, holder: String) {
        let (key, value) = (lease.clone(), holder.clone());
        let released = store.run(move |store| store.replace_record(&key, &value, &value, Some(now() - 1))).await;
        if released.is_err() {
            let mut stale = self.stale_leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            stale.push((lease, holder));
        }
    }

    /// Releases the leases a store outage kept.
    async fn release_stale_leases(&self, store: &StoreHandle) {
        let stale = std::mem::take(&mut *self.stale_leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for (lease, holder) in stale {
            self.release_lease(store, lease, holder).await;
        }
    }

    fn unsaved_record(&self, key: &str) -> Option<StoredGrant> {
        let unsaved = self.unsaved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        unsaved.get(key).and_then(|(_, text)| parse(text).ok())
    }

    /// Writes a renewed record an earlier request could not store.
    async fn write_unsaved(&self, store: &StoreHandle, key: &str) {
        let pending = {
            let mut unsaved = self.unsaved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            unsaved.remove(key)
        };
        let Some((expected, text)) = pending else { return };
        let (lookup, value, previous) = (key.to_owned(), text.clone(), expected.clone());
        let written = store
            .run(move |store| match previous {
                Some(previous) => store.replace_record(&lookup, &previous, &value, None),
                None => store.insert_record(&lookup, &value, None, now()),
            })
            .await;
        if written.is_err() {
            let mut unsaved = self.unsaved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            unsaved.insert(key.to_owned(), (expected, text));
        }
    }

    /// Deletes the grant that failed (`raw`); a record that replaced it
    /// meanwhile (a reconnect, another replica's rotation) stays and is
    /// returned.
    async fn end_grant(&self, store: &StoreHandle, key: &str, raw: Option<&str>) -> Option<String> {
        let (lookup, expected) = (key.to_owned(), raw.map(str::to_owned));
        store
            .run(move |store| match (store.record(&lookup, now())?, expected) {
                (Some(current), Some(expected)) if current == expected => {
                    store.delete_record(&lookup)?;
                    Ok(None)
                }
                (current, _) => Ok(current),
            })
            .await
            .ok()
            .flatten()
    }

    /// The scope asked for: the policy's `scopes`, else what the resource
    /// says it supports.
    pub(crate) fn requested_scope(&self, found: &Discovered) -> String {
        if self.scopes.is_empty() { found.resource_scopes.join(" ") } else { self.scopes.join(" ") }
    }

    /// A record for a token response; `previous` gives what the response
    /// does not repeat (a refresh token that was not rotated, who connected).
    pub(crate) fn record_from(
        &self,
        found: &Discovered,
        client: &RegisteredClient,
        owner: &str,
        response: TokenResponse,
        previous: Option<&StoredGrant>,
    ) -> Result<StoredGrant, UpstreamAuthError> {
        let sealing: &SealingKey = &self.runtime()?.sealing;
        let seal = |token: &str, which: &str| {
            sealing
                .seal(token, &binding(&self.id, owner, which))
                .ok_or_else(|| UpstreamAuthError::Unavailable("cannot seal the upstream token".into()))
        };
        let now = now();
        let sealed_refresh = match &response.refresh_token {
            Some(token) => Some(seal(token, "refresh")?),
            None => previous.and_then(|grant| grant.sealed_refresh.clone()),
        };
        Ok(StoredGrant {
            sealed_access: seal(&response.access_token, "access")?,
            access_expires_at: response.expires_in.map(|seconds| now + seconds.max(0)),
            sealed_refresh,
            scope: response.scope.or_else(|| previous.and_then(|grant| grant.scope.clone())),
            issuer: found.issuer.clone(),
            client_id: client.client_id.clone(),
            revocation_endpoint: found.revocation_endpoint.as_ref().map(|url| url.to_string()),
            issued_at: now,
            connected_at: previous.map_or(now, |grant| grant.connected_at),
            email: previous.and_then(|grant| grant.email.clone()),
            username: previous.and_then(|grant| grant.username.clone()),
        })
    }
}

pub(crate) fn parse(raw: &str) -> Result<StoredGrant, UpstreamAuthError> {
    Ok(serde_json::from_str(raw).map_err(StoreError::from)?)
}

/// Revokes a grant at the upstream's authorization server (RFC 7009), when
/// it offers revocation: the refresh token (which ends the grant there),
/// else the access token. Best effort: the grant is gone from the gateway
/// either way.
pub(crate) async fn revoke_at_upstream(
    grant: &StoredGrant,
    sealing: &SealingKey,
    upstream_id: &str,
    owner: &str,
    client: &RegisteredClient,
) -> Result<bool, String> {
    let Some(endpoint) = grant.revocation_endpoint.as_deref() else { return Ok(false) };
    let endpoint = url::Url::parse(endpoint).map_err(|err| err.to_string())?;
    super::discovery::check_url(&endpoint)?;
    let (token, hint) = match grant
        .sealed_refresh
        .as_deref()
        .and_then(|sealed| sealing.open(sealed, &binding(upstream_id, owner, "refresh")))
    {
        Some(refresh) => (refresh, "refresh_token"),
        None => (
            sealing
                .open(&grant.sealed_access, &binding(upstream_id, owner, "access"))
                .ok_or("the stored token does not open with this gateway's key")?,
            "access_token",
        ),
    };
    let mut form = vec![("token", token), ("token_type_hint", hint.to_owned())];
    let http = http().map_err(|err| err.to_string())?;
    let request = authenticate(http.post(endpoint.clone()), &mut form, client);
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&form))
        .send()
        .await
        .map_err(|err| format!("{endpoint}: {err}"))?;
    if response.status().is_success() {
        Ok(true)
    } else {
        Err(format!("{endpoint} answered HTTP {}", response.status().as_u16()))
    }
}

/// Every stored user grant at any upstream: (upstream id, subject, grant).
pub(crate) fn all_grants(
    store: &dyn crate::gateway::store::Store,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut out = Vec::new();
    for (key, value) in store.records_with_prefix(keys::GRANT_PREFIX, now())? {
        let Some(rest) = key.strip_prefix(keys::GRANT_PREFIX) else { continue };
        // Upstream ids hold no `:` (checked at boot); a subject may.
        let Some((upstream, subject)) = rest.split_once(':') else { continue };
        out.push((upstream.to_owned(), subject.to_owned(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::StoredGrant;

    fn grant(issued_at: i64, expires_at: Option<i64>) -> StoredGrant {
        StoredGrant {
            sealed_access: "v1.x".into(),
            access_expires_at: expires_at,
            sealed_refresh: None,
            scope: None,
            issuer: "https://as.example.com".into(),
            client_id: "c".into(),
            revocation_endpoint: None,
            issued_at,
            connected_at: issued_at,
            email: None,
            username: None,
        }
    }

    #[test]
    fn refreshed_a_minute_ahead_or_at_half_life() {
        let hour = grant(0, Some(3600));
        assert!(!hour.due(3539) && hour.due(3540), "a minute ahead");
        let short = grant(0, Some(10));
        assert!(!short.due(4) && short.due(5), "half of a short lifetime");
        assert!(!grant(0, None).due(1_000_000), "no expiry: used until refused");
        assert!(!format!("{:?}", super::StoredGrantView(&hour)).contains("v1.x"));
    }
}
