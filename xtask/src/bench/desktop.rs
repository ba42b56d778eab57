//! The desktop app at rest (target B6): a desktop end-to-end test (the real window under
//! Xvfb: files retried, failed, confirmed, two accounts) run with a rest of 60 s at its end,
//! signed in with nothing left to do; it
//! writes how soon the sign-in form was shown after launch and, over the rest, the CPU and
//! memory of the app and its WebKit processes. A debug build, as the tests use (the release
//! bundle is not built here).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Seconds of rest measured.
const REST_SECS: u64 = 60;

/// The section of the document.
pub(crate) fn run(root: &Path, path: &std::ffi::OsStr) -> anyhow::Result<String> {
    crate::ui_build(root, false)?;
    crate::step(root, &crate::cargo(), &["build", "-p", "ferry-desktop"])?;
    let report =
        std::env::temp_dir().join(format!("ferry-bench-{}-desktop.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let status = Command::new(crate::cargo())
        .args([
            "test",
            "-p",
            "ferry-tests",
            "--test",
            "e2e",
            "--",
            "--exact",
        ])
        .arg(
            "desktop::queue::the_window_shows_retrying_files_and_files_waiting_for_another_account",
        )
        .current_dir(root)
        .env("PATH", path)
        .env("FERRY_DESKTOP_IDLE_SECS", REST_SECS.to_string())
        .env("FERRY_DESKTOP_REPORT", &report)
        .status()
        .context("running the desktop test")?;
    if !status.success() {
        bail!("the desktop test failed ({status})");
    }
    let text = std::fs::read_to_string(&report).context("the desktop test wrote no figures")?;
    let _ = std::fs::remove_file(&report);
    let figures: serde_json::Value = serde_json::from_str(&text)?;
    let number = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "### The desktop app (debug build, under Xvfb)\n\n\
         A desktop end-to-end test, with a rest at its end: signed in, every file confirmed, \
         nothing to do. First paint is from the app's launch until its sign-in form was found \
         (looked for every 0.2 s); CPU is user + system of the app and the WebKit processes \
         it started, over the rest, in percent of one core; memory is their PSS summed.\n\n\
         | first paint, ms | rest, s | CPU % | memory MiB | processes |\n\
         |---:|---:|---:|---:|---:|\n\
         | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |\n",
        number("first_paint_ms"),
        number("idle_secs"),
        number("cpu_percent"),
        number("memory_mib"),
        number("processes"),
    ))
}
