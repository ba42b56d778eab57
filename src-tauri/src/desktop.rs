//! The desktop's state around one engine: which server, which keychain, the settings (a JSON
//! file in the data dir, never a secret; see `settings`), what the user picked, and the
//! background tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_engine::conflict::OnConflict;
use ferry_engine::events::{Event, EventSink};
use ferry_engine::keychain::{Keychain, MemoryKeychain, OsKeychain};
use ferry_engine::network::Network;
use ferry_engine::profile;
use ferry_engine::secret::Secret;
use ferry_engine::token_server::TokenServer;
use ferry_engine::watch::Folder;
use ferry_engine::{Engine, EngineConfig};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::error::{CommandError, CommandResult};
use crate::picks::Picks;
use crate::settings::{self, ProxyMode, Settings};
use crate::words::{Lang, Words};

pub(crate) struct Running {
    pub(crate) engine: Arc<Engine>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Ends the background tasks, waits until they are gone, and closes the engine: uploads in
    /// flight stop (their rows resume at the next start) and the data dir is let go, so that
    /// another engine can open it at once.
    async fn end(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        self.engine.close().await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The keychain entry of the password of the manual proxy at `url` for `user`: another
/// address or user never finds it (a password is never sent to another proxy, even when the
/// keychain could not forget it).
fn proxy_entry(settings: &Settings) -> String {
    format!(
        "proxy-password {} at {}",
        settings.proxy_user.trim(),
        settings.proxy_url.trim()
    )
}

/// A proxy password just kept in the OS keychain, with the one it replaced (if any), until
/// the settings that name it are saved.
struct Replaced {
    entry: String,
    /// What was kept before: none, a password — or unknown (the keychain could not say), when
    /// nothing is put back.
    before: Option<Option<Secret>>,
}

impl Replaced {
    /// Keeps `password` under `entry`, remembering what was there. Talks to the keychain:
    /// call it off the async threads.
    fn keep(entry: &str, password: &Secret) -> CommandResult<Self> {
        let keychain = OsKeychain::open(profile::keychain_service())?;
        let before = match keychain.get(entry) {
            Ok(before) => Some(before),
            Err(err) => {
                tracing::warn!(code = %err.code(), "could not read the proxy password it replaces");
                None
            }
        };
        keychain.set(entry, password)?;
        Ok(Self {
            entry: entry.to_owned(),
            before,
        })
    }

    /// Puts back what was kept before (a password, or none; nothing when that is unknown); a
    /// keychain that will not is logged.
    async fn undo(self) {
        let Some(before) = self.before else {
            return;
        };
        let undone = blocking("putting back a proxy password", move || {
            let keychain = OsKeychain::open(profile::keychain_service())?;
            match &before {
                Some(before) => keychain.set(&self.entry, before)?,
                None => keychain.delete(&self.entry)?,
            }
            Ok(())
        })
        .await;
        if let Err(err) = undone {
            tracing::warn!(code = %err.code(), "could not put back the proxy password");
        }
    }
}

/// Runs `work` off the async threads (the keychain over D-Bus, a CA file read, the clients a
/// network makes); `what` names it if the task is lost.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CommandError::new("internal", format!("{what}: {e}")))?
}

/// An engine just opened, and the count of network saves before it read the settings: the
/// settings saved before it starts apply at its start.
pub(crate) struct Opened {
    engine: Arc<Engine>,
    network_saves: u64,
}

/// The desktop app's state.
pub(crate) struct Desktop {
    pub(crate) data_dir: PathBuf,
    pub(crate) events: EventSink,
    pub(crate) running: RwLock<Option<Running>>,
    /// Held through each sign-in, session check, sign-out and shut-down, which open or end
    /// the engine: one at a time, each after the last one's engine has started or let go of
    /// the data dir (two at once would find it held and fail — a double click, a reload). One
    /// waits for the one under way: a sign-in's request (up to its timeout), a keychain waiting
    /// to be unlocked; Quit only a few seconds.
    session: tokio::sync::Mutex<()>,
    /// Set by [`Desktop::shut_down`]: the app is quitting, and no engine opens again.
    quitting: std::sync::atomic::AtomicBool,
    /// Files and folders the user chose, which the webview refers to by id.
    pub(crate) picks: Picks,
    /// The settings as saved, read from disk once (every notification and queue read asks).
    settings: std::sync::RwLock<Settings>,
    /// Held while settings are saved and applied: two saves apply one after the other.
    saving: tokio::sync::Mutex<()>,
    /// How many saves changed the network (a new proxy password too), and the network the
    /// last of them made (its password in memory): an engine opened before one of them takes
    /// it at its start, without asking the keychain again.
    saved_network: std::sync::Mutex<(u64, Option<Network>)>,
}

/// A sign-in as the form sends it.
pub(crate) struct SignIn {
    pub(crate) server: String,
    pub(crate) username: String,
    pub(crate) password: Secret,
    /// Keep the session in the OS keychain (otherwise in memory only).
    pub(crate) remember: bool,
    /// The user accepted plain `http://` to a host that is not this computer.
    pub(crate) allow_insecure: bool,
    /// A connection profile's text (a token server), instead of `server`.
    pub(crate) connection: Option<String>,
}

impl Desktop {
    pub(crate) fn new(data_dir: PathBuf, events: EventSink) -> Self {
        Self {
            settings: std::sync::RwLock::new(settings::load(&data_dir)),
            saving: tokio::sync::Mutex::new(()),
            saved_network: std::sync::Mutex::new((0, None)),
            data_dir,
            events,
            running: RwLock::new(None),
            session: tokio::sync::Mutex::new(()),
            quitting: std::sync::atomic::AtomicBool::new(false),
            picks: Picks::default(),
        }
    }

