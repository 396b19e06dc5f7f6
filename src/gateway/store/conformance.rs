//! Behaviour every store must have, run against each back end by its tests.
//! Times are synthetic (small numbers) so expiry is tested without sleeping.

use super::{
    AuthCode, Client, CodeUse, Consent, DeviceAuthorization, DeviceStatus, Grant, Identity, IdpSession, Lifetimes,
    PendingLogin, Recheck, RefreshToken, RefreshUse, RevokedAccess, Rotation, Store, StoreError,
};
use crate::gateway::tokens::Revocations;

pub(crate) fn run_all(store: &dyn Store) {
    signing_key_is_kept(store);
    signing_key_ring_is_compare_and_set(store);
    clients_round_trip(store);
    codes_are_single_use_and_expire(store);
    pending_logins_and_consents_are_single_use(store);
    refresh_rotation_and_reuse_detection(store);
    refresh_bound_to_client_expiry_and_route(store);
    revoking_a_family(store);
    revocations_follow_the_log_not_the_clock(store);
    unused_clients_expire(store);
    families_end_at_their_lifetime(store);
    code_uses_revoke_their_family(store);
    replayed_code_revokes_a_family_not_yet_stored(store);
    operators_revoke_by_subject_or_client(store);
    refresh_grace_replays_then_revokes(store);
    device_authorizations(store);
    rate_counts(store);
    rechecks_ride_the_rotation(store);
    revocation_numbers_survive_the_sweep(store);
    plain_records(store);
}

/// Plain records: one value per key, a lease taken once, compare-and-set,
/// listing by prefix, expiry (by the real clock: Redis expires them itself).
fn plain_records(store: &dyn Store) {
    let now = crate::gateway::store::now();
    store.put_record("rec-t:a:1", "one", None).unwrap();
    store.put_record("rec-t:a:2", "two", Some(now + 600)).unwrap();
    store.put_record("rec-t:b:1", "other", None).unwrap();
    store.put_record("rec-t:a:gone", "old", Some(now - 1)).unwrap();
    assert_eq!(store.record("rec-t:a:1", now).unwrap().as_deref(), Some("one"));
    assert_eq!(store.record("rec-t:a:gone", now).unwrap(), None, "expired");
    let listed = store.records_with_prefix("rec-t:a:", now).unwrap();
    assert_eq!(listed, [("rec-t:a:1".to_owned(), "one".to_owned()), ("rec-t:a:2".to_owned(), "two".to_owned())]);
    assert!(store.insert_record("rec-t:lease", "replica-1", Some(now + 30), now).unwrap());
    assert!(!store.insert_record("rec-t:lease", "replica-2", Some(now + 30), now).unwrap(), "held");
    assert_eq!(store.record("rec-t:lease", now).unwrap().as_deref(), Some("replica-1"));
    assert!(!store.replace_record("rec-t:lease", "replica-2", "replica-2", Some(now - 1)).unwrap(), "not its lease");
    assert!(store.replace_record("rec-t:lease", "replica-1", "replica-1", Some(now - 1)).unwrap(), "released");
    assert_eq!(store.record("rec-t:lease", now).unwrap(), None, "a released lease reads as absent");
    assert!(store.insert_record("rec-t:lease", "replica-2", Some(now + 30), now).unwrap(), "and is taken again");
    assert!(store.insert_record("rec-t:a:gone", "new", None, now).unwrap(), "an expired record does not hold the key");
    assert!(!store.replace_record("rec-t:a:1", "not-one", "x", None).unwrap(), "compare fails");
    assert!(store.replace_record("rec-t:a:1", "one", "uno", None).unwrap());
    assert_eq!(store.record("rec-t:a:1", now).unwrap().as_deref(), Some("uno"));
    assert!(!store.replace_record("rec-t:none", "x", "y", None).unwrap(), "absent is not replaced");
    assert_eq!(store.take_record("rec-t:a:2", now).unwrap().as_deref(), Some("two"));
    assert_eq!(store.take_record("rec-t:a:2", now).unwrap(), None, "single use");
    assert!(store.delete_record("rec-t:b:1").unwrap());
    assert!(!store.delete_record("rec-t:b:1").unwrap());
    let odd = "rec-t:sub*[x]?:1";
    store.put_record(odd, "glob", None).unwrap();
    assert_eq!(store.records_with_prefix("rec-t:sub*[x]?:", now).unwrap().len(), 1, "glob characters are literal");
    assert_eq!(store.records_with_prefix("rec-t:sub", now).unwrap().len(), 1);
}

