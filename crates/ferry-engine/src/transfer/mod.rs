//! The transfer scheduler: takes the signed-in account's runnable files from the journal,
//! uploads a few at a time with a global limit on parts in flight and a per-file limit, backs
//! failed files off, confirms uploads to the app server, and obeys pause, resume and cancel —
//! for the signed-in account's files only.
//!
//! A task is recorded as running before it can start, under the same lock it takes to say it
//! ended, so a task that ends at once cannot leave a stale entry behind (which would hold a
//! slot forever). Every state change goes through the journal's compare-and-set: a task that
//! finds its file paused or cancelled stops without writing. While the session changes hands
//! the scheduler is held: nothing starts until every task of the old account has ended.

mod callback;
mod confirm;
mod multipart;
mod progress;
mod schedule;
mod source;
mod strays;
pub(crate) mod throttle;
mod upload;
mod window;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, Result};
use crate::events::{ErrorInfo, Event, EventSink};
use crate::journal::{FileState, Journal, Owner};
use crate::session::Session;
use crate::storage::Storage;

pub(crate) use self::source::holds;
pub use self::upload::part_size;

/// How uploads are shaped.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// Files sending at once, at most. Small files are mostly round trips, so many go at once
    /// — the engine starts with 64 and goes wider while more move more files per second (a
    /// distant store); the bytes they hold are bounded by [`TransferSettings::big_files`] and
    /// the parts limits.
    pub files: usize,
    /// Files sent in parts (at least the single-PUT threshold) uploading at once.
    pub big_files: usize,
    /// Confirmations of files that finish together go to the app server in one request.
    pub batch_confirmations: bool,
    /// Parts in flight across all files, at most: the engine starts with 8 and widens
    /// towards this while more parts in flight move more bytes (a distant store that caps
    /// each connection).
    pub parts: usize,
    /// Parts in flight per file, at most.
    pub per_file_parts: usize,
    /// Files below this size go up in one PUT.
    pub single_put_threshold: u64,
    /// Smallest part size (S3 needs ≥ 5 MiB).
    pub min_part_size: u64,
    /// Bytes per second across all uploads, when limited.
    pub bandwidth: Option<u64>,
    /// Failed attempts after which a file waits for the user.
    pub max_attempts: u32,
    /// A request that stops moving for this long — the store takes no more of its body, or
    /// gives no answer once it has it — is given up (and retried).
    pub stall_timeout: Duration,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            files: 128,
            big_files: 4,
            batch_confirmations: true,
            parts: 16,
            per_file_parts: 16,
            single_put_threshold: 16 * 1024 * 1024,
            min_part_size: 8 * 1024 * 1024,
            bandwidth: None,
            max_attempts: 8,
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// The most files sent in parts at once a setting may ask for.
const MOST_BIG_FILES: usize = 1024;

/// What the upload tasks share.
pub(crate) struct Shared {
    pub(crate) events: EventSink,
    pub(crate) journal: Arc<Journal>,
    pub(crate) storage: Storage,
    pub(crate) session: Arc<Session>,
    /// As set at the start, or since (see [`Transfer::set_settings`]): read where used.
    settings: std::sync::RwLock<TransferSettings>,
    /// The window of parts in flight, adapted to the link.
    pub(crate) parts: Arc<window::Window>,
    /// Slots for files sent in parts ([`TransferSettings::big_files`]), and how many there
    /// are meant to be.
    pub(crate) big_files: Arc<Semaphore>,
    big_files_meant: AtomicUsize,
    /// Held while settings change: two changes apply one after the other, never mixed.
    changing: tokio::sync::Mutex<()>,
    /// Confirmations waiting to go to the app server together.
    pub(crate) confirmations: confirm::Confirmations,
    pub(crate) device: String,
    pub(crate) device_id: String,
    /// Files whose upload the app server recorded from the store's callback, with that
    /// upload's id: its client confirmation is not needed. Kept in memory only; after a
    /// restart the client confirmation (idempotent on the same id) is sent instead.
    pub(crate) recorded_by_callback: Mutex<std::collections::HashMap<i64, String>>,
}

impl Shared {
    /// The settings in force now.
    pub(crate) fn settings(&self) -> TransferSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs journal work on a blocking thread (SQLite waits on the disk; async workers must
    /// not).
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.journal.blocking(f).await
    }

    /// Runs `f` in the journal's next group commit (journal work only: see
    /// [`Journal::grouped`]).
    pub(crate) async fn grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.journal.grouped(f).await
    }
}

/// Backoff for a file's `attempts`-th failure: seconds, then minutes, capped at 10 minutes.
pub fn file_backoff(attempts: u32) -> Duration {
    Duration::from_secs((2u64 << attempts.min(9)).min(600))
}

