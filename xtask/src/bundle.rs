//! `cargo xtask bundle`: the desktop app as a `.deb`, made by the Tauri bundler (the npm
//! package `@tauri-apps/cli`, locked in `ui/package-lock.json`) from the binary cargo built —
//! with its icon, desktop entry and version. An AppImage needs tools the bundler downloads
//! from GitHub at bundle time, which this machine kind cannot reach: not made here.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::{cargo, step};

/// What the bundler adds to `tauri.conf.json` (whose icon path is the compile-time one, from
/// the repository root; the bundler runs in `src-tauri/`).
const BUNDLE: &str = r#"{"bundle": {"active": true, "targets": ["deb"],
  "icon": ["icons/icon.png"], "category": "Utility", "publisher": "Ferry",
  "shortDescription": "Uploads files to your organisation's cloud storage",
  "longDescription": "Ferry signs in to your organisation's app server, keeps the temporary storage credentials it hands out in the system keychain, and uploads dropped files and watched folders directly to object storage (Alibaba OSS, Huawei OBS, JD Cloud, S3) in resumable parts."}}"#;

/// Builds the desktop app (release, or the debug build) and bundles it; the `.deb`'s path.
pub(crate) fn deb(root: &Path, debug: bool) -> anyhow::Result<PathBuf> {
    crate::ui_build(root, false)?;
    let mut build = vec!["build", "-p", "ferry-desktop"];
    if !debug {
        build.push("--release");
    }
    step(root, &cargo(), &build)?;
    let tauri = root.join("ui/node_modules/.bin/tauri");
    let tauri = tauri.to_str().context("a UTF-8 path")?;
    let mut args = vec!["bundle", "--bundles", "deb", "--config", BUNDLE];
    if debug {
        args.push("--debug");
    }
    step(&root.join("src-tauri"), tauri, &args)?;
    let dir = root
        .join("target")
        .join(if debug { "debug" } else { "release" })
        .join("bundle/deb");
    let deb = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("no .deb in {}", dir.display()))?;
    Ok(deb)
}

/// Bundles the debug build, installs the `.deb` (`dpkg -i`, as root), runs
/// `desktop::installed` against the installed app, and removes the package again.
pub(crate) fn install_and_test(root: &Path, path: &std::ffi::OsStr) -> anyhow::Result<()> {
    let deb = deb(root, true)?;
    let deb = deb.to_str().context("a UTF-8 path")?;
    step(root, "dpkg", &["-i", deb])?;
    let args = [
        "test",
        "-p",
        "ferry-tests",
        "--test",
        "e2e",
        "desktop::installed::",
        "--",
        "--ignored",
    ];
    eprintln!(
        "==> FERRY_DESKTOP_BIN=/usr/bin/ferry-desktop cargo {}",
        args.join(" ")
    );
    let tested = std::process::Command::new(cargo())
        .args(args)
        .current_dir(root)
        .env("PATH", path)
        .env("FERRY_DESKTOP_BIN", "/usr/bin/ferry-desktop")
        .status()
        .context("starting cargo test");
    let removed = step(root, "dpkg", &["-r", "ferry"]);
    if !tested?.success() {
        bail!("the installed package's test failed");
    }
    removed?;
    if Path::new("/usr/bin/ferry-desktop").exists() {
        bail!("dpkg -r ferry left /usr/bin/ferry-desktop behind");
    }
    Ok(())
}
