//! SQL for the embedded store: committed objects, multipart uploads and their parts. Object
//! bytes live in blob files named by the rows; these functions only move names around, and hand
//! back the names of blobs that are no longer referenced so the caller can delete them.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Cached, Db, DbError, crc_from_sql, crc_to_sql, history};

/// A committed object.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRow {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) etag: String,
    /// The blobs holding its bytes, in order, as the `blob` column keeps them (see
    /// [`blob_list`]): one for a PUT, the parts' own for a multipart upload, which Complete
    /// references rather than copies.
    pub(crate) blob: String,
    pub(crate) user_id: i64,
    pub(crate) created_at: i64,
    /// CRC-64/XZ of the content, when known.
    pub(crate) crc64: Option<u64>,
}

/// The `blob` column of an object: blob names separated by spaces (names are hex ids).
pub(crate) fn blob_list(names: &[String]) -> String {
    names.join(" ")
}

/// The blob names an object's `blob` column holds, in order.
pub(crate) fn blob_names(column: &str) -> Vec<String> {
    column.split_whitespace().map(str::to_owned).collect()
}

/// What a write does when the key already holds an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfExists {
    /// The new object replaces it (a plain write).
    Replace,
    /// Nothing is written (`If-None-Match: *`, `x-oss-forbid-overwrite: true`).
    Refuse,
}

/// Why a write (a PUT or a Complete) committed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotCompleted {
    /// The key holds an object and the write was not to replace it.
    Exists,
    /// The upload is no longer open (completed or aborted meanwhile).
    Closed,
    /// A part was sent again after the caller chose the parts: its chosen blob is gone.
    PartReplaced,
}

/// A multipart upload, bound to the user (not the access key) that began it.
#[derive(Debug, Clone)]
pub(crate) struct MultipartRow {
    pub(crate) upload_id: String,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) user_id: i64,
    pub(crate) initiated_at: i64,
    pub(crate) state: String,
}

/// One uploaded part.
#[derive(Debug, Clone)]
pub(crate) struct PartRow {
    pub(crate) part_number: i32,
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) blob: String,
    pub(crate) modified_at: i64,
    /// CRC-64/XZ of the part, when known.
    pub(crate) crc64: Option<u64>,
}

fn part_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PartRow> {
    Ok(PartRow {
        part_number: row.get(0)?,
        size: row.get(1)?,
        etag: row.get(2)?,
        blob: row.get(3)?,
        modified_at: row.get(4)?,
        crc64: crc_from_sql(row.get(5)?),
    })
}

fn multipart_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MultipartRow> {
    Ok(MultipartRow {
        upload_id: row.get(0)?,
        bucket: row.get(1)?,
        key: row.get(2)?,
        user_id: row.get(3)?,
        initiated_at: row.get(4)?,
        state: row.get(5)?,
    })
}

/// The blob of the object at a key (`?1` bucket, `?2` key).
const CURRENT_BLOB: &str = "SELECT blob FROM objects WHERE bucket = ?1 AND key = ?2";

/// Replaces the object at its key and records the upload in history; returns the blobs of the
/// object it replaced, if any — or `Exists` when there is one and `if_exists` refuses it (the
/// check and the write are one transaction: no other write comes in between).
fn upsert_object(
    tx: &Connection,
    object: &ObjectRow,
    started_at: i64,
    if_exists: IfExists,
) -> rusqlite::Result<Result<Vec<String>, NotCompleted>> {
    let old: Option<String> = tx
        .row(CURRENT_BLOB, params![object.bucket, object.key], |row| {
            row.get(0)
        })
        .optional()?;
    if old.is_some() && if_exists == IfExists::Refuse {
        return Ok(Err(NotCompleted::Exists));
    }
    tx.run(
        "INSERT INTO objects (bucket, key, size, etag, blob, user_id, created_at, crc64)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (bucket, key) DO UPDATE SET size = excluded.size, etag = excluded.etag,
             blob = excluded.blob, user_id = excluded.user_id, created_at = excluded.created_at,
             crc64 = excluded.crc64",
        params![
            object.bucket,
            object.key,
            object.size,
            object.etag,
            object.blob,
            object.user_id,
            object.created_at,
            crc_to_sql(object.crc64)
        ],
    )?;
    history::record_stored(tx, object, started_at)?;
    Ok(Ok(old.as_deref().map(blob_names).unwrap_or_default()))
}

