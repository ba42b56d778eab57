//! Work that waits on the disk or on D-Bus (SQLite, the keychain, folder scans) runs on tokio's
//! blocking threads, never on the async workers that move the bytes.

use crate::error::{Error, Result};

/// Runs `work` on a blocking thread; `what` names it if the thread dies.
pub(crate) async fn run<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Io {
            context: format!("{what} failed"),
            source: std::io::Error::other(e),
        })?
}
