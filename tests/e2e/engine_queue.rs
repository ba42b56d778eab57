//! The queue's bookkeeping against the real server: a scheduler that never stalls, uploads that
//! are idempotent, keys that are what the user meant, and nothing left behind in the store.

use std::time::Duration;

use ferry_engine::conflict::OnConflict;
use ferry_engine::events::Event;
use ferry_engine::journal::{FileState, Show};
use ferry_protocol::Role;
use ferry_tests::{Alice, StoreClient, TestServer, bytes, engine, folder_of, within};

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_files_that_end_at_once_never_stall_the_scheduler() {
    let Alice {
        server: _server,
        dir,
        engine,
        ..
    } = Alice::start(|c| {
        c.transfer.files = 8;
    })
    .await;
    // Files that vanish before their upload: each task ends a moment after it starts, which is
    // when a task could finish before the scheduler had recorded it as running.
    let folder = dir.path().join("vanishing");
    std::fs::create_dir(&folder).unwrap();
    for i in 0..3000 {
        std::fs::write(folder.join(format!("f{i}")), b"x").unwrap();
    }
    let ids = engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    let summary = within(120, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.failed, ids.len() as u64, "{summary:?}");
}

/// A long folder's first files are on their way while the rest are still being journaled
/// (`Engine::give`: the journal takes them a few hundred at a time), and a run begun beside
/// it ends only once every file given is journaled and done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_files_of_a_long_folder_start_while_the_rest_are_journaled() {
    let Alice {
        server: _server,
        dir,
        engine,
        events,
        ..
    } = Alice::start(|_| {}).await;
    let count = 3000;
    let folder = folder_of(dir.path(), "long", count as u64, "", |_| b"x".to_vec());
    let started = || {
        events
            .events()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::State {
                        state: FileState::Uploading,
                        ..
                    }
                )
            })
            .count()
    };
    let give = async {
        let given = engine
            .give(std::slice::from_ref(&folder), false, OnConflict::Ask)
            .await
            .unwrap();
        (given, started())
    };
    let ((given, started_meanwhile), summary) = within(300, "the run", async {
        tokio::join!(give, engine.run_until_idle())
    })
    .await;
    let summary = summary.unwrap();
    assert!(
        started_meanwhile > 0,
        "no file started before all {count} were journaled"
    );
    assert_eq!(given.ids.len(), count);
    assert_eq!(summary.confirmed, count as u64, "{summary:?}");
}

/// A file given twice in one go at two keys (a folder and a file of it) gets a row at each,
/// both queued: the second does not replace the first, as a file given again later at another
/// key does. Given so again while both are queued, the same rows go on (none replaced, none
/// added: a second row at a key would send the file there twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_given_at_two_keys_at_once_is_queued_at_both() {
    let Alice {
        server: _server,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let folder = dir.path().join("pair");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("a.txt");
    std::fs::write(&file, b"a").unwrap();
    std::fs::write(folder.join("b.txt"), b"b").unwrap();
    let ids = engine
        .enqueue(&[folder.clone(), file.clone(), folder.clone()])
        .await
        .unwrap();
    let rows = engine.journal().files_with_ids(&ids).unwrap();
    let row = |id: i64| rows.iter().find(|r| r.id == id).expect("its row");
    let keys: Vec<(&str, FileState)> = ids
        .iter()
        .map(|&id| (row(id).key.as_str(), row(id).state))
        .collect();
    assert_eq!(
        keys,
        [
            ("pair/a.txt", FileState::Queued),
            ("pair/b.txt", FileState::Queued),
            ("a.txt", FileState::Queued),
            ("pair/a.txt", FileState::Queued),
            ("pair/b.txt", FileState::Queued),
        ],
        "{ids:?}"
    );
    assert_eq!(ids[0], ids[3], "the same file at the same key is one row");
    // Given again before any was sent (as after a run stopped early): the same rows go on.
    let again = engine
        .enqueue(&[folder.clone(), file.clone(), folder.clone()])
        .await
        .unwrap();
    assert_eq!(again, ids, "the rows already on their way");
    let rows = engine.journal().files_with_ids(&ids).unwrap();
    assert!(
        rows.iter().all(|r| r.state == FileState::Queued),
        "{rows:#?}"
    );
}