/// Aborts a task when dropped: a reporter lives exactly as long as the upload it reports on.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs uploads from the journal.
pub struct Transfer {
    shared: Arc<Shared>,
    events: EventSink,
    running: Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>,
    /// Files stopped (paused, cancelled, replaced) with no task running since the scheduler
    /// last chose files: if it claimed one of them, it does not start it.
    stopped: Mutex<HashSet<i64>>,
    wake: Notify,
    signed_out: AtomicBool,
    /// Where a proxy refused the credentials: nothing starts until the user acts.
    proxy_refused: Mutex<Option<String>>,
    /// Which network is in use: one more at each change (a refusal from an older one
    /// stops nothing).
    network: AtomicU64,
    /// While above zero, nothing new starts (the session is changing hands).
    holds: AtomicUsize,
    /// Intakes of files given still journaling them: while above zero, `run_until_idle`
    /// waits for more.
    journaling: AtomicUsize,
    /// Tasks done sending and waiting for their confirmation: they hold no file slot.
    confirming: AtomicUsize,
    /// How many files send at once, adapted to the link.
    sending: window::Meter,
    /// The last scheduling left runnable files waiting for a slot.
    backlog: AtomicBool,
    /// When the scheduler looks for files no task has.
    strays: strays::Strays,
}

/// Files sending at once before anything was measured.
const FILES_START: usize = 64;

/// Tasks waiting for confirmations at most, per file slot (beyond that nothing new starts
/// until the app server catches up).
const CONFIRMING_PER_SLOT: usize = 4;

/// Counts an intake of files as journaling while it lives (see [`Transfer::journaling`]).
pub(crate) struct Journaling<'a>(&'a Transfer);

