//! Confirmations of many files in one request: a file's task hands its confirmation over and
//! waits; while one request is on its way the next ones gather, so small files that finish
//! together are confirmed together (`POST /uploads/batch`, one transaction on the server), and
//! what the server recorded is journaled `Confirmed` in one transaction here. When many wait
//! (a distant server), a few batches go at once.
//! Whatever the batch cannot settle — the request failed, the server has no batch endpoint,
//! the answer does not fit — each file confirms alone, as before: confirmations are
//! idempotent, so nothing is recorded twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_protocol::{ConfirmOutcome, Confirmation, ConfirmationBatch, ErrorBody};
use tokio::sync::oneshot;

use super::Shared;
use crate::error::Error;

/// Confirmations per request at most (well under the server's limit and body size).
const MOST: usize = 100;

/// Batches on their way at once at most.
const SENDERS: usize = 4;

/// Confirmations waiting per batch already on its way before another batch is sent beside it.
const CROWD: usize = 8;

/// What became of a confirmation handed to the batch.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Recorded by the server and journaled `Confirmed`.
    Confirmed,
    /// Recorded by the server; the journal is the caller's to write.
    Recorded,
    /// Refused by the server, as a confirmation alone would have been.
    Refused(Error),
    /// Not settled by the batch: confirm alone.
    Alone,
}

struct Waiting {
    file_id: i64,
    confirmation: Confirmation,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Tasks sending batches (each stops when the queue is empty).
    senders: usize,
}

/// The engine's batch of confirmations.
pub(crate) struct Confirmations {
    queue: Mutex<Queue>,
    /// Cleared when the server turns out to have no batch endpoint.
    batches: AtomicBool,
    /// Confirmations sent alone (with their own retries) at once, at most: a failing server
    /// is not met by hundreds of them.
    pub(crate) alone: tokio::sync::Semaphore,
}

/// Confirmations sent alone at once, at most.
const ALONE: usize = 8;

impl Default for Confirmations {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            batches: AtomicBool::new(true),
            alone: tokio::sync::Semaphore::new(ALONE),
        }
    }
}

impl Confirmations {
    /// Hands `confirmation` of file `file_id` to the next batch and waits for its answer.
    pub(crate) async fn submit(
        shared: &Arc<Shared>,
        file_id: i64,
        confirmation: Confirmation,
    ) -> Answer {
        let this = &shared.confirmations;
        if !shared.settings().batch_confirmations || !this.batches.load(Ordering::Relaxed) {
            return Answer::Alone;
        }
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = this.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.waiting.push(Waiting {
                file_id,
                confirmation,
                answer,
            });
            let crowded = queue.waiting.len() >= CROWD * queue.senders;
            let start = queue.senders == 0 || (queue.senders < SENDERS && crowded);
            queue.senders += usize::from(start);
            start
        };
        if start {
            let shared = shared.clone();
            tokio::spawn(async move { Self::send_all(&shared).await });
        }
        answered.await.unwrap_or(Answer::Alone)
    }

    /// Sends batches until nobody waits.
    async fn send_all(shared: &Arc<Shared>) {
        let mut done = Done {
            confirmations: &shared.confirmations,
            finished: false,
        };
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = shared
                    .confirmations
                    .queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if queue.waiting.is_empty() {
                    queue.senders -= 1;
                    done.finished = true;
                    return;
                }
                // A file whose task ended meanwhile (paused, cancelled, signed out) is
                // confirmed by nobody: its account may not be the one signed in now.
                queue.waiting.retain(|w| !w.answer.is_closed());
                let n = queue.waiting.len().min(MOST);
                queue.waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                continue;
            }
            Self::send(shared, batch).await;
        }
    }

    async fn send(shared: &Arc<Shared>, batch: Vec<Waiting>) {
        let alone = |batch: Vec<Waiting>| {
            for waiting in batch {
                let _ = waiting.answer.send(Answer::Alone);
            }
        };
        let Ok(token) = shared.session.token() else {
            return alone(batch);
        };
        let uploads = batch.iter().map(|w| w.confirmation.clone()).collect();
        let answer = shared
            .session
            .api()
            .confirm_batch(&token, &ConfirmationBatch { uploads })
            .await;
        match answer {
            Ok(outcome) if outcome.results.len() == batch.len() => {
                // A file whose task ended meanwhile (a sign-out, another account) stays
                // `uploaded`: its next run confirms it again (idempotent) and says so.
                let recorded: Vec<i64> = batch
                    .iter()
                    .zip(&outcome.results)
                    .filter(|(w, result)| {
                        matches!(result, ConfirmOutcome::Recorded(_)) && !w.answer.is_closed()
                    })
                    .map(|(waiting, _)| waiting.file_id)
                    .collect();
                // One transaction for the batch, for the account signed in when the answer comes
                // (files whose task ended were left out above); a file it could not move (or a
                // journal that failed) is left for its own task.
                let journaled = match shared.session.owner() {
                    Some(owner) => shared
                        .grouped(move |j| j.confirm_uploaded(&owner, &recorded))
                        .await
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                for (waiting, result) in batch.into_iter().zip(outcome.results) {
                    let answer = match result {
                        ConfirmOutcome::Recorded(_) if journaled.contains(&waiting.file_id) => {
                            Answer::Confirmed
                        }
                        ConfirmOutcome::Recorded(_) => Answer::Recorded,
                        ConfirmOutcome::Refused(body) => refusal(body),
                    };
                    let _ = waiting.answer.send(answer);
                }
            }
            Err(Error::Server {
                status: 404 | 405, ..
            }) => {
                shared.confirmations.batches.store(false, Ordering::Relaxed);
                alone(batch);
            }
            _ => alone(batch),
        }
    }
}

/// Ends a sender however it ends: if it failed and no other sender is left, nobody is left
/// waiting, and the next confirmation starts a new one.
struct Done<'a> {
    confirmations: &'a Confirmations,
    /// Left the normal way, with the queue empty.
    finished: bool,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut queue = self
            .confirmations
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        queue.senders -= 1;
        if queue.senders > 0 {
            // The others take over the queue.
            return;
        }
        for waiting in queue.waiting.drain(..) {
            let _ = waiting.answer.send(Answer::Alone);
        }
    }
}

/// A refusal of one confirmation: the engine's error for it, with the status the same
/// refusal alone would have had (so retries and sign-in work alike); a passing one (the
/// server busy or failing) is settled alone, with the usual retries.
fn refusal(body: ErrorBody) -> Answer {
    let status = body.code.http_status();
    if status >= 500 || status == 429 {
        return Answer::Alone;
    }
    Answer::Refused(Error::Server {
        operation: "confirming the upload",
        code: body.code,
        message: body.message,
        status,
    })
}
