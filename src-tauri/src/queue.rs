//! The queue as the window shows it: the signed-in account's files and other accounts'
//! unfinished ones (which wait for their owner and cannot be touched from this session), each
//! with its retry schedule; and which files a pause, resume or cancel from the page may act on.

use ferry_engine::Engine;
use ferry_engine::events::ErrorInfo;
use ferry_engine::journal::{FileRow, FileState, Owner, PAGE_MOST, Show, Totals};
use serde::{Deserialize, Serialize};

use crate::error::{CommandError, CommandResult};
use crate::words::Words;

/// One row of the queue, as `ui/src/backend.ts` reads it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct QueueItem {
    id: i64,
    name: String,
    path: String,
    size: u64,
    sent: u64,
    rate: u64,
    eta_secs: Option<u64>,
    state: FileState,
    /// Why it failed or was skipped; the last attempt's error while a retry is scheduled.
    error: Option<ErrorInfo>,
    /// When a failed file (or an uploaded file's confirmation) is tried again by itself; none
    /// when it is not (a file failed for good waits for the user).
    retry_at: Option<String>,
    /// Failed attempts so far.
    attempts: u32,
    /// Failed attempts after which the file waits for the user.
    max_attempts: u32,
    /// Whose file it is, for people ("alice", or "alice at https://…" on another server; see
    /// [`owner_label`]); none for files added before files had owners.
    owner: Option<String>,
    /// Whether it belongs to the signed-in account. Other accounts' files are never uploaded by
    /// this session: they wait for their owner to sign in, and cannot be paused, resumed or
    /// cancelled.
    mine: bool,
}

/// The row's account as people read it in `words` (see [`Words::account`]); `None` for rows
/// from before owners were recorded.
fn owner_label(row: &FileRow, me: Option<&Owner>, words: &Words) -> Option<String> {
    let server = row.server.as_deref()?;
    let elsewhere = me.is_none_or(|me| me.server != server);
    Some(words.account(row.user_name.as_deref(), elsewhere.then_some(server)))
}

fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

impl QueueItem {
    fn new(row: FileRow, me: Option<&Owner>, max_attempts: u32, words: &Words) -> Self {
        let mine = me.is_some_and(|me| row.is_owned_by(me));
        let waits = matches!(row.state, FileState::Failed | FileState::Uploaded);
        Self {
            owner: owner_label(&row, me, words),
            mine,
            retry_at: row.next_retry_at.filter(|_| waits).and_then(rfc3339),
            attempts: row.attempts,
            max_attempts,
            size: row
                .size
                .unwrap_or_else(|| std::fs::metadata(&row.path).map(|m| m.len()).unwrap_or(0)),
            sent: row.bytes_done,
            id: row.id,
            path: row.path.display().to_string(),
            name: row.name,
            // Speed and ETA arrive as progress events.
            rate: 0,
            eta_secs: None,
            state: row.state,
            error: row.error_code.map(|code| ErrorInfo {
                code,
                message: row.error_message.unwrap_or_default(),
            }),
        }
    }
}

/// What the page asks for: which rows (`all`, `unfinished`, `failed`, `finished`), from
/// where, how many.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueQuery {
    show: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// Rows a page holds unless the page asks for another number.
const PAGE_DEFAULT: u64 = 100;

impl QueueQuery {
    fn parse(&self) -> CommandResult<(Show, u64, u64)> {
        let show = match self.show.as_deref().unwrap_or("all") {
            "all" => Show::All,
            "unfinished" => Show::Unfinished,
            "failed" => Show::Failed,
            "finished" => Show::Finished,
            other => {
                return Err(CommandError::new(
                    "invalid_request",
                    format!("show is all, unfinished, failed or finished, not {other:?}"),
                ));
            }
        };
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MOST).contains(&limit) {
            return Err(CommandError::new(
                "invalid_request",
                format!("limit goes from 1 to {PAGE_MOST}"),
            ));
        }
        Ok((show, self.offset.unwrap_or(0), limit))
    }
}

/// A page of the queue and the totals over all of it, as `ui/src/backend.ts` reads them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct QueuePage {
    items: Vec<QueueItem>,
    /// Rows matching the filter, on all pages.
    matching: u64,
    /// Where this page starts (the last page's start when the rows asked for are gone).
    offset: u64,
    totals: QueueTotals,
    /// Unfinished files of other accounts on this computer, per account.
    waiting_for_others: Vec<Waiting>,
    /// The account's files waiting for a decision about an object at their key.
    conflicts: Conflicts,
}

/// Files waiting for a decision: how many, and the one asked about first.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Conflicts {
    count: u64,
    first: Option<Conflict>,
}

/// A file whose key holds an object at the store.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Conflict {
    id: i64,
    name: String,
    path: String,
    /// Its key below the account's upload prefix.
    key: String,
}

