//! The device authorization grant (RFC 8628), for clients without a browser
//! on their machine (`mcp-remote --device-code` on a server, in a container,
//! over SSH).
//!
//! The client asks `/oauth/device_authorization` for a device code and a
//! short user code; the user opens `/oauth/device` on any device, enters the
//! user code (or opens the link with the code in it, and confirms that the
//! code is the one the device shows), signs in at the identity provider like
//! a browser login, and
//! sees the same consent screen, with the user code on it to compare. The
//! client meanwhile polls `/oauth/token` and gets `authorization_pending`,
//! `slow_down` (polling faster than the interval), `access_denied`,
//! `expired_token`, or its tokens once.
//!
//! User codes are 8 letters from an alphabet without vowels (no words) and
//! without 0/O/1/I look-alikes, shown as `XXXX-XXXX`: 20^8 (about 2^34)
//! codes, each valid 10 minutes and used once, with entries limited per
//! address (right ones counted too, and checked before the lookup, so the
//! limit's answer tells nothing), so guessing one is out of reach.

use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::Extensions;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::client_auth::authenticate;
use super::redirect::found;
use super::register::DEVICE_CODE_GRANT;
use super::{OAuthError, PENDING_LOGIN_TTL, PageError, granted_scope};
use crate::gateway::client_address::{client_ip, counter_key, peer};
use crate::gateway::crypto::{pkce_challenge, random_token, sha256_hex};
use crate::gateway::pages;
use crate::gateway::state::AppState;
use crate::gateway::store::{DeviceAuthorization, DeviceStatus, Grant, PendingLogin, Store, StoreError, now};

/// The polling interval asked of clients (RFC 8628 3.2's default).
const INTERVAL: i64 = 5;
/// Consonants without look-alikes (RFC 8628 6.1).
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// User codes (right or wrong) one address may enter per minute.
const CODE_ENTRIES_PER_MINUTE: u64 = 10;
/// User codes drawn for one device authorization before giving up.
const USER_CODE_DRAWS: usize = 8;
/// Sign-ins (pending logins at the identity provider) one user code may start.
const PENDING_LOGINS_PER_USER_CODE: u64 = 5;

fn user_code() -> String {
    let mut rng = rand::rng();
    let letters: String = (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// What a user typed, in the stored form: letters upper-cased, dashes and
/// spaces dropped, `XXXX-XXXX`; `None` if it cannot be a user code.
fn normalized(input: &str) -> Option<String> {
    let letters: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    (letters.len() == 8 && letters.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &letters[..4], &letters[4..]))
}

#[derive(Deserialize)]
pub(super) struct DeviceForm {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    resource: Option<String>,
}

/// `POST /oauth/device_authorization` (RFC 8628 3.1, 3.2).
pub(super) async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DeviceForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|err| {
        OAuthError::InvalidRequest(format!("expected an application/x-www-form-urlencoded body: {}", err.body_text()))
    })?;
    let client = authenticate(&state, &headers, form.client_id.as_deref(), form.client_secret.as_deref()).await?;
    if !client.grant_types.iter().any(|grant| grant == DEVICE_CODE_GRANT) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "the client did not register the {DEVICE_CODE_GRANT} grant; register it in grant_types"
        )));
    }
    let route = match form.resource.as_deref().filter(|r| !r.is_empty()) {
        Some(resource) => state.route_for_resource(resource),
        None if state.routes.len() == 1 => state.routes.values().next(),
        None => None,
    }
    .ok_or_else(|| {
        OAuthError::InvalidTarget("resource must be one of the gateway's MCP URLs ({public_url}/mcp/{name})".into())
    })?;
    let device_code = random_token(32);
    let lifetime = state.oauth.device_code_lifetime.as_secs().max(1) as i64;
    let device = DeviceAuthorization {
        user_code: user_code(),
        client_id: client.client_id.clone(),
        slug: route.route.slug.clone(),
        scope: granted_scope(form.scope.as_deref(), &route.route.policy),
        expires_at: now() + lifetime,
        status: DeviceStatus::Pending,
    };
    let hash = sha256_hex(&device_code);
    let device = state.store.run(move |store| insert_with_free_user_code(store, &hash, device)).await?;
    tracing::info!(client_id = %client.client_id, route = %route.route.path, "device authorization started");
    let verification_uri = format!("{}/oauth/device", state.public_url);
    let body = json!({
        "device_code": device_code,
        "user_code": device.user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={}", device.user_code),
        "expires_in": lifetime,
        "interval": INTERVAL,
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Stores `device`, drawing a new user code while the drawn one is taken
/// (two live authorizations must never share a code); returns what was stored.
fn insert_with_free_user_code(
    store: &dyn Store,
    hash: &str,
    mut device: DeviceAuthorization,
) -> Result<DeviceAuthorization, StoreError> {
    for _ in 0..USER_CODE_DRAWS {
        if store.insert_device(hash, &device)? {
            return Ok(device);
        }
        device.user_code = user_code();
    }
    // Only a store holding a good share of all 20^8 codes gets here.
    Err(StoreError::Unavailable(format!("no free user code in {USER_CODE_DRAWS} draws")))
}

/// `GET /oauth/device`: the form for the user code, or, with a code (the
/// `verification_uri_complete` a device shows), the code to compare with the
/// device's before anything starts. A link that signs in at once would let
/// anyone who sends the user their own device's link get that device signed
/// in as the user with one click (RFC 8628 5.4).
pub(super) async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let entered = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "user_code")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.trim().is_empty());
    let Some(entered) = entered else {
        return Ok(entry_page(None));
    };
    match pending_device(&state, &headers, &extensions, &entered).await? {
        Some((code, _)) => Ok(page_response(pages::device_confirm(&code))),
        None => Ok(entry_page(Some(WRONG_CODE))),
    }
}

