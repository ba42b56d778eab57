//! The tray and the notifications as a desktop session sees them: a StatusNotifier host and a
//! notification daemon on the app's session bus (`tests/tools/desktop_shell.py`). The tray's
//! title says how the queue goes, its menu holds Open Ferry / Pause all / Resume all / Quit and
//! each does what it says (Quit asks while files are on their way), and the notifications tell
//! of a failure, of the window going to the tray, of a batch done — truthful when some file
//! failed — and of a session that ended.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::proxy::{Action, Rule};
use serde_json::Value;

use super::driver::Driver;
use super::queue::{add_file, wait_row};
use super::server_behind_store_proxy;

/// Waits until `check` holds for what `read` gives; that value.
pub(super) async fn until<T: std::fmt::Debug>(
    driver: &Driver,
    what: &str,
    read: impl AsyncFn() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = read().await;
        if check(&value) {
            return value;
        }
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("{what} not seen within 60 s: {value:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text the tray shows beside the icon.
pub(super) fn title(tray: &Value) -> String {
    tray[0]["label"].as_str().unwrap_or_default().to_owned()
}

/// The labels of the tray's menu, in order.
pub(super) fn menu(tray: &Value) -> Vec<String> {
    tray[0]["menu"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|i| i["label"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn summaries(notes: &[Value]) -> Vec<String> {
    notes
        .iter()
        .map(|n| n["summary"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_and_the_notifications_say_how_the_queue_goes() {
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let password = server.add_user("alice", Role::User);
    let _slow = store.add(
        Rule::new(Action::Latency(Duration::from_secs(5)))
            .method("PUT")
            .target("slow"),
    );
    let _held = store.add(
        Rule::new(Action::Latency(Duration::from_secs(120)))
            .method("PUT")
            .target("held.txt"),
    );
    let _refused = store.add(
        Rule::new(Action::s3_error(400, "InvalidRequest", "Not here."))
            .method("PUT")
            .target("refused.txt"),
    );
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::signed_in(dir.path(), true, &server.api, "alice", &password).await;

    let tray = until(
        &driver,
        "the tray, idle",
        async || driver.tray().await,
        |t| title(t) == "idle",
    )
    .await;
    // The status line heads the menu too (Linux trays show no tooltip).
    assert_eq!(
        menu(&tray),
        ["idle", "Open Ferry", "Pause all", "Resume all", "Quit"],
        "{tray}"
    );

    // One file refused for good: the tray and a notification say so.
    let refused = dir.path().join("refused.txt");
    std::fs::write(&refused, "refused").unwrap();
    add_file(&driver, &refused).await;
    until(
        &driver,
        "the failure in the tray",
        async || driver.tray().await,
        |t| title(t) == "1 failed" && menu(t).first().is_some_and(|m| m == "1 failed"),
    )
    .await;
    let notes = until(
        &driver,
        "the failure notified",
        async || driver.notifications().await,
        |n| summaries(n).iter().any(|s| s == "An upload failed"),
    )
    .await;
    let named = |n: &Value| n["app"].as_str().is_some_and(|a| !a.is_empty());
    assert!(
        notes.iter().all(named),
        "each notification names the app: {notes:?}"
    );
    // One slow at the store: on its way beside the failed one.
    let slow = dir.path().join("slow-1.txt");
    std::fs::write(&slow, "slow").unwrap();
    add_file(&driver, &slow).await;
    until(
        &driver,
        "uploading and failed in the tray",
        async || driver.tray().await,
        // (With the share of the queue's bytes sent: up to all of them while the store holds
        // the slow one's answer.)
        |t| {
            let title = title(t);
            title.starts_with("uploading 1 file, ") && title.ends_with("% · 1 failed")
        },
    )
    .await;
    // The batch ends with one file failed: the notice says so, not "all done".
    let notes = until(
        &driver,
        "the batch notice",
        async || driver.notifications().await,
        |n| {
            summaries(n)
                .iter()
                .any(|s| s.starts_with("Uploads finished"))
        },
    )
    .await;
    let done = notes
        .iter()
        .find(|n| {
            n["summary"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Uploads finished")
        })
        .unwrap();
    assert_eq!(done["summary"], "Uploads finished, 1 failed", "{done}");
    assert!(
        done["body"]
            .as_str()
            .unwrap()
            .contains("1 file confirmed, 1 failed"),
        "{done}"
    );
    until(
        &driver,
        "the tray after the batch",
        async || driver.tray().await,
        |t| title(t) == "1 failed",
    )
    .await;

    // Closed: hidden to the tray, and the first time a notification says so; the tray opens it.
    assert!(driver.close_window().await >= 1);
    until(
        &driver,
        "the tray notice",
        async || driver.notifications().await,
        |n| summaries(n).iter().any(|s| s == "Ferry is still running"),
    )
    .await;
    until(
        &driver,
        "the window hidden",
        async || driver.window_shown().await,
        |shown| !shown,
    )
    .await;
    driver.tray_click("Open Ferry").await;
    until(
        &driver,
        "the window shown",
        async || driver.window_shown().await,
        |shown| *shown,
    )
    .await;

    // Pause all from the tray pauses the file on its way; Resume all sends it on. (This one
    // the store holds for two minutes: it is still on its way when Quit is clicked.)
    let file = dir.path().join("held.txt");
    std::fs::write(&file, "held at the store").unwrap();
    add_file(&driver, &file).await;
    let state = |s: &'static str| move |_: &str, r: &Value| r["state"] == serde_json::json!(s);
    wait_row(&driver, "held.txt", "uploading", 30, state("uploading")).await;
    driver.tray_click("Pause all").await;
    wait_row(&driver, "held.txt", "paused", 30, state("paused")).await;
    driver.tray_click("Resume all").await;
    wait_row(
        &driver,
        "held.txt",
        "uploading again",
        30,
        state("uploading"),
    )
    .await;
    // Quit while it is on its way: asked first; "Keep uploading" keeps the app.
    driver.tray_click("Quit").await;
    assert!(driver.dialog_shown("Quit Ferry?").await, "Quit asks first");
    driver.answer_dialog("Quit Ferry?", "Escape").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !driver.tray().await[0]["menu"].is_null(),
        "the tray icon is still there"
    );
    assert_eq!(
        driver
            .script("return document.title", serde_json::json!([]))
            .await,
        serde_json::json!("Ferry"),
        "the app still runs"
    );

    // A file in parts on its way: the percentage follows its parts as they are stored, not
    // only its changes of state. Its first part reaches the store 3 s after it started (well
    // after the tray counted the file's start), the store holds the rest; the share is seen
    // within 20 s, well before a held part could time out and be retried.
    let _first_late = store.add(
        Rule::new(Action::Latency(Duration::from_secs(3)))
            .method("PUT")
            .target("partNumber=")
            .times(1),
    );
    let _rest_held = store.add(
        Rule::new(Action::Latency(Duration::from_secs(120)))
            .method("PUT")
            .target("partNumber=")
            .skip(1),
    );
    let parts = dir.path().join("in-parts.bin");
    std::fs::write(&parts, vec![7u8; 40 * 1024 * 1024]).unwrap();
    add_file(&driver, &parts).await;
    let percent = |t: &Value| {
        title(t)
            .strip_prefix("uploading 2 files, ")
            .and_then(|rest| rest.split('%').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tray = driver.tray().await;
        if percent(&tray).is_some_and(|p| (1..100).contains(&p)) {
            break;
        }
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("no share of the file in parts shown in the tray: {tray}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Signed out: the tray says so, and a menu action that cannot work says why where it was
    // asked for (the window may be hidden), not only in the log.
    driver.click_text("Sign out").await;
    until(
        &driver,
        "signed out in the tray",
        async || driver.tray().await,
        |t| title(t) == "signed out" && menu(t).first().is_some_and(|m| m == "signed out"),
    )
    .await;
    driver.tray_click("Pause all").await;
    let notes = until(
        &driver,
        "the failed action notified",
        async || driver.notifications().await,
        |n| summaries(n).iter().any(|s| s == "Pause all did not work"),
    )
    .await;
    let failed = notes
        .iter()
        .find(|n| n["summary"] == "Pause all did not work")
        .unwrap();
    assert!(
        failed["body"].as_str().is_some_and(|b| !b.is_empty()),
        "it says why: {failed}"
    );
}

/// A session the app server ends (its time is up) is told in a notification — the window may
/// be in the tray — and the window asks to sign in again, the file added meanwhile kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_is_told_in_a_notification_and_the_window_asks_to_sign_in() {
    let session = Duration::from_secs(6);
    let (server, _store) = server_behind_store_proxy(|o| o.session_ttl = session).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::signed_in(dir.path(), true, &server.api, "alice", &password).await;
    until(
        &driver,
        "the tray, idle",
        async || driver.tray().await,
        |t| title(t) == "idle",
    )
    .await;
    tokio::time::sleep(session + Duration::from_secs(1)).await;
    // Its upload needs the app server, which no longer takes the session.
    let file = dir.path().join("after-the-end.txt");
    std::fs::write(&file, "added after the session ended").unwrap();
    add_file(&driver, &file).await;
    let notes = until(
        &driver,
        "the session's end notified",
        async || driver.notifications().await,
        |n| summaries(n).iter().any(|s| s == "Signed out"),
    )
    .await;
    let ended = notes.iter().find(|n| n["summary"] == "Signed out").unwrap();
    assert_eq!(
        ended["body"], "Your session ended. Sign in again to continue uploading.",
        "{ended}"
    );
    driver.wait_for("input[name=server]", 30).await;
    let said = driver
        .script("return document.body.innerText", serde_json::json!([]))
        .await;
    assert!(
        said.as_str()
            .is_some_and(|t| t.contains("Your session ended. Sign in again")),
        "{said}"
    );
}
