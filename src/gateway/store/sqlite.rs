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

use super::{AuthCode, Client, Consent, Grant, Lifetimes, PendingLogin, RefreshToken, RefreshUse, RevokedAccess, Rotation, Store, StoreError};

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
CREATE TABLE IF NOT EXISTS revoked_access (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_access_at ON revoked_access (revoked_at);
";

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .map_err(|err| StoreError::Open(format!("cannot open the SQLite store {}: {err}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (statements are atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// Deletes the row and returns its data when it has not expired.
fn take<T: DeserializeOwned>(conn: &Connection, table: &str, key_column: &str, key: &str, now: i64) -> Result<Option<T>, StoreError> {
    let sql = format!("DELETE FROM {table} WHERE {key_column} = ?1 RETURNING data, expires_at");
    let row: Option<(String, i64)> = conn.query_row(&sql, params![key], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
    match row {
        Some((data, expires_at)) if expires_at > now => Ok(Some(decode(&data)?)),
        _ => Ok(None),
    }
}

/// Marks every token of `family` revoked; returns the unexpired access tokens
/// they issued, now also revoked.
fn revoke_family(conn: &Connection, family: &str, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
    conn.execute("UPDATE refresh_tokens SET state = 'revoked' WHERE family = ?1", params![family])?;
    let mut statement = conn.prepare("SELECT data FROM refresh_tokens WHERE family = ?1")?;
    let datas = statement.query_map(params![family], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut revoked = Vec::new();
    for data in datas {
        let token: RefreshToken = decode(&data)?;
        if token.access_expires_at > now {
            let access = RevokedAccess { jti: token.access_jti, expires_at: token.access_expires_at };
            insert_revoked(conn, &access, now)?;
            revoked.push(access);
        }
    }
    Ok(revoked)
}

fn insert_revoked(conn: &Connection, access: &RevokedAccess, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO revoked_access (jti, expires_at, revoked_at) VALUES (?1, ?2, ?3)",
        params![access.jti, access.expires_at, now],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn signing_key_or_insert(&self, candidate: &str) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('signing_key', ?1)", params![candidate])?;
        Ok(conn.query_row("SELECT value FROM meta WHERE key = 'signing_key'", [], |row| row.get(0))?)
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

    fn take_code(&self, hash: &str, now: i64) -> Result<Option<AuthCode>, StoreError> {
        take(&self.conn(), "auth_codes", "hash", hash, now)
    }

    fn insert_refresh(&self, hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO refresh_tokens (hash, family, client_id, state, data, expires_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
            params![hash, token.family, token.grant.client_id, encode(token)?, token.expires_at],
        )?;
        Ok(())
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
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String, String, String)> = tx
            .query_row(
                "SELECT family, client_id, state, data FROM refresh_tokens WHERE hash = ?1",
                params![hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((family, owner, state, data)) = row else {
            return Ok(RefreshUse::Unknown);
        };
        // Another client presenting the token learns nothing and changes nothing.
        if owner != client_id {
            return Ok(RefreshUse::Unknown);
        }
        if state != "active" {
            let revoked_access = revoke_family(&tx, &family, now)?;
            tx.commit()?;
            return Ok(RefreshUse::Reused { revoked_access });
        }
        let token: RefreshToken = decode(&data)?;
        if token.expires_at <= now {
            return Ok(RefreshUse::Expired);
        }
        let Some(lifetimes) = lifetimes(&token.grant) else {
            return Ok(RefreshUse::Unknown);
        };
        tx.execute("UPDATE refresh_tokens SET state = 'used' WHERE hash = ?1", params![hash])?;
        let successor = RefreshToken {
            family: family.clone(),
            grant: token.grant.clone(),
            expires_at: now + lifetimes.refresh,
            access_jti: next.access_jti.clone(),
            access_expires_at: now + lifetimes.access,
        };
        tx.execute(
            "INSERT INTO refresh_tokens (hash, family, client_id, state, data, expires_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
            params![next.new_hash, family, client_id, encode(&successor)?, successor.expires_at],
        )?;
        tx.commit()?;
        Ok(RefreshUse::Rotated { grant: token.grant, family })
    }

    fn revoke_refresh_family(&self, hash: &str, client_id: &str, now: i64) -> Result<Option<Vec<RevokedAccess>>, StoreError> {
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

    fn revoke_access(&self, revoked: &RevokedAccess, now: i64) -> Result<(), StoreError> {
        insert_revoked(&self.conn(), revoked, now)
    }

    fn revoked_since(&self, since: i64, now: i64) -> Result<Vec<RevokedAccess>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare("SELECT jti, expires_at FROM revoked_access WHERE revoked_at >= ?1 AND expires_at > ?2")?;
        let rows = statement
            .query_map(params![since, now], |row| Ok(RevokedAccess { jti: row.get(0)?, expires_at: row.get(1)? }))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn sweep(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let mut deleted = 0;
        for table in ["pending_logins", "consents", "auth_codes", "refresh_tokens", "revoked_access"] {
            deleted += conn.execute(&format!("DELETE FROM {table} WHERE expires_at <= ?1"), params![now])?;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::gateway::store::{AuthCode, Client, Grant, Lifetimes, PendingLogin, RefreshToken, RefreshUse, RevokedAccess, Rotation, Store, StoreError};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gw.db")).unwrap();
        (dir, store)
    }

    fn grant() -> Grant {
        Grant { client_id: "c1".into(), slug: "echo".into(), scope: "openid".into(), subject: "user-sub".into() }
    }

    fn refresh(family: &str, jti: &str) -> RefreshToken {
        RefreshToken { family: family.into(), grant: grant(), expires_at: 10_000, access_jti: jti.into(), access_expires_at: 2_000 }
    }

    fn rotation(hash: &str, jti: &str) -> Rotation {
        Rotation { new_hash: hash.into(), access_jti: jti.into() }
    }

    fn lifetimes(_: &Grant) -> Option<Lifetimes> {
        Some(Lifetimes { refresh: 9_000, access: 1_000 })
    }

    fn rotate(store: &SqliteStore, hash: &str, client: &str, next: Rotation, now: i64) -> Result<RefreshUse, StoreError> {
        store.rotate_refresh(hash, client, &next, &lifetimes, now)
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let (_dir, store) = store();
        let code = AuthCode { redirect_uri: "http://127.0.0.1/cb".into(), code_challenge: "x".into(), grant: grant(), expires_at: 100 };
        store.insert_code("h1", &code).unwrap();
        assert_eq!(store.take_code("h1", 50).unwrap(), Some(code.clone()));
        assert_eq!(store.take_code("h1", 50).unwrap(), None);
        store.insert_code("h2", &code).unwrap();
        assert_eq!(store.take_code("h2", 100).unwrap(), None, "expired at 100");
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
        };
        store.insert_pending_login(&login).unwrap();
        store.insert_pending_login(&PendingLogin { state: "s2".into(), ..login.clone() }).unwrap();
        assert_eq!(store.take_pending_login("s", 700).unwrap(), None);
        assert_eq!(store.sweep(700).unwrap(), 1, "s2 swept, s already gone");
        assert_eq!(store.take_pending_login("s2", 10).unwrap(), None);
    }

    #[test]
    fn refresh_rotation_and_reuse_detection() {
        let (_dir, store) = store();
        store.insert_refresh("r1", &refresh("fam", "a1")).unwrap();
        let RefreshUse::Rotated { grant: g, family } = rotate(&store, "r1", "c1", rotation("r2", "a2"), 1_000).unwrap() else {
            panic!("first use rotates")
        };
        assert_eq!((g, family.as_str()), (grant(), "fam"));
        assert!(matches!(rotate(&store, "r2", "c1", rotation("r3", "a3"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
        // r1 again: reuse. The family (r2's successor r3 included) is revoked,
        // and the access tokens issued with it.
        let RefreshUse::Reused { revoked_access } = rotate(&store, "r1", "c1", rotation("r4", "a4"), 1_000).unwrap() else {
            panic!("reuse detected")
        };
        let mut jtis: Vec<_> = revoked_access.iter().map(|r| r.jti.as_str()).collect();
        jtis.sort();
        assert_eq!(jtis, ["a1", "a2", "a3"]);
        assert!(matches!(rotate(&store, "r3", "c1", rotation("r5", "a5"), 1_000).unwrap(), RefreshUse::Reused { .. }));
        assert_eq!(store.revoked_since(0, 1_000).unwrap().len(), 3);
    }

    #[test]
    fn refresh_bound_to_client_and_expiry() {
        let (_dir, store) = store();
        store.insert_refresh("r1", &refresh("fam", "a1")).unwrap();
        assert_eq!(rotate(&store, "r1", "other", rotation("x", "y"), 1_000).unwrap(), RefreshUse::Unknown);
        assert_eq!(rotate(&store, "nope", "c1", rotation("x", "y"), 1_000).unwrap(), RefreshUse::Unknown);
        assert_eq!(rotate(&store, "r1", "c1", rotation("x", "y"), 10_000).unwrap(), RefreshUse::Expired);
        assert_eq!(store.rotate_refresh("r1", "c1", &rotation("x", "y"), &|_| None, 1_000).unwrap(), RefreshUse::Unknown, "route gone");
        // The other client's attempt and the route-gone case consumed nothing.
        assert!(matches!(rotate(&store, "r1", "c1", rotation("r2", "a2"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
    }

    #[test]
    fn revoking_a_family() {
        let (_dir, store) = store();
        store.insert_refresh("r1", &refresh("fam", "a1")).unwrap();
        assert_eq!(store.revoke_refresh_family("r1", "other", 1_000).unwrap(), None);
        let revoked = store.revoke_refresh_family("r1", "c1", 1_000).unwrap().unwrap();
        assert_eq!(revoked, vec![RevokedAccess { jti: "a1".into(), expires_at: 2_000 }]);
        assert!(matches!(rotate(&store, "r1", "c1", rotation("r2", "a2"), 1_000).unwrap(), RefreshUse::Reused { .. }));
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
            store.insert_refresh("r1", &refresh("fam", "a1")).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.signing_key_or_insert("k2").unwrap(), "k1", "the first key is kept");
        assert_eq!(store.client("c1").unwrap(), Some(client));
        assert!(matches!(rotate(&store, "r1", "c1", rotation("r2", "a2"), 1_000).unwrap(), RefreshUse::Rotated { .. }));
    }
}
