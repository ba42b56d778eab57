//! The desktop app at rest (target B6): a desktop end-to-end test (the real window under
//! Xvfb: files retried, failed, confirmed, two accounts) run with a rest of 60 s at its end,
//! signed in with nothing left to do; it
//! writes how soon the sign-in form was shown after launch and, over the rest, the CPU and
//! memory of the app and its WebKit processes. Then the window with a queue of 100 000 files
//! (#11): how soon it shows them, how fast it pages, what it holds in memory. A debug build,
//! as the tests use (the release bundle is not built here).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Seconds of rest measured.
const REST_SECS: u64 = 60;

/// Files in the long queue.
const QUEUE_FILES: u64 = 100_000;

/// Runs the desktop test `name` with `env`; the figures it wrote to the file named by
/// `report_var`.
fn figures(
    root: &Path,
    path: &std::ffi::OsStr,
    name: &str,
    report_var: &str,
    env: &[(&str, String)],
) -> anyhow::Result<serde_json::Value> {
    let report = std::env::temp_dir().join(format!(
        "ferry-bench-{}-{report_var}.json",
        std::process::id()
    ));
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
            name,
        ])
        .current_dir(root)
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(report_var, &report)
        .status()
        .with_context(|| format!("running {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    let text =
        std::fs::read_to_string(&report).with_context(|| format!("{name} wrote no figures"))?;
    let _ = std::fs::remove_file(&report);
    Ok(serde_json::from_str(&text)?)
}

/// The section of the document.
pub(crate) fn run(root: &Path, path: &std::ffi::OsStr) -> anyhow::Result<String> {
    crate::ui_build(root, false)?;
    crate::step(root, &crate::cargo(), &["build", "-p", "ferry-desktop"])?;
    let rest = figures(
        root,
        path,
        "desktop::queue::the_window_shows_retrying_files_and_files_waiting_for_another_account",
        "FERRY_DESKTOP_REPORT",
        &[("FERRY_DESKTOP_IDLE_SECS", REST_SECS.to_string())],
    )?;
    let queue = figures(
        root,
        path,
        "desktop::big_queue::a_long_queue_is_shown_a_page_at_a_time_with_totals_over_all_of_it",
        "FERRY_QUEUE_REPORT",
        &[("FERRY_QUEUE_FILES", QUEUE_FILES.to_string())],
    )?;
    let number =
        |figures: &serde_json::Value, name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
    let rest_number = |name: &str| number(&rest, name);
    let queue_number = |name: &str| number(&queue, name);
    Ok(format!(
        "### The desktop app (debug build, under Xvfb)\n\n\
         A desktop end-to-end test, with a rest at its end: signed in, every file confirmed, \
         nothing to do. First paint is from the app's launch until its sign-in form was found \
         (looked for every 0.2 s); CPU is user + system of the app and the WebKit processes \
         it started, over the rest, in percent of one core; memory is their PSS summed.\n\n\
         | first paint, ms | rest, s | CPU % | memory MiB | processes |\n\
         |---:|---:|---:|---:|---:|\n\
         | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |\n\n\
         A long queue: a folder of {:.0} files of 1 KiB added through the folder dialog while \
         the store holds every PUT of them (they stay on their way). \"Shown\" is from choosing \
         the folder until the window's pager counts every file (the engine journals them all \
         first); \"last page\" from clicking Last until its rows are shown; memory is the PSS \
         of the app and WebKit with the queue shown.\n\n\
         | files | shown, ms | last page, ms | memory MiB | processes |\n\
         |---:|---:|---:|---:|---:|\n\
         | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
        rest_number("first_paint_ms"),
        rest_number("idle_secs"),
        rest_number("cpu_percent"),
        rest_number("memory_mib"),
        rest_number("processes"),
        queue_number("files"),
        queue_number("files"),
        queue_number("shown_ms"),
        queue_number("last_page_ms"),
        queue_number("memory_mib"),
        queue_number("processes"),
    ))
}
