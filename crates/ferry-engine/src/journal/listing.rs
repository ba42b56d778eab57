//! The queue as people look at it: a page of rows at a time and totals counted by the journal
//! over every row, so a queue of 100 000 files is never read whole; and "Clear finished",
//! which takes finished rows out of that view while the journal keeps them (they still say
//! which files were uploaded unchanged, so nothing is sent twice).
//!
//! "All" lists the unfinished rows first, in the order they upload in (the account's and
//! other accounts' waiting for their owner), then the account's finished rows, newest first:
//! page one shows what is happening, not the thousands already done. Counts come from
//! indexes, never from the rows: the account's from a covering index over its rows in view
//! (`files_tally`; cleared rows fall outside its range), other accounts' from partial indexes
//! that hold unfinished rows only (`files_unfinished`, `files_unfinished_owner`); the finished
//! rows in view are listed from their own (`files_finished`). A read's cost follows the queue
//! in view, not the journal's history.

use rusqlite::params;

use super::files::{COLUMNS, OWNED, file_from_row};
use super::state::{sql_finished, sql_unfinished};
use super::{Cached, FileRow, FileState, Journal, Owner};
use crate::error::Result;

/// Rows a page holds at most.
pub const PAGE_MOST: u64 = 500;

/// Which rows of the queue a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Show {
    /// Unfinished rows (the account's and other accounts'), then the account's finished ones.
    #[default]
    All,
    /// Rows not finished (queued, uploading, uploaded, paused, failed), other accounts'
    /// included (they wait for their owner).
    Unfinished,
    /// The account's failed rows, those waiting for their next attempt included.
    Failed,
    /// The account's finished rows (confirmed, skipped, cancelled), newest first.
    Finished,
}

/// A page of the queue with what the window shows around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The page.
    pub page: Page,
    /// The account's rows in view, counted (none signed out).
    pub totals: Totals,
    /// Unfinished rows of other accounts, by account (as [`Journal::waiting_for_others`]).
    pub waiting: Vec<super::Waiting>,
}

/// Rows `offset..offset + limit` of the queue in id order (the order the scheduler takes
/// them), and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The rows.
    pub rows: Vec<FileRow>,
    /// Rows matching the filter, on every page.
    pub matching: u64,
    /// Where the page starts: as asked, or the last page's start when the rows asked for are
    /// gone (cleared, or fewer since).
    pub offset: u64,
}

/// The account's rows in view (not cleared), counted over all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rows per state.
    pub counts: Vec<(FileState, u64)>,
    /// Failed rows with a next attempt set (they retry by themselves).
    pub failed_scheduled: u64,
    /// Failed rows waiting for a decision about an object at their key (`exists`): asked
    /// about, not failed.
    pub failed_asking: u64,
    /// Uploaded rows whose confirmation waits for its next attempt.
    pub uploaded_scheduled: u64,
    /// Bytes over rows not skipped or cancelled: sizes.
    pub size: u64,
    /// Bytes over the same rows the store holds: the whole size once uploaded, else the parts
    /// acknowledged (files uploading now send more than this; see `uploading`).
    pub sent: u64,
    /// Uploading rows: (id, bytes the journal holds as acknowledged).
    pub uploading: Vec<(i64, u64)>,
}