    /// Signs in to the server the user gave (after checking its address) and starts uploading;
    /// the server is remembered for the next start.
    pub(crate) async fn sign_in(&self, request: SignIn) -> CommandResult<ferry_protocol::User> {
        let tokens = match &request.connection {
            Some(text) => Some(profile::checked_token_server(
                TokenServer::parse(text)?,
                request.allow_insecure,
            )?),
            None => None,
        };
        let server = match &tokens {
            Some(tokens) => tokens.token_url.clone(),
            None => profile::checked_server(&request.server, request.allow_insecure)?,
        };
        let _one_at_a_time = self.session.lock().await;
        if self.quitting() {
            return Err(CommandError::new("quitting", "Ferry is quitting"));
        }
        // Signed in already (a session that expired, or another account): that engine lets
        // go of the data dir first.
        let before = self.running.write().await.take();
        if let Some(running) = before {
            running.end().await;
        }
        let opened = self
            .open(&server, !request.remember, tokens.clone())
            .await?;
        let user = opened
            .engine
            .sign_in(
                &request.username,
                &request.password,
                &profile::device_name(),
            )
            .await?;
        profile::remember_server(&self.data_dir, &server)?;
        if let Some(tokens) = &tokens {
            profile::remember_token_server(&self.data_dir, tokens)?;
        }
        self.start(opened).await?;
        Ok(user)
    }

    /// Signs out: uploads stop, the session and the storage credentials are forgotten, and the
    /// data dir is let go.
    pub(crate) async fn sign_out(&self) -> CommandResult<()> {
        let _one_at_a_time = self.session.lock().await;
        let running = self.running.write().await.take();
        if let Some(running) = running {
            let signed_out = running.engine.sign_out().await;
            running.end().await;
            signed_out?;
        }
        Ok(())
    }

    /// Resumes the session kept in the keychain for the remembered server, if it is still good
    /// — or, when the server cannot be reached (started before the network), while it has not
    /// expired. No keychain is not an error here: the sign-in form offers memory only. Other
    /// failures (the data dir in use, a damaged journal) are the window's to show.
    /// The remembered server passed [`profile::checked_server`] when the user signed in.
    pub(crate) async fn restore(&self) -> CommandResult<()> {
        let _one_at_a_time = self.session.lock().await;
        if self.quitting() || self.running.read().await.is_some() {
            return Ok(());
        }
        let server = self.server();
        let tokens = profile::remembered_token_server(&self.data_dir, &server);
        let opened = match self.open(&server, false, tokens).await {
            Ok(opened) => opened,
            Err(err) if err.code() == "keychain_unavailable" => return Ok(()),
            Err(err) => return Err(err),
        };
        if opened.engine.restore_even_offline().await?.is_some() {
            self.start(opened).await?;
        }
        Ok(())
    }

