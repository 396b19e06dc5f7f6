//! Behaviour every store must have, run against each back end by its tests.
//! Times are synthetic (small numbers) so expiry is tested without sleeping.

use super::{
    AuthCode, Client, Consent, Grant, Lifetimes, PendingLogin, RefreshToken, RefreshUse, RevokedAccess, Rotation,
    Store, StoreError,
};

pub(crate) fn run_all(store: &dyn Store) {
    signing_key_is_kept(store);
    clients_round_trip(store);
    codes_are_single_use_and_expire(store);
    pending_logins_and_consents_are_single_use(store);
    refresh_rotation_and_reuse_detection(store);
    refresh_bound_to_client_expiry_and_route(store);
    revoking_a_family(store);
    access_revocations(store);
    rate_counts(store);
}

/// Counters add up per key and start again after their window.
fn rate_counts(store: &dyn Store) {
    assert_eq!(store.count_request("rl:user-a:1", 120, 60).unwrap(), 1);
    assert_eq!(store.count_request("rl:user-a:1", 120, 61).unwrap(), 2);
    assert_eq!(store.count_request("rl:user-b:1", 120, 61).unwrap(), 1, "per key");
    assert_eq!(store.count_request("rl:user-a:1", 120, 62).unwrap(), 3);
}

fn grant(client: &str) -> Grant {
    Grant {
        client_id: client.into(),
        slug: "echo".into(),
        scope: "openid".into(),
        subject: "user-sub".into(),
        identity: super::Identity { email: Some("u@example.com".into()), groups: vec!["admins".into()], roles: vec![] },
    }
}

fn refresh(family: &str, client: &str, jti: &str) -> RefreshToken {
    RefreshToken {
        family: family.into(),
        grant: grant(client),
        expires_at: 10_000,
        access_jti: jti.into(),
        access_expires_at: 2_000,
    }
}

fn rotation(hash: &str, jti: &str) -> Rotation {
    Rotation { new_hash: hash.into(), access_jti: jti.into() }
}

fn lifetimes(_: &Grant) -> Option<Lifetimes> {
    Some(Lifetimes { refresh: 9_000, access: 1_000 })
}

fn rotate(store: &dyn Store, hash: &str, client: &str, next: Rotation, now: i64) -> Result<RefreshUse, StoreError> {
    store.rotate_refresh(hash, client, &next, &lifetimes, now)
}

fn signing_key_is_kept(store: &dyn Store) {
    let first = store.signing_key_or_insert("key-one").unwrap();
    assert_eq!(store.signing_key_or_insert("key-two").unwrap(), first, "one key, kept");
}

