//! Consents the webview cannot give on the user's behalf: asked in a native dialog of
//! Ferry's own (the page is not trusted to say the user agreed).

use ferry_engine::profile;
use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};

use crate::error::{CommandError, CommandResult};
use crate::words;

/// Asks the user, natively, to allow plain `http://` to `server` when it is another computer;
/// `insecure_server` unless they do. An address that needs no consent passes at once.
pub(crate) async fn insecure_server(app: &tauri::AppHandle, server: &str) -> CommandResult<()> {
    let host = match profile::checked_server(server, false) {
        Err(ferry_engine::Error::InsecureServer(host)) => host,
        _ => return Ok(()),
    };
    let (answer, asked) = tokio::sync::oneshot::channel();
    let words = words::current(app);
    app.dialog()
        .message((words.insecure_question)(&host))
        .title(words.insecure_title)
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            words.insecure_connect.into(),
            words.cancel.into(),
        ))
        .show(move |yes| {
            let _ = answer.send(yes);
        });
    if asked.await.unwrap_or(false) {
        Ok(())
    } else {
        Err(CommandError::worded(
            words,
            "insecure_server",
            (words.insecure_refused)(&host),
        ))
    }
}
