//! `cargo xtask soak`: the reliability suite of `tests/` run longer than CI runs it — many more
//! crash trials, the fault and credential-storm suites several times over, the bad-input matrix —
//! and its figures written into `docs/reliability.md`. Every line of that file comes from a
//! test that ran in this soak; nothing is typed in by hand but the descriptions of the cases.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// One row of the bad-input matrix: what is tried, and the test that tries it.
const MATRIX: &[(&str, &str, &str)] = &[
    (
        "engine",
        "unreadable file (a FIFO: root reads anything)",
        "engine_upload::bad_files_get_a_clear_error_and_the_others_carry_on",
    ),
    (
        "engine",
        "file vanished before its upload",
        "engine_upload::bad_files_get_a_clear_error_and_the_others_carry_on",
    ),
    (
        "engine",
        "file growing during its upload",
        "engine_bad_input::a_file_growing_during_its_upload_ends_up_with_all_its_bytes",
    ),
    (
        "engine",
        "file replaced during its upload",
        "engine_upload::a_file_rewritten_mid_upload_ends_up_as_its_final_content",
    ),
    (
        "engine",
        "0-byte file (and 1 KiB … 40 MiB)",
        "engine_upload::files_of_every_size_arrive_intact_and_are_confirmed_once",
    ),
    (
        "engine",
        "sparse 100 GiB file",
        "engine_bad_input::a_sparse_huge_file_gets_parts_within_the_limit_and_cancels_cleanly",
    ),
    (
        "engine",
        "non-UTF-8 file name",
        "engine_upload::bad_files_get_a_clear_error_and_the_others_carry_on",
    ),
    (
        "engine",
        "names with + % # ? \\ : ' \" & = ~ and emoji",
        "engine_bad_input::names_with_reserved_characters_and_emoji_keep_them_in_their_keys",
    ),
    (
        "engine",
        "symlink loop in a dropped folder",
        "engine_upload::bad_files_get_a_clear_error_and_the_others_carry_on",
    ),
    (
        "engine",
        "links to files outside a dropped folder",
        "engine_queue::links_inside_a_dropped_folder_are_not_followed",
    ),
    (
        "engine",
        "folders nested 70 deep",
        "engine_bad_input::folders_nested_too_deep_are_reported_not_dropped",
    ),
    (
        "engine",
        "path longer than a key may be",
        "engine_upload::bad_files_get_a_clear_error_and_the_others_carry_on",
    ),
    (
        "engine",
        "two files, one key (NFC)",
        "engine_queue::paths_with_dot_segments_give_clean_keys_and_clashing_keys_are_refused",
    ),
    (
        "engine",
        "watched folder deleted and made again",
        "engine_watch::a_folder_that_disappears_is_an_error_state_and_comes_back",
    ),
    (
        "engine",
        "watched folder unmounted and mounted again",
        "engine_bad_input::a_watched_folder_unmounted_and_mounted_again_is_watched_again",
    ),
    (
        "engine",
        "journal on a full disk (tmpfs)",
        "engine_bad_input::a_journal_on_a_full_disk_fails_clearly_and_carries_on_when_there_is_room",
    ),
    (
        "engine",
        "damaged journal file",
        "engine_bad_input::a_damaged_journal_is_left_alone_with_a_clear_error",
    ),
    (
        "engine",
        "second engine on the same data dir",
        "cli_data_dir::a_second_uploader_on_the_same_data_dir_is_refused_and_status_changes_nothing",
    ),
    (
        "engine",
        "malformed XML from the store",
        "faults::store::a_malformed_store_answer_fails_the_file_with_a_reason_and_loses_nothing",
    ),
    (
        "engine",
        "malformed JSON from the app server",
        "faults::api::a_malformed_grant_fails_the_file_with_a_reason_and_loses_nothing",
    ),
    (
        "engine",
        "wrong clock (an hour off)",
        "engine_upload::a_skewed_clock_is_corrected_from_the_store",
    ),
    (
        "engine",
        "session ending at the confirmation",
        "engine_queue::a_session_that_ends_at_confirmation_says_so",
    ),
    (
        "engine",
        "plain http:// to another computer",
        "cli_profile::plain_http_to_another_computer_is_refused_before_anything_is_sent",
    ),
    (
        "server",
        "unsigned 1 GiB form POST",
        "server_abuse::unsigned_1_gib_form_post_is_refused_before_its_body_is_read",
    ),
    (
        "server",
        "oversized headers, keys and JSON bodies",
        "server_abuse::oversized_heads_and_bodies_are_refused_and_the_server_serves_on",
    ),
    (
        "server",
        "slow request heads (slowloris)",
        "server_abuse::slow_request_heads_are_timed_out_while_others_are_served",
    ),
    (
        "server",
        "a body that stops arriving",
        "server_abuse::a_body_that_stops_arriving_is_ended_and_leaves_no_blob",
    ),
    (
        "server",
        "a body cut short",
        "server_abuse::a_body_cut_short_leaves_no_partial_blob",
    ),
    (
        "server",
        "malformed and oversized Complete bodies",
        "server_abuse::malformed_and_oversized_complete_bodies_are_refused",
    ),
    (
        "server",
        "malformed Content-MD5",
        "server_abuse::a_malformed_content_md5_is_refused_and_stores_nothing",
    ),
    (
        "server",
        "malformed JSON and bad fields to the API",
        "server_api::bad_input_gets_a_clear_error_and_changes_nothing",
    ),
    (
        "server",
        "SigV2-signed requests",
        "server_security::sigv2_signed_requests_are_refused",
    ),
    (
        "server",
        "parallel password guesses",
        "server_security::parallel_password_guesses_are_throttled",
    ),
    (
        "server",
        "another user's prefix and upload ids",
        "server_security::one_user_cannot_put_complete_list_or_abort_anothers_uploads",
    ),
];

