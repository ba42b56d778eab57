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
    // The debug build is built as `cargo xtask test` builds it (the whole workspace, all
    // targets): with `-p ferry-desktop` cargo would unify features otherwise and build the
    // workspace's crates (and some dependencies) once more in that run. Only the desktop
    // crate is built again there (it embeds `ui/dist`, written again just above).
    let build: &[&str] = match debug {
        true => &["build", "--workspace", "--all-targets"],
        false => &["build", "-p", "ferry-desktop", "--release"],
    };
    step(root, &cargo(), build)?;
    let dir = root
        .join("target")
        .join(if debug { "debug" } else { "release" })
        .join("bundle/deb");
    // An older version's package is not taken for this one.
    let _ = std::fs::remove_dir_all(&dir);
    let tauri = root.join("ui/node_modules/.bin/tauri");
    let tauri = tauri.to_str().context("a UTF-8 path")?;
    let mut args = vec!["bundle", "--bundles", "deb", "--config", BUNDLE];
    if debug {
        args.push("--debug");
    }
    step(&root.join("src-tauri"), tauri, &args)?;
    let deb = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("no .deb in {}", dir.display()))?;
    Ok(deb)
}

/// The test the installed package runs.
const INSTALLED_TEST: &str =
    "desktop::installed::the_installed_package_starts_signs_in_and_uploads";

/// `command` run as root: as it is for root, through `sudo -n` otherwise.
fn as_root(args: &[&str]) -> Vec<String> {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let sudo: &[&str] = if root { &[] } else { &["sudo", "-n"] };
    sudo.iter().chain(args).map(|s| (*s).to_owned()).collect()
}

fn run_as_root(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let command = as_root(args);
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    step(root, words[0], &words[1..])
}

/// Bundles the debug build, installs the `.deb` (refusing to replace a `ferry` package
/// installed already), runs [`INSTALLED_TEST`] against the installed app, and removes the
/// package again — whatever the install or the test did.
pub(crate) fn install_and_test(root: &Path, path: &std::ffi::OsStr) -> anyhow::Result<()> {
    let installed = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "ferry"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    if installed {
        bail!("a `ferry` package is installed on this machine: remove it (dpkg -r ferry) first");
    }
    let deb = deb(root, true)?;
    let deb = deb.to_str().context("a UTF-8 path")?;
    let tested = run_as_root(root, &["dpkg", "-i", deb]).and_then(|()| {
        eprintln!("==> FERRY_DESKTOP_BIN=/usr/bin/ferry-desktop cargo test … {INSTALLED_TEST}");
        let output = std::process::Command::new(cargo())
            // `--workspace`, as the suite ran: the same features, nothing built again.
            .args(["test", "--workspace", "--test", "e2e", INSTALLED_TEST, "--"])
            .args(["--ignored", "--exact"])
            .current_dir(root)
            .env("PATH", path)
            .env("FERRY_DESKTOP_BIN", "/usr/bin/ferry-desktop")
            .output()
            .context("starting cargo test")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        eprint!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        // Exactly that test ran and passed (a renamed test must not pass by running none).
        if !output.status.success() || !stdout.contains("test result: ok. 1 passed") {
            bail!("the installed package's test failed");
        }
        Ok(())
    });
    let removed = run_as_root(root, &["dpkg", "--purge", "ferry"]);
    tested?;
    removed?;
    if Path::new("/usr/bin/ferry-desktop").exists() {
        bail!("dpkg --purge ferry left /usr/bin/ferry-desktop behind");
    }
    Ok(())
}