    fn saved_network(&self) -> std::sync::MutexGuard<'_, (u64, Option<Network>)> {
        self.saved_network.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn server(&self) -> String {
        profile::remembered_server(&self.data_dir).unwrap_or_else(|| profile::DEFAULT_SERVER.into())
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The language the settings choose, the OS's when they leave it to the system (asked
    /// each time: a change in the settings shows in the next sentence).
    pub(crate) fn lang(&self) -> Lang {
        self.settings().language.resolve()
    }

    /// The app's sentences in [`Desktop::lang`].
    pub(crate) fn words(&self) -> &'static Words {
        self.lang().words()
    }

    /// Whether a password is kept for the manual proxy of the saved settings (asked of the OS
    /// keychain off the async threads); a keychain that cannot be read says no (the settings
    /// still show) and is logged.
    pub(crate) async fn proxy_password_saved(&self) -> bool {
        let settings = self.settings();
        let kept = blocking("reading the proxy password", move || {
            Self::proxy_password_of(&settings)
        })
        .await;
        match kept {
            Ok(kept) => kept.is_some(),
            Err(err) => {
                tracing::warn!(code = %err.code(), "could not ask the keychain for the proxy password");
                false
            }
        }
    }

    /// The password kept for the manual proxy of `settings` — read only when a manual proxy
    /// with a user name is set; a keychain that cannot be read is an error (not a wrong
    /// password). Talks to the keychain: call it off the async threads.
    fn proxy_password_of(settings: &Settings) -> CommandResult<Option<Secret>> {
        if settings.proxy_mode != ProxyMode::Manual || settings.proxy_user.trim().is_empty() {
            return Ok(None);
        }
        let keychain = OsKeychain::open(profile::keychain_service())?;
        Ok(keychain.get(&proxy_entry(settings))?)
    }

    /// The network the saved settings describe, the proxy's password from the keychain (read
    /// off the async threads).
    async fn network(&self) -> CommandResult<ferry_engine::network::Network> {
        let settings = self.settings();
        blocking("reading the network settings", move || {
            let password = Self::proxy_password_of(&settings)?;
            Ok(settings.network(password))
        })
        .await
    }

    /// Forgets the password of `before`'s proxy when `next` names another address or user (a
    /// password is never sent to another proxy); a keychain that will not forget is logged.
    async fn forget_old_proxy_password(before: Settings, next: &Settings) {
        if proxy_entry(&before) == proxy_entry(next) || before.proxy_user.trim().is_empty() {
            return;
        }
        let forgotten = blocking("forgetting a proxy password", move || {
            OsKeychain::open(profile::keychain_service())?.delete(&proxy_entry(&before))?;
            Ok(())
        })
        .await;
        if let Err(err) = forgotten {
            tracing::warn!(code = %err.code(), "could not forget the old proxy password");
        }
    }

    /// "Test connection" with the network settings as saved: signed in, the app server and
    /// the store; signed out, only `server` (the one the sign-in form names; the remembered
    /// one without it).
    pub(crate) async fn check_connection(
        &self,
        server: Option<String>,
    ) -> CommandResult<ferry_engine::ConnectionCheck> {
        let network = self.network().await?;
        if let Ok(engine) = self.engine().await {
            return Ok(engine.check_connection(&network).await);
        }
        // Only asked for its health: plain http:// elsewhere is fine for that.
        let server = match server.filter(|s| !s.trim().is_empty()) {
            Some(typed) => profile::checked_server(&typed, true)?,
            None => self.server(),
        };
        Ok(ferry_engine::ConnectionCheck {
            server: ferry_engine::check_server(&network, &server).await,
            store: None,
        })
    }