/// The refresh grant looks at an active token without changing it, and a
/// re-check made before the rotation reaches the successor (and the used
/// token, whose grace replay answers for the user as re-checked).
fn rechecks_ride_the_rotation(store: &dyn Store) {
    let login = IdpSession { sealed_refresh: "v1.sealed-at-login".into(), checked_at: 100 };
    let token = RefreshToken {
        grant: Grant { idp: Some(login.clone()), ..grant("c-rc") },
        ..refresh("rc-fam", "c-rc", "rc-j1")
    };
    store.insert_refresh("rc-h1", &token).unwrap();
    assert_eq!(store.active_refresh("rc-h1", "c-rc").unwrap(), Some(token.clone()));
    assert_eq!(store.active_refresh("rc-h1", "c-other").unwrap(), None, "bound to its client");
    assert_eq!(store.active_refresh("rc-h1", "c-rc").unwrap(), Some(token.clone()), "looking changes nothing");
    let recheck = Recheck {
        idp: IdpSession { sealed_refresh: "v1.sealed-rotated".into(), checked_at: 400 },
        identity: Some(Identity {
            email: Some("u@example.com".into()),
            username: None,
            groups: vec!["readers".into()],
            roles: vec![],
            machine: false,
        }),
    };
    let next = Rotation { recheck: Some(recheck.clone()), grace: 30, ..rotation("rc-h2", "rc-j2") };
    assert!(matches!(rotate(store, "rc-h1", "c-rc", next.clone(), 400).unwrap(), RefreshUse::Rotated { .. }));
    assert_eq!(store.active_refresh("rc-h1", "c-rc").unwrap(), None, "used");
    let successor = store.active_refresh("rc-h2", "c-rc").unwrap().expect("the successor is active");
    assert_eq!(successor.grant.idp, Some(recheck.idp.clone()));
    assert_eq!(successor.grant.identity.groups, ["readers"]);
    match rotate(store, "rc-h1", "c-rc", next, 401).unwrap() {
        RefreshUse::Replayed { grant, .. } => assert_eq!(grant.identity.groups, ["readers"]),
        other => panic!("a replay within the grace window: {other:?}"),
    }
    // Without a re-check the successor keeps the session as it was.
    assert!(matches!(
        rotate(store, "rc-h2", "c-rc", rotation("rc-h3", "rc-j3"), 500).unwrap(),
        RefreshUse::Rotated { .. }
    ));
    assert_eq!(store.active_refresh("rc-h3", "c-rc").unwrap().unwrap().grant.idp, Some(recheck.idp));
}

/// Counters add up per key and start again after their window.
fn rate_counts(store: &dyn Store) {
    assert_eq!(store.count_request("rl:user-a:1", 120, 60).unwrap(), 1);
    assert_eq!(store.count_request("rl:user-a:1", 120, 61).unwrap(), 2);
    assert_eq!(store.count_request("rl:user-b:1", 120, 61).unwrap(), 1, "per key");
    assert_eq!(store.count_request("rl:user-a:1", 120, 62).unwrap(), 3);
}

