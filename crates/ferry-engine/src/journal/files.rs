//! File rows and their parts.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};

use super::{FileState, Journal, now};
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
    /// `sha256:<hex>` of the uploaded bytes, once known.
    pub checksum: Option<String>,
    /// Bytes the store has acknowledged.
    pub bytes_done: u64,
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
}

const COLUMNS: &str = "id, path, key, name, size, mtime_ns, sample, state, attempts, next_retry_at,
    error_code, error_message, upload_id, part_size, object_key, bucket, etag, checksum, bytes_done";

#[cfg(unix)]
fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

fn file_from_row(row: &Row<'_>) -> rusqlite::Result<FileRow> {
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
    })
}

impl Journal {
    /// Adds a file as `Queued` (or `Skipped` with `skip` as reason); returns its id.
    pub fn add(
        &self,
        path: &Path,
        key: &str,
        name: &str,
        skip: Option<(&str, &str)>,
    ) -> Result<i64> {
        self.with(|c| {
            let state = if skip.is_some() {
                FileState::Skipped
            } else {
                FileState::Queued
            };
            c.execute(
                "INSERT INTO files (path, display_path, key, name, state, error_code, error_message,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![
                    path_bytes(path),
                    path.to_string_lossy(),
                    key,
                    name,
                    state.as_str(),
                    skip.map(|s| s.0),
                    skip.map(|s| s.1),
                    now()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest row for `path` that is not cancelled, if any.
    pub fn latest_for_path(&self, path: &Path) -> Result<Option<FileRow>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM files WHERE path = ?1 AND state != 'cancelled'
                     ORDER BY id DESC LIMIT 1"
                ),
                [path_bytes(path)],
                file_from_row,
            )
            .optional()
        })
    }

    /// One file.
    pub fn file(&self, id: i64) -> Result<Option<FileRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM files WHERE id = ?1"),
                [id],
                file_from_row,
            )
            .optional()
        })
    }

    /// Every file, newest first, at most `limit`.
    pub fn files(&self, limit: usize) -> Result<Vec<FileRow>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM files ORDER BY id DESC LIMIT ?1"
            ))?;
            stmt.query_map([limit as i64], file_from_row)?.collect()
        })
    }

    /// Files ready to work on: queued, uploaded (awaiting confirmation) or failed and due.
    pub fn runnable(&self, limit: usize) -> Result<Vec<FileRow>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM files
                 WHERE state = 'queued'
                    OR (state = 'uploaded' AND (next_retry_at IS NULL OR next_retry_at <= ?1))
                    OR (state = 'failed' AND next_retry_at IS NOT NULL AND next_retry_at <= ?1)
                 ORDER BY id LIMIT ?2"
            ))?;
            stmt.query_map(params![now(), limit as i64], file_from_row)?
                .collect()
        })
    }

    /// When the next failed file is due, if any.
    pub fn next_retry(&self) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT min(next_retry_at) FROM files WHERE state IN ('failed', 'uploaded')",
                [],
                |r| r.get(0),
            )
        })
    }

    /// Counts of files per state.
    pub fn counts(&self) -> Result<Vec<(FileState, u64)>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT state, count(*) FROM files GROUP BY state")?;
            stmt.query_map([], |r| {
                Ok((FileState::parse(&r.get::<_, String>(0)?), r.get(1)?))
            })?
            .collect()
        })
    }

    /// Sets a state and clears the error.
    pub fn set_state(&self, id: i64, state: FileState) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET state = ?2, error_code = NULL, error_message = NULL,
                     next_retry_at = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, state.as_str(), now()],
            )?;
            Ok(())
        })
    }

    /// Moves files in one of `from` to `to`; returns the ids moved.
    pub fn move_states(
        &self,
        ids: Option<&[i64]>,
        from: &[FileState],
        to: FileState,
    ) -> Result<Vec<i64>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let states = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
            let mut moved = Vec::new();
            {
                let mut stmt = tx.prepare(&format!("SELECT id FROM files WHERE state IN ({states})"))?;
                for id in stmt.query_map([], |r| r.get::<_, i64>(0))? {
                    let id = id?;
                    if ids.is_none_or(|ids| ids.contains(&id)) {
                        moved.push(id);
                    }
                }
            }
            for id in &moved {
                tx.execute(
                    "UPDATE files SET state = ?2, next_retry_at = NULL, updated_at = ?3 WHERE id = ?1",
                    params![id, to.as_str(), now()],
                )?;
            }
            tx.commit()?;
            Ok(moved)
        })
    }

    /// Records a failure; `retry_at` when the error may pass by itself.
    pub fn fail(&self, id: i64, code: &str, message: &str, retry_at: Option<i64>) -> Result<u32> {
        self.with(|c| {
            c.execute(
                "UPDATE files SET state = 'failed', attempts = attempts + 1, error_code = ?2,
                     error_message = ?3, next_retry_at = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, code, message, retry_at, now()],
            )?;
            c.query_row("SELECT attempts FROM files WHERE id = ?1", [id], |r| {
                r.get(0)
            })
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
            c.execute(
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
            c.execute(
                "UPDATE files SET size = ?2, mtime_ns = ?3, sample = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, size, mtime_ns, sample, now()],
            )?;
            Ok(())
        })
    }

    /// Records a new multipart upload (before its first part is sent).
    pub fn begin_multipart(
        &self,
        id: i64,
        upload_id: &str,
        part_size: u64,
        bucket: &str,
        key: &str,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM parts WHERE file_id = ?1", [id])?;
            tx.execute(
                "UPDATE files SET upload_id = ?2, part_size = ?3, bucket = ?4, object_key = ?5,
                     bytes_done = 0, updated_at = ?6 WHERE id = ?1",
                params![id, upload_id, part_size, bucket, key, now()],
            )?;
            tx.commit()
        })
    }

    /// Forgets the multipart upload and its parts (after an abort or a changed file).
    pub fn reset_upload(&self, id: i64) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM parts WHERE file_id = ?1", [id])?;
            tx.execute(
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
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO parts (file_id, number, size, etag, md5) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (file_id, number) DO UPDATE SET size = excluded.size,
                     etag = excluded.etag, md5 = excluded.md5",
                params![id, part.number, part.size, part.etag, part.md5],
            )?;
            tx.execute(
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
            let mut stmt = c.prepare(
                "SELECT number, size, etag, md5 FROM parts WHERE file_id = ?1 ORDER BY number",
            )?;
            stmt.query_map([id], |r| {
                Ok(PartRow {
                    number: r.get(0)?,
                    size: r.get(1)?,
                    etag: r.get(2)?,
                    md5: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    /// The store has the whole object.
    pub fn uploaded(
        &self,
        id: i64,
        bucket: &str,
        key: &str,
        etag: &str,
        checksum: &str,
        size: u64,
    ) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM parts WHERE file_id = ?1", [id])?;
            tx.execute(
                "UPDATE files SET state = 'uploaded', bucket = ?2, object_key = ?3, etag = ?4,
                     checksum = ?5, bytes_done = ?6, upload_id = NULL, error_code = NULL,
                     error_message = NULL, next_retry_at = NULL, updated_at = ?7 WHERE id = ?1",
                params![id, bucket, key, etag, checksum, size, now()],
            )?;
            tx.commit()
        })
    }

    /// A confirmed file whose fingerprint matches, if any (to skip identical re-uploads).
    pub fn confirmed_with(&self, path: &Path, size: u64, mtime_ns: i64) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT id FROM files WHERE path = ?1 AND state = 'confirmed' AND size = ?2
                   AND mtime_ns = ?3 ORDER BY id DESC LIMIT 1",
                params![path_bytes(path), size, mtime_ns],
                |r| r.get(0),
            )
            .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_moves_through_its_states_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("journal.db");
        let journal = Journal::open(&db).unwrap();
        let id = journal
            .add(Path::new("/tmp/a.bin"), "a.bin", "a.bin", None)
            .unwrap();
        assert_eq!(journal.runnable(10).unwrap().len(), 1);
        journal.set_state(id, FileState::Uploading).unwrap();
        journal
            .begin_multipart(id, "up-1", 8, "b", "p/a.bin")
            .unwrap();
        journal
            .record_part(
                id,
                &PartRow {
                    number: 2,
                    size: 8,
                    etag: "e2".into(),
                    md5: "m2".into(),
                },
            )
            .unwrap();
        journal
            .record_part(
                id,
                &PartRow {
                    number: 1,
                    size: 8,
                    etag: "e1".into(),
                    md5: "m1".into(),
                },
            )
            .unwrap();
        drop(journal);

        // As after kill -9: Uploading goes back to Queued, parts and upload id are kept.
        let journal = Journal::open(&db).unwrap();
        let row = journal.file(id).unwrap().unwrap();
        assert_eq!(row.state, FileState::Queued);
        assert_eq!(row.upload_id.as_deref(), Some("up-1"));
        assert_eq!(row.bytes_done, 16);
        assert_eq!(
            journal
                .parts(id)
                .unwrap()
                .iter()
                .map(|p| p.number)
                .collect::<Vec<_>>(),
            [1, 2]
        );

        assert_eq!(journal.fail(id, "network", "reset", Some(0)).unwrap(), 1);
        assert_eq!(
            journal.runnable(10).unwrap().len(),
            1,
            "due retries are runnable"
        );
        journal.fail(id, "file_missing", "gone", None).unwrap();
        assert!(
            journal.runnable(10).unwrap().is_empty(),
            "permanent failures wait for the user"
        );
        journal
            .uploaded(id, "b", "p/a.bin", "etag", "sha256:x", 16)
            .unwrap();
        assert!(journal.parts(id).unwrap().is_empty());
        journal.set_state(id, FileState::Confirmed).unwrap();
        assert!(journal.runnable(10).unwrap().is_empty());
    }

    #[test]
    fn skipped_files_keep_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db")).unwrap();
        let id = journal
            .add(
                Path::new("/x/\u{FFFD}"),
                "",
                "?",
                Some(("name_not_utf8", "not UTF-8")),
            )
            .unwrap();
        let row = journal.file(id).unwrap().unwrap();
        assert_eq!(row.state, FileState::Skipped);
        assert_eq!(row.error_code.as_deref(), Some("name_not_utf8"));
    }

    #[test]
    fn a_cancelled_file_cannot_become_uploaded_or_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db")).unwrap();
        let id = journal
            .add(Path::new("/tmp/a.bin"), "a.bin", "a.bin", None)
            .unwrap();
        journal.set_state(id, FileState::Uploading).unwrap();
        // The user cancels while the upload is finishing...
        journal
            .move_states(Some(&[id]), &[FileState::Uploading], FileState::Cancelled)
            .unwrap();
        // ...and the finishing task's writes must not bring it back.
        let _ = journal.uploaded(id, "b", "p/a.bin", "etag", "md5:x", 1);
        assert_eq!(journal.file(id).unwrap().unwrap().state, FileState::Cancelled);
        let _ = journal.set_state(id, FileState::Confirmed);
        assert_eq!(journal.file(id).unwrap().unwrap().state, FileState::Cancelled);
        let _ = journal.fail(id, "network", "reset", Some(0));
        assert_eq!(journal.file(id).unwrap().unwrap().state, FileState::Cancelled);
    }
}
