//! Watched folders, kept per account: a folder one account watches is never watched — and its
//! files never uploaded — for another account signed in on the same data dir.

use rusqlite::params;

use super::files::{path_bytes, path_from};
use super::{Journal, Owner};
use crate::error::Result;
use crate::watch::Folder;

/// A watched folder as kept: what to watch, and whether watching it is on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedFolder {
    /// The folder, its key prefix and its excludes.
    pub folder: Folder,
    /// Whether it is watched now (a folder can be kept but turned off).
    pub enabled: bool,
}

impl Journal {
    /// `owner`'s watched folders, in the order they were added.
    pub fn folders(&self, owner: &Owner) -> Result<Vec<SavedFolder>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT path, prefix, excludes, enabled, on_conflict FROM folders
                 WHERE server = ?1 AND user_id = ?2 ORDER BY rowid",
            )?;
            stmt.query_map(params![owner.server, owner.user_id], |r| {
                let excludes: String = r.get(2)?;
                Ok(SavedFolder {
                    folder: Folder {
                        path: path_from(r.get(0)?),
                        on_conflict: crate::conflict::OnConflict::parse(&r.get::<_, String>(4)?)
                            .unwrap_or_default(),
                        prefix: r.get(1)?,
                        excludes: serde_json::from_str(&excludes).unwrap_or_default(),
                    },
                    enabled: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    /// Keeps (or replaces) a watched folder of `owner`.
    pub fn save_folder(&self, owner: &Owner, saved: &SavedFolder) -> Result<()> {
        let excludes =
            serde_json::to_string(&saved.folder.excludes).unwrap_or_else(|_| "[]".into());
        self.with(|c| {
            c.execute(
                "INSERT INTO folders (server, user_id, path, display_path, prefix, excludes, enabled,
                     on_conflict)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (server, user_id, path) DO UPDATE SET prefix = excluded.prefix,
                     excludes = excluded.excludes, enabled = excluded.enabled,
                     on_conflict = excluded.on_conflict",
                params![
                    owner.server,
                    owner.user_id,
                    path_bytes(&saved.folder.path),
                    saved.folder.path.to_string_lossy(),
                    saved.folder.prefix,
                    excludes,
                    saved.enabled,
                    saved.folder.on_conflict.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// Forgets a watched folder of `owner`; `false` when there was none at `path`.
    pub fn remove_folder(&self, owner: &Owner, path: &std::path::Path) -> Result<bool> {
        self.with(|c| {
            let removed = c.execute(
                "DELETE FROM folders WHERE server = ?1 AND user_id = ?2 AND path = ?3",
                params![owner.server, owner.user_id, path_bytes(path)],
            )?;
            Ok(removed == 1)
        })
    }
}
