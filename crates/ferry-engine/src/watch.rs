//! Watched folders: `notify` events plus a scan at start (files added while Ferry was closed).
//! A file is taken once it is stable — modified at least 2 s ago and the same size on two looks
//! — and not excluded; its key is the folder's prefix plus its relative path (`/`, Unicode NFC).
//! A file already confirmed with the same size and mtime is not sent again. A folder that
//! disappears is reported and watched for, never a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher as _};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::conflict::OnConflict;
use crate::error::{Error, Result};
use crate::events::{ErrorInfo, Event, EventSink};
use crate::journal::{FileState, Journal};
use crate::queue::{Intake, Intent, MAX_DEPTH};
use crate::session::Session;
use crate::transfer::Transfer;

/// Names never taken: partial downloads, editor and OS clutter.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "*.part",
    "*.filepart",
    "*.crdownload",
    "*.tmp",
    "~$*",
    ".~lock.*",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
];

/// How long a file must sit unmodified before it is taken.
const SETTLE: Duration = Duration::from_secs(2);
/// How often candidates are looked at, at least; a candidate about to settle is looked at
/// when it does (so a file is taken about 2 s after its last change, not up to a tick later).
const TICK: Duration = Duration::from_millis(500);
/// The shortest wait between two looks.
const SOONEST: Duration = Duration::from_millis(100);
/// How often folders are checked (gone ones reported, returned ones scanned again).
const RECONNECT: Duration = Duration::from_secs(2);

/// A folder to watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Folder {
    /// The local folder.
    pub path: PathBuf,
    /// Key prefix below the grant's prefix (`""` or ending in `/`).
    pub prefix: String,
    /// Extra glob patterns to exclude (matched against the name and the relative path).
    pub excludes: Vec<String>,
    /// What its files do when their key already holds an object at the store.
    pub on_conflict: OnConflict,
}

/// What the watcher knows of a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FolderStatus {
    /// Files taken into the queue since start.
    pub queued: u64,
    /// Files skipped (excluded or unchanged).
    pub skipped: u64,
    /// When the last full scan ended (Unix seconds).
    pub last_scan: Option<i64>,
    /// Why the folder cannot be watched right now.
    pub error: Option<ErrorInfo>,
}

struct Watched {
    folder: Folder,
    /// Shared: every file taken looks it up.
    excludes: Arc<GlobSet>,
    status: FolderStatus,
    watcher: Option<notify::RecommendedWatcher>,
    /// Which folder on which file system was watched: a folder unmounted (the mount point
    /// shows through), mounted again, or removed and made again is another one, and the OS
    /// watch on the old one tells nothing more.
    identity: Option<Identity>,
}

/// Device and inode of a folder.
type Identity = (u64, u64);

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<Identity> {
    None
}

/// Work for the run loop.
enum Inbox {
    /// Something changed at this path (from `notify`).
    Changed(PathBuf),
    /// A folder was added: watch it and scan it.
    Connect(PathBuf),
}

/// What became of a stable file.
enum Taken {
    /// Queued for upload as this row, for the watched folder.
    Queued(PathBuf, i64),
    /// Counted as skipped for the watched folder (excluded, or known as it is).
    Skipped(PathBuf),
    /// Nothing more to do (not in a watched folder, reached through a link).
    Done,
    /// Not now (signed out): looked at again later.
    Later,
}

/// Stable files taken in one journal transaction at most: a look at thousands of files
/// commits once per this many, and other journal writers wait at most that long.
const TAKEN_TOGETHER: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    size: u64,
    mtime: SystemTime,
}

/// How long until a file last modified at `mtime` has sat unmodified for [`SETTLE`]
/// (zero once it has; a little after, so the look that follows finds it settled).
fn settles_in(mtime: SystemTime, now: SystemTime) -> Duration {
    let Some(settled) = mtime.checked_add(SETTLE) else {
        // Modified at the end of time (a broken clock or file system): never settles.
        return TICK;
    };
    match settled.duration_since(now) {
        Ok(left) if !left.is_zero() => left + Duration::from_millis(5),
        _ => Duration::ZERO,
    }
}

/// Watches folders and feeds stable files into the journal.
pub struct Watcher {
    journal: Arc<Journal>,
    transfer: Arc<Transfer>,
    session: Arc<Session>,
    events: EventSink,
    folders: Mutex<Vec<Watched>>,
    candidates: Mutex<HashMap<PathBuf, Look>>,
    changed: mpsc::UnboundedSender<Inbox>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Inbox>>,
}

