//! What the journal keeps of conflicts — a file's rule for an object already at its key, the
//! decisions that settle files waiting for one, a key changed to keep both, and a file
//! skipped by its rule.

use rusqlite::{OptionalExtension, params};

use super::files::{COLUMNS, FileRow, OWNED, file_from_row};
use super::state::{sql_list, sql_unfinished};
use super::{Cached, FileState, Journal, Owner, now};
use crate::conflict::OnConflict;
use crate::error::Result;

/// `AND id IN (…)` for `ids` (numbers, never user text), or nothing for every id.
fn among(ids: Option<&[i64]>) -> String {
    match ids {
        None => String::new(),
        Some(ids) => {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!(" AND id IN ({})", list.join(","))
        }
    }
}

impl Journal {
    /// The first (oldest) of `owner`'s files waiting for a decision about an object at their
    /// key — the one the window asks about; how many wait, the journal's totals count
    /// (`Totals::failed_asking`). Read from the index of each state's rows in id order.
    pub fn first_asking(&self, owner: &Owner) -> Result<Option<FileRow>> {
        self.with(|c| {
            c.row(
                &format!(
                    "SELECT {COLUMNS} FROM files WHERE {OWNED} AND state = 'failed'
                         AND error_code = 'exists' ORDER BY id LIMIT 1"
                ),
                params![owner.server, owner.user_id],
                file_from_row,
            )
            .optional()
        })
    }

    /// Gives `owner`'s files waiting for a decision about an object at their key (those of
    /// `ids`, or all) the rule `rule`, and queues them again; with no `ids` ("apply to all")
    /// every unfinished file of `owner` that would ask gets it too. Returns the files queued
    /// again.
    pub fn decide(&self, owner: &Owner, ids: Option<&[i64]>, rule: OnConflict) -> Result<u64> {
        let (among, unfinished) = (among(ids), sql_unfinished());
        let queue_from = sql_list(&[FileState::Failed]);
        self.with(|c| {
            let tx = c.savepoint()?;
            let waiting =
                format!("{OWNED} AND state IN ({queue_from}) AND error_code = 'exists'{among}");
            tx.execute(
                &format!("UPDATE files SET on_conflict = ?3 WHERE {waiting}"),
                params![owner.server, owner.user_id, rule.as_str()],
            )?;
            if ids.is_none() {
                tx.execute(
                    &format!(
                        "UPDATE files SET on_conflict = ?3 WHERE {OWNED} AND on_conflict = 'ask'
                             AND {unfinished}"
                    ),
                    params![owner.server, owner.user_id, rule.as_str()],
                )?;
            }
            let queued = tx.execute(
                &format!(
                    "UPDATE files SET state = 'queued', error_code = NULL, error_message = NULL,
                         next_retry_at = NULL, attempts = 0, updated_at = ?3
                     WHERE {waiting} AND on_conflict <> 'ask'"
                ),
                params![owner.server, owner.user_id, now()],
            )?;
            tx.commit()?;
            Ok(queued as u64)
        })
    }

