//! Window and notifications: engine events go to the UI as `ferry://event`, to the tray's
//! status, and become notifications; files dropped on the window are enqueued.

use std::sync::Arc;

use ferry_engine::events::{Event, EventSink};
use tauri::{AppHandle, DragDropEvent, Emitter, Manager, Window, WindowEvent};
use tauri_plugin_notification::NotificationExt;

use crate::desktop::Desktop;
use crate::error::{CommandError, CommandResult};
use crate::tray::TrayStatus;
use crate::words;

/// The argument Ferry is started with at login: it starts in the tray, its window hidden.
pub(crate) const HIDDEN: &str = "--hidden";

/// Whether these arguments ask Ferry to start in the tray.
pub(crate) fn started_hidden(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.any(|a| a == HIDDEN)
}

/// Shows and focuses the main window.
pub(crate) fn show(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Shows a notification, unless the user turned them off.
pub(crate) fn notify(app: &AppHandle, title: &str, body: &str) {
    let enabled = app
        .try_state::<Arc<Desktop>>()
        .is_none_or(|d| d.settings().notifications);
    if enabled {
        let _ = app.notification().builder().title(title).body(body).show();
    }
}

/// Forwards engine events to the UI, the tray's status and notifications.
pub(crate) fn event_sink(app: AppHandle, tray: Arc<TrayStatus>) -> EventSink {
    Arc::new(move |event: Event| {
        let _ = app.emit("ferry://event", &event);
        tray.observe(&event);
        if let Event::SessionExpired = event {
            let words = words::current(&app);
            notify(&app, words.session_ended, words.session_ended_body);
        }
    })
}

/// Files and folders dropped on the window are enqueued here, in Rust, with the paths the OS
/// gave; the webview never sees them and is only told that the queue changed.
pub(crate) fn window_event(window: &Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        return close_requested(window, api);
    }
    if let WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) = event {
        let app = window.app_handle().clone();
        let paths = paths.clone();
        tauri::async_runtime::spawn(async move {
            let Some(desktop) = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone()) else {
                return;
            };
            match desktop.enqueue_dropped(&paths).await {
                Ok(()) => {
                    let _ = app.emit(
                        "ferry://event",
                        serde_json::json!({"type": "queue_changed"}),
                    );
                }
                Err(err) => {
                    tracing::warn!(code = %err.code(), "could not enqueue dropped files");
                    let words = words::current(&app);
                    notify(&app, words.not_added, words.not_added_body);
                }
            }
        });
    }
}

/// Whether the notification that the window went to the tray was shown (once a run).
static SAID_IN_TRAY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Closing the window never stops uploads: signed in, the window hides to the tray (uploads
/// and watched folders go on; the first time, a notification says so and how to quit).
/// Signed out, closing quits.
fn close_requested(window: &Window, api: &tauri::CloseRequestApi) {
    let app = window.app_handle();
    let signed_in = app
        .try_state::<Arc<Desktop>>()
        .is_some_and(|d| d.is_running());
    if !signed_in {
        return;
    }
    api.prevent_close();
    // Without a tray to bring it back from (a desktop with no StatusNotifier host), the window
    // is minimised instead of hidden: it must stay reachable.
    let tray = tray_host_present();
    let _ = if tray {
        window.hide()
    } else {
        window.minimize()
    };
    if !SAID_IN_TRAY.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let words = words::current(app);
        let body = if tray {
            words.still_running_in_tray
        } else {
            words.still_running_minimised
        };
        notify(app, words.still_running, body);
    }
}

/// Whether the session has a tray to show Ferry's icon in (a StatusNotifier host: someone
/// owns `org.kde.StatusNotifierWatcher` on the session bus), asked with `gdbus` (at most 2 s).
fn tray_host_present() -> bool {
    let asked = std::process::Command::new("timeout")
        .args([
            "2",
            "gdbus",
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
        ])
        .args(["--object-path", "/org/freedesktop/DBus"])
        .args(["--method", "org.freedesktop.DBus.NameHasOwner"])
        .arg("org.kde.StatusNotifierWatcher")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    asked.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("true"))
}

