//! The queue as the window shows it: the signed-in account's files and other accounts'
//! unfinished ones (which wait for their owner and cannot be touched from this session), each
//! with its retry schedule; and which files a pause, resume or cancel from the page may act on.

use ferry_engine::Engine;
use ferry_engine::events::ErrorInfo;
use ferry_engine::journal::{FileRow, FileState, Owner};
use serde::Serialize;

use crate::error::{CommandError, CommandResult};

/// Rows the window lists at most (newest first from the journal).
const SHOWN: usize = 500;

/// One row of the queue, as `ui/src/backend.ts` reads it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueItem {
    id: i64,
    name: String,
    path: String,
    size: u64,
    sent: u64,
    rate: u64,
    eta_secs: Option<u64>,
    state: FileState,
    error: Option<ErrorInfo>,
    /// When a failed file (or an uploaded file's confirmation) is tried again by itself.
    retry_at: Option<String>,
    attempts: u32,
    max_attempts: u32,
    /// Whose file it is, for people (see [`owner_label`]).
    owner: Option<String>,
    /// Whether it belongs to the signed-in account.
    mine: bool,
}

/// Files in these states are done with: nothing waits for their owner.
fn finished(state: FileState) -> bool {
    matches!(
        state,
        FileState::Confirmed | FileState::Skipped | FileState::Cancelled
    )
}

/// The row's account as people read it: the user's name, with the server when it is not the
/// one signed in to (as `ferry_engine`'s status names accounts waiting for others).
fn owner_label(row: &FileRow, me: Option<&Owner>) -> Option<String> {
    let server = row.server.as_deref()?;
    let name = row.user_name.as_deref().unwrap_or("an unknown account");
    Some(match me {
        Some(me) if me.server == server => name.to_owned(),
        _ => format!("{name} at {server}"),
    })
}

fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

impl QueueItem {
    fn new(row: FileRow, me: Option<&Owner>, max_attempts: u32) -> Self {
        let mine = me.is_some_and(|me| row.is_owned_by(me));
        let waits = matches!(row.state, FileState::Failed | FileState::Uploaded);
        Self {
            owner: owner_label(&row, me),
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

/// The queue, oldest first: the signed-in account's files, and other accounts' files that
/// still wait for their owner. Reads the journal and the disk: call it off the async threads.
pub(crate) fn items(engine: &Engine, max_attempts: u32) -> CommandResult<Vec<QueueItem>> {
    let me = engine.session().owner();
    let rows = engine.files(SHOWN)?;
    Ok(rows
        .into_iter()
        .rev()
        .filter(|r| me.as_ref().is_some_and(|me| r.is_owned_by(me)) || !finished(r.state))
        .map(|r| QueueItem::new(r, me.as_ref(), max_attempts))
        .collect())
}

/// Refuses a control from the page on another account's file (`forbidden`: it waits for its
/// owner), which the engine would skip without a word. Reads the journal: call it off the
/// async threads.
pub(crate) fn check_mine(engine: &Engine, ids: &[i64]) -> CommandResult<()> {
    let me = engine
        .session()
        .owner()
        .ok_or_else(|| CommandError::new("signed_out", "Sign in first."))?;
    for &id in ids {
        if let Some(theirs) = engine.journal().file(id)?.filter(|r| !r.is_owned_by(&me)) {
            let owner = owner_label(&theirs, Some(&me)).unwrap_or("its owner".into());
            return Err(CommandError::new(
                "forbidden",
                format!(
                    "{} belongs to {owner}: it waits for them to sign in.",
                    theirs.name
                ),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let item = QueueItem::new(row(FileState::Failed, Some(HERE), 1), Some(&bob()), 8);
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["retryAt"], "2026-01-01T00:00:12Z");
        assert_eq!(json["attempts"], 2);
        assert_eq!(json["maxAttempts"], 8);
        assert_eq!(json["owner"], "alice");
        assert_eq!(json["mine"], false);
        assert_eq!(json["error"]["code"], "storage");

        let mine = QueueItem::new(row(FileState::Failed, Some(HERE), 2), Some(&bob()), 8);
        assert!(mine.mine);
        // A retry time is only meant while the file waits in failed or uploaded.
        let paused = QueueItem::new(row(FileState::Paused, Some(HERE), 2), Some(&bob()), 8);
        assert_eq!(paused.retry_at, None);
    }

    #[test]
    fn accounts_of_other_servers_and_unowned_rows_are_named_as_such() {
        let elsewhere = row(FileState::Queued, Some("https://other.example.com"), 1);
        assert_eq!(
            owner_label(&elsewhere, Some(&bob())).as_deref(),
            Some("alice at https://other.example.com")
        );
        let unowned = row(FileState::Queued, None, 1);
        assert_eq!(owner_label(&unowned, Some(&bob())), None);
        let item = QueueItem::new(unowned, Some(&bob()), 8);
        assert!(!item.mine);
    }
}