fn operators_revoke_by_subject_or_client(store: &dyn Store) {
    let for_subject = |subject: &str, client: &str, jti: &str| RefreshToken {
        grant: Grant { subject: subject.into(), ..grant(client) },
        ..refresh(&format!("op-{jti}"), client, jti)
    };
    store.insert_refresh("op-h1", &for_subject("op-alice", "op-c1", "op-j1")).unwrap();
    store.insert_refresh("op-h2", &for_subject("op-bob", "op-c1", "op-j2")).unwrap();
    store.insert_refresh("op-h3", &for_subject("op-bob", "op-c2", "op-j3")).unwrap();
    let by_subject = store.revoke_grants(Some("op-alice"), None, 100).unwrap();
    assert_eq!(by_subject.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(), ["op-j1"]);
    let mut by_client: Vec<String> =
        store.revoke_grants(None, Some("op-c1"), 100).unwrap().into_iter().map(|r| r.jti).collect();
    by_client.sort();
    assert_eq!(by_client, ["op-j1", "op-j2"], "alice's again (already revoked) and bob's on c1");
    assert!(
        matches!(rotate(store, "op-h3", "op-c2", rotation("op-h4", "op-j4"), 100).unwrap(), RefreshUse::Rotated { .. }),
        "bob on c2 untouched"
    );
}

/// What a code's redemption issues, as the token endpoint records it.
fn code_use(family: &str, jti: &str) -> CodeUse {
    CodeUse {
        family: Some(family.into()),
        access: RevokedAccess { jti: jti.into(), expires_at: 2_000 },
        expires_at: 2_000,
    }
}

fn code(client: &str) -> AuthCode {
    AuthCode {
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".into(),
        grant: grant(client),
        expires_at: 600,
    }
}

/// Redeemed, stored, then replayed: the family and its access tokens are revoked.
fn code_uses_revoke_their_family(store: &dyn Store) {
    store.insert_code("cu-code", &code("c-cu")).unwrap();
    assert_eq!(store.take_code("cu-code", &|_| code_use("cu-fam", "cu-j1"), 100).unwrap(), Some(code("c-cu")));
    store.insert_refresh("cu-h1", &refresh("cu-fam", "c-cu", "cu-j1")).unwrap();
    // The replay: the code is gone, what it issued is revoked.
    assert_eq!(store.take_code("cu-code", &|_| code_use("cu-other", "cu-jx"), 100).unwrap(), None);
    let revoked = store.revoke_code_use("cu-code", 100).unwrap().unwrap();
    assert_eq!(revoked, [RevokedAccess { jti: "cu-j1".into(), expires_at: 2_000 }], "family and access token, once");
    assert_eq!(store.revoke_code_use("cu-code", 100).unwrap(), None, "a second replay finds nothing left");
    assert!(matches!(
        rotate(store, "cu-h1", "c-cu", rotation("cu-h2", "cu-j2"), 100).unwrap(),
        RefreshUse::Reused { .. }
    ));
    let log: Vec<String> = store.revocations_after(0, 100).unwrap().revoked.into_iter().map(|r| r.jti).collect();
    assert!(log.contains(&"cu-j1".to_owned()), "{log:?}");
    // A code never redeemed (or expired) has nothing to revoke.
    assert_eq!(store.revoke_code_use("cu-never", 100).unwrap(), None);
    store.insert_code("cu-late", &code("c-cu")).unwrap();
    assert_eq!(store.take_code("cu-late", &|_| code_use("cu-late-fam", "cu-late-j"), 600).unwrap(), None, "expired");
    assert_eq!(store.revoke_code_use("cu-late", 100).unwrap(), None, "an expired code records nothing");
}

