//! The signing-key ring on real stores: `cognigate-gateway rotate-key` makes a
//! new key current while tokens of the old one keep working and the JWKS lists
//! both; a retired key leaves the ring once its tokens have expired; and
//! replicas on one `redis-server` that loses everything (FLUSHALL, as a
//! restart without persistence) converge on one current key and keep
//! accepting every token minted before.
//!
//! Replicas are states over one store, driven without a port; each tick is
//! the one the running gateway makes every few seconds
//! (`AppState::sync_signing_keys`), called directly so no test waits for it.

use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cognigate::gateway::AppState;
use cognigate::gateway::KeyRotation;
use cognigate::gateway::{RedisStore, SqliteStore, StoreHandle};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::harness::{Gateway, PUBLIC_URL, RedisServer, Upstream, bearer, env_text, json_body, now, policies, route};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

/// Rotation only on demand; retired keys dropped as soon as their tokens can
/// have expired.
const ON_DEMAND: KeyRotation = KeyRotation::new(None, Duration::ZERO);

/// A config dir with `/mcp/echo` to `upstream`, access tokens living `access_ttl` seconds.
fn config_dir(upstream: std::net::SocketAddr, access_ttl: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut policies = policies();
    policies["policies"][0]["handler"]["options"]["gateway"] = json!({"accessTokenTtlSeconds": access_ttl});
    std::fs::write(dir.path().join("policies.json"), policies.to_string()).unwrap();
    let routes = json!({"paths": {"/mcp/echo": route(&format!("http://{upstream}/mcp"))}});
    std::fs::write(dir.path().join("routes.oas.json"), routes.to_string()).unwrap();
    std::fs::write(dir.path().join(".env"), env_text("127.0.0.1:9".parse().unwrap())).unwrap();
    dir
}

struct Replica {
    state: AppState,
    router: Router,
}

impl Replica {
    fn boot(dir: &std::path::Path, store: StoreHandle) -> Self {
        let state = Gateway::state_with(dir, store).with_key_rotation(ON_DEMAND);
        let router = cognigate::gateway::router(state.clone());
        Self { state, router }
    }

    /// One key-ring tick; the current kid afterwards.
    fn tick(&self) -> String {
        self.state.sync_signing_keys().unwrap()
    }

    fn mint(&self, sub: &str) -> String {
        let aud = format!("{PUBLIC_URL}/mcp/echo");
        self.state.mint_access_token(sub, &aud, "client-x", "openid", now(), 600, format!("jti-{sub}")).unwrap()
    }

    async fn jwks_kids(&self) -> Vec<String> {
        let request = Request::get("/oauth/jwks").body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let jwks: Value = json_body(response).await;
        jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
    }

    /// The status of an MCP call with `token` (200: accepted; 401: refused).
    async fn call(&self, token: &str) -> StatusCode {
        let request = bearer("/mcp/echo", token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string()))
            .unwrap();
        self.router.clone().oneshot(request).await.unwrap().status()
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Runs `rotate-key` against `store`; the new kid it printed.
fn rotate_key(store: &str, seeds: impl Fn() -> Vec<String>) -> String {
    rotate_key_with(store, &[], seeds)
}

fn rotate_key_with(store: &str, extra: &[&str], seeds: impl Fn() -> Vec<String>) -> String {
    let output =
        Command::new(BIN).args(["--store", store, "rotate-key"]).args(extra).env_remove("RUST_LOG").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "rotate-key failed: {stdout}{stderr}");
    for seed in seeds() {
        assert!(!stdout.contains(&seed) && !stderr.contains(&seed), "key material printed: {stdout}{stderr}");
    }
    let kid = stdout.split("new kid ").nth(1).and_then(|rest| rest.split([' ', ';']).next());
    kid.unwrap_or_else(|| panic!("no kid in {stdout:?}")).to_owned()
}

/// The seeds in a ring as stored (to check none is ever printed).
fn seeds_in(ring: Option<String>) -> Vec<String> {
    let ring: Value = serde_json::from_str(&ring.unwrap_or_else(|| "{\"keys\": []}".into())).unwrap();
    ring["keys"].as_array().unwrap().iter().map(|key| key["seed"].as_str().unwrap().to_owned()).collect()
}

/// `rotate-key`, then a tick: the JWKS lists the old and the new key, a
/// token of the old key still works, new tokens carry the new kid. `open`
/// gives each replica its own connection to the one store.
async fn rotation_keeps_old_tokens(store_url: &str, open: impl Fn() -> StoreHandle) {
    let upstream = Upstream::start().await;
    let dir = config_dir(upstream.addr, 900);
    let gateway = Replica::boot(dir.path(), open());
    let first_kid = gateway.tick();
    assert_eq!(gateway.jwks_kids().await, vec![first_kid.clone()]);
    let old_token = gateway.mint("before");
    assert_eq!(kid_of(&old_token), first_kid);

    let probe = open();
    let new_kid = rotate_key(store_url, || seeds_in(probe.signing_keys().unwrap()));
    assert_ne!(new_kid, first_kid);
    assert_eq!(gateway.tick(), new_kid, "the replica switches at its next tick");
    assert_eq!(gateway.jwks_kids().await, [first_kid.clone(), new_kid.clone()], "old and new published");
    assert_eq!(gateway.call(&old_token).await, StatusCode::OK, "a token of the old key still works");
    let new_token = gateway.mint("after");
    assert_eq!(kid_of(&new_token), new_kid);
    assert_eq!(gateway.call(&new_token).await, StatusCode::OK);

    // A replica booting now reads the same ring.
    let fresh = Replica::boot(dir.path(), open());
    assert_eq!(fresh.jwks_kids().await, [first_kid, new_kid]);
    assert_eq!(fresh.call(&old_token).await, StatusCode::OK);
}

