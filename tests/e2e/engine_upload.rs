//! The engine against the real server and store: sizes, credential refresh, a file rewritten
//! mid-upload, the server going away, the session ending, bad input, secrets on disk.

use std::time::Duration;

use ferry_engine::events::Event;
use ferry_engine::journal::FileState;
use ferry_protocol::{Role, UploadStatus};
use ferry_tests::{Alice, TestServer, bytes, engine, expected_etag, within};

const MIB: usize = 1024 * 1024;
const THRESHOLD: usize = 16 * MIB;
const PART: usize = 8 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_size_arrive_intact_and_are_confirmed_once() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("batch");
    std::fs::create_dir(&files).unwrap();
    let sizes = [0, 1024, 5 * MIB - 1, THRESHOLD, 40 * MIB];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = bytes(*size, i as u64 + 100);
        let name = format!("file-{size}.bin");
        std::fs::write(files.join(&name), &data).unwrap();
        expected.push((
            format!("batch/{name}"),
            *size as u64,
            expected_etag(&data, THRESHOLD, PART),
        ));
    }
    let (engine, events) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&files)).await.unwrap();
    assert_eq!(ids.len(), sizes.len());
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, sizes.len() as u64);

    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), sizes.len(), "one row per file");
    for (key, size, etag) in expected {
        let row = page
            .items
            .iter()
            .find(|r| r.key.ends_with(&key))
            .unwrap_or_else(|| panic!("{key}"));
        assert_eq!((row.size, &row.etag), (size, &etag), "{key}");
        assert_eq!(row.status, UploadStatus::Confirmed);
        assert_eq!(row.device.as_deref(), Some("test-device"));
    }
    for id in ids {
        assert_eq!(
            engine.journal().file(id).unwrap().unwrap().state,
            FileState::Confirmed
        );
    }
    let progress = events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Progress { .. }))
        .count();
    assert!(progress > 0, "progress was reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_credentials_refresh_during_a_throttled_upload() {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(3)).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sixty.bin");
    let data = bytes(60 * MIB, 7);
    std::fs::write(&file, &data).unwrap();
    // Two parts at a time: later parts start after earlier grants ran out (a request is
    // signed as it starts; one that is already streaming is not re-signed).
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
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
    let refreshes = events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::CredentialsRefreshed { .. }))
        .count();
    assert!(
        refreshes >= 3,
        "the first grant and at least two refreshes, saw {refreshes}"
    );
    let failures = events
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::State {
                    state: FileState::Failed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failures, 0, "no failure visible to the user");
    let page = server.history("alice", &password).await;
    assert_eq!(page.items[0].etag, expected_etag(&data, THRESHOLD, PART));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_mid_upload_ends_up_as_its_final_content() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moving.bin");
    std::fs::write(&file, bytes(32 * MIB, 1)).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(16 * MIB as u64);
    })
    .await;
    engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let rewrite = {
        let file = file.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let data = bytes(24 * MIB, 2);
            std::fs::write(&file, &data).unwrap();
            data
        })
    };
    let summary = within(180, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    let final_data = rewrite.await.unwrap();
    assert_eq!(summary.confirmed, 1);
    let page = server.history("alice", &password).await;
    let confirmed: Vec<_> = page
        .items
        .iter()
        .filter(|r| r.status == UploadStatus::Confirmed)
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].size, final_data.len() as u64);
    assert_eq!(
        confirmed[0].etag,
        expected_etag(&final_data, THRESHOLD, PART)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_mid_upload_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let api_addr = server.api.trim_start_matches("http://").parse().unwrap();
    let store_addr = server
        .server
        .store_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let file = dir.path().join("forty.bin");
    let data = bytes(40 * MIB, 9);
    std::fs::write(&file, &data).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(20 * MIB as u64);
    })
    .await;
    engine.enqueue(&[file]).await.unwrap();

    let TestServer {
        server: running,
        dir: server_dir,
        api,
    } = server;
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        running.stop().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut options = ferry_server::ServeOptions::new(server_dir.path());
        options.listen = api_addr;
        options.store_listen = store_addr;
        let server = ferry_server::Server::start(options)
            .await
            .expect("restart on the same ports");
        TestServer {
            server,
            dir: server_dir,
            api,
        }
    });
    let summary = within(180, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    let server = restart.await.unwrap();
    assert_eq!(summary.confirmed, 1);
    assert!(
        server.server.store_bytes_received() > 0,
        "the upload went on after the restart"
    );
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].etag, expected_etag(&data, THRESHOLD, PART));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_pauses_the_queue_and_signing_in_continues_it() {
    let server = TestServer::start_with(|o| o.session_ttl = Duration::from_secs(2)).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let (engine, events) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let file = dir.path().join("later.txt");
    std::fs::write(&file, b"after the session ended").unwrap();
    let ids = engine.enqueue(&[file]).await.unwrap();
    let err = within(60, "the run", engine.run_until_idle())
        .await
        .unwrap_err();
    assert!(err.needs_sign_in(), "{err}");
    assert!(events.events().contains(&Event::SessionExpired));
    assert_eq!(
        engine.journal().file(ids[0]).unwrap().unwrap().state,
        FileState::Queued,
        "nothing lost"
    );

    engine
        .sign_in(
            "alice",
            &ferry_engine::secret::Secret::new(password.clone()),
            "test-device",
        )
        .await
        .unwrap();
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_get_a_clear_error_and_the_others_carry_on() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mixed");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("good.txt"), b"fine").unwrap();
    std::fs::write(root.join("gone.txt"), b"deleted before upload").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe.txt");
        std::fs::write(root.join(name), b"name is not UTF-8").unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
        // A FIFO stands in for a file that cannot be read (permissions do not stop root).
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
    }
    let mut deep = root.join("deep");
    while deep.as_os_str().len() < dir.path().as_os_str().len() + 1100 {
        deep = deep.join("d".repeat(200));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("far.txt"), b"too long a key").unwrap();

    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&root)).await.unwrap();
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    within(120, "the run", engine.run_until_idle())
        .await
        .unwrap();

    let rows: Vec<_> = ids
        .iter()
        .map(|id| engine.journal().file(*id).unwrap().unwrap())
        .collect();
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r.path.to_string_lossy().ends_with(n))
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(by_name("good.txt").state, FileState::Confirmed);
    let gone = by_name("gone.txt");
    assert_eq!(
        (gone.state, gone.error_code.as_deref()),
        (FileState::Failed, Some("file_missing"))
    );
    let far = by_name("far.txt");
    assert_eq!(
        (far.state, far.error_code.as_deref()),
        (FileState::Skipped, Some("path_too_long"))
    );
    let fifo = by_name("pipe");
    assert_eq!(
        (fifo.state, fifo.error_code.as_deref()),
        (FileState::Failed, Some("not_a_file"))
    );
    let not_utf8 = rows
        .iter()
        .find(|r| r.error_code.as_deref() == Some("name_not_utf8"));
    assert!(
        not_utf8.is_some(),
        "the non-UTF-8 name is skipped with a reason"
    );
    let link = by_name("loop");
    assert_eq!(
        (link.state, link.error_code.as_deref()),
        (FileState::Skipped, Some("symlink")),
        "the link loop is not followed, and says so"
    );
    assert_eq!(rows.len(), 6, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_data_dir() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (engine, _) = engine(&server, &data_dir, "alice", &password, |_| {}).await;
    let file = dir.path().join("f.txt");
    std::fs::write(&file, b"x").unwrap();
    engine.enqueue(&[file]).await.unwrap();
    within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    let grant = engine.credentials().current().await.unwrap();
    let token = engine.session().token().unwrap();
    let secrets = [
        grant.secret_access_key.as_str(),
        grant.security_token.as_str(),
        token.expose(),
        password.as_str(),
    ];
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&content);
        for secret in secrets {
            assert!(!text.contains(secret), "{} holds a secret", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_corrected_from_the_store() {
    let Alice {
        server: _server,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    // As if this machine's clock were an hour behind the store's.
    let credentials = engine.credentials();
    credentials.correct_clock(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    let file = dir.path().join("skew.txt");
    std::fs::write(&file, b"signed with a corrected clock").unwrap();
    engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    let drift = (credentials.now() - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .abs();
    assert!(
        drift <= 2,
        "offset corrected to the store's clock, drift {drift} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel_keep_or_release_what_was_sent() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep.bin");
    let drop_me = dir.path().join("drop.bin");
    let keep_data = bytes(48 * MIB, 4);
    std::fs::write(&keep, &keep_data).unwrap();
    std::fs::write(&drop_me, bytes(48 * MIB, 5)).unwrap();
    // Four parts at a time, two of each file: both files move together, so the second file
    // is still going when the first has a part stored.
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(24 * MIB as u64);
        c.transfer.files = 2;
        c.transfer.parts = 4;
        c.transfer.per_file_parts = 2;
    })
    .await;
    let ids = engine
        .enqueue(&[keep.clone(), drop_me.clone()])
        .await
        .unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    // Pause once the store has acknowledged at least one part of the kept file.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.journal().file(ids[0]).unwrap().unwrap().bytes_done < PART as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "no part was acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    engine.transfer().pause(Some(&ids[..1])).await.unwrap();
    engine.transfer().cancel(Some(&ids[1..])).await.unwrap();
    assert_eq!(
        engine.journal().file(ids[0]).unwrap().unwrap().state,
        FileState::Paused
    );
    assert_eq!(
        engine.journal().file(ids[1]).unwrap().unwrap().state,
        FileState::Cancelled
    );
    // Bytes already in socket buffers may still arrive; after that, nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_pause = server.server.store_bytes_received();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        server.server.store_bytes_received(),
        after_pause,
        "nothing moves while paused"
    );
    runner.abort();
    let _ = runner.await;
    let kept = engine.journal().file(ids[0]).unwrap().unwrap().bytes_done;
    assert!(
        kept >= PART as u64,
        "parts acknowledged before the pause are kept"
    );

    // The cancelled file's multipart upload is gone from the store; the paused one's is not.
    let grant = engine.credentials().current().await.unwrap();
    let store = ferry_tests::StoreClient::new((*grant).clone());
    let open = store.list_uploads("").await;
    assert_eq!(open.status, 200, "{}", open.body);
    let keys = ferry_tests::s3xml::parse::<ferry_tests::s3xml::UploadList>(&open.body).keys();
    assert!(
        !keys.iter().any(|k| k.ends_with("drop.bin")),
        "aborted: {keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.ends_with("keep.bin")),
        "kept: {keys:?}"
    );

    engine.transfer().resume(None).await.unwrap();
    let summary = within(120, "the resumed upload", engine.run_until_idle())
        .await
        .unwrap();
    let resent = server.server.store_bytes_received() - after_pause;
    assert!(
        resent <= keep_data.len() as u64 - kept,
        "the resumed upload sent {resent} bytes; only {} were missing",
        keep_data.len() as u64 - kept
    );
    assert_eq!(summary.confirmed, 1);
    assert_eq!(
        engine.journal().file(ids[1]).unwrap().unwrap().state,
        FileState::Cancelled,
        "cancel is final"
    );
    let page = server.history("alice", &password).await;
    let row = page
        .items
        .iter()
        .find(|r| r.key.ends_with("keep.bin"))
        .unwrap();
    assert_eq!(row.etag, expected_etag(&keep_data, THRESHOLD, PART));
    assert!(events.events().iter().any(|e| matches!(
        e,
        Event::State {
            state: FileState::Paused,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_that_keeps_moving_is_never_cut_off() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow-link.bin");
    let data = bytes(24 * MIB, 51);
    std::fs::write(&file, &data).unwrap();
    // Each 8 MiB part takes about 6 s at this rate (three share it), three times the stall
    // limit: a limit on the whole request would cut every part off; one on silence does not.
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(4 * MIB as u64);
        c.transfer.stall_timeout = Duration::from_secs(2);
    })
    .await;
    engine.enqueue(&[file]).await.unwrap();
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    let retried = events
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(retried, 0, "nothing was cut off and retried");
    let page = server.history("alice", &password).await;
    assert_eq!(page.items[0].etag, expected_etag(&data, THRESHOLD, PART));
}

/// A file sent from disk (one PUT, 4 MiB) rewritten in place while it goes, keeping its size
/// and modification time and the bytes its fingerprint samples: only the store's digest check
/// can tell. The file starts again and ends stored as its final content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_that_keeps_size_and_time_is_caught_by_the_digest_and_sent_again() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiet.bin");
    let mut data = bytes(4 * MIB, 7);
    std::fs::write(&file, &data).unwrap();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(2 * MIB as u64);
    })
    .await;
    engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let rewrite = {
        let file = file.clone();
        let mut changed = data.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
            // Between the middle 64 KiB (from 2 MiB) and the last: not a sampled byte.
            changed[3 * MIB - 200_000..3 * MIB - 100_000].fill(0xA5);
            std::fs::write(&file, &changed).unwrap();
            let handle = std::fs::File::options().write(true).open(&file).unwrap();
            handle.set_modified(mtime).unwrap();
            changed
        })
    };
    let summary = within(120, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    data = rewrite.await.unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    let page = server.history("alice", &password).await;
    let row = page
        .items
        .iter()
        .find(|r| r.status == UploadStatus::Confirmed)
        .expect("a confirmed row");
    let stored = server
        .server
        .object_bytes(&row.bucket, &row.key)
        .await
        .unwrap();
    assert!(
        stored.as_deref() == Some(data.as_slice()),
        "stored as its final content"
    );
}
