//! The Redis store, for several gateway replicas sharing one state.
//!
//! It uses redis' synchronous client behind the same sync trait as SQLite
//! (see the store module docs; calls already run on the blocking pool). One
//! connection behind a mutex, re-opened after an I/O error.
//!
//! Keys (all under `cognigate:`):
//!
//! | key | value |
//! |---|---|
//! | `meta:signing_key` | the first signing key and the session-binding secret (SET NX) |
//! | `meta:signing_keys` | the signing-key ring, JSON (compare-and-set by script) |
//! | `client:{id}` | client JSON, no expiry |
//! | `login:{state}`, `consent:{id}` | record JSON; taken with GETDEL |
//! | `code:{hash}` | code JSON; swapped for `codeuse:{hash}` (what its redemption issues) by [`TAKE_CODE`] |
//! | `rt:{hash}` | hash: `family`, `client_id`, `state` (active/used/revoked), `data` |
//! | `rtfam:{family}` | set of the family's token hashes |
//! | `rtdead:{family}` | a family revoked by a replayed code: tokens inserted into it land revoked |
//! | `revoked:log` | sorted set, score = sequence number, member = `{exp}:{jti}` |
//! | `revoked:seq` | the last sequence number handed out (INCR) |
//! | `revoked:epoch` | the log's name; a new one whenever `revoked:seq` starts again |
//! | `device:{hash}` | hash: `pending`, `last_poll`, `data` |
//! | `devcode:{user_code}` | the device-code hash (SET NX: a user code names one authorization) |
//! | `clients:unused` | sorted set, score = registration time, member = client id (removed at first login) |
//! | `rec:{key}` | a plain record (see `Store::put_record`); Redis expires it at its `expires_at` |
//!
//! Expiry is logical, as in SQLite (each record's `expires_at` is compared with
//! the caller's clock), and Redis deletes a key [`GRACE`] seconds after it.
//! The compare-and-set steps (rotation, family revocation) are Lua scripts, so
//! they are atomic across replicas. The scripts touch keys they derive from
//! the family set, which a Redis Cluster would refuse: one Redis (or a
//! primary with replicas) is the supported shape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rotation::{self, RefreshRow, RefreshRows};
use super::{
    AuthCode, Client, CodeUse, Consent, DeviceAuthorization, DeviceStatus, Grant, Lifetimes, PendingLogin,
    RefreshToken, RefreshUse, RevocationLog, RevokedAccess, Rotation, Store, StoreError, now,
};
use crate::gateway::crypto::random_token;

const PREFIX: &str = "cognigate:";
/// Seconds a key outlives its logical expiry before Redis deletes it.
const GRACE: i64 = 60;
/// Connect, read and write timeout of the Redis connection. Short: every
/// command is a key lookup or a small script that answers in well under a
/// millisecond, and a Redis that does not answer must turn into a 503 at once,
/// not a request held open.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// After Redis failed to answer, calls fail at once for this long instead of
/// queueing behind the one connection's mutex, each waiting its own timeout.
const BACKOFF: Duration = Duration::from_secs(1);

/// Marks `KEYS[1]` used (its data now holding the rotation's answer) and
/// creates its successor, if it is still active. KEYS: old token, new token,
/// family set. ARGV: new hash, family, client id, successor JSON, expire-at,
/// the old token's new JSON. Returns 1 on success, 0 if the old token was no
/// longer active (a concurrent use).
const ROTATE: &str = r#"
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'used', 'data', ARGV[6])
redis.call('HSET', KEYS[2], 'family', ARGV[2], 'client_id', ARGV[3], 'state', 'active', 'data', ARGV[4])
redis.call('EXPIREAT', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIREAT', KEYS[3], ARGV[5])
return 1
"#;

/// Marks every token of the family `KEYS[1]` revoked; returns their data.
/// ARGV[1]: the key prefix of tokens.
const REVOKE_FAMILY: &str = r#"
local out = {}
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. hash
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'state', 'revoked')
    table.insert(out, redis.call('HGET', key, 'data'))
  end
end
return out
"#;

/// Swaps the code `KEYS[1]` for the record of what its redemption issues
/// (`KEYS[2]`), if it still holds `ARGV[1]` (the code as read a moment ago:
/// codes are single use, so equal data means no other request took it in
/// between). ARGV: code JSON, code-use JSON, expire-at. Returns 1 if swapped.
const TAKE_CODE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[3])
return 1
"#;

/// Stores the first token of a family: revoked if the family was revoked by
/// a replayed code (`KEYS[3]` exists). KEYS: token, family set, tombstone.
/// ARGV: family, client id, token JSON, expire-at, token hash.
const INSERT_REFRESH: &str = r#"
local state = 'active'
if redis.call('EXISTS', KEYS[3]) == 1 then state = 'revoked' end
redis.call('HSET', KEYS[1], 'family', ARGV[1], 'client_id', ARGV[2], 'state', state, 'data', ARGV[3])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
return 1
"#;

