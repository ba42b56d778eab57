//! Group commit: the journal work of many files' tasks in one transaction. A task hands its
//! work over and waits; while one group is being written the next gathers, so files that
//! finish together are journaled together — one hop to a blocking thread, one lock and one
//! commit for the group instead of one each.
//!
//! Each piece of work runs inside its own savepoint: one that fails leaves nothing behind and
//! gets its own error, the others are kept. A piece learns it succeeded only once the group is
//! committed; if the commit fails, every piece of the group gets that error (nothing of the
//! group was kept). Work handed over here must only touch the journal — a file read or a
//! slow call would hold up every other file's.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::Journal;
use crate::error::{Error, Result};

/// Pieces of work in one transaction at most (the lock is held while they run).
const MOST: usize = 256;

/// What a piece of work leaves to do once the group's fate is known: answer its task with its
/// value, or with the commit's error.
type Answer = Box<dyn FnOnce(Option<&Error>) + Send>;

/// A piece of work: runs (or is told the group could not begin), says whether it succeeded,
/// and how to answer.
type Work = Box<dyn FnOnce(std::result::Result<&Journal, &Error>) -> (bool, Answer) + Send>;

/// Work waiting for the next group.
#[derive(Default)]
pub(super) struct Waiting {
    work: Vec<Work>,
    /// Whether a blocking thread is writing groups (it stops when nothing waits).
    writing: bool,
    /// Groups written so far.
    written: u64,
}

impl Journal {
    /// Runs `f` in the next group commit (see [`self`]); `f` must only touch the journal.
    pub async fn grouped<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tell, told) = oneshot::channel::<Result<T>>();
        let work: Work = Box::new(move |journal| {
            let value = match journal {
                Ok(journal) => f(journal),
                Err(err) => Err(again(err)),
            };
            let ok = value.is_ok();
            // A piece's own error says more than the group's.
            let answer: Answer = Box::new(move |failed| {
                let _ = tell.send(match (value, failed) {
                    (Ok(_), Some(err)) => Err(again(err)),
                    (value, _) => value,
                });
            });
            (ok, answer)
        });
        let start = {
            let mut waiting = self.waiting();
            waiting.work.push(work);
            !std::mem::replace(&mut waiting.writing, true)
        };
        if start {
            let journal = self.clone();
            tokio::task::spawn_blocking(move || journal.write_groups());
        }
        told.await.unwrap_or_else(|_| {
            Err(Error::Io {
                context: "writing the journal failed".into(),
                source: std::io::Error::other("a journal group was dropped"),
            })
        })
    }

    /// Groups written so far (each one transaction).
    #[cfg(test)]
    pub(crate) fn groups_written(&self) -> u64 {
        self.waiting().written
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes groups until nothing waits. Should it unwind (a piece's panic is caught; this
    /// is for anything else), the next piece handed over starts a writer again.
    fn write_groups(&self) {
        struct Unwound<'a>(&'a Journal);
        impl Drop for Unwound<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.waiting().writing = false;
                }
            }
        }
        let _unwound = Unwound(self);
        loop {
            let work: Vec<Work> = {
                let mut waiting = self.waiting();
                // Cleared under the same lock a piece is handed over under: none is left
                // waiting with nobody writing.
                if waiting.work.is_empty() {
                    waiting.writing = false;
                    return;
                }
                let take = waiting.work.len().min(MOST);
                waiting.written += 1;
                waiting.work.drain(..take).collect()
            };
            self.write_group(work);
        }
    }

    /// Runs one group's work in one transaction and answers each piece: with its value once
    /// the group is committed, else with the error that undid the group.
    fn write_group(&self, work: Vec<Work>) {
        let _held = self.conn.lock();
        // The writer is a thread of its own: a transaction open here was left behind by a
        // failure, and none of it was answered as kept — it is let go of first.
        let begun = self.with(|c| {
            if !c.is_autocommit() {
                c.execute_batch("ROLLBACK")?;
            }
            c.execute_batch("BEGIN IMMEDIATE")
        });
        if let Err(err) = begun {
            return answer_all(work, &err);
        }
        let mut answers = Vec::with_capacity(work.len());
        let mut pieces = work.into_iter();
        let mut lost = None;
        for piece in pieces.by_ref() {
            let (answer, gone) = self.run_piece(piece);
            answers.push(answer);
            if let Some(err) = gone {
                lost = Some(err);
                break;
            }
        }
        let result = match lost {
            Some(err) => Err(err),
            None => self.with(|c| c.execute_batch("COMMIT")),
        };
        if let Err(err) = &result {
            let _ = self.with(|c| match c.is_autocommit() {
                true => Ok(()),
                false => c.execute_batch("ROLLBACK"),
            });
            tracing::error!(error = %err, "a journal group was not kept");
        }
        for answer in answers {
            answer(result.as_ref().err());
        }
        if let Err(err) = &result {
            answer_all(pieces.collect(), err);
        }
    }

    /// Runs one piece inside its own savepoint, kept if it succeeded and undone if not (or if
    /// it panicked — the others of its group carry on). Also returns the error that ended
    /// the group's transaction, if it is gone: SQLite rolls a transaction back by itself on
    /// some failures (a full disk, I/O errors), and nothing after may run outside it.
    fn run_piece(&self, piece: Work) -> (Answer, Option<Error>) {
        if let Err(err) = self.with(|c| c.execute_batch("SAVEPOINT piece")) {
            let (_, answer) = piece(Err(&err));
            return (answer, Some(err));
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| piece(Ok(self))));
        let (ok, answer) = match ran {
            Ok(done) => done,
            // The piece's sender went with it: its task learns the group was dropped.
            Err(_) => (false, Box::new(|_: Option<&Error>| {}) as Answer),
        };
        let gone = |why: &str| Error::Io {
            context: "writing the journal failed".into(),
            source: std::io::Error::other(format!("SQLite ended the transaction: {why}")),
        };
        if self.with(|c| Ok(c.is_autocommit())).unwrap_or(true) {
            return (answer, Some(gone("rolled back after a failure")));
        }
        let end = match ok {
            true => "RELEASE piece",
            false => "ROLLBACK TO piece; RELEASE piece",
        };
        match self.with(|c| c.execute_batch(end)) {
            Ok(()) => (answer, None),
            Err(err) => (answer, Some(err)),
        }
    }
}