pub(crate) fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in DEFAULT_EXCLUDES
        .iter()
        .copied()
        .chain(patterns.iter().map(String::as_str))
    {
        let glob = Glob::new(pattern).map_err(|e| Error::File {
            path: pattern.to_owned(),
            code: "invalid_pattern",
            reason: e.to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| Error::File {
        path: String::new(),
        code: "invalid_pattern",
        reason: e.to_string(),
    })
}

pub(crate) fn folder_missing(path: &Path) -> Error {
    Error::File {
        path: path.display().to_string(),
        code: "folder_missing",
        reason: "the watched folder is not there (removed, renamed or unmounted)".into(),
    }
}

impl Watcher {
    /// A watcher feeding `journal` for the signed-in account of `session`, and waking
    /// `transfer`.
    pub fn new(
        journal: Arc<Journal>,
        transfer: Arc<Transfer>,
        session: Arc<Session>,
        events: EventSink,
    ) -> Arc<Self> {
        let (changed, inbox) = mpsc::unbounded_channel();
        Arc::new(Self {
            journal,
            transfer,
            session,
            events,
            folders: Mutex::new(Vec::new()),
            candidates: Mutex::new(HashMap::new()),
            changed,
            inbox: tokio::sync::Mutex::new(inbox),
        })
    }

    fn folders(&self) -> std::sync::MutexGuard<'_, Vec<Watched>> {
        self.folders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching a folder: the run loop scans it at once. A missing folder is accepted
    /// and reported; it is picked up when it appears.
    pub fn add(&self, folder: Folder) -> Result<()> {
        let excludes = globs(&folder.excludes)?;
        let mut prefix = folder.prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let folder = Folder { prefix, ..folder };
        self.remove(&folder.path);
        self.folders().push(Watched {
            folder: folder.clone(),
            excludes: Arc::new(excludes),
            status: FolderStatus::default(),
            watcher: None,
            identity: None,
        });
        // Watching and scanning wait on the disk: the run loop does it on a blocking thread.
        let _ = self.changed.send(Inbox::Connect(folder.path));
        Ok(())
    }

    /// Stops watching every folder (another account signed in: its folders are its own).
    pub fn clear(&self) {
        self.folders().clear();
        self.candidates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Stops watching a folder.
    pub fn remove(&self, path: &Path) {
        self.folders().retain(|w| w.folder.path != path);
        self.candidates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p, _| !p.starts_with(path));
    }

    /// Folders and their status.
    pub fn status(&self) -> Vec<(Folder, FolderStatus)> {
        self.folders()
            .iter()
            .map(|w| (w.folder.clone(), w.status.clone()))
            .collect()
    }

    /// Sets up the OS watch of a folder and scans it; records an error state when it fails.
    fn connect(&self, path: &Path) {
        let seen = identity(path);
        let result = self.watch_and_scan(path);
        let mut folders = self.folders();
        let Some(watched) = folders.iter_mut().find(|w| w.folder.path == path) else {
            return;
        };
        match result {
            Ok((watcher, found)) => {
                watched.watcher = Some(watcher);
                watched.identity = seen;
                watched.status.error = None;
                watched.status.last_scan = Some(crate::journal::now());
                drop(folders);
                let mut candidates = self.candidates.lock().unwrap_or_else(|p| p.into_inner());
                for file in found {
                    candidates.entry(file).or_insert(Look {
                        size: u64::MAX,
                        mtime: SystemTime::UNIX_EPOCH,
                    });
                }
            }
            Err(err) => {
                tracing::warn!(folder = %path.display(), error = %err, "cannot watch folder");
                let info = ErrorInfo::from(&err);
                if watched.status.error.as_ref() != Some(&info) {
                    (self.events)(Event::FolderError {
                        path: path.to_owned(),
                        error: info.clone(),
                    });
                }
                watched.watcher = None;
                watched.status.error = Some(info);
            }
        }
    }

    fn watch_and_scan(&self, path: &Path) -> Result<(notify::RecommendedWatcher, Vec<PathBuf>)> {
        if !path.is_dir() {
            return Err(folder_missing(path));
        }
        let sender = self.changed.clone();
        // Links are not followed, here as in the scan: a link to `~/.ssh` made in a watched
        // folder must not bring `id_rsa` along.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = notify::RecommendedWatcher::new(
            move |event: notify::Result<notify::Event>| {
                // Only creations and changes: access events (opening a folder to scan it, a file
                // to upload it) would feed back into endless rescans.
                if let Ok(event) = event
                    && matches!(
                        event.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Any
                    )
                {
                    for path in event.paths {
                        let _ = sender.send(Inbox::Changed(path));
                    }
                }
            },
            config,
        )
        .map_err(|e| Error::Io {
            context: "starting the folder watcher".into(),
            source: std::io::Error::other(e),
        })?;
        watcher
            .watch(path, RecursiveMode::Recursive)
            .map_err(|e| Error::Io {
                context: format!("watching {}", path.display()),
                source: std::io::Error::other(e),
            })?;
        let mut found = Vec::new();
        scan(path, 0, &mut found);
        Ok((watcher, found))
    }

    /// The folder a path belongs to, with its relative path.
    fn owner(&self, path: &Path) -> Option<(Folder, Arc<GlobSet>, PathBuf)> {
        self.folders().iter().find_map(|w| {
            let relative = path.strip_prefix(&w.folder.path).ok()?;
            Some((w.folder.clone(), w.excludes.clone(), relative.to_owned()))
        })
    }

    fn count(&self, folder: &Path, queued: bool) {
        if let Some(w) = self.folders().iter_mut().find(|w| w.folder.path == folder) {
            if queued {
                w.status.queued += 1
            } else {
                w.status.skipped += 1
            }
        }
    }

    /// Looks at every candidate once; takes the stable ones. Returns how long to wait before
    /// the next look: until the next candidate settles, [`TICK`] at most.
    fn tick(&self) -> Result<Duration> {
        let now = SystemTime::now();
        let mut next = TICK;
        let paths: Vec<(PathBuf, Look)> = self
            .candidates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(p, l)| (p.clone(), *l))
            .collect();
        let mut settled_now = Vec::new();
        for (path, previous) in paths {
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(m) if m.is_dir() => {
                    // Only folders too deep to scan are candidates: reported, not walked.
                    self.report_too_deep(&path)?;
                    self.candidates
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&path);
                    continue;
                }
                _ => {
                    self.candidates
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&path);
                    continue;
                }
            };
            let look = Look {
                size: meta.len(),
                mtime: meta.modified().unwrap_or(now),
            };
            let settled = now
                .duration_since(look.mtime)
                .is_ok_and(|age| age >= SETTLE);
            if look != previous || !settled {
                next = next.min(settles_in(look.mtime, now));
                self.candidates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path, look);
                continue;
            }
            settled_now.push(path);
        }
        for chunk in settled_now.chunks(TAKEN_TOGETHER) {
            self.take_all(chunk)?;
        }
        Ok(next)
    }

    /// Takes stable files in one journal transaction, then tells what it queued (nothing is
    /// told of a transaction that failed: its files stay candidates).
    fn take_all(&self, paths: &[PathBuf]) -> Result<()> {
        let taken = self.journal.transaction(|_| {
            paths
                .iter()
                .map(|p| self.take(p))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut queued = false;
        for (path, taken) in paths.iter().zip(taken) {
            match taken {
                Taken::Later => continue,
                Taken::Queued(folder, id) => {
                    self.count(&folder, true);
                    (self.events)(Event::State {
                        file_id: id,
                        state: FileState::Queued,
                        error: None,
                    });
                    queued = true;
                }
                Taken::Skipped(folder) => self.count(&folder, false),
                Taken::Done => {}
            }
            self.candidates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(path);
        }
        if queued {
            // The scheduler starts them now, not after every other candidate's look.
            self.transfer.wake();
        }
        Ok(())
    }

    /// Queues a stable file unless it is excluded or already known as it is (see
    /// [`crate::queue`]). Signed out, nothing is taken: the file stays a candidate.
    fn take(&self, path: &Path) -> Result<Taken> {
        let Some((folder, excludes, relative)) = self.owner(path) else {
            return Ok(Taken::Done);
        };
        if through_a_link(&folder.path, &relative) {
            return Ok(Taken::Done);
        }
        let Some(owner) = self.session.owner() else {
            return Ok(Taken::Later);
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if excludes.is_match(&name) || excludes.is_match(&relative) {
            return Ok(Taken::Skipped(folder.path));
        }
        let mut intake =
            Intake::new(&self.journal, &owner, Intent::Found).on_conflict(folder.on_conflict);
        intake.add_file(path, &folder.prefix, &relative)?;
        match intake.added.ids.first() {
            Some(&id) if intake.added.queued => Ok(Taken::Queued(folder.path, id)),
            // Known as it is: uploading, uploaded, cancelled or skipped before.
            Some(_) => Ok(Taken::Skipped(folder.path)),
            None => Ok(Taken::Done),
        }
    }

    /// A folder nested too deep to scan: a skipped row says so (once, while it stays as it is).
    fn report_too_deep(&self, path: &Path) -> Result<()> {
        let (Some((folder, _, relative)), Some(owner)) = (self.owner(path), self.session.owner())
        else {
            return Ok(());
        };
        Intake::new(&self.journal, &owner, Intent::Found).too_deep(path, &folder.prefix, &relative)
    }

    /// Runs until dropped: takes change events, looks at candidates, reconnects folders that
    /// come back. Scans, looks and journal writes run on blocking threads.
    pub async fn run(self: &Arc<Self>) -> Result<()> {
        let mut inbox = self.inbox.lock().await;
        // A deadline, not a sleep per loop: a stream of change events must not starve the looks.
        let mut look_at = tokio::time::Instant::now() + TICK;
        let mut reconnected = tokio::time::Instant::now();
        loop {
            tokio::select! {
                Some(work) = inbox.recv() => {
                    let this = self.clone();
                    crate::blocking::run("a folder watcher task", move || match work {
                        Inbox::Changed(path) => this.changed(path),
                        Inbox::Connect(path) => {
                            this.connect(&path);
                            Ok(())
                        }
                    })
                    .await?;
                }
                _ = tokio::time::sleep_until(look_at) => {
                    let this = self.clone();
                    let began = tokio::time::Instant::now();
                    let reconnect = began - reconnected >= RECONNECT;
                    if reconnect {
                        reconnected = began;
                    }
                    let next = crate::blocking::run("a folder watcher task", move || {
                        let next = this.tick()?;
                        if reconnect {
                            this.reconnect();
                        }
                        Ok(next)
                    })
                    .await?;
                    // Looks take at most half the time, however many candidates there are.
                    let spent = began.elapsed();
                    look_at = began + next.max(spent + spent.max(SOONEST));
                }
            }
        }
    }

    /// A change event: the path (or every file under it) becomes a candidate.
    fn changed(&self, path: PathBuf) -> Result<()> {
        if self.owner(&path).is_none() {
            return Ok(());
        }
        let mut found = Vec::new();
        match std::fs::symlink_metadata(&path) {
            // A link (to a file or a folder) is not followed.
            Ok(meta) if meta.file_type().is_symlink() => {}
            Ok(meta) if meta.is_dir() => scan(&path, 0, &mut found),
            _ => found.push(path),
        }
        let mut candidates = self.candidates.lock().unwrap_or_else(|p| p.into_inner());
        for file in found {
            candidates.entry(file).or_insert(Look {
                size: u64::MAX,
                mtime: SystemTime::UNIX_EPOCH,
            });
        }
        Ok(())
    }

    /// Watches again the folders that are not watched, gone, or another folder than the one
    /// watched (unmounted, mounted again, made again).
    fn reconnect(&self) {
        let folders: Vec<(PathBuf, bool, Option<Identity>)> = self
            .folders()
            .iter()
            .map(|w| (w.folder.path.clone(), w.watcher.is_some(), w.identity))
            .collect();
        for (path, connected, watched) in folders {
            if !connected || !path.is_dir() || identity(&path) != watched {
                self.connect(&path);
            }
        }
    }
}

/// Whether any folder between `root` and the file at `relative` is a link (or is gone): what
/// lies behind a link is not the watched folder's.
fn through_a_link(root: &Path, relative: &Path) -> bool {
    let mut at = root.to_path_buf();
    let mut parts = relative.components().peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return false;
        }
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            _ => return true,
        }
    }
    false
}

