//! The file state machine, written down once: which state a file may move to from which. Every
//! change of state in the journal is a compare-and-set against this table, so a race (a pause
//! against a finishing upload, a cancel against a confirmation) shows up as a refused
//! transition instead of a silent overwrite.
//!
//! ```text
//! Queued ──► Uploading ──► Uploaded ──► Confirmed
//!   │  ▲         │  │
//!   │  └─Paused◄─┘  └─► Failed(attempts, retry at) ──► Uploading (when due)
//!   └─► Skipped(reason) ◄─ Uploading (an object at the key, left alone)
//!                              any unfinished state ──► Cancelled
//! ```

use serde::{Deserialize, Serialize};

/// Where a file is in its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Waiting for a slot.
    Queued,
    /// Bytes are moving.
    Uploading,
    /// The store has the object; the app server has not confirmed it yet.
    Uploaded,
    /// The app server recorded it. Done.
    Confirmed,
    /// Stopped by the user; resumes from the parts already sent.
    Paused,
    /// Failed; retried at `next_retry_at` when the error may pass.
    Failed,
    /// Not uploaded on purpose (excluded, unchanged, not representable as a key).
    Skipped,
    /// Stopped by the user for good.
    Cancelled,
}

use FileState::*;

impl FileState {
    /// Every state.
    pub const ALL: [FileState; 8] = [
        Queued, Uploading, Uploaded, Confirmed, Paused, Failed, Skipped, Cancelled,
    ];

    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Queued => "queued",
            Uploading => "uploading",
            Uploaded => "uploaded",
            Confirmed => "confirmed",
            Paused => "paused",
            Failed => "failed",
            Skipped => "skipped",
            Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(value: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .unwrap_or(Failed)
    }

    /// The states nothing more happens in.
    pub const FINAL: [FileState; 3] = [Confirmed, Skipped, Cancelled];

    /// Whether nothing more will happen to the file on its own.
    pub fn is_final(self) -> bool {
        Self::FINAL.contains(&self)
    }

    /// The states a file may come from to reach `self`.
    pub fn reached_from(self) -> &'static [FileState] {
        match self {
            // Resumed, retried, or put back after a crash or a sign-out.
            Queued => &[Paused, Failed, Uploading],
            Uploading => &[Queued, Failed],
            // Failed: a confirmation refused for a while, resumed by the user.
            Uploaded => &[Uploading, Failed],
            Confirmed => &[Uploaded],
            Paused => &[Queued, Uploading, Failed],
            // Uploaded: the app server refused the confirmation for good.
            Failed => &[Uploading, Uploaded],
            // Uploading: its rule left the object already at its key alone.
            Skipped => &[Queued, Uploading],
            Cancelled => &[Queued, Uploading, Paused, Failed],
        }
    }

    /// `'a','b'` for SQL: the states a file may come from to reach `self`.
    pub(crate) fn sql_sources(self) -> String {
        sql_list(self.reached_from())
    }
}

/// A row not finished, for SQL: `state <> 'confirmed' AND …` over the final states, as the
/// partial indexes of unfinished rows are written (SQLite uses such an index only for a query
/// whose condition is written the same way). Comparisons, not `NOT IN (…)`: SQLite builds a
/// temporary table for a list of three or more each time it evaluates a partial index's
/// condition — at every write of a row, old row and new. (A query's own `IN` list is built
/// once per run.)
pub(crate) fn sql_unfinished() -> String {
    FileState::FINAL
        .iter()
        .map(|s| format!("state <> '{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A finished row, for SQL: `(state = 'confirmed' OR …)`, as the partial index of finished
/// rows is written (see [`sql_unfinished`]).
pub(crate) fn sql_finished() -> String {
    let states: Vec<_> = FileState::FINAL
        .iter()
        .map(|s| format!("state = '{}'", s.as_str()))
        .collect();
    format!("({})", states.join(" OR "))
}

/// `'a','b'` for an SQL `IN (…)` of states (fixed strings, never user input).
pub(crate) fn sql_list(states: &[FileState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_finished_ones_stay_finished() {
        for state in FileState::ALL {
            assert_eq!(FileState::parse(state.as_str()), state);
            for target in FileState::ALL {
                if state.is_final() {
                    assert!(
                        !target.reached_from().contains(&state),
                        "{state:?} is final but may become {target:?}"
                    );
                }
            }
        }
    }
}