#[derive(Deserialize)]
pub(super) struct EnteredCode {
    #[serde(default)]
    user_code: String,
}

/// `POST /oauth/device`: a code the user typed, or confirmed on the page
/// above, starts the sign-in at the identity provider. The guard refuses a
/// foreign `Origin`, so another site cannot post it for the user.
pub(super) async fn start_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    form: Result<Form<EnteredCode>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(EnteredCode { user_code: entered })) = form else {
        return Ok(entry_page(Some(WRONG_CODE)));
    };
    let Some((code, device)) = pending_device(&state, &headers, &extensions, &entered).await? else {
        return Ok(entry_page(Some(WRONG_CODE)));
    };
    // Each sign-in stores a pending login; a code is needed by one user, who
    // may start again a few times, not by a crowd filling the store.
    let key = format!("device-logins:{code}");
    let (started, until) = (now(), device.expires_at);
    let logins = state.store.run(move |store| store.count_request(&key, until, started)).await?;
    if logins > PENDING_LOGINS_PER_USER_CODE {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "This code has started too many sign-ins. Start the sign-in again on your device for a new code.",
            format!("{logins} sign-ins started with one user code"),
        ));
    }
    let Some(route) = state.routes.get(&device.slug) else {
        return Err(PageError::bad_request("The MCP route of this sign-in no longer exists."));
    };
    let idp_verifier = random_token(32);
    let login = PendingLogin {
        state: random_token(32),
        client_id: device.client_id,
        redirect_uri: String::new(),
        client_state: None,
        code_challenge: String::new(),
        slug: device.slug,
        scope: device.scope,
        nonce: random_token(32),
        idp_code_verifier: idp_verifier.clone(),
        expires_at: now() + PENDING_LOGIN_TTL,
        device_user_code: Some(code),
        upstream_connect: None,
    };
    let location = route.idp.authorize_url(
        &super::authorize::callback_url(&state),
        &login.state,
        &login.nonce,
        &pkce_challenge(&idp_verifier),
    );
    tracing::info!(client_id = %login.client_id, route = %route.route.path, "device sign-in started; browser sent to the identity provider");
    state.store.run(move |store| store.insert_pending_login(&login)).await?;
    Ok(found(location.as_str()))
}

const WRONG_CODE: &str = "That code is not valid or has expired. Check the code your device shows.";

/// The pending authorization of the user code `entered` (and the code in its
/// stored form), after counting the entry against the caller's address.
async fn pending_device(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    entered: &str,
) -> Result<Option<(String, DeviceAuthorization)>, PageError> {
    // The client's address as the trusted-proxy rules give it: behind a
    // TLS terminator the peer is the terminator, shared by every client.
    let peer = peer(extensions);
    let address = counter_key(client_ip(&state.security.trusted_proxies, headers, peer));
    // Every entry counts and the limit is checked before the lookup: were
    // only wrong codes counted, a limited address would still be let through
    // on a right one, and the difference would tell it which codes are live.
    let entered_at = now();
    let key = format!("device-code:{address}:{}", entered_at / 60);
    let entries =
        state.store.run(move |store| store.count_request(&key, entered_at / 60 * 60 + 60, entered_at)).await?;
    if entries > CODE_ENTRIES_PER_MINUTE {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many codes entered. Wait a minute, then enter the code your device shows.",
            format!("{entries} user codes entered from {address} this minute"),
        ));
    }
    let Some(code) = normalized(entered) else {
        return Ok(None);
    };
    let lookup = code.clone();
    Ok(state.store.run(move |store| store.pending_device(&lookup, now())).await?.map(|device| (code, device)))
}

