//! What happens when a file's key already holds an object at the store: the rule each file
//! carries ([`OnConflict`]), and how the rule is applied before and while the file is written.
//!
//! Nothing at the store is replaced unless the rule says so. Where the store can make a write
//! conditional (S3's `If-None-Match: *`, OSS's `x-oss-forbid-overwrite`) a write that must not
//! replace an object is sent so, and the store refuses it if one is there — no other writer
//! can slip in between a look and the write. Where it cannot (OBS, JD Cloud), and before a
//! multipart upload (whose parts would be sent in vain), the object is looked at first
//! (HEAD). "Overwrite if newer" always looks: it compares the file's modification time with
//! the object's `Last-Modified`.
//!
//! A file whose rule is "ask" waits, failed with `exists`, until the user decides
//! ([`crate::Engine::decide`]); its decision becomes its rule and it is queued again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dialect::same_etag;
use crate::error::{Error, Result};
use crate::journal::FileRow;
use crate::storage::{ObjectHead, Who};
use crate::transfer::Shared;

/// Renamed copies tried at most (`name (1).ext` … `name (99).ext`).
const MAX_RENAMES: u32 = 99;

/// What to do when the key already holds an object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Wait for the user to decide (the file fails with `exists` until then).
    #[default]
    Ask,
    /// Leave the object; the file is skipped.
    Skip,
    /// Replace the object.
    Overwrite,
    /// Keep both: the file goes to the first free `name (n).ext`.
    Rename,
    /// Replace the object only if the file was modified after it was stored; else skip.
    Newer,
}

impl OnConflict {
    /// Every rule.
    pub const ALL: [OnConflict; 5] = [
        OnConflict::Ask,
        OnConflict::Skip,
        OnConflict::Overwrite,
        OnConflict::Rename,
        OnConflict::Newer,
    ];

    /// The rule as stored and as the CLI names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::Skip => "skip",
            Self::Overwrite => "overwrite",
            Self::Rename => "rename",
            Self::Newer => "newer",
        }
    }

    /// The rule named `value`, if one is.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

impl std::str::FromStr for OnConflict {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::parse(value).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
            format!("{value:?} is not one of {}", names.join(", "))
        })
    }
}

/// How a write may treat an object already at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Replace it.
    Replace,
    /// Refuse to (sent as a conditional write where the store takes one).
    OnlyNew,
    /// Nothing to write: the key holds the file's very bytes (a file sent in one PUT).
    Present,
}

/// Where a file goes and how its write treats what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The full key.
    pub(crate) key: String,
    pub(crate) write: Write,
}

/// The error of a file that waits for the user's decision.
fn exists(row: &FileRow, key: &str) -> Error {
    Error::File {
        path: row.path.display().to_string(),
        code: "exists",
        reason: format!(
            "{key} is already at the store; choose to overwrite it, keep both (upload under \
             another name) or skip the file"
        ),
    }
}

/// The refusal a conditional write gets when the key holds an object (S3's `412
/// PreconditionFailed`), made by the engine where it looked first.
pub(crate) fn object_there(operation: &'static str, message: &str) -> Error {
    Error::Storage {
        operation,
        status: 412,
        code: "PreconditionFailed".into(),
        message: message.into(),
        request_id: None,
    }
}

/// Whether a store refusal says the object exists (a conditional write refused).
pub(crate) fn is_exists_refusal(err: &Error) -> bool {
    matches!(err, Error::Storage { status: 412, code, .. } if code == "PreconditionFailed")
        || matches!(err, Error::Storage { status: 409, code, .. } if code == "FileAlreadyExists")
}

/// `key` with ` (n)` before its extension: `dir/name (2).ext`; a name that is all extension
/// (`.profile`) or has none gets it at its end.
pub(crate) fn numbered(key: &str, n: u32) -> String {
    let (dir, name) = match key.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), key),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    format!("{dir}{stem} ({n}){ext}")
}

/// Whether `key` is `original` renamed to keep both (`name (n).ext`).
pub(crate) fn renamed_from(key: &str, original: &str) -> bool {
    // Only a key longer by " (n)" can be one: most are not, and cost a comparison of lengths.
    let extra = key.len().saturating_sub(original.len());
    (4..=5).contains(&extra) && (1..=MAX_RENAMES).any(|n| numbered(original, n) == key)
}