/// Appends `ARGV[1]` (`{exp}:{jti}`) to the revocation log under the next
/// sequence number, unless it is there already. A counter that does not exist
/// (a new or emptied Redis) starts a new epoch (`ARGV[2]`), so replicas that
/// followed an older log read this one from the start.
/// KEYS: epoch, counter, log.
const APPEND_REVOCATION: &str = r#"
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq
"#;

/// The log after sequence number `ARGV[1]`: {epoch, last number, members}.
/// A missing epoch is created (`ARGV[2]`), so every replica reads the same.
/// KEYS: epoch, counter, log.
const READ_REVOCATIONS: &str = r#"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local through = redis.call('GET', KEYS[2]) or '0'
return {epoch, through, redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf')}
"#;

/// Moves revocations kept by time (before they were numbered; KEYS[4]) into
/// the numbered log. KEYS: epoch, counter, log, old set. ARGV: a new epoch.
const MIGRATE_REVOCATIONS: &str = r#"
for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if not redis.call('ZSCORE', KEYS[3], member) then
    if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[2]), member)
  end
end
return redis.call('DEL', KEYS[4])
"#;

/// Stores a device authorization if its user code is free: the code's key is
/// set only if absent (NX), so one code never points at two authorizations.
/// KEYS: the user code's key, the device record. ARGV: device-code hash,
/// record JSON, expire-at. Returns 1 if stored, 0 if the code is taken.
const INSERT_DEVICE: &str = r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], 'pending', '1', 'last_poll', '0', 'data', ARGV[2])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
return 1
"#;

/// Records a decision on a pending device authorization. KEYS: the device
/// record. ARGV: the decided JSON. Returns 1 if it was pending.
const DECIDE_DEVICE: &str = r#"
if redis.call('HGET', KEYS[1], 'pending') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'pending', '0', 'data', ARGV[1])
return 1
"#;

/// A poll: returns {data, previous poll}, records this one; a decided
/// record is deleted. KEYS: the device record. ARGV: now.
const POLL_DEVICE: &str = r#"
local fields = redis.call('HMGET', KEYS[1], 'data', 'last_poll', 'pending')
if not fields[1] then return nil end
if fields[3] == '1' then
  redis.call('HSET', KEYS[1], 'last_poll', ARGV[1])
else
  redis.call('DEL', KEYS[1])
end
return {fields[1], fields[2]}
"#;

/// Compare-and-set of a string key. KEYS: the key. ARGV: `1` if a value is
/// expected (`0`: the key must be absent), the expected value, the new value.
/// Returns 1 when it was replaced, 0 when another writer changed it first.
/// Sets `KEYS[1]` to `ARGV[2]` if it holds `ARGV[1]`; `ARGV[3]`: expire-at
/// (unix seconds) or empty. Returns 1 when replaced.
const REPLACE_RECORD: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])
end
return 1
"#;

const REPLACE_IF_UNCHANGED: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

pub struct RedisStore {
    client: redis::Client,
    conn: Mutex<Option<Connection>>,
    /// Milliseconds after `epoch` until which calls fail without trying
    /// (0: Redis answered last time).
    down_until: AtomicU64,
    epoch: Instant,
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        if err.is_io_error() || err.is_timeout() || err.is_connection_refusal() || err.is_connection_dropped() {
            StoreError::Unavailable(format!("Redis does not answer: {err}"))
        } else if is_transient(&err) {
            StoreError::Unavailable(format!("Redis cannot serve right now: {err}"))
        } else {
            StoreError::Redis(err.to_string())
        }
    }
}

/// Answers of a Redis that is up but cannot serve yet: loading its data
/// after a restart (`LOADING`, seconds with a large append-only file), in a
/// failover (`MASTERDOWN`, `READONLY`, `TRYAGAIN`, `CLUSTERDOWN`) or running
/// a long script (`BUSY`). Like a Redis that does not answer, they pass, so
/// the OAuth endpoints say 503 with `Retry-After` rather than 500. A
/// `MULTI`/`EXEC` the server refused carries the reason in each command's
/// error.
fn is_transient(err: &redis::RedisError) -> bool {
    use redis::ServerErrorKind::{BusyLoading, ClusterDown, MasterDown, ReadOnly, TryAgain};
    let transient = |kind: Option<redis::ServerErrorKind>, code: Option<&str>| {
        matches!(kind, Some(BusyLoading | TryAgain | MasterDown | ClusterDown | ReadOnly)) || code == Some("BUSY")
    };
    let kind = match err.kind() {
        redis::ErrorKind::Server(kind) => Some(kind),
        _ => None,
    };
    transient(kind, err.code())
        || err
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, error)| transient(error.kind(), Some(error.code()))))
}

