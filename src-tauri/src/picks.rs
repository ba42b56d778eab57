//! Files and folders the user chose in a dialog. The paths stay here: the webview gets an id,
//! a name, a size and the path to show, and hands the id back to `enqueue` or `add_folder`.
//! The page is not trusted, so a path it makes up is never read or uploaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use tauri_plugin_dialog::DialogExt;

use crate::error::{CommandError, CommandResult};
use crate::words::{self, Words};

/// Picks kept at most; the oldest are forgotten first (a pick is normally used at once).
const MAX_PICKS: usize = 10_000;

/// What the webview learns of a pick.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Picked {
    /// Hand this back to use the pick.
    pub(crate) id: u64,
    /// The file or folder name.
    pub(crate) name: String,
    /// Bytes, for files.
    pub(crate) size: Option<u64>,
    /// The full path, to show.
    pub(crate) path: String,
}

/// The paths the user picked, by id.
#[derive(Default)]
pub(crate) struct Picks {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    paths: HashMap<u64, PathBuf>,
}

impl Picks {
    /// Remembers a path the user chose and says how the webview refers to it.
    pub(crate) fn remember(&self, path: PathBuf) -> Picked {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next += 1;
        let id = inner.next;
        if inner.paths.len() >= MAX_PICKS {
            let oldest = inner.paths.keys().min().copied();
            oldest.map(|old| inner.paths.remove(&old));
        }
        let meta = std::fs::metadata(&path).ok();
        let picked = Picked {
            id,
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            size: meta.filter(|m| m.is_file()).map(|m| m.len()),
            path: path.display().to_string(),
        };
        inner.paths.insert(id, path);
        picked
    }

    /// The paths of `ids`, each usable once; nothing is taken when one id is unknown (the
    /// error worded in `words`).
    pub(crate) fn take(&self, ids: &[u64], words: &Words) -> CommandResult<Vec<PathBuf>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&unknown) = ids.iter().find(|id| !inner.paths.contains_key(id)) {
            return Err(CommandError::worded(
                words,
                "unknown_pick",
                (words.unknown_pick)(unknown),
            ));
        }
        Ok(ids.iter().filter_map(|id| inner.paths.remove(id)).collect())
    }
}

/// Opens the system's file dialog; the chosen files, or none when it was cancelled.
pub(crate) async fn files(app: &tauri::AppHandle) -> Vec<PathBuf> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(words::current(app).add_files_title)
        .pick_files(move |files| {
            let _ = tx.send(files.unwrap_or_default());
        });
    let files = rx.await.unwrap_or_default();
    files
        .into_iter()
        .filter_map(|f| f.into_path().ok())
        .collect()
}

/// Opens the system's folder dialog; the chosen folder, if any.
pub(crate) async fn folder(app: &tauri::AppHandle) -> Option<PathBuf> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(words::current(app).choose_folder_title)
        .pick_folder(move |folder| {
            let _ = tx.send(folder);
        });
    rx.await.ok().flatten().and_then(|f| f.into_path().ok())
}

/// Opens the system's save dialog with `name` proposed; where to save, if anywhere.
pub(crate) async fn save_as(app: &tauri::AppHandle, title: &str, name: &str) -> Option<PathBuf> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(title)
        .set_file_name(name)
        .save_file(move |path| {
            let _ = tx.send(path);
        });
    rx.await.ok().flatten().and_then(|f| f.into_path().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_is_used_once_and_unknown_ids_take_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_owned();
        let file = dir.join("a.txt");
        std::fs::write(&file, b"12345").unwrap();
        let picks = Picks::default();
        let a = picks.remember(file.clone());
        let b = picks.remember(dir.clone());
        assert_eq!((a.name.as_str(), a.size), ("a.txt", Some(5)));
        assert_eq!(b.size, None, "folders have no size");
        let err = picks.take(&[a.id, 999], &words::EN).unwrap_err();
        assert_eq!(err.code(), "unknown_pick");
        assert_eq!(
            picks.take(&[a.id, b.id], &words::EN).unwrap(),
            vec![file, dir]
        );
        assert_eq!(
            picks.take(&[a.id], &words::EN).unwrap_err().code(),
            "unknown_pick"
        );
    }
}
