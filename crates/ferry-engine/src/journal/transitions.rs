//! Changes of state, each a compare-and-set on the state the caller saw (see [`super::state`]),
//! and the user's moves (pause, resume, cancel) — only ever on one account's files.

use rusqlite::params;

use super::files::{COLUMNS, OWNED, file_from_row};
use super::state::sql_list;
use super::{Cached, FileRow, FileState, Journal, Owner, now};
use crate::error::{Error, Result};

impl Journal {
    /// Moves a file from `from` — the state the caller saw — to `to`; `false` when the file
    /// is no longer in `from` (the race is lost, and nothing is written) or the state table
    /// does not allow the move. Clears the error and the retry time.
    pub fn set_state(&self, id: i64, from: FileState, to: FileState) -> Result<bool> {
        if !to.reached_from().contains(&from) {
            return Ok(false);
        }
        // A file that starts uploading again must not keep the ETag of an earlier upload: only
        // `uploaded` writes it, for the bytes just sent.
        let fresh = if to == FileState::Uploading {
            ", etag = NULL, checksum = NULL"
        } else {
            ""
        };
        self.with(|c| {
            let changed = c.run(
                &format!(
                    "UPDATE files SET state = ?3, error_code = NULL, error_message = NULL,
                         next_retry_at = NULL, updated_at = ?4{fresh} WHERE id = ?1 AND state = ?2"
                ),
                params![id, from.as_str(), to.as_str(), now()],
            )?;
            Ok(changed == 1)
        })
    }

    /// Moves `owner`'s files of `ids` that are still `Uploaded` to `Confirmed`, in one
    /// transaction (a batch the app server recorded for `owner`); returns those moved.
    pub(crate) fn confirm_uploaded(&self, owner: &Owner, ids: &[i64]) -> Result<Vec<i64>> {
        let moves: Vec<_> = ids.iter().map(|&id| (id, FileState::Uploaded)).collect();
        self.move_each(owner, &moves, FileState::Confirmed)
    }

    /// Moves each of `owner`'s files in `rows` (id, state it was read in) to `Uploading`, in
    /// one transaction: the scheduler's claim on the files it starts. Returns the ids moved —
    /// a file whose state changed since it was read (paused, cancelled) is left as it is.
    pub(crate) fn claim(&self, owner: &Owner, rows: &[(i64, FileState)]) -> Result<Vec<i64>> {
        self.move_each(owner, rows, FileState::Uploading)
    }

    /// Moves each of `owner`'s files in `moves` from the state given with it to `to`, in one
    /// transaction, as [`Journal::set_state`] would one by one; returns the ids moved.
    fn move_each(
        &self,
        owner: &Owner,
        moves: &[(i64, FileState)],
        to: FileState,
    ) -> Result<Vec<i64>> {
        let moves: Vec<_> = moves
            .iter()
            .filter(|(_, from)| to.reached_from().contains(from))
            .collect();
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        // A file that starts uploading again forgets an earlier upload's ETag.
        let fresh = match to {
            FileState::Uploading => ", etag = NULL, checksum = NULL",
            _ => "",
        };
        let sql = format!(
            "UPDATE files SET state = ?4, error_code = NULL, error_message = NULL,
                 next_retry_at = NULL, updated_at = ?5{fresh}
             WHERE {OWNED} AND id = ?3 AND state = ?6"
        );
        self.with(|c| {
            let tx = c.savepoint()?;
            let mut moved = Vec::with_capacity(moves.len());
            for &&(id, from) in &moves {
                let params = params![
                    owner.server,
                    owner.user_id,
                    id,
                    to.as_str(),
                    now(),
                    from.as_str()
                ];
                if tx.run(&sql, params)? == 1 {
                    moved.push(id);
                }
            }
            tx.commit()?;
            Ok(moved)
        })
    }

    /// Like [`Journal::set_state`], but a refusal is [`Error::StateChanged`].
    pub(crate) fn expect_state(&self, id: i64, from: FileState, to: FileState) -> Result<()> {
        if self.set_state(id, from, to)? {
            return Ok(());
        }
        Err(self.state_changed(id))
    }

    pub(super) fn state_changed(&self, id: i64) -> Error {
        let found = self
            .file(id)
            .ok()
            .flatten()
            .map_or("removed", |r| r.state.as_str());
        Error::StateChanged { found }
    }