fn key(kind: &str, id: &str) -> String {
    format!("{PREFIX}{kind}:{id}")
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// When Redis may delete a record that expires (logically) at `expires_at`.
fn expire_at(expires_at: i64) -> i64 {
    expires_at.max(now()) + GRACE
}

impl RedisStore {
    /// Every refresh token's row, read with SCAN (the operator's commands
    /// look for grants by who holds them, which no key names).
    fn each_refresh_row(&self, mut visit: impl FnMut(RefreshRow)) -> Result<(), StoreError> {
        let prefix = format!("{PREFIX}rt:");
        let pattern = format!("{prefix}*");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self.with(|conn| {
                Ok(redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).query(conn)?)
            })?;
            for name in keys {
                let Some(hash) = name.strip_prefix(&prefix) else { continue };
                if let Some(row) = self.refresh_row(hash)? {
                    visit(row);
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Connects and checks the server answers.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(url).map_err(|err| StoreError::Open(format!("`{url}` is not a Redis URL: {err}")))?;
        let store = Self { client, conn: Mutex::new(None), down_until: AtomicU64::new(0), epoch: Instant::now() };
        store
            .with(|conn| redis::cmd("PING").query::<String>(conn).map_err(StoreError::from))
            .map_err(|err| StoreError::Open(format!("cannot reach Redis at {url}: {err}")))?;
        store.migrate_revocations().map_err(|err| {
            StoreError::Open(format!(
                "cannot move the revocations Redis at {url} keeps by time into the numbered log: {err}"
            ))
        })?;
        Ok(store)
    }

    /// The three keys of the revocation log, in the scripts' KEYS order.
    fn log_keys() -> [String; 3] {
        [key("revoked", "epoch"), key("revoked", "seq"), key("revoked", "log")]
    }

    fn migrate_revocations(&self) -> Result<(), StoreError> {
        let [epoch, seq, log] = Self::log_keys();
        self.with(|conn| {
            redis::cmd("EVAL")
                .arg(MIGRATE_REVOCATIONS)
                .arg(4)
                .arg(&epoch)
                .arg(&seq)
                .arg(&log)
                .arg(key("revoked", "access"))
                .arg(random_token(16))
                .query::<()>(conn)?;
            Ok(())
        })
    }

    /// Runs `call` on the connection, opening it first if needed; a failure
    /// drops the connection so the next call reconnects. While Redis is known
    /// to be down (see [`BACKOFF`]) it fails at once.
    fn with<T>(&self, call: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.check_backoff()?;
        let mut guard: MutexGuard<'_, Option<Connection>> =
            self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Callers that queued while another call timed out fail now too.
        self.check_backoff()?;
        let result = Self::call_on(&self.client, &mut guard, call);
        match &result {
            // After a Redis-level failure the connection may be half-dead
            // (server restarted, timeout mid-reply): start afresh next time.
            // Decoding errors leave it alone.
            Err(StoreError::Unavailable(_)) => {
                *guard = None;
                let until = self.epoch.elapsed() + BACKOFF;
                self.down_until.store(until.as_millis().max(1) as u64, Ordering::Relaxed);
            }
            Err(StoreError::Redis(_)) => *guard = None,
            _ => {}
        }
        result
    }

    fn check_backoff(&self) -> Result<(), StoreError> {
        let until = self.down_until.load(Ordering::Relaxed);
        if until != 0 && (self.epoch.elapsed().as_millis() as u64) < until {
            return Err(StoreError::Unavailable("Redis did not answer a moment ago; retrying shortly".into()));
        }
        Ok(())
    }

    fn call_on<T>(
        client: &redis::Client,
        slot: &mut Option<Connection>,
        call: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if slot.is_none() {
            let conn = client.get_connection_with_timeout(TIMEOUT)?;
            conn.set_read_timeout(Some(TIMEOUT))?;
            conn.set_write_timeout(Some(TIMEOUT))?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError::Redis("no connection".into()));
        };
        call(conn)
    }

    fn put(&self, key: String, value: String, expires_at: Option<i64>) -> Result<(), StoreError> {
        self.with(|conn| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(value);
            if let Some(expires_at) = expires_at {
                cmd.arg("EXAT").arg(expire_at(expires_at));
            }
            cmd.query::<()>(conn)?;
            Ok(())
        })
    }

    fn take<T: DeserializeOwned>(
        &self,
        key: String,
        expires: impl Fn(&T) -> i64,
        now: i64,
    ) -> Result<Option<T>, StoreError> {
        let data: Option<String> = self.with(|conn| Ok(redis::cmd("GETDEL").arg(&key).query(conn)?))?;
        let Some(data) = data else {
            return Ok(None);
        };
        let record: T = decode(&data)?;
        Ok((expires(&record) > now).then_some(record))
    }

    fn revoke_family(&self, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
        let datas: Vec<String> = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(REVOKE_FAMILY)
                .arg(1)
                .arg(key("rtfam", family))
                .arg(format!("{PREFIX}rt:"))
                .query(conn)?)
        })?;
        let mut revoked = Vec::new();
        for data in datas {
            let token: RefreshToken = decode(&data)?;
            if token.access_expires_at > now {
                let access = RevokedAccess { jti: token.access_jti, expires_at: token.access_expires_at };
                self.revoke_access(&access, now)?;
                revoked.push(access);
            }
        }
        Ok(revoked)
    }

    /// The device-code hash a user code points at.
    fn device_hash(&self, user_code: &str) -> Result<Option<String>, StoreError> {
        self.with(|conn| Ok(redis::cmd("GET").arg(key("devcode", user_code)).query(conn)?))
    }
}

