//! File rows and their parts. Queries that pick work take the [`Owner`]: nobody else's rows are
//! ever handed out to upload or confirm.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};

use super::state::sql_unfinished;
use super::{Cached, FileState, Journal, Owner, now};
use crate::conflict::OnConflict;
use crate::error::Result;

/// One file of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Journal id.
    pub id: i64,
    /// Local path.
    pub path: PathBuf,
    /// Object key below the grant's prefix (`/`-separated, NFC).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Size when last looked at.
    pub size: Option<u64>,
    /// Modification time (ns since the epoch) when last looked at.
    pub mtime_ns: Option<i64>,
    /// Hash of sampled bytes when last looked at.
    pub sample: Option<String>,
    /// State.
    pub state: FileState,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When a failed file is tried again (Unix seconds); `None`: not by itself.
    pub next_retry_at: Option<i64>,
    /// Code of the last error.
    pub error_code: Option<String>,
    /// Message of the last error.
    pub error_message: Option<String>,
    /// Multipart upload id, while one is open.
    pub upload_id: Option<String>,
    /// Part size of that upload.
    pub part_size: Option<u64>,
    /// Full object key once known.
    pub object_key: Option<String>,
    /// Bucket once known.
    pub bucket: Option<String>,
    /// ETag once uploaded.
    pub etag: Option<String>,
    /// What the uploaded bytes were checked against once uploaded: `md5:<hex>` for a single
    /// PUT, `md5-parts:<md5 of the parts' md5s>-<parts>` for a multipart upload.
    pub checksum: Option<String>,
    /// Bytes the store has acknowledged.
    pub bytes_done: u64,
    /// The app server the row belongs to (`None`: added before rows had owners).
    pub server: Option<String>,
    /// The user id there.
    pub user_id: Option<i64>,
    /// The user's name, for people.
    pub user_name: Option<String>,
    /// When a multipart upload was being begun and its id not journaled yet (store time, Unix
    /// seconds).
    pub initiating_at: Option<i64>,
    /// What happens when its key already holds an object at the store.
    pub on_conflict: OnConflict,
    /// Objects of its earlier bytes its uploads stored (it changed under them): which of its
    /// objects the next one is, to the app server.
    pub rewrites: u32,
}

impl FileRow {
    /// Whether the row belongs to `owner`.
    pub fn is_owned_by(&self, owner: &Owner) -> bool {
        self.server.as_deref() == Some(owner.server.as_str()) && self.user_id == Some(owner.user_id)
    }
}

/// A part the store acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRow {
    /// Part number, from 1.
    pub number: u32,
    /// Bytes.
    pub size: u64,
    /// ETag the store answered.
    pub etag: String,
    /// Hex MD5 computed locally.
    pub md5: String,
    /// CRC-64 (ECMA-182, as OSS computes it) computed locally, when known.
    pub crc64: Option<u64>,
}

pub(super) const COLUMNS: &str =
    "id, path, key, name, size, mtime_ns, sample, state, attempts, next_retry_at,
    error_code, error_message, upload_id, part_size, object_key, bucket, etag, checksum, bytes_done,
    server, user_id, user_name, initiating_at, on_conflict, rewrites";

/// `server = ? AND user_id = ?` for an owner, as parameters `?1`, `?2`.
pub(super) const OWNED: &str = "server = ?1 AND user_id = ?2";

#[cfg(unix)]
pub(super) fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
pub(super) fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().as_bytes().to_vec()
}

