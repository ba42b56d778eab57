//! A long queue in the real window: a folder of many files (`FERRY_QUEUE_FILES`: 2 000 unless
//! asked; the bench asks for 100 000) added through the folder dialog while the store holds
//! every PUT of them, so they stay queued. The window shows one page of rows, counts all of
//! them in its totals, pages to the end, and "Clear finished" takes the one finished file out
//! of view. How long the window took and what the app and WebKit hold in memory are printed
//! (and written as JSON to `FERRY_QUEUE_REPORT` when the bench asks); nothing here asserts a
//! time or a size.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::proxy::{Action, Rule};
use serde_json::json;

use super::driver::Driver;
use super::queue::{add_file, text_of};
use super::{FOLDER_DIALOG, server_behind_store_proxy, wait_confirmed};

/// Rows a page shows (`ui/src/lib/app.svelte.ts`).
const PAGE_ROWS: usize = 100;

fn queue_files() -> usize {
    std::env::var("FERRY_QUEUE_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// `100000` as the window writes it: `100,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Waits until the pager says `want`; how long that took.
async fn wait_range(driver: &Driver, want: &str, secs: u64) -> Duration {
    let began = Instant::now();
    loop {
        let range = text_of(driver, "range").await;
        if range.as_str() == Some(want) {
            return began.elapsed();
        }
        if began.elapsed() > Duration::from_secs(secs) {
            driver.screenshot("failure").await;
            panic!("the pager did not say {want:?} within {secs} s: {range}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names of the rows shown.
async fn names(driver: &Driver) -> Vec<String> {
    let names = driver
        .script(
            "return [...document.querySelectorAll('[data-testid=item] td:first-child')]\
               .map(td => td.textContent.trim());",
            json!([]),
        )
        .await;
    serde_json::from_value(names).unwrap()
}

/// `n` files of 1 KiB in `dir`, named so that their order is their number.
fn write_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:06}.bin")), [b'x'; 1024]).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_queue_is_shown_a_page_at_a_time_with_totals_over_all_of_it() {
    let n = queue_files();
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let alice = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The long folder sits one level down: the folder dialog opens what is typed into it, and
    // listing 100 000 files there would only time GTK.
    let batch = dir.path().join("batch");
    write_files(&batch.join("long"), n);
    let single = dir.path().join("single");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::write(single.join("done.txt"), b"finished first").unwrap();
    // Every PUT of the long folder waits longer than the test: its files stay on their way.
    store.add(Rule::new(Action::Latency(Duration::from_secs(3600))).target("/long/"));

    let driver = Driver::start(&home, &dir.path().join("data")).await;
    driver.sign_in(&server.api, &alice).await;
    add_file(&driver, &single.join("done.txt")).await;
    wait_confirmed(&driver, "done.txt").await;

    let began = Instant::now();
    driver.click_text("Add folder…").await;
    driver.choose_in_dialog(FOLDER_DIALOG, &batch).await;
    let total = n + 1;
    let first = format!("1–{} of {}", PAGE_ROWS.min(total), grouped(total));
    wait_range(&driver, &first, 600).await;
    let shown_after = began.elapsed();
    let rows = names(&driver).await;
    assert_eq!(rows.len(), PAGE_ROWS, "one page of rows: {rows:?}");
    // What is on its way first, in the order it uploads; what finished after it.
    assert_eq!(rows[..2], ["f000000.bin", "f000001.bin"], "{rows:?}");
    // Counted over every file, not over the rows shown.
    let overall = text_of(&driver, "overall").await;
    let files = format!("{} files", grouped(total));
    assert!(overall.as_str().unwrap().contains(&files), "{overall}");
    driver.screenshot("long-queue").await;

    let last_start = (total - 1) / PAGE_ROWS * PAGE_ROWS;
    let began = Instant::now();
    driver.click_text("Last").await;
    let last = format!(
        "{}–{} of {}",
        grouped(last_start + 1),
        grouped(total),
        grouped(total)
    );
    wait_range(&driver, &last, 60).await;
    let last_page_after = began.elapsed();
    let rows = names(&driver).await;
    // The finished file comes after every file still on its way.
    assert_eq!(rows.len(), total - last_start, "{rows:?}");
    assert_eq!(rows.last().map(String::as_str), Some("done.txt"));

    driver.click_text("First").await;
    wait_range(&driver, &first, 60).await;
    driver.click_text("Clear finished").await;
    let cleared = format!("1–{} of {}", PAGE_ROWS.min(n), grouped(n));
    wait_range(&driver, &cleared, 60).await;
    assert_eq!(
        names(&driver).await.first().map(String::as_str),
        Some("f000000.bin")
    );

    // What the app and WebKit hold with the long queue shown.
    let family = super::rest::app_and_children(driver.leader());
    let by_process: Vec<(String, f64)> = family
        .iter()
        .map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (
                name.trim().to_owned(),
                super::rest::pss_kib(*pid) as f64 / 1024.0,
            )
        })
        .collect();
    let memory_mib: f64 = by_process.iter().map(|(_, mib)| mib).sum();
    eprintln!(
        "long queue: {n} files; added → first page with all counted {} ms; Last page {} ms; \
         {memory_mib:.0} MiB (PSS: {by_process:?})",
        shown_after.as_millis(),
        last_page_after.as_millis(),
    );
    if let Some(path) = std::env::var_os("FERRY_QUEUE_REPORT") {
        let json = json!({
            "files": n,
            "shown_ms": shown_after.as_millis() as u64,
            "last_page_ms": last_page_after.as_millis() as u64,
            "memory_mib": memory_mib,
            "processes": family.len(),
            "by_process": by_process,
        });
        std::fs::write(path, json.to_string()).expect("writing the queue report");
    }
}