/// How a file's write finds out about an object at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Looking {
    /// The object is looked at before anything is sent (a multipart upload, a store that
    /// cannot refuse).
    pub(crate) first: bool,
    /// The store refuses a conditional write when the key holds an object.
    pub(crate) store_refuses: bool,
}

/// What a look (HEAD) at a key found.
enum Look {
    Missing,
    Found(ObjectHead),
    /// The grant may not look (its policy allows writes only).
    Forbidden,
}

async fn look(shared: &Shared, who: &Who<'_>, key: &str) -> Result<Look> {
    match shared.storage.head(who, key).await {
        Ok(None) => Ok(Look::Missing),
        Ok(Some(object)) => Ok(Look::Found(object)),
        Err(Error::Storage { status: 403, .. }) => Ok(Look::Forbidden),
        Err(err) => Err(err),
    }
}

/// Applies `row`'s rule to its write to `prefix` + `row.key`: the key and the write's
/// condition, or the error that ends this attempt (`exists` to ask, [`Error::Kept`] to skip).
pub(crate) async fn settle(
    shared: &Arc<Shared>,
    row: &FileRow,
    who: &Who<'_>,
    prefix: &str,
    looking: Looking,
) -> Result<Settled> {
    let key = format!("{prefix}{}", row.key);
    let rule = row.on_conflict;
    let only_new = |key| Settled {
        key,
        write: Write::OnlyNew,
    };
    if rule == OnConflict::Overwrite {
        return Ok(Settled {
            key,
            write: Write::Replace,
        });
    }
    if !looking.first && rule != OnConflict::Newer {
        return Ok(only_new(key));
    }
    match look(shared, who, &key).await? {
        Look::Missing => Ok(only_new(key)),
        Look::Found(object) => found(shared, row, who, prefix, key, &object).await,
        // The store's refusal will tell (rules that need the object's date cannot be kept).
        Look::Forbidden if looking.store_refuses && rule != OnConflict::Newer => Ok(only_new(key)),
        Look::Forbidden => unknown(row, &key),
    }
}

/// A file whose key cannot be looked at, on a store that cannot refuse to replace (or for a
/// rule that needs the object's date): skipped if its rule says skip, else it waits for the
/// user like a file whose key is taken — never sent over what may be there.
fn unknown(row: &FileRow, key: &str) -> Result<Settled> {
    let path = row.path.display().to_string();
    let why = "the storage credentials may not look at stored files, and this store cannot \
               refuse to replace one";
    match row.on_conflict {
        OnConflict::Skip => Err(Error::Kept {
            path,
            code: "exists",
            reason: format!("{key} may be at the store already ({why}); skipped, as asked"),
        }),
        _ => Err(Error::File {
            path,
            code: "exists",
            reason: format!(
                "{key} may be at the store already ({why}); choose Overwrite to send it \
                 anyway, or Skip"
            ),
        }),
    }
}

/// The key and condition of a file whose multipart upload was begun: settled when it began
/// (the condition still guards its Complete).
pub(crate) fn begun(row: &FileRow, prefix: &str) -> Settled {
    Settled {
        key: format!("{prefix}{}", row.key),
        write: match row.on_conflict {
            OnConflict::Overwrite => Write::Replace,
            _ => Write::OnlyNew,
        },
    }
}

/// Settles `row` again after the store refused its write to `key` for an object there.
pub(crate) async fn refused(
    shared: &Arc<Shared>,
    row: &FileRow,
    who: &Who<'_>,
    prefix: &str,
    key: &str,
) -> Result<Settled> {
    match look(shared, who, key).await? {
        // Gone again meanwhile: the write is tried again as it was.
        Look::Missing => Ok(Settled {
            key: key.to_owned(),
            write: Write::OnlyNew,
        }),
        Look::Found(object) => found(shared, row, who, prefix, key.to_owned(), &object).await,
        // The store refused for an object there; which one cannot be read.
        Look::Forbidden => match row.on_conflict {
            OnConflict::Skip => Err(Error::Kept {
                path: row.path.display().to_string(),
                code: "exists",
                reason: format!("{key} is already at the store; skipped, as asked"),
            }),
            _ => Err(exists(row, key)),
        },
    }
}