#[cfg(unix)]
pub(super) fn path_from(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
pub(super) fn path_from(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn file_from_row(row: &Row<'_>) -> rusqlite::Result<FileRow> {
    let state: String = row.get(7)?;
    Ok(FileRow {
        id: row.get(0)?,
        path: path_from(row.get(1)?),
        key: row.get(2)?,
        name: row.get(3)?,
        size: row.get(4)?,
        mtime_ns: row.get(5)?,
        sample: row.get(6)?,
        state: FileState::parse(&state),
        attempts: row.get(8)?,
        next_retry_at: row.get(9)?,
        error_code: row.get(10)?,
        error_message: row.get(11)?,
        upload_id: row.get(12)?,
        part_size: row.get(13)?,
        object_key: row.get(14)?,
        bucket: row.get(15)?,
        etag: row.get(16)?,
        checksum: row.get(17)?,
        bytes_done: row.get(18)?,
        server: row.get(19)?,
        user_id: row.get(20)?,
        user_name: row.get(21)?,
        initiating_at: row.get(22)?,
        on_conflict: OnConflict::parse(&row.get::<_, String>(23)?).unwrap_or_default(),
        rewrites: row.get(24)?,
    })
}

/// A file about to be added: where it is, its key, and how it looked when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile<'a> {
    /// Local path.
    pub path: &'a Path,
    /// Key below the grant's prefix (`""` when it has none).
    pub key: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Size when found.
    pub size: Option<u64>,
    /// Modification time (ns since the epoch) when found.
    pub mtime_ns: Option<i64>,
    /// What happens when its key already holds an object at the store.
    pub on_conflict: OnConflict,
}

/// Another account with unfinished files here (see [`Journal::waiting_for_others`]): named by
/// the caller, in its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The account's user name (`None`: rows from before owners were recorded).
    pub name: Option<String>,
    /// Its app server, when it is not the one the asking account signed in to.
    pub server: Option<String>,
    /// Its unfinished files.
    pub files: u64,
}

/// Where a new row starts: queued, or skipped with a code and a reason.
pub type Skip<'a> = Option<(&'a str, &'a str)>;

/// The SQL of [`Journal::waiting_for_others`]: `?1`, `?2` the owner (null: nobody). Reads the
/// partial index of unfinished rows, never the journal's history.
pub(super) fn waiting_sql() -> String {
    let unfinished = sql_unfinished();
    format!(
        "SELECT user_name, server, count(*) FROM files
         WHERE {unfinished}
           AND NOT (server IS ?1 AND user_id IS ?2 AND ?1 IS NOT NULL)
         GROUP BY server, user_id ORDER BY min(id)"
    )
}

/// The SQL of [`Journal::files_with_ids`]: `?1` the ids (a JSON array).
pub(super) fn files_with_ids_sql() -> String {
    format!("SELECT {COLUMNS} FROM files WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id")
}

/// The SQL of [`Journal::latest_for_path`]: `?1`, `?2` the owner, `?3` the path.
pub(super) fn latest_for_path_sql() -> String {
    format!("SELECT {COLUMNS} FROM files WHERE {OWNED} AND path = ?3 ORDER BY id DESC LIMIT 1")
}

/// The SQL of [`Journal::newest_for_path`]: `?1`, `?2` the owner, `?3` the path, `?4` how
/// many.
pub(super) fn newest_for_path_sql() -> String {
    format!("SELECT {COLUMNS} FROM files WHERE {OWNED} AND path = ?3 ORDER BY id DESC LIMIT ?4")
}

/// The SQL of [`Journal::live_with_key`]: `?1`, `?2` the owner, `?3` the key, `?4` the path.
pub(super) fn live_with_key_sql() -> String {
    let unfinished = sql_unfinished();
    format!(
        "SELECT id FROM files WHERE {OWNED} AND key = ?3 AND path != ?4
         AND {unfinished} LIMIT 1"
    )
}

/// Which files uploaded and awaiting their confirmation [`Journal::runnable`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// Those due again after a failed confirmation, and those no try is planned for: moved
    /// back by the user's retry or resume, left by an engine that stopped, by tasks stopped
    /// for a change of account, or by a task whose end the journal failed to record.
    All,
    /// Only those due again: while files are uploading, the ones just uploaded are their
    /// tasks' to confirm, and reading past each of them every round cost more than the round.
    Due,
}

