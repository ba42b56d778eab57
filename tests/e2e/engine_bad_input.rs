//! The engine's bad-input matrix against the real server: odd names, files that grow, sparse
//! huge files, folders too deep, a full disk under the journal, a damaged journal, a watched
//! folder unmounted under the watcher. Each: a clear error or the right result, nothing lost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_engine::journal::FileState;
use ferry_engine::watch::Folder;
use ferry_protocol::Role;
use ferry_tests::{StoreClient, TestServer, bytes, engine, expected_etag, within};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_reserved_characters_and_emoji_keep_them_in_their_keys() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("odd names");
    std::fs::create_dir(&folder).unwrap();
    let names = [
        "a+b.txt",
        "100%.txt",
        "#hash.txt",
        "what?.txt",
        "co:lon.txt",
        "back\\slash.txt",
        "emoji-\u{1F680}.txt",
        "spa ce & amp=.txt",
        "~tilde'quote\".txt",
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(folder.join(name), format!("file {i}")).unwrap();
    }
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    let summary = within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, names.len() as u64, "{summary:?}");
    let page = server.history("alice", &password).await;
    for name in names {
        let want = format!("/odd names/{name}");
        assert!(
            page.items.iter().any(|r| r.key.ends_with(&want)),
            "{want} in {:?}",
            page.items.iter().map(|r| &r.key).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_growing_during_its_upload_ends_up_with_all_its_bytes() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("growing.log");
    let mut content = bytes(24 * MIB, 41);
    std::fs::write(&file, &content).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(16 * MIB as u64);
    })
    .await;
    engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let tail = bytes(8 * MIB, 42);
    let grow = {
        let (file, tail) = (file.clone(), tail.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .unwrap();
            f.write_all(&tail).unwrap();
        })
    };
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    grow.await.unwrap();
    content.extend_from_slice(&tail);
    assert_eq!(summary.confirmed, 1);
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].size, content.len() as u64);
    assert_eq!(
        page.items[0].etag,
        expected_etag(&content, 16 * MIB, 8 * MIB)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_huge_file_gets_parts_within_the_limit_and_cancels_cleanly() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.img");
    let size: u64 = 100 * 1024 * 1024 * 1024;
    std::fs::File::create(&file).unwrap().set_len(size).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(32 * MIB as u64);
    })
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = engine.journal().file(ids[0]).unwrap().unwrap();
        if row.bytes_done > 0 {
            // 10 000 parts at most: 100 GiB needs parts of ceil(size / 10 000) bytes.
            assert_eq!(row.part_size, Some(size.div_ceil(10_000)));
            break;
        }
        assert!(Instant::now() < deadline, "no part arrived: {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.transfer().cancel(Some(&ids)).await.unwrap();
    runner.abort();
    let _ = runner.await;
    assert_eq!(
        engine.journal().file(ids[0]).unwrap().unwrap().state,
        FileState::Cancelled
    );
    let grant = engine.credentials().current().await.unwrap();
    let open = StoreClient::new((*grant).clone()).list_uploads("").await;
    assert!(!open.body.contains("<UploadId>"), "aborted: {}", open.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_nested_too_deep_are_reported_not_dropped() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("deep");
    let mut bottom = top.clone();
    for _ in 0..70 {
        bottom = bottom.join("d");
    }
    std::fs::create_dir_all(&bottom).unwrap();
    std::fs::write(bottom.join("far.txt"), b"seventy folders down").unwrap();
    std::fs::write(top.join("near.txt"), b"at the top").unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&top)).await.unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let rows: Vec<_> = ids
        .iter()
        .map(|id| engine.journal().file(*id).unwrap().unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let deep = rows.iter().find(|r| r.state == FileState::Skipped).unwrap();
    assert_eq!(deep.error_code.as_deref(), Some("too_deep"), "{deep:?}");
    assert!(rows.iter().any(|r| r.state == FileState::Confirmed));
}

/// A tmpfs mounted for the test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount (the tests run as root, as CI does)");
        assert!(status.success(), "mounting a tmpfs at {}", at.display());
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_on_a_full_disk_fails_clearly_and_carries_on_when_there_is_room() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _disk = Tmpfs::mount(&data, "16m");
    let (engine, _) = engine(&server, &data, "alice", &password, |_| {}).await;
    let folder = dir.path().join("many");
    std::fs::create_dir(&folder).unwrap();
    for i in 0..300 {
        std::fs::write(
            folder.join(format!("file-{i:03}-{}.txt", "x".repeat(150))),
            b"x",
        )
        .unwrap();
    }
    // Fill the disk to the last block.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    }
    let full = engine
        .enqueue(std::slice::from_ref(&folder))
        .await
        .unwrap_err();
    assert_eq!(full.code(), "disk_full", "{full}");
    assert!(full.to_string().contains("full"), "{full}");

    std::fs::remove_file(&filler).unwrap();
    let ids = engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    assert_eq!(ids.len(), 300);
    let summary = within(120, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 300, "{summary:?}");
    assert_eq!(server.history("alice", &password).await.items.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_is_left_alone_with_a_clear_error() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let garbage = b"this is not an SQLite database, whatever it once was".repeat(100);
    std::fs::write(data.join("journal.db"), &garbage).unwrap();
    let result = ferry_engine::Engine::open(ferry_engine::EngineConfig {
        data_dir: data.clone(),
        server: server.api.clone(),
        keychain: std::sync::Arc::new(ferry_engine::keychain::MemoryKeychain::default()),
        events: ferry_engine::events::discard(),
        transfer: Default::default(),
        grant: Default::default(),
        device: "test".into(),
        token_server: None,
        network: Default::default(),
    });
    let err = result.err().expect("a damaged journal is refused");
    assert_eq!(err.code(), "journal_damaged", "{err}");
    assert!(
        err.to_string().contains("journal.db"),
        "names the file: {err}"
    );
    assert_eq!(
        std::fs::read(data.join("journal.db")).unwrap(),
        garbage,
        "left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_folder_unmounted_and_mounted_again_is_watched_again() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("usb-stick");
    let stick = Tmpfs::mount(&folder, "8m");
    // The same file, mtime and all, each time the stick is in.
    let first = |folder: &Path| {
        let path = folder.join("first.txt");
        std::fs::write(&path, b"on the stick").unwrap();
        let then = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(then)
            .unwrap();
    };
    first(&folder);
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let watcher = engine.watcher();
    watcher
        .add(Folder {
            path: folder.clone(),
            on_conflict: ferry_engine::conflict::OnConflict::Ask,
            prefix: String::new(),
            excludes: vec![],
        })
        .unwrap();
    let transfer = engine.transfer().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = watcher.run() => panic!("the watcher stopped: {result:?}"),
            result = transfer.run() => panic!("the scheduler stopped: {result:?}"),
        }
    });
    let uploaded = |n: usize| {
        let server = &server;
        let password = &password;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let items = server.history("alice", password).await.items;
                if items.len() >= n {
                    return items;
                }
                assert!(
                    Instant::now() < deadline,
                    "only {} of {n} uploaded",
                    items.len()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    uploaded(1).await;

    // Pulled out, then put back with another file on it.
    drop(stick);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!task.is_finished(), "the watcher keeps running");
    let _stick = Tmpfs::mount(&folder, "8m");
    first(&folder);
    std::fs::write(folder.join("second.txt"), b"added while it was away").unwrap();
    let items = uploaded(2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let items_later = server.history("alice", &password).await.items;
    assert_eq!(
        items_later.len(),
        2,
        "first.txt is not sent again: {items:?}"
    );
    task.abort();
}