/// The object at `bucket/key`, if any.
fn object_in(c: &Connection, bucket: &str, key: &str) -> rusqlite::Result<Option<ObjectRow>> {
    c.row(
        "SELECT bucket, key, size, etag, blob, user_id, created_at, crc64 FROM objects
         WHERE bucket = ?1 AND key = ?2",
        params![bucket, key],
        |row| {
            Ok(ObjectRow {
                bucket: row.get(0)?,
                key: row.get(1)?,
                size: row.get(2)?,
                etag: row.get(3)?,
                blob: row.get(4)?,
                user_id: row.get(5)?,
                created_at: row.get(6)?,
                crc64: crc_from_sql(row.get(7)?),
            })
        },
    )
    .optional()
}

impl Db {
    pub(crate) async fn object(
        &self,
        bucket: String,
        key: String,
    ) -> Result<Option<ObjectRow>, DbError> {
        self.call(move |c| object_in(c, &bucket, &key)).await
    }

    /// The objects at `keys` of `bucket`, in order, in one trip to the database.
    pub(crate) async fn objects(
        &self,
        bucket: String,
        keys: Vec<String>,
    ) -> Result<Vec<Option<ObjectRow>>, DbError> {
        self.call(move |c| keys.iter().map(|key| object_in(c, &bucket, key)).collect())
            .await
    }