/// One `cargo test` run of the soak.
struct Run {
    name: &'static str,
    filters: &'static [&'static str],
    env: Vec<(&'static str, String)>,
    times: u32,
}

/// What the runs saw: per test, passes and failures; the figures lines in order.
#[derive(Default)]
struct Seen {
    results: BTreeMap<String, (u32, u32)>,
    figures: Vec<(String, String)>,
    seconds: BTreeMap<&'static str, f64>,
}

fn number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn soak(root: &Path, path: &OsString) -> anyhow::Result<()> {
    let crash_trials = number("FERRY_SOAK_CRASH_TRIALS", 100);
    let repeats = number("FERRY_SOAK_REPEATS", 3);
    crate::step(
        root,
        &crate::cargo(),
        &["build", "--workspace", "--all-targets"],
    )?;
    let runs = [
        Run {
            name: "crash trials",
            filters: &["crash_trials::"],
            env: vec![("FERRY_CRASH_TRIALS", crash_trials.to_string())],
            times: 1,
        },
        Run {
            name: "fault proxy",
            filters: &["faults::"],
            env: vec![],
            times: repeats,
        },
        Run {
            name: "credential storm",
            filters: &["credential_storm::"],
            env: vec![],
            times: repeats,
        },
        Run {
            name: "bad input and security",
            filters: &[
                "engine_bad_input::",
                "engine_upload::",
                "engine_queue::",
                "engine_watch::",
                "engine_accounts::",
                "cli_",
                "server_abuse::",
                "server_api::",
                "server_security::",
            ],
            env: vec![],
            times: 1,
        },
    ];
    let mut seen = Seen::default();
    for run in &runs {
        let started = std::time::Instant::now();
        for round in 1..=run.times {
            eprintln!("==> soak: {} ({round} of {})", run.name, run.times);
            let output = run_tests(root, path, run)?;
            record(&output, &mut seen);
        }
        seen.seconds
            .insert(run.name, started.elapsed().as_secs_f64());
    }
    let report = report(&seen, crash_trials, repeats, root)?;
    let target = root.join("docs").join("reliability.md");
    std::fs::write(&target, report).with_context(|| format!("writing {}", target.display()))?;
    eprintln!("==> wrote {}", target.display());
    let failed: Vec<&String> = seen
        .results
        .iter()
        .filter(|(_, (_, failed))| *failed > 0)
        .map(|(name, _)| name)
        .collect();
    if !failed.is_empty() {
        bail!("{} test(s) failed in the soak: {failed:?}", failed.len());
    }
    Ok(())
}

/// Runs one group of tests; their output, then the figures they recorded.
fn run_tests(root: &Path, path: &OsString, run: &Run) -> anyhow::Result<String> {
    let figures = tempfile_path(root, "soak-figures.txt");
    let _ = std::fs::remove_file(&figures);
    let mut command = Command::new(crate::cargo());
    command
        .args(["test", "-p", "ferry-tests", "--test", "e2e", "--"])
        .args(run.filters)
        .args(["--test-threads=1"])
        .current_dir(root)
        .env("FERRY_FIGURES", &figures)
        .env("PATH", path);
    for (name, value) in &run.env {
        command.env(name, value);
    }
    let output = command.output().context("running cargo test")?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if !text.contains("test result:") {
        bail!("the tests did not run:\n{text}");
    }
    text.push_str(&std::fs::read_to_string(&figures).unwrap_or_default());
    Ok(text)
}

fn tempfile_path(root: &Path, name: &str) -> std::path::PathBuf {
    root.join("target").join(name)
}

