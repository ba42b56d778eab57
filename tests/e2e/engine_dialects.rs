//! The engine's end-to-end behaviour once per dialect: the embedded store speaks `s3`, `oss`
//! (V4 and V1) and `obs`, and the engine asks for a grant of each. Sizes, credentials
//! refreshed mid-upload, pause and cancel, resume after `kill -9`, and a watched folder — every
//! file read back from the store byte for byte, one history row each.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_engine::conflict::OnConflict;
use ferry_engine::events::Event;
use ferry_engine::journal::FileState;
use ferry_engine::watch::Folder;
use ferry_protocol::{Grant, GrantRequest, Provider, Role, SignatureVersion, UploadStatus};
use ferry_tests::native_store::{NativeClient, Scheme};
use ferry_tests::{StoreClient, TestServer, bytes, engine, ferry_bin, within};

const MIB: usize = 1024 * 1024;

/// Parts in flight at most in the kill -9 runs.
const IN_FLIGHT: u64 = 4;

/// What the engine asks the server's grants for.
fn ask(provider: Provider, version: SignatureVersion) -> GrantRequest {
    GrantRequest {
        ttl_seconds: None,
        provider: Some(provider),
        signature_version: Some(version),
    }
}

/// Generates one test per dialect from an `async fn(GrantRequest)`.
macro_rules! per_dialect {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use ferry_protocol::{Provider, SignatureVersion};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(super::ask(Provider::S3, SignatureVersion::V4)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oss_v4() {
                super::$name(super::ask(Provider::Oss, SignatureVersion::V4)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oss_v1() {
                super::$name(super::ask(Provider::Oss, SignatureVersion::V1)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn obs() {
                super::$name(super::ask(Provider::Obs, SignatureVersion::V4)).await
            }
        }
    )*};
}

per_dialect!(
    files_of_every_size_arrive_intact,
    credentials_refreshed_mid_upload_go_unnoticed,
    pause_and_cancel_keep_or_release_what_was_sent,
    a_killed_upload_resumes_from_the_parts_the_store_has,
    a_watched_folder_uploads_what_appears_in_it,
    an_object_at_the_key_is_replaced_only_when_the_rule_says_so,
);

/// The store's list of open multipart uploads, asked in the grant's own dialect.
async fn open_uploads(grant: &Grant) -> String {
    let reply = match (grant.provider, grant.signature_version) {
        (Provider::S3, _) => StoreClient::new(grant.clone()).list_uploads("").await,
        (provider, version) => {
            let scheme = match (provider, version) {
                (Provider::Oss, SignatureVersion::V1) => Scheme::OssV1,
                (Provider::Oss, _) => Scheme::OssV4,
                _ => Scheme::Obs,
            };
            NativeClient::new(grant.clone(), scheme)
                .send("GET", "", "uploads", vec![], vec![])
                .await
        }
    };
    assert_eq!(reply.status, 200, "listing open uploads: {}", reply.body);
    reply.body
}

/// Checks each `(key suffix, bytes)` has one confirmed history row and is stored as it is.
async fn assert_stored(server: &TestServer, password: &str, files: &[(String, Vec<u8>)]) {
    let page = server.history("alice", password).await;
    for (suffix, data) in files {
        let rows: Vec<_> = page
            .items
            .iter()
            .filter(|r| r.key.ends_with(suffix.as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "{suffix}: {rows:?}");
        assert_eq!(rows[0].status, UploadStatus::Confirmed, "{suffix}");
        let stored = server
            .server
            .object_bytes(&rows[0].bucket, &rows[0].key)
            .await
            .unwrap();
        assert!(
            stored.as_deref() == Some(data.as_slice()),
            "{suffix}: the store holds other bytes"
        );
    }
}

async fn files_of_every_size_arrive_intact(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sizes");
    std::fs::create_dir(&folder).unwrap();
    let mut files = Vec::new();
    for (i, size) in [0, 1024, 5 * MIB - 1, 16 * MIB, 40 * MIB]
        .into_iter()
        .enumerate()
    {
        let data = bytes(size, 300 + i as u64);
        let name = format!("size-{size} ü+%.bin");
        std::fs::write(folder.join(&name), &data).unwrap();
        files.push((format!("/sizes/{name}"), data));
    }
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.grant = ask.clone();
    })
    .await;
    let grant = engine.credentials().current().await.unwrap();
    assert_eq!(
        grant.provider,
        ask.provider.unwrap(),
        "the grant is of the dialect asked"
    );
    engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, files.len() as u64, "{summary:?}");
    assert_stored(&server, &password, &files).await;
}