    /// Sets the rule of the files `ids` (files given again with a rule of their own).
    pub(crate) fn set_on_conflict(&self, ids: &[i64], rule: OnConflict) -> Result<()> {
        self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE files SET on_conflict = ?1 WHERE 1 = 1{}",
                    among(Some(ids))
                ),
                [rule.as_str()],
            )?;
            Ok(())
        })
    }

    /// Takes `key` (below the grant's prefix) for file `id` of `owner`, kept beside an object
    /// at its old key — unless another unfinished file of `owner` has that key (`false`).
    pub(crate) fn claim_key(&self, owner: &Owner, id: i64, key: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.savepoint()?;
            let taken: bool = tx.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM files WHERE {OWNED} AND key = ?3 AND id != ?4
                         AND {})",
                    sql_unfinished()
                ),
                params![owner.server, owner.user_id, key, id],
                |r| r.get(0),
            )?;
            if !taken {
                // (An object a PUT left at the old key is no business of the new one.)
                tx.execute(
                    "UPDATE files SET key = ?2, stale_key = NULL, stale_etag = NULL,
                         updated_at = ?3 WHERE id = ?1",
                    params![id, key, now()],
                )?;
            }
            tx.commit()?;
            Ok(!taken)
        })
    }

    /// The ETags of objects at the full key `object_key` that are file `id`'s (at `path`, of
    /// `owner`) own: what `owner`'s uploads of `path` last had confirmed there (by this row or
    /// an earlier one of the same path), and what row `id`'s write (a PUT, or a Complete found
    /// done) stored there while the file changed under it. An object with one of them is the file's own earlier version.
    pub(crate) fn own_objects(
        &self,
        owner: &Owner,
        path: &std::path::Path,
        id: i64,
        object_key: &str,
    ) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT etag FROM (SELECT etag FROM files WHERE {OWNED} AND path = ?3
                     AND object_key = ?4 AND state = 'confirmed' ORDER BY id DESC LIMIT 1)
                 UNION ALL
                 SELECT stale_etag FROM files WHERE id = ?5 AND stale_key = ?4
                     AND stale_etag IS NOT NULL"
            ))?;
            stmt.query_map(
                params![
                    owner.server,
                    owner.user_id,
                    super::files::path_bytes(path),
                    object_key,
                    id
                ],
                |r| r.get(0),
            )?
            .collect()
        })
    }

    /// Records that file `id`'s write (a PUT, or a Complete of its parts) stored `etag` at the
    /// full key `key` with bytes the file no longer holds (it changed meanwhile): the object
    /// is the file's own, and its next upload another one (`rewrites`).
    pub(crate) fn stored_stale(&self, id: i64, key: &str, etag: &str) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE files SET stale_key = ?2, stale_etag = ?3, rewrites = rewrites + 1
                 WHERE id = ?1",
                params![id, key, etag],
            )?;
            Ok(())
        })
    }

    /// The rule file `id` has now (a decision may have come while it uploaded).
    pub(crate) fn on_conflict_of(&self, id: i64) -> Result<Option<OnConflict>> {
        self.with(|c| {
            c.row("SELECT on_conflict FROM files WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|rule| rule.and_then(|r| OnConflict::parse(&r)))
        })
    }

    /// Moves file `id` from `Uploading` to `Skipped` with `code` and `message`: its rule left
    /// the object at its key alone. `false` when it was not uploading any more.
    pub(crate) fn skip_uploading(&self, id: i64, code: &str, message: &str) -> Result<bool> {
        self.with(|c| {
            let changed = c.run(
                "UPDATE files SET state = 'skipped', error_code = ?2, error_message = ?3,
                     next_retry_at = NULL, upload_id = NULL, part_size = NULL, updated_at = ?4
                 WHERE id = ?1 AND state = 'uploading'",
                params![id, code, message, now()],
            )?;
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::journal::NewFile;

    fn alice() -> Owner {
        Owner {
            server: "https://ferry.example".into(),
            user_id: 1,
            user_name: "alice".into(),
        }
    }

    #[test]
    fn a_decision_for_no_file_or_unknown_files_settles_nothing_and_fails_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let file = NewFile {
            path: Path::new("/f/a.txt"),
            key: "a.txt",
            name: "a.txt",
            size: Some(1),
            mtime_ns: Some(1),
            on_conflict: OnConflict::Ask,
        };
        let id = journal.add(&alice(), &file, None).unwrap();
        journal
            .set_state(id, FileState::Queued, FileState::Uploading)
            .unwrap();
        journal.fail(id, "exists", "taken", None).unwrap();
        // An empty list from a page, ids nobody has: nothing queued, the waiting file kept.
        assert_eq!(
            journal
                .decide(&alice(), Some(&[]), OnConflict::Overwrite)
                .unwrap(),
            0
        );
        assert_eq!(
            journal
                .decide(&alice(), Some(&[9999]), OnConflict::Skip)
                .unwrap(),
            0
        );
        journal.set_on_conflict(&[], OnConflict::Rename).unwrap();
        let row = journal.file(id).unwrap().unwrap();
        assert_eq!(
            (row.state, row.on_conflict),
            (FileState::Failed, OnConflict::Ask)
        );
        assert_eq!(
            journal
                .decide(&alice(), Some(&[id]), OnConflict::Skip)
                .unwrap(),
            1
        );
    }

    /// A file's own objects at a key: what its path had confirmed there, and what its write
    /// stored there while it changed — that row's only, at that key only, until its upload
    /// lands.
    #[test]
    fn a_files_own_objects_are_its_confirmed_one_and_the_one_stored_while_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let add = |name: &'static str| {
            let file = NewFile {
                path: Path::new("/f/a.txt"),
                key: name,
                name,
                size: Some(1),
                mtime_ns: Some(1),
                on_conflict: OnConflict::Ask,
            };
            journal.add(&alice(), &file, None).unwrap()
        };
        let (first, second) = (add("a.txt"), add("b.txt"));
        let own = |id| journal.own_objects(&alice(), Path::new("/f/a.txt"), id, "p/a.txt");
        assert!(own(first).unwrap().is_empty());
        let rewrites = |id| journal.file(id).unwrap().unwrap().rewrites;
        assert_eq!(rewrites(first), 0);
        journal.stored_stale(first, "p/a.txt", "\"old\"").unwrap();
        assert_eq!(own(first).unwrap(), ["\"old\""]);
        // Its next upload is another object of the file's, for the app server too.
        assert_eq!(rewrites(first), 1);
        // Another row of the same path, another key: not theirs.
        assert!(own(second).unwrap().is_empty());
        let elsewhere = journal.own_objects(&alice(), Path::new("/f/a.txt"), first, "p/b.txt");
        assert!(elsewhere.unwrap().is_empty());
        // Uploaded and confirmed there: that object is its own; the stale one is forgotten.
        journal
            .set_state(first, FileState::Queued, FileState::Uploading)
            .unwrap();
        let object = crate::journal::Uploaded {
            bucket: "b",
            key: "p/a.txt",
            etag: "\"new\"",
            checksum: "md5:00",
            size: 1,
            mtime_ns: 1,
            sample: "s",
        };
        journal.uploaded(first, &object).unwrap();
        journal
            .set_state(first, FileState::Uploaded, FileState::Confirmed)
            .unwrap();
        assert_eq!(own(first).unwrap(), ["\"new\""]);
        assert_eq!(own(second).unwrap(), ["\"new\""]);
        assert_eq!(
            rewrites(first),
            1,
            "kept once uploaded: it names the object confirmed"
        );
        // Stale again, then kept at another key: the old key's object is no longer its own.
        journal.stored_stale(second, "p/a.txt", "\"old\"").unwrap();
        let mut both = own(second).unwrap();
        both.sort();
        assert_eq!(both, ["\"new\"", "\"old\""]);
        assert!(journal.claim_key(&alice(), second, "a (1).txt").unwrap());
        assert_eq!(own(second).unwrap(), ["\"new\""]);
    }
}