/// The SQL of [`Journal::runnable`]: `?1`, `?2` the owner, `?3` now, `?4` the limit, `?5` the
/// ids passed over (a JSON array). Each branch reads one index range in the order it is merged
/// in, up to the limit — the queue in id order, files due again in the order they became due —
/// so no query sorts or reads the whole queue, or all of a long list of failed files. Files
/// passed over are left out while their index entries are read (the index holds the id): the
/// files being confirmed cost a round a lookup each in the small list, not a row read and
/// sorted (and only in a round that reads [`Awaiting::All`]).
pub(super) fn runnable_sql(awaiting: Awaiting) -> String {
    let branch = |index: &str, condition: &str, order: &str| {
        format!(
            "SELECT * FROM (SELECT {COLUMNS} FROM files INDEXED BY {index}
             WHERE {OWNED} AND {condition} AND id NOT IN (SELECT value FROM json_each(?5))
             ORDER BY {order} LIMIT ?4)"
        )
    };
    let by_id = "files_by_owner_state_id";
    let by_due = "files_by_owner";
    let mut branches = vec![
        branch(by_id, "state = 'queued'", "id"),
        branch(
            by_due,
            "state = 'uploaded' AND next_retry_at <= ?3",
            "next_retry_at",
        ),
        branch(
            by_due,
            "state = 'failed' AND next_retry_at <= ?3",
            "next_retry_at",
        ),
    ];
    if awaiting == Awaiting::All {
        // (Equal in every column of `files_by_owner`, its entries come in id order.)
        branches.push(branch(
            by_due,
            "state = 'uploaded' AND next_retry_at IS NULL",
            "id",
        ));
    }
    branches.join(" UNION ALL ") + " ORDER BY id LIMIT ?4"
}