/// A Quit is being asked about: another click waits for that answer.
static ASKING_TO_QUIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Quits — after asking, when files are still on their way (they resume at the next start).
pub(crate) fn quit(app: &AppHandle) {
    use std::sync::atomic::Ordering;
    if ASKING_TO_QUIT.swap(true, Ordering::AcqRel) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let desktop = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone());
        let going = match &desktop {
            Some(desktop) => files_on_their_way(desktop).await,
            None => 0,
        };
        let quit = going == 0 || confirm_quit(&app, going).await;
        ASKING_TO_QUIT.store(false, Ordering::Release);
        if quit {
            // Uploads in flight stop and the journal is closed before the process ends.
            if let Some(desktop) = desktop {
                desktop.shut_down(std::time::Duration::from_secs(5)).await;
            }
            app.exit(0);
        }
    });
}

/// The signed-in account's files still on their way: queued, uploading, being confirmed, or
/// waiting for their next attempt (of the upload or of its confirmation).
async fn files_on_their_way(desktop: &Desktop) -> u64 {
    let Ok(engine) = desktop.engine().await else {
        return 0;
    };
    let Some(me) = engine.session().owner() else {
        return 0;
    };
    let journal = engine.journal().clone();
    match tokio::task::spawn_blocking(move || journal.totals(&me)).await {
        Ok(Ok(totals)) => on_their_way(&totals),
        _ => 0,
    }
}

/// Files the journal's `totals` count as still on their way (see [`files_on_their_way`]).
fn on_their_way(totals: &ferry_engine::journal::Totals) -> u64 {
    let counted = crate::queue::QueueTotals::from(totals);
    counted.active + counted.retrying
}

async fn confirm_quit(app: &AppHandle, going: u64) -> bool {
    use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};
    let (answer, asked) = tokio::sync::oneshot::channel();
    let words = words::current(app);
    app.dialog()
        .message((words.quit_question)(going))
        .title(words.quit_title)
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            words.quit.into(),
            words.keep_uploading.into(),
        ))
        .show(move |yes| {
            let _ = answer.send(yes);
        });
    asked.await.unwrap_or(false)
}

/// Turns starting Ferry at login on or off (the desktop's autostart entry).
pub(crate) fn start_at_login(app: &AppHandle, enabled: bool) -> CommandResult<()> {
    use tauri_plugin_autostart::ManagerExt;
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| CommandError::new("autostart", format!("start at login: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quit asks about files waiting for their next attempt too, not only about those moving
    /// now; files failed for good, paused or done are not on their way.
    #[test]
    fn files_waiting_for_their_next_attempt_are_still_on_their_way() {
        use ferry_engine::journal::{FileState, Totals};
        let totals = Totals {
            counts: vec![
                (FileState::Queued, 1),
                (FileState::Uploading, 1),
                (FileState::Uploaded, 2),
                (FileState::Failed, 3),
                (FileState::Paused, 4),
                (FileState::Confirmed, 5),
            ],
            failed_scheduled: 1,
            failed_asking: 1,
            uploaded_scheduled: 1,
            size: 0,
            sent: 0,
            uploading: Vec::new(),
        };
        // Queued, uploading, both uploaded (one confirming now, one waiting), one failed
        // waiting for its next attempt.
        assert_eq!(on_their_way(&totals), 5);
    }

    #[test]
    fn started_at_login_means_started_in_the_tray() {
        let args = |a: &[&str]| {
            a.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(started_hidden(args(&["ferry-desktop", "--hidden"])));
        assert!(!started_hidden(args(&["ferry-desktop"])));
        assert!(!started_hidden(args(&["ferry-desktop", "--hiddenx"])));
    }
}