    /// Moves `owner`'s files in one of `from` to `to` (all of them when `ids` is `None`);
    /// returns the ids moved. Each move is also checked against the state table, and against
    /// the state it was seen in.
    pub fn move_states(
        &self,
        owner: &Owner,
        ids: Option<&[i64]>,
        from: &[FileState],
        to: FileState,
    ) -> Result<Vec<i64>> {
        let from: Vec<FileState> = from
            .iter()
            .copied()
            .filter(|s| to.reached_from().contains(s))
            .collect();
        let states = sql_list(&from);
        if from.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|c| {
            let tx = c.savepoint()?;
            let mut moved = Vec::new();
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT id, state FROM files WHERE {OWNED} AND state IN ({states})"
                ))?;
                let rows = stmt.query_map(params![owner.server, owner.user_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (id, state) = row?;
                    if ids.is_none_or(|ids| ids.contains(&id)) {
                        moved.push((id, state));
                    }
                }
            }
            for (id, state) in &moved {
                tx.run(
                    "UPDATE files SET state = ?3, next_retry_at = NULL, updated_at = ?4
                     WHERE id = ?1 AND state = ?2",
                    params![id, state, to.as_str(), now()],
                )?;
            }
            tx.commit()?;
            Ok(moved.into_iter().map(|(id, _)| id).collect())
        })
    }

    /// Resumes `owner`'s paused and failed files (all when `ids` is `None`): back to `Queued`,
    /// or to `Uploaded` when the store has the object and only its confirmation failed (unless
    /// the app server found the object missing or different: then it is sent again). The
    /// attempts start again from zero: the user asked. Returns the files moved and where to.
    pub fn resume(&self, owner: &Owner, ids: Option<&[i64]>) -> Result<Vec<(i64, FileState)>> {
        self.restart(owner, ids, &[FileState::Paused, FileState::Failed])
    }

    /// Like [`Journal::resume`], for failed files only: paused ones stay paused (the user
    /// paused them; "retry" does not undo that). Uploaded files whose confirmation waits for
    /// its next attempt are confirmed now (their attempts start again too).
    pub fn retry(&self, owner: &Owner, ids: Option<&[i64]>) -> Result<Vec<(i64, FileState)>> {
        let mut moved = self.restart(owner, ids, &[FileState::Failed])?;
        moved.extend(self.confirm_now(owner, ids)?);
        Ok(moved)
    }

    /// `owner`'s uploaded files (all when `ids` is `None`) waiting for their confirmation's
    /// next attempt, due now. (One whose time has come already is being confirmed or about to
    /// be: left to that.)
    fn confirm_now(&self, owner: &Owner, ids: Option<&[i64]>) -> Result<Vec<(i64, FileState)>> {
        let ids = ids.map(|ids| serde_json::to_string(ids).unwrap_or_default());
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "UPDATE files SET next_retry_at = NULL, attempts = 0, updated_at = ?4
                 WHERE {OWNED} AND state = 'uploaded' AND next_retry_at > ?4
                   AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))
                 RETURNING id"
            ))?;
            stmt.query_map(params![owner.server, owner.user_id, ids, now()], |r| {
                Ok((r.get(0)?, FileState::Uploaded))
            })?
            .collect()
        })
    }

    /// Moves `owner`'s files in one of `states` back to work.
    fn restart(
        &self,
        owner: &Owner,
        ids: Option<&[i64]>,
        states: &[FileState],
    ) -> Result<Vec<(i64, FileState)>> {
        let states: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let rows: Vec<FileRow> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE {OWNED} AND state IN ({})",
                states.join(", ")
            ))?;
            stmt.query_map(params![owner.server, owner.user_id], file_from_row)?
                .collect()
        })?;
        let mut moved = Vec::new();
        for row in rows {
            if ids.is_some_and(|ids| !ids.contains(&row.id)) {
                continue;
            }
            let stored = row.state == FileState::Failed
                && row.etag.is_some()
                && row.upload_id.is_none()
                && !matches!(
                    row.error_code.as_deref(),
                    Some("object_missing" | "object_mismatch")
                );
            let to = if stored {
                FileState::Uploaded
            } else {
                FileState::Queued
            };
            if self.set_state(row.id, row.state, to)? {
                self.with(|c| {
                    c.run("UPDATE files SET attempts = 0 WHERE id = ?1", [row.id])?;
                    Ok(())
                })?;
                moved.push((row.id, to));
            }
        }
        Ok(moved)
    }
}