impl Drop for Journaling<'_> {
    fn drop(&mut self) {
        self.0.journaling.fetch_sub(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// Counts a task as confirming while it lives.
pub(crate) struct Confirming<'a>(&'a Transfer);

impl Drop for Confirming<'_> {
    fn drop(&mut self) {
        self.0.confirming.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a `run_until_idle` left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files confirmed.
    pub confirmed: u64,
    /// Files failed and waiting for the user.
    pub failed: u64,
    /// Files skipped.
    pub skipped: u64,
}

/// Holds the scheduler while it lives (see [`Transfer::hold`]).
pub(crate) struct Hold<'a>(&'a Transfer);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.holds.fetch_sub(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

impl Transfer {
    pub(crate) fn new(
        journal: Arc<Journal>,
        storage: Storage,
        session: Arc<Session>,
        settings: TransferSettings,
        events: EventSink,
        device: String,
        device_id: String,
    ) -> Self {
        let parts = window::Window::new(settings.parts);
        let files = settings.files.max(1);
        let big_files_meant = settings.big_files.clamp(1, MOST_BIG_FILES);
        let big_files = Arc::new(Semaphore::new(big_files_meant));
        let big_files_meant = AtomicUsize::new(big_files_meant);
        Self {
            shared: Arc::new(Shared {
                events: events.clone(),
                journal,
                storage,
                session,
                settings: std::sync::RwLock::new(settings),
                parts,
                big_files,
                big_files_meant,
                changing: tokio::sync::Mutex::new(()),
                confirmations: confirm::Confirmations::default(),
                device,
                device_id,
                recorded_by_callback: Mutex::new(Default::default()),
            }),
            events,
            running: Mutex::new(HashMap::new()),
            stopped: Mutex::default(),
            wake: Notify::new(),
            signed_out: AtomicBool::new(false),
            proxy_refused: Mutex::new(None),
            network: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
            journaling: AtomicUsize::new(0),
            confirming: AtomicUsize::new(0),
            sending: window::Meter::new(FILES_START, files),
            backlog: AtomicBool::new(false),
            strays: strays::Strays::default(),
        }
    }

    /// Counts the calling task as done sending until the guard drops, and lets the scheduler
    /// start another file in its slot.
    /// `sent`: the task sent the file (it did not only confirm it), which the files-per-second
    /// measurement counts.
    pub(crate) fn confirming(&self, sent: bool) -> Confirming<'_> {
        self.confirming.fetch_add(1, Ordering::SeqCst);
        if sent {
            self.sending.done(1);
        }
        self.wake.notify_one();
        Confirming(self)
    }

    /// File slots free: tasks still sending hold one each; all tasks together stay under
    /// [`CONFIRMING_PER_SLOT`] per slot.
    fn free_slots(&self, running: usize) -> usize {
        let files = self.sending.width();
        let sending = running.saturating_sub(self.confirming.load(Ordering::SeqCst));
        files
            .saturating_sub(sending)
            .min((files * CONFIRMING_PER_SLOT).saturating_sub(running))
    }

    /// The settings in force now.
    pub(crate) fn settings(&self) -> TransferSettings {
        self.shared.settings()
    }

    /// The store's client.
    pub(crate) fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    /// See [`crate::Engine::set_transfer`].
    pub(crate) async fn set_settings(&self, next: &TransferSettings) {
        let shared = &self.shared;
        let _changing = shared.changing.lock().await;
        *shared.settings.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        shared.parts.set_ceiling(next.parts);
        let _ = self.sending.set_ceiling(next.files.max(1));
        self.set_big_files(next.big_files.clamp(1, MOST_BIG_FILES));
        shared.storage.throttle().set(next.bandwidth).await;
        self.wake.notify_one();
    }

    /// `meant` slots for files sent in parts: more at once, or fewer — the free ones taken out
    /// of use now (the scheduler must not see them), the rest as the files holding them end.
    fn set_big_files(&self, meant: usize) {
        let slots = &self.shared.big_files;
        let before = self.shared.big_files_meant.swap(meant, Ordering::SeqCst);
        if meant >= before {
            slots.add_permits(meant - before);
            return;
        }
        let mut fewer = before - meant;
        while fewer > 0 {
            let Ok(free) = slots.try_acquire() else { break };
            free.forget();
            fewer -= 1;
        }
        if fewer > 0 {
            let slots = slots.clone();
            let fewer = u32::try_from(fewer).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                if let Ok(taken) = slots.acquire_many_owned(fewer).await {
                    taken.forget();
                }
            });
        }
    }

    /// Another network is in use: a queue stopped by a proxy's refusal may go on (nothing
    /// else a stop was for changed).
    pub(crate) fn network_changed(&self) {
        let mut refused = self.proxy_refused.lock().unwrap_or_else(|p| p.into_inner());
        self.network.fetch_add(1, Ordering::SeqCst);
        *refused = None;
        drop(refused);
        self.wake.notify_one();
    }

    /// Wakes the scheduler (new files, signed in again). Files moved back to work by the
    /// user also ask its next round to look for files no task has ([`Transfer::restarted`]).
    pub fn wake(&self) {
        self.signed_out.store(false, Ordering::Relaxed);
        *self.proxy_refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.wake.notify_one();
    }

    /// Lets the scheduler look at the queue now (more files were journaled), without
    /// anything [`Transfer::wake`] also means (a user's act: try a refused proxy again).
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Files are being journaled until the returned guard is dropped: `run_until_idle` does
    /// not end meanwhile, though it may find nothing to do (it is woken as they come).
    pub(crate) fn journaling(&self) -> Journaling<'_> {
        self.journaling.fetch_add(1, Ordering::SeqCst);
        Journaling(self)
    }

    /// Stops every upload in flight and starts none until the returned guard is dropped: for
    /// a change of account, which must not overlap with the old account's uploads.
    pub(crate) async fn hold(&self) -> Hold<'_> {
        self.holds.fetch_add(1, Ordering::SeqCst);
        self.stop().await;
        Hold(self)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, tokio::task::JoinHandle<()>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit_state(&self, id: i64, state: FileState, error: Option<&Error>) {
        (self.events)(Event::State {
            file_id: id,
            state,
            error: error.map(ErrorInfo::from),
        });
    }

    /// Stops the upload of one file, if it is running (its row stays as it is); a file the
    /// scheduler claimed but has not started yet is not started.
    pub fn stop_file(&self, id: i64) {
        let mut running = self.running();
        match running.remove(&id) {
            Some(task) => task.abort(),
            None => {
                self.stopped().insert(id);
            }
        }
    }

    /// Files stopped while no task ran for them (taken under the `running` lock).
    fn stopped(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Aborts every upload in flight without waiting for the tasks to end.
    pub(crate) fn abort_all(&self) {
        for (_, task) in self.running().drain() {
            task.abort();
        }
    }

    /// Where events go.
    pub(crate) fn events(&self) -> EventSink {
        self.events.clone()
    }

    /// The account to act for: the signed-in one, unless the scheduler is held.
    fn owner(&self) -> Option<Owner> {
        if self.signed_out.load(Ordering::Relaxed)
            || self.holds.load(Ordering::SeqCst) > 0
            || self.stopped_by_proxy().is_some()
        {
            return None;
        }
        self.shared.session.owner()
    }

    /// Where a proxy refused the credentials, while that stops the scheduler.
    fn stopped_by_proxy(&self) -> Option<String> {
        self.proxy_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn signed_in(&self) -> Result<Owner> {
        self.shared.session.owner().ok_or(Error::SignedOut)
    }

    /// Pauses the signed-in account's files (all of them when `ids` is `None`); their
    /// acknowledged parts are kept.
    pub async fn pause(&self, ids: Option<&[i64]>) -> Result<()> {
        let (owner, ids) = (self.signed_in()?, ids.map(<[i64]>::to_vec));
        let from = [FileState::Queued, FileState::Uploading, FileState::Failed];
        let paused = self
            .shared
            .db(move |j| j.move_states(&owner, ids.as_deref(), &from, FileState::Paused))
            .await?;
        for id in paused {
            self.stop_file(id);
            self.emit_state(id, FileState::Paused, None);
        }
        Ok(())
    }

    /// Resumes the signed-in account's paused or failed files (all when `ids` is `None`):
    /// they upload again, or only confirm again when the store already has them.
    pub async fn resume(&self, ids: Option<&[i64]>) -> Result<()> {
        let (owner, ids) = (self.signed_in()?, ids.map(<[i64]>::to_vec));
        let resumed = self
            .shared
            .db(move |j| j.resume(&owner, ids.as_deref()))
            .await?;
        self.restarted(resumed);
        Ok(())
    }

    /// Tries the signed-in account's failed files again (all when `ids` is `None`), and sends
    /// now the confirmations of uploaded files waiting for their next attempt; paused files
    /// stay paused — the user paused them.
    pub async fn retry(&self, ids: Option<&[i64]>) -> Result<()> {
        let (owner, ids) = (self.signed_in()?, ids.map(<[i64]>::to_vec));
        let retried = self
            .shared
            .db(move |j| j.retry(&owner, ids.as_deref()))
            .await?;
        self.restarted(retried);
        Ok(())
    }

    /// Tells of files moved back to work, and wakes the scheduler to look for them (uploaded
    /// files among them have no task).
    fn restarted(&self, moved: Vec<(i64, FileState)>) {
        for (id, state) in moved {
            self.emit_state(id, state, None);
        }
        self.strays.look_next();
        self.wake();
    }

    /// Cancels the signed-in account's files for good and aborts their multipart uploads.
    pub async fn cancel(&self, ids: Option<&[i64]>) -> Result<()> {
        let (owner, ids) = (self.signed_in()?, ids.map(<[i64]>::to_vec));
        let from = [
            FileState::Queued,
            FileState::Uploading,
            FileState::Paused,
            FileState::Failed,
        ];
        let cancelled = self
            .shared
            .db(move |j| {
                let ids = j.move_states(&owner, ids.as_deref(), &from, FileState::Cancelled)?;
                for id in &ids {
                    if let Some(row) = j.file(*id)?
                        && let (Some(key), Some(upload_id)) = (&row.object_key, &row.upload_id)
                    {
                        j.abandon(&owner, key, upload_id)?;
                    }
                }
                Ok(ids)
            })
            .await?;
        for id in cancelled {
            self.stop_file(id);
            self.emit_state(id, FileState::Cancelled, None);
        }
        self.abort_abandoned().await;
        Ok(())
    }

    /// Stops every upload in flight and waits until the tasks are gone; their rows stay where
    /// they were (a later start resumes them).
    pub async fn stop(&self) {
        let tasks: Vec<_> = self.running().drain().map(|(_, task)| task).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Aborts the multipart uploads the signed-in account began and no longer needs (and
    /// those journaled before uploads had owners, when they are under its prefix). Fetches a
    /// grant only when there is something to abort.
    pub async fn abort_abandoned(&self) {
        let Some(owner) = self.owner() else {
            return;
        };
        let who = crate::storage::Who {
            owner: &owner,
            file: None,
        };
        let listed_for = owner.clone();
        let Ok(pending) = self.shared.db(move |j| j.has_abandoned(&listed_for)).await else {
            return;
        };
        if !pending {
            return;
        }
        let Ok(grant) = self.shared.storage.grant(&who).await else {
            return;
        };
        let (listed_for, prefix) = (owner.clone(), grant.prefix.clone());
        let Ok(list) = self
            .shared
            .db(move |j| j.abandoned(&listed_for, &prefix))
            .await
        else {
            return;
        };
        for item in list {
            match self
                .shared
                .storage
                .abort(&who, &item.key, &item.upload_id)
                .await
            {
                Ok(()) => {
                    let upload_id = item.upload_id.clone();
                    let _ = self
                        .shared
                        .db(move |j| j.forget_abandoned(&upload_id))
                        .await;
                }
                Err(err) => tracing::warn!(error = %err, "could not abort a stale upload yet"),
            }
        }
    }
}