fn clients_round_trip(store: &dyn Store) {
    let client = Client {
        client_id: "conf-client".into(),
        client_name: Some("Cursor".into()),
        redirect_uris: vec!["cursor://cb".into()],
        grant_types: vec!["authorization_code".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "none".into(),
        client_secret_hash: None,
        client_id_issued_at: 1,
    };
    store.insert_client(&client).unwrap();
    assert_eq!(store.client("conf-client").unwrap(), Some(client));
    assert_eq!(store.client("nobody").unwrap(), None);
}

fn codes_are_single_use_and_expire(store: &dyn Store) {
    let code = AuthCode {
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".into(),
        grant: grant("c1"),
        expires_at: 100,
    };
    store.insert_code("code-h1", &code).unwrap();
    assert_eq!(store.take_code("code-h1", 50).unwrap(), Some(code.clone()));
    assert_eq!(store.take_code("code-h1", 50).unwrap(), None, "single use");
    store.insert_code("code-h2", &code).unwrap();
    assert_eq!(store.take_code("code-h2", 100).unwrap(), None, "expired at 100");
}

fn pending_logins_and_consents_are_single_use(store: &dyn Store) {
    let login = PendingLogin {
        state: "login-s".into(),
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        client_state: Some("cs".into()),
        code_challenge: "cc".into(),
        slug: "echo".into(),
        scope: "openid".into(),
        nonce: "n".into(),
        idp_code_verifier: "v".into(),
        expires_at: 600,
    };
    store.insert_pending_login(&login).unwrap();
    assert_eq!(store.take_pending_login("login-s", 10).unwrap(), Some(login.clone()));
    assert_eq!(store.take_pending_login("login-s", 10).unwrap(), None);
    store.insert_pending_login(&PendingLogin { state: "login-late".into(), ..login }).unwrap();
    assert_eq!(store.take_pending_login("login-late", 600).unwrap(), None, "expired");

    let consent = Consent {
        id: "consent-1".into(),
        csrf_hash: "h".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        client_state: None,
        code_challenge: "cc".into(),
        grant: grant("c1"),
        expires_at: 600,
    };
    store.insert_consent(&consent).unwrap();
    assert_eq!(store.take_consent("consent-1", 10).unwrap(), Some(consent));
    assert_eq!(store.take_consent("consent-1", 10).unwrap(), None);
}

fn refresh_rotation_and_reuse_detection(store: &dyn Store) {
    store.insert_refresh("rr1", &refresh("fam-a", "c1", "a1")).unwrap();
    let RefreshUse::Rotated { grant: g, family } = rotate(store, "rr1", "c1", rotation("rr2", "a2"), 1_000).unwrap()
    else {
        panic!("first use rotates")
    };
    assert_eq!((g, family.as_str()), (grant("c1"), "fam-a"));
    assert!(matches!(rotate(store, "rr2", "c1", rotation("rr3", "a3"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
    // rr1 again: reuse. The family (rr3 included) is revoked with the access
    // tokens issued alongside (a1 expires at 2000, a2 and a3 at 2000 = 1000 + 1000).
    let RefreshUse::Reused { revoked_access } = rotate(store, "rr1", "c1", rotation("rr4", "a4"), 1_000).unwrap()
    else {
        panic!("reuse detected")
    };
    let mut jtis: Vec<_> = revoked_access.iter().map(|r| r.jti.as_str()).collect();
    jtis.sort();
    assert_eq!(jtis, ["a1", "a2", "a3"]);
    assert!(
        matches!(rotate(store, "rr3", "c1", rotation("rr5", "a5"), 1_000).unwrap(), RefreshUse::Reused { .. }),
        "successor revoked"
    );
    let mut revoked: Vec<_> = store.revoked_since(0, 1_000).unwrap().into_iter().map(|r| r.jti).collect();
    revoked.sort();
    revoked.dedup();
    assert!(["a1", "a2", "a3"].iter().all(|j| revoked.iter().any(|r| r == j)), "{revoked:?}");
}

fn refresh_bound_to_client_expiry_and_route(store: &dyn Store) {
    store.insert_refresh("rb1", &refresh("fam-b", "c1", "b1")).unwrap();
    assert_eq!(rotate(store, "rb1", "other", rotation("x1", "y"), 1_000).unwrap(), RefreshUse::Unknown);
    assert_eq!(rotate(store, "nope", "c1", rotation("x2", "y"), 1_000).unwrap(), RefreshUse::Unknown);
    assert_eq!(rotate(store, "rb1", "c1", rotation("x3", "y"), 10_000).unwrap(), RefreshUse::Expired);
    assert_eq!(
        store.rotate_refresh("rb1", "c1", &rotation("x4", "y"), &|_| None, 1_000).unwrap(),
        RefreshUse::Unknown,
        "route gone"
    );
    // None of the refused attempts consumed the token.
    assert!(matches!(rotate(store, "rb1", "c1", rotation("rb2", "b2"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
}

fn revoking_a_family(store: &dyn Store) {
    store.insert_refresh("rf1", &refresh("fam-c", "c1", "c1-access")).unwrap();
    assert_eq!(store.revoke_refresh_family("rf1", "other", 1_000).unwrap(), None);
    let revoked = store.revoke_refresh_family("rf1", "c1", 1_000).unwrap().unwrap();
    assert_eq!(revoked, vec![RevokedAccess { jti: "c1-access".into(), expires_at: 2_000 }]);
    assert!(matches!(rotate(store, "rf1", "c1", rotation("rf2", "x"), 1_000).unwrap(), RefreshUse::Reused { .. }));
    assert_eq!(store.revoke_refresh_family("never", "c1", 1_000).unwrap(), None);
}

fn access_revocations(store: &dyn Store) {
    store.revoke_access(&RevokedAccess { jti: "acc-old".into(), expires_at: 5_000 }, 3_000).unwrap();
    store.revoke_access(&RevokedAccess { jti: "acc-new".into(), expires_at: 9_000 }, 4_000).unwrap();
    let since: Vec<_> = store.revoked_since(3_500, 3_500).unwrap().into_iter().map(|r| r.jti).collect();
    assert_eq!(since, ["acc-new"], "only revocations at or after 3500");
    let live: Vec<_> = store.revoked_since(3_000, 6_000).unwrap().into_iter().map(|r| r.jti).collect();
    assert_eq!(live, ["acc-new"], "expired revocations are not returned");
}