/// A file given at two keys that both held other objects went, under "keep both", beside
/// each (`name (1).ext`); given the same way again, both rows are found by the keys given and
/// say the file is there: nothing is sent again, no row is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_kept_beside_other_objects_at_two_keys_is_there_when_given_again() {
    let Alice {
        server,
        password,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let write = |top: &str, content: &[u8]| {
        let folder = dir.path().join(top).join("pair");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("a.txt"), content).unwrap();
        vec![folder.clone(), folder.join("a.txt")]
    };
    // Given under a rule, then run until nothing is left to do.
    let give_and_run = |paths: Vec<std::path::PathBuf>, rule| {
        let engine = &engine;
        async move {
            let given = engine.give(&paths, false, rule).await.unwrap();
            within(60, "the run", engine.run_until_idle())
                .await
                .unwrap();
            given
        }
    };
    // Other bytes at both keys first.
    give_and_run(write("other", b"someone else's"), OnConflict::Overwrite).await;
    let given = write("mine", b"mine");
    let first = give_and_run(given.clone(), OnConflict::Rename).await;
    assert!(first.confirmed_before.is_empty());
    let rows = engine.journal().files_with_ids(&first.ids).unwrap();
    let mut kept: Vec<(&str, FileState)> = rows.iter().map(|r| (r.key.as_str(), r.state)).collect();
    kept.sort_by_key(|&(key, _)| key);
    assert_eq!(
        kept,
        [
            ("a (1).txt", FileState::Confirmed),
            ("pair/a (1).txt", FileState::Confirmed)
        ],
        "{rows:#?}"
    );
    assert_eq!(server.history("alice", &password).await.items.len(), 4);
    let again = give_and_run(given, OnConflict::Rename).await;
    assert_eq!(again.ids, first.ids, "the rows of the first time");
    assert_eq!(
        again.confirmed_before,
        first.ids.iter().copied().collect(),
        "both there already"
    );
    let rows = engine.journal().files_with_ids(&first.ids).unwrap();
    assert!(
        rows.iter().all(|r| r.state == FileState::Confirmed),
        "{rows:#?}"
    );
    // Nothing sent again: the server heard of no upload more.
    assert_eq!(server.history("alice", &password).await.items.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_finished_files_hides_them_and_never_makes_them_upload_again() {
    let Alice {
        server,
        password,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let file = dir.path().join("once.bin");
    std::fs::write(&file, bytes(MIB, 3)).unwrap();
    let first = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    let me = engine.session().owner().unwrap();
    let journal = engine.journal();
    let shown = |show| journal.view(Some(&me), show, 0, 100).unwrap().page;

    assert_eq!(engine.clear_finished().await.unwrap(), 1);
    assert_eq!(shown(Show::All).matching, 0, "out of view");
    assert_eq!(journal.totals(&me).unwrap().count(FileState::Confirmed), 0);

    // Given again unchanged: not sent again, and back in view as it is.
    let again = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    within(60, "the second run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(server.history("alice", &password).await.items.len(), 1);
    let page = shown(Show::All);
    assert_eq!(
        page.rows
            .iter()
            .map(|r| (r.id, r.state))
            .collect::<Vec<_>>(),
        vec![(first[0], FileState::Confirmed)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_an_unchanged_confirmed_file_again_is_a_no_op_unless_forced() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("once.bin");
    std::fs::write(&file, bytes(MIB, 3)).unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    let first = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    let again = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    within(60, "the second run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(again, first, "the confirmed row is reported, no new row");
    assert_eq!(server.history("alice", &password).await.items.len(), 1);

    // Changed: uploaded again.
    std::fs::write(&file, bytes(MIB, 4)).unwrap();
    let changed = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    assert_ne!(changed, first);
    within(60, "the third run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(server.history("alice", &password).await.items.len(), 2);

    // Forced: uploaded again although unchanged.
    let forced = engine
        .enqueue_forced(std::slice::from_ref(&file))
        .await
        .unwrap();
    assert_ne!(forced, changed);
    within(60, "the forced run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(server.history("alice", &password).await.items.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_at_confirmation_says_so() {
    let server = TestServer::start_with(|o| o.session_ttl = Duration::from_secs(3)).await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.bin");
    std::fs::write(&file, bytes(24 * MIB, 8)).unwrap();
    let (engine, events) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        // About five seconds of upload: the grant (fetched at once) outlives the session.
        c.transfer.bandwidth = Some(5 * MIB as u64);
    })
    .await;
    let ids = engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    let result = within(60, "the run", engine.run_until_idle()).await;
    assert!(
        result.as_ref().is_err_and(|e| e.needs_sign_in()),
        "the run ends asking for a sign-in: {result:?}"
    );
    assert!(
        events.events().contains(&Event::SessionExpired),
        "the front end is told the session ended"
    );
    let row = engine.journal().file(ids[0]).unwrap().unwrap();
    assert_eq!(
        row.state,
        FileState::Uploaded,
        "stored, waiting to be confirmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_with_dot_segments_give_clean_keys_and_clashing_keys_are_refused() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("album");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("a.txt"), b"a").unwrap();
    // The same name twice: composed and decomposed é, one key after NFC.
    std::fs::write(folder.join("caf\u{e9}.txt"), b"composed").unwrap();
    std::fs::write(folder.join("cafe\u{301}.txt"), b"decomposed").unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    // `album/sub/..` is `album`: keys start at `album/`, never with `..`.
    let ids = engine
        .enqueue(&[folder.join("sub").join("..")])
        .await
        .unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let rows: Vec<_> = ids
        .iter()
        .map(|id| engine.journal().file(*id).unwrap().unwrap())
        .collect();
    for row in &rows {
        assert!(
            row.key.starts_with("album/") && !row.key.contains(".."),
            "{}",
            row.key
        );
    }
    let conflicts: Vec<_> = rows
        .iter()
        .filter(|r| r.error_code.as_deref() == Some("key_conflict"))
        .collect();
    assert_eq!(conflicts.len(), 1, "{rows:?}");
    assert_eq!(conflicts[0].state, FileState::Skipped);
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 2, "a.txt and one café.txt");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_inside_a_dropped_folder_are_not_followed() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("id_rsa");
    std::fs::write(&secret, b"-----BEGIN PRIVATE KEY-----").unwrap();
    let folder = dir.path().join("dropped");
    std::fs::create_dir_all(folder.join("deep/er")).unwrap();
    std::fs::write(folder.join("plain.txt"), b"fine").unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("key")).unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("deep/er/key")).unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "alice",
        &password,
        |_| {},
    )
    .await;
    engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let page = server.history("alice", &password).await;
    let keys: Vec<&str> = page.items.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with("dropped/plain.txt"));
    // A link given on purpose is followed.
    engine.enqueue(&[folder.join("key")]).await.unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(server.history("alice", &password).await.items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_stops_the_progress_reporter_and_a_new_key_aborts_the_old_upload() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("set");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("big.bin");
    std::fs::write(&file, bytes(40 * MIB, 12)).unwrap();
    // Every holder of the event sink is counted: a reporter left running keeps one.
    let events = ferry_tests::Recorder::default();
    let sink = events.sink();
    let (engine, _) = engine(&server, &dir.path().join("data"), "alice", &password, |c| {
        c.transfer.bandwidth = Some(16 * MIB as u64);
        c.events = sink.clone();
    })
    .await;
    let idle_holders = std::sync::Arc::strong_count(&sink);
    let ids = engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        std::sync::Arc::strong_count(&sink) > idle_holders,
        "a reporter runs while uploading"
    );
    engine.transfer().pause(Some(&ids)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        std::sync::Arc::strong_count(&sink),
        idle_holders,
        "the upload's reporter ended with it"
    );
    let progress = || {
        events
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Progress { .. }))
            .count()
    };
    let seen = progress();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(progress(), seen, "no progress while paused");
    runner.abort();
    let _ = runner.await;

    // The same file given alone now has another key (`big.bin`, not `set/big.bin`): the old
    // multipart upload is aborted, not left behind in the store.
    engine.enqueue(std::slice::from_ref(&file)).await.unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let grant = engine.credentials().current().await.unwrap();
    let store = StoreClient::new((*grant).clone());
    let open = store.list_uploads("").await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(
        !open.body.contains("<UploadId>"),
        "no multipart upload is left: {}",
        open.body
    );
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    assert!(page.items[0].key.ends_with("/big.bin") && !page.items[0].key.contains("set/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_file_is_started_and_confirmed_once_even_when_its_task_ends_while_the_queue_is_read() {
    let Alice {
        server: _server,
        dir,
        engine,
        events,
        ..
    } = Alice::start(|_| {}).await;
    // Many small files at once: confirmations end all the time while the scheduler reads the
    // queue, so a file it read as `uploaded` may have been confirmed by the time it looks.
    let folder = folder_of(dir.path(), "many", 1500, "", |_| b"small".to_vec());
    let ids = engine.enqueue(std::slice::from_ref(&folder)).await.unwrap();
    let summary = within(120, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, ids.len() as u64, "{summary:?}");
    let mut seen = std::collections::HashMap::<(i64, FileState), usize>::new();
    let mut retried = std::collections::HashMap::<i64, usize>::new();
    for event in events.events() {
        match event {
            Event::State { file_id, state, .. } => *seen.entry((file_id, state)).or_default() += 1,
            Event::Retrying {
                file_id: Some(id), ..
            } => *retried.entry(id).or_default() += 1,
            _ => {}
        }
    }
    // Started once, plus once per retry of the whole file; stored and confirmed once.
    for &id in &ids {
        let starts = seen.get(&(id, FileState::Uploading)).copied().unwrap_or(0);
        let retries = retried.get(&id).copied().unwrap_or(0);
        assert!(
            (1..=1 + retries).contains(&starts),
            "file {id} started {starts} times with {retries} retries"
        );
    }
    let twice: Vec<_> = seen
        .iter()
        .filter(|((_, state), n)| {
            matches!(state, FileState::Uploaded | FileState::Confirmed) && **n > 1
        })
        .collect();
    assert!(twice.is_empty(), "told more than once: {twice:?}");
    for id in ids {
        assert_eq!(seen.get(&(id, FileState::Confirmed)), Some(&1), "file {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_failed_files_leaves_the_files_the_user_paused_paused() {
    let Alice {
        server: _server,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let (held, gone) = (dir.path().join("held.txt"), dir.path().join("gone.txt"));
    std::fs::write(&held, b"paused by the user").unwrap();
    std::fs::write(&gone, b"removed before its upload").unwrap();
    let ids = engine.enqueue(&[held.clone(), gone.clone()]).await.unwrap();
    engine.transfer().pause(Some(&ids[..1])).await.unwrap();
    std::fs::remove_file(&gone).unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let state = |id: i64| engine.journal().file(id).unwrap().unwrap().state;
    assert_eq!(
        (state(ids[0]), state(ids[1])),
        (FileState::Paused, FileState::Failed)
    );

    std::fs::write(&gone, b"back again").unwrap();
    engine.transfer().retry(None).await.unwrap();
    within(60, "the retry", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(
        state(ids[1]),
        FileState::Confirmed,
        "the failed file was tried again"
    );
    assert_eq!(
        state(ids[0]),
        FileState::Paused,
        "the paused file stays paused"
    );
}

/// A file sent in one PUT has its fingerprint journaled with its object, not when it was
/// added: one that changed between being added and being sent is, once uploaded, known as it
/// now is — given again unchanged, it is not sent again (its confirmed row answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_after_it_was_added_is_known_as_sent_once_uploaded() {
    let alice = Alice::start(|_| {}).await;
    let path = alice.dir.path().join("grew.txt");
    std::fs::write(&path, b"short").unwrap();
    let engine = &alice.engine;
    let first = engine.enqueue(std::slice::from_ref(&path)).await.unwrap();
    // Changed after it was added, before it is sent (size and modification time).
    std::fs::write(&path, b"a good deal longer than before").unwrap();
    let summary = within(60, "the upload", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!(summary.confirmed, 1);
    let row = engine.journal().file(first[0]).unwrap().unwrap();
    assert_eq!(row.size, Some(30), "{row:?}");
    let again = engine.enqueue(std::slice::from_ref(&path)).await.unwrap();
    assert_eq!(
        again, first,
        "given again unchanged: its confirmed row, no new upload"
    );
}
