//! The journal: one SQLite row per file, written before any byte leaves, with the upload's
//! multipart id and the parts the store acknowledged, so an upload resumes after a crash.
//!
//! Every row belongs to the account that added it — an [`Owner`]: app server and user — and
//! only that account's session uploads or confirms it. States and their transitions are in
//! [`state`]; every change of state is a compare-and-set against that table.
//!
//! WAL mode and one transaction per change (or per batch: the files a scheduler round starts,
//! the files a watcher's look takes, a batch of confirmations) keep it consistent after
//! `kill -9` at any moment.
//! One engine per data dir holds it for writing (an OS file lock); at start, rows a crash left
//! `Uploading` go back to `Queued` and resume from the store's part list. Readers (`ferry
//! status`) open it read-only and change nothing.

mod conflicts;
mod files;
mod folders;
mod group;
mod listing;
mod lock;
mod state;
mod transitions;

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ferry_sqlite::{Cached, configure};
use parking_lot::ReentrantMutex;
use rusqlite::{Connection, OpenFlags};

pub use self::files::{Awaiting, FileRow, NewFile, PartRow, Skip, Uploaded, Waiting};
pub use self::folders::SavedFolder;
pub use self::listing::{PAGE_MOST, Page, Show, Totals};
pub use self::state::FileState;
use crate::error::{Error, Result};

/// The account a file belongs to: the app server and the user there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// App server base URL, as the engine was opened with.
    pub server: String,
    /// The user's id on that server.
    pub user_id: i64,
    /// The user's name, for people.
    pub user_name: String,
}

pub(super) const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    // Rows belong to an account. Rows from before this have no owner: nobody uploads them
    // (they are listed as waiting for an unknown account).
    r#"
ALTER TABLE files ADD COLUMN server TEXT;
ALTER TABLE files ADD COLUMN user_id INTEGER;
ALTER TABLE files ADD COLUMN user_name TEXT;
CREATE INDEX files_by_owner ON files (server, user_id, state, next_retry_at);
ALTER TABLE abandoned ADD COLUMN server TEXT;
ALTER TABLE abandoned ADD COLUMN user_id INTEGER;
"#,
    // When a multipart upload is being begun (store time, Unix seconds): if the engine stops
    // before it journals the new upload id, the next attempt finds and aborts that upload.
    r#"
ALTER TABLE files ADD COLUMN initiating_at INTEGER;
"#,
    // Watched folders belong to an account, like the files they bring.
    r#"
CREATE TABLE folders (
    server TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    path BLOB NOT NULL,
    display_path TEXT NOT NULL,
    prefix TEXT NOT NULL,
    excludes TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (server, user_id, path)
);
"#,
    // The CRC-64 of each part as sent (OSS checks objects by it; combined, it checks the
    // whole object without reading it again).
    r#"
ALTER TABLE parts ADD COLUMN crc64 INTEGER;
"#,
    // The queries run for every file read a few rows of a long queue, not all of it: the next
    // files of a state in id order, and a new file's key among the owner's.
    r#"
CREATE INDEX files_by_owner_state_id ON files (server, user_id, state, id);
CREATE INDEX files_by_owner_key ON files (server, user_id, key);
"#,
    // "Clear finished" takes finished rows out of the queue's view; the journal keeps them
    // (they still say which files were uploaded unchanged). The queue's view is counted and
    // listed from indexes of the rows in view: the account's (cleared rows outside the
    // range) and the unfinished and finished ones (partial; their conditions are written as
    // `journal::listing` writes its queries, which SQLite needs to use them — written again
    // as comparisons by a later migration).
    r#"
ALTER TABLE files ADD COLUMN cleared INTEGER NOT NULL DEFAULT 0;
CREATE INDEX files_tally ON files (server, user_id, cleared, state, next_retry_at, size, bytes_done);
CREATE INDEX files_unfinished ON files (id)
    WHERE state NOT IN ('confirmed','skipped','cancelled');
CREATE INDEX files_unfinished_owner ON files (server, user_id)
    WHERE state NOT IN ('confirmed','skipped','cancelled');
CREATE INDEX files_finished ON files (server, user_id, id)
    WHERE cleared = 0 AND state IN ('confirmed','skipped','cancelled');
"#,
    // What a file does when its key already holds an object at the store (`conflict`), and
    // what a watched folder's files do. Files and folders from before asked nobody: they
    // overwrote, and still do until told otherwise.
    r#"
ALTER TABLE files ADD COLUMN on_conflict TEXT NOT NULL DEFAULT 'overwrite';
ALTER TABLE folders ADD COLUMN on_conflict TEXT NOT NULL DEFAULT 'overwrite';
"#,
    // The partial indexes' conditions as comparisons (`state::sql_unfinished`,
    // `state::sql_finished`): with `IN (…)` lists, every write of a row built a temporary
    // table for each list, old row and new.
    r#"
