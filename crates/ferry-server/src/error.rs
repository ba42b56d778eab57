//! The server's error type. Each variant maps to one stable [`ErrorCode`]; the HTTP layer turns
//! it into `{code, message}` and a status, and never shows the source of an internal error.

use ferry_protocol::ErrorCode;

use crate::db::DbError;

/// Everything a server operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Wrong username or password, or a disabled account.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// No usable bearer token.
    #[error("sign in first: this request needs a session token")]
    Unauthenticated,
    /// The session token has expired.
    #[error("the session has expired; sign in again")]
    SessionExpired,
    /// Signed in but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Too many failed sign-ins.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// An object key the server will not accept.
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    /// The confirmed object is not in the store.
    #[error("no object {key:?} in bucket {bucket:?}")]
    ObjectMissing {
        /// Bucket asked for.
        bucket: String,
        /// Key asked for.
        key: String,
    },
    /// The stored object differs from the confirmation.
    #[error("the stored object has size {size} and ETag {etag:?}, not what was confirmed")]
    ObjectMismatch {
        /// Size in the store.
        size: u64,
        /// ETag in the store.
        etag: String,
    },
    /// A provider callback that is forged, changed, replayed, or signed with a key from a host
    /// the server does not trust.
    #[error("callback refused: {0}")]
    CallbackRefused(String),
    /// The upload id was used before for another object.
    #[error("upload id {0:?} was confirmed before for another object")]
    Conflict(String),
    /// A username that is not allowed.
    #[error("invalid username: {0}")]
    InvalidUsername(&'static str),
    /// The username exists already.
    #[error("user {0:?} exists already")]
    UserExists(String),
    /// No such user.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the server was doing.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Hashing or checking a password failed.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The server's configuration cannot work (found at start).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The cloud's credential service vended nothing.
    #[error(transparent)]
    Broker(#[from] crate::grants::BrokerError),
}

impl Error {
    /// The stable code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::SessionExpired => ErrorCode::SessionExpired,
            Self::Forbidden(_) | Self::CallbackRefused(_) => ErrorCode::Forbidden,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::InvalidRequest(_) | Self::InvalidUsername(_) | Self::UserExists(_) => {
                ErrorCode::InvalidRequest
            }
            Self::InvalidKey(_) => ErrorCode::InvalidKey,
            Self::ObjectMissing { .. } => ErrorCode::ObjectMissing,
            Self::ObjectMismatch { .. } => ErrorCode::ObjectMismatch,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::NoSuchUser(_) => ErrorCode::NotFound,
            Self::Broker(err) if err.is_refusal() => ErrorCode::BrokerRefused,
            Self::Broker(_) => ErrorCode::BrokerUnavailable,
            Self::Db(_) | Self::Io { .. } | Self::PasswordHash(_) | Self::Config(_) => {
                ErrorCode::Internal
            }
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Result with the server's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