impl RefreshRows for RedisStore {
    fn refresh_row(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        let fields: Vec<Option<String>> = self.with(|conn| {
            Ok(redis::cmd("HMGET")
                .arg(key("rt", hash))
                .arg("family")
                .arg("client_id")
                .arg("state")
                .arg("data")
                .query(conn)?)
        })?;
        match fields.as_slice() {
            [Some(family), Some(client_id), Some(state), Some(data)] => Ok(Some(RefreshRow {
                family: family.clone(),
                client_id: client_id.clone(),
                state: state.clone(),
                token: decode(data)?,
            })),
            _ => Ok(None),
        }
    }

    fn swap_refresh(
        &self,
        hash: &str,
        family: &str,
        client_id: &str,
        used: &RefreshToken,
        next_hash: &str,
        successor: &RefreshToken,
    ) -> Result<bool, StoreError> {
        let swapped: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(ROTATE)
                .arg(3)
                .arg(key("rt", hash))
                .arg(key("rt", next_hash))
                .arg(key("rtfam", family))
                .arg(next_hash)
                .arg(family)
                .arg(client_id)
                .arg(encode(successor)?)
                .arg(expire_at(successor.expires_at))
                .arg(encode(used)?)
                .query(conn)?)
        })?;
        Ok(swapped == 1)
    }

    fn revoke_refresh_rows(&self, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
        self.revoke_family(family, now)
    }
}

impl Store for RedisStore {
    fn signing_key_or_insert(&self, candidate: &str) -> Result<String, StoreError> {
        let name = key("meta", "signing_key");
        self.with(|conn| {
            redis::cmd("SET").arg(&name).arg(candidate).arg("NX").query::<Value>(conn)?;
            Ok(redis::cmd("GET").arg(&name).query(conn)?)
        })
    }

    fn signing_keys(&self) -> Result<Option<String>, StoreError> {
        self.with(|conn| Ok(redis::cmd("GET").arg(key("meta", "signing_keys")).query(conn)?))
    }

