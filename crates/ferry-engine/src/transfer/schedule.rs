//! The scheduling loop: which files start, what a finished or failed task leaves behind, and
//! when the queue is idle. A failure of the journal itself (a full disk, a busy database) is
//! reported and waited out — the loop never ends for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Summary, Transfer, file_backoff, upload};
use crate::error::{Error, Result};
use crate::events::{ErrorInfo, Event};
use crate::journal::{Awaiting, FileRow, FileState, Journal, Owner};

/// How long to wait after the journal failed before trying again.
const JOURNAL_PAUSE: Duration = Duration::from_secs(5);

/// Rows read past the free slots when big files wait for a big-file slot: small files
/// behind them are started meanwhile.
const LOOKAHEAD: usize = 64;

impl Transfer {
    /// Starts the upload of `row`, unless the file was stopped since the scheduler claimed it
    /// or the scheduler is held. The entry is made under the lock the task takes to remove it
    /// (and `stop_file` and `stop` take to find it), so the task cannot end before it was
    /// recorded and a stop either finds it or keeps it from starting.
    fn spawn(self: &Arc<Self>, row: FileRow, owner: Owner) -> bool {
        let mut running = self.running();
        if self.holds.load(Ordering::SeqCst) > 0 || self.stopped().remove(&row.id) {
            return false;
        }
        let this = self.clone();
        let id = row.id;
        let task = tokio::spawn(async move { this.process(row, owner).await });
        running.insert(id, task);
        true
    }

