//! Window and notifications: engine events go to the UI as `ferry://event`, to the tray's
//! status, and become notifications; files dropped on the window are enqueued.

use std::sync::Arc;

use ferry_engine::events::{Event, EventSink};
use tauri::{AppHandle, DragDropEvent, Emitter, Manager, Window, WindowEvent};
use tauri_plugin_notification::NotificationExt;

use crate::desktop::Desktop;
use crate::error::{CommandError, CommandResult};
use crate::tray::TrayStatus;

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
            notify(
                &app,
                "Signed out",
                "Your session ended. Sign in again to continue uploading.",
            );
        }
    })
}

/// Files and folders dropped on the window are enqueued here, in Rust, with the paths the OS
/// gave; the webview never sees them and is only told that the queue changed.
pub(crate) fn window_event(window: &Window, event: &WindowEvent) {
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
                    notify(
                        &app,
                        "Not added",
                        "Sign in first; dropped files are uploaded once you are signed in.",
                    );
                }
            }
        });
    }
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
