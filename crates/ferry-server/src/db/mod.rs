//! The server's SQLite database: opening, migrations, and the one way to run a query from async
//! code. All SQL of the server lives under this module, one file per group of tables, so that
//! another database can be added without touching handlers.

mod accounts;
mod history;
mod objects;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub(crate) use self::accounts::{GrantRow, UserRow};
pub(crate) use self::history::{ClientConfirmation, HistoryFilter, Recorded, StoredUpload};
pub(crate) use self::objects::{
    IfExists, MultipartRow, NotCompleted, ObjectRow, PartRow, blob_list, blob_names,
};

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the query died.
    #[error("database task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Schema versions, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    device TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE grants (
    access_key_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    bucket TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    blob TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE multipart_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    initiated_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'completed', 'aborted'))
);
CREATE INDEX multipart_uploads_by_key ON multipart_uploads (bucket, key, state);
CREATE TABLE parts (
    upload_id TEXT NOT NULL REFERENCES multipart_uploads(upload_id),
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    blob TEXT NOT NULL,
    modified_at INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT,
    device TEXT,
    client_upload_id TEXT UNIQUE,
    started_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('stored', 'confirmed')),
    confirmed_by TEXT NOT NULL CHECK (confirmed_by IN ('client', 'store', 'provider'))
);
CREATE INDEX uploads_by_object ON uploads (bucket, key, etag);
CREATE INDEX uploads_by_user ON uploads (user_id, id);
"#,
    r#"
-- The CRC-64/XZ of objects and parts (as OSS reports it in x-oss-hash-crc64ecma), stored as the
-- signed 64-bit integer with the same bits; NULL for rows written before it was kept.
ALTER TABLE objects ADD COLUMN crc64 INTEGER;
ALTER TABLE parts ADD COLUMN crc64 INTEGER;
-- The dialect a grant was minted for (s3, oss, obs); only that front accepts its key.
ALTER TABLE grants ADD COLUMN provider TEXT NOT NULL DEFAULT 's3';
"#,
    r#"
-- The signature a grant's requests must carry (v4, or v1 for OSS grants minted for it).
ALTER TABLE grants ADD COLUMN signature_version TEXT NOT NULL DEFAULT 'v4';
"#,
];

pub(crate) use ferry_sqlite::Cached;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the store answers (a committed object, and the
        // deletion of the blobs it replaced, survive a power loss together).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        ferry_sqlite::configure(&conn)?;
        let mut db = Self {
            conn: Arc::new(Mutex::new(conn)),
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let mut conn = self.lock();
        let done: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each statement or
        // transaction is atomic), so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many times the cached statement for `sql` has run, and been prepared again first.
    #[cfg(test)]
    pub(crate) fn statement_status(&self, sql: &str) -> (i32, i32) {
        ferry_sqlite::statement_status(&self.lock(), sql).unwrap()
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        let result = tokio::task::spawn_blocking(move || f(&mut db.lock())).await?;
        Ok(result?)
    }

    /// Runs `f` with the connection on the current thread (CLI commands, startup).
    pub(crate) fn call_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, DbError> {
        Ok(f(&mut self.lock())?)
    }
}

/// A CRC-64 as SQLite stores it (an INTEGER is signed; the bits are kept as they are).
pub(crate) fn crc_to_sql(crc: Option<u64>) -> Option<i64> {
    crc.map(|c| i64::from_ne_bytes(c.to_ne_bytes()))
}

/// A CRC-64 read back from SQLite.
pub(crate) fn crc_from_sql(value: Option<i64>) -> Option<u64> {
    value.map(|v| u64::from_ne_bytes(v.to_ne_bytes()))
}

/// Seconds since the Unix epoch, the unit of every time column.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        let version: usize = db
            .call_sync(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn commits_reach_the_disk_before_they_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("ferry.db")).unwrap();
        let level: i64 = db
            .call_sync(|c| c.pragma_query_value(None, "synchronous", |r| r.get(0)))
            .unwrap();
        assert_eq!(level, 2, "PRAGMA synchronous = FULL");
    }
}
