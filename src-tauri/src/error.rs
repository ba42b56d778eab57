//! Errors as the UI receives them: `{code, message}` with the engine's stable code.

use serde::Serialize;

/// A command's error.
#[derive(Debug, Serialize)]
pub(crate) struct CommandError {
    code: String,
    message: String,
}

impl CommandError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The words the user reads.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<ferry_engine::Error> for CommandError {
    fn from(err: ferry_engine::Error) -> Self {
        Self {
            code: err.code().into(),
            message: err.to_string(),
        }
    }
}

pub(crate) type CommandResult<T> = Result<T, CommandError>;
