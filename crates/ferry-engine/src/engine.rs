//! The engine as front ends use it: open a data dir against one app server, sign in, add files
//! and folders, run the transfers, read status and history.
//!
//! One engine holds a data dir at a time (an OS lock, see [`crate::journal`]); a second one
//! gets [`Error::DataDirInUse`] with the holder's pid. [`read_status`] reads a data dir without
//! holding it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_protocol::{GrantRequest, UploadPage, User};
use time::OffsetDateTime;

use crate::api::ApiClient;
use crate::conflict::OnConflict;
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::journal::{FileRow, FileState, Journal, Owner, SavedFolder};
use crate::keychain::Keychain;
use crate::network::Network;
use crate::queue::{Intake, Intent};
use crate::secret::Secret;
use crate::session::{Offline, Session};
use crate::storage::Storage;
use crate::transfer::{Summary, Transfer, TransferSettings};
use crate::watch::Folder;

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
    /// What to ask the app server for in each grant: a shorter lifetime, a dialect (for
    /// servers that offer several, like Ferry's own); the server's defaults when empty.
    pub grant: GrantRequest,
    /// Name of this device in history.
    pub device: String,
    /// A server that only hands out credentials, instead of one with Ferry's API at `server`
    /// (whose token URL then names the server).
    pub token_server: Option<crate::token_server::TokenServer>,
    /// How the app server and the store are reached (proxy, extra CA certificates).
    pub network: crate::network::Network,
}

/// What [`Engine::give`] journaled.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// The row of each file, in the order given (a file named twice at one key, twice).
    pub ids: Vec<i64>,
    /// The rows that were confirmed, the file unchanged, before: not sent again.
    pub confirmed_before: std::collections::HashSet<i64>,
}

/// Files given at once journaled in one transaction at most.
const INTAKE_TOGETHER: usize = 256;

/// Longest each step of "Test connection" may take.
const CHECK_TIME: std::time::Duration = std::time::Duration::from_secs(15);

async fn within_check(step: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::time::timeout(CHECK_TIME, step)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                operation: "testing the connection",
                target: String::new(),
                what: format!("no answer within {} s", CHECK_TIME.as_secs()),
            })
        })
}

/// Checks only the way to the app server at `server` on `network` (signed out, there is no
/// grant to reach the store with).
pub async fn check_server(network: &Network, server: &str) -> Result<()> {
    let api = ApiClient::on(network, server, CHECK_TIME)?;
    within_check(api.answers()).await
}

/// What "Test connection" found.
#[derive(Debug)]
pub struct ConnectionCheck {
    /// The app server answered (or why not).
    pub server: Result<()>,
    /// The store answered the account's grant (or why not); `None` signed out.
    pub store: Option<Result<()>>,
}

/// A network's clients made ready for an engine ([`Engine::prepare_network`]), for
/// [`Engine::use_network`].
pub struct NetworkReady {
    api: crate::network::Prepared,
    store: crate::network::Prepared,
    proxy_password: Option<crate::secret::Secret>,
}

/// What the queue of a data dir holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The signed-in account's name, if known.
    pub account: Option<String>,
    /// That account's files per state (every state listed, zeros included).
    pub counts: Vec<(FileState, u64)>,
    /// Unfinished files of other accounts on this data dir, by account. They wait for their
    /// owner to sign in.
    pub waiting_for_others: Vec<crate::journal::Waiting>,
    /// When the storage credentials kept for this server expire, if any are kept.
    pub credentials_expire_at: Option<OffsetDateTime>,
    /// The newest files of the journal (of every account), at most 20.
    pub recent: Vec<FileRow>,
}