#[tokio::test]
async fn rotate_key_on_sqlite_publishes_both_keys_and_old_tokens_keep_working() {
    let db = tempfile::tempdir().unwrap();
    let path = db.path().join("gw.db");
    let url = format!("sqlite:{}", path.display());
    rotation_keeps_old_tokens(&url, || SqliteStore::open(&path).unwrap().into()).await;
}

#[tokio::test]
async fn rotate_key_on_redis_publishes_both_keys_and_old_tokens_keep_working() {
    let redis = RedisServer::start();
    rotation_keeps_old_tokens(&redis.url, || RedisStore::open(&redis.url).unwrap().into()).await;
}

#[test]
fn rotate_key_refuses_a_sqlite_store_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let output =
        Command::new(BIN).args(["--store", &format!("sqlite:{}", missing.display()), "rotate-key"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no store at") && stderr.contains("Fix:"), "{stderr}");
    assert!(!missing.exists(), "no empty store left behind");
}

/// After a leak: `rotate-key --retire-previous` leaves only the new key. Its
/// tokens are refused by every replica at its next tick, including one that
/// still held the old key (it does not write it back), and the new key's
/// tokens work everywhere.
#[tokio::test]
async fn retire_previous_withdraws_the_old_key_on_every_replica() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let dir = config_dir(upstream.addr, 900);
    let open = || -> StoreHandle { RedisStore::open(&redis.url).unwrap().into() };
    let (a, b) = (Replica::boot(dir.path(), open()), Replica::boot(dir.path(), open()));
    let old_kid = a.tick();
    let (seen, unseen) = (a.mint("seen"), b.mint("unseen"));
    assert_eq!(b.call(&seen).await, StatusCode::OK, "verified (and cached) before the withdrawal");

    let probe = open();
    let new_kid = rotate_key_with(&redis.url, &["--retire-previous"], || seeds_in(probe.signing_keys().unwrap()));
    assert_ne!(new_kid, old_kid);
    for replica in [&b, &a] {
        assert_eq!(replica.tick(), new_kid);
    }
    for replica in [&a, &b] {
        assert_eq!(replica.jwks_kids().await, vec![new_kid.clone()]);
        for token in [&seen, &unseen] {
            assert_eq!(replica.call(token).await, StatusCode::UNAUTHORIZED, "a token of the withdrawn key");
        }
    }
    assert_eq!(a.call(&b.mint("new")).await, StatusCode::OK);
}

/// With 1-second access tokens and no grace, the retired key leaves the ring
/// (and the JWKS) a moment after the rotation; tokens it signed are then
/// refused as naming an unknown key, whatever their own expiry says.
#[tokio::test]
async fn a_retired_key_is_dropped_once_its_tokens_have_expired() {
    let upstream = Upstream::start().await;
    let dir = config_dir(upstream.addr, 1);
    let gateway = Replica::boot(dir.path(), SqliteStore::open(&dir.path().join("gw.db")).unwrap().into());
    let old_kid = gateway.tick();
    // Longer-lived than the route would mint, to show the key itself is gone.
    let (kept, late) = (gateway.mint("kept"), gateway.mint("late"));

    let url = format!("sqlite:{}", dir.path().join("gw.db").display());
    let new_kid = rotate_key(&url, Vec::new);
    gateway.tick();
    assert_eq!(gateway.jwks_kids().await, [old_kid.clone(), new_kid.clone()]);
    assert_eq!(gateway.call(&kept).await, StatusCode::OK, "verified while the old key is in the ring");

    // Retention is 1 s (the access-token lifetime; no identity JWT, no
    // grace): poll the ticks until the key is dropped, bounded generously.
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.jwks_kids().await.len() > 1 {
        assert!(Instant::now() < deadline, "the retired key was never dropped");
        tokio::time::sleep(Duration::from_millis(250)).await;
        gateway.tick();
    }
    assert_eq!(gateway.jwks_kids().await, [new_kid]);
    assert_eq!(gateway.call(&late).await, StatusCode::UNAUTHORIZED, "the dropped key verifies nothing");
    assert_eq!(gateway.call(&kept).await, StatusCode::UNAUTHORIZED, "not even a token verified before");
    assert_eq!(gateway.call(&gateway.mint("new")).await, StatusCode::OK);
}

