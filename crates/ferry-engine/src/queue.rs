//! Adding files to the queue: the rules for what becomes a journal row, written once for files
//! the user gives (dropped, picked, `ferry upload`) and files a watched folder finds.
//!
//! - One live row per file, key and account: a file already on its way is not added twice.
//!   A file given at two keys in one go (`ferry upload dir dir/a`) has a row at each.
//! - A file already confirmed unchanged at the same key is not sent again (unless forced).
//! - Two files never share a key: the second is skipped with `key_conflict`.
//! - Inside a given folder, links are not followed (a link to `~/.ssh/id_rsa` is not an
//!   upload); a link given on purpose is.
//! - What the user gives resumes a paused or failed row, and replaces a row of the same file
//!   at another key left by an earlier intake (its multipart upload is aborted); what a
//!   watcher finds leaves a cancelled or skipped file alone until it changes.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::conflict::{OnConflict, renamed_from};
use crate::error::{Error, Result};
use crate::journal::{FileRow, FileState, Journal, NewFile, Owner, Skip};

/// Deepest folder nesting walked, by hand or by a watcher.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a folder is not walked.
pub(crate) const TOO_DEEP: (&str, &str) = (
    "too_deep",
    "folders nested more than 64 deep are not walked",
);

const KEY_CONFLICT: (&str, &str) = (
    "key_conflict",
    "another file in the queue has the same object key",
);

/// Who asked for a file, which decides how an existing row is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// The user gave it: resume, replace, or report it already uploaded.
    Given {
        /// Send it again even if it is confirmed unchanged.
        force: bool,
    },
    /// A watched folder found it: add it only if nothing is known of it as it is now.
    Found,
}

/// What adding files did.
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// The row of each file, in the order given (new, resumed, or the confirmed one).
    pub(crate) ids: Vec<i64>,
    /// Rows replaced by a row at another key: their tasks must stop.
    pub(crate) replaced: Vec<i64>,
    /// Rows taken as the file's that were confirmed, the file unchanged: not sent again.
    pub(crate) confirmed_before: HashSet<i64>,
    /// Whether anything became runnable.
    pub(crate) queued: bool,
}

/// A file a walk of what the user gave found, or a path it does not walk into.
#[derive(Debug)]
pub(crate) struct Found {
    path: PathBuf,
    /// Its key's path: relative to the parent of what was given (`dir/a.txt` for `dir`).
    relative: PathBuf,
    /// Why it is not added (a link inside a folder, a folder too deep), if it is not.
    refused: Option<(&'static str, &'static str)>,
    /// How it looked during the walk (looked at then, not while the journal is held).
    look: Option<Look>,
}

/// What the user gave, as files: a file, or a folder walked recursively (in name order).
/// Reads the file system only — the journal is written afterwards, for many files at once.
pub(crate) fn found_in(given: &Path) -> Result<Vec<Found>> {
    let path = clean_path(given)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut found = Vec::new();
    walk(&base, &path, 0, &mut found)?;
    Ok(found)
}

fn walk(base: &Path, path: &Path, depth: usize, found: &mut Vec<Found>) -> Result<()> {
    let relative = path.strip_prefix(base).unwrap_or(path).to_owned();
    let refused = |why| Found {
        path: path.to_owned(),
        relative: relative.clone(),
        refused: Some(why),
        look: std::fs::symlink_metadata(path).ok().map(|m| Look::of(&m)),
    };
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    // A link inside a given folder is not followed (that also ends link loops).
    if link && depth > 0 {
        found.push(refused((
            "symlink",
            "links inside a folder are not followed",
        )));
        return Ok(());
    }
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    if is_dir && depth > MAX_DEPTH {
        found.push(refused(TOO_DEEP));
        return Ok(());
    }
    if is_dir {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(Error::io(format!("reading {}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            walk(base, &entry, depth + 1, found)?;
        }
        return Ok(());
    }
    found.push(Found {
        path: path.to_owned(),
        relative,
        refused: None,
        look: std::fs::metadata(path).ok().map(|m| Look::of(&m)),
    });
    Ok(())
}

/// Rows of a file read to find its row at a key (a file has a row for each time it was
/// given at another key or changed; the newest few say what matters).
const ROWS_WEIGHED: usize = 16;

/// Adds files for one account.
pub(crate) struct Intake<'a> {
    journal: &'a Journal,
    owner: &'a Owner,
    intent: Intent,
    /// Keys taken in this batch, by the path that took them.
    batch: HashMap<String, PathBuf>,
    /// The row this batch listed for each file at each key it was named at.
    named: HashMap<(PathBuf, String), i64>,
    /// The rows in `named`.
    taken: HashSet<i64>,
    /// What the files added do when their key holds an object at the store.
    on_conflict: OnConflict,
    pub(crate) added: Added,
}

/// How a file looks now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
}