/// Reads `test <name> ... ok|FAILED` and `figures <name>: …` lines.
fn record(output: &str, seen: &mut Seen) {
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            let (name, passed) = match rest.rsplit_once(" ... ") {
                Some((name, "ok")) => (name, true),
                Some((name, "FAILED")) => (name, false),
                _ => continue,
            };
            let entry = seen.results.entry(name.to_owned()).or_default();
            if passed {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        } else if let Some(rest) = line.strip_prefix("figures ")
            && let Some((name, figures)) = rest.split_once(": ")
        {
            seen.figures.push((name.to_owned(), figures.to_owned()));
        }
    }
}

fn outcome(seen: &Seen, test: &str) -> String {
    match seen.results.get(test) {
        Some((passed, 0)) => format!("passed ({passed}×)"),
        Some((passed, failed)) => format!("**FAILED** {failed}× (passed {passed}×)"),
        None => "not run".into(),
    }
}

fn report(seen: &Seen, crash_trials: u32, repeats: u32, root: &Path) -> anyhow::Result<String> {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let runs: u32 = seen.results.values().map(|(p, f)| p + f).sum();
    let failed: u32 = seen.results.values().map(|(_, f)| f).sum();
    let verified: u64 = seen
        .figures
        .iter()
        .filter_map(|(_, text)| {
            let before = text.split(" files verified").next()?;
            before.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    let mut out = String::new();
    writeln!(
        out,
        "# Reliability\n\n\
         Written by `cargo xtask soak` on {date} at commit `{commit}` ({cores} cores): the tests of \
         `tests/e2e` that inject faults, kill Ferry, storm its credentials and feed it bad input, \
         run longer than CI runs them ({crash_trials} crash trials instead of 30; the fault and \
         storm suites {repeats}× each). CI runs every one of these tests once on each change.\n\n\
         **{runs} test runs, {failed} failed. Files lost: {}** — {verified} uploads were read \
         back from the store and found byte-identical, each with exactly one confirmed history \
         row (a lost, changed or duplicated file fails its test). Tests of faults that never \
         heal check instead that the file failed with a stated reason, its journal row and \
         queue intact.\n",
        if failed == 0 {
            "0."
        } else {
            "see the failures below."
        }
    )?;
    writeln!(out, "| suite | wall time |\n|---|---:|")?;
    for (name, secs) in &seen.seconds {
        writeln!(out, "| {name} | {secs:.0} s |")?;
    }
    writeln!(
        out,
        "\n## Crash trials\n\n`ferry upload` and `ferry watch` (alternately) with 4 files — 24 MiB \
         (multipart), 1 MiB, 3 KB, 0 bytes — killed with SIGKILL at a random moment within 1.2 s, \
         then run again until all are confirmed. At the end: one confirmed history row per file, \
         its bytes equal to the source, no multipart upload left open.\n"
    )?;
    for (name, figures) in seen.figures.iter().filter(|(n, _)| n == "crash_trials") {
        writeln!(out, "- `{name}`: {figures}")?;
    }
    writeln!(
        out,
        "\n## Faults injected by the proxy\n\nA fault-injecting HTTP proxy \
         (`tests/src/proxy.rs`) between the engine and the store, and between the engine and the \
         app server. Figures of the last run of each test.\n\n| test | result | figures |\n|---|---|---|"
    )?;
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, figures) in &seen.figures {
        last.insert(name, figures);
    }
    for (test, _) in seen
        .results
        .iter()
        .filter(|(t, _)| t.starts_with("faults::"))
    {
        let short = test.rsplit("::").next().unwrap_or(test);
        let figures = last.get(test.as_str()).copied().unwrap_or("");
        writeln!(out, "| `{short}` | {} | {figures} |", outcome(seen, test))?;
    }
    writeln!(
        out,
        "\n## Credential storm\n\nGrants living 2 s, 4 files of 32 MiB uploading at once.\n"
    )?;
    for (_, figures) in seen.figures.iter().filter(|(n, _)| n == "credential_storm") {
        writeln!(out, "- {figures}")?;
    }
    writeln!(
        out,
        "\n## Bad-input matrix\n\n| part | case | test | result |\n|---|---|---|---|"
    )?;
    for (part, case, test) in MATRIX {
        let short = test.rsplit("::").next().unwrap_or(test);
        writeln!(
            out,
            "| {part} | {case} | `{short}` | {} |",
            outcome(seen, test)
        )?;
    }
    let others: Vec<_> = seen
        .results
        .keys()
        .filter(|t| !t.starts_with("faults::") && !MATRIX.iter().any(|(_, _, m)| m == t))
        .collect();
    writeln!(
        out,
        "\n## Every other test of the soak\n\n| test | result |\n|---|---|"
    )?;
    for test in others {
        writeln!(out, "| `{test}` | {} |", outcome(seen, test))?;
    }
    Ok(out)
}
