//! Ferry's desktop app: a Tauri window over `ferry-engine`. This crate holds the window, tray,
//! notifications, drag and drop, and thin commands; the engine does the work.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod consent;
mod desktop;
mod error;
mod picks;
mod queue;
mod settings;
mod shell;
mod tray;
#[cfg(test)]
mod typescript;
mod words;

use std::sync::Arc;

use tauri::Manager;

fn main() {
    ferry_engine::diagnostics::log_to(Some(&ferry_engine::profile::data_dir()));
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            shell::show(app)
        }))
        // Where the window was and how big, not whether it was shown: that is for how Ferry
        // was started (at login: in the tray).
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(tauri_plugin_window_state::StateFlags::all().difference(
                    tauri_plugin_window_state::StateFlags::VISIBLE
                        | tauri_plugin_window_state::StateFlags::MAXIMIZED,
                ))
                .build(),
        )
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![shell::HIDDEN]),
        ))
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            let handle = app.handle().clone();
            let tray = tray::TrayStatus::new(handle.clone());
            let desktop = Arc::new(desktop::Desktop::new(
                ferry_engine::profile::data_dir(),
                shell::event_sink(handle.clone(), tray.clone()),
            ));
            // An entry written by an earlier version may lack --hidden: written again.
            if desktop.settings().start_at_login
                && let Err(err) = shell::start_at_login(&handle, true)
            {
                tracing::warn!(code = %err.code(), "could not renew the start-at-login entry");
            }
            app.manage(desktop);
            tray::build(&handle, &tray)?;
            app.manage(tray);
            // The window is created hidden; it shows unless Ferry was started at login.
            if !shell::started_hidden(std::env::args_os()) {
                shell::show(&handle);
            }
            Ok(())
        })
        .on_window_event(shell::window_event)
        .invoke_handler(tauri::generate_handler![
            commands::restore,
            commands::sign_in,
            commands::sign_out,
            commands::enqueue,
            commands::pick_files,
            commands::pick_folder,
            commands::queue,
            commands::clear_finished,
            commands::control,
            commands::credentials,
            commands::save_diagnostics,
            commands::folders,
            commands::add_folder,
            commands::decide,
            commands::check_connection,
            commands::set_folder_enabled,
            commands::remove_folder,
            commands::history,
            commands::history_csv,
            commands::stats,
            commands::settings,
            commands::save_settings,
            commands::locale,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(err) = result {
        eprintln!("Ferry could not start: {err}");
        std::process::exit(1);
    }
}