impl Look {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.len(),
            mtime_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64),
        }
    }

    fn matches(self, row: &FileRow) -> bool {
        row.size == Some(self.size) && row.mtime_ns == Some(self.mtime_ns)
    }
}

/// `path` made absolute, with `.` and `..` resolved by name, so `ferry upload .` or `a/..`
/// never yield keys starting with `./` or `../`.
pub(crate) fn clean_path(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(Error::io(format!("{}", path.display())))?;
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    Ok(clean)
}

impl<'a> Intake<'a> {
    pub(crate) fn new(journal: &'a Journal, owner: &'a Owner, intent: Intent) -> Self {
        Self {
            journal,
            owner,
            intent,
            batch: HashMap::new(),
            named: HashMap::new(),
            taken: HashSet::new(),
            on_conflict: OnConflict::default(),
            added: Added::default(),
        }
    }

    /// What the files added do when their key already holds an object at the store (given
    /// again, a file waiting in the queue takes the rule too).
    pub(crate) fn on_conflict(mut self, rule: OnConflict) -> Self {
        self.on_conflict = rule;
        self
    }

    /// Adds what a walk of what the user gave found (see [`found_in`]).
    pub(crate) fn add_found(&mut self, found: &Found) -> Result<()> {
        match &found.refused {
            None => self.add_looked(&found.path, "", &found.relative, found.look),
            Some(why) => {
                let key = crate::key::object_key("", &found.relative).unwrap_or_default();
                self.refuse(&found.path, &key, found.look, *why)
            }
        }
    }

    /// Records a folder found too deep to walk, under `prefix` + `relative`, as skipped.
    pub(crate) fn too_deep(&mut self, path: &Path, prefix: &str, relative: &Path) -> Result<()> {
        let key = crate::key::object_key(prefix, relative).unwrap_or_default();
        let look = std::fs::symlink_metadata(path).ok().map(|m| Look::of(&m));
        self.refuse(path, &key, look, TOO_DEEP)
    }

    /// Adds one file whose key is `prefix` + `relative`.
    pub(crate) fn add_file(&mut self, path: &Path, prefix: &str, relative: &Path) -> Result<()> {
        let look = std::fs::metadata(path).ok().map(|m| Look::of(&m));
        self.add_looked(path, prefix, relative, look)
    }

    /// Adds one file as `look` says it is.
    fn add_looked(
        &mut self,
        path: &Path,
        prefix: &str,
        relative: &Path,
        look: Option<Look>,
    ) -> Result<()> {
        let key = match crate::key::object_key(prefix, relative) {
            Ok(key) => key,
            Err(refusal) => return self.refuse(path, "", look, refusal),
        };
        let named = (path.to_owned(), key);
        if let Some(&id) = self.named.get(&named) {
            // Named again at the same key (`ferry upload a a`): one file, listed again.
            self.added.ids.push(id);
            return Ok(());
        }
        let listed = self.added.ids.len();
        self.add_at(path, named.1.clone(), look)?;
        if let Some(&id) = self.added.ids.get(listed) {
            self.named.insert(named, id);
            self.taken.insert(id);
        }
        Ok(())
    }

