//! A file whose key already holds an object, in the real window: the prompt names it and
//! where it would go; "Keep both" uploads it beside the other (`report (1).txt`); a rule saved
//! in the settings applies at once to the next file, which is then not asked about.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::TestServer;
use serde_json::{Value, json};

use super::driver::Driver;
use super::queue::{add_file, text_of, wait_text};
use super::wait_confirmed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_already_at_the_store_is_asked_about_and_a_saved_rule_applies_at_once() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let copies: Vec<_> = (1..=3)
        .map(|i| dir.path().join(format!("copy-{i}")))
        .collect();
    for (i, copy) in copies.iter().enumerate() {
        std::fs::create_dir_all(copy).unwrap();
        std::fs::write(copy.join("report.txt"), format!("version {i}")).unwrap();
    }
    std::fs::create_dir_all(&home).unwrap();
    let driver = Driver::start(&home, &dir.path().join("data")).await;
    driver.wait_for("input[name=server]", 60).await;
    driver.sign_in_as(&server.api, "alice", &password).await;
    add_file(&driver, &copies[0].join("report.txt")).await;
    wait_confirmed(&driver, "report.txt").await;

    // Another report.txt for the same key: asked about, nothing replaced.
    add_file(&driver, &copies[1].join("report.txt")).await;
    let prompt = wait_text(&driver, "conflict", "the prompt", |t| {
        t.contains("A file is already at the store")
    })
    .await;
    assert!(
        prompt.contains("report.txt would go to report.txt"),
        "{prompt}"
    );
    driver.screenshot("conflict").await;
    driver.click_text("Keep both").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = |key: &'static str| {
        let (server, password) = (&server, &password);
        async move {
            let page = server.history("alice", password).await;
            let row = page.items.into_iter().find(|r| r.key.ends_with(key))?;
            server
                .server
                .object_bytes(&row.bucket, &row.key)
                .await
                .unwrap()
        }
    };
    while stored("/report (1).txt").await.is_none() {
        assert!(Instant::now() < deadline, "report (1).txt never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stored("/report.txt").await.as_deref(),
        Some(&b"version 0"[..])
    );
    assert_eq!(
        stored("/report (1).txt").await.as_deref(),
        Some(&b"version 1"[..])
    );
    assert_eq!(
        text_of(&driver, "conflict").await,
        Value::Null,
        "the prompt is gone"
    );

    // "Skip the file" saved in the settings: the third copy is skipped without asking.
    let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
    wanted["onConflict"] = json!("skip");
    let saved = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert_eq!(saved, Ok(Value::Null));
    add_file(&driver, &copies[2].join("report.txt")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let skipped = "return [...document.querySelectorAll('[data-testid=item]')].filter(r => r.dataset.state === 'skipped').map(r => r.innerText);";
    let rows = loop {
        let rows = driver.script(skipped, json!([])).await;
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break rows;
        }
        assert!(Instant::now() < deadline, "the third copy was not skipped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        rows[0].as_str().unwrap().contains("skipped, as asked"),
        "{rows}"
    );
    assert_eq!(text_of(&driver, "conflict").await, Value::Null, "not asked");
    assert_eq!(
        stored("/report.txt").await.as_deref(),
        Some(&b"version 0"[..])
    );
}