    /// Keeps `next` on disk, then as the settings in use — by the running engine too: the
    /// rule for files already at the store (for files added from now on), the upload limits
    /// (for uploads under way too) and the network (for the requests from now on). An engine
    /// that starts meanwhile waits, then takes them (see [`Desktop::start`]).
    /// `password`: a new password for `next`'s proxy, kept in the OS keychain once the
    /// network it makes is known to be usable; an unusable one changes nothing.
    pub(crate) async fn save_settings(
        &self,
        next: &Settings,
        password: Option<Secret>,
    ) -> CommandResult<()> {
        if password.is_some() && next.proxy_user.trim().is_empty() {
            let words = self.words();
            return Err(CommandError::worded(
                words,
                "invalid_settings",
                words.proxy_password_needs_user,
            ));
        }
        let _saving = self.saving.lock().await;
        let before = self.settings();
        // The network only when it changed (a new password changes it; a save of other
        // settings never fails on it): made and checked before anything changes, and a new
        // password kept in the keychain only then (put back if the save fails after all; an
        // engine opened in between keeps it in memory until its session ends). Not under the
        // `running` lock: a keychain may wait for the user to unlock it.
        let (network, replaced) = if password.is_some() || !next.same_network(&before) {
            let next = next.clone();
            let (network, replaced) = blocking("checking the network", move || {
                let kept = match &password {
                    Some(password) => Some(password.clone()),
                    None => Self::proxy_password_of(&next)?,
                };
                let network = next.network(kept);
                network.check()?;
                let replaced = match &password {
                    Some(password) => Some(Replaced::keep(&proxy_entry(&next), password)?),
                    None => None,
                };
                Ok((network, replaced))
            })
            .await?;
            (Some(network), replaced)
        } else {
            (None, None)
        };
        // Held to the end: an engine that starts meanwhile waits, then takes these settings.
        let running = self.running.read().await;
        let engine = running.as_ref().map(|r| r.engine.clone());
        let ready = match self
            .ready_and_saved(engine.as_ref(), network.as_ref(), next)
            .await
        {
            Ok(ready) => ready,
            Err(err) => {
                // Nothing changed: nor does the keychain keep a password the settings do not
                // name (put back as it was, outside the lock: a keychain may wait).
                drop(running);
                if let Some(replaced) = replaced {
                    replaced.undo().await;
                }
                return Err(err);
            }
        };
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        if let Some(network) = network {
            let mut saved = self.saved_network();
            *saved = (saved.0 + 1, Some(network));
        }
        if let Some(engine) = engine {
            engine.set_on_conflict(next.on_conflict);
            engine.set_transfer(&next.transfer()).await;
            if let Some(ready) = ready {
                engine.use_network(ready);
            }
        }
        drop(running);
        Self::forget_old_proxy_password(before, next).await;
        Ok(())
    }

    /// The steps of a save that can fail, before anything changes: the running engine's
    /// clients for a new `network` made, then `next` written to disk.
    async fn ready_and_saved(
        &self,
        engine: Option<&Arc<Engine>>,
        network: Option<&Network>,
        next: &Settings,
    ) -> CommandResult<Option<ferry_engine::NetworkReady>> {
        let ready = match (engine, network) {
            (Some(engine), Some(network)) => {
                let (engine, network) = (engine.clone(), network.clone());
                Some(
                    blocking("changing the network", move || {
                        Ok(engine.prepare_network(&network)?)
                    })
                    .await?,
                )
            }
            _ => None,
        };
        settings::save(&self.data_dir, next)?;
        Ok(ready)
    }

    /// Watches a folder the user picked, for the signed-in account (kept by the engine).
    pub(crate) async fn add_folder(
        &self,
        pick: u64,
        prefix: String,
        excludes: Vec<String>,
        on_conflict: OnConflict,
    ) -> CommandResult<()> {
        let engine = self.engine().await?;
        let path = self.picks.take(&[pick], self.words())?.remove(0);
        engine
            .add_folder(Folder {
                path,
                prefix,
                excludes,
                on_conflict,
            })
            .await?;
        Ok(())
    }

    /// Turns watching a kept folder on or off.
    pub(crate) async fn set_folder_enabled(&self, path: &Path, enabled: bool) -> CommandResult<()> {
        Ok(self
            .engine()
            .await?
            .set_folder_enabled(path, enabled)
            .await?)
    }

    /// Stops watching a folder and forgets it.
    pub(crate) async fn remove_folder(&self, path: &Path) -> CommandResult<()> {
        Ok(self.engine().await?.remove_folder(path).await?)
    }

    /// Folders kept by earlier versions in `folders.json` (one list for whoever signed in) become
    /// the folders of the first account signed in here since; the file is then renamed.
    async fn adopt_old_folders(&self, engine: &Engine) -> CommandResult<()> {
        let Some(old) = old_folders(&self.data_dir) else {
            return Ok(());
        };
        for folder in old {
            let path = folder.path.clone();
            let added = engine
                .add_folder(Folder {
                    path: folder.path,
                    prefix: folder.prefix,
                    excludes: folder.excludes,
                    // They replaced what was at their keys: they still do.
                    on_conflict: OnConflict::Overwrite,
                })
                .await;
            match added {
                Ok(()) if !folder.enabled => engine.set_folder_enabled(&path, false).await?,
                Ok(()) => {}
                // Kept already, under this name or another (a link and its target, `a/../a`).
                Err(ferry_engine::Error::FolderKnown(_)) => {}
                // Gone since, or a pattern no longer taken: the others are adopted.
                Err(err) if matches!(err.code(), "folder_missing" | "invalid_pattern") => {
                    tracing::warn!(folder = %path.display(), error = %err, "an earlier version's folder is not adopted");
                }
                Err(err) => return Err(err.into()),
            }
        }
        let file = self.data_dir.join("folders.json");
        std::fs::rename(&file, self.data_dir.join("folders.json.adopted"))
            .map_err(|e| CommandError::new("io", format!("folders.json: {e}")))
    }