DROP INDEX files_unfinished;
DROP INDEX files_unfinished_owner;
DROP INDEX files_finished;
CREATE INDEX files_unfinished ON files (id)
    WHERE state <> 'confirmed' AND state <> 'skipped' AND state <> 'cancelled';
CREATE INDEX files_unfinished_owner ON files (server, user_id)
    WHERE state <> 'confirmed' AND state <> 'skipped' AND state <> 'cancelled';
CREATE INDEX files_finished ON files (server, user_id, id)
    WHERE cleared = 0 AND (state = 'confirmed' OR state = 'skipped' OR state = 'cancelled');
"#,
    // The object a file's write (a PUT, or a Complete found done) stored when the file turned
    // out to have changed under it: its own (`conflict`), which its next try replaces without
    // asking.
    r#"
ALTER TABLE files ADD COLUMN stale_key TEXT;
ALTER TABLE files ADD COLUMN stale_etag TEXT;
"#,
    // How many objects of a file's earlier bytes its uploads stored (it changed under them):
    // each of its objects is another upload to the app server (`transfer::callback::upload_id`).
    r#"
ALTER TABLE files ADD COLUMN rewrites INTEGER NOT NULL DEFAULT 0;
"#,
    // Rows were read by state alone only to find those left uploading, when the journal is
    // opened (`RESET`); every change of state wrote that index, and a small file's row
    // changes state four times. The rows uploading have an index of their own, written as a
    // file starts and ends uploading.
    r#"
DROP INDEX IF EXISTS files_by_state;
CREATE INDEX files_uploading ON files (id) WHERE state = 'uploading';
"#,
];

/// The SQL run when the journal is opened: files left uploading by an engine that stopped are
/// queued again (read from the partial index of the rows uploading).
pub(super) const RESET: &str = "UPDATE files SET state = 'queued' WHERE state = 'uploading'";

#[cfg(test)]
impl Journal {
    /// The steps of SQLite's plan for `sql` (every parameter bound to 1): what tests read to
    /// know a query uses an index.
    pub(crate) fn query_plan(&self, sql: &str) -> Vec<String> {
        self.query_plan_steps(sql)
            .into_iter()
            .map(|s| s.2)
            .collect()
    }

    /// The opcodes of the program SQLite compiles `sql` to.
    pub(crate) fn program(&self, sql: &str) -> Vec<String> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN {sql}"))?;
            let values: Vec<rusqlite::types::Value> = (0..stmt.parameter_count())
                .map(|_| rusqlite::types::Value::Integer(1))
                .collect();
            stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(1))?
                .collect()
        })
        .unwrap()
    }

    /// The steps of SQLite's plan for `sql` as (id, parent's id, detail).
    pub(crate) fn query_plan_steps(&self, sql: &str) -> Vec<(i64, i64, String)> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let values: Vec<rusqlite::types::Value> = (0..stmt.parameter_count())
                .map(|_| rusqlite::types::Value::Integer(1))
                .collect();
            stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(3)?))
            })?
            .collect()
        })
        .unwrap()
    }

    /// How many times the cached statement for `sql` has run, and been prepared again first.
    pub(crate) fn statement_status(&self, sql: &str) -> (i32, i32) {
        self.with(|c| ferry_sqlite::statement_status(c, sql))
            .unwrap()
    }
}

/// The oldest schema a reader understands (its queries name no column added after it): a
/// journal an older app still holds can be read by a newer `ferry status`. A reader that names
/// a newer column raises it (`journal::files::tests::a_journal_at_the_oldest_schema_a_reader_takes_is_read`).
pub(super) const READ_FROM: usize = 11;

/// A multipart upload the engine began and no longer needs, still to be aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Full object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
}

/// A transaction begun by [`Journal::transaction`] and not committed: rolled back when
/// dropped (an error or a panic inside, or a commit that failed).
struct Open<'a>(&'a Journal);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let _ = self.0.with(|c| match c.is_autocommit() {
            true => Ok(()),
            false => c.execute_batch("ROLLBACK"),
        });
    }
}

/// The journal database.
pub struct Journal {
    /// Re-entrant: [`Journal::transaction`] holds it while the calls it wraps take it again.
    conn: ReentrantMutex<RefCell<Option<Connection>>>,
    lock: Mutex<Option<lock::DirLock>>,
    /// Work waiting for the next group commit ([`Journal::grouped`]).
    group: Mutex<group::Waiting>,
}