/// An open engine.
pub struct Engine {
    /// Held while the network changes: both clients end on the same one.
    changing_network: std::sync::Mutex<()>,
    /// The passwords of the proxies this engine went through (named by the user), for the
    /// diagnostics to leave out — an earlier one may be in the logs too.
    proxy_passwords: std::sync::Mutex<Vec<crate::secret::Secret>>,
    /// What files given without a rule do when their key already holds an object.
    on_conflict: std::sync::Mutex<OnConflict>,
    journal: Arc<Journal>,
    session: Arc<Session>,
    credentials: Arc<Credentials>,
    transfer: Arc<Transfer>,
    watcher: Arc<crate::watch::Watcher>,
}

fn status_of(
    journal: &Journal,
    owner: Option<&Owner>,
    credentials_expire_at: Option<OffsetDateTime>,
) -> Result<Status> {
    let counted = match owner {
        Some(owner) => journal.counts(owner)?,
        None => Vec::new(),
    };
    let counts = FileState::ALL
        .into_iter()
        .map(|s| {
            (
                s,
                counted.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n),
            )
        })
        .collect();
    Ok(Status {
        account: owner.map(|o| o.user_name.clone()),
        counts,
        waiting_for_others: journal.waiting_for_others(owner)?,
        credentials_expire_at,
        recent: journal.files(20)?,
    })
}

/// Reads the status of a data dir without holding it (another engine may be uploading): the
/// journal read-only, the account and credential expiry from the keychain, nothing from the
/// network.
pub async fn read_status(
    data_dir: &Path,
    server: &str,
    keychain: Arc<dyn Keychain>,
) -> Result<Status> {
    let journal = Journal::open_read_only(&data_dir.join("journal.db"))?;
    let session = Arc::new(Session::new(ApiClient::new(server)?, keychain));
    let owner = session.stored_owner()?;
    let credentials = Credentials::new(session, crate::events::discard(), GrantRequest::default());
    let expires = match &owner {
        Some(owner) => credentials.stored_expiry(owner).await,
        None => None,
    };
    status_of(&journal, owner.as_ref(), expires)
}