/// Another account's unfinished files: they wait for it to sign in.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Waiting {
    account: String,
    files: u64,
}

/// The signed-in account's files in view, counted by the journal over all of them.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct QueueTotals {
    /// Files not skipped or cancelled.
    pub(crate) files: u64,
    /// Confirmed.
    pub(crate) done: u64,
    /// On their way: queued, uploading, or uploaded and being confirmed.
    pub(crate) active: u64,
    /// Waiting for their next attempt (of the upload or of its confirmation).
    pub(crate) retrying: u64,
    /// Failed for good: they wait for the user.
    pub(crate) failed: u64,
    /// Waiting for a decision about an object at their key (the conflict prompt asks).
    pub(crate) asking: u64,
    /// Paused by the user.
    pub(crate) paused: u64,
    /// Confirmed, skipped or cancelled: what "Clear finished" takes out of view.
    pub(crate) finished: u64,
    /// Bytes stored of those files (files uploading now have sent more: see `uploading`).
    pub(crate) sent: u64,
    /// Bytes of those files.
    pub(crate) size: u64,
    /// Files uploading now, with the bytes the journal holds as stored.
    pub(crate) uploading: Vec<UploadingFile>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct UploadingFile {
    pub(crate) id: i64,
    pub(crate) sent: u64,
}

impl From<&Totals> for QueueTotals {
    fn from(t: &Totals) -> Self {
        use FileState::{Cancelled, Confirmed, Failed, Paused, Queued, Skipped, Uploaded};
        let n = |s| t.count(s);
        Self {
            files: FileState::ALL.iter().map(|&s| n(s)).sum::<u64>() - n(Skipped) - n(Cancelled),
            done: n(Confirmed),
            active: n(Queued) + n(FileState::Uploading) + n(Uploaded) - t.uploaded_scheduled,
            retrying: t.failed_scheduled + t.uploaded_scheduled,
            failed: n(Failed)
                .saturating_sub(t.failed_scheduled)
                .saturating_sub(t.failed_asking),
            asking: t.failed_asking,
            paused: n(Paused),
            finished: n(Confirmed) + n(Skipped) + n(Cancelled),
            sent: t.sent,
            size: t.size,
            uploading: t
                .uploading
                .iter()
                .map(|&(id, sent)| UploadingFile { id, sent })
                .collect(),
        }
    }
}

/// A page of the queue as the signed-in account sees it: its files and other accounts'
/// unfinished ones (oldest first, the order they upload in), with the totals over all of the
/// account's files. Reads the journal and the disk: call it off the async threads.
pub(crate) fn page(
    engine: &Engine,
    query: &QueueQuery,
    max_attempts: u32,
    words: &Words,
) -> CommandResult<QueuePage> {
    let (show, offset, limit) = query.parse()?;
    let me = engine.session().owner();
    let view = engine.journal().view(me.as_ref(), show, offset, limit)?;
    let conflicts = match &me {
        // The totals counted the files waiting for a decision: none, nothing to read.
        Some(me) if view.totals.failed_asking > 0 => {
            let first = engine.journal().first_asking(me)?;
            Conflicts {
                count: view.totals.failed_asking,
                first: first.map(|row| Conflict {
                    id: row.id,
                    path: row.path.display().to_string(),
                    name: row.name,
                    key: row.key,
                }),
            }
        }
        _ => Conflicts::default(),
    };
    Ok(QueuePage {
        conflicts,
        items: view
            .page
            .rows
            .into_iter()
            .map(|r| QueueItem::new(r, me.as_ref(), max_attempts, words))
            .collect(),
        matching: view.page.matching,
        offset: view.page.offset,
        totals: QueueTotals::from(&view.totals),
        waiting_for_others: view
            .waiting
            .into_iter()
            .map(|w| Waiting {
                account: words.account(w.name.as_deref(), w.server.as_deref()),
                files: w.files,
            })
            .collect(),
    })
}

/// Refuses a control from the page on another account's file (`forbidden`: it waits for its
/// owner), which the engine would skip without a word; signed out, `signed_out` worded in
/// `words`. Reads the journal: call it off the async threads.
pub(crate) fn check_mine(engine: &Engine, ids: &[i64], words: &Words) -> CommandResult<()> {
    let me = engine
        .session()
        .owner()
        .ok_or_else(|| CommandError::worded(words, "signed_out", words.sign_in_first))?;
    for &id in ids {
        if let Some(theirs) = engine.journal().file(id)?.filter(|r| !r.is_owned_by(&me)) {
            let owner = owner_label(&theirs, Some(&me), words)
                .unwrap_or_else(|| words.unknown_account.into());
            return Err(CommandError::worded(
                words,
                "forbidden",
                (words.belongs_to)(&theirs.name, &owner),
            ));
        }
    }
    Ok(())
}

