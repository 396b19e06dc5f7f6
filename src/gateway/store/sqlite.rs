//! The default store: one SQLite file (WAL mode) behind a mutex.
//!
//! Records are JSON in a `data` column next to the columns we query by (key,
//! expiry, family, state); the schema stays small and a record type can gain a
//! field without a migration. One connection behind a mutex is enough: the
//! OAuth endpoints are low volume and every call is a single short statement
//! or transaction, and the proxy path never comes here.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rotation::{self, RefreshRow, RefreshRows};
use super::{
    AuthCode, Client, CodeUse, Consent, DeviceAuthorization, DeviceStatus, Grant, Lifetimes, PendingLogin,
    RefreshToken, RefreshUse, RevocationLog, RevokedAccess, Rotation, Store, StoreError,
};
use crate::gateway::crypto::random_token;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (client_id TEXT PRIMARY KEY, data TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending_logins (state TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS consents (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS auth_codes (hash TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    client_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'used', 'revoked')),
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_families (family TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    pending INTEGER NOT NULL,
    last_poll INTEGER NOT NULL,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_counts (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS used_clients (client_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS code_uses (hash TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER);
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the database. It holds the signing key,
    /// so a file that group or others may read is refused.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        private_file(path)?;
        let conn = Connection::open(path)
            .map_err(|err| StoreError::Open(format!("cannot open the SQLite store {}: {err}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate_revocations(&conn)?;
        // The revocation log's name: a new database file is a new log, and
        // replicas that followed the old one read this one from the start.
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('revocation_epoch', ?1)",
            params![random_token(16)],
        )?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (statements are atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Creates `path` 0600 when missing; refuses an existing database, `-wal` or
/// `-shm` that group or others can access. SQLite gives the `-wal` and `-shm`
/// files it creates the database file's mode.
fn private_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|err| StoreError::Open(format!("cannot create the SQLite store {}: {err}", path.display())))?;
        }
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            let Ok(metadata) = std::fs::metadata(&file) else { continue };
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StoreError::Open(format!(
                    "the SQLite store {} has mode {mode:o}: it holds the gateway's signing key, and group or \
                     others may read it. Fix: chmod 600 {}",
                    file.display(),
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

/// Databases written before revocations were numbered kept them in
/// `revoked_access`, by time: they join the numbered log once, in one
/// transaction.
fn migrate_revocations(conn: &Connection) -> Result<(), StoreError> {
    let old: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'revoked_access')",
        [],
        |row| row.get(0),
    )?;
    if old {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT OR IGNORE INTO revocations (jti, expires_at)
               SELECT jti, expires_at FROM revoked_access ORDER BY revoked_at;
             DROP TABLE revoked_access;
             COMMIT;",
        )?;
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// Deletes the row and returns its data when it has not expired.
fn take<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    key_column: &str,
    key: &str,
    now: i64,
) -> Result<Option<T>, StoreError> {
    let sql = format!("DELETE FROM {table} WHERE {key_column} = ?1 RETURNING data, expires_at");
    let row: Option<(String, i64)> =
        conn.query_row(&sql, params![key], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
    match row {
        Some((data, expires_at)) if expires_at > now => Ok(Some(decode(&data)?)),
        _ => Ok(None),
    }
}

/// Marks every token of `family` revoked; returns the unexpired access tokens
/// they issued, now also revoked.
/// The refresh-token rows of one transaction, for the shared rotation rule.
struct Rows<'a>(&'a Connection);

impl RefreshRows for Rows<'_> {
    fn refresh_row(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        let row: Option<(String, String, String, String)> = self
            .0
            .query_row(
                "SELECT family, client_id, state, data FROM refresh_tokens WHERE hash = ?1",
                params![hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        row.map(|(family, client_id, state, data)| Ok(RefreshRow { family, client_id, state, token: decode(&data)? }))
            .transpose()
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
        let changed = self.0.execute(
            "UPDATE refresh_tokens SET state = 'used', data = ?2 WHERE hash = ?1 AND state = 'active'",
            params![hash, encode(used)?],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        self.0.execute(
            "INSERT INTO refresh_tokens (hash, family, client_id, state, data, expires_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
            params![next_hash, family, client_id, encode(successor)?, successor.expires_at],
        )?;
        Ok(true)
    }

    fn revoke_refresh_rows(&self, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
        revoke_family(self.0, family, now)
    }
}

fn revoke_family(conn: &Connection, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
    conn.execute("UPDATE refresh_tokens SET state = 'revoked' WHERE family = ?1", params![family])?;
    let mut statement = conn.prepare("SELECT data FROM refresh_tokens WHERE family = ?1")?;
    let datas = statement.query_map(params![family], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut revoked = Vec::new();
    for data in datas {
        let token: RefreshToken = decode(&data)?;
        if token.access_expires_at > now {
            let access = RevokedAccess { jti: token.access_jti, expires_at: token.access_expires_at };
            insert_revoked(conn, &access)?;
            revoked.push(access);
        }
    }
    Ok(revoked)
}

/// Appends to the revocation log: AUTOINCREMENT numbers the row, and since
/// SQLite commits one writer at a time, a reader never sees a number before
/// every lower one is visible too.
fn insert_revoked(conn: &Connection, access: &RevokedAccess) -> Result<(), StoreError> {
    conn.execute(
        // Not INSERT OR IGNORE: that would use up a number for nothing.
        "INSERT INTO revocations (jti, expires_at) SELECT ?1, ?2
         WHERE NOT EXISTS (SELECT 1 FROM revocations WHERE jti = ?1)",
        params![access.jti, access.expires_at],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn signing_key_or_insert(&self, candidate: &str) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key', ?1)", params![candidate])?;
        Ok(conn.query_row("SELECT value FROM meta WHERE key = 'signing_key'", [], |row| row.get(0))?)
    }

    fn signing_keys(&self) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT value FROM meta WHERE key = 'signing_keys'", [], |row| row.get(0)).optional()?)
    }

    fn replace_signing_keys(&self, expected: Option<&str>, ring: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock is taken before the read, so another
        // process on the same file (a replica, `rotate-key`) cannot change the
        // ring between the comparison and the write.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = 'signing_keys'", [], |row| row.get(0)).optional()?;
        if current.as_deref() != expected {
            return Ok(false);
        }
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('signing_keys', ?1)", params![ring])?;
        tx.commit()?;
        Ok(true)
    }

    fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO clients (client_id, data, created_at) VALUES (?1, ?2, ?3)",
            params![client.client_id, encode(client)?, client.client_id_issued_at],
        )?;
        Ok(())
    }

    fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let data: Option<String> = self
            .conn()
            .query_row("SELECT data FROM clients WHERE client_id = ?1", params![client_id], |row| row.get(0))
            .optional()?;
        data.map(|data| decode(&data)).transpose()
    }

    fn insert_pending_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO pending_logins (state, data, expires_at) VALUES (?1, ?2, ?3)",
            params![login.state, encode(login)?, login.expires_at],
        )?;
        Ok(())
    }

    fn take_pending_login(&self, state: &str, now: i64) -> Result<Option<PendingLogin>, StoreError> {
        take(&self.conn(), "pending_logins", "state", state, now)
    }

    fn insert_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO consents (id, data, expires_at) VALUES (?1, ?2, ?3)",
            params![consent.id, encode(consent)?, consent.expires_at],
        )?;
        Ok(())
    }

    fn take_consent(&self, id: &str, now: i64) -> Result<Option<Consent>, StoreError> {
        take(&self.conn(), "consents", "id", id, now)
    }

    fn insert_code(&self, hash: &str, code: &AuthCode) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO auth_codes (hash, data, expires_at) VALUES (?1, ?2, ?3)",
            params![hash, encode(code)?, code.expires_at],
        )?;
        Ok(())
    }

    fn take_code(
        &self,
        hash: &str,
        issued: &dyn Fn(&AuthCode) -> CodeUse,
        now: i64,
    ) -> Result<Option<AuthCode>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(code) = take::<AuthCode>(&tx, "auth_codes", "hash", hash, now)? else {
            tx.commit()?;
            return Ok(None);
        };
        let used = issued(&code);
        tx.execute(
            "INSERT OR REPLACE INTO code_uses (hash, data, expires_at) VALUES (?1, ?2, ?3)",
            params![hash, encode(&used)?, used.expires_at],
        )?;
        tx.commit()?;
        Ok(Some(code))
    }

    fn insert_refresh(&self, hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO refresh_tokens (hash, family, client_id, state, data, expires_at) VALUES (?1, ?2, ?3,
               CASE WHEN EXISTS (SELECT 1 FROM revoked_families WHERE family = ?2) THEN 'revoked' ELSE 'active' END,
               ?4, ?5)",
            params![hash, token.family, token.grant.client_id, encode(token)?, token.expires_at],
        )?;
        Ok(())
    }

    fn active_refresh(&self, hash: &str, client_id: &str) -> Result<Option<RefreshToken>, StoreError> {
        let data: Option<String> = self
            .conn()
            .query_row(
                "SELECT data FROM refresh_tokens WHERE hash = ?1 AND client_id = ?2 AND state = 'active'",
                params![hash, client_id],
                |row| row.get(0),
            )
            .optional()?;
        data.map(|data| decode(&data)).transpose()
    }

    fn rotate_refresh(
        &self,
        hash: &str,
        client_id: &str,
        next: &Rotation,
        lifetimes: &dyn Fn(&Grant) -> Option<Lifetimes>,
        now: i64,
    ) -> Result<RefreshUse, StoreError> {
        let mut conn = self.conn();
        // One immediate transaction: the swap never loses a race here.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let used = rotation::rotate_refresh(&Rows(&tx), hash, client_id, next, lifetimes, now)?;
        tx.commit()?;
        Ok(used)
    }

    fn revoke_refresh_family(
        &self,
        hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Vec<RevokedAccess>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let family: Option<String> = tx
            .query_row(
                "SELECT family FROM refresh_tokens WHERE hash = ?1 AND client_id = ?2",
                params![hash, client_id],
                |row| row.get(0),
            )
            .optional()?;
        let Some(family) = family else {
            return Ok(None);
        };
        let revoked = revoke_family(&tx, &family, now)?;
        tx.commit()?;
        Ok(Some(revoked))
    }

    fn revoke_access(&self, revoked: &RevokedAccess, _now: i64) -> Result<(), StoreError> {
        insert_revoked(&self.conn(), revoked)
    }

    /// One read transaction, so `through` and the rows agree. `through`
    /// comes from `sqlite_sequence`, which keeps the highest number ever
    /// handed out even after the sweep deleted those rows.
    fn revocations_after(&self, after: u64, now: i64) -> Result<RevocationLog, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let epoch: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'revocation_epoch'", [], |row| row.get(0))?;
        let through: i64 = tx
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'revocations'", [], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        let revoked = {
            let mut statement =
                tx.prepare("SELECT jti, expires_at FROM revocations WHERE seq > ?1 AND expires_at > ?2 ORDER BY seq")?;
            statement
                .query_map(params![i64::try_from(after).unwrap_or(i64::MAX), now], |row| {
                    Ok(RevokedAccess { jti: row.get(0)?, expires_at: row.get(1)? })
                })?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(RevocationLog { epoch, through: through.max(0) as u64, revoked })
    }

    fn count_request(&self, key: &str, window_end: i64, now: i64) -> Result<u64, StoreError> {
        let conn = self.conn();
        // A counter left over past its window (not yet swept) starts again.
        let count: i64 = conn.query_row(
            "INSERT INTO rate_counts (key, count, expires_at) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN rate_counts.expires_at <= ?3 THEN 1 ELSE rate_counts.count + 1 END,
               expires_at = excluded.expires_at
             RETURNING count",
            params![key, window_end, now],
            |row| row.get(0),
        )?;
        Ok(count.max(0) as u64)
    }

    fn insert_device(&self, device_hash: &str, device: &DeviceAuthorization) -> Result<bool, StoreError> {
        let inserted = self.conn().execute(
            "INSERT INTO devices (hash, user_code, pending, last_poll, data, expires_at) VALUES (?1, ?2, 1, 0, ?3, ?4)
             ON CONFLICT (user_code) DO NOTHING",
            params![device_hash, device.user_code, encode(device)?, device.expires_at],
        )?;
        Ok(inserted == 1)
    }

    fn pending_device(&self, user_code: &str, now: i64) -> Result<Option<DeviceAuthorization>, StoreError> {
        let data: Option<String> = self
            .conn()
            .query_row(
                "SELECT data FROM devices WHERE user_code = ?1 AND pending = 1 AND expires_at > ?2",
                params![user_code, now],
                |row| row.get(0),
            )
            .optional()?;
        data.map(|data| decode(&data)).transpose()
    }

    fn decide_device(&self, user_code: &str, status: &DeviceStatus, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let data: Option<String> = tx
            .query_row(
                "SELECT data FROM devices WHERE user_code = ?1 AND pending = 1 AND expires_at > ?2",
                params![user_code, now],
                |row| row.get(0),
            )
            .optional()?;
        let Some(data) = data else {
            return Ok(false);
        };
        let mut device: DeviceAuthorization = decode(&data)?;
        device.status = status.clone();
        tx.execute(
            "UPDATE devices SET pending = 0, data = ?2 WHERE user_code = ?1",
            params![user_code, encode(&device)?],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn poll_device(&self, device_hash: &str, now: i64) -> Result<Option<(DeviceAuthorization, i64)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, i64)> = tx
            .query_row("SELECT data, last_poll, expires_at FROM devices WHERE hash = ?1", params![device_hash], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let Some((data, last_poll, expires_at)) = row else {
            return Ok(None);
        };
        let device: DeviceAuthorization = decode(&data)?;
        if device.status == DeviceStatus::Pending && expires_at > now {
            tx.execute("UPDATE devices SET last_poll = ?2 WHERE hash = ?1", params![device_hash, now])?;
        } else {
            tx.execute("DELETE FROM devices WHERE hash = ?1", params![device_hash])?;
        }
        tx.commit()?;
        Ok(Some((device, last_poll)))
    }

    fn sweep(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let mut deleted = 0;
        for table in [
            "pending_logins",
            "consents",
            "auth_codes",
            "refresh_tokens",
            "revocations",
            "revoked_families",
            "rate_counts",
            "code_uses",
            "devices",
            "records",
        ] {
            deleted += conn.execute(&format!("DELETE FROM {table} WHERE expires_at <= ?1"), params![now])?;
        }
        Ok(deleted)
    }

    fn revoke_code_use(&self, hash: &str, now: i64) -> Result<Option<Vec<RevokedAccess>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(used) = take::<CodeUse>(&tx, "code_uses", "hash", hash, now)? else {
            tx.commit()?;
            return Ok(None);
        };
        let mut revoked = Vec::new();
        if let Some(family) = &used.family {
            tx.execute(
                "INSERT OR REPLACE INTO revoked_families (family, expires_at) VALUES (?1, ?2)",
                params![family, used.expires_at],
            )?;
            revoked = revoke_family(&tx, family, now)?;
        }
        if used.access.expires_at > now && !revoked.contains(&used.access) {
            insert_revoked(&tx, &used.access)?;
            revoked.push(used.access);
        }
        tx.commit()?;
        Ok(Some(revoked))
    }

    fn revoke_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<RevokedAccess>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let families = {
            let mut statement = tx.prepare(
                "SELECT DISTINCT family FROM refresh_tokens
                 WHERE (?1 IS NULL OR json_extract(data, '$.grant.subject') = ?1)
                   AND (?2 IS NULL OR client_id = ?2)",
            )?;
            statement
                .query_map(params![subject, client_id], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut revoked = Vec::new();
        for family in families {
            revoked.extend(revoke_family(&tx, &family, now)?);
        }
        tx.commit()?;
        Ok(revoked)
    }

    fn grant_subjects(
        &self,
        user: Option<&str>,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT data FROM refresh_tokens
             WHERE (?1 IS NULL OR json_extract(data, '$.grant.subject') = ?1)
               AND (?2 IS NULL OR client_id = ?2)",
        )?;
        let datas = statement
            .query_map(params![subject, client_id], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut subjects = std::collections::BTreeSet::new();
        for data in datas {
            let token: RefreshToken = decode(&data)?;
            if token.grant.named_by(user, subject, client_id) {
                subjects.insert(token.grant.subject);
            }
        }
        Ok(subjects.into_iter().collect())
    }

    fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM clients WHERE client_id = ?1", params![client_id])? > 0)
    }

    fn mark_client_used(&self, client_id: &str) -> Result<(), StoreError> {
        self.conn().execute("INSERT OR IGNORE INTO used_clients (client_id) VALUES (?1)", params![client_id])?;
        Ok(())
    }

    fn expire_unused_clients(&self, created_before: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM clients WHERE created_at < ?1 AND client_id NOT IN (SELECT client_id FROM used_clients)",
            params![created_before],
        )?)
    }

    fn put_record(&self, key: &str, value: &str, expires_at: Option<i64>) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO records (key, value, expires_at) VALUES (?1, ?2, ?3)",
            params![key, value, expires_at],
        )?;
        Ok(())
    }

    fn record(&self, key: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM records WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![key, now],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn take_record(&self, key: &str, now: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String, Option<i64>)> = self
            .conn()
            .query_row("DELETE FROM records WHERE key = ?1 RETURNING value, expires_at", params![key], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        Ok(row.filter(|(_, expires_at)| expires_at.is_none_or(|at| at > now)).map(|(value, _)| value))
    }

    fn insert_record(&self, key: &str, value: &str, expires_at: Option<i64>, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: replicas on one file take the write lock before they
        // look, so one of them wins.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM records WHERE key = ?1 AND expires_at <= ?2", params![key, now])?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO records (key, value, expires_at) VALUES (?1, ?2, ?3)",
            params![key, value, expires_at],
        )?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    fn replace_record(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE records SET value = ?3, expires_at = ?4 WHERE key = ?1 AND value = ?2",
            params![key, expected, value, expires_at],
        )?;
        Ok(changed == 1)
    }

    fn delete_record(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM records WHERE key = ?1", params![key])? == 1)
    }

    fn records_with_prefix(&self, prefix: &str, now: i64) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        // substr, not LIKE: a key may hold `%` or `_`.
        let mut statement = conn.prepare(
            "SELECT key, value FROM records WHERE substr(key, 1, length(?1)) = ?1 \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key",
        )?;
        let rows = statement.query_map(params![prefix, now], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::gateway::store::conformance;
    use crate::gateway::store::{Client, PendingLogin, Store};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gw.db")).unwrap();
        (dir, store)
    }

    /// Each replica its own connection to one file, as separate processes
    /// (or `rotate-key` beside a running gateway) have.
    #[test]
    fn connections_rotating_at_once_add_one_signing_key() {
        let (dir, first) = store();
        let others: Vec<SqliteStore> = (0..2).map(|_| SqliteStore::open(&dir.path().join("gw.db")).unwrap()).collect();
        let stores: Vec<&dyn Store> = std::iter::once(&first).chain(&others).map(|s| s as &dyn Store).collect();
        conformance::simultaneous_rotations_add_one_key(&stores);
    }

    #[test]
    fn conformance_suite() {
        let (_dir, store) = store();
        conformance::run_all(&store);
    }

    #[test]
    fn pending_logins_expire_and_are_swept() {
        let (_dir, store) = store();
        let login = PendingLogin {
            state: "s".into(),
            client_id: "c1".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            client_state: None,
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
        store.insert_pending_login(&PendingLogin { state: "s2".into(), ..login.clone() }).unwrap();
        assert_eq!(store.take_pending_login("s", 700).unwrap(), None);
        assert_eq!(store.sweep(700).unwrap(), 1, "s2 swept, s already gone");
        assert_eq!(store.take_pending_login("s2", 10).unwrap(), None);
    }

    #[test]
    fn created_private_and_refused_when_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let store = SqliteStore::open(&path).unwrap();
        store.signing_key_or_insert("k").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("gw.db{suffix}"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
        }
        drop(store);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(err.contains("mode 644") && err.contains(&format!("Fix: chmod 600 {}", path.display())), "{err}");
    }

    #[test]
    fn revocations_kept_by_time_join_the_numbered_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE revoked_access (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL);
                 INSERT INTO revoked_access VALUES ('old-2', 9000, 1001), ('old-1', 9000, 1000);",
            )
            .unwrap();
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let log = store.revocations_after(0, 1_000).unwrap();
        let jtis: Vec<&str> = log.revoked.iter().map(|r| r.jti.as_str()).collect();
        assert_eq!((jtis, log.through), (vec!["old-1", "old-2"], 2), "numbered in the order they were revoked");
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap().revocations_after(0, 1_000).unwrap();
        assert_eq!((reopened.through, reopened.epoch), (2, log.epoch), "migrated once; the epoch is kept");
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.db");
        let client = Client {
            client_id: "c1".into(),
            client_name: Some("Cursor".into()),
            redirect_uris: vec!["cursor://cb".into()],
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            client_secret_hash: None,
            client_id_issued_at: 1,
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.signing_key_or_insert("k1").unwrap(), "k1");
            store.insert_client(&client).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.signing_key_or_insert("k2").unwrap(), "k1", "the first key is kept");
        assert_eq!(store.client("c1").unwrap(), Some(client));
    }
}
