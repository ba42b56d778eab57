//! Errors as the UI receives them: `{code, message, lang}` with the engine's stable code and
//! the language of the message (the engine's are English; the desktop words its own in the
//! language it speaks — the page puts its own sentence for the code before any other).

use serde::Serialize;

use crate::words::Words;

/// A command's error.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct CommandError {
    code: String,
    message: String,
    lang: &'static str,
}

impl CommandError {
    /// An error said in English.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            lang: "en",
        }
    }

    /// An error said in the language of `words` (a sentence of theirs).
    pub(crate) fn worded(words: &Words, code: &str, message: impl Into<String>) -> Self {
        Self {
            lang: words.lang.tag(),
            ..Self::new(code, message)
        }
    }

    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The words the user reads.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<ferry_engine::Error> for CommandError {
    fn from(err: ferry_engine::Error) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

pub(crate) type CommandResult<T> = Result<T, CommandError>;
