//! When a file's object key already holds an object: overwrite it (S3's own behaviour, and
//! the default), skip the file, upload under a free name (`name (1).ext`), or overwrite only
//! when the local file is newer. Asked once per upload, before its first byte: an object this
//! account put there itself (its journal has that ETag at that key) or one with the same bytes
//! is no conflict — the file's own earlier upload, or an answer lost on the way.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Shared;
use super::source::{Fingerprint, hash_span};
use crate::dialect::same_etag;
use crate::error::{Error, Result};
use crate::journal::{FileRow, Owner};
use crate::storage::Who;

/// What to do when the key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// Replace the object.
    #[default]
    Overwrite,
    /// Leave the object; the file is skipped (`exists`).
    Skip,
    /// Upload under the first free `name (n).ext`.
    Rename,
    /// Replace the object only when the local file was modified after it was stored.
    Newer,
}

impl Conflict {
    /// Every rule, as the CLI and settings name them.
    pub const ALL: [Conflict; 4] = [Self::Overwrite, Self::Skip, Self::Rename, Self::Newer];

    /// The rule's name (`overwrite`, `skip`, `rename`, `newer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overwrite => "overwrite",
            Self::Skip => "skip",
            Self::Rename => "rename",
            Self::Newer => "newer",
        }
    }
}

impl FromStr for Conflict {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of overwrite, skip, rename, newer"))
    }
}

/// Names tried for a free key at most, after the key itself.
const RENAMES: u32 = 99;

/// `dir/name (n).ext` for `dir/name.ext` (the extension is what follows the last dot of the
/// name, unless the name starts with it: `.bashrc (1)`).
pub(crate) fn renamed(key: &str, n: u32) -> String {
    let (dir, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    let renamed = format!("{stem} ({n}){ext}");
    match dir {
        "" => renamed,
        dir => format!("{dir}/{renamed}"),
    }
}

/// The relative key to upload `row` under, given `prefix` (the grant's) and the account's
/// rule; a file the rule leaves alone is an `exists` error (the caller records it skipped).
/// The journal's key changes with a rename.
pub(super) async fn resolve(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
    prefix: &str,
    print: &Fingerprint,
) -> Result<String> {
    let rule = shared.settings.on_conflict;
    // A multipart upload under way passed this check when it began.
    if rule == Conflict::Overwrite || row.upload_id.is_some() {
        return Ok(row.key.clone());
    }
    let who = Who::file(owner, row.id);
    let full = format!("{prefix}{}", row.key);
    let Some(head) = shared.storage.head(&who, &full).await? else {
        return Ok(row.key.clone());
    };
    if ours(shared, row, owner, &full, &head.etag, head.size, print).await? {
        return Ok(row.key.clone());
    }
    let exists = |why: &str| Error::File {
        path: row.path.display().to_string(),
        code: "exists",
        reason: format!("{full} already exists in the store; {why}"),
    };
    match rule {
        Conflict::Overwrite => Ok(row.key.clone()),
        Conflict::Skip => Err(exists("left as it is (conflict rule: skip)")),
        Conflict::Newer => {
            let local =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(print.mtime_ns)).ok();
            match (local, head.modified) {
                (Some(local), Some(stored)) if local > stored => Ok(row.key.clone()),
                _ => Err(exists(
                    "the stored one is as new or newer (conflict rule: overwrite if newer)",
                )),
            }
        }
        Conflict::Rename => {
            for n in 1..=RENAMES {
                let key = renamed(&row.key, n);
                let (id, path, taken_here) = (row.id, row.path.clone(), key.clone());
                let for_owner = owner.clone();
                let queued = shared
                    .db(move |j| j.live_with_key(&for_owner, &taken_here, &path))
                    .await?;
                if queued.is_some() {
                    continue;
                }
                if shared
                    .storage
                    .head(&who, &format!("{prefix}{key}"))
                    .await?
                    .is_none()
                {
                    let recorded = key.clone();
                    shared.db(move |j| j.set_key(id, &recorded)).await?;
                    tracing::info!(file_id = id, key = %key, "the key was taken; uploading under a new name");
                    return Ok(key);
                }
            }
            Err(exists(&format!("and so are {RENAMES} other names for it")))
        }
    }
}

/// Whether the object at `full` is this file's own: put there by this account (its journal
/// has that ETag at that key), or holding the same bytes (a single-PUT file whose MD5 is the
/// ETag — an earlier attempt whose answer was lost).
async fn ours(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
    full: &str,
    etag: &str,
    size: u64,
    print: &Fingerprint,
) -> Result<bool> {
    let (for_owner, key, tag) = (owner.clone(), full.to_owned(), etag.to_owned());
    if shared
        .db(move |j| j.stored_by(&for_owner, &key, &tag))
        .await?
    {
        return Ok(true);
    }
    if size != print.size || size >= shared.settings.single_put_threshold {
        return Ok(false);
    }
    let (md5, _) = hash_span(Path::new(&row.path), 0, size).await?;
    Ok(same_etag(etag, &hex::encode(md5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_key_numbers_the_name_before_its_extension() {
        assert_eq!(renamed("a.txt", 1), "a (1).txt");
        assert_eq!(renamed("dir/photo.tar.gz", 2), "dir/photo.tar (2).gz");
        assert_eq!(renamed("dir/README", 3), "dir/README (3)");
        assert_eq!(renamed(".bashrc", 1), ".bashrc (1)");
        assert_eq!(renamed("a.b/c", 1), "a.b/c (1)");
        assert_eq!("rename".parse::<Conflict>(), Ok(Conflict::Rename));
        assert!("ask".parse::<Conflict>().is_err());
    }
}
