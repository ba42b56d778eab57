//! What the engine tells its front ends. Events leave through a closure so the engine does not
//! know who listens (a Tauri window, a CLI progress bar, a test).

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::journal::FileState;

/// An error as front ends show it: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorInfo {
    /// Stable code (`file_missing`, `network`, `storage`, …).
    pub code: String,
    /// Words for people.
    pub message: String,
}

impl From<&crate::Error> for ErrorInfo {
    fn from(err: &crate::Error) -> Self {
        Self {
            code: err.code().to_owned(),
            message: err.to_string(),
        }
    }
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Bytes of a file acknowledged by the store (at most 10 a second per file).
    Progress {
        /// Journal id of the file.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        file_id: i64,
        /// Bytes sent and acknowledged.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        bytes: u64,
        /// File size.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        total: u64,
        /// Recent rate, bytes per second.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        rate: u64,
        /// Seconds left at that rate.
        #[cfg_attr(feature = "ts", ts(type = "number | null"))]
        eta_secs: Option<u64>,
    },
    /// A store request failed in a way that may pass (network trouble, 5xx, 429) and is about
    /// to be tried again: front ends show it as retrying, with the reason and the count, so no
    /// retry is ever silent. After `max_attempts` the file fails with the last error.
    Retrying {
        /// Journal id of the file the request was for, if any.
        #[cfg_attr(feature = "ts", ts(type = "number | null"))]
        file_id: Option<i64>,
        /// The store operation (`UploadPart`, `CompleteMultipartUpload`, …).
        operation: String,
        /// Attempts made so far.
        attempt: u32,
        /// Attempts there will be at most.
        max_attempts: u32,
        /// Why the last attempt failed.
        error: ErrorInfo,
        /// How long until the next attempt, in milliseconds.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        retry_in_ms: u64,
    },
    /// A file changed state.
    State {
        /// Journal id of the file.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        file_id: i64,
        /// The new state.
        state: FileState,
        /// Why, for failed and skipped files.
        error: Option<ErrorInfo>,
    },
    /// The store called the app server back after storing a file (OSS and OBS native
    /// callbacks). When the app server recorded the upload from it, no client confirmation is
    /// sent; when the callback failed (`203 CallbackFailed`: the object is stored), the client
    /// confirms as usual, so nothing is lost.
    Callback {
        /// Journal id of the file.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        file_id: i64,
        /// Whether the app server recorded the upload from the callback.
        recorded: bool,
        /// The callback's answer as the store relayed it, or why it failed (at most 1 KiB).
        answer: String,
    },
    /// A refresh of the storage credentials started.
    CredentialsRefreshing,
    /// New storage credentials arrived.
    CredentialsRefreshed {
        /// When they expire.
        #[serde(with = "time::serde::rfc3339")]
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        expires_at: OffsetDateTime,
    },
    /// Getting new credentials failed; the old ones are used while they last.
    CredentialsRefreshFailed {
        /// Why.
        error: ErrorInfo,
    },
    /// New storage credentials arrived but could not be saved in the keychain: they are used
    /// from memory, and a restart asks for new ones.
    CredentialsNotSaved {
        /// Why.
        error: ErrorInfo,
    },
    /// The session ended: uploads pause until the user signs in again.
    SessionExpired,
    /// The app server stopped answering (`online: false`: uploads wait, and are tried again)
    /// or answers again.
    Connection {
        /// Whether it answers.
        online: bool,
    },
    /// Something of the engine's own failed — the journal could not be written (a full disk,
    /// a damaged database) — and is being waited out; no file is lost, but nothing moves
    /// until it passes.
    Trouble {
        /// What the engine was doing.
        operation: String,
        /// Why it failed.
        error: ErrorInfo,
    },
    /// A watched folder cannot be watched (missing, unreadable); it is retried.
    FolderError {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        error: ErrorInfo,
    },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// A sink that drops everything.
pub fn discard() -> EventSink {
    Arc::new(|_| {})
}