    /// Adds one file at `key`.
    fn add_at(&mut self, path: &Path, key: String, look: Option<Look>) -> Result<()> {
        let latest = self.row_to_weigh(path, &key)?;
        // Kept beside another object (`name (1).ext`): that copy is its own.
        let key = match &latest {
            Some(row) if renamed_from(&row.key, &key) => row.key.clone(),
            _ => key,
        };
        if self.batch.get(&key).is_some_and(|p| p != path) {
            return self.refuse(path, &key, look, KEY_CONFLICT);
        }
        self.batch.insert(key.clone(), path.to_owned());
        if let Some(row) = &latest
            && let Some(id) = self.existing(row, &key, look)?
        {
            if row.state == FileState::Confirmed {
                self.added.confirmed_before.insert(id);
            }
            return self.keep(id);
        }
        if self
            .journal
            .live_with_key(self.owner, &key, path)?
            .is_some()
        {
            return self.refuse(path, &key, look, KEY_CONFLICT);
        }
        let id = self.insert(path, &key, look, None, self.on_conflict)?;
        self.added.ids.push(id);
        self.added.queued = true;
        Ok(())
    }

    /// The row of the file `existing` weighs for `key`: the path's newest, unless a row at
    /// this key says more. A file may have rows at several keys (given at two in one go,
    /// `ferry upload dir dir/a`): its row here still on its way is the one to go on with (a
    /// second would send the file twice to one key), and its row here confirmed says it is
    /// here already when nothing else of it is under way. Rows this batch took for the file
    /// at another key are passed over: each key named gets its own row (a file given again
    /// later at another key moves there: see `existing`).
    fn row_to_weigh(&self, path: &Path, key: &str) -> Result<Option<FileRow>> {
        let rows = self
            .journal
            .newest_for_path(self.owner, path, ROWS_WEIGHED)?;
        let given = matches!(self.intent, Intent::Given { .. });
        let mut ours = rows
            .into_iter()
            .filter(|row| !(given && self.taken.contains(&row.id)));
        let newest = ours.next();
        let at_key = |row: &FileRow| row.key == key || renamed_from(&row.key, key);
        let here = match &newest {
            Some(row) if at_key(row) => return Ok(newest),
            _ => ours.find(at_key),
        };
        Ok(match here {
            Some(row) if !row.state.is_final() => Some(row),
            Some(row)
                if row.state == FileState::Confirmed
                    && newest.as_ref().is_none_or(|n| n.state.is_final()) =>
            {
                Some(row)
            }
            _ => newest,
        })
    }

    /// What to do with the newest row of the file: `Some(id)` when it stands for the file as
    /// it is (nothing is added), `None` when a new row is needed.
    fn existing(&mut self, row: &FileRow, key: &str, look: Option<Look>) -> Result<Option<i64>> {
        let unchanged = look.is_some_and(|l| l.matches(row));
        match (self.intent, row.state) {
            // Waiting for a decision, found by a folder whose rule now says what to do (the
            // rule changed, or `ferry watch --on-conflict` says it): settled by that rule.
            (Intent::Found, FileState::Failed)
                if row.error_code.as_deref() == Some("exists")
                    && self.on_conflict != OnConflict::Ask =>
            {
                self.journal.set_on_conflict(&[row.id], self.on_conflict)?;
                self.retry_found(row.id)
            }
            // Failed for good because it was gone or unreadable, or failed and changed since:
            // found again as it is now, it is tried again.
            (Intent::Found, FileState::Failed)
                if row.next_retry_at.is_none()
                    && (!unchanged
                        || matches!(
                            row.error_code.as_deref(),
                            Some("file_missing" | "file_unreadable")
                        )) =>
            {
                self.retry_found(row.id)
            }
            (Intent::Found, state) if !state.is_final() => Ok(Some(row.id)),
            (Intent::Found, FileState::Confirmed) if row.key == key && unchanged => {
                Ok(Some(row.id))
            }
            (Intent::Found, FileState::Cancelled | FileState::Skipped) if unchanged => {
                Ok(Some(row.id))
            }
            (Intent::Found, _) => Ok(None),
            (Intent::Given { force }, FileState::Confirmed) => {
                let same = row.key == key && unchanged && !force;
                Ok(same.then_some(row.id))
            }
            (Intent::Given { .. }, state) if state.is_final() => Ok(None),
            (Intent::Given { .. }, _) if row.key == key => {
                // Given again with a choice, a waiting file takes it (asking again undoes none).
                if self.on_conflict != OnConflict::Ask {
                    self.journal.set_on_conflict(&[row.id], self.on_conflict)?;
                }
                let resumed = self.journal.move_states(
                    self.owner,
                    Some(&[row.id]),
                    &[FileState::Paused, FileState::Failed],
                    FileState::Queued,
                )?;
                self.added.queued |= !resumed.is_empty() || row.state == FileState::Queued;
                Ok(Some(row.id))
            }
            // Stored and waiting for its confirmation: that one finishes; the new key is a new
            // upload.
            (Intent::Given { .. }, FileState::Uploaded) => Ok(None),
            (Intent::Given { .. }, _) => {
                self.replace(row)?;
                Ok(None)
            }
        }
    }