fn entry_page(message: Option<&str>) -> Response {
    page_response(pages::device_entry(message))
}

/// A device page, never cached or framed, whose forms post only here.
fn page_response(html: String) -> Response {
    let mut response = (StatusCode::OK, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    response
}

/// The page after the user decided on the consent screen of a device login.
pub(super) async fn decide(state: &AppState, user_code: &str, status: DeviceStatus) -> Result<Response, PageError> {
    let approved = matches!(status, DeviceStatus::Approved(_));
    let code = user_code.to_owned();
    let decided = state.store.run(move |store| store.decide_device(&code, &status, now())).await?;
    if !decided {
        return Err(PageError::bad_request("This device sign-in has expired or was already answered."));
    }
    tracing::info!(approved, "device sign-in decided");
    let message = if approved {
        "Done: your device is signed in. You can close this page and return to it."
    } else {
        "Access denied: your device will not be signed in. You can close this page."
    };
    let mut response = (StatusCode::OK, Html(pages::device_done(message))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The device grant at the token endpoint (RFC 8628 3.4, 3.5): the grant
/// once approved, else the error the client's polling acts on.
pub(super) async fn redeem(state: &AppState, client_id: &str, device_code: Option<&str>) -> Result<Grant, OAuthError> {
    let device_code = device_code.ok_or_else(|| OAuthError::InvalidRequest("device_code is required".into()))?;
    let hash = sha256_hex(device_code);
    let polled_at = now();
    let polled = state.store.run(move |store| store.poll_device(&hash, polled_at)).await?;
    let Some((device, last_poll)) = polled else {
        return Err(OAuthError::InvalidGrant("the device code is unknown or was already used".into()));
    };
    if device.client_id != client_id {
        return Err(OAuthError::InvalidGrant("the device code was issued to another client".into()));
    }
    if device.expires_at <= polled_at && device.status == DeviceStatus::Pending {
        return Err(OAuthError::ExpiredToken("the device code has expired; start the sign-in again".into()));
    }
    match device.status {
        DeviceStatus::Approved(grant) => Ok(grant),
        DeviceStatus::Denied => Err(OAuthError::AccessDenied("the user denied access".into())),
        DeviceStatus::Pending if last_poll > 0 && polled_at - last_poll < INTERVAL => {
            Err(OAuthError::SlowDown(format!("poll at most every {INTERVAL} seconds")))
        }
        DeviceStatus::Pending => {
            Err(OAuthError::AuthorizationPending("the user has not yet approved this device".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ALPHABET, insert_with_free_user_code, normalized, user_code};
    use crate::gateway::store::{DeviceAuthorization, DeviceStatus, SqliteStore, Store};

    #[test]
    fn a_taken_user_code_is_drawn_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gw.db")).unwrap();
        let device = DeviceAuthorization {
            user_code: "BCDF-GHJK".into(),
            client_id: "c1".into(),
            slug: "echo".into(),
            scope: "openid".into(),
            expires_at: super::now() + 600,
            status: DeviceStatus::Pending,
        };
        assert!(store.insert_device("first", &device).unwrap());
        let second = insert_with_free_user_code(&store, "second", device.clone()).unwrap();
        assert_ne!(second.user_code, "BCDF-GHJK", "a new code was drawn");
        assert_eq!(store.pending_device(&second.user_code, super::now()).unwrap(), Some(second.clone()));
        assert_eq!(store.pending_device("BCDF-GHJK", super::now()).unwrap(), Some(device), "the first is untouched");
    }

    #[test]
    fn user_codes_are_short_and_unambiguous() {
        for _ in 0..200 {
            let code = user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(code.bytes().filter(|b| *b != b'-').all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I']), "{code}");
        }
        assert_eq!(normalized("bcdf ghjk").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalized("BCDF-GHJK").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalized("BCDF-GHJ0"), None);
        assert_eq!(normalized("BCDF"), None);
    }
}
