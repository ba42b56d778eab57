//! The journal: one SQLite row per file, written before any byte leaves, with the upload's
//! multipart id and the parts the store acknowledged, so an upload resumes after a crash.
//!
//! ```text
//! Queued ──► Uploading ──► Uploaded ──► Confirmed
//!   │  ▲         │  │           │
//!   │  └─Paused◄─┘  └─► Failed(attempts, retry at) ──► Queued (when due)
//!   └─► Skipped(reason)        any unfinished state ──► Cancelled
//! ```
//!
//! WAL mode and one transaction per change keep it consistent after `kill -9` at any moment;
//! at start, rows left `Uploading` go back to `Queued` and resume from the store's part list.

mod files;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use self::files::{FileRow, PartRow};
use crate::error::Result;

/// Where a file is in its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Waiting for a slot.
    Queued,
    /// Bytes are moving.
    Uploading,
    /// The store has the object; the app server has not confirmed it yet.
    Uploaded,
    /// The app server recorded it. Done.
    Confirmed,
    /// Stopped by the user; resumes from the parts already sent.
    Paused,
    /// Failed; retried at `next_retry_at` when the error may pass.
    Failed,
    /// Not uploaded on purpose (excluded, unchanged, not representable as a key).
    Skipped,
    /// Stopped by the user for good.
    Cancelled,
}

impl FileState {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uploading => "uploading",
            Self::Uploaded => "uploaded",
            Self::Confirmed => "confirmed",
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "queued" => Self::Queued,
            "uploading" => Self::Uploading,
            "uploaded" => Self::Uploaded,
            "confirmed" => Self::Confirmed,
            "paused" => Self::Paused,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    /// Whether nothing more will happen to the file on its own.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Skipped | Self::Cancelled)
    }
}

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    display_path TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    sample TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_retry_at INTEGER,
    error_code TEXT,
    error_message TEXT,
    upload_id TEXT,
    part_size INTEGER,
    object_key TEXT,
    bucket TEXT,
    etag TEXT,
    checksum TEXT,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX files_by_state ON files (state, next_retry_at);
CREATE INDEX files_by_path ON files (path);
CREATE TABLE parts (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    md5 TEXT NOT NULL,
    PRIMARY KEY (file_id, number)
);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE abandoned (upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, since INTEGER NOT NULL);
"#];

/// A multipart upload the engine began and no longer needs, still to be aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Full object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
}

/// The journal database.
pub struct Journal {
    conn: Mutex<Connection>,
}

impl Journal {
    /// Opens (creating) the journal and brings its schema up to date. Rows a crash left
    /// `Uploading` go back to `Queued`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
        conn.execute(
            "UPDATE files SET state = 'queued' WHERE state = 'uploading'",
            [],
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut conn)?)
    }

    /// Remembers an upload to abort later.
    pub fn abandon(&self, key: &str, upload_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO abandoned (upload_id, key, since) VALUES (?1, ?2, ?3)",
                rusqlite::params![upload_id, key, now()],
            )?;
            Ok(())
        })
    }

    /// Uploads still to abort.
    pub fn abandoned(&self) -> Result<Vec<Abandoned>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT key, upload_id FROM abandoned ORDER BY since")?;
            stmt.query_map([], |r| {
                Ok(Abandoned {
                    key: r.get(0)?,
                    upload_id: r.get(1)?,
                })
            })?
            .collect()
        })
    }

    /// An abandoned upload was aborted.
    pub fn forget_abandoned(&self, upload_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM abandoned WHERE upload_id = ?1", [upload_id])?;
            Ok(())
        })
    }

    /// A setting, if set.
    pub fn setting(&self, name: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.with(|c| {
            c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Sets a setting.
    pub fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [name, value],
            )?;
            Ok(())
        })
    }
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