impl Engine {
    /// Opens the journal in `data_dir` (taking the data dir's lock) and prepares (but does not
    /// start) transfers.
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
        let timeout = config.transfer.stall_timeout;
        let api = match config.token_server {
            Some(server) => ApiClient::for_token_server(&config.network, server, timeout)?,
            None => ApiClient::on(&config.network, &config.server, timeout)?,
        };
        api.tell(config.events.clone());
        let session = Arc::new(Session::new(api, config.keychain));
        let credentials = Arc::new(Credentials::new(
            session.clone(),
            config.events.clone(),
            config.grant,
        ));
        let throttle = Arc::new(crate::transfer::throttle::Throttle::new(
            config.transfer.bandwidth,
        ));
        let storage = Storage::new(
            &config.network,
            credentials.clone(),
            throttle,
            config.events.clone(),
            config.transfer.stall_timeout,
        )?;
        let transfer = Arc::new(Transfer::new(
            journal.clone(),
            storage,
            session.clone(),
            config.transfer,
            config.events,
            config.device,
            device_id,
        ));
        let watcher = crate::watch::Watcher::new(
            journal.clone(),
            transfer.clone(),
            session.clone(),
            transfer.events(),
        );
        Ok(Self {
            changing_network: std::sync::Mutex::new(()),
            proxy_passwords: std::sync::Mutex::new(
                config.network.proxy_password().into_iter().collect(),
            ),
            on_conflict: std::sync::Mutex::new(OnConflict::default()),
            journal,
            session,
            credentials,
            transfer,
            watcher,
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

    /// Signs in; the queue continues with this account's files. Uploads under way are
    /// stopped first and nothing starts until the new session is in place (another account's
    /// files wait for their owner); a grant in hand of another account is dropped.
    pub async fn sign_in(&self, username: &str, password: &Secret, device: &str) -> Result<User> {
        let hold = self.transfer.hold().await;
        let before = self.session.owner();
        let user = self.session.sign_in(username, password, device).await;
        if user.is_ok() && before != self.session.owner() {
            self.credentials.drop_cached().await;
            // The folders watched were the other account's.
            self.watcher.clear();
        }
        drop(hold);
        self.transfer.wake();
        user
    }

    /// Whether the app server answered the engine's last request to it.
    pub fn online(&self) -> bool {
        self.session.api().reachable()
    }

    /// Restores the session from the keychain (failing when the app server cannot be
    /// reached).
    pub async fn restore(&self) -> Result<Option<User>> {
        self.session.restore(Offline::Fail).await
    }

    /// Restores the session from the keychain for an app that stays open: when the app server
    /// cannot be reached (started before the network is up), the kept session is taken while it
    /// has not expired, and the queue goes up once the server answers.
    pub async fn restore_even_offline(&self) -> Result<Option<User>> {
        self.session.restore(Offline::Keep).await
    }

    /// Stops this account's uploads, forgets its storage credentials and signs out; nothing
    /// starts meanwhile.
    pub async fn sign_out(&self) -> Result<()> {
        let _hold = self.transfer.hold().await;
        self.credentials.forget().await?;
        self.session.sign_out().await
    }

    fn owner(&self) -> Result<Owner> {
        self.session.owner().ok_or(Error::SignedOut)
    }

    /// Adds files and folders (recursively) for the signed-in account; returns the rows, one
    /// per file. A file's key is its path relative to the parent of what was given
    /// (`dir/a.txt` for `dir`). A file already confirmed unchanged at the same key is not sent
    /// again: its confirmed row is returned.
    /// A file whose key holds an object at the store does what [`Engine::on_conflict`] says.
    pub async fn enqueue(&self, paths: &[PathBuf]) -> Result<Vec<i64>> {
        self.enqueue_with(paths, false, self.on_conflict()).await
    }

    /// Like [`Engine::enqueue`], but files already confirmed unchanged are sent again.
    pub async fn enqueue_forced(&self, paths: &[PathBuf]) -> Result<Vec<i64>> {
        self.enqueue_with(paths, true, self.on_conflict()).await
    }

    /// Like [`Engine::enqueue`] (or [`Engine::enqueue_forced`] with `force`), the files doing
    /// what `on_conflict` says when their key already holds an object at the store.
    pub async fn enqueue_with(
        &self,
        paths: &[PathBuf],
        force: bool,
        on_conflict: OnConflict,
    ) -> Result<Vec<i64>> {
        Ok(self.give(paths, force, on_conflict).await?.ids)
    }

    /// Journals the files of `paths` as [`Engine::enqueue_with`] does: the folders walked
    /// first, then the files a few hundred at a time, each few hundred free to start as
    /// soon as they are journaled — the first files of a long folder are on their way while
    /// the rest are still being journaled. From this call until the returned future ends or
    /// is dropped, [`Engine::run_until_idle`] does not end for want of files (it waits for
    /// them: a future held and never polled keeps it waiting); it still ends when the
    /// session does.
    pub fn give(
        &self,
        paths: &[PathBuf],
        force: bool,
        on_conflict: OnConflict,
    ) -> impl Future<Output = Result<Given>> + Send + '_ {
        let journaling = self.transfer.journaling();
        let (owner, paths, transfer) = (self.owner(), paths.to_vec(), self.transfer.clone());
        async move {
            let _journaling = journaling;
            let owner = owner?;
            let added = self
                .journal
                .blocking(move |journal| {
                    // The folders are walked first, then the files journaled a transaction
                    // per few hundred: one commit each, after which they may start, and
                    // uploads under way wait for none longer.
                    let mut found = Vec::new();
                    for path in &paths {
                        found.extend(crate::queue::found_in(path)?);
                    }
                    let mut intake = Intake::new(journal, &owner, Intent::Given { force })
                        .on_conflict(on_conflict);
                    for files in found.chunks(INTAKE_TOGETHER) {
                        let replaced = intake.added.replaced.len();
                        journal
                            .transaction(|_| files.iter().try_for_each(|f| intake.add_found(f)))?;
                        for &id in &intake.added.replaced[replaced..] {
                            transfer.stop_file(id);
                        }
                        transfer.nudge();
                    }
                    Ok(intake.added)
                })
                .await?;
            if !added.replaced.is_empty() {
                self.transfer.abort_abandoned().await;
            }
            self.transfer.wake();
            Ok(Given {
                ids: added.ids,
                confirmed_before: added.confirmed_before,
            })
        }
    }

    /// What files given without a rule of their own do when their key already holds an object
    /// at the store (at first: ask).
    pub fn on_conflict(&self) -> OnConflict {
        *self
            .on_conflict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Another network (proxy, CA certificates) from now, for the requests made from then on
    /// — to the app server and to the store — without signing in again; requests under way
    /// finish the way they went. A network that cannot be used is refused and changes
    /// nothing. A scheduler stopped by a proxy's refusal tries again.
    /// Builds the clients (the system's proxy, a CA file): call it off the async threads.
    pub fn set_network(&self, network: &Network) -> Result<()> {
        self.use_network(self.prepare_network(network)?);
        Ok(())
    }

    /// The clients of `network` made for this engine, not yet in use: what can fail in
    /// [`Engine::set_network`] happens here, before anything changes. Builds the clients:
    /// call it off the async threads.
    pub fn prepare_network(&self, network: &Network) -> Result<NetworkReady> {
        let (api, store) = (self.session.api().http(), self.transfer.storage().http());
        Ok(NetworkReady {
            api: api.on(network)?,
            store: store.on(network)?,
            proxy_password: network.proxy_password(),
        })
    }

    /// Puts clients [`Engine::prepare_network`] made in use (see [`Engine::set_network`]).
    pub fn use_network(&self, ready: NetworkReady) {
        let _changing = self
            .changing_network
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.session.api().http().take(ready.api);
        self.transfer.storage().http().take(ready.store);
        if let Some(password) = ready.proxy_password {
            let mut known = self
                .proxy_passwords
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !known.contains(&password) {
                known.push(password);
            }
        }
        self.transfer.network_changed();
    }

    /// Secrets of the networks this engine used: the passwords of the proxies named.
    pub(crate) fn network_secrets(&self) -> Vec<crate::secret::Secret> {
        self.proxy_passwords
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The transfer settings in force now.
    pub fn transfer_settings(&self) -> TransferSettings {
        self.transfer.settings()
    }

    /// Other transfer settings from now — what a user changes in Settings needs no new
    /// sign-in. For the uploads under way too: parts in flight (the parts out above a lower
    /// limit finish and none take their place; a higher one is climbed to), files sent in
    /// parts at once (fewer as files end), files sending at once, the bandwidth limit. From a
    /// file's next start: its own parts at once and its part size. From the next
    /// [`Engine::open`]: the stall timeout. Two calls apply one after the other.
    pub async fn set_transfer(&self, settings: &TransferSettings) {
        self.transfer.set_settings(settings).await;
    }

    /// Sets [`Engine::on_conflict`] for files given from now on.
    pub fn set_on_conflict(&self, rule: OnConflict) {
        *self
            .on_conflict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = rule;
    }

    /// Settles the signed-in account's files waiting for a decision about an object at their
    /// key — those of `ids`, or with `None` all of them and every file still to come in the
    /// queue that would ask ("apply to all") — with `rule`, and queues them again. Returns
    /// the files queued again.
    pub async fn decide(&self, ids: Option<&[i64]>, rule: OnConflict) -> Result<u64> {
        let owner = self.owner()?;
        let ids = ids.map(<[i64]>::to_vec);
        let queued = self
            .journal
            .blocking(move |j| j.decide(&owner, ids.as_deref(), rule))
            .await?;
        self.transfer.wake();
        Ok(queued)
    }

    /// Checks the way to the app server and, signed in, to the store, each on its own and
    /// on `network` (the settings as saved, which this engine may not run on yet): which step
    /// fails and why (a proxy, a certificate, a host that does not answer). One request each,
    /// no retry, at most [`CHECK_TIME`] each.
    pub async fn check_connection(&self, network: &Network) -> ConnectionCheck {
        let server = match self.session.api().on_network(network, CHECK_TIME) {
            Ok(api) => within_check(api.answers()).await,
            Err(err) => Err(err),
        };
        let store = match self.session.owner() {
            Some(owner) => Some(within_check(self.store_answers(network, &owner)).await),
            None => None,
        };
        ConnectionCheck { server, store }
    }

    async fn store_answers(&self, network: &Network, owner: &Owner) -> Result<()> {
        let events: crate::events::EventSink = Arc::new(|_| {});
        let storage = Storage::new(
            network,
            self.credentials.clone(),
            Arc::new(crate::transfer::throttle::Throttle::new(None)),
            events,
            CHECK_TIME,
        )?;
        storage
            .probe(&crate::storage::Who { owner, file: None })
            .await
    }

    /// What the queue holds, for the signed-in account and the others.
    pub async fn status(&self) -> Result<Status> {
        let owner = self.session.owner();
        let expires = match &owner {
            Some(owner) => self.credentials.stored_expiry(owner).await,
            None => None,
        };
        let journal = self.journal.clone();
        self.journal
            .blocking(move |_| status_of(&journal, owner.as_ref(), expires))
            .await
    }

    /// Stops every upload in flight, waits until they are gone, and lets go of the data dir.
    /// The engine is of no further use.
    pub async fn close(&self) {
        self.transfer.stop().await;
        self.journal.close();
    }

    /// The folder watcher feeding this engine's queue (run it with
    /// [`crate::watch::Watcher::run`] next to [`Transfer::run`]).
    pub fn watcher(&self) -> Arc<crate::watch::Watcher> {
        self.watcher.clone()
    }

    /// The signed-in account's watched folders, as kept.
    pub async fn folders(&self) -> Result<Vec<SavedFolder>> {
        let owner = self.owner()?;
        self.journal.blocking(move |j| j.folders(&owner)).await
    }

    /// Keeps a folder for the signed-in account and watches it now; `folder_watched_already`
    /// when it is kept already, and nothing kept for a folder that is not there or a pattern
    /// that is not one.
    pub async fn add_folder(&self, folder: Folder) -> Result<()> {
        let owner = self.owner()?;
        // Resolving the path reads the file system (a slow mount waits): on a blocking thread.
        let saved = self
            .journal
            .blocking(move |j| {
                let saved = SavedFolder {
                    folder: watchable(folder)?,
                    enabled: true,
                };
                if kept_folder(j, &owner, &saved.folder.path).is_ok() {
                    return Err(Error::FolderKnown(saved.folder.path.display().to_string()));
                }
                j.save_folder(&owner, &saved)?;
                Ok(saved)
            })
            .await?;
        self.watcher.add(saved.folder)
    }

    /// Watches `folder` — kept with the signed-in account's folders (the desktop's list), or,
    /// kept already under any name, as it is kept (its prefix, exclusions and rule), turned on.
    /// Gives the folder as watched and whether it was kept already.
    pub async fn watch_folder(&self, folder: Folder) -> Result<(Folder, bool)> {
        let owner = self.owner()?;
        let (saved, known) = self
            .journal
            .blocking(move |j| {
                let (mut saved, known) = match kept_folder(j, &owner, &folder.path) {
                    Ok(kept) => (kept, true),
                    Err(Error::NoSuchFolder(_)) => {
                        let saved = SavedFolder {
                            folder: watchable(folder)?,
                            enabled: true,
                        };
                        (saved, false)
                    }
                    Err(err) => return Err(err),
                };
                saved.enabled = true;
                j.save_folder(&owner, &saved)?;
                Ok((saved, known))
            })
            .await?;
        self.watcher.add(saved.folder.clone())?;
        Ok((saved.folder, known))
    }

    /// Turns watching a kept folder of the signed-in account on or off.
    pub async fn set_folder_enabled(&self, path: &Path, enabled: bool) -> Result<()> {
        let (owner, wanted) = (self.owner()?, path.to_owned());
        let saved = self
            .journal
            .blocking(move |j| {
                let mut saved = kept_folder(j, &owner, &wanted)?;
                saved.enabled = enabled;
                j.save_folder(&owner, &saved)?;
                Ok(saved)
            })
            .await?;
        if enabled {
            self.watcher.add(saved.folder)
        } else {
            self.watcher.remove(&saved.folder.path);
            Ok(())
        }
    }

    /// Stops watching a folder of the signed-in account and forgets it.
    pub async fn remove_folder(&self, path: &Path) -> Result<()> {
        let (owner, wanted) = (self.owner()?, path.to_owned());
        let kept = self
            .journal
            .blocking(move |j| {
                let kept = kept_folder(j, &owner, &wanted)?;
                j.remove_folder(&owner, &kept.folder.path)?;
                Ok(kept)
            })
            .await?;
        self.watcher.remove(&kept.folder.path);
        Ok(())
    }

    /// Watches the signed-in account's kept folders (those turned on), and only those. A kept
    /// folder that cannot be watched (a pattern an older version let through) is left out and
    /// said in the log: the others are watched, and signing in goes on.
    pub async fn watch_saved_folders(&self) -> Result<()> {
        let saved = self.folders().await?;
        self.watcher.clear();
        for kept in saved.into_iter().filter(|f| f.enabled) {
            let path = kept.folder.path.clone();
            if let Err(err) = self.watcher.add(kept.folder) {
                tracing::warn!(folder = %path.display(), error = %err, "a kept folder is not watched");
            }
        }
        Ok(())
    }

    /// Uploads everything runnable, waiting for retries, until nothing is left to do.
    pub async fn run_until_idle(&self) -> Result<Summary> {
        self.transfer.run_until_idle().await
    }

    /// Files of the journal (of every account), newest first.
    pub fn files(&self, limit: usize) -> Result<Vec<FileRow>> {
        self.journal.files(limit)
    }

    /// Takes the signed-in account's finished files (confirmed, skipped, cancelled) out of
    /// the queue's view; the journal keeps them, so unchanged files are still not sent again.
    /// Returns how many.
    pub async fn clear_finished(&self) -> Result<u64> {
        let owner = self.session.owner().ok_or(Error::SignedOut)?;
        self.journal
            .blocking(move |journal| journal.clear_finished(&owner))
            .await
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

impl Drop for Engine {
    /// Uploads in flight stop with the engine (their rows resume at the next start).
    fn drop(&mut self) {
        self.transfer.abort_all();
    }
}

/// `folder` as it is kept: its real path, checked to be a folder that is there, and its
/// patterns checked — before anything is kept.
fn watchable(folder: Folder) -> Result<Folder> {
    crate::watch::globs(&folder.excludes)?;
    let path = folder_path(&folder.path)?;
    if !path.is_dir() {
        return Err(crate::watch::folder_missing(&folder.path));
    }
    Ok(Folder { path, ..folder })
}

/// A folder's path as it is kept: its real path when it exists (links and `.`/`..`
/// resolved), so one folder is one entry however it was named; else made absolute.
fn folder_path(path: &Path) -> Result<PathBuf> {
    // `dunce`: on Windows the real path without the `\\?\` prefix people would see.
    dunce::canonicalize(path).or_else(|_| crate::queue::clean_path(path))
}

/// The kept folder of `owner` named `path` (as listed, or any other name of it — also for
/// folders kept under another name before paths were resolved).
fn kept_folder(journal: &Journal, owner: &Owner, path: &Path) -> Result<SavedFolder> {
    let real = folder_path(path)?;
    journal
        .folders(owner)?
        .into_iter()
        .find(|f| {
            f.folder.path == path
                || f.folder.path == real
                || folder_path(&f.folder.path).is_ok_and(|kept| kept == real)
        })
        .ok_or_else(|| Error::NoSuchFolder(path.display().to_string()))
}
