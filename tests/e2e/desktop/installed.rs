//! The `.deb` as a user gets it: `cargo xtask test` builds it with the Tauri bundler
//! (`cargo xtask bundle --debug`), installs it with `dpkg -i`, runs this test against
//! `/usr/bin/ferry-desktop`, and removes the package again. The package has its version, its
//! desktop entry and its icon; the installed app starts under Xvfb, signs in and uploads.

use ferry_protocol::Role;
use ferry_tests::TestServer;

use super::driver::Driver;
use super::queue::add_file;
use super::wait_confirmed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the .deb installed: cargo xtask test installs it and runs this"]
async fn the_installed_package_starts_signs_in_and_uploads() {
    let bin = std::env::var("FERRY_DESKTOP_BIN").expect("FERRY_DESKTOP_BIN: the installed app");
    assert_eq!(bin, "/usr/bin/ferry-desktop", "the package's binary");
    let version = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version} ${Status}", "ferry"])
        .output()
        .expect("dpkg-query");
    let version = String::from_utf8_lossy(&version.stdout);
    // The version the bundler took: the app's config says it.
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tauri.conf.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let wanted = config["version"].as_str().expect("a version");
    assert_eq!(version.trim(), format!("{wanted} install ok installed"));
    let entry = std::fs::read_to_string("/usr/share/applications/Ferry.desktop")
        .expect("the package's desktop entry");
    for line in [
        "Name=Ferry",
        "Exec=ferry-desktop",
        "Icon=ferry-desktop",
        "Type=Application",
    ] {
        assert!(entry.lines().any(|l| l == line), "{line} in:\n{entry}");
    }
    assert!(
        std::path::Path::new("/usr/share/icons/hicolor/128x128/apps/ferry-desktop.png").exists(),
        "the icon"
    );

    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::signed_in(dir.path(), false, &server.api, "alice", &password).await;
    let file = dir.path().join("installed.txt");
    std::fs::write(&file, b"from the installed package").unwrap();
    add_file(&driver, &file).await;
    wait_confirmed(&driver, "installed.txt").await;
}
