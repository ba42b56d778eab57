//! The engine's error type: variants that mean something, sources kept, and a stable
//! [`Error::code`] for front ends (`{code, message}` in the UI, exit messages in the CLI).

use ferry_protocol::ErrorCode;

/// Everything an engine operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server only hands out credentials (a token server): it keeps no history and takes
    /// no confirmations; uploads are recorded on this computer only.
    #[error("this server keeps no upload history; uploads are recorded on this computer only")]
    LocalHistoryOnly,
    /// No OS keychain (no Secret Service, locked keyring); secrets may be kept in memory only
    /// if the user opts in.
    #[error("the OS keychain is not available: {0}")]
    KeychainUnavailable(String),
    /// Not signed in, or the session ended.
    #[error("not signed in")]
    SignedOut,
    /// The app server answered with an error.
    #[error("{operation}: {message} ({code})")]
    Server {
        /// What the engine was doing.
        operation: &'static str,
        /// The server's stable code.
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// HTTP status.
        status: u16,
    },
    /// The app server or the store could not be reached, or the connection broke (the
    /// message carries the whole chain of causes: a certificate no CA vouches for, a proxy
    /// that would not connect).
    #[error("{operation}: cannot reach {target}: {}", causes(source))]
    Network {
        /// What the engine was doing.
        operation: &'static str,
        /// The host it talked to.
        target: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// A request stopped moving: the store took no more of the body, or no answer came.
    #[error("{operation}: {target}: {what}")]
    Timeout {
        /// What the engine was doing.
        operation: &'static str,
        /// The host it talked to.
        target: String,
        /// What stopped.
        what: String,
    },
    /// The object store refused a request.
    #[error("{operation}: the store answered {status} {code}: {message}{}", request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Storage {
        /// The S3 operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// The store's error code (`AccessDenied`, `NoSuchUpload`, …).
        code: String,
        /// The store's message.
        message: String,
        /// The store's id of the request, when it gave one (its support asks for it).
        request_id: Option<String>,
    },
    /// The local file cannot be uploaded as it is.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Stable code: `file_missing`, `file_unreadable`, `file_changed`, `name_not_utf8`, ….
        code: &'static str,
        /// Words for people.
        reason: String,
    },
    /// The file was not sent on purpose: its conflict rule leaves the object at the store as
    /// it is (`exists`: skip; `not_newer`: overwrite only if newer). The file is skipped.
    #[error("{path}: {reason}")]
    Kept {
        /// The file.
        path: String,
        /// Stable code: `exists`, `not_newer`.
        code: &'static str,
        /// Words for people.
        reason: String,
    },
    /// The journal failed (`disk_full` when the disk under it has no room left).
    #[error("journal: {0}{hint}", hint = disk_full_hint(.0))]
    Journal(#[from] rusqlite::Error),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::dialect::SignError),
    /// The upload finished but its ETag is not the one computed locally.
    #[error("the store's ETag {got} differs from the local {expected}")]
    IntegrityMismatch {
        /// What the file's bytes give.
        expected: String,
        /// What the store answered.
        got: String,
    },
    /// A reply could not be understood.
    #[error("{operation}: unexpected reply: {detail}")]
    Protocol {
        /// What the engine was doing.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Another engine (another Ferry window or `ferry` command) has this data dir open.
    #[error("the data dir is in use by another Ferry process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    DataDirInUse {
        /// The holder's process id, when it could be read.
        pid: Option<u32>,
    },
    /// The file's state changed under an operation (paused, cancelled, or taken by a sign-out):
    /// the operation stops and leaves the file as it now is.
    #[error("the file was {found} meanwhile")]
    StateChanged {
        /// The state it is in now.
        found: &'static str,
    },
    /// The store no longer knows a multipart upload that was being completed, and the object is
    /// not there as expected: the upload starts again.
    #[error("the store lost the upload of {key}; starting again")]
    UploadLost {
        /// Full object key.
        key: String,
    },
    /// The journal file is not a database SQLite can read (damaged, or not a journal at all).
    /// It is left as it is.
    #[error(
        "the journal {path} is damaged ({detail}); it was left as it is: move it away to start with an empty queue"
    )]
    JournalDamaged {
        /// The journal file.
        path: String,
        /// What SQLite said.
        detail: String,
    },
    /// The proxy would not carry a request without (other) credentials (`407`).
    #[error(
        "the proxy refused to carry requests to {target} without other credentials: check the proxy's user name and password (Settings → Network), then retry"
    )]
    ProxyRefused {
        /// Where the request was going.
        target: String,
    },
    /// The network settings cannot be used: a proxy that is not an address, a CA file that
    /// holds no certificate (`invalid_network`).
    #[error("{0}")]
    InvalidNetwork(String),
    /// The app server's address is not one (`invalid_server`).
    #[error("invalid server address: {0}")]
    InvalidServer(String),
    /// Plain `http://` to a host that is not this computer, not explicitly allowed.
    #[error(
        "{0} would be reached without encryption (http://): the password, the session and the storage credentials could be read on the way; use https://, or allow it explicitly"
    )]
    InsecureServer(String),
    /// The journal was written by an older Ferry and has not been brought up to date yet (a
    /// read-only look cannot do it).
    #[error(
        "the journal {0} was written by an older Ferry: open it once with `ferry upload` or the app"
    )]
    JournalOutdated(String),
    /// The folder is watched (kept) already.
    #[error("{0} is watched already")]
    FolderKnown(String),
    /// No kept folder at that path.
    #[error("{0} is not a watched folder")]
    NoSuchFolder(String),
    /// The engine was closed.
    #[error("the engine was closed")]
    Closed,
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// A request that did not get through: the proxy's refusal of its credentials (a `407` to
    /// a CONNECT, a SOCKS5 login turned down) is [`Error::ProxyRefused`], the rest
    /// [`Error::Network`].
    pub(crate) fn unreached(operation: &'static str, target: &str, source: reqwest::Error) -> Self {
        let chain = causes(&source);
        let refused = [
            "proxy authorization required",
            "credentials not accepted",
            "server does not support user/pass authentication",
        ];
        if refused.iter().any(|r| chain.contains(r)) {
            return Self::ProxyRefused {
                target: target.to_owned(),
            };
        }
        Self::Network {
            operation,
            target: target.to_owned(),
            source,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeychainUnavailable(_) => "keychain_unavailable",
            Self::SignedOut => "signed_out",
            Self::Server { code, .. } => code.as_str(),
            Self::Network { .. } => "network",
            Self::Timeout { .. } => "timeout",
            Self::Storage { .. } => "storage",
            Self::File { code, .. } | Self::Kept { code, .. } => code,
            Self::Journal(err) if is_disk_full(err) => "disk_full",
            Self::Journal(_) => "journal",
            Self::Sign(_) => "signing",
            Self::IntegrityMismatch { .. } => "integrity",
            Self::Protocol { .. } => "protocol",
            Self::Io { .. } => "io",
            Self::DataDirInUse { .. } => "data_dir_in_use",
            Self::StateChanged { .. } => "state_changed",
            Self::UploadLost { .. } => "upload_lost",
            Self::Closed => "closed",
            Self::JournalDamaged { .. } => "journal_damaged",
            Self::InvalidServer(_) => "invalid_server",
            Self::InvalidNetwork(_) => "invalid_network",
            Self::ProxyRefused { .. } => "proxy_refused",
            Self::JournalOutdated(_) => "journal_outdated",
            Self::FolderKnown(_) => "duplicate",
            Self::NoSuchFolder(_) => "not_found",
            Self::InsecureServer(_) => "insecure_server",
            Self::LocalHistoryOnly => "local_history_only",
        }
    }

    /// Whether trying again later may succeed (network trouble, 5xx, 429, throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            // (Not a proxy's refusal: trying its credentials again and again can lock the
            // account they belong to. The scheduler stops on the first one.)
            Self::Network { .. } | Self::Timeout { .. } | Self::UploadLost { .. } => true,
            // The cloud's STS said no (a policy, a role): asking again soon will not change it.
            Self::Server {
                code: ErrorCode::BrokerRefused,
                ..
            } => false,
            // AWS: a conditional write raced another write to the key; try again.
            Self::Storage { code, .. } if code == "ConditionalRequestConflict" => true,
            Self::Server { status, .. } | Self::Storage { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            Self::Io { .. } => false,
            _ => false,
        }
    }

    /// Whether the session is gone and the user has to sign in again.
    pub fn needs_sign_in(&self) -> bool {
        matches!(
            self,
            Self::SignedOut
                | Self::Server {
                    code: ErrorCode::SessionExpired | ErrorCode::Unauthenticated,
                    ..
                }
        )
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// An error and its causes, each said once: `a: b: c`.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    for _ in 0..8 {
        let Some(cause) = next else { break };
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        next = cause.source();
    }
    text
}

/// Whether SQLite failed for want of disk space.
fn is_disk_full(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

fn disk_full_hint(err: &rusqlite::Error) -> &'static str {
    if is_disk_full(err) {
        " (free some space on the disk that holds Ferry's data)"
    } else {
        ""
    }
}

/// Whether SQLite says the file is not a (readable) database.
pub(crate) fn is_damaged(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: ErrorCode, status: u16) -> Error {
        Error::Server {
            operation: "getting storage credentials",
            code,
            message: String::new(),
            status,
        }
    }

    #[test]
    fn a_cloud_refusal_is_final_an_unreachable_cloud_is_not() {
        assert!(!server(ErrorCode::BrokerRefused, 502).is_transient());
        assert!(server(ErrorCode::BrokerUnavailable, 503).is_transient());
        assert!(server(ErrorCode::Internal, 500).is_transient());
        assert!(!server(ErrorCode::Forbidden, 403).is_transient());
    }
}
