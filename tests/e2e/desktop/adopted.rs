//! Folders an earlier version kept in `folders.json` become the first account's at its
//! sign-in: those that can still be watched, the rest said in the log and left out.

use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::TestServer;
use serde_json::json;

use super::driver::Driver;

/// An earlier version's list with a folder gone since and one whose pattern is no longer
/// taken: the sign-in goes on, the others are adopted (turned off stays off), the file is
/// kept as `folders.json.adopted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_folders_are_adopted_but_those_that_cannot_be_watched() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let folder = |name: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        path.canonicalize().unwrap()
    };
    let (kept, off, bad) = (folder("kept"), folder("off"), folder("bad"));
    let gone = dir.path().join("gone");
    let old = |path: &std::path::Path, excludes: &[&str], enabled: bool| json!({"path": path, "prefix": "", "excludes": excludes, "enabled": enabled});
    let list = json!([
        old(&kept, &[], true),
        old(&gone, &[], true),
        old(&bad, &["["], true),
        old(&off, &["*.tmp"], false),
    ]);
    std::fs::write(data.join("folders.json"), list.to_string()).unwrap();

    let driver = Driver::signed_in(dir.path(), false, &server.api, "alice", &password).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let folders = loop {
        let folders = driver.invoke("folders", json!({})).await.unwrap();
        if folders.as_array().is_some_and(|f| !f.is_empty()) {
            break folders;
        }
        assert!(Instant::now() < deadline, "no folder adopted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let adopted: Vec<_> = folders
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].clone(),
                f["enabled"].clone(),
                f["excludes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        adopted,
        [
            (json!(kept), json!(true), json!([])),
            (json!(off), json!(false), json!(["*.tmp"])),
        ],
        "{folders}"
    );
    assert!(data.join("folders.json.adopted").exists());
    assert!(!data.join("folders.json").exists());
}
