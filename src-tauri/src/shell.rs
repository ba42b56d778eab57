//! Window, tray and notifications: engine events go to the UI as `ferry://event`, update the
//! tray's status, and become notifications; files dropped on the window are enqueued.

use std::sync::Arc;

use ferry_engine::events::{Event, EventSink};
use ferry_engine::journal::FileState;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, DragDropEvent, Emitter, Manager, Window, WindowEvent};
use tauri_plugin_notification::NotificationExt;

use crate::desktop::Desktop;
use crate::error::{CommandError, CommandResult};

/// Shows and focuses the main window.
pub(crate) fn show(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    let enabled = app
        .try_state::<Arc<Desktop>>()
        .is_none_or(|d| d.settings().notifications);
    if enabled {
        let _ = app.notification().builder().title(title).body(body).show();
    }
}

fn set_status(app: &AppHandle, text: &str) {
    if let Some(tray) = app.tray_by_id("main") {
        let _ = tray.set_tooltip(Some(format!("Ferry — {text}")));
        let _ = tray.set_title(Some(text));
    }
}

/// Recomputes the tray status from the journal after a state change.
async fn refresh_status(app: AppHandle, failed_now: bool) {
    let Some(desktop) = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone()) else {
        return;
    };
    let Ok(engine) = desktop.engine().await else {
        set_status(&app, "signed out");
        return;
    };
    let Ok(status) = engine.status().await else {
        return;
    };
    let counts = status.counts;
    let count = |s: FileState| counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
    let active =
        count(FileState::Queued) + count(FileState::Uploading) + count(FileState::Uploaded);
    let failed = count(FileState::Failed);
    if active > 0 {
        set_status(&app, &format!("uploading {active} file(s)"));
    } else if failed > 0 {
        set_status(&app, &format!("{failed} failed"));
        if failed_now {
            notify(&app, "An upload failed", "Open Ferry to see why and retry.");
        }
    } else {
        set_status(&app, "idle");
    }
}

/// Forwards engine events to the UI, the tray and notifications.
pub(crate) fn event_sink(app: AppHandle) -> EventSink {
    let last_tray_update = Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
    Arc::new(move |event: Event| {
        let _ = app.emit("ferry://event", &event);
        match &event {
            Event::Progress { .. } => {
                // The tray's percentage, at most once a second.
                let mut last = last_tray_update.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= std::time::Duration::from_secs(1) {
                    *last = std::time::Instant::now();
                    tauri::async_runtime::spawn(refresh_status(app.clone(), false));
                }
            }
            Event::State { state, .. } => {
                let batch_done = *state == FileState::Confirmed;
                let failed = *state == FileState::Failed;
                let handle = app.clone();
                tauri::async_runtime::spawn(refresh_status(handle, failed));
                if batch_done {
                    notify_if_batch_done(app.clone());
                }
            }
            Event::SessionExpired => {
                set_status(&app, "signed out");
                notify(
                    &app,
                    "Signed out",
                    "Your session ended. Sign in again to continue uploading.",
                );
            }
            _ => {}
        }
    })
}

fn notify_if_batch_done(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        let Some(desktop) = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone()) else {
            return;
        };
        let Ok(engine) = desktop.engine().await else {
            return;
        };
        let Ok(status) = engine.status().await else {
            return;
        };
        if let Some((title, body)) = batch_notice(&status.counts) {
            notify(&app, &title, &body);
        }
    });
}

/// The notification for a queue that just ran empty (`counts`: files per state in the
/// journal), or `None` while files are still on their way.
fn batch_notice(counts: &[(FileState, u64)]) -> Option<(String, String)> {
    let busy = counts.iter().any(|(s, n)| {
        *n > 0
            && matches!(
                s,
                FileState::Queued | FileState::Uploading | FileState::Uploaded
            )
    });
    if busy {
        return None;
    }
    let count = |state: FileState| {
        counts
            .iter()
            .filter(|(s, _)| *s == state)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let (confirmed, failed) = (count(FileState::Confirmed), count(FileState::Failed));
    if failed == 0 {
        return Some((
            "Uploads finished".into(),
            "Every file in the queue is confirmed.".into(),
        ));
    }
    let files = if confirmed == 1 { "file" } else { "files" };
    Some((
        format!("Uploads finished, {failed} failed"),
        format!("{confirmed} {files} confirmed, {failed} failed. Open Ferry to see why and retry."),
    ))
}

/// The tray icon with open, pause all, resume all and quit.
pub(crate) fn tray(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open Ferry", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause all", true, None::<&str>)?;
    let resume = MenuItem::with_id(app, "resume", "Resume all", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &pause, &resume, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .menu(&menu)
        .tooltip("Ferry — signed out");
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show(app),
            "quit" => app.exit(0),
            action @ ("pause" | "resume") => {
                let app = app.clone();
                let pause = action == "pause";
                tauri::async_runtime::spawn(async move {
                    let Some(desktop) = app.try_state::<Arc<Desktop>>().map(|d| d.inner().clone())
                    else {
                        return;
                    };
                    if let Ok(engine) = desktop.engine().await {
                        let result = if pause {
                            engine.transfer().pause(None).await
                        } else {
                            engine.transfer().resume(None).await
                        };
                        if let Err(err) = result {
                            tracing::warn!(error = %err, "tray action failed");
                        }
                    }
                });
            }
            _ => {}
        })
        .build(app)?;
    Ok(())
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
    fn the_finished_notice_says_how_many_failed() {
        use FileState::*;
        assert_eq!(batch_notice(&[(Confirmed, 3), (Queued, 1)]), None);
        let (_, body) = batch_notice(&[(Confirmed, 3), (Cancelled, 1)]).unwrap();
        assert_eq!(body, "Every file in the queue is confirmed.");
        let (title, body) = batch_notice(&[(Confirmed, 3), (Failed, 2)]).unwrap();
        assert_eq!(title, "Uploads finished, 2 failed");
        assert_eq!(
            body,
            "3 files confirmed, 2 failed. Open Ferry to see why and retry."
        );
        let (title, body) = batch_notice(&[(Confirmed, 1), (Failed, 1)]).unwrap();
        assert_eq!(title, "Uploads finished, 1 failed");
        assert_eq!(
            body,
            "1 file confirmed, 1 failed. Open Ferry to see why and retry."
        );
    }
}
