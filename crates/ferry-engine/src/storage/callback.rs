//! What the store says of a native callback (OSS, OBS) a PutObject or CompleteMultipartUpload
//! asked for: the app server's answer it relays (`200`), or `203 CallbackFailed` — the object
//! is stored, the callback failed.

use super::Reply;
use crate::dialect::s3::xml;

/// What the store said of the callback a request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallbackOutcome {
    /// The app server answered (the answer's body, as the store relayed it).
    Answered(String),
    /// The object is stored but the callback failed (`203 CallbackFailed`): why.
    Failed(String),
}

impl CallbackOutcome {
    /// The outcome of a stored-object reply to a request that asked for a callback.
    pub(super) fn of(reply: &Reply) -> Self {
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        if reply.status == 203 {
            let message = xml::error(&reply.body)
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or(text);
            Self::Failed(message)
        } else {
            Self::Answered(text)
        }
    }
}