impl Journal {
    /// Adds a file of `owner` as `Queued` (or `Skipped` with `skip` as reason); returns its id.
    pub fn add(&self, owner: &Owner, file: &NewFile<'_>, skip: Skip<'_>) -> Result<i64> {
        self.with(|c| {
            let state = if skip.is_some() {
                FileState::Skipped
            } else {
                FileState::Queued
            };
            c.run(
                "INSERT INTO files (path, display_path, key, name, size, mtime_ns, state,
                     error_code, error_message, created_at, updated_at, server, user_id, user_name,
                     on_conflict)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14)",
                params![
                    path_bytes(file.path),
                    file.path.to_string_lossy(),
                    file.key,
                    file.name,
                    file.size,
                    file.mtime_ns,
                    state.as_str(),
                    skip.map(|s| s.0),
                    skip.map(|s| s.1),
                    now(),
                    owner.server,
                    owner.user_id,
                    owner.user_name,
                    file.on_conflict.as_str(),
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest row of `owner` for `path`, in any state.
    pub fn latest_for_path(&self, owner: &Owner, path: &Path) -> Result<Option<FileRow>> {
        self.with(|c| {
            c.row(
                &latest_for_path_sql(),
                params![owner.server, owner.user_id, path_bytes(path)],
                file_from_row,
            )
            .optional()
        })
    }

    /// The newest `most` rows of `owner` for `path`, newest first, in any state (a file has
    /// a row for each key it was given at, and for each time it changed).
    pub fn newest_for_path(&self, owner: &Owner, path: &Path, most: usize) -> Result<Vec<FileRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&newest_for_path_sql())?;
            let values = params![owner.server, owner.user_id, path_bytes(path), most as i64];
            stmt.query_map(values, file_from_row)?.collect()
        })
    }

    /// A row of `owner` not yet finished (queued, uploading, uploaded, paused, failed) whose
    /// key is `key` and whose path is not `path`, if any: two files must not share a key.
    pub fn live_with_key(&self, owner: &Owner, key: &str, path: &Path) -> Result<Option<i64>> {
        self.with(|c| {
            c.row(
                &live_with_key_sql(),
                params![owner.server, owner.user_id, key, path_bytes(path)],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// One file.
    pub fn file(&self, id: i64) -> Result<Option<FileRow>> {
        self.with(|c| {
            c.row(
                &format!("SELECT {COLUMNS} FROM files WHERE id = ?1"),
                [id],
                file_from_row,
            )
            .optional()
        })
    }

    /// The files of `ids` there are, each once, in id order, read in one query (`ferry upload`
    /// reads every file it queued before and after, tens of thousands of them).
    pub fn files_with_ids(&self, ids: &[i64]) -> Result<Vec<FileRow>> {
        let ids = serde_json::to_string(ids).expect("a list of integers serializes");
        self.with(|c| {
            let mut stmt = c.prepare_cached(&files_with_ids_sql())?;
            stmt.query_map([ids], file_from_row)?.collect()
        })
    }

    /// Every file (of every account), newest first, at most `limit`.
    pub fn files(&self, limit: usize) -> Result<Vec<FileRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files ORDER BY id DESC LIMIT ?1"
            ))?;
            stmt.query_map([limit as i64], file_from_row)?.collect()
        })
    }

    /// Files of `owner` ready to work on, oldest first: queued, uploaded (awaiting
    /// confirmation, as `awaiting` says) or failed and due — but for those in `passed_over`
    /// (being worked on).
    pub fn runnable(
        &self,
        owner: &Owner,
        limit: usize,
        passed_over: &[i64],
        awaiting: Awaiting,
    ) -> Result<Vec<FileRow>> {
        let passed_over = serde_json::to_string(passed_over).expect("integers serialise");
        self.with(|c| {
            let mut stmt = c.prepare_cached(&runnable_sql(awaiting))?;
            stmt.query_map(
                params![
                    owner.server,
                    owner.user_id,
                    now(),
                    limit as i64,
                    passed_over
                ],
                file_from_row,
            )?
            .collect()
        })
    }

    /// `owner`'s files in `Uploading` (each should have a task; the scheduler checks).
    pub fn uploading(&self, owner: &Owner) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id FROM files WHERE {OWNED} AND state = 'uploading'"
            ))?;
            stmt.query_map(params![owner.server, owner.user_id], |r| r.get(0))?
                .collect()
        })
    }

    /// When the next failed file or confirmation of `owner` is due, if any.
    pub fn next_retry(&self, owner: &Owner) -> Result<Option<i64>> {
        self.with(|c| {
            c.row(
                &format!(
                    "SELECT min(next_retry_at) FROM files WHERE {OWNED}
                     AND state IN ('failed', 'uploaded')"
                ),
                params![owner.server, owner.user_id],
                |r| r.get(0),
            )
        })
    }

    /// Counts of `owner`'s files per state.
    pub fn counts(&self, owner: &Owner) -> Result<Vec<(FileState, u64)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT state, count(*) FROM files WHERE {OWNED} GROUP BY state"
            ))?;
            stmt.query_map(params![owner.server, owner.user_id], |r| {
                Ok((FileState::parse(&r.get::<_, String>(0)?), r.get(1)?))
            })?
            .collect()
        })
    }

    /// Unfinished files of accounts other than `owner` (`None`: everyone's), by account, in
    /// the order they were queued; rows from before owners existed count as one account with
    /// no name.
    pub fn waiting_for_others(&self, owner: Option<&Owner>) -> Result<Vec<Waiting>> {
        let (server, user) = owner.map_or((None, None), |o| (Some(&o.server), Some(o.user_id)));
        self.with(|c| {
            let mut stmt = c.prepare_cached(&waiting_sql())?;
            stmt.query_map(params![server, user], |r| {
                let server: Option<String> = r.get(1)?;
                Ok(Waiting {
                    name: r.get(0)?,
                    server: server.filter(|s| owner.is_none_or(|o| o.server != *s)),
                    files: r.get(2)?,
                })
            })?
            .collect()
        })
    }

    /// `owner`'s files that failed or whose confirmation waits for its next attempt, newest
    /// first, at most `limit`.
    pub fn troubled(&self, owner: &Owner, limit: usize) -> Result<Vec<FileRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE {OWNED}
                   AND (state = 'failed' OR (state = 'uploaded' AND next_retry_at IS NOT NULL))
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            stmt.query_map(
                params![owner.server, owner.user_id, limit as i64],
                file_from_row,
            )?
            .collect()
        })
    }

    /// Records a failure of an uploading file (or of a confirmation refused for good);
    /// `retry_at` when the error may pass by itself. Returns the attempts so far, or `None`
    /// when the file had left those states (paused or cancelled meanwhile).
    pub fn fail(
        &self,
        id: i64,
        code: &str,
        message: &str,
        retry_at: Option<i64>,
    ) -> Result<Option<u32>> {
        let from = FileState::Failed.sql_sources();
        self.with(|c| {
            let changed = c.run(
                &format!(
                    "UPDATE files SET state = 'failed', attempts = attempts + 1, error_code = ?2,
                         error_message = ?3, next_retry_at = ?4, updated_at = ?5
                     WHERE id = ?1 AND state IN ({from})"
                ),
                params![id, code, message, retry_at, now()],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            c.row("SELECT attempts FROM files WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map(Some)
        })
    }

    /// Records a failed confirmation: the object stays uploaded, the confirmation is retried at
    /// `retry_at`.
    pub fn defer_confirmation(
        &self,
        id: i64,
        code: &str,
        message: &str,
        retry_at: i64,
    ) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE files SET attempts = attempts + 1, error_code = ?2, error_message = ?3,
                     next_retry_at = ?4, updated_at = ?5 WHERE id = ?1 AND state = 'uploaded'",
                params![id, code, message, retry_at, now()],
            )?;
            Ok(())
        })
    }

    /// Records what the file looked like when its upload began.
    pub fn set_fingerprint(&self, id: i64, size: u64, mtime_ns: i64, sample: &str) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE files SET size = ?2, mtime_ns = ?3, sample = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, size, mtime_ns, sample, now()],
            )?;
            Ok(())
        })
    }

    /// Notes that a multipart upload of the file is being begun at `at` (store time).
    pub fn initiating(&self, id: i64, at: i64) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE files SET initiating_at = coalesce(initiating_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            Ok(())
        })
    }

    /// The store was looked at for uploads of the file begun but never journaled (and those
    /// found were aborted): the moment noted by [`Journal::initiating`] is no longer needed.
    pub fn swept(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.run("UPDATE files SET initiating_at = NULL WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Records a new multipart upload (before its first part is sent), if the file is still
    /// uploading (the moment its beginning was noted stays until [`Journal::swept`]); [`Error::StateChanged`] otherwise (the caller aborts the upload it made).
    pub fn begin_multipart(
        &self,
        id: i64,
        upload_id: &str,
        part_size: u64,
        bucket: &str,
        key: &str,
    ) -> Result<()> {
        let changed = self.with(|c| {
            let tx = c.savepoint()?;
            tx.run("DELETE FROM parts WHERE file_id = ?1", [id])?;
            let changed = tx.run(
                "UPDATE files SET upload_id = ?2, part_size = ?3, bucket = ?4, object_key = ?5,
                     bytes_done = 0, updated_at = ?6
                 WHERE id = ?1 AND state = 'uploading'",
                params![id, upload_id, part_size, bucket, key, now()],
            )?;
            if changed == 1 {
                tx.commit()?;
            }
            Ok(changed)
        })?;
        if changed == 1 {
            Ok(())
        } else {
            Err(self.state_changed(id))
        }
    }

    /// Forgets the multipart upload and its parts (after an abort or a changed file).
    pub fn reset_upload(&self, id: i64) -> Result<()> {
        self.with(|c| {
            let tx = c.savepoint()?;
            tx.run("DELETE FROM parts WHERE file_id = ?1", [id])?;
            tx.run(
                "UPDATE files SET upload_id = NULL, part_size = NULL, bytes_done = 0, updated_at = ?2
                 WHERE id = ?1",
                params![id, now()],
            )?;
            tx.commit()
        })
    }

    /// Records an acknowledged part.
    pub fn record_part(&self, id: i64, part: &PartRow) -> Result<()> {
        self.with(|c| {
            let tx = c.savepoint()?;
            tx.run(
                "INSERT INTO parts (file_id, number, size, etag, md5, crc64)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (file_id, number) DO UPDATE SET size = excluded.size,
                     etag = excluded.etag, md5 = excluded.md5, crc64 = excluded.crc64",
                params![
                    id,
                    part.number,
                    part.size,
                    part.etag,
                    part.md5,
                    part.crc64.map(|c| c as i64)
                ],
            )?;
            tx.run(
                "UPDATE files SET bytes_done = (SELECT coalesce(sum(size), 0) FROM parts WHERE file_id = ?1)
                 WHERE id = ?1",
                [id],
            )?;
            tx.commit()
        })
    }

    /// Parts recorded for a file, by number.
    pub fn parts(&self, id: i64) -> Result<Vec<PartRow>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT number, size, etag, md5, crc64 FROM parts WHERE file_id = ?1 ORDER BY number",
            )?;
            stmt.query_map([id], |r| {
                Ok(PartRow {
                    number: r.get(0)?,
                    size: r.get(1)?,
                    etag: r.get(2)?,
                    md5: r.get(3)?,
                    crc64: r.get::<_, Option<i64>>(4)?.map(|c| c as u64),
                })
            })?
            .collect()
        })
    }

    /// The store has the whole object: `Uploading` → `Uploaded`, with the fingerprint of the
    /// file as its bytes were read. [`Error::StateChanged`]
    /// when the file left `Uploading` meanwhile (paused or cancelled): nothing is written.
    pub fn uploaded(&self, id: i64, object: &Uploaded<'_>) -> Result<()> {
        let changed = self.with(|c| {
            let tx = c.savepoint()?;
            let changed = tx.run(
                "UPDATE files SET state = 'uploaded', bucket = ?2, object_key = ?3, etag = ?4,
                     checksum = ?5, size = ?6, bytes_done = ?6, mtime_ns = ?8, sample = ?9,
                     upload_id = NULL, error_code = NULL, error_message = NULL,
                     next_retry_at = NULL, updated_at = ?7, stale_key = NULL, stale_etag = NULL
                 WHERE id = ?1 AND state = 'uploading'",
                params![
                    id,
                    object.bucket,
                    object.key,
                    object.etag,
                    object.checksum,
                    object.size,
                    now(),
                    object.mtime_ns,
                    object.sample
                ],
            )?;
            if changed == 1 {
                tx.run("DELETE FROM parts WHERE file_id = ?1", [id])?;
                tx.commit()?;
            }
            Ok(changed)
        })?;
        if changed == 1 {
            Ok(())
        } else {
            Err(self.state_changed(id))
        }
    }
}

/// What the store holds once a file is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded<'a> {
    /// Bucket.
    pub bucket: &'a str,
    /// Full object key.
    pub key: &'a str,
    /// The store's ETag.
    pub etag: &'a str,
    /// What the bytes were checked against (see [`FileRow::checksum`]).
    pub checksum: &'a str,
    /// Bytes: the object's, and the file's when it was read for this upload.
    pub size: u64,
    /// The file's modification time when it was read for this upload (ns since the epoch).
    pub mtime_ns: i64,
    /// The file's sample hash then (see [`FileRow::sample`]).
    pub sample: &'a str,
}

#[cfg(test)]
mod tests;
