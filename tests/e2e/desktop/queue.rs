//! The queue as the window shows it while the engine retries and when files belong to another
//! account. Faults come from the fault-injecting proxy in front of the store (where the
//! server's grants point): a file whose PUTs get 503 says it is retrying — which request, why,
//! which attempt of how many, and when its next attempt comes; a file the store refuses for
//! good is Failed with the reason and a Retry button. After signing out and in as someone else
//! on the same data dir, the first account's unfinished file waits for its owner, offers no
//! actions, and the page cannot touch it; signing back in finishes it, in its owner's history
//! only.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_protocol::{Role, UploadStatus};
use ferry_tests::proxy::{Action, Rule};
use serde_json::{Value, json};

use super::driver::Driver;
use super::{FILES_DIALOG, server_behind_store_proxy, wait_confirmed};

/// What the window shows of the queue row of `name` — its text, state and buttons, and the
/// queue's overall line at the same moment — or `null` when there is no such row.
async fn row(driver: &Driver, name: &str) -> Value {
    driver
        .script(
            "const r = [...document.querySelectorAll('[data-testid=item]')]\
               .find(r => r.querySelector('td')?.textContent.trim() === arguments[0]);\
             return r ? {text: r.innerText, state: r.dataset.state, \
               buttons: [...r.querySelectorAll('button')].map(b => b.textContent.trim()), \
               overall: document.querySelector('[data-testid=overall]')?.innerText} : null;",
            json!([name]),
        )
        .await
}

