//! An object already at a file's key, against the embedded store: `ferry upload` waits and a
//! run with a choice settles it; an object written while a multipart upload runs is not
//! replaced (the Complete is conditional) and "overwrite" then completes it; a watched
//! folder's rule is kept and applied; a file changed since its upload replaces its own object
//! without asking.

use std::time::{Duration, Instant};

use ferry_engine::conflict::OnConflict;
use ferry_engine::journal::FileState;
use ferry_engine::watch::Folder;
use ferry_protocol::Role;
use ferry_tests::{Alice, StoreClient, TestServer, bytes, ferry_as, within};

const MIB: usize = 1024 * 1024;

/// Runs `command` off the async threads; its exit status, stdout and stderr.
async fn run(mut command: std::process::Command) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output().expect("ferry runs"))
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_upload_waits_for_a_choice_and_a_run_with_one_settles_it() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    // Two computers (data dirs), each with its own report.txt for the same key.
    let (mine, theirs) = (dir.path().join("mine"), dir.path().join("theirs"));
    for (folder, text) in [(&mine, "mine"), (&theirs, "theirs")] {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(folder.join("report.txt"), text).unwrap();
    }
    let mut first = ferry_as(&server, &dir.path().join("data-1"), "alice", &password);
    first.arg("upload").arg(theirs.join("report.txt"));
    let (ok, out, err) = run(first).await;
    assert!(ok, "{out}{err}");
    let upload = |rule: Option<&str>| {
        let mut command = ferry_as(&server, &dir.path().join("data-2"), "alice", &password);
        command.arg("upload").arg(mine.join("report.txt"));
        if let Some(rule) = rule {
            command.args(["--on-conflict", rule]);
        }
        command
    };
    let stored = |key: &'static str| {
        let (server, password) = (&server, &password);
        async move {
            let page = server.history("alice", password).await;
            let row = page.items.iter().find(|r| r.key.ends_with(key)).cloned();
            match row {
                Some(row) => server
                    .server
                    .object_bytes(&row.bucket, &row.key)
                    .await
                    .unwrap(),
                None => None,
            }
        }
    };
    // By default: nothing replaced, the file waits, the run fails and says how to choose.
    let (ok, out, err) = run(upload(None)).await;
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("failed") && out.contains("already at the store"),
        "{out}"
    );
    let path = mine.join("report.txt").display().to_string();
    assert_eq!(out.matches(&path).count(), 1, "the path said once: {out}");
    assert!(
        !err.contains("WARN"),
        "a file waiting for a choice is no warning: {err}"
    );
    assert!(err.contains("--on-conflict"), "{err}");
    assert_eq!(stored("/report.txt").await.as_deref(), Some(&b"theirs"[..]));
    // The same command with a choice settles the waiting file: kept beside theirs.
    let (ok, out, err) = run(upload(Some("rename"))).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("confirmed") && out.contains("report (1).txt"),
        "{out}"
    );
    assert_eq!(stored("/report.txt").await.as_deref(), Some(&b"theirs"[..]));
    assert_eq!(
        stored("/report (1).txt").await.as_deref(),
        Some(&b"mine"[..])
    );
    // A rule that is not one is refused before anything happens.
    let (ok, _, err) = run(upload(Some("replace"))).await;
    assert!(!ok && err.contains("not one of"), "{err}");
}

/// The queue of `alice`'s engine, running.
type Running<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = ferry_engine::Result<ferry_engine::transfer::Summary>>
            + 'a,
    >,
>;

