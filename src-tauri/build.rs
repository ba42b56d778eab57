const COMMANDS: &[&str] = &[
    "restore",
    "sign_in",
    "sign_out",
    "enqueue",
    "pick_files",
    "pick_folder",
    "queue",
    "control",
    "credentials",
    "folders",
    "add_folder",
    "set_folder_enabled",
    "remove_folder",
    "history",
    "history_csv",
    "stats",
    "settings",
    "save_settings",
];

fn main() {
    // The config lives at the repository root, beside the README. Declaring the commands makes
    // each one a permission, so the capability can allow exactly these.
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri build");
}