    async fn process(self: Arc<Self>, row: FileRow, owner: Owner) {
        let id = row.id;
        let network = self.network.load(Ordering::SeqCst);
        let result = self.upload_and_confirm(row, &owner).await;
        if let Err(err) = result {
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.failed(id, &err, network)).await;
        }
        self.running().remove(&id);
        self.wake.notify_one();
    }

    async fn upload_and_confirm(&self, row: FileRow, owner: &Owner) -> Result<()> {
        let (id, seen) = (row.id, row.state);
        let uploaded = if seen == FileState::Uploaded {
            // The scheduler's rows are read before it starts them: the task that confirmed
            // this file may have ended in between (confirmed, or waiting for its next try).
            // Only a file still `uploaded` and due is confirmed.
            let due = |r: &FileRow| r.next_retry_at.is_none_or(|at| at <= crate::journal::now());
            match self.shared.db(move |j| j.file(id)).await? {
                Some(now) if now.state == FileState::Uploaded && due(&now) => now,
                // (A file not due yet is reported as still `uploaded`: the error only ends
                // this task quietly; the scheduler takes the file again when it is due.)
                now => {
                    return Err(Error::StateChanged {
                        found: now.map_or("gone", |r| r.state.as_str()),
                    });
                }
            }
        } else {
            // Claimed by the scheduler: the journal has it `uploading` already.
            self.emit_state(id, FileState::Uploading, None);
            let sent = Arc::new(AtomicU64::new(row.bytes_done));
            let total = row.size.unwrap_or(0);
            let _reporter = self.progress_reporter(id, total, sent.clone());
            let uploaded = upload::upload(&self.shared, &row, owner, &sent).await?;
            self.emit_state(id, FileState::Uploaded, None);
            uploaded
        };
        // Sending is over (or was before): the file's slot goes to the next file while this
        // one is confirmed.
        let _confirming = self.confirming(seen != FileState::Uploaded);
        upload::confirm(&self.shared, uploaded, owner).await?;
        self.emit_state(id, FileState::Confirmed, None);
        Ok(())
    }

    /// What a failed task leaves behind (runs on a blocking thread: it writes the journal).
    /// `network`: the one in use when the task started.
    fn failed(&self, id: i64, err: &Error, network: u64) {
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
            let journal = &self.shared.journal;
            if !uploaded
                && matches!(
                    journal.set_state(id, FileState::Uploading, FileState::Queued),
                    Ok(true)
                )
            {
                self.emit_state(id, FileState::Queued, Some(err));
            }
            return;
        }
        // A refusal by a proxy the user has left since says nothing of the network in use:
        // the file is tried again on it.
        let mut left_behind = false;
        if let Error::ProxyRefused { target } = err {
            // Every other file would meet the same refusal (and each try may count against the
            // proxy account's lockout): nothing starts until the user acts — retries, adds
            // files, signs in again with other network settings.
            let mut refused = self.proxy_refused.lock().unwrap_or_else(|p| p.into_inner());
            left_behind = self.network.load(Ordering::SeqCst) != network;
            if !left_behind {
                *refused = Some(target.clone());
            }
        }
        if let Error::Kept { code, reason, .. } = err {
            // Its rule left the object at its key alone: skipped, not failed.
            match self.shared.journal.skip_uploading(id, code, reason) {
                Ok(true) => self.emit_state(id, FileState::Skipped, Some(err)),
                Ok(false) => {}
                Err(journal) => self.journal_trouble("recording a skipped file", Some(journal)),
            }
            return;
        }
        let attempts = row.as_ref().map_or(0, |r| r.attempts) + 1;
        let max = self.shared.settings().max_attempts;
        let again =
            attempts < max && (err.is_transient() || err.code() == "file_changed" || left_behind);
        let retry_at = again.then(|| file_backoff(attempts - 1));
        // The object is in the store: only the confirmation is tried again.
        if uploaded && let Some(wait) = retry_at {
            let at = crate::journal::now() + wait.as_secs() as i64;
            tracing::warn!(file_id = id, error = %err, "confirmation failed; will retry");
            let deferred =
                self.shared
                    .journal
                    .defer_confirmation(id, err.code(), &err.to_string(), at);
            self.journal_trouble("recording a failed confirmation", deferred.err());
            self.emit_retry(id, "confirming the upload", attempts, err, wait);
            return;
        }
        let at = retry_at.map(|w| crate::journal::now() + w.as_secs() as i64);
        // A file waiting for a decision about an object at its key failed nothing.
        if err.code() == "exists" {
            tracing::info!(file_id = id, error = %err, "waiting for a decision");
        } else {
            tracing::warn!(file_id = id, error = %err, retry_at = at, "upload failed");
        }
        match self
            .shared
            .journal
            .fail(id, err.code(), &err.to_string(), at)
        {
            Ok(Some(_)) => match retry_at {
                // Waiting for its next attempt: retrying, not failed.
                Some(wait) => self.emit_retry(id, "uploading the file", attempts, err, wait),
                None => self.emit_state(id, FileState::Failed, Some(err)),
            },
            Ok(None) => {}
            // The row stays `uploading` with no task: the scheduler puts it back in the queue.
            Err(journal) => self.journal_trouble("recording a failed upload", Some(journal)),
        }
    }

    fn emit_retry(&self, id: i64, operation: &str, attempt: u32, err: &Error, wait: Duration) {
        (self.events)(Event::Retrying {
            file_id: Some(id),
            operation: operation.to_owned(),
            attempt,
            max_attempts: self.shared.settings().max_attempts,
            error: ErrorInfo::from(err),
            retry_in_ms: wait.as_millis() as u64,
        });
    }

    /// Reports a failure of the journal itself (the queue waits it out).
    fn journal_trouble(&self, operation: &str, err: Option<Error>) {
        if let Some(err) = err {
            tracing::error!(operation, error = %err, "the journal failed");
            (self.events)(Event::Trouble {
                operation: operation.to_owned(),
                error: ErrorInfo::from(&err),
            });
        }
    }

    /// Runs until no file of the signed-in account is runnable or waiting for a retry, and
    /// none is being journaled ([`Transfer::journaling`]), or the session ends.
    pub async fn run_until_idle(self: &Arc<Self>) -> Result<Summary> {
        self.abort_abandoned().await;
        loop {
            let Some(owner) = self.owner() else {
                if self.running().is_empty() && self.holds.load(Ordering::SeqCst) == 0 {
                    return Err(match self.stopped_by_proxy() {
                        Some(target) => Error::ProxyRefused { target },
                        None => Error::SignedOut,
                    });
                }
                self.wait(Duration::from_millis(200)).await;
                continue;
            };
            let looked = match self.schedule(&owner).await {
                Ok(looked) => looked,
                Err(err) => {
                    self.journal_trouble("choosing what to upload", Some(err));
                    self.wait(JOURNAL_PAUSE).await;
                    continue;
                }
            };
            if !self.running().is_empty() {
                self.wait(Duration::from_millis(500)).await;
                continue;
            }
            // The queue's end is decided after a round that looked for files no task has (a
            // row left `uploading` counts as runnable in no query): the next round, with
            // nothing running, looks.
            if !looked {
                continue;
            }
            // Read before the queue is: an intake that ends after this has committed nothing
            // the query below might miss only if this still counts it.
            let journaling = self.journaling.load(Ordering::SeqCst) > 0;
            let (for_owner, now) = (owner.clone(), crate::journal::now());
            let (runnable, next) = self
                .shared
                .db(move |j| {
                    Ok((
                        j.runnable(&for_owner, 1, &[], Awaiting::All)?.len(),
                        j.next_retry(&for_owner)?,
                    ))
                })
                .await?;
            match (runnable, next) {
                // Files given are still being journaled: woken as they come.
                (0, None) if journaling => {
                    self.wait(Duration::from_millis(500)).await;
                }
                (0, None) => return self.summary(&owner).await,
                (0, Some(at)) => {
                    let wait = (at - now).clamp(0, 1) as u64;
                    self.wait(Duration::from_secs(wait)).await;
                }
                _ => {}
            }
        }
    }

    async fn summary(&self, owner: &Owner) -> Result<Summary> {
        let owner = owner.clone();
        let counts = self.shared.db(move |j| j.counts(&owner)).await?;
        let mut summary = Summary::default();
        for (state, n) in counts {
            match state {
                FileState::Confirmed => summary.confirmed += n,
                FileState::Failed => summary.failed += n,
                FileState::Skipped => summary.skipped += n,
                _ => {}
            }
        }
        Ok(summary)
    }

    pub(super) async fn wait(&self, most: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(most) => {}
        }
    }

    /// Runs until the returned future is dropped (front ends that stay open). A journal that
    /// fails is reported and tried again; it never stops the loop.
    pub async fn run(self: &Arc<Self>) -> Result<()> {
        self.abort_abandoned().await;
        loop {
            let mut pause = Duration::from_secs(1);
            if let Some(owner) = self.owner()
                && let Err(err) = self.schedule(&owner).await
            {
                self.journal_trouble("choosing what to upload", Some(err));
                pause = JOURNAL_PAUSE;
            }
            self.wait(pause).await;
        }
    }

    /// Starts runnable files of `owner` in the free slots. A round that looks for files no task
    /// has ([`strays`](super::strays)) puts rows left `uploading` back in the queue first (the
    /// journal failed as their task ended) and reads uploaded files no try is planned for. The
    /// files started are claimed (moved to `uploading`) in the same journal transaction hop
    /// that chose them. Returns whether the round looked for files no task has.
    async fn schedule(self: &Arc<Self>, owner: &Owner) -> Result<bool> {
        let busy: Vec<i64> = self.running().keys().copied().collect();
        let free = self.free_slots(busy.len());
        let look = free > 0 && self.strays.look_now(busy.len());
        let slots = Slots {
            free,
            big_free: self.shared.big_files.available_permits(),
            big_from: self.shared.settings().single_put_threshold,
            awaiting: match look {
                true => Awaiting::All,
                false => Awaiting::Due,
            },
        };
        // Stops from here on are for files this hop may claim: `spawn` honours them.
        self.stopped().clear();
        // A round runs for each file that finishes: it reads no more rows than its choice needs.
        let for_owner = owner.clone();
        let (picked, waiting) = if free == 0 {
            (Vec::new(), false)
        } else {
            self.shared
                .db(move |j| slots.take(j, &for_owner, &busy, look))
                .await?
        };
        // A file waiting for a slot makes a measurement that can tell whether more would help.
        if free == 0 {
            // Full, and files were left waiting the last time: still waiting.
            if self.backlog.load(Ordering::Relaxed) {
                self.sending.starved();
            }
        } else {
            if waiting {
                self.sending.starved();
            }
            self.backlog.store(waiting, Ordering::Relaxed);
        }
        // Strays found may have more behind them: the next round looks again (each frees its
        // slot as soon as it is confirming).
        if look
            && picked
                .iter()
                .any(|r| r.state == FileState::Uploaded && r.next_retry_at.is_none())
        {
            self.strays.look_next();
        }
        if !picked.is_empty() && self.running().is_empty() {
            // Nothing was in flight: the idle time before this is not measured.
            self.sending.restart();
        }
        let mut unstarted = Vec::new();
        for row in picked {
            // Signed out, held or another account meanwhile, or stopped: a claimed row with no
            // task goes back to the queue now (a stopped one has moved on already).
            let claimed = row.state == FileState::Uploading;
            let (id, ours) = (row.id, self.owner().as_ref() == Some(owner));
            if !(ours && self.spawn(row, owner.clone())) && claimed {
                unstarted.push(id);
            }
        }
        if !unstarted.is_empty() {
            self.shared
                .db(move |j| {
                    for id in unstarted {
                        j.set_state(id, FileState::Uploading, FileState::Queued)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(look)
    }
}

/// What the scheduler may start in one round.
#[derive(Clone, Copy)]
struct Slots {
    /// File slots free.
    free: usize,
    /// Big-file slots free (files sent in parts).
    big_free: usize,
    /// Size from which a file is sent in parts.
    big_from: u64,
    /// Which uploaded files awaiting confirmation the round reads.
    awaiting: Awaiting,
}

impl Slots {
    /// The round's journal work, in one hop: rows left `uploading` with no task put back in
    /// the queue (in a round that `look`s), then the files to start chosen and claimed. Rows
    /// another hop claimed meanwhile are left out; uploaded files are only confirmed, so they
    /// are not claimed. Returns the rows to start and whether runnable rows were left waiting.
    fn take(
        self,
        j: &Journal,
        owner: &Owner,
        busy: &[i64],
        look: bool,
    ) -> Result<(Vec<FileRow>, bool)> {
        let left = match look {
            true => j.uploading(owner)?,
            false => Vec::new(),
        };
        for id in left {
            if !busy.contains(&id) {
                j.set_state(id, FileState::Uploading, FileState::Queued)?;
            }
        }
        let (mut picked, waiting) = self.choose(j, owner, busy)?;
        let read: Vec<_> = picked.iter().map(|r| (r.id, r.state)).collect();
        let claimed = j.claim(owner, &read)?;
        picked.retain_mut(|row| {
            let ours = claimed.contains(&row.id);
            if ours {
                row.state = FileState::Uploading;
            }
            ours || row.state == FileState::Uploaded
        });
        Ok((picked, waiting))
    }

    /// Whether a file sent in parts is sent (not just confirmed).
    fn big(&self, row: &FileRow) -> bool {
        row.state != FileState::Uploaded && row.size.is_some_and(|s| s >= self.big_from)
    }

    /// The runnable files of `owner` to start, oldest first, but for those `busy` (being
    /// worked on), and whether more were left waiting for a slot. It reads the free slots'
    /// worth and one more — further when big files waiting for a big-file slot fill that, so
    /// small files behind them go meanwhile.
    fn choose(self, j: &Journal, owner: &Owner, busy: &[i64]) -> Result<(Vec<FileRow>, bool)> {
        let mut rows = j.runnable(owner, self.free + 1, busy, self.awaiting)?;
        if rows.len() > self.free && self.passes_over(&rows) {
            rows = j.runnable(owner, self.free + LOOKAHEAD, busy, self.awaiting)?;
        }
        Ok(self.pick(rows))
    }

    /// Whether some of `rows` wait for a big-file slot (the rows behind them may go).
    fn passes_over(&self, rows: &[FileRow]) -> bool {
        rows.iter().filter(|row| self.big(row)).count() > self.big_free
    }

    /// The rows to start, in order, and whether runnable rows were left waiting for a slot.
    /// A file sent in parts waits for a big-file slot; it does not take one of the many slots
    /// small files share while it waits.
    fn pick(mut self, rows: Vec<FileRow>) -> (Vec<FileRow>, bool) {
        let mut picked = Vec::new();
        for row in rows {
            let big = self.big(&row);
            if big && self.big_free == 0 {
                continue;
            }
            if picked.len() == self.free {
                return (picked, true);
            }
            self.big_free -= usize::from(big);
            picked.push(row);
        }
        (picked, false)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::journal::NewFile;

    fn owner() -> Owner {
        Owner {
            server: "https://ferry.example".into(),
            user_id: 1,
            user_name: "alice".into(),
        }
    }

    /// A journal with files of `sizes` queued, in id order.
    fn queue(sizes: &[u64]) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let owner = owner();
        for (i, size) in sizes.iter().enumerate() {
            let path = PathBuf::from(format!("/f/{i}"));
            let key = format!("{i}");
            let file = NewFile {
                path: &path,
                key: &key,
                name: &key,
                size: Some(*size),
                mtime_ns: Some(1),
                on_conflict: crate::conflict::OnConflict::Ask,
            };
            journal.add(&owner, &file, None).unwrap();
        }
        (dir, journal)
    }

    /// Rows of `sizes` as the journal hands them out (queued, in id order), the last `uploaded`
    /// ones waiting for their confirmation.
    fn rows(sizes: &[u64], uploaded: usize) -> Vec<FileRow> {
        let (_dir, journal) = queue(sizes);
        let mut rows = journal.runnable(&owner(), 100, &[], Awaiting::All).unwrap();
        let from = rows.len() - uploaded;
        for row in &mut rows[from..] {
            row.state = FileState::Uploaded;
        }
        rows
    }

    fn ids(rows: &[FileRow]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    const BIG: u64 = 100;

    #[test]
    fn small_files_fill_the_free_slots_in_order_and_say_when_more_wait() {
        let slots = |free| Slots {
            free,
            big_free: 4,
            big_from: BIG,
            awaiting: Awaiting::All,
        };
        let (picked, waiting) = slots(2).pick(rows(&[1, 1, 1], 0));
        assert_eq!((ids(&picked), waiting), (vec![1, 2], true));
        let (picked, waiting) = slots(3).pick(rows(&[1, 1, 1], 0));
        assert_eq!((ids(&picked), waiting), (vec![1, 2, 3], false));
    }

    #[test]
    fn a_file_sent_in_parts_waits_for_a_big_slot_without_taking_a_small_files_one() {
        let slots = Slots {
            free: 3,
            big_free: 1,
            big_from: BIG,
            awaiting: Awaiting::All,
        };
        // Two big files, one big slot: the second waits and the small ones behind it go.
        let (picked, waiting) = slots.pick(rows(&[BIG, BIG, 1, 1], 0));
        assert_eq!((ids(&picked), waiting), (vec![1, 3, 4], false));
        // A big file's confirmation is a small request: it needs no big slot.
        let none_big = Slots {
            free: 3,
            big_free: 0,
            big_from: BIG,
            awaiting: Awaiting::All,
        };
        let (picked, _) = none_big.pick(rows(&[BIG, BIG], 1));
        assert_eq!(ids(&picked), vec![2]);
    }

    #[test]
    fn small_files_behind_big_ones_waiting_for_a_big_slot_are_read_and_started() {
        let slots = Slots {
            free: 2,
            big_free: 1,
            big_from: BIG,
            awaiting: Awaiting::All,
        };
        let (_dir, journal) = queue(&[BIG, BIG, BIG, 1, 1]);
        let (picked, waiting) = slots.choose(&journal, &owner(), &[]).unwrap();
        assert_eq!((ids(&picked), waiting), (vec![1, 4], true));
        // Files being worked on are passed over; the rest fill the slots.
        let (picked, waiting) = slots.choose(&journal, &owner(), &[1, 4]).unwrap();
        assert_eq!((ids(&picked), waiting), (vec![2, 5], false));
        // Only small files: the free slots' worth, and one more read to tell that files wait.
        let (_dir, journal) = queue(&[1, 1, 1, 1]);
        let (picked, waiting) = slots.choose(&journal, &owner(), &[2]).unwrap();
        assert_eq!((ids(&picked), waiting), (vec![1, 3], true));
    }
}