    fn replace_signing_keys(&self, expected: Option<&str>, ring: &str) -> Result<bool, StoreError> {
        let replaced: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(REPLACE_IF_UNCHANGED)
                .arg(1)
                .arg(key("meta", "signing_keys"))
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .arg(ring)
                .query(conn)?)
        })?;
        Ok(replaced == 1)
    }

    fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let data = encode(client)?;
        self.with(|conn| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(key("client", &client.client_id))
                .arg(&data)
                .ignore()
                .cmd("ZADD")
                .arg(key("clients", "unused"))
                .arg(client.client_id_issued_at)
                .arg(&client.client_id)
                .ignore()
                .query::<()>(conn)?;
            Ok(())
        })
    }

    fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let data: Option<String> =
            self.with(|conn| Ok(redis::cmd("GET").arg(key("client", client_id)).query(conn)?))?;
        data.map(|data| decode(&data)).transpose()
    }

    fn insert_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.put(key("login", &login.state), encode(login)?, Some(login.expires_at))
    }

    fn take_pending_login(&self, state: &str, now: i64) -> Result<Option<PendingLogin>, StoreError> {
        self.take(key("login", state), |l: &PendingLogin| l.expires_at, now)
    }

    fn insert_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        self.put(key("consent", &consent.id), encode(consent)?, Some(consent.expires_at))
    }

    fn take_consent(&self, id: &str, now: i64) -> Result<Option<Consent>, StoreError> {
        self.take(key("consent", id), |c: &Consent| c.expires_at, now)
    }

    fn insert_code(&self, hash: &str, code: &AuthCode) -> Result<(), StoreError> {
        self.put(key("code", hash), encode(code)?, Some(code.expires_at))
    }

    /// Read, then swapped by [`TAKE_CODE`] only if no other request took the
    /// code in between: the decision of what to record needs the code.
    fn take_code(
        &self,
        hash: &str,
        issued: &dyn Fn(&AuthCode) -> CodeUse,
        now: i64,
    ) -> Result<Option<AuthCode>, StoreError> {
        let name = key("code", hash);
        let data: Option<String> = self.with(|conn| Ok(redis::cmd("GET").arg(&name).query(conn)?))?;
        let Some(data) = data else {
            return Ok(None);
        };
        let code: AuthCode = decode(&data)?;
        if code.expires_at <= now {
            self.with(|conn| Ok(redis::cmd("DEL").arg(&name).query::<()>(conn)?))?;
            return Ok(None);
        }
        let used = issued(&code);
        let swapped: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(TAKE_CODE)
                .arg(2)
                .arg(&name)
                .arg(key("codeuse", hash))
                .arg(&data)
                .arg(encode(&used)?)
                .arg(expire_at(used.expires_at))
                .query(conn)?)
        })?;
        Ok((swapped == 1).then_some(code))
    }

    fn insert_refresh(&self, hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        let data = encode(token)?;
        self.with(|conn| {
            redis::cmd("EVAL")
                .arg(INSERT_REFRESH)
                .arg(3)
                .arg(key("rt", hash))
                .arg(key("rtfam", &token.family))
                .arg(key("rtdead", &token.family))
                .arg(&token.family)
                .arg(&token.grant.client_id)
                .arg(&data)
                .arg(expire_at(token.expires_at))
                .arg(hash)
                .query::<()>(conn)?;
            Ok(())
        })
    }

    fn active_refresh(&self, hash: &str, client_id: &str) -> Result<Option<RefreshToken>, StoreError> {
        match self.refresh_row(hash)? {
            Some(row) if row.client_id == client_id && row.state == "active" => Ok(Some(row.token)),
            _ => Ok(None),
        }
    }

    fn rotate_refresh(
        &self,
        hash: &str,
        client_id: &str,
        next: &Rotation,
        lifetimes: &dyn Fn(&Grant) -> Option<Lifetimes>,
        now: i64,
    ) -> Result<RefreshUse, StoreError> {
        rotation::rotate_refresh(self, hash, client_id, next, lifetimes, now)
    }

    fn revoke_refresh_family(
        &self,
        hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Vec<RevokedAccess>>, StoreError> {
        match self.refresh_row(hash)? {
            Some(row) if row.client_id == client_id => Ok(Some(self.revoke_family(&row.family, now)?)),
            _ => Ok(None),
        }
    }

    fn revoke_access(&self, revoked: &RevokedAccess, _now: i64) -> Result<(), StoreError> {
        let [epoch, seq, log] = Self::log_keys();
        self.with(|conn| {
            redis::cmd("EVAL")
                .arg(APPEND_REVOCATION)
                .arg(3)
                .arg(&epoch)
                .arg(&seq)
                .arg(&log)
                .arg(format!("{}:{}", revoked.expires_at, revoked.jti))
                .arg(random_token(16))
                .query::<()>(conn)?;
            Ok(())
        })
    }

    fn revocations_after(&self, after: u64, now: i64) -> Result<RevocationLog, StoreError> {
        let [epoch, seq, log] = Self::log_keys();
        let (epoch, through, members): (String, u64, Vec<String>) = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(READ_REVOCATIONS)
                .arg(3)
                .arg(&epoch)
                .arg(&seq)
                .arg(&log)
                .arg(after)
                .arg(random_token(16))
                .query(conn)?)
        })?;
        let revoked = members
            .iter()
            .filter_map(|member| {
                let (exp, jti) = member.split_once(':')?;
                let expires_at: i64 = exp.parse().ok()?;
                (expires_at > now).then(|| RevokedAccess { jti: jti.to_owned(), expires_at })
            })
            .collect();
        Ok(RevocationLog { epoch, through, revoked })
    }

    /// INCR and EXPIREAT in one transaction: the counter never outlives its
    /// window, even if this replica dies between the two.
    fn count_request(&self, key: &str, window_end: i64, _now: i64) -> Result<u64, StoreError> {
        let name = self::key("rate", key);
        let (count,): (u64,) = self.with(|conn| {
            Ok(redis::pipe().atomic().incr(&name, 1).expire_at(&name, expire_at(window_end)).ignore().query(conn)?)
        })?;
        Ok(count)
    }

    fn insert_device(&self, device_hash: &str, device: &DeviceAuthorization) -> Result<bool, StoreError> {
        let data = encode(device)?;
        let inserted: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(INSERT_DEVICE)
                .arg(2)
                .arg(key("devcode", &device.user_code))
                .arg(key("device", device_hash))
                .arg(device_hash)
                .arg(&data)
                .arg(expire_at(device.expires_at))
                .query(conn)?)
        })?;
        Ok(inserted == 1)
    }

    fn pending_device(&self, user_code: &str, now: i64) -> Result<Option<DeviceAuthorization>, StoreError> {
        let Some(hash) = self.device_hash(user_code)? else {
            return Ok(None);
        };
        let fields: Vec<Option<String>> = self
            .with(|conn| Ok(redis::cmd("HMGET").arg(key("device", &hash)).arg("pending").arg("data").query(conn)?))?;
        match fields.as_slice() {
            [Some(pending), Some(data)] if pending == "1" => {
                let device: DeviceAuthorization = decode(data)?;
                Ok((device.expires_at > now).then_some(device))
            }
            _ => Ok(None),
        }
    }

    fn decide_device(&self, user_code: &str, status: &DeviceStatus, now: i64) -> Result<bool, StoreError> {
        let Some(mut device) = self.pending_device(user_code, now)? else {
            return Ok(false);
        };
        let Some(hash) = self.device_hash(user_code)? else {
            return Ok(false);
        };
        device.status = status.clone();
        let decided: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(DECIDE_DEVICE)
                .arg(1)
                .arg(key("device", &hash))
                .arg(encode(&device)?)
                .query(conn)?)
        })?;
        Ok(decided == 1)
    }

    fn poll_device(&self, device_hash: &str, now: i64) -> Result<Option<(DeviceAuthorization, i64)>, StoreError> {
        let fields: Option<(String, String)> = self.with(|conn| {
            Ok(redis::cmd("EVAL").arg(POLL_DEVICE).arg(1).arg(key("device", device_hash)).arg(now).query(conn)?)
        })?;
        let Some((data, last_poll)) = fields else {
            return Ok(None);
        };
        let device: DeviceAuthorization = decode(&data)?;
        if device.expires_at <= now {
            // Answered once as expired, then gone.
            self.with(|conn| Ok(redis::cmd("DEL").arg(key("device", device_hash)).query::<()>(conn)?))?;
        }
        Ok(Some((device, last_poll.parse().unwrap_or_default())))
    }

    /// Records with a TTL expire by themselves; only the revocation log needs
    /// pruning (its counter stays: numbers are never handed out twice).
    fn sweep(&self, now: i64) -> Result<usize, StoreError> {
        let name = key("revoked", "log");
        let members: Vec<String> =
            self.with(|conn| Ok(redis::cmd("ZRANGE").arg(&name).arg(0).arg(-1).query(conn)?))?;
        let expired: Vec<&String> = members
            .iter()
            .filter(|member| {
                member.split_once(':').and_then(|(exp, _)| exp.parse::<i64>().ok()).is_some_and(|exp| exp <= now)
            })
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        self.with(|conn| Ok(redis::cmd("ZREM").arg(&name).arg(&expired).query(conn)?))
    }

    /// The record is read, acted on and only then deleted: a replica that
    /// dies half way leaves it for the next replay, and every step is
    /// idempotent, so two replays at once revoke the same things twice. The
    /// tombstone goes first: a refresh token inserted before it is in the
    /// family set the revocation walks, one inserted after it lands revoked
    /// (see [`INSERT_REFRESH`]).
    fn revoke_code_use(&self, hash: &str, now: i64) -> Result<Option<Vec<RevokedAccess>>, StoreError> {
        let name = key("codeuse", hash);
        let data: Option<String> = self.with(|conn| Ok(redis::cmd("GET").arg(&name).query(conn)?))?;
        let Some(used) = data.map(|data| decode::<CodeUse>(&data)).transpose()? else {
            return Ok(None);
        };
        if used.expires_at <= now {
            self.with(|conn| Ok(redis::cmd("DEL").arg(&name).query::<()>(conn)?))?;
            return Ok(None);
        }
        let mut revoked = Vec::new();
        if let Some(family) = &used.family {
            self.put(key("rtdead", family), "1".into(), Some(used.expires_at))?;
            revoked = self.revoke_family(family, now)?;
        }
        if used.access.expires_at > now && !revoked.contains(&used.access) {
            self.revoke_access(&used.access, now)?;
            revoked.push(used.access);
        }
        self.with(|conn| Ok(redis::cmd("DEL").arg(&name).query::<()>(conn)?))?;
        Ok(Some(revoked))
    }

    /// Walks every refresh token with SCAN: an operator command, not a hot path.
    fn revoke_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<RevokedAccess>, StoreError> {
        let mut families = std::collections::BTreeSet::new();
        self.each_refresh_row(|row| {
            if subject.is_none_or(|s| row.token.grant.subject == s) && client_id.is_none_or(|c| row.client_id == c) {
                families.insert(row.family);
            }
        })?;
        let mut revoked = Vec::new();
        for family in families {
            revoked.extend(self.revoke_family(&family, now)?);
        }
        Ok(revoked)
    }

    fn grant_subjects(
        &self,
        user: Option<&str>,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut subjects = std::collections::BTreeSet::new();
        self.each_refresh_row(|row| {
            if row.token.grant.named_by(user, subject, client_id) {
                subjects.insert(row.token.grant.subject);
            }
        })?;
        Ok(subjects.into_iter().collect())
    }

    fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted: i64 = self.with(|conn| Ok(redis::cmd("DEL").arg(key("client", client_id)).query(conn)?))?;
        self.mark_client_used(client_id)?;
        Ok(deleted > 0)
    }

    fn mark_client_used(&self, client_id: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            redis::cmd("ZREM").arg(key("clients", "unused")).arg(client_id).query::<()>(conn)?;
            Ok(())
        })
    }

    fn expire_unused_clients(&self, created_before: i64) -> Result<usize, StoreError> {
        let name = key("clients", "unused");
        // Exclusive bound, as SQLite's `created_at < ?`.
        let stale: Vec<String> = self.with(|conn| {
            Ok(redis::cmd("ZRANGEBYSCORE").arg(&name).arg("-inf").arg(format!("({created_before}")).query(conn)?)
        })?;
        if stale.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = stale.iter().map(|id| key("client", id)).collect();
        self.with(|conn| {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&keys)
                .ignore()
                .cmd("ZREM")
                .arg(&name)
                .arg(&stale)
                .ignore()
                .query::<()>(conn)?;
            Ok(())
        })?;
        Ok(stale.len())
    }

    // Records expire in Redis itself at their `expires_at` (no grace): the
    // lease of a refresh must end when it says, on every replica.

    fn put_record(&self, name: &str, value: &str, expires_at: Option<i64>) -> Result<(), StoreError> {
        self.with(|conn| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key("rec", name)).arg(value);
            if let Some(at) = expires_at {
                cmd.arg("EXAT").arg(at.max(1));
            }
            cmd.query::<()>(conn)?;
            Ok(())
        })
    }

    fn record(&self, name: &str, _now: i64) -> Result<Option<String>, StoreError> {
        self.with(|conn| Ok(redis::cmd("GET").arg(key("rec", name)).query(conn)?))
    }

    fn take_record(&self, name: &str, _now: i64) -> Result<Option<String>, StoreError> {
        self.with(|conn| Ok(redis::cmd("GETDEL").arg(key("rec", name)).query(conn)?))
    }

    fn insert_record(&self, name: &str, value: &str, expires_at: Option<i64>, _now: i64) -> Result<bool, StoreError> {
        let set: Value = self.with(|conn| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key("rec", name)).arg(value).arg("NX");
            if let Some(at) = expires_at {
                cmd.arg("EXAT").arg(at.max(1));
            }
            Ok(cmd.query(conn)?)
        })?;
        Ok(!matches!(set, Value::Nil))
    }

    fn replace_record(
        &self,
        name: &str,
        expected: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let replaced: i64 = self.with(|conn| {
            Ok(redis::cmd("EVAL")
                .arg(REPLACE_RECORD)
                .arg(1)
                .arg(key("rec", name))
                .arg(expected)
                .arg(value)
                .arg(expires_at.map(|at| at.max(1).to_string()).unwrap_or_default())
                .query(conn)?)
        })?;
        Ok(replaced == 1)
    }

    fn delete_record(&self, name: &str) -> Result<bool, StoreError> {
        let deleted: i64 = self.with(|conn| Ok(redis::cmd("DEL").arg(key("rec", name)).query(conn)?))?;
        Ok(deleted == 1)
    }

    fn records_with_prefix(&self, prefix: &str, _now: i64) -> Result<Vec<(String, String)>, StoreError> {
        let full = key("rec", prefix);
        // SCAN's pattern is a glob: the prefix's own glob characters are escaped.
        let mut pattern = String::with_capacity(full.len() + 1);
        for ch in full.chars() {
            if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(ch);
        }
        pattern.push('*');
        let strip = key("rec", "");
        let mut names = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self.with(|conn| {
                Ok(redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).query(conn)?)
            })?;
            names.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let value: Option<String> = self.with(|conn| Ok(redis::cmd("GET").arg(&name).query(conn)?))?;
            if let (Some(value), Some(short)) = (value, name.strip_prefix(&strip)) {
                out.push((short.to_owned(), value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::RedisStore;
    use crate::gateway::store::conformance;

    /// A private `redis-server` on a free port, stopped on drop.
    pub(crate) struct RedisServer {
        child: Child,
        pub(crate) url: String,
    }

    impl RedisServer {
        pub(crate) fn start() -> Self {
            // The probe listener is dropped here, before the server binds the port.
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            Self::start_on(port)
        }

        /// On `port`: a server started again on the port of one that was
        /// stopped is that Redis restarted without persistence (empty).
        pub(crate) fn start_on(port: u16) -> Self {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("cannot start redis-server ({err}); install it by running scripts/test (it installs the test peers)")
                });
            let url = format!("redis://127.0.0.1:{port}/");
            let deadline = Instant::now() + Duration::from_secs(10);
            // Ready when it answers PING: an accepted connection alone can still
            // be reset while the server starts up.
            while !answers_ping(port) {
                assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Self { child, url }
        }
    }

    fn answers_ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn conformance_suite() {
        let server = RedisServer::start();
        let store = RedisStore::open(&server.url).unwrap();
        conformance::run_all(&store);
    }

    #[test]
    fn replicas_share_state() {
        let server = RedisServer::start();
        let a = RedisStore::open(&server.url).unwrap();
        let b = RedisStore::open(&server.url).unwrap();
        use crate::gateway::store::Store;
        let key = a.signing_key_or_insert("from-a").unwrap();
        assert_eq!(b.signing_key_or_insert("from-b").unwrap(), key, "one key for all replicas");
    }

    #[test]
    fn replicas_rotating_at_once_add_one_signing_key() {
        let server = RedisServer::start();
        let replicas: Vec<RedisStore> = (0..3).map(|_| RedisStore::open(&server.url).unwrap()).collect();
        let stores: Vec<&dyn crate::gateway::store::Store> = replicas.iter().map(|s| s as _).collect();
        conformance::simultaneous_rotations_add_one_key(&stores);
    }

    #[test]
    fn reconnects_after_the_server_restarts() {
        use crate::gateway::store::Store;
        let server = RedisServer::start();
        let store = RedisStore::open(&server.url).unwrap();
        store.signing_key_or_insert("k").unwrap();
        let port = server.url.trim_start_matches("redis://127.0.0.1:").trim_end_matches('/').to_owned();
        drop(server);
        assert!(store.client("x").is_err(), "server gone");
        let mut child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let result = loop {
            match store.client("x") {
                Ok(found) => break Ok(found),
                Err(err) if Instant::now() > deadline => break Err(err),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(result.unwrap(), None);
    }

    /// Retries `call` until Redis answers again after a restart (the store
    /// backs off for a moment after a failure).
    fn once_up<T>(mut call: impl FnMut() -> Result<T, crate::gateway::store::StoreError>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match call() {
                Ok(value) => return value,
                Err(err) if Instant::now() > deadline => panic!("Redis did not come back: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    #[test]
    fn a_redis_that_comes_back_empty_is_read_again_from_the_start() {
        use crate::gateway::store::{RevokedAccess, Store};
        use crate::gateway::tokens::{Revocations, Synced};
        let server = RedisServer::start();
        let port = server.url.trim_start_matches("redis://127.0.0.1:").trim_end_matches('/').parse().unwrap();
        let store = RedisStore::open(&server.url).unwrap();
        let revoke = |jti: &str| store.revoke_access(&RevokedAccess { jti: jti.into(), expires_at: 9_000 }, 1_000);
        let mirror = Revocations::default();
        for jti in ["a1", "a2", "a3"] {
            revoke(jti).unwrap();
        }
        assert_eq!(mirror.sync(&store, 1_000).unwrap(), Synced { read: 3, restarted: false });

        // Restarted without persistence: the log and its counter are gone.
        drop(server);
        let _server = RedisServer::start_on(port);
        // More revocations than the mirror had read: numbered 1 to 5 again,
        // so "after 3" alone would miss the first three.
        once_up(|| revoke("b1"));
        for jti in ["b2", "b3", "b4", "b5"] {
            revoke(jti).unwrap();
        }
        assert_eq!(mirror.sync(&store, 1_000).unwrap(), Synced { read: 5, restarted: true });
        for jti in ["b1", "b2", "b3", "b4", "b5"] {
            assert!(mirror.is_revoked(jti), "{jti} reached the replica");
        }
        assert!(mirror.is_revoked("a1"), "what the store lost stays revoked in memory until it expires");
        revoke("c1").unwrap();
        assert_eq!(mirror.sync(&store, 1_000).unwrap(), Synced { read: 1, restarted: false }, "following again");

        // Only the epoch lost (evicted): a new one is made and the log is read again whole.
        store.with(|conn| Ok(redis::cmd("DEL").arg(super::key("revoked", "epoch")).query::<()>(conn)?)).unwrap();
        assert_eq!(mirror.sync(&store, 1_000).unwrap(), Synced { read: 6, restarted: true });
        // Only the counter lost: the next revocation starts a new epoch.
        store.with(|conn| Ok(redis::cmd("DEL").arg(super::key("revoked", "seq")).query::<()>(conn)?)).unwrap();
        revoke("d1").unwrap();
        assert_eq!(mirror.sync(&store, 1_000).unwrap(), Synced { read: 7, restarted: true });
        assert!(mirror.is_revoked("d1"));
    }

    #[test]
    fn revocations_kept_by_time_join_the_numbered_log() {
        use crate::gateway::store::Store;
        let server = RedisServer::start();
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("ZADD")
            .arg("cognigate:revoked:access")
            .arg(1_000)
            .arg("9000:old-1")
            .arg(1_001)
            .arg("9000:old-2")
            .query::<()>(&mut conn)
            .unwrap();
        let store = RedisStore::open(&server.url).unwrap();
        let log = store.revocations_after(0, 1_000).unwrap();
        let jtis: Vec<&str> = log.revoked.iter().map(|r| r.jti.as_str()).collect();
        assert_eq!((jtis, log.through), (vec!["old-1", "old-2"], 2));
        let old: bool = redis::cmd("EXISTS").arg("cognigate:revoked:access").query(&mut conn).unwrap();
        assert!(!old, "the old set is gone");
        drop(store);
        assert_eq!(RedisStore::open(&server.url).unwrap().revocations_after(0, 1_000).unwrap().through, 2, "once");
    }

    #[test]
    fn unreachable_redis_is_a_clear_boot_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = RedisStore::open(&format!("redis://127.0.0.1:{port}/")).err().unwrap().to_string();
        assert!(err.contains("cannot reach Redis at redis://127.0.0.1:"), "{err}");
    }
}
