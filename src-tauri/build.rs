const COMMANDS: &[&str] = &[
    "restore",
    "sign_in",
    "sign_out",
    "enqueue",
    "pick_files",
    "pick_folder",
    "queue",
    "clear_finished",
    "control",
    "credentials",
    "folders",
    "add_folder",
    "decide",
    "check_connection",
    "set_folder_enabled",
    "remove_folder",
    "history",
    "history_csv",
    "stats",
    "settings",
    "save_settings",
    "save_diagnostics",
    "locale",
];

/// What to run when the UI cannot be built from here; the one line a failed build shows.
const HOW: &str = "ferry-desktop embeds the UI, but ui/dist is missing and could not be built: \
                   run `cd ui && npm ci && npm run build` (or `cargo xtask run`), then build again";

/// Builds the UI into `ui/dist` when it is not there yet (a fresh clone), since the window
/// embeds it at compile time. Returns `false` when that failed.
fn ensure_ui(ui: &std::path::Path) -> bool {
    println!("cargo::rerun-if-changed={}", ui.join("dist").display());
    if ui.join("dist").join("index.html").exists() {
        return true;
    }
    println!("cargo::warning=ui/dist is missing: building the UI (npm ci, npm run build)");
    [&["ci", "--no-audit", "--no-fund"][..], &["run", "build"]]
        .iter()
        .all(|args| {
            // npm's output goes to stderr: the build script's stdout is for cargo.
            std::process::Command::new("npm")
                .args(*args)
                .current_dir(ui)
                .stdout(std::io::stderr())
                .status()
                .is_ok_and(|s| s.success())
        })
        && ui.join("dist").join("index.html").exists()
}

fn main() {
    let manifest =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    if !ensure_ui(&manifest.join("..").join("ui")) {
        println!("cargo::error={HOW}");
        return;
    }
    // The config lives at the repository root, beside the README. Declaring the commands makes
    // each one a permission, so the capability can allow exactly these.
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri build");
}