/// A journal row for tests: file 7 of `user` (1 is alice, 2 is bob) on `server`, failed twice
/// and due again at 2026-01-01T00:00:12Z.
#[cfg(test)]
pub(crate) fn test_row(state: FileState, server: Option<&str>, user: i64) -> FileRow {
    FileRow {
        id: 7,
        path: std::path::PathBuf::from("/nowhere/a.bin"),
        key: "a.bin".into(),
        name: "a.bin".into(),
        size: Some(10),
        mtime_ns: None,
        sample: None,
        state,
        attempts: 2,
        next_retry_at: Some(1_767_225_612),
        error_code: Some("storage".into()),
        error_message: Some("PutObject: the store answered 503 SlowDown".into()),
        upload_id: None,
        part_size: None,
        object_key: None,
        bucket: None,
        etag: None,
        checksum: None,
        bytes_done: 4,
        server: server.map(str::to_owned),
        user_id: Some(user),
        user_name: Some(if user == 1 { "alice" } else { "bob" }.into()),
        initiating_at: None,
        on_conflict: ferry_engine::conflict::OnConflict::Ask,
        rewrites: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::{EN, ZH_CN};

    fn row(state: FileState, server: Option<&str>, user: i64) -> FileRow {
        test_row(state, server, user)
    }

    const HERE: &str = "https://files.example.com";

    fn bob() -> Owner {
        Owner {
            server: HERE.into(),
            user_id: 2,
            user_name: "bob".into(),
        }
    }

    #[test]
    fn a_row_says_when_it_is_retried_and_whose_it_is() {
        let item = QueueItem::new(row(FileState::Failed, Some(HERE), 1), Some(&bob()), 8, &EN);
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["retryAt"], "2026-01-01T00:00:12Z");
        assert_eq!(json["attempts"], 2);
        assert_eq!(json["maxAttempts"], 8);
        assert_eq!(json["owner"], "alice");
        assert_eq!(json["mine"], false);
        assert_eq!(json["error"]["code"], "storage");

        let mine = QueueItem::new(row(FileState::Failed, Some(HERE), 2), Some(&bob()), 8, &EN);
        assert!(mine.mine);
        // A retry time is only meant while the file waits in failed or uploaded.
        let paused = QueueItem::new(row(FileState::Paused, Some(HERE), 2), Some(&bob()), 8, &EN);
        assert_eq!(paused.retry_at, None);
    }

    #[test]
    fn accounts_of_other_servers_and_unowned_rows_are_named_as_such() {
        let elsewhere = row(FileState::Queued, Some("https://other.example.com"), 1);
        assert_eq!(
            owner_label(&elsewhere, Some(&bob()), &EN).as_deref(),
            Some("alice at https://other.example.com")
        );
        assert_eq!(
            owner_label(&elsewhere, Some(&bob()), &ZH_CN).as_deref(),
            Some("https://other.example.com 上的 alice")
        );
        let unowned = row(FileState::Queued, None, 1);
        assert_eq!(owner_label(&unowned, Some(&bob()), &EN), None);
        let item = QueueItem::new(unowned, Some(&bob()), 8, &EN);
        assert!(!item.mine);
    }

    #[test]
    fn totals_say_what_is_on_its_way_retried_failed_and_finished() {
        use FileState::*;
        let totals = Totals {
            counts: vec![
                (Queued, 5),
                (Uploading, 2),
                (Uploaded, 3),
                (Confirmed, 7),
                (Paused, 1),
                (Failed, 6),
                (Skipped, 2),
                (Cancelled, 1),
            ],
            failed_scheduled: 3,
            failed_asking: 2,
            uploaded_scheduled: 1,
            size: 100,
            sent: 60,
            uploading: vec![(9, 4)],
        };
        let view = QueueTotals::from(&totals);
        assert_eq!(
            view,
            QueueTotals {
                files: 24,
                done: 7,
                active: 5 + 2 + 2,
                retrying: 4,
                failed: 1,
                asking: 2,
                paused: 1,
                finished: 10,
                sent: 60,
                size: 100,
                uploading: vec![UploadingFile { id: 9, sent: 4 }],
            }
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["uploading"][0]["sent"], 4);
    }

    #[test]
    fn a_query_names_its_rows_and_a_page_size_the_journal_allows() {
        let query = |show: Option<&str>, limit| QueueQuery {
            show: show.map(str::to_owned),
            offset: None,
            limit,
        };
        assert_eq!(query(None, None).parse().unwrap(), (Show::All, 0, 100));
        assert_eq!(
            query(Some("failed"), Some(500)).parse().unwrap().0,
            Show::Failed
        );
        for bad in [
            query(Some("everything"), None),
            query(None, Some(0)),
            query(None, Some(501)),
        ] {
            assert_eq!(bad.parse().unwrap_err().code(), "invalid_request");
        }
    }
}
