//! The transfer scheduler: takes the signed-in account's runnable files from the journal,
//! uploads a few at a time with a global limit on parts in flight and a per-file limit, backs
//! failed files off, confirms uploads to the app server, and obeys pause, resume and cancel.
//!
//! A task is recorded as running before it can start, under the same lock it takes to say it
//! ended, so a task that ends at once cannot leave a stale entry behind (which would hold a
//! slot forever). Every state change goes through the journal's compare-and-set: a task that
//! finds its file paused or cancelled stops without writing.

pub(crate) mod throttle;
mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::error::{Error, Result};
use crate::events::{ErrorInfo, Event, EventSink};
use crate::journal::{FileRow, FileState, Journal, Owner};
use crate::session::Session;
use crate::storage::Storage;

pub use self::upload::part_size;

/// How uploads are shaped.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// Files uploading at once.
    pub files: usize,
    /// Parts in flight across all files.
    pub parts: usize,
    /// Parts in flight per file.
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
            files: 4,
            parts: 4,
            per_file_parts: 4,
            single_put_threshold: 16 * 1024 * 1024,
            min_part_size: 8 * 1024 * 1024,
            bandwidth: None,
            max_attempts: 8,
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// What the upload tasks share.
pub(crate) struct Shared {
    pub(crate) events: EventSink,
    pub(crate) journal: Arc<Journal>,
    pub(crate) storage: Storage,
    pub(crate) session: Arc<Session>,
    pub(crate) settings: TransferSettings,
    pub(crate) parts: Arc<Semaphore>,
    pub(crate) device: String,
    pub(crate) device_id: String,
}