    /// Queues a failed file a watched folder found again; its row stands for the file.
    fn retry_found(&mut self, id: i64) -> Result<Option<i64>> {
        let resumed = self.journal.move_states(
            self.owner,
            Some(&[id]),
            &[FileState::Failed],
            FileState::Queued,
        )?;
        self.added.queued |= !resumed.is_empty();
        Ok(Some(id))
    }

    /// Cancels a row whose file is now wanted at another key, and leaves its multipart upload
    /// to be aborted.
    fn replace(&mut self, row: &FileRow) -> Result<()> {
        let from = [
            FileState::Queued,
            FileState::Uploading,
            FileState::Paused,
            FileState::Failed,
        ];
        let moved =
            self.journal
                .move_states(self.owner, Some(&[row.id]), &from, FileState::Cancelled)?;
        if moved.is_empty() {
            return Ok(());
        }
        if let (Some(key), Some(upload_id)) = (&row.object_key, &row.upload_id) {
            self.journal.abandon(self.owner, key, upload_id)?;
        }
        self.added.replaced.push(row.id);
        Ok(())
    }

    /// Adds the file as skipped, unless its newest row already says so for the file as it is.
    fn refuse(
        &mut self,
        path: &Path,
        key: &str,
        look: Option<Look>,
        why: (&str, &str),
    ) -> Result<()> {
        let latest = self.journal.latest_for_path(self.owner, path)?;
        let id = match latest {
            Some(row)
                if row.state == FileState::Skipped
                    && row.error_code.as_deref() == Some(why.0)
                    && look.is_some_and(|l| l.matches(&row)) =>
            {
                return self.keep(row.id);
            }
            _ => self.insert(path, key, look, Some(why), self.on_conflict)?,
        };
        self.added.ids.push(id);
        Ok(())
    }

    /// Takes an existing row as the file's: given again by the user, a row cleared from the
    /// queue's view shows again (what a watcher finds again stays out of view).
    fn keep(&mut self, id: i64) -> Result<()> {
        if matches!(self.intent, Intent::Given { .. }) {
            self.journal.reveal(id)?;
        }
        self.added.ids.push(id);
        Ok(())
    }

    fn insert(
        &self,
        path: &Path,
        key: &str,
        look: Option<Look>,
        skip: Skip<'_>,
        on_conflict: OnConflict,
    ) -> Result<i64> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = NewFile {
            path,
            key,
            name: &name,
            size: look.map(|l| l.size),
            mtime_ns: look.map(|l| l.mtime_ns),
            on_conflict,
        };
        self.journal.add(self.owner, &file, skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_and_dot_segments_resolved_by_name() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(clean_path(Path::new(".")).unwrap(), cwd);
        assert_eq!(
            clean_path(Path::new("/a/b/../c/./d")).unwrap(),
            Path::new("/a/c/d")
        );
        assert_eq!(clean_path(Path::new("/a/..")).unwrap(), Path::new("/"));
    }
}