async fn credentials_refreshed_mid_upload_go_unnoticed(ask: GrantRequest) {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(3)).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refreshed.bin");
    let data = bytes(60 * MIB, 310);
    std::fs::write(&file, &data).unwrap();
    // Two parts at a time: later parts start after earlier grants ran out (a request is
    // signed as it starts; one that is already streaming is not re-signed).
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.grant = ask.clone();
        c.transfer.bandwidth = Some(12 * MIB as u64);
        c.transfer.parts = 2;
        c.transfer.per_file_parts = 2;
    })
    .await;
    engine.enqueue(&[file]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    let seen = events.events();
    let refreshes = seen
        .iter()
        .filter(|e| matches!(e, Event::CredentialsRefreshed { .. }))
        .count();
    assert!(
        refreshes >= 3,
        "the first grant and at least two refreshes, saw {refreshes}"
    );
    let failed = seen.iter().any(|e| {
        matches!(
            e,
            Event::State {
                state: FileState::Failed,
                ..
            }
        )
    });
    assert!(!failed, "no failure shown");
    assert_stored(&server, &password, &[("/refreshed.bin".into(), data)]).await;
}

async fn pause_and_cancel_keep_or_release_what_was_sent(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep.bin");
    let keep_data = bytes(48 * MIB, 320);
    std::fs::write(&keep, &keep_data).unwrap();
    let drop_me = dir.path().join("drop.bin");
    std::fs::write(&drop_me, bytes(48 * MIB, 321)).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.grant = ask.clone();
        c.transfer.bandwidth = Some(24 * MIB as u64);
        c.transfer.files = 2;
        // Two parts of each file at a time: both files move together, so the file to cancel
        // is still going when the other has a part stored.
        c.transfer.parts = 4;
        c.transfer.per_file_parts = 2;
    })
    .await;
    let ids = engine.enqueue(&[keep, drop_me]).await.unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.journal().file(ids[0]).unwrap().unwrap().bytes_done == 0 {
        assert!(Instant::now() < deadline, "no part was acknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.transfer().pause(Some(&ids[..1])).await.unwrap();
    engine.transfer().cancel(Some(&ids[1..])).await.unwrap();
    let state = |i: usize| engine.journal().file(ids[i]).unwrap().unwrap().state;
    assert_eq!(
        (state(0), state(1)),
        (FileState::Paused, FileState::Cancelled)
    );
    runner.abort();
    let _ = runner.await;
    let grant = engine.credentials().current().await.unwrap();
    let open = open_uploads(&grant).await;
    assert!(open.contains("keep.bin"), "paused: kept open: {open}");
    assert!(!open.contains("drop.bin"), "cancelled: aborted: {open}");

    engine.transfer().resume(None).await.unwrap();
    let summary = within(120, "the resumed upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    assert_eq!(
        engine.journal().file(ids[1]).unwrap().unwrap().state,
        FileState::Cancelled
    );
    assert_stored(&server, &password, &[("/keep.bin".into(), keep_data)]).await;
}

async fn a_killed_upload_resumes_from_the_parts_the_store_has(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("killed.bin");
    // Many more parts than are in flight at once, so the bound below has teeth.
    let data = bytes(160 * MIB, 330);
    std::fs::write(&file, &data).unwrap();
    let provider = serde_json::to_value(ask.provider.unwrap()).unwrap();
    let version = serde_json::to_value(ask.signature_version.unwrap()).unwrap();
    let ferry = || {
        let mut command = Command::new(ferry_bin());
        command
            .env("FERRY_DATA_DIR", &data_dir)
            .env("FERRY_SERVER", &server.api)
            .env("FERRY_MEMORY_KEYCHAIN", "true")
            .env("FERRY_USER", "alice")
            .env("FERRY_PASSWORD", &password)
            .env("FERRY_PROVIDER", provider.as_str().unwrap())
            .env("FERRY_SIGNATURE_VERSION", version.as_str().unwrap())
            .env("FERRY_PARTS", IN_FLIGHT.to_string())
            .arg("upload")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let mut first = ferry()
        .env("FERRY_BANDWIDTH", (32 * MIB).to_string())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.server.store_bytes_received() < data.len() as u64 / 2 {
        assert!(
            Instant::now() < deadline,
            "the first run never reached half"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before = server.server.store_bytes_received();
    let mut again = ferry();
    let output = tokio::task::spawn_blocking(move || again.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Across both runs the store received the file once plus at most the parts that were in
    // flight at the kill (4 × 8 MiB of its 160 MiB): what it had acknowledged was not sent
    // again.
    let in_flight = IN_FLIGHT;
    let total = server.server.store_bytes_received();
    assert!(
        before < data.len() as u64,
        "killed before the end ({before} bytes)"
    );
    let wasted = total - data.len() as u64;
    assert!(
        wasted <= in_flight * 8 * MIB as u64,
        "{wasted} bytes sent beyond the file's size"
    );
    assert_stored(&server, &password, &[("/killed.bin".into(), data)]).await;
}

async fn a_watched_folder_uploads_what_appears_in_it(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("inbox");
    std::fs::create_dir(&folder).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.grant = ask.clone();
    })
    .await;
    engine
        .add_folder(Folder {
            path: folder.clone(),
            on_conflict: ferry_engine::conflict::OnConflict::Ask,
            prefix: "watched".into(),
            excludes: vec![],
        })
        .await
        .unwrap();
    let watcher = engine.watcher();
    let transfer = engine.transfer().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = watcher.run() => panic!("the watcher stopped: {result:?}"),
            result = transfer.run() => panic!("the scheduler stopped: {result:?}"),
        }
    });
    let mut files = Vec::new();
    for i in 0..5 {
        let data = bytes(100_000 + i * 1000, 340 + i as u64);
        std::fs::write(folder.join(format!("w{i}.bin")), &data).unwrap();
        files.push((format!("/watched/w{i}.bin"), data));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    // A row appears as the store commits the object, and is confirmed a moment later.
    let confirmed = |page: ferry_protocol::UploadPage| {
        page.items
            .iter()
            .filter(|r| r.status == UploadStatus::Confirmed)
            .count()
    };
    while confirmed(server.history("alice", &password).await) < files.len() {
        assert!(Instant::now() < deadline, "not every file arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
    assert_stored(&server, &password, &files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_chooses_the_dialect_when_the_client_does_not() {
    let server = TestServer::start_with(|o| {
        o.provider = Provider::Oss;
        o.oss_signature = SignatureVersion::V1;
    })
    .await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("default.bin");
    let data = bytes(20 * MIB, 350);
    std::fs::write(&file, &data).unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let grant = engine.credentials().current().await.unwrap();
    assert_eq!(
        (grant.provider, grant.signature_version),
        (Provider::Oss, SignatureVersion::V1)
    );
    engine.enqueue(&[file]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    assert_stored(&server, &password, &[("/default.bin".into(), data)]).await;
}

/// Writes `files` (`name`, bytes) into `folder`; their paths.
fn write_files(folder: &std::path::Path, files: &[(&str, Vec<u8>)]) -> Vec<std::path::PathBuf> {
    std::fs::create_dir_all(folder).unwrap();
    files
        .iter()
        .map(|(name, data)| {
            let path = folder.join(name);
            std::fs::write(&path, data).unwrap();
            path
        })
        .collect()
}

/// Sets a file's modification time.
fn set_mtime(path: &std::path::Path, at: std::time::SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(at).unwrap();
}

async fn an_object_at_the_key_is_replaced_only_when_the_rule_says_so(ask: GrantRequest) {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.grant = ask.clone();
    })
    .await;
    let grant = engine.credentials().current().await.unwrap();
    let names = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "big.bin"];
    let old: Vec<(&str, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                *n,
                bytes(
                    if *n == "big.bin" { 17 * MIB } else { 100 + i },
                    400 + i as u64,
                ),
            )
        })
        .collect();
    // The first copies: no object is there yet, so asking never comes up.
    let first = dir.path().join("first").join("same");
    write_files(&first, &old);
    engine.enqueue(std::slice::from_ref(&first)).await.unwrap();
    let summary = within(120, "the first upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, names.len() as u64, "{summary:?}");
    let key = |name: &str| format!("{}same/{name}", grant.prefix);
    let stored = |name: &str| {
        let (server, bucket, key) = (&server, grant.bucket.clone(), key(name));
        async move { server.server.object_bytes(&bucket, &key).await.unwrap() }
    };
    // Other files at the same keys (another folder named the same): each waits for a decision,
    // nothing at the store changes, and the big one opened no multipart upload.
    let new: Vec<(&str, Vec<u8>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                *n,
                bytes(
                    if *n == "big.bin" { 17 * MIB } else { 200 + i },
                    500 + i as u64,
                ),
            )
        })
        .collect();
    let second = dir.path().join("second").join("same");
    let paths = write_files(&second, &new);
    engine.enqueue(std::slice::from_ref(&second)).await.unwrap();
    within(120, "the second upload", engine.run_until_idle())
        .await
        .unwrap();
    // The rows of the second copies, in the order of `names`.
    let ids: Vec<i64> = paths
        .iter()
        .map(|path| {
            engine
                .journal()
                .latest_for_path(&engine.session().owner().unwrap(), path)
        })
        .map(|row| row.unwrap().unwrap().id)
        .collect();
    for (id, (name, data)) in ids.iter().zip(&old) {
        let row = engine.journal().file(*id).unwrap().unwrap();
        assert_eq!(
            (row.state, row.error_code.as_deref(), row.next_retry_at),
            (FileState::Failed, Some("exists"), None),
            "{name}: {row:?}"
        );
        assert_eq!(
            stored(name).await.as_deref(),
            Some(data.as_slice()),
            "{name}"
        );
    }
    assert!(
        !open_uploads(&grant).await.contains("big.bin"),
        "no upload was begun"
    );
    // Each answer does what it says.
    let hour = Duration::from_secs(3600);
    set_mtime(&paths[3], std::time::SystemTime::now() - 48 * hour);
    set_mtime(&paths[4], std::time::SystemTime::now() + hour);
    let answers = [
        OnConflict::Overwrite,
        OnConflict::Rename,
        OnConflict::Skip,
        OnConflict::Newer,
        OnConflict::Newer,
        OnConflict::Overwrite,
    ];
    for (id, rule) in ids.iter().zip(answers) {
        assert_eq!(engine.decide(Some(&[*id]), rule).await.unwrap(), 1);
    }
    within(120, "the decided upload", engine.run_until_idle())
        .await
        .unwrap();
    let state = |id: i64| {
        let row = engine.journal().file(id).unwrap().unwrap();
        (row.state, row.error_code)
    };
    let confirmed = (FileState::Confirmed, None);
    assert_eq!(state(ids[0]), confirmed);
    assert_eq!(stored("a.txt").await.as_deref(), Some(new[0].1.as_slice()));
    assert_eq!(state(ids[1]), confirmed);
    assert_eq!(stored("b.txt").await.as_deref(), Some(old[1].1.as_slice()));
    assert_eq!(
        stored("b (1).txt").await.as_deref(),
        Some(new[1].1.as_slice())
    );
    assert_eq!(state(ids[2]), (FileState::Skipped, Some("exists".into())));
    assert_eq!(stored("c.txt").await.as_deref(), Some(old[2].1.as_slice()));
    assert_eq!(
        state(ids[3]),
        (FileState::Skipped, Some("not_newer".into()))
    );
    assert_eq!(stored("d.txt").await.as_deref(), Some(old[3].1.as_slice()));
    assert_eq!(state(ids[4]), confirmed);
    assert_eq!(stored("e.txt").await.as_deref(), Some(new[4].1.as_slice()));
    assert_eq!(state(ids[5]), confirmed);
    assert_eq!(
        stored("big.bin").await.as_deref(),
        Some(new[5].1.as_slice())
    );
    // "Apply to all": one answer for every file waiting for one; renamed past the name taken.
    let third = dir.path().join("third").join("same");
    let newest = vec![("b.txt", bytes(300, 600)), ("c.txt", bytes(301, 601))];
    write_files(&third, &newest);
    engine.enqueue(std::slice::from_ref(&third)).await.unwrap();
    within(120, "the third upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(engine.decide(None, OnConflict::Rename).await.unwrap(), 2);
    let summary = within(120, "the renamed upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(
        stored("b (2).txt").await.as_deref(),
        Some(newest[0].1.as_slice())
    );
    assert_eq!(
        stored("c (1).txt").await.as_deref(),
        Some(newest[1].1.as_slice())
    );
    assert_eq!(stored("c.txt").await.as_deref(), Some(old[2].1.as_slice()));
}