    /// Opens an engine against `server` (or the token server `tokens`) with the OS keychain, or
    /// memory when asked, and the settings as saved now — off the async threads: it talks to
    /// the keychain, asks the desktop for its proxy, opens the journal, and waits (up to
    /// seconds) for the data dir an engine of this process is still letting go of.
    async fn open(
        &self,
        server: &str,
        memory_only: bool,
        tokens: Option<TokenServer>,
    ) -> CommandResult<Opened> {
        // Counted first: a save under way now is counted after it changed the settings.
        let network_saves = self.saved_network().0;
        let with = self.settings();
        let (data_dir, events, server) = (
            self.data_dir.clone(),
            self.events.clone(),
            server.to_owned(),
        );
        blocking("opening the engine", move || {
            let keychain: Arc<dyn Keychain> = if memory_only {
                Arc::new(MemoryKeychain::default())
            } else {
                Arc::new(OsKeychain::open(profile::keychain_service())?)
            };
            let network = with.network(Self::proxy_password_of(&with)?);
            let engine = Engine::open(EngineConfig {
                data_dir,
                server,
                keychain,
                events,
                transfer: with.transfer(),
                grant: Default::default(),
                device: profile::device_name(),
                token_server: tokens,
                network,
            })?;
            engine.set_on_conflict(with.on_conflict);
            Ok(Opened {
                engine: Arc::new(engine),
                network_saves,
            })
        })
        .await
    }

    /// Starts the scheduler and the watcher for a signed-in engine; one that cannot start is
    /// closed (the data dir let go).
    async fn start(&self, opened: Opened) -> CommandResult<()> {
        let Opened {
            engine,
            network_saves,
        } = opened;
        let mut running = match self.prepare(&engine, network_saves).await {
            Ok(running) => running,
            Err(err) => {
                engine.close().await;
                return Err(err);
            }
        };
        let watcher = engine.watcher();
        // A grant from the start and fresh ones while signed in, so the status bar's countdown
        // and refresh state are real even while nothing uploads.
        let credentials = engine.credentials().clone();
        let keep_fresh = tokio::spawn(async move {
            let ended = credentials.keep_fresh().await;
            tracing::info!(reason = %ended, "stopped refreshing storage credentials");
        });
        let transfer = engine.transfer().clone();
        let events = self.events.clone();
        let run_transfer = tokio::spawn(async move {
            if let Err(err) = transfer.run().await {
                tracing::error!(error = %err, "the scheduler stopped");
                events(Event::SessionExpired);
            }
        });
        let run_watcher = tokio::spawn(async move {
            if let Err(err) = watcher.run().await {
                tracing::error!(error = %err, "the folder watcher stopped");
            }
        });
        *running = Some(Running {
            engine,
            tasks: vec![keep_fresh, run_transfer, run_watcher],
        });
        Ok(())
    }

    /// Readies `engine` to start: folders adopted and watched, and the settings saved since it
    /// was opened applied — under the `running` lock, returned held: a save applies its
    /// settings only to the engine it finds running, and waits for this lock.
    async fn prepare(
        &self,
        engine: &Arc<Engine>,
        network_saves: u64,
    ) -> CommandResult<tokio::sync::RwLockWriteGuard<'_, Option<Running>>> {
        self.adopt_old_folders(engine).await?;
        engine.watch_saved_folders().await?;
        let running = self.running.write().await;
        let settings = self.settings();
        let (saves, saved) = self.saved_network().clone();
        if saves != network_saves
            && let Some(network) = saved
        {
            let engine = engine.clone();
            blocking("changing the network", move || {
                Ok(engine.set_network(&network)?)
            })
            .await?;
        }
        engine.set_transfer(&settings.transfer()).await;
        engine.set_on_conflict(settings.on_conflict);
        Ok(running)
    }