/// Two replicas redeem one code at once: the winner took it (recording what it
/// will issue) but has not stored its refresh token yet when the loser's
/// replay revokes. The winner's access token id is in the log, and its
/// refresh token lands revoked (RFC 6749 section 4.1.2: everything issued
/// from the code).
fn replayed_code_revokes_a_family_not_yet_stored(store: &dyn Store) {
    store.insert_code("race-code", &code("c-race")).unwrap();
    assert!(store.take_code("race-code", &|_| code_use("race-fam", "race-j1"), 100).unwrap().is_some());
    let revoked = store.revoke_code_use("race-code", 101).unwrap().unwrap();
    assert_eq!(revoked, [RevokedAccess { jti: "race-j1".into(), expires_at: 2_000 }]);
    let mirror = Revocations::default();
    mirror.sync(store, 102).unwrap();
    assert!(mirror.is_revoked("race-j1"), "another replica learns the winner's access token is revoked");
    // Now the winner stores its refresh token: revoked on arrival.
    store.insert_refresh("race-h1", &refresh("race-fam", "c-race", "race-j1")).unwrap();
    assert!(matches!(
        rotate(store, "race-h1", "c-race", rotation("race-h2", "race-j2"), 103).unwrap(),
        RefreshUse::Reused { .. }
    ));
    assert_eq!(
        rotate(store, "race-h2", "c-race", rotation("race-h3", "race-j3"), 103).unwrap(),
        RefreshUse::Unknown,
        "no successor was stored"
    );
    // Other families are not touched by the tombstone.
    store.insert_refresh("race-other", &refresh("race-fam-2", "c-race", "race-j9")).unwrap();
    assert!(matches!(
        rotate(store, "race-other", "c-race", rotation("race-other-2", "race-j10"), 103).unwrap(),
        RefreshUse::Rotated { .. }
    ));
}