impl Totals {
    /// Rows in `state`.
    pub fn count(&self, state: FileState) -> u64 {
        self.counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

impl Journal {
    /// A page of the queue as `owner` sees it (`None`: signed out, other accounts' unfinished
    /// rows only), with the account's totals and the accounts whose files wait. `limit` is at
    /// most [`PAGE_MOST`].
    pub fn view(&self, owner: Option<&Owner>, show: Show, offset: u64, limit: u64) -> Result<View> {
        let limit = limit.clamp(1, PAGE_MOST);
        let totals = match owner {
            Some(owner) => self.totals(owner)?,
            None => Totals::default(),
        };
        let waiting = self.waiting_for_others(owner)?;
        let sum = |pick: fn(FileState) -> bool| -> u64 {
            totals
                .counts
                .iter()
                .filter(|(s, _)| pick(*s))
                .map(|(_, n)| n)
                .sum()
        };
        let unfinished = sum(|s| !s.is_final()) + waiting.iter().map(|w| w.files).sum::<u64>();
        let finished = sum(FileState::is_final);
        let matching = match show {
            Show::All => unfinished + finished,
            Show::Unfinished => unfinished,
            Show::Failed => totals.count(FileState::Failed),
            Show::Finished => finished,
        };
        let offset = if offset >= matching {
            matching.saturating_sub(1) / limit * limit
        } else {
            offset
        };
        let rows = match show {
            Show::All => {
                let mut rows = Vec::new();
                if offset < unfinished {
                    rows = self.rows(owner, Show::Unfinished, offset, limit)?;
                }
                let left = limit - rows.len() as u64;
                if left > 0 {
                    let from = offset.saturating_sub(unfinished);
                    rows.extend(self.rows(owner, Show::Finished, from, left)?);
                }
                rows
            }
            show => self.rows(owner, show, offset, limit)?,
        };
        Ok(View {
            page: Page {
                rows,
                matching,
                offset,
            },
            totals,
            waiting,
        })
    }

    /// Rows `offset..offset + limit` of one list (not `All`, which is two).
    fn rows(
        &self,
        owner: Option<&Owner>,
        show: Show,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<FileRow>> {
        let (server, user) = owner.map_or((None, None), |o| (Some(&o.server), Some(o.user_id)));
        let sql = rows_sql(show);
        self.with(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            stmt.query_map(params![server, user, limit, offset], file_from_row)?
                .collect()
        })
    }

    /// `owner`'s rows in view, counted.
    pub fn totals(&self, owner: &Owner) -> Result<Totals> {
        self.with(|c| {
            let mut totals = Totals::default();
            let mut stmt = c.prepare_cached(&totals_sql())?;
            let mut rows = stmt.query(params![owner.server, owner.user_id])?;
            while let Some(r) = rows.next()? {
                let state = FileState::parse(&r.get::<_, String>(0)?);
                let (n, scheduled): (u64, u64) = (r.get(1)?, r.get(2)?);
                totals.counts.push((state, n));
                match state {
                    FileState::Failed => totals.failed_scheduled = scheduled,
                    FileState::Uploaded => totals.uploaded_scheduled = scheduled,
                    _ => {}
                }
                if !matches!(state, FileState::Skipped | FileState::Cancelled) {
                    totals.size += r.get::<_, u64>(3)?;
                    totals.sent += r.get::<_, u64>(4)?;
                }
            }
            if totals.count(FileState::Failed) > 0 {
                // Of the failed rows (found by the index, each read for its error's code),
                // those waiting for a decision about an object at their key (the window asks
                // about the first, `Journal::first_asking`).
                totals.failed_asking =
                    c.row(&asking_sql(), params![owner.server, owner.user_id], |r| {
                        r.get(0)
                    })?;
            }
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, bytes_done FROM files WHERE {OWNED} AND state = 'uploading'
                 ORDER BY id"
            ))?;
            totals.uploading = stmt
                .query_map(params![owner.server, owner.user_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(totals)
        })
    }

    /// Takes `owner`'s finished rows (confirmed, skipped, cancelled) out of the queue's view;
    /// returns how many. The rows stay in the journal.
    pub fn clear_finished(&self, owner: &Owner) -> Result<u64> {
        let finished = sql_finished();
        self.with(|c| {
            let n = c.execute(
                &format!(
                    "UPDATE files SET cleared = 1
                     WHERE {OWNED} AND cleared = 0 AND {finished}"
                ),
                params![owner.server, owner.user_id],
            )?;
            Ok(n as u64)
        })
    }

    /// Puts a cleared row back in view (a file the user gives again, already uploaded).
    pub(crate) fn reveal(&self, id: i64) -> Result<()> {
        self.with(|c| {
            c.run(
                "UPDATE files SET cleared = 0 WHERE id = ?1 AND cleared = 1",
                [id],
            )?;
            Ok(())
        })
    }
}

/// The SQL of a list's rows: `?1`, `?2` the owner, `?3` the limit, `?4` the offset.
fn rows_sql(show: Show) -> String {
    let (unfinished, finished) = (sql_unfinished(), sql_finished());
    let filter = match show {
        // Unfinished rows are never cleared; the partial index `files_unfinished` holds them
        // in id order (its condition written exactly so).
        Show::All | Show::Unfinished => format!("{unfinished} ORDER BY id"),
        Show::Failed => format!("{OWNED} AND state = 'failed' ORDER BY id"),
        Show::Finished => {
            format!("{OWNED} AND cleared = 0 AND {finished} ORDER BY id DESC")
        }
    };
    format!("SELECT {COLUMNS} FROM files WHERE {filter} LIMIT ?3 OFFSET ?4")
}

/// The owner's (`?1`, `?2`) rows in view per state: count, with a next attempt, bytes, bytes
/// stored.
fn totals_sql() -> String {
    let stored = super::state::sql_list(&[FileState::Uploaded, FileState::Confirmed]);
    format!(
        "SELECT state, count(*), sum(next_retry_at IS NOT NULL), sum(coalesce(size, 0)),
            sum(CASE WHEN state IN ({stored}) THEN coalesce(size, 0) ELSE bytes_done END)
         FROM files WHERE {OWNED} AND cleared = 0 GROUP BY state"
    )
}

/// The owner's (`?1`, `?2`) failed rows in view waiting for a decision, counted.
fn asking_sql() -> String {
    format!(
        "SELECT count(*) FROM files WHERE {OWNED} AND cleared = 0 AND state = 'failed'
             AND error_code = 'exists'"
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::journal::NewFile;

    /// The page of [`Journal::view`].
    trait Paged {
        fn page(&self, owner: Option<&Owner>, show: Show, offset: u64, limit: u64) -> Result<Page>;
    }

    impl Paged for Journal {
        fn page(&self, owner: Option<&Owner>, show: Show, offset: u64, limit: u64) -> Result<Page> {
            Ok(self.view(owner, show, offset, limit)?.page)
        }
    }

    fn owner(user_id: i64) -> Owner {
        Owner {
            server: "https://ferry.example".into(),
            user_id,
            user_name: if user_id == 1 { "alice" } else { "bob" }.into(),
        }
    }

    /// Adds `n` rows of `who`, 10 bytes each, and returns their ids.
    fn add(journal: &Journal, who: &Owner, n: usize) -> Vec<i64> {
        (0..n)
            .map(|i| {
                let path = PathBuf::from(format!("/q/{}/{i}.bin", who.user_id));
                let file = NewFile {
                    path: &path,
                    key: &format!("{i}.bin"),
                    name: &format!("{i}.bin"),
                    size: Some(10),
                    mtime_ns: Some(1),
                    on_conflict: crate::conflict::OnConflict::Ask,
                };
                journal.add(who, &file, None).unwrap()
            })
            .collect()
    }

    /// Puts rows in `state` as the scheduler would leave them (bytes, a next attempt).
    fn set(journal: &Journal, ids: &[i64], state: FileState, bytes: u64, retry: Option<i64>) {
        for &id in ids {
            journal
                .with(|c| {
                    c.execute(
                        "UPDATE files SET state = ?2, bytes_done = ?3, next_retry_at = ?4
                         WHERE id = ?1",
                        params![id, state.as_str(), bytes, retry],
                    )
                })
                .unwrap();
        }
    }

    fn ids(page: &Page) -> Vec<i64> {
        page.rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn all_lists_what_is_on_its_way_in_upload_order_then_what_finished_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let (alice, bob) = (owner(1), owner(2));
        let mine = add(&journal, &alice, 250);
        let theirs = add(&journal, &bob, 3);
        set(&journal, &mine[..100], FileState::Confirmed, 10, None);
        set(&journal, &mine[100..110], FileState::Failed, 0, Some(5));
        set(&journal, &theirs[..1], FileState::Confirmed, 10, None);
        set(&journal, &theirs[1..2], FileState::Failed, 0, None);
        let newest_first = |ids: &[i64]| ids.iter().rev().copied().collect::<Vec<_>>();

        // Alice's 150 unfinished rows and bob's 2 (waiting for him), then her 100 finished
        // ones; bob's confirmed row is not hers to see.
        let page = journal.page(Some(&alice), Show::All, 0, 100).unwrap();
        assert_eq!((page.matching, ids(&page)), (252, mine[100..200].to_vec()));
        let middle = journal.page(Some(&alice), Show::All, 100, 100).unwrap();
        let mut want = mine[200..].to_vec();
        want.extend(&theirs[1..]);
        want.extend(newest_first(&mine[..100])[..48].iter());
        assert_eq!((middle.offset, ids(&middle)), (100, want));
        let last = journal.page(Some(&alice), Show::All, 200, 100).unwrap();
        assert_eq!(ids(&last), newest_first(&mine[..100])[48..].to_vec());

        // Failed and Finished are the account's own rows.
        let failed = journal.page(Some(&alice), Show::Failed, 0, 100).unwrap();
        assert_eq!(
            (failed.matching, ids(&failed)),
            (10, mine[100..110].to_vec())
        );
        let finished = journal.page(Some(&alice), Show::Finished, 0, 500).unwrap();
        assert_eq!(
            (finished.matching, ids(&finished)),
            (100, newest_first(&mine[..100]))
        );
        let unfinished = journal
            .page(Some(&alice), Show::Unfinished, 0, 500)
            .unwrap();
        assert_eq!(unfinished.matching, 152);
        assert_eq!(unfinished.rows.len(), 152);

        // Rows asked for that are gone: the last page there is.
        let beyond = journal.page(Some(&alice), Show::Failed, 40, 20).unwrap();
        assert_eq!((beyond.offset, ids(&beyond)), (0, mine[100..110].to_vec()));
        let far = journal
            .page(Some(&alice), Show::All, u64::MAX, 100)
            .unwrap();
        assert_eq!((far.offset, far.rows.len()), (200, 52));
        // Signed out: unfinished rows of everyone, which wait for their owners.
        let nobody = journal.page(None, Show::All, 0, 500).unwrap();
        assert_eq!((nobody.matching, nobody.rows.len()), (152, 152));
    }

    #[test]
    fn reading_the_queue_reads_indexes_never_the_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let plan = |sql: &str| journal.query_plan(sql);
        let queries = [
            ("totals", totals_sql()),
            ("unfinished", rows_sql(Show::Unfinished)),
            ("failed", rows_sql(Show::Failed)),
            ("finished", rows_sql(Show::Finished)),
            ("waiting", crate::journal::files::waiting_sql()),
        ];
        for (name, sql) in queries {
            let steps = plan(&sql);
            // A bare scan reads every row the journal ever kept.
            assert!(
                steps.iter().all(|s| s != "SCAN files") && !steps.is_empty(),
                "{name} reads the whole journal: {steps:?}"
            );
        }
        for show in [Show::Unfinished, Show::Failed, Show::Finished] {
            let steps = plan(&rows_sql(show)).join(" | ");
            assert!(
                !steps.contains("TEMP B-TREE"),
                "{show:?} sorts its rows: {steps}"
            );
        }
        let finished = plan(&rows_sql(Show::Finished)).join(" | ");
        assert!(finished.contains("files_finished"), "{finished}");
        let unfinished = plan(&rows_sql(Show::Unfinished)).join(" | ");
        assert!(
            unfinished.ends_with("INDEX files_unfinished"),
            "{unfinished}"
        );
        let totals = plan(&totals_sql()).join(" | ");
        assert!(totals.contains("COVERING INDEX files_tally"), "{totals}");
        let asking = plan(&asking_sql()).join(" | ");
        assert!(asking.contains("state=?"), "{asking}");
        let waiting = plan(&crate::journal::files::waiting_sql()).join(" | ");
        assert!(waiting.contains("files_unfinished_owner"), "{waiting}");
    }

    #[test]
    fn totals_count_every_row_of_the_account_not_only_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let (alice, bob) = (owner(1), owner(2));
        let mine = add(&journal, &alice, 1200);
        add(&journal, &bob, 7);
        set(&journal, &mine[..600], FileState::Confirmed, 10, None);
        set(&journal, &mine[600..602], FileState::Uploading, 4, None);
        set(&journal, &mine[602..605], FileState::Failed, 0, Some(9));
        set(&journal, &mine[605..606], FileState::Failed, 0, None);
        set(&journal, &mine[619..621], FileState::Uploading, 0, None);
        for &id in &mine[619..621] {
            // Waiting for a decision about an object at its key.
            assert!(journal.fail(id, "exists", "taken", None).unwrap().is_some());
        }
        set(&journal, &mine[606..608], FileState::Uploaded, 0, Some(9));
        set(&journal, &mine[608..609], FileState::Uploaded, 0, None);
        set(&journal, &mine[609..619], FileState::Cancelled, 3, None);

        let totals = journal.totals(&alice).unwrap();
        assert_eq!(totals.count(FileState::Confirmed), 600);
        assert_eq!(totals.count(FileState::Queued), 1200 - 621);
        assert_eq!(totals.count(FileState::Cancelled), 10);
        assert_eq!(
            (
                totals.failed_scheduled,
                totals.failed_asking,
                totals.count(FileState::Failed)
            ),
            (3, 2, 6)
        );
        assert_eq!(
            (totals.uploaded_scheduled, totals.count(FileState::Uploaded)),
            (2, 3)
        );
        // Cancelled rows count for nothing; uploaded and confirmed ones for their size.
        assert_eq!(totals.size, (1200 - 10) * 10);
        assert_eq!(totals.sent, 600 * 10 + 2 * 4 + 3 * 10);
        assert_eq!(totals.uploading, vec![(mine[600], 4), (mine[601], 4)]);
        // A limit beyond the most a page holds is the most.
        let big = journal.page(Some(&alice), Show::All, 0, 100_000).unwrap();
        assert_eq!(big.rows.len() as u64, PAGE_MOST);
    }

    #[test]
    fn clearing_takes_finished_rows_out_of_view_and_the_journal_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let (alice, bob) = (owner(1), owner(2));
        let mine = add(&journal, &alice, 6);
        let theirs = add(&journal, &bob, 2);
        set(&journal, &mine[..2], FileState::Confirmed, 10, None);
        set(&journal, &mine[2..3], FileState::Skipped, 0, None);
        set(&journal, &mine[3..4], FileState::Cancelled, 0, None);
        set(&journal, &mine[4..5], FileState::Failed, 0, None);
        set(&journal, &theirs[..1], FileState::Confirmed, 10, None);

        assert_eq!(journal.clear_finished(&alice).unwrap(), 4);
        assert_eq!(journal.clear_finished(&alice).unwrap(), 0, "once");
        let page = journal.page(Some(&alice), Show::All, 0, 100).unwrap();
        assert_eq!(ids(&page), vec![mine[4], mine[5], theirs[1]]);
        let totals = journal.totals(&alice).unwrap();
        assert_eq!((totals.count(FileState::Confirmed), totals.size), (0, 20));
        // Bob's finished row is his to clear.
        let his = journal.page(Some(&bob), Show::Finished, 0, 100).unwrap();
        assert_eq!(ids(&his), vec![theirs[0]]);
        // The rows are still the journal's word on those files.
        let row = journal.file(mine[0]).unwrap().unwrap();
        assert_eq!(row.state, FileState::Confirmed);
        let latest = journal.latest_for_path(&alice, &row.path).unwrap().unwrap();
        assert_eq!(latest.id, mine[0]);

        journal.reveal(mine[0]).unwrap();
        let page = journal.page(Some(&alice), Show::Finished, 0, 100).unwrap();
        assert_eq!(ids(&page), vec![mine[0]]);
    }
}