/// Waits until the row of `name` passes `check`; the row as it was then.
pub(super) async fn wait_row(
    driver: &Driver,
    name: &str,
    what: &str,
    secs: u64,
    check: impl Fn(&str, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let row = row(driver, name).await;
        let text = row["text"].as_str().unwrap_or_default().to_owned();
        if check(&text, &row) {
            return row;
        }
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("{name}: {what} not shown within {secs} s; the row: {row}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the element marked `test_id`, or `null`.
pub(super) async fn text_of(driver: &Driver, test_id: &str) -> Value {
    driver
        .script(
            "return document.querySelector(`[data-testid=\"${arguments[0]}\"]`)?.innerText ?? null;",
            json!([test_id]),
        )
        .await
}

/// Waits until the element marked `test_id` shows text matching `check`; that text.
pub(super) async fn wait_text(
    driver: &Driver,
    test_id: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(text) = text_of(driver, test_id).await.as_str()
            && check(text)
        {
            return text.to_owned();
        }
        if Instant::now() > deadline {
            driver.screenshot("failure").await;
            panic!("{what} not shown within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The number just before `marker` in `text` (`3` for "attempt 3 of 5" and " of 5").
fn number_before(text: &str, marker: &str) -> u32 {
    let head = text
        .split(marker)
        .next()
        .filter(|h| h.len() < text.len())
        .unwrap_or_else(|| panic!("{marker:?} in {text:?}"));
    let digits: String = head
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// Adds `path` through the system's file dialog.
pub(super) async fn add_file(driver: &Driver, path: &Path) {
    driver.click_text("Add files…").await;
    driver.choose_in_dialog(FILES_DIALOG, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_shows_retrying_files_and_files_waiting_for_another_account() {
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let alice = server.add_user("alice", Role::User);
    let bob = server.add_user("bob", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let driver = Driver::start(&home, &dir.path().join("data")).await;
    driver.wait_for("input[name=server]", 60).await;
    // The sign-in form shown, to within the 0.2 s between looks.
    let first_paint = driver.launched.elapsed();
    driver.sign_in_as(&server.api, "alice", &alice).await;

    // Refused for good once: Failed, with the store's reason and a Retry button.
    let refused = store.add(
        Rule::new(Action::s3_error(
            400,
            "InvalidRequest",
            "This request is not allowed here.",
        ))
        .method("PUT")
        .target("refused.txt")
        .times(1),
    );
    let refused_file = dir.path().join("refused.txt");
    std::fs::write(&refused_file, b"refused once").unwrap();
    add_file(&driver, &refused_file).await;
    let failed = wait_row(&driver, "refused.txt", "failed", 30, |_, r| {
        r["state"] == json!("failed")
    })
    .await;
    let text = failed["text"].as_str().unwrap();
    assert!(text.contains("InvalidRequest"), "the reason: {failed}");
    assert!(
        !text.contains("Retrying"),
        "not retried by itself: {failed}"
    );
    assert!(
        failed["buttons"]
            .as_array()
            .unwrap()
            .contains(&json!("Retry")),
        "{failed}"
    );
    assert_eq!(refused.applied(), 1, "one PUT, not retried");

    // Busy until the test heals it: every PUT of this file gets 503.
    let slow_down = store.add(
        Rule::new(Action::s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ))
        .method("PUT")
        .target("flaky.txt"),
    );
    let flaky = dir.path().join("flaky.txt");
    std::fs::write(&flaky, b"retried until the store takes it").unwrap();
    add_file(&driver, &flaky).await;
    // Each request retry shows on the uploading row…
    let request = wait_row(&driver, "flaky.txt", "a request retry", 30, |t, _| {
        t.contains("retrying PutObject")
    })
    .await;
    let text = request["text"].as_str().unwrap();
    assert!(text.contains("503 SlowDown"), "the reason: {request}");
    let attempt = number_before(text, " of 5");
    assert!(
        (1..5).contains(&attempt),
        "which attempt of how many: {request}"
    );
    // …then the file waits for its next attempt: when, why, and which attempt of how many.
    let waiting = wait_row(&driver, "flaky.txt", "the next attempt", 30, |t, _| {
        t.contains("Retrying in")
    })
    .await;
    let text = waiting["text"].as_str().unwrap();
    assert!(text.contains("503 SlowDown"), "the reason: {waiting}");
    // The first attempt's wait unless this machine was too slow to look within its 2 s.
    let attempt = number_before(text, " of 8)");
    assert!((1..8).contains(&attempt), "{waiting}");
    assert_eq!(waiting["state"], json!("retrying"), "not shown as failed");
    let overall = waiting["overall"].as_str().unwrap();
    assert!(overall.contains("1 retrying · 1 failed"), "{waiting}");
    assert_eq!(
        waiting["buttons"],
        json!(["Retry now", "Pause", "Cancel"]),
        "{waiting}"
    );
    driver.screenshot("retrying").await;
    let refused_text = wait_row(&driver, "refused.txt", "failed", 5, |_, _| true).await;
    assert!(
        refused_text["text"]
            .as_str()
            .unwrap()
            .contains("(request id proxy)"),
        "the store's request id: {refused_text}"
    );
    save_diagnostics(&driver, &home).await;

    // Retry the refused file: it goes up at once.
    driver.click_label("Retry refused.txt").await;
    wait_confirmed(&driver, "refused.txt").await;

    another_account_sees_the_file_waiting(&driver, &server.api, &bob).await;

    // Healed, and alice is back: her file finishes, in her history only.
    slow_down.remove();
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver.sign_in_as(&server.api, "alice", &alice).await;
    wait_confirmed(&driver, "flaky.txt").await;
    let mine = server.history("alice", &alice).await;
    let keys: Vec<_> = mine.items.iter().map(|r| r.key.as_str()).collect();
    let flaky_rows = mine.items.iter().filter(|r| r.key.ends_with("/flaky.txt"));
    assert_eq!(flaky_rows.count(), 1, "{keys:?}");
    assert!(
        mine.items
            .iter()
            .all(|r| r.status == UploadStatus::Confirmed),
        "{keys:?}"
    );
    let theirs = server.history("bob", &bob).await;
    assert!(theirs.items.is_empty(), "nothing in bob's history");

    // At rest: signed in, everything confirmed, grants of the server's usual 15 minutes.
    let rest = super::rest::measure(driver.leader(), super::rest::idle_spell()).await;
    assert!(
        rest.processes >= 2,
        "the app and its WebKit processes were found: {rest:?}"
    );
    assert_eq!(
        driver.script("return 1 + 1;", json!([])).await,
        json!(2),
        "the window answers after its rest"
    );
    super::rest::report(first_paint, &rest);
}

/// Settings → "Save diagnostics…" through the system's save dialog: the zip explains the
/// failed file with the store's request id.
async fn save_diagnostics(driver: &Driver, home: &Path) {
    driver.click_text("Settings").await;
    driver.click_text("Save diagnostics…").await;
    let out = home.join("ferry-diagnostics.zip");
    driver
        .choose_in_dialog("Save Ferry's diagnostics", &out)
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let said = text_of(driver, "diagnostics").await;
        if said.as_str().is_some_and(|t| t.starts_with("Saved to ")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not saved: {said}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    driver.screenshot("settings-diagnostics").await;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("summary.txt").unwrap(), &mut summary).unwrap();
    assert!(
        summary.contains("refused.txt [failed] storage") && summary.contains("(request id proxy)"),
        "{summary}"
    );
    assert!(
        zip.by_name("logs/ferry.log").is_ok(),
        "the app's log is in it"
    );
    driver.click_text("Uploads").await;
}

/// Bob signs in on alice's data dir: alice's unfinished file is shown waiting for her, with no
/// actions, counted in the overview, and the page's controls cannot touch it.
async fn another_account_sees_the_file_waiting(driver: &Driver, api: &str, password: &str) {
    driver.click_text("Sign out").await;
    driver.wait_for("input[name=server]", 30).await;
    driver.sign_in_as(api, "bob", password).await;
    let theirs = wait_row(driver, "flaky.txt", "waiting for alice", 30, |t, _| {
        t.contains("Waiting for alice to sign in")
    })
    .await;
    assert_eq!(theirs["buttons"], json!([]), "no actions: {theirs}");
    assert!(
        row(driver, "refused.txt").await.is_null(),
        "alice's finished files are not bob's business"
    );
    let overall = text_of(driver, "overall").await;
    assert!(
        overall.to_string().contains("1 file waiting for alice"),
        "{overall}"
    );
    driver.screenshot("waiting").await;

    let queue = driver.invoke("queue", json!({})).await.unwrap();
    let item = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == json!("flaky.txt"))
        .unwrap_or_else(|| panic!("alice's file in bob's queue: {queue}"))
        .clone();
    assert_eq!(item["mine"], json!(false), "{item}");
    assert_eq!(item["owner"], json!("alice"), "{item}");
    for action in ["pause", "resume", "retry", "cancel"] {
        let reply = driver
            .invoke("control", json!({"action": action, "ids": [item["id"]]}))
            .await;
        assert_eq!(
            reply.as_ref().map_err(|e| e["code"].clone()),
            Err(json!("forbidden")),
            "{action} on alice's file"
        );
    }
    for action in ["pause", "cancel"] {
        let reply = driver
            .invoke("control", json!({"action": action, "ids": null}))
            .await;
        assert_eq!(reply, Ok(Value::Null), "{action} all");
    }
    let after = driver.invoke("queue", json!({})).await.unwrap();
    let still = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == item["id"])
        .unwrap_or_else(|| panic!("alice's file is still there: {after}"));
    assert_eq!(still["state"], item["state"], "untouched by bob: {still}");
}
