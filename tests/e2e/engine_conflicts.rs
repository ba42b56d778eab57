//! A file whose key already holds an object someone else put there (another device, another
//! tool): overwritten (the default, as S3 itself does), skipped, uploaded under a free name, or
//! overwritten only when the local file is newer — against the embedded store, the other
//! object read back each time.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ferry_engine::journal::FileState;
use ferry_engine::transfer::Conflict;
use ferry_tests::{Alice, StoreClient, within};

struct Scene {
    alice: Alice,
    store: StoreClient,
    file: PathBuf,
    prefix: String,
    bucket: String,
}

/// Alice with `rule`, a local `report.txt` ("mine"), and the store already holding each of
/// `taken` (relative keys) as "theirs: KEY".
async fn scene(rule: Conflict, taken: &[&str]) -> Scene {
    let alice = Alice::start(|c| c.transfer.on_conflict = rule).await;
    let grant = alice.engine.credentials().current().await.unwrap();
    let store = StoreClient::new((*grant).clone());
    for key in taken {
        let full = format!("{}{key}", grant.prefix);
        let put = store
            .put(&full, format!("theirs: {key}").into_bytes())
            .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let file = alice.dir.path().join("report.txt");
    std::fs::write(&file, "mine").unwrap();
    Scene {
        prefix: grant.prefix.clone(),
        bucket: grant.bucket.clone(),
        alice,
        store,
        file,
    }
}

impl Scene {
    async fn upload(&self) -> ferry_engine::transfer::Summary {
        let engine = &self.alice.engine;
        engine
            .enqueue(std::slice::from_ref(&self.file))
            .await
            .unwrap();
        within(60, "the upload", engine.run_until_idle())
            .await
            .unwrap()
    }

    /// The stored object at `key` (relative), read from the store itself, or `None`.
    async fn object(&self, key: &str) -> Option<String> {
        let full = format!("{}{key}", self.prefix);
        let stored = self
            .alice
            .server
            .server
            .object_bytes(&self.bucket, &full)
            .await;
        stored.unwrap().map(|b| String::from_utf8(b).unwrap())
    }

    fn newest(&self) -> ferry_engine::journal::FileRow {
        self.alice.engine.files(1).unwrap().remove(0)
    }

    fn modified(&self, when: SystemTime) {
        let file = std::fs::File::options()
            .write(true)
            .open(&self.file)
            .unwrap();
        file.set_modified(when).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_object_is_overwritten() {
    let s = scene(Conflict::Overwrite, &["report.txt"]).await;
    assert_eq!(s.upload().await.confirmed, 1);
    assert_eq!(s.object("report.txt").await.as_deref(), Some("mine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_leaves_the_object_and_says_why() {
    let s = scene(Conflict::Skip, &["report.txt"]).await;
    let summary = s.upload().await;
    assert_eq!((summary.confirmed, summary.skipped), (0, 1), "{summary:?}");
    assert_eq!(
        s.object("report.txt").await.as_deref(),
        Some("theirs: report.txt")
    );
    let row = s.newest();
    assert_eq!(row.state, FileState::Skipped);
    assert_eq!(row.error_code.as_deref(), Some("exists"));
    let message = row.error_message.unwrap();
    assert!(
        message.contains("report.txt already exists") && message.contains("skip"),
        "{message}"
    );
    let told = s.alice.events.events().into_iter().any(|e| {
        matches!(e, ferry_engine::events::Event::State { state: FileState::Skipped, error: Some(ref err), .. } if err.code == "exists")
    });
    assert!(told, "the skip was told with its reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_uploads_under_the_first_free_name_and_keeps_it() {
    let s = scene(Conflict::Rename, &["report.txt", "report (1).txt"]).await;
    assert_eq!(s.upload().await.confirmed, 1);
    assert_eq!(s.object("report (2).txt").await.as_deref(), Some("mine"));
    assert_eq!(
        s.object("report.txt").await.as_deref(),
        Some("theirs: report.txt")
    );
    assert_eq!(
        s.object("report (1).txt").await.as_deref(),
        Some("theirs: report (1).txt")
    );
    let row = s.newest();
    assert_eq!(row.key, "report (2).txt");
    let history = s.alice.server.history("alice", &s.alice.password).await;
    assert!(
        history.items[0].key.ends_with("/report (2).txt"),
        "{:?}",
        history.items[0].key
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_overwrites_only_an_object_older_than_the_file() {
    let s = scene(Conflict::Newer, &["report.txt"]).await;
    s.modified(SystemTime::now() - Duration::from_secs(24 * 3600));
    assert_eq!(s.upload().await.skipped, 1);
    assert_eq!(
        s.object("report.txt").await.as_deref(),
        Some("theirs: report.txt")
    );
    // Changed since (dated after the object was stored): now it goes up.
    std::fs::write(&s.file, "mine").unwrap();
    s.modified(SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(s.upload().await.confirmed, 1);
    assert_eq!(s.object("report.txt").await.as_deref(), Some("mine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_own_earlier_upload_and_the_same_bytes_are_no_conflict() {
    let s = scene(Conflict::Skip, &[]).await;
    assert_eq!(s.upload().await.confirmed, 1);
    // Changed and given again: the object is the file's own upload, so it is replaced.
    std::fs::write(&s.file, "mine, edited").unwrap();
    assert_eq!(s.upload().await.confirmed, 2);
    assert_eq!(
        s.object("report.txt").await.as_deref(),
        Some("mine, edited")
    );
    // Another file whose bytes someone already stored at its key: nothing to protect.
    let twin = s.alice.dir.path().join("twin.txt");
    std::fs::write(&twin, "same bytes").unwrap();
    let full = format!("{}twin.txt", s.prefix);
    assert_eq!(s.store.put(&full, b"same bytes".to_vec()).await.status, 200);
    let engine = &s.alice.engine;
    engine.enqueue(std::slice::from_ref(&twin)).await.unwrap();
    let summary = within(60, "the twin", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!((summary.confirmed, summary.skipped), (3, 0), "{summary:?}");
}