    /// Commits a single-PUT object; returns the replaced object's blobs. `on_commit` runs on the
    /// database thread right after the commit (and is dropped unrun if it fails), so the blob's
    /// fate is tied to the row's even if the caller's future is dropped meanwhile.
    pub(crate) async fn put_object(
        &self,
        object: ObjectRow,
        started_at: i64,
        if_exists: IfExists,
        on_commit: impl FnOnce() + Send + 'static,
    ) -> Result<Result<Vec<String>, NotCompleted>, DbError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let old = match upsert_object(&tx, &object, started_at, if_exists)? {
                Ok(old) => old,
                Err(refused) => return Ok(Err(refused)),
            };
            tx.commit()?;
            on_commit();
            Ok(Ok(old))
        })
        .await
    }

    pub(crate) async fn create_multipart(&self, row: MultipartRow) -> Result<(), DbError> {
        self.call(move |c| {
            c.run(
                "INSERT INTO multipart_uploads (upload_id, bucket, key, user_id, initiated_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open')",
                params![row.upload_id, row.bucket, row.key, row.user_id, row.initiated_at],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn multipart(
        &self,
        upload_id: String,
    ) -> Result<Option<MultipartRow>, DbError> {
        self.call(move |c| {
            c.row(
                "SELECT upload_id, bucket, key, user_id, initiated_at, state
                 FROM multipart_uploads WHERE upload_id = ?1",
                [upload_id],
                multipart_from_row,
            )
            .optional()
        })
        .await
    }

    /// Records a part if the upload is still open. `Ok(Err(()))` when it is not; otherwise the
    /// blob of the part it replaced, if any. `on_commit` as for [`Db::put_object`].
    pub(crate) async fn put_part(
        &self,
        upload_id: String,
        part: PartRow,
        on_commit: impl FnOnce() + Send + 'static,
    ) -> Result<Result<Option<String>, ()>, DbError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let open: bool = tx
                .row(
                    "SELECT state = 'open' FROM multipart_uploads WHERE upload_id = ?1",
                    [&upload_id],
                    |row| row.get(0),
                )
                .optional()?
                .unwrap_or(false);
            if !open {
                return Ok(Err(()));
            }
            let old: Option<String> = tx
                .row(
                    "SELECT blob FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                    params![upload_id, part.part_number],
                    |row| row.get(0),
                )
                .optional()?;
            tx.run(
                "INSERT INTO parts (upload_id, part_number, size, etag, blob, modified_at, crc64)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (upload_id, part_number) DO UPDATE SET size = excluded.size,
                     etag = excluded.etag, blob = excluded.blob, modified_at = excluded.modified_at,
                     crc64 = excluded.crc64",
                params![
                    upload_id,
                    part.part_number,
                    part.size,
                    part.etag,
                    part.blob,
                    part.modified_at,
                    crc_to_sql(part.crc64)
                ],
            )?;
            tx.commit()?;
            on_commit();
            Ok(Ok(old))
        })
        .await
    }

    /// Parts after `marker`, sorted by number, at most `limit` (plus one to tell truncation).
    pub(crate) async fn parts(
        &self,
        upload_id: String,
        marker: i32,
        limit: usize,
    ) -> Result<Vec<PartRow>, DbError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT part_number, size, etag, blob, modified_at, crc64 FROM parts
                 WHERE upload_id = ?1 AND part_number > ?2 ORDER BY part_number LIMIT ?3",
            )?;
            stmt.query_map(params![upload_id, marker, limit as i64], part_from_row)?
                .collect()
        })
        .await
    }

    /// Closes an open upload as completed and commits its object. `Ok(Err(()))` when the upload
    /// is no longer open; otherwise every blob no longer referenced (the parts, the replaced
    /// object). `on_commit` as for [`Db::put_object`].
    pub(crate) async fn complete_multipart(
        &self,
        upload: MultipartRow,
        object: ObjectRow,
        if_exists: IfExists,
        on_commit: impl FnOnce() + Send + 'static,
    ) -> Result<Result<Vec<String>, NotCompleted>, DbError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let closed = tx.run(
                "UPDATE multipart_uploads SET state = 'completed'
                 WHERE upload_id = ?1 AND state = 'open'",
                [&upload.upload_id],
            )?;
            // (A Complete sent again after its answer was lost finds its upload closed, not
            // the object it made.)
            if closed != 1 {
                return Ok(Err(NotCompleted::Closed));
            }
            // Refused: nothing is committed, the upload stays open, to be completed otherwise.
            let exists: bool = tx.row(
                "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1 AND key = ?2)",
                params![object.bucket, object.key],
                |row| row.get(0),
            )?;
            if exists && if_exists == IfExists::Refuse {
                return Ok(Err(NotCompleted::Exists));
            }
            // The parts the object names are its bytes now; the others (uploaded, not
            // listed) are no longer referenced. A part sent again since the caller chose them
            // replaced (and deleted) a chosen blob: nothing is committed, the client retries.
            let kept = blob_names(&object.blob);
            for blob in &kept {
                let current: bool = tx.row(
                    "SELECT EXISTS (SELECT 1 FROM parts WHERE upload_id = ?1 AND blob = ?2)",
                    params![upload.upload_id, blob],
                    |row| row.get(0),
                )?;
                if !current {
                    return Ok(Err(NotCompleted::PartReplaced));
                }
            }
            let mut unused: Vec<String> = {
                let mut stmt = tx.prepare_cached("SELECT blob FROM parts WHERE upload_id = ?1")?;
                stmt.query_map([&upload.upload_id], |row| row.get::<_, String>(0))?
                    .filter(|blob| blob.as_ref().map_or(true, |b| !kept.contains(b)))
                    .collect::<Result<_, _>>()?
            };
            tx.run(
                "DELETE FROM parts WHERE upload_id = ?1",
                [&upload.upload_id],
            )?;
            match upsert_object(&tx, &object, upload.initiated_at, IfExists::Replace)? {
                Ok(old) => unused.extend(old),
                Err(refused) => return Ok(Err(refused)),
            }
            tx.commit()?;
            on_commit();
            Ok(Ok(unused))
        })
        .await
    }

    /// Marks an open upload aborted; returns its part blobs, or `Err(())` if it was not open.
    pub(crate) async fn abort_multipart(
        &self,
        upload_id: String,
    ) -> Result<Result<Vec<String>, ()>, DbError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let closed = tx.run(
                "UPDATE multipart_uploads SET state = 'aborted' WHERE upload_id = ?1 AND state = 'open'",
                [&upload_id],
            )?;
            if closed != 1 {
                return Ok(Err(()));
            }
            let blobs: Vec<String> = {
                let mut stmt = tx.prepare_cached("SELECT blob FROM parts WHERE upload_id = ?1")?;
                stmt.query_map([&upload_id], |row| row.get(0))?.collect::<Result<_, _>>()?
            };
            tx.run("DELETE FROM parts WHERE upload_id = ?1", [&upload_id])?;
            tx.commit()?;
            Ok(Ok(blobs))
        })
        .await
    }

    /// Open uploads of `user_id` in `bucket` whose key starts with `prefix`, ordered by key
    /// then upload id, after the markers; at most `limit`.
    pub(crate) async fn open_multiparts(
        &self,
        user_id: i64,
        bucket: String,
        prefix: String,
        key_marker: String,
        upload_id_marker: String,
        limit: usize,
    ) -> Result<Vec<MultipartRow>, DbError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT upload_id, bucket, key, user_id, initiated_at, state FROM multipart_uploads
                 WHERE state = 'open' AND user_id = ?1 AND bucket = ?2
                   AND substr(key, 1, length(?3)) = ?3
                   AND (key > ?4 OR (key = ?4 AND upload_id > ?5))
                 ORDER BY key, upload_id LIMIT ?6",
            )?;
            stmt.query_map(
                params![
                    user_id,
                    bucket,
                    prefix,
                    key_marker,
                    upload_id_marker,
                    limit as i64
                ],
                multipart_from_row,
            )?
            .collect()
        })
        .await
    }

    /// Every blob name still referenced, to tell orphans left by a crash from live data.
    pub(crate) fn referenced_blobs(&self) -> Result<Vec<String>, DbError> {
        self.call_sync(|c| {
            let mut stmt =
                c.prepare_cached("SELECT blob FROM objects UNION ALL SELECT blob FROM parts")?;
            let columns: Vec<String> = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(columns.iter().flat_map(|c| blob_names(c)).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: i32, blob: &str) -> PartRow {
        PartRow {
            part_number: number,
            size: 5,
            etag: format!("etag-{blob}"),
            blob: blob.into(),
            modified_at: 1,
            crc64: None,
        }
    }

    /// A part sent again while Complete was choosing the parts replaces the blob Complete
    /// chose: the object must not be committed naming the deleted blob.
    #[tokio::test]
    async fn a_part_replaced_while_completing_fails_the_complete_and_keeps_the_new_part() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("ferry.db")).unwrap();
        let user_id = db.insert_user("alice", "hash", "user").unwrap().unwrap();
        let upload = MultipartRow {
            upload_id: "u".into(),
            bucket: "b".into(),
            key: "k".into(),
            user_id,
            initiated_at: 1,
            state: "open".into(),
        };
        db.create_multipart(upload.clone()).await.unwrap();
        db.put_part("u".into(), part(1, "a1"), || {})
            .await
            .unwrap()
            .unwrap();
        // Complete read part 1 as blob a1; then part 1 arrives again as a2 (a1 is deleted).
        let replaced = db
            .put_part("u".into(), part(1, "a2"), || {})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replaced.as_deref(), Some("a1"));
        let object = ObjectRow {
            bucket: "b".into(),
            key: "k".into(),
            size: 5,
            etag: "x-1".into(),
            blob: blob_list(&["a1".into()]),
            user_id,
            created_at: 2,
            crc64: None,
        };
        let outcome = db
            .complete_multipart(upload, object, IfExists::Replace, || {})
            .await
            .unwrap();
        assert!(
            outcome.is_err(),
            "committed an object naming a deleted blob"
        );
        assert!(db.object("b".into(), "k".into()).await.unwrap().is_none());
        assert_eq!(db.referenced_blobs().unwrap(), vec!["a2".to_owned()]);
    }

    /// The statements an upload runs are prepared once and kept: parsing them again for every
    /// upload was a tenth of the server's CPU on small files.
    #[tokio::test]
    async fn the_statements_of_an_upload_are_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("ferry.db")).unwrap();
        let user_id = db.insert_user("alice", "hash", "user").unwrap().unwrap();
        for key in ["k1", "k2", "k3"] {
            let object = ObjectRow {
                bucket: "b".into(),
                key: key.into(),
                size: 5,
                etag: "e".into(),
                blob: blob_list(&[format!("blob-{key}")]),
                user_id,
                created_at: 2,
                crc64: None,
            };
            db.put_object(object, 1, IfExists::Replace, || {})
                .await
                .unwrap()
                .unwrap();
        }
        // Kept (the cache's statements ran every time), and never prepared again.
        assert_eq!(db.statement_status(CURRENT_BLOB), (3, 0));
        assert_eq!(db.statement_status(history::RETRIED), (3, 0));
    }
}
