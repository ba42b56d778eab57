//! The engine as front ends use it: open a data dir against one app server, sign in, add files
//! and folders, run the transfers, read status and history.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_protocol::{UploadPage, User};

use crate::api::ApiClient;
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::journal::{FileRow, FileState, Journal};
use crate::keychain::Keychain;
use crate::secret::Secret;
use crate::session::Session;
use crate::storage::Storage;
use crate::transfer::{Summary, Transfer, TransferSettings};

/// How to open an engine.
pub struct EngineConfig {
    /// Holds the journal (no secrets).
    pub data_dir: PathBuf,
    /// App server base URL.
    pub server: String,
    /// Where secrets go.
    pub keychain: Arc<dyn Keychain>,
    /// Where events go.
    pub events: EventSink,
    /// Upload shape.
    pub transfer: TransferSettings,
    /// Ask for grants this short (seconds); `None`: the server's default.
    pub grant_ttl: Option<u64>,
    /// Name of this device in history.
    pub device: String,
}

/// What the queue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Files of the signed-in account per state.
    pub counts: Vec<(FileState, u64)>,
    /// Unfinished files of other accounts on this data dir: (account, files).
    pub waiting_for_others: Vec<(String, u64)>,
}

/// An open engine.
pub struct Engine {
    events: EventSink,
    journal: Arc<Journal>,
    session: Arc<Session>,
    credentials: Arc<Credentials>,
    transfer: Arc<Transfer>,
}

impl Engine {
    /// Opens the journal in `data_dir` and prepares (but does not start) transfers.
    pub fn open(config: EngineConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(Error::io("creating the data dir"))?;
        let journal = Arc::new(Journal::open(&config.data_dir.join("journal.db"))?);
        let device_id = match journal.setting("device_id")? {
            Some(id) => id,
            None => {
                let id = hex::encode(rand::random::<[u8; 8]>());
                journal.set_setting("device_id", &id)?;
                id
            }
        };
        let events = config.events.clone();
        let session = Arc::new(Session::new(
            ApiClient::new(&config.server)?,
            config.keychain,
        ));
        let credentials = Arc::new(Credentials::new(
            session.clone(),
            config.events.clone(),
            config.grant_ttl,
        ));
        let throttle = config
            .transfer
            .bandwidth
            .map(|b| Arc::new(crate::transfer::throttle::Throttle::new(b)));
        let storage = Storage::new(credentials.clone(), throttle)?;
        let transfer = Arc::new(Transfer::new(
            journal.clone(),
            storage,
            session.clone(),
            config.transfer,
            config.events,
            config.device,
            device_id,
        ));
        Ok(Self {
            events,
            journal,
            session,
            credentials,
            transfer,
        })
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The session.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The credential cache.
    pub fn credentials(&self) -> &Arc<Credentials> {
        &self.credentials
    }

    /// The scheduler (pause, resume, cancel, run).
    pub fn transfer(&self) -> &Arc<Transfer> {
        &self.transfer
    }

    /// Signs in; the queue continues if it was waiting for this.
    pub async fn sign_in(&self, username: &str, password: &Secret, device: &str) -> Result<User> {
        let user = self.session.sign_in(username, password, device).await?;
        self.credentials.forget().await?;
        self.transfer.wake();
        Ok(user)
    }

    /// Restores the session from the keychain.
    pub async fn restore(&self) -> Result<Option<User>> {
        self.session.restore().await
    }

    /// Signs out and forgets the storage credentials.
    pub async fn sign_out(&self) -> Result<()> {
        self.credentials.forget().await?;
        self.session.sign_out().await
    }

    /// Adds files and folders (recursively) to the queue; returns the new journal ids. A file's
    /// key is its path relative to the parent of what was given (`dir/a.txt` for `dir`).
    pub fn enqueue(&self, paths: &[PathBuf]) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        for path in paths {
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            self.enqueue_tree(&base, path, &mut ids, 0)?;
        }
        self.transfer.wake();
        Ok(ids)
    }

    fn enqueue_tree(
        &self,
        base: &Path,
        path: &Path,
        ids: &mut Vec<i64>,
        depth: usize,
    ) -> Result<()> {
        let meta = std::fs::symlink_metadata(path);
        let is_dir = match &meta {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::metadata(path).is_ok_and(|t| t.is_dir())
            }
            Ok(m) => m.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            if depth > 64 {
                return Ok(());
            }
            // Follow a symlinked folder only at the top, so a link loop cannot recurse.
            if depth > 0 && meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()) {
                return Ok(());
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(Error::io(format!("reading {}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for entry in entries {
                self.enqueue_tree(base, &entry, ids, depth + 1)?;
            }
            return Ok(());
        }
        let relative = path.strip_prefix(base).unwrap_or(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (key, skip) = match crate::key::object_key("", relative) {
            Ok(key) => (Some(key), None),
            Err(refusal) => (None, Some(refusal)),
        };
        // A file still on its way (after a crash, say) is resumed, not added again.
        if let Some(row) = self.journal.latest_for_path(path)?
            && !row.state.is_final()
            && Some(row.key.as_str()) == key.as_deref()
        {
            self.journal.move_states(
                Some(&[row.id]),
                &[FileState::Paused, FileState::Failed],
                FileState::Queued,
            )?;
            ids.push(row.id);
            return Ok(());
        }
        let id = self
            .journal
            .add(path, key.as_deref().unwrap_or(""), &name, skip)?;
        ids.push(id);
        Ok(())
    }

    /// Like [`Engine::enqueue`], but files already confirmed unchanged are sent again.
    pub fn enqueue_forced(&self, paths: &[PathBuf]) -> Result<Vec<i64>> {
        self.enqueue(paths)
    }

    /// What the queue holds.
    pub fn status(&self) -> Result<Status> {
        Ok(Status {
            counts: self.journal.counts()?,
            waiting_for_others: Vec::new(),
        })
    }

    /// Stops every upload in flight and waits until they are gone.
    pub async fn close(&self) {
        self.transfer.stop().await;
    }

    /// A folder watcher feeding this engine's queue (run it with [`crate::watch::Watcher::run`]
    /// next to [`Transfer::run`]).
    pub fn watcher(&self) -> Arc<crate::watch::Watcher> {
        crate::watch::Watcher::new(
            self.journal.clone(),
            self.transfer.clone(),
            self.events.clone(),
        )
    }

    /// Uploads everything runnable, waiting for retries, until nothing is left to do.
    pub async fn run_until_idle(&self) -> Result<Summary> {
        self.transfer.run_until_idle().await
    }

    /// Files of the journal, newest first.
    pub fn files(&self, limit: usize) -> Result<Vec<FileRow>> {
        self.journal.files(limit)
    }

    /// History as CSV (admins; `query` as in the API).
    pub async fn history_csv(&self, query: &str) -> Result<String> {
        let token = self.session.token()?;
        self.session.api().history_csv(&token, query).await
    }

    /// Count and bytes per day and user (admins).
    pub async fn stats(&self, query: &str) -> Result<ferry_protocol::Stats> {
        let token = self.session.token()?;
        self.session.api().stats(&token, query).await
    }

    /// History from the app server (`query` as in the API).
    pub async fn history(&self, query: &str) -> Result<UploadPage> {
        let token = self.session.token()?;
        self.session.api().history(&token, query).await
    }
}