fn unused_clients_expire(store: &dyn Store) {
    let client = |id: &str, at: i64| Client {
        client_id: id.into(),
        client_name: None,
        redirect_uris: vec!["cursor://cb".into()],
        grant_types: vec!["authorization_code".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "none".into(),
        client_secret_hash: None,
        client_id_issued_at: at,
    };
    store.insert_client(&client("old-unused", 100)).unwrap();
    store.insert_client(&client("old-used", 100)).unwrap();
    store.insert_client(&client("recent", 900)).unwrap();
    store.mark_client_used("old-used").unwrap();
    assert!(store.expire_unused_clients(500).unwrap() >= 1);
    assert_eq!(store.client("old-unused").unwrap(), None, "never used: deleted");
    assert!(store.client("old-used").unwrap().is_some(), "used: kept");
    assert!(store.client("recent").unwrap().is_some(), "recent: kept");
}

fn families_end_at_their_lifetime(store: &dyn Store) {
    let token = RefreshToken { family_expires_at: Some(5_000), ..refresh("fam-life", "c-life", "j0") };
    store.insert_refresh("life-h1", &token).unwrap();
    // Rotated at 4_500: the successor would live to 13_500, but the family ends at 5_000.
    assert!(matches!(
        rotate(store, "life-h1", "c-life", rotation("life-h2", "j1"), 4_500).unwrap(),
        RefreshUse::Rotated { .. }
    ));
    assert_eq!(rotate(store, "life-h2", "c-life", rotation("life-h3", "j2"), 5_000).unwrap(), RefreshUse::Expired);
}

fn grant(client: &str) -> Grant {
    Grant {
        client_id: client.into(),
        slug: "echo".into(),
        scope: "openid".into(),
        subject: "user-sub".into(),
        identity: super::Identity {
            email: Some("u@example.com".into()),
            username: None,
            groups: vec!["admins".into()],
            roles: vec![],
            machine: false,
        },
        idp: None,
    }
}

fn refresh(family: &str, client: &str, jti: &str) -> RefreshToken {
    RefreshToken {
        family: family.into(),
        grant: grant(client),
        expires_at: 10_000,
        access_jti: jti.into(),
        access_expires_at: 2_000,
        family_expires_at: None,
        replaced: None,
    }
}

/// A rotation without a grace window.
fn rotation(hash: &str, jti: &str) -> Rotation {
    Rotation {
        new_hash: hash.into(),
        access_jti: jti.into(),
        sealed: format!("sealed-{hash}"),
        grace: 0,
        recheck: None,
    }
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

/// The ring is replaced only over the value the writer read, so a writer
/// that lost a race learns it instead of overwriting the winner.
fn signing_key_ring_is_compare_and_set(store: &dyn Store) {
    assert_eq!(store.signing_keys().unwrap(), None, "no ring yet");
    assert!(store.replace_signing_keys(None, "ring-a").unwrap(), "created when absent");
    assert!(!store.replace_signing_keys(None, "ring-b").unwrap(), "a second creator loses");
    assert!(!store.replace_signing_keys(Some("stale"), "ring-c").unwrap(), "a stale writer loses");
    assert_eq!(store.signing_keys().unwrap().as_deref(), Some("ring-a"));
    assert!(store.replace_signing_keys(Some("ring-a"), "ring-d").unwrap());
    assert_eq!(store.signing_keys().unwrap().as_deref(), Some("ring-d"));
    // Independent of the first key (the session-binding seed).
    assert_eq!(store.signing_key_or_insert("key-three").unwrap(), store.signing_key_or_insert("key-four").unwrap());
}

/// Replicas (each its own store connection) whose rotation falls due at the
/// same moment add one key between them, and keep the keys the ring had.
/// Several rounds (as many as fill the ring), so the writers really do
/// interleave in some of them.
pub(crate) fn simultaneous_rotations_add_one_key(replicas: &[&dyn Store]) {
    use std::time::Duration;

    use crate::gateway::keyring::{self, KeyRotation, MAX_KEYS, Ring};

    let mut held = keyring::load(replicas[0], &crate::gateway::tokens::SigningKey::generate_stored(), 1_000).unwrap();
    let due = KeyRotation { every: Some(Duration::from_secs(60)), grace: Duration::ZERO };
    for round in 1..MAX_KEYS as i64 {
        let now = 1_000 + round * 60;
        let barrier = std::sync::Barrier::new(replicas.len() * 2);
        let rings: Vec<Ring> = std::thread::scope(|scope| {
            let handles: Vec<_> = replicas
                .iter()
                .chain(replicas.iter())
                .map(|store| {
                    let (held, barrier, due) = (&held, &barrier, &due);
                    scope.spawn(move || {
                        barrier.wait();
                        keyring::sync(*store, held, due, 1_000_000, now).unwrap().ring
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        let stored = keyring::update(replicas[0], |_| None).unwrap();
        assert_eq!(stored.keys().len(), held.keys().len() + 1, "round {round}: one new key: {stored:?}");
        let kids = |ring: &Ring| ring.keys().iter().map(|key| key.kid.clone()).collect::<Vec<_>>();
        assert_eq!(kids(&stored)[..held.keys().len()], kids(&held), "round {round}: the keys before are kept");
        for ring in rings {
            assert_eq!(ring, stored, "round {round}: every replica ends with the stored ring");
        }
        held = stored;
    }
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
    let code = AuthCode { expires_at: 100, ..code("c1") };
    let issued = |_: &AuthCode| code_use("code-fam", "code-j");
    store.insert_code("code-h1", &code).unwrap();
    assert_eq!(store.take_code("code-h1", &issued, 50).unwrap(), Some(code.clone()));
    assert_eq!(store.take_code("code-h1", &issued, 50).unwrap(), None, "single use");
    store.insert_code("code-h2", &code).unwrap();
    assert_eq!(store.take_code("code-h2", &issued, 100).unwrap(), None, "expired at 100");
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
        device_user_code: None,
        upstream_connect: None,
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
        device_user_code: Some("BCDF-GHJK".into()),
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
    let mut revoked: Vec<_> = store.revocations_after(0, 1_000).unwrap().revoked.into_iter().map(|r| r.jti).collect();
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

fn jtis(revoked: Vec<RevokedAccess>) -> Vec<String> {
    revoked.into_iter().map(|r| r.jti).collect()
}

/// Revocations are numbered as they are recorded, and read by number: one
/// recorded by a replica whose clock is far behind still comes after what a
/// reader has seen.
fn revocations_follow_the_log_not_the_clock(store: &dyn Store) {
    let start = store.revocations_after(0, 0).unwrap();
    let revoke = |jti: &str, expires_at: i64, now: i64| {
        store.revoke_access(&RevokedAccess { jti: jti.into(), expires_at }, now).unwrap();
    };
    revoke("acc-first", 9_000, 5_000);
    let first = store.revocations_after(start.through, 5_000).unwrap();
    assert_eq!(jtis(first.revoked), ["acc-first"]);
    assert!(first.through > start.through);
    assert_eq!(first.epoch, start.epoch, "one log");
    // Recorded by a replica whose clock says 1_000: after the reader's cursor all the same.
    revoke("acc-behind", 9_000, 1_000);
    let behind = store.revocations_after(first.through, 5_000).unwrap();
    assert_eq!(jtis(behind.revoked), ["acc-behind"], "a revocation from a clock behind is not missed");
    // Expired at the reader's time: not handed out, but the cursor passes it.
    revoke("acc-expired", 4_000, 3_000);
    let expired = store.revocations_after(behind.through, 5_000).unwrap();
    assert!(expired.revoked.is_empty());
    assert!(expired.through > behind.through);
    // The same token revoked again keeps its number.
    revoke("acc-first", 9_000, 6_000);
    let again = store.revocations_after(expired.through, 6_000).unwrap();
    assert_eq!((again.revoked.len(), again.through), (0, expired.through));
    // Through the in-memory mirror a replica keeps: whatever each writer's clock said.
    let mirror = Revocations::default();
    mirror.sync(store, 5_000).unwrap();
    assert!(mirror.is_revoked("acc-first") && mirror.is_revoked("acc-behind"));
    assert!(!mirror.is_revoked("acc-expired"));
    revoke("acc-late-clock", 9_000, 10);
    assert_eq!(mirror.sync(store, 5_000).unwrap().read, 1, "only the new one is read");
    assert!(mirror.is_revoked("acc-late-clock"));
}

/// The sweep prunes expired revocations but never hands a number out again:
/// a replica's cursor stays valid.
fn revocation_numbers_survive_the_sweep(store: &dyn Store) {
    let before = store.revocations_after(0, 0).unwrap();
    assert!(before.through > 0);
    store.sweep(50_000).unwrap();
    let swept = store.revocations_after(0, 0).unwrap();
    assert!(swept.revoked.is_empty(), "everything expired by 50_000 is pruned: {:?}", swept.revoked);
    assert_eq!((swept.through, &swept.epoch), (before.through, &before.epoch));
    store.revoke_access(&RevokedAccess { jti: "after-sweep".into(), expires_at: 90_000 }, 50_000).unwrap();
    let next = store.revocations_after(before.through, 50_000).unwrap();
    assert_eq!(jtis(next.revoked), ["after-sweep"]);
    assert!(next.through > before.through);
}

fn refresh_grace_replays_then_revokes(store: &dyn Store) {
    let graced = |hash: &str, jti: &str| Rotation { grace: 30, ..rotation(hash, jti) };
    store.insert_refresh("rg1", &refresh("fam-g", "c1", "g1")).unwrap();
    assert!(matches!(rotate(store, "rg1", "c1", graced("rg2", "g2"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
    // Presented again within the window by the same client: the first answer.
    for now in [1_000, 1_030] {
        let RefreshUse::Replayed { grant: g, replacement } =
            rotate(store, "rg1", "c1", graced("rg-fork", "g-fork"), now).unwrap()
        else {
            panic!("replay within the window at {now}")
        };
        assert_eq!(g, grant("c1"));
        assert_eq!(
            (replacement.at, replacement.sealed.as_str(), replacement.access_jti.as_str()),
            (1_000, "sealed-rg2", "g2")
        );
    }
    assert_eq!(rotate(store, "rg1", "other", graced("x", "y"), 1_001).unwrap(), RefreshUse::Unknown, "another client");
    // No fork was stored: the would-be successor of a replay does not exist.
    assert_eq!(rotate(store, "rg-fork", "c1", graced("x", "y"), 1_001).unwrap(), RefreshUse::Unknown);
    // After the window, reuse revokes the family, the successor included.
    let RefreshUse::Reused { revoked_access } = rotate(store, "rg1", "c1", graced("rg3", "g3"), 1_031).unwrap() else {
        panic!("reuse after the window")
    };
    let mut jtis: Vec<_> = revoked_access.iter().map(|r| r.jti.as_str()).collect();
    jtis.sort();
    assert_eq!(jtis, ["g1", "g2"]);
    assert!(matches!(rotate(store, "rg2", "c1", graced("rg4", "g4"), 1_031).unwrap(), RefreshUse::Reused { .. }));
}

fn device_authorizations(store: &dyn Store) {
    let device = |code: &str| DeviceAuthorization {
        user_code: code.into(),
        client_id: "c1".into(),
        slug: "echo".into(),
        scope: "openid".into(),
        expires_at: 2_000,
        status: DeviceStatus::Pending,
    };
    assert!(store.insert_device("dev-a", &device("BCDF-GHJK")).unwrap());
    assert!(store.insert_device("dev-b", &device("LMNP-QRST")).unwrap());
    assert_eq!(store.pending_device("BCDF-GHJK", 1_000).unwrap(), Some(device("BCDF-GHJK")));
    let taken = DeviceAuthorization { client_id: "c-intruder".into(), ..device("BCDF-GHJK") };
    assert!(!store.insert_device("dev-dup", &taken).unwrap(), "a user code names one authorization");
    assert_eq!(store.pending_device("BCDF-GHJK", 1_000).unwrap(), Some(device("BCDF-GHJK")), "the first one stays");
    assert_eq!(store.poll_device("dev-dup", 1_000).unwrap(), None, "the refused one was not stored");
    assert_eq!(store.pending_device("BCDF-GHJK", 2_000).unwrap(), None, "expired");
    assert_eq!(store.pending_device("ZZZZ-ZZZZ", 1_000).unwrap(), None);
    // Polls while pending: the previous poll's time comes back.
    assert_eq!(store.poll_device("dev-a", 1_000).unwrap().map(|(_, last)| last), Some(0));
    assert_eq!(store.poll_device("dev-a", 1_005).unwrap().map(|(_, last)| last), Some(1_000));
    // One decision only.
    let approved = DeviceStatus::Approved(grant("c1"));
    assert!(store.decide_device("BCDF-GHJK", &approved, 1_006).unwrap());
    assert!(!store.decide_device("BCDF-GHJK", &DeviceStatus::Denied, 1_006).unwrap(), "decided once");
    assert_eq!(store.pending_device("BCDF-GHJK", 1_006).unwrap(), None, "no longer pending");
    // The answer is given once.
    let (answered, _) = store.poll_device("dev-a", 1_010).unwrap().unwrap();
    assert_eq!(answered.status, approved);
    assert_eq!(store.poll_device("dev-a", 1_015).unwrap(), None);
    assert!(store.decide_device("LMNP-QRST", &DeviceStatus::Denied, 1_000).unwrap());
    assert_eq!(store.poll_device("dev-b", 1_000).unwrap().unwrap().0.status, DeviceStatus::Denied);
    assert_eq!(store.poll_device("dev-b", 2_500).unwrap(), None);
    // Expired while pending: said once, then unknown.
    assert!(store.insert_device("dev-c", &device("VWXZ-BCDF")).unwrap());
    let (expired, _) = store.poll_device("dev-c", 2_000).unwrap().unwrap();
    assert_eq!((expired.status, expired.expires_at), (DeviceStatus::Pending, 2_000));
    assert_eq!(store.poll_device("dev-c", 2_001).unwrap(), None);
    assert_eq!(store.poll_device("never", 1_000).unwrap(), None);
}
