//! Closing the window never stops uploads: signed in, a close (as a window manager's close
//! button sends it) hides the window, the app keeps running and the upload finishes.

use std::time::{Duration, Instant};

use ferry_protocol::{Role, UploadStatus};
use ferry_tests::proxy::{Action, Rule};

use super::driver::Driver;
use super::queue::add_file;
use super::server_behind_store_proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_window_while_uploading_hides_it_and_the_upload_goes_on() {
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let password = server.add_user("alice", Role::User);
    // The store takes its time with this file: it is still on its way when the window closes.
    let _slow = store.add(
        Rule::new(Action::Latency(Duration::from_secs(4)))
            .method("PUT")
            .target("slow.txt"),
    );
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::signed_in(dir.path(), true, &server.api, "alice", &password).await;
    assert!(driver.window_shown().await, "the window is shown");
    let file = dir.path().join("slow.txt");
    std::fs::write(&file, b"still on its way when the window closes").unwrap();
    add_file(&driver, &file).await;
    driver
        .wait_for("[data-testid=item][data-state=uploading]", 30)
        .await;

    assert!(
        driver.close_window().await >= 1,
        "the window was asked to close"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.window_shown().await {
        assert!(Instant::now() < deadline, "the window is still shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Hidden, not gone: the app answers, and the upload finishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = server.history("alice", &password).await;
        let done = page
            .items
            .iter()
            .any(|r| r.key.ends_with("/slow.txt") && r.status == UploadStatus::Confirmed);
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload did not finish: {page:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        driver
            .script("return document.title", serde_json::json!([]))
            .await,
        serde_json::json!("Ferry"),
        "the app still runs"
    );
}