/// Queues `video.bin` (24 MiB of `seed`) on `alice`'s engine and runs the queue until the
/// file's multipart upload is begun (the key was free when it was looked at): the queue still
/// running, the file's bytes, its full key and its id.
async fn begun_upload(alice: &Alice, seed: u64) -> (Running<'_>, Vec<u8>, String, i64) {
    let engine = &alice.engine;
    let file = alice.dir.path().join("video.bin");
    let data = bytes(24 * MIB, seed);
    std::fs::write(&file, &data).unwrap();
    let grant = engine.credentials().current().await.unwrap();
    let key = format!("{}video.bin", grant.prefix);
    let id = engine.enqueue(std::slice::from_ref(&file)).await.unwrap()[0];
    let mut running: Running<'_> = Box::pin(engine.run_until_idle());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            done = &mut running => panic!("finished before the upload was begun: {done:?}"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let row = engine.journal().file(id).unwrap().unwrap();
        if row.upload_id.is_some() {
            return (running, data, key, id);
        }
        assert!(Instant::now() < deadline, "the upload never began");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_written_during_a_multipart_upload_is_kept_until_the_user_says_overwrite() {
    let alice = Alice::start(|c| {
        c.transfer.bandwidth = Some(8 * MIB as u64);
        c.transfer.per_file_parts = 1;
    })
    .await;
    let engine = &alice.engine;
    let grant = engine.credentials().current().await.unwrap();
    // Once the upload is begun, someone else's object lands at the key.
    let (mut running, data, key, id) = begun_upload(&alice, 700).await;
    let put = StoreClient::new((*grant).clone())
        .put(&key, b"theirs".to_vec())
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    within(60, "the upload", &mut running).await.unwrap();
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(
        (row.state, row.error_code.as_deref()),
        (FileState::Failed, Some("exists")),
        "{row:?}"
    );
    assert!(row.upload_id.is_some(), "its parts are kept: {row:?}");
    let stored = || alice.server.server.object_bytes(&grant.bucket, &key);
    assert_eq!(stored().await.unwrap().as_deref(), Some(&b"theirs"[..]));
    // "Overwrite": the parts already at the store are completed, not sent again.
    let sent_before = alice.events.events().len();
    assert_eq!(
        engine
            .decide(Some(&[id]), OnConflict::Overwrite)
            .await
            .unwrap(),
        1
    );
    within(60, "the decided upload", engine.run_until_idle())
        .await
        .unwrap();
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Confirmed, "{row:?}");
    assert!(stored().await.unwrap().as_deref() == Some(data.as_slice()));
    // Parts sent again would show as progress below the whole file.
    let below: Vec<u64> = alice.events.events()[sent_before..]
        .iter()
        .filter_map(|e| match e {
            ferry_engine::events::Event::Progress { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .filter(|bytes| *bytes < data.len() as u64)
        .collect();
    assert!(below.is_empty(), "parts were sent again: {below:?}");
}

/// The file's own bytes land at its key while its multipart upload is under way — what a
/// Complete sent by a run killed before it heard the answer does, processed by the store after
/// the next run looked: the Complete refused for the object there (by the store on S3; by the
/// look before it on OBS, which cannot refuse) finds it is the file's, the file is confirmed
/// once, and the upload it no longer needs is aborted, not left open.
async fn its_own_bytes_landing_during_a_multipart_upload_confirm_it_and_leave_no_upload_open(
    provider: ferry_protocol::Provider,
) {
    // Slow enough (8 s for the file) that the other client's upload, unthrottled, is done
    // well before the engine's Complete, even on a loaded machine.
    let alice = Alice::start(|c| {
        c.transfer.bandwidth = Some(3 * MIB as u64);
        c.transfer.per_file_parts = 1;
        c.grant = ferry_tests::grant_in(provider);
    })
    .await;
    let engine = &alice.engine;
    let grant = engine.credentials().current().await.unwrap();
    assert_eq!(grant.provider, provider);
    let (mut running, data, key, id) = begun_upload(&alice, 701).await;
    // The same bytes in the same parts: the object another upload of this file makes (sent
    // with a grant of the account in S3's dialect, which the test client speaks).
    let s3 = alice
        .server
        .login("alice", &alice.password)
        .await
        .grant()
        .await;
    let store = StoreClient::new(s3);
    let other = store.create_multipart(&key).await;
    let mut parts = Vec::new();
    for (i, chunk) in data.chunks(8 * MIB).enumerate() {
        let number = i as u32 + 1;
        let sent = store
            .upload_part(&key, &other, number, chunk.to_vec())
            .await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        parts.push((number, ferry_tests::md5_hex(chunk)));
    }
    let done = store.complete(&key, &other, &parts).await;
    assert_eq!(done.status, 200, "{}", done.body);
    // (Before the engine's own Complete, which its throttle keeps seconds away: that one is
    // refused for the object there.)
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Uploading, "{row:?}");
    within(60, "the upload", &mut running).await.unwrap();
    let row = engine.journal().file(id).unwrap().unwrap();
    assert_eq!(row.state, FileState::Confirmed, "{row:?}");
    let page = alice.server.history("alice", &alice.password).await;
    let confirmed = page
        .items
        .iter()
        .filter(|r| r.status == ferry_protocol::UploadStatus::Confirmed)
        .count();
    assert_eq!(confirmed, 1, "{:#?}", page.items);
    let stored = alice.server.server.object_bytes(&grant.bucket, &key).await;
    assert!(stored.unwrap().as_deref() == Some(data.as_slice()));
    let open = store.list_uploads("").await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(
        !open.body.contains("<UploadId>"),
        "no multipart upload is left open: {}",
        open.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_own_bytes_landing_during_a_multipart_upload_confirm_it_and_leave_no_upload_open_s3() {
    its_own_bytes_landing_during_a_multipart_upload_confirm_it_and_leave_no_upload_open(
        ferry_protocol::Provider::S3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_own_bytes_landing_during_a_multipart_upload_confirm_it_and_leave_no_upload_open_obs() {
    its_own_bytes_landing_during_a_multipart_upload_confirm_it_and_leave_no_upload_open(
        ferry_protocol::Provider::Obs,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_folders_rule_is_kept_and_applied_and_a_changed_file_updates_its_own_object() {
    let alice = Alice::start(|_| {}).await;
    let (engine, server) = (&alice.engine, &alice.server);
    let folder = alice.dir.path().join("scans");
    std::fs::create_dir(&folder).unwrap();
    let grant = engine.credentials().current().await.unwrap();
    let store = StoreClient::new((*grant).clone());
    let key = |name: &str| format!("{}scans/{name}", grant.prefix);
    assert_eq!(
        store.put(&key("page.txt"), b"theirs".to_vec()).await.status,
        200
    );
    engine
        .add_folder(Folder {
            path: folder.clone(),
            prefix: "scans/".into(),
            excludes: vec![],
            on_conflict: OnConflict::Rename,
        })
        .await
        .unwrap();
    let kept = engine.folders().await.unwrap();
    assert_eq!(kept[0].folder.on_conflict, OnConflict::Rename, "{kept:?}");
    let watcher = engine.watcher();
    engine.watch_saved_folders().await.unwrap();
    let transfer = engine.transfer().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = watcher.run() => panic!("the watcher stopped: {result:?}"),
            result = transfer.run() => panic!("the scheduler stopped: {result:?}"),
        }
    });
    let stored = |name: &str| {
        let (server, bucket, key) = (&server, grant.bucket.clone(), key(name));
        async move { server.server.object_bytes(&bucket, &key).await }
    };
    let until = |name: &'static str, want: &'static [u8]| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stored(name).await.unwrap().as_deref() != Some(want) {
            assert!(Instant::now() < deadline, "{name} never held {want:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    std::fs::write(folder.join("page.txt"), b"scanned").unwrap();
    until("page (1).txt", b"scanned").await;
    assert_eq!(
        stored("page.txt").await.unwrap().as_deref(),
        Some(&b"theirs"[..])
    );
    // Changed since: its own object (page (1).txt) is updated, no third copy made.
    std::fs::write(folder.join("page.txt"), b"scanned again").unwrap();
    until("page (1).txt", b"scanned again").await;
    assert_eq!(stored("page (2).txt").await.unwrap(), None);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_updates_its_own_object_but_not_one_written_over_it_since() {
    let alice = Alice::start(|_| {}).await;
    let engine = &alice.engine;
    let file = alice.dir.path().join("notes.txt");
    let grant = engine.credentials().current().await.unwrap();
    let key = format!("{}notes.txt", grant.prefix);
    let stored = || alice.server.server.object_bytes(&grant.bucket, &key);
    let upload = |text: &'static str| {
        let file = file.clone();
        async move {
            std::fs::write(&file, text).unwrap();
            let id = engine.enqueue(std::slice::from_ref(&file)).await.unwrap()[0];
            within(60, "the upload", engine.run_until_idle())
                .await
                .unwrap();
            engine.journal().file(id).unwrap().unwrap()
        }
    };
    assert_eq!(upload("one").await.state, FileState::Confirmed);
    // Changed: the object at its key is its own earlier version, replaced without asking.
    assert_eq!(upload("two, longer").await.state, FileState::Confirmed);
    assert_eq!(
        stored().await.unwrap().as_deref(),
        Some(&b"two, longer"[..])
    );
    // Someone else writes the key; the file changes again: that object is not its own.
    let put = StoreClient::new((*grant).clone())
        .put(&key, b"theirs".to_vec())
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let row = upload("three, longer still").await;
    assert_eq!(
        (row.state, row.error_code.as_deref()),
        (FileState::Failed, Some("exists")),
        "{row:?}"
    );
    assert_eq!(stored().await.unwrap().as_deref(), Some(&b"theirs"[..]));
}