impl Journal {
    /// Opens (creating) the journal for writing: takes the data dir's lock (or fails with
    /// [`Error::DataDirInUse`]), brings the schema up to date, and puts rows a crash left
    /// `Uploading` back to `Queued`.
    pub fn open(path: &Path) -> Result<Self> {
        let lock = lock::DirLock::acquire(path)?;
        let conn = Self::migrate(path).map_err(|err| match err {
            Error::Journal(e) if crate::error::is_damaged(&e) => Error::JournalDamaged {
                path: path.display().to_string(),
                detail: e.to_string(),
            },
            other => other,
        })?;
        Ok(Self {
            conn: ReentrantMutex::new(RefCell::new(Some(conn))),
            lock: Mutex::new(Some(lock)),
            group: Mutex::default(),
        })
    }

    fn migrate(path: &Path) -> Result<Connection> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        configure(&conn)?;
        let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
        conn.execute(RESET, [])?;
        Ok(conn)
    }

    /// Opens an existing journal to read it while another engine may hold it: no lock, no
    /// migration, no change. A journal that does not exist yet reads as empty.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = if path.exists() {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn)?;
            let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version < READ_FROM {
                return Err(Error::Protocol {
                    operation: "reading the journal",
                    detail:
                        "written by an older Ferry; open it once with `ferry upload` or the app"
                            .into(),
                });
            }
            conn
        } else {
            let mut conn = Connection::open_in_memory()?;
            let tx = conn.transaction()?;
            for sql in MIGRATIONS {
                tx.execute_batch(sql)?;
            }
            tx.commit()?;
            conn
        };
        Ok(Self {
            conn: ReentrantMutex::new(RefCell::new(Some(conn))),
            lock: Mutex::new(None),
            group: Mutex::default(),
        })
    }

    /// Closes the database and lets go of the data dir; later calls fail with
    /// [`Error::Closed`].
    pub fn close(&self) {
        *self.conn.lock().borrow_mut() = None;
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let held = self.conn.lock();
        let mut conn = held.borrow_mut();
        let conn = conn.as_mut().ok_or(Error::Closed)?;
        Ok(f(conn)?)
    }

    /// Runs `f` with every journal write it makes in one transaction: committed together
    /// when it returns `Ok`, none of them kept when it fails (or panics). Other threads wait
    /// meanwhile, so keep it short. A call inside another (or inside a group commit's piece)
    /// joins the outer transaction in a savepoint of its own: undone if it fails, even when
    /// its caller goes on.
    pub(crate) fn transaction<T>(&self, f: impl FnOnce(&Journal) -> Result<T>) -> Result<T> {
        let _held = self.conn.lock();
        if !self.with(|c| Ok(c.is_autocommit()))? {
            self.with(|c| c.execute_batch("SAVEPOINT nested"))?;
            let value = f(self);
            let end = match value.is_ok() {
                true => "RELEASE nested",
                false => "ROLLBACK TO nested; RELEASE nested",
            };
            self.with(|c| c.execute_batch(end))?;
            return value;
        }
        self.with(|c| c.execute_batch("BEGIN IMMEDIATE"))?;
        let open = Open(self);
        let value = f(self)?;
        self.with(|c| c.execute_batch("COMMIT"))?;
        std::mem::forget(open);
        Ok(value)
    }

    /// Runs `f` on a blocking thread: SQLite waits on the disk, async workers must not.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let journal = self.clone();
        crate::blocking::run("a journal task", move || f(&journal)).await
    }

    /// Remembers an upload of `owner` to abort later.
    pub fn abandon(&self, owner: &Owner, key: &str, upload_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO abandoned (upload_id, key, since, server, user_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![upload_id, key, now(), owner.server, owner.user_id],
            )?;
            Ok(())
        })
    }

    /// Uploads of `owner` still to abort, and those recorded before uploads had owners whose
    /// key is under `prefix` (the owner's grant prefix: they can only be the owner's).
    pub fn abandoned(&self, owner: &Owner, prefix: &str) -> Result<Vec<Abandoned>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT key, upload_id FROM abandoned
                 WHERE (server = ?1 AND user_id = ?2)
                    OR (server IS NULL AND substr(key, 1, length(?3)) = ?3)
                 ORDER BY since",
            )?;
            stmt.query_map(
                rusqlite::params![owner.server, owner.user_id, prefix],
                |r| {
                    Ok(Abandoned {
                        key: r.get(0)?,
                        upload_id: r.get(1)?,
                    })
                },
            )?
            .collect()
        })
    }

    /// Whether anything may be waiting to be aborted for `owner`: uploads it abandoned, or any
    /// recorded before uploads had owners.
    pub fn has_abandoned(&self, owner: &Owner) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM abandoned
                 WHERE (server = ?1 AND user_id = ?2) OR server IS NULL)",
                rusqlite::params![owner.server, owner.user_id],
                |r| r.get(0),
            )
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