/// Every regular file under `dir`, not following symlinks (so a link loop cannot recurse);
/// a folder nested too deep is listed itself instead of its contents.
fn scan(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        out.push(dir.to_owned());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            scan(&entry.path(), depth + 1, out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_looked_at_again_when_it_settles() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let written = now - Duration::from_millis(1_200);
        assert_eq!(settles_in(written, now), Duration::from_millis(805));
        assert_eq!(settles_in(now - SETTLE, now), Duration::ZERO);
        assert_eq!(
            settles_in(now - Duration::from_secs(60), now),
            Duration::ZERO
        );
        // A clock set back: modified "in the future", settled 2 s after that.
        let ahead = now + Duration::from_secs(3);
        assert_eq!(settles_in(ahead, now), Duration::from_millis(5_005));
        // Modified at the end of time: looked at now and then, never a panic.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        assert_eq!(settles_in(end, now), TICK);
    }

    #[test]
    fn default_and_folder_excludes() {
        let set = globs(&["*.log".into(), "cache/**".into()]).unwrap();
        for excluded in [
            "a.part",
            "x.crdownload",
            "~$doc.docx",
            ".~lock.a#",
            ".DS_Store",
            "Thumbs.db",
            "b.log",
            "cache/x/y",
        ] {
            assert!(set.is_match(excluded), "{excluded}");
        }
        for kept in ["a.txt", "part", "photo.jpg", "notcache/x"] {
            assert!(!set.is_match(kept), "{kept}");
        }
        assert!(globs(&["[".into()]).is_err());
    }

    #[test]
    fn scanning_skips_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), b"a").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        let mut found = Vec::new();
        scan(dir.path(), 0, &mut found);
        assert_eq!(found, vec![dir.path().join("sub/a")]);
    }
}
