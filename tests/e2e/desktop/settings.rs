//! Settings apply without a new sign-in: a lower "parts in flight" saved while a big file
//! uploads holds for the parts it still has to send (counted at the store's proxy).

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::proxy::{Action, Rule};
use serde_json::json;

use super::driver::Driver;
use super::queue::add_file;
use super::{server_behind_store_proxy, wait_confirmed};

/// Saves `parts` parts in flight as the Settings screen saves it.
async fn save_parts_in_flight(driver: &Driver, parts: u64) {
    let mut wanted = driver.invoke("settings", json!({})).await.unwrap();
    wanted["partsInFlight"] = json!(parts);
    let saved = driver
        .invoke("save_settings", json!({"settings": wanted}))
        .await;
    assert_eq!(saved, Ok(serde_json::Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_parts_in_flight_saved_while_uploading_hold_for_the_rest_of_the_file() {
    let (server, store) = server_behind_store_proxy(|_| {}).await;
    let password = server.add_user("alice", Role::User);
    let _slow = store.add(
        Rule::new(Action::Latency(Duration::from_secs(1)))
            .method("PUT")
            .target("partNumber="),
    );
    let dir = tempfile::tempdir().unwrap();
    // 24 parts of the default 8 MiB.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 24 * 8 * 1024 * 1024]).unwrap();
    let driver = Driver::signed_in(dir.path(), false, &server.api, "alice", &password).await;
    // At most 4 parts at once to start with: 24 parts take at least 6 s, time enough to save
    // the next setting while most are still to go.
    save_parts_in_flight(&driver, 4).await;
    add_file(&driver, &big).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.in_flight() < 4 {
        assert!(Instant::now() < deadline, "the parts never went wide");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One part at a time.
    save_parts_in_flight(&driver, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.in_flight() > 1 {
        let now = store.in_flight();
        assert!(
            Instant::now() < deadline,
            "still {now} parts at once after saving 1"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.count_most_from_now();
    let narrowed = Instant::now();
    wait_confirmed(&driver, "big.bin").await;

    let later = store
        .seen()
        .iter()
        .filter(|s| s.target.contains("partNumber=") && s.at >= narrowed)
        .count();
    assert!(
        later >= 5,
        "only {later} parts were sent after saving: nothing to see"
    );
    let most = store.traffic().most_at_once;
    assert!(most <= 1, "{most} parts at once after saving 1");
}