/// Two replicas share a ring of two keys; Redis loses everything; a third
/// replica boots on the empty store (making a key of its own). After a tick
/// each, all three publish the same keys, sign with the same current key, and
/// accept every token minted before and after, whoever minted it.
#[tokio::test]
async fn replicas_converge_on_one_key_after_redis_comes_back_empty() {
    let redis = RedisServer::start();
    let upstream = Upstream::start().await;
    let dir = config_dir(upstream.addr, 900);
    let open = || -> StoreHandle { RedisStore::open(&redis.url).unwrap().into() };
    let (a, b) = (Replica::boot(dir.path(), open()), Replica::boot(dir.path(), open()));
    let oldest_by_a = a.mint("oldest-by-a");
    rotate_key(&redis.url, Vec::new);
    let before = a.tick();
    assert_eq!(b.tick(), before);
    let (by_a, by_b) = (a.mint("by-a"), b.mint("by-b"));
    let kids_before = a.jwks_kids().await;
    assert_eq!(kids_before.len(), 2);

    let mut wipe = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
    redis::cmd("FLUSHALL").query::<()>(&mut wipe).unwrap();
    assert_eq!(open().signing_keys().unwrap(), None, "the ring is gone");

    let c = Replica::boot(dir.path(), open());
    let by_c = c.mint("by-c");
    let current_of_c = kid_of(&by_c);
    assert!(!kids_before.contains(&current_of_c), "the late replica made a key of its own");

    // One tick each (A first: it finds C's ring missing its keys and merges),
    // then a second round, as the running replicas would.
    for _ in 0..2 {
        for replica in [&a, &b, &c] {
            replica.tick();
        }
    }
    let kids = a.jwks_kids().await;
    assert_eq!(b.jwks_kids().await, kids, "B publishes what A does");
    assert_eq!(c.jwks_kids().await, kids, "C publishes what A does");
    for kid in kids_before.iter().chain([&current_of_c]) {
        assert!(kids.contains(kid), "{kid} still in use but not published: {kids:?}");
    }
    // One current key everywhere: the ring's newest (listed last). Which
    // one that is depends on the clocks (C's key, or the rotated one if it
    // was made within the same second and so dated a second later).
    let current = kid_of(&a.mint("after-a"));
    assert_eq!(kids.last(), Some(&current));
    assert_eq!(kid_of(&b.mint("after-b")), current);
    assert_eq!(kid_of(&c.mint("after-c")), current);
    assert!(open().signing_keys().unwrap().is_some(), "the ring is back in the store");

    let after_by_a = a.mint("after-by-a");
    for replica in [&a, &b, &c] {
        for token in [&oldest_by_a, &by_a, &by_b, &by_c, &after_by_a] {
            assert_eq!(replica.call(token).await, StatusCode::OK, "token with kid {} refused", kid_of(token));
        }
    }
}

/// The binary on SQLite with the given `--signing-key-rotation`, stopped on drop.
struct Served {
    child: std::process::Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Served {
    async fn start(rotation: &str) -> Self {
        let dir = config_dir("127.0.0.1:9".parse().unwrap(), 900);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(BIN)
            .args(["--config-dir", ".", "--env-file", ".env", "--store", "sqlite:gw.db", "--workers", "1"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--public-url", PUBLIC_URL])
            .args(["--signing-key-rotation", rotation])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let served = Self { child, base: format!("http://127.0.0.1:{port}"), dir };
        served.wait_for_kids(|kids| !kids.is_empty()).await;
        served
    }

    /// Polls `/oauth/jwks` until `done` holds (bounded; the gateway ticks
    /// every few seconds). Returns the kids.
    async fn wait_for_kids(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let kids = match reqwest::get(format!("{}/oauth/jwks", self.base)).await {
                Ok(response) => response.json::<Value>().await.ok().map(|jwks| {
                    jwks["keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k["kid"].as_str())
                        .map(str::to_owned)
                        .collect()
                }),
                Err(_) => None,
            };
            if let Some(kids) = kids.filter(|kids: &Vec<String>| done(kids)) {
                return kids;
            }
            assert!(Instant::now() < deadline, "the gateway's JWKS never reached the expected keys");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_running_gateway_picks_up_rotate_key_by_itself() {
    let served = Served::start("off").await;
    let first = served.wait_for_kids(|kids| kids.len() == 1).await;
    let url = format!("sqlite:{}", served.dir.path().join("gw.db").display());
    let new_kid = rotate_key(&url, Vec::new);
    let kids = served.wait_for_kids(|kids| kids.len() == 2).await;
    assert_eq!(kids, [first[0].clone(), new_kid]);
}

#[tokio::test]
async fn a_running_gateway_rotates_on_its_schedule() {
    let served = Served::start("1s").await;
    let first = served.wait_for_kids(|kids| !kids.is_empty()).await;
    let kids = served.wait_for_kids(|kids| kids.len() >= 2).await;
    assert_eq!(kids[0], first[0], "the first key stays published after the rotation");
}