    /// Adds what the user picked (by pick id) to the queue.
    pub(crate) async fn enqueue_picked(&self, ids: &[u64]) -> CommandResult<()> {
        let engine = self.engine().await?;
        engine.enqueue(&self.picks.take(ids, self.words())?).await?;
        Ok(())
    }

    /// Adds files and folders dropped on the window (the OS gives their paths to Rust; the
    /// webview never sees a drop).
    pub(crate) async fn enqueue_dropped(&self, paths: &[PathBuf]) -> CommandResult<()> {
        self.engine().await?.enqueue(paths).await?;
        Ok(())
    }

    /// Pauses, resumes, retries (failed ones, and confirmations waiting for their next attempt)
    /// or cancels the signed-in account's files: `ids`, or all of them. Another account's file
    /// is `forbidden`: it waits for its owner.
    pub(crate) async fn control(&self, action: &str, ids: Option<Vec<i64>>) -> CommandResult<()> {
        let engine = self.engine().await?;
        if let Some(ids) = &ids {
            self.check_mine(&engine, ids).await?;
        }
        let ids = ids.as_deref();
        match action {
            "pause" => engine.transfer().pause(ids).await?,
            "resume" => engine.transfer().resume(ids).await?,
            // Failed files and waiting confirmations: what the user paused stays paused.
            "retry" => engine.transfer().retry(ids).await?,
            "cancel" => engine.transfer().cancel(ids).await?,
            other => {
                return Err(CommandError::new(
                    "invalid_request",
                    format!("unknown action {other}"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses `ids` when one is another account's file (see [`crate::queue::check_mine`]).
    pub(crate) async fn check_mine(&self, engine: &Arc<Engine>, ids: &[i64]) -> CommandResult<()> {
        let (engine, ids, words) = (engine.clone(), ids.to_vec(), self.words());
        blocking("checking the files", move || {
            crate::queue::check_mine(&engine, &ids, words)
        })
        .await
    }

    /// Whether an account is signed in (uploads and watched folders run), without waiting:
    /// for window events, which cannot wait. A sign-in, session check or sign-out under way
    /// (the session lock, or the running engine's, busy) counts: closing the window then hides
    /// it rather than quit in the middle of one.
    pub(crate) fn is_running(&self) -> bool {
        self.session.try_lock().is_err() || self.running.try_read().map_or(true, |r| r.is_some())
    }

    /// Stops uploads in flight and lets go of the journal, for Quit — after a sign-in under
    /// way (whose engine ends too), all of it within `wait`: what is cut off resumes at the
    /// next start from what the journal holds. No engine opens after it.
    pub(crate) async fn shut_down(&self, wait: std::time::Duration) {
        let ended = async {
            let _one_at_a_time = self.session.lock().await;
            self.quitting
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let running = self.running.write().await.take();
            if let Some(running) = running {
                running.end().await;
            }
        };
        let _ = tokio::time::timeout(wait, ended).await;
    }

    fn quitting(&self) -> bool {
        self.quitting.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) async fn engine(&self) -> CommandResult<Arc<Engine>> {
        self.running
            .read()
            .await
            .as_ref()
            .map(|r| r.engine.clone())
            .ok_or_else(|| {
                let words = self.words();
                CommandError::worded(words, "signed_out", words.sign_in_first)
            })
    }
}

/// A folder as earlier versions kept it in `folders.json`.
#[derive(Debug, Deserialize, PartialEq)]
struct OldFolder {
    path: PathBuf,
    prefix: String,
    excludes: Vec<String>,
    enabled: bool,
}

/// The folders an earlier version kept in `folders.json` of `data_dir`, if it has that file.
/// A file that is not such a list gives none: it is kept as `folders.json.damaged` (nothing
/// of it lost) and the log says its folders were not adopted.
fn old_folders(data_dir: &Path) -> Option<Vec<OldFolder>> {
    let file = data_dir.join("folders.json");
    let text = std::fs::read_to_string(&file).ok()?;
    match serde_json::from_str(&text) {
        Ok(old) => Some(old),
        Err(err) => {
            let kept = data_dir.join("folders.json.damaged");
            let moved = std::fs::rename(&file, &kept);
            tracing::warn!(
                error = %err,
                kept = %kept.display(),
                moved = moved.is_ok(),
                "an earlier version's folders.json is damaged: its folders are not adopted"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// An earlier version's `folders.json` is read for its folders; a damaged one gives none
    /// and is kept beside as `folders.json.damaged` rather than taken for an empty list.
    #[test]
    fn an_earlier_versions_damaged_folder_list_is_kept_aside_not_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(old_folders(dir.path()), None, "no file");
        let file = dir.path().join("folders.json");
        std::fs::write(
            &file,
            r#"[{"path":"/a","prefix":"p/","excludes":["*.tmp"],"enabled":false}]"#,
        )
        .unwrap();
        let read = old_folders(dir.path()).unwrap();
        assert_eq!(
            read,
            [OldFolder {
                path: "/a".into(),
                prefix: "p/".into(),
                excludes: vec!["*.tmp".into()],
                enabled: false,
            }]
        );
        let damaged = r#"[{"path":"/a","prefix":"p/""#;
        std::fs::write(&file, damaged).unwrap();
        assert_eq!(old_folders(dir.path()), None);
        assert!(!file.exists());
        let kept = std::fs::read_to_string(dir.path().join("folders.json.damaged")).unwrap();
        assert_eq!(kept, damaged);
    }

    /// An engine of this process holding `data_dir`, as the last session's does while it ends.
    fn holding(desktop: &Desktop, data_dir: &std::path::Path, events: EventSink) -> Engine {
        Engine::open(EngineConfig {
            data_dir: data_dir.to_owned(),
            server: "http://127.0.0.1:9".into(),
            keychain: Arc::new(MemoryKeychain::default()),
            events,
            transfer: desktop.settings().transfer(),
            grant: Default::default(),
            device: "the other session".into(),
            token_server: None,
            network: desktop.settings().network(None),
        })
        .unwrap()
    }

    /// A sign-in to a server nobody answers (it waits for the data dir first).
    fn nowhere() -> SignIn {
        SignIn {
            server: "http://127.0.0.1:9".into(),
            username: "alice".into(),
            password: Secret::new("not used".to_owned()),
            remember: false,
            allow_insecure: false,
            connection: None,
        }
    }

    /// Signed out, the app is not running; while a sign-in is under way it is — closing the
    /// window must not quit in the middle. A real sign-in, held up waiting for the data dir
    /// another engine of this process still holds (as when signing in again right after
    /// signing out), is looked at while it waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_in_under_way_counts_as_running() {
        let dir = tempfile::tempdir().unwrap();
        let events: EventSink = Arc::new(|_| {});
        let desktop = Arc::new(Desktop::new(dir.path().to_owned(), events.clone()));
        assert!(!desktop.is_running());
        let holder = holding(&desktop, dir.path(), events);
        let signing_in = tokio::spawn({
            let desktop = desktop.clone();
            async move { desktop.sign_in(nowhere()).await }
        });
        // (It waits up to 3 s for the data dir.)
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !signing_in.is_finished(),
            "the sign-in waits for the data dir"
        );
        assert!(desktop.is_running(), "a sign-in under way counts");
        let signed_in = signing_in.await.unwrap();
        assert!(signed_in.is_err(), "the data dir stays held");
        assert!(!desktop.is_running());
        holder.close().await;
    }

    /// A sign-in waits for the data dir (held here by an engine this process has not let go
    /// of, as when the user signs in again while the last session's engine ends) off the
    /// async threads: the window's other commands go on meanwhile. On a one-thread runtime, a
    /// wait on that thread would stop everything else for the 3 s of the handover.
    #[tokio::test(flavor = "current_thread")]
    async fn a_sign_in_waiting_for_the_data_dir_leaves_the_async_thread_free() {
        let dir = tempfile::tempdir().unwrap();
        let events: EventSink = Arc::new(|_| {});
        let desktop = Desktop::new(dir.path().to_owned(), events.clone());
        let holder = holding(&desktop, dir.path(), events);
        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                for _ in 0..1_000 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let signed_in = desktop.sign_in(nowhere()).await;
        let err = signed_in.expect_err("the data dir is held");
        assert_eq!(err.code(), "data_dir_in_use", "{err:?}");
        let ticked = ticks.load(Ordering::SeqCst);
        ticker.abort();
        holder.close().await;
        // About 150 in the 3 s; none while the thread itself waits.
        assert!(
            ticked >= 50,
            "the async thread was held: {ticked} ticks in the wait"
        );
    }
}