impl Shared {
    /// Runs journal work on a blocking thread (SQLite waits on the disk; async workers must
    /// not).
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.journal.blocking(f).await
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
    wake: Notify,
    signed_out: AtomicBool,
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
        let parts = Arc::new(Semaphore::new(settings.parts.max(1)));
        Self {
            shared: Arc::new(Shared {
                events: events.clone(),
                journal,
                storage,
                session,
                settings,
                parts,
                device,
                device_id,
            }),
            events,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            signed_out: AtomicBool::new(false),
        }
    }

    /// Wakes the scheduler (new files, resumed files, signed in again).
    pub fn wake(&self) {
        self.signed_out.store(false, Ordering::Relaxed);
        self.wake.notify_one();
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

    /// Stops the upload of one file, if it is running (its row stays as it is).
    pub fn stop_file(&self, id: i64) {
        if let Some(task) = self.running().remove(&id) {
            task.abort();
        }
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

    /// Pauses files (all when `ids` is `None`); their acknowledged parts are kept.
    pub fn pause(&self, ids: Option<&[i64]>) -> Result<()> {
        let from = [FileState::Queued, FileState::Uploading, FileState::Failed];
        for id in self
            .shared
            .journal
            .move_states(ids, &from, FileState::Paused)?
        {
            self.stop_file(id);
            self.emit_state(id, FileState::Paused, None);
        }
        Ok(())
    }

    /// Resumes paused or failed files (all when `ids` is `None`): they upload again, or only
    /// confirm again when the store already has them.
    pub fn resume(&self, ids: Option<&[i64]>) -> Result<()> {
        for (id, state) in self.shared.journal.resume(ids)? {
            self.emit_state(id, state, None);
        }
        self.wake();
        Ok(())
    }

    /// Cancels files for good and aborts their multipart uploads.
    pub async fn cancel(&self, ids: Option<&[i64]>) -> Result<()> {
        let from = [
            FileState::Queued,
            FileState::Uploading,
            FileState::Paused,
            FileState::Failed,
        ];
        for id in self
            .shared
            .journal
            .move_states(ids, &from, FileState::Cancelled)?
        {
            self.stop_file(id);
            if let Some(row) = self.shared.journal.file(id)?
                && let (Some(key), Some(upload_id), Some(owner)) =
                    (&row.object_key, &row.upload_id, row_owner(&row))
            {
                self.shared.journal.abandon(&owner, key, upload_id)?;
            }
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

    /// Aborts the multipart uploads the signed-in account began and no longer needs.
    pub async fn abort_abandoned(&self) {
        let Some(owner) = self.shared.session.owner() else {
            return;
        };
        let Ok(list) = self.shared.journal.abandoned(&owner) else {
            return;
        };
        for item in list {
            match self
                .shared
                .storage
                .abort(None, &item.key, &item.upload_id)
                .await
            {
                Ok(()) => {
                    let _ = self.shared.journal.forget_abandoned(&item.upload_id);
                }
                Err(err) => tracing::warn!(error = %err, "could not abort a stale upload yet"),
            }
        }
    }

    /// Starts the upload of `row`. The entry is made under the lock the task takes to remove
    /// it, so the task cannot end before it was recorded.
    fn spawn(self: &Arc<Self>, row: FileRow, owner: Owner) {
        let mut running = self.running();
        let this = self.clone();
        let id = row.id;
        let task = tokio::spawn(async move { this.process(row, owner).await });
        running.insert(id, task);
    }

    async fn process(self: Arc<Self>, row: FileRow, owner: Owner) {
        let id = row.id;
        let result = self.upload_and_confirm(row, &owner).await;
        if let Err(err) = result {
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.failed(id, &err)).await;
        }
        self.running().remove(&id);
        self.wake.notify_one();
    }

    async fn upload_and_confirm(&self, row: FileRow, owner: &Owner) -> Result<()> {
        let id = row.id;
        if row.state != FileState::Uploaded {
            self.shared
                .db(move |j| j.expect_state(id, FileState::Uploading))
                .await?;
            self.emit_state(id, FileState::Uploading, None);
            let sent = Arc::new(AtomicU64::new(row.bytes_done));
            let _reporter = self.progress_reporter(id, sent.clone());
            upload::upload(&self.shared, &row, owner, &sent).await?;
            self.emit_state(id, FileState::Uploaded, None);
        }
        upload::confirm(&self.shared, id, owner).await?;
        self.emit_state(id, FileState::Confirmed, None);
        Ok(())
    }

    /// Progress of one file at most ten times a second, until the guard is dropped.
    fn progress_reporter(&self, id: i64, sent: Arc<AtomicU64>) -> AbortOnDrop {
        let events = self.events.clone();
        let journal = self.shared.journal.clone();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), sent.load(Ordering::Relaxed));
            let mut rate = 0.0f64;
            let mut reported = u64::MAX;
            let total = journal
                .blocking(move |j| j.file(id))
                .await
                .ok()
                .flatten()
                .and_then(|r| r.size)
                .unwrap_or(0);
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = (Instant::now(), sent.load(Ordering::Relaxed));
                let secs = now.0.duration_since(last.0).as_secs_f64();
                if secs > 0.0 {
                    let instant = now.1.saturating_sub(last.1) as f64 / secs;
                    rate = if rate == 0.0 {
                        instant
                    } else {
                        0.7 * rate + 0.3 * instant
                    };
                }
                last = now;
                if now.1 == reported {
                    continue;
                }
                reported = now.1;
                let eta = (rate > 1.0).then(|| (total.saturating_sub(now.1) as f64 / rate) as u64);
                events(Event::Progress {
                    file_id: id,
                    bytes: now.1,
                    total,
                    rate: rate as u64,
                    eta_secs: eta,
                });
            }
        });
        AbortOnDrop(task.abort_handle())
    }

    fn failed(&self, id: i64, err: &Error) {
        if matches!(err, Error::StateChanged { .. } | Error::Closed) {
            // Paused, cancelled or signed out meanwhile: the file already is where it should be.
            return;
        }
        let row = self.shared.journal.file(id).ok().flatten();
        let uploaded = row.as_ref().is_some_and(|r| r.state == FileState::Uploaded);
        if err.needs_sign_in() {
            self.signed_out.store(true, Ordering::Relaxed);
            if self.shared.session.expired() {
                (self.events)(Event::SessionExpired);
            }
            // Nothing is lost: the file waits where it was for the next sign-in.
            if !uploaded
                && matches!(
                    self.shared.journal.set_state(id, FileState::Queued),
                    Ok(true)
                )
            {
                self.emit_state(id, FileState::Queued, Some(err));
            }
            return;
        }
        let attempts = row.as_ref().map_or(0, |r| r.attempts) + 1;
        let max = self.shared.settings.max_attempts;
        let again = attempts < max && (err.is_transient() || err.code() == "file_changed");
        let retry_at = again.then(|| file_backoff(attempts - 1));
        // The object is in the store: only the confirmation is tried again.
        if uploaded && let Some(wait) = retry_at {
            let at = crate::journal::now() + wait.as_secs() as i64;
            tracing::warn!(file_id = id, error = %err, "confirmation failed; will retry");
            let _ = self
                .shared
                .journal
                .defer_confirmation(id, err.code(), &err.to_string(), at);
            self.emit_retry(id, "confirming the upload", attempts, err, wait);
            return;
        }
        let at = retry_at.map(|w| crate::journal::now() + w.as_secs() as i64);
        tracing::warn!(file_id = id, error = %err, retry_at = at, "upload failed");
        if let Ok(Some(_)) = self
            .shared
            .journal
            .fail(id, err.code(), &err.to_string(), at)
        {
            match retry_at {
                // Waiting for its next attempt: retrying, not failed.
                Some(wait) => self.emit_retry(id, "uploading the file", attempts, err, wait),
                None => self.emit_state(id, FileState::Failed, Some(err)),
            }
        }
    }

    fn emit_retry(&self, id: i64, operation: &str, attempt: u32, err: &Error, wait: Duration) {
        (self.events)(Event::Retrying {
            file_id: Some(id),
            operation: operation.to_owned(),
            attempt,
            max_attempts: self.shared.settings.max_attempts,
            error: ErrorInfo::from(err),
            retry_in_ms: wait.as_millis() as u64,
        });
    }

    /// The account to upload for now, or `None` when signed out.
    fn owner(&self) -> Option<Owner> {
        if self.signed_out.load(Ordering::Relaxed) {
            return None;
        }
        self.shared.session.owner()
    }

    /// Runs until no file of the signed-in account is runnable or waiting for a retry, or the
    /// session ends.
    pub async fn run_until_idle(self: &Arc<Self>) -> Result<Summary> {
        self.abort_abandoned().await;
        loop {
            let Some(owner) = self.owner() else {
                if self.running().is_empty() {
                    return Err(Error::SignedOut);
                }
                self.wait(Duration::from_millis(200)).await;
                continue;
            };
            self.schedule(&owner)?;
            if !self.running().is_empty() {
                self.wait(Duration::from_millis(500)).await;
                continue;
            }
            let journal = &self.shared.journal;
            if !journal.runnable(&owner, 1)?.is_empty() {
                continue;
            }
            match journal.next_retry(&owner)? {
                Some(at) => {
                    let wait = (at - crate::journal::now()).clamp(0, 1) as u64;
                    self.wait(Duration::from_secs(wait)).await;
                }
                None => return self.summary(&owner),
            }
        }
    }

    fn summary(&self, owner: &Owner) -> Result<Summary> {
        let mut summary = Summary::default();
        for (state, n) in self.shared.journal.counts(owner)? {
            match state {
                FileState::Confirmed => summary.confirmed += n,
                FileState::Failed => summary.failed += n,
                FileState::Skipped => summary.skipped += n,
                _ => {}
            }
        }
        Ok(summary)
    }

    async fn wait(&self, most: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(most) => {}
        }
    }

    /// Runs until the returned future is dropped (front ends that stay open).
    pub async fn run(self: &Arc<Self>) -> Result<()> {
        self.abort_abandoned().await;
        loop {
            if let Some(owner) = self.owner() {
                self.schedule(&owner)?;
            }
            self.wait(Duration::from_secs(1)).await;
        }
    }

    fn schedule(self: &Arc<Self>, owner: &Owner) -> Result<()> {
        let busy = self.running().len();
        let free = self.shared.settings.files.saturating_sub(busy);
        if free == 0 {
            return Ok(());
        }
        for row in self.shared.journal.runnable(owner, free + busy)? {
            if self.running().len() >= self.shared.settings.files {
                break;
            }
            if !self.running().contains_key(&row.id) {
                self.spawn(row, owner.clone());
            }
        }
        Ok(())
    }
}

/// The owner recorded on a row, if it has one.
fn row_owner(row: &FileRow) -> Option<Owner> {
    Some(Owner {
        server: row.server.clone()?,
        user_id: row.user_id?,
        user_name: row.user_name.clone().unwrap_or_default(),
    })
}