/// Answers every piece of `work` with `err` without running it.
fn answer_all(work: Vec<Work>, err: &Error) {
    tracing::error!(error = %err, "a journal group could not begin");
    for piece in work {
        let (_, answer) = piece(Err(err));
        answer(None);
    }
}

/// The group's error again, for each of its pieces (errors are not `Clone`; SQLite's own keep
/// their code, so a full disk still reads as one).
fn again(err: &Error) -> Error {
    match err {
        Error::Journal(rusqlite::Error::SqliteFailure(code, message)) => {
            Error::Journal(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        Error::Closed => Error::Closed,
        other => Error::Io {
            context: "writing the journal failed".into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn journal(dir: &tempfile::TempDir) -> Arc<Journal> {
        Arc::new(Journal::open(&dir.path().join("journal.db")).unwrap())
    }

    /// Waits (at most 10 s) until `done` holds.
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 10 s");
    }

    /// The journal held by another thread, and a first group taken and waiting for it:
    /// pieces handed over now gather in the next group.
    struct Busy {
        go: mpsc::Sender<()>,
        holder: std::thread::JoinHandle<()>,
        first: tokio::task::JoinHandle<Result<()>>,
        before: u64,
    }

    async fn busy(journal: &Arc<Journal>) -> Busy {
        let before = journal.groups_written();
        let (go, wait) = mpsc::channel::<()>();
        let (held, holding) = mpsc::channel::<()>();
        let holder = std::thread::spawn({
            let journal = journal.clone();
            move || {
                journal
                    .transaction(|_| {
                        held.send(()).unwrap();
                        wait.recv_timeout(Duration::from_secs(10)).unwrap();
                        Ok(())
                    })
                    .unwrap();
            }
        });
        holding.recv_timeout(Duration::from_secs(10)).unwrap();
        let first = tokio::spawn({
            let journal = journal.clone();
            async move { journal.grouped(|j| j.set_setting("first", "1")).await }
        });
        until(|| journal.groups_written() == before + 1).await;
        Busy {
            go,
            holder,
            first,
            before,
        }
    }

    impl Busy {
        /// Lets the journal go after a moment (pieces polled beside this are handed over
        /// first).
        async fn let_go(&self) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.go.send(()).unwrap();
        }

        /// Waits for the holder and the first group; the groups written since it was busy.
        async fn groups(self, journal: &Journal) -> u64 {
            self.holder.join().unwrap();
            self.first.await.unwrap().unwrap();
            journal.groups_written() - self.before
        }
    }

    /// Pieces handed over while the journal is busy go in one transaction; the one that fails
    /// leaves nothing behind and gets its own error, the others are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_handed_over_together_is_committed_together_and_a_failed_piece_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        let busy = busy(&journal).await;
        let fails = journal.grouped(|j| {
            j.set_setting("b", "2")?;
            Err::<(), _>(Error::Protocol {
                operation: "testing",
                detail: "this piece fails".into(),
            })
        });
        let kept = journal.grouped(|j| j.set_setting("c", "3"));
        // Both are handed over when first polled, before the journal is let go.
        let (fails, kept, ()) = tokio::join!(fails, kept, busy.let_go());
        assert_eq!(busy.groups(&journal).await, 2, "the last two in one group");
        assert!(matches!(fails, Err(Error::Protocol { .. })), "{fails:?}");
        kept.unwrap();
        assert_eq!(journal.setting("first").unwrap().as_deref(), Some("1"));
        assert_eq!(
            journal.setting("b").unwrap(),
            None,
            "the failed piece was kept"
        );
        assert_eq!(journal.setting("c").unwrap().as_deref(), Some("3"));
    }

    /// A piece that panics is undone; its task hears of it and the rest of its group is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_piece_that_panics_is_undone_and_its_group_kept() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        let busy = busy(&journal).await;
        let panics = journal.grouped(|j| -> Result<()> {
            j.set_setting("p", "1")?;
            panic!("a piece panics");
        });
        let kept = journal.grouped(|j| j.set_setting("k", "1"));
        let (panics, kept, ()) = tokio::join!(panics, kept, busy.let_go());
        assert_eq!(busy.groups(&journal).await, 2, "the two in one group");
        assert!(panics.is_err());
        kept.unwrap();
        assert_eq!(journal.setting("p").unwrap(), None);
        assert_eq!(journal.setting("k").unwrap().as_deref(), Some("1"));
    }

    /// SQLite ends a transaction by itself on some failures (a full disk): the group's
    /// earlier pieces are gone with it, so each is told, and no later piece runs outside a
    /// transaction (where it would be kept while its task is told it failed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_whose_transaction_sqlite_ended_is_failed_whole_and_nothing_runs_after() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        let busy = busy(&journal).await;
        let kept_before = journal.grouped(|j| j.set_setting("a", "1"));
        let ends = journal.grouped(|j| {
            // What SQLite does by itself after SQLITE_FULL: the whole transaction is undone.
            j.with(|c| c.execute_batch("ROLLBACK"))?;
            Ok(())
        });
        let after = journal.grouped(|j| j.set_setting("c", "1"));
        let (kept_before, ends, after, ()) = tokio::join!(kept_before, ends, after, busy.let_go());
        assert_eq!(busy.groups(&journal).await, 2);
        assert!(kept_before.is_err(), "{kept_before:?}");
        assert!(ends.is_err(), "{ends:?}");
        assert!(after.is_err(), "{after:?}");
        assert_eq!(journal.setting("a").unwrap(), None);
        assert_eq!(
            journal.setting("c").unwrap(),
            None,
            "ran outside the transaction"
        );
        // The next group is written as usual.
        journal.grouped(|j| j.set_setting("d", "1")).await.unwrap();
        assert_eq!(journal.setting("d").unwrap().as_deref(), Some("1"));
    }

    /// A closed journal answers every piece with `Closed`, running none.
    #[tokio::test]
    async fn a_closed_journal_answers_each_piece_closed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal(&dir);
        journal.close();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let answer = journal
            .grouped(move |_| {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(answer, Err(Error::Closed)), "{answer:?}");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