/// What `row`'s rule does with the object found at `key` — unless the object is the file's
/// own earlier version (what it stored there and had confirmed, or what its PUT stored there
/// while the file changed; same ETag), which it updates, or holds the file's very bytes (what
/// a run stopped right after its PUT leaves), which is taken as the file's upload.
async fn found(
    shared: &Arc<Shared>,
    row: &FileRow,
    who: &Who<'_>,
    prefix: &str,
    key: String,
    object: &ObjectHead,
) -> Result<Settled> {
    let (owner, path, id, at) = (who.owner.clone(), row.path.clone(), row.id, key.clone());
    let (ours, rule) = shared
        .db(move |j| {
            Ok((
                j.own_objects(&owner, &path, id, &at)?,
                j.on_conflict_of(id)?,
            ))
        })
        .await?;
    if ours.iter().any(|etag| same_etag(etag, &object.etag)) {
        return Ok(Settled {
            key,
            write: Write::Replace,
        });
    }
    let single_put = object.size < shared.settings().single_put_threshold;
    if single_put && crate::transfer::holds(&row.path, object.size, &object.etag).await {
        return Ok(Settled {
            key,
            write: Write::Present,
        });
    }
    // The rule as it is now: a decision for all may have come while the file uploaded.
    match rule.unwrap_or(row.on_conflict) {
        OnConflict::Overwrite => Ok(Settled {
            key,
            write: Write::Replace,
        }),
        OnConflict::Ask => Err(exists(row, &key)),
        OnConflict::Skip => Err(Error::Kept {
            path: row.path.display().to_string(),
            code: "exists",
            reason: format!("{key} is already at the store; skipped, as asked"),
        }),
        OnConflict::Newer => newer(row, key, object),
        OnConflict::Rename => rename(shared, row, who, prefix).await,
    }
}

/// "Overwrite if newer": the file's modification time against the object's.
fn newer(row: &FileRow, key: String, object: &ObjectHead) -> Result<Settled> {
    let file = row
        .mtime_ns
        .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(ns.into()).ok());
    // In whole seconds: `Last-Modified` has no finer ones.
    match (file, object.modified) {
        (Some(file), Some(stored)) if file.unix_timestamp() > stored.unix_timestamp() => {
            Ok(Settled {
                key,
                write: Write::Replace,
            })
        }
        (_, None) => Err(Error::Protocol {
            operation: "comparing the file with the object at the store",
            detail: "the store gave no Last-Modified".into(),
        }),
        _ => Err(Error::Kept {
            path: row.path.display().to_string(),
            code: "not_newer",
            reason: format!("the object {key} at the store is as new as the file or newer"),
        }),
    }
}

/// "Keep both": the first `name (n).ext` free at the store, journaled as the file's key
/// before anything is sent there.
async fn rename(
    shared: &Arc<Shared>,
    row: &FileRow,
    who: &Who<'_>,
    prefix: &str,
) -> Result<Settled> {
    for n in 1..=MAX_RENAMES {
        let candidate = numbered(&row.key, n);
        let key = format!("{prefix}{candidate}");
        let free = match look(shared, who, &key).await? {
            Look::Missing => true,
            Look::Found(_) => false,
            // A free name cannot be found by looking.
            Look::Forbidden => return Err(exists(row, &format!("{prefix}{}", row.key))),
        };
        // Free at the store and not another queued file's key: journaled as this file's.
        let (owner, id) = (who.owner.clone(), row.id);
        if free
            && shared
                .db(move |j| j.claim_key(&owner, id, &candidate))
                .await?
        {
            return Ok(Settled {
                key,
                write: Write::OnlyNew,
            });
        }
    }
    Err(Error::File {
        path: row.path.display().to_string(),
        code: "no_free_name",
        reason: format!(
            "{} and {MAX_RENAMES} numbered copies are already at the store",
            row.key
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_copies_go_before_the_extension() {
        assert_eq!(numbered("a/b/report.pdf", 1), "a/b/report (1).pdf");
        assert_eq!(numbered("report.tar.gz", 2), "report.tar (2).gz");
        assert_eq!(numbered("dir/.profile", 3), "dir/.profile (3)");
        assert_eq!(numbered("README", 1), "README (1)");
        assert_eq!(numbered("a.b/README", 1), "a.b/README (1)");
        assert!(renamed_from("a/report (12).pdf", "a/report.pdf"));
        assert!(!renamed_from("a/report.pdf", "a/report.pdf"));
        assert!(!renamed_from("b/report (1).pdf", "a/report.pdf"));
    }

    #[test]
    fn rules_round_trip_by_name() {
        for rule in OnConflict::ALL {
            assert_eq!(rule.as_str().parse::<OnConflict>(), Ok(rule));
        }
        assert!("replace".parse::<OnConflict>().is_err());
    }
}
