//! One data dir, several accounts: a journal row belongs to the account (server and user) that
//! added it. Nobody else's session uploads or confirms it; it waits for its owner.

use std::time::Duration;

use ferry_engine::journal::{FileState, Waiting};
use ferry_engine::watch::Folder;
use ferry_protocol::Role;
use ferry_tests::{TestServer, bytes, engine, within};

const MIB: usize = 1024 * 1024;

/// Bart's one file waiting for him, as the status counts it.
fn bart_waits() -> Waiting {
    Waiting {
        name: Some("bart".into()),
        server: None,
        files: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_interrupted_upload_never_lands_in_my_prefix() {
    let server = TestServer::start().await;
    let bart_password = server.add_user("bart", Role::User);
    let carol_password = server.add_user("carol", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let barts = dir.path().join("barts.bin");
    std::fs::write(&barts, bytes(40 * MIB, 31)).unwrap();
    let carols = dir.path().join("carols.txt");
    std::fs::write(&carols, b"carol's own file").unwrap();

    // Bart starts a multipart upload and stops halfway (signed out, the app closed).
    let (engine_b, _) = engine(&server, &data, "bart", &bart_password, |c| {
        c.transfer.bandwidth = Some(16 * MIB as u64);
    })
    .await;
    let bart_ids = engine_b
        .enqueue(std::slice::from_ref(&barts))
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(1500), engine_b.run_until_idle()).await;
    engine_b.close().await;
    let bart_id = bart_ids[0];

    // Carol signs in on the same data dir and uploads her own file.
    let (engine_c, _) = engine(&server, &data, "carol", &carol_password, |_| {}).await;
    engine_c
        .enqueue(std::slice::from_ref(&carols))
        .await
        .unwrap();
    within(120, "carol's run", engine_c.run_until_idle())
        .await
        .unwrap();
    let carol_history = server.history("carol", &carol_password).await;
    let keys: Vec<&str> = carol_history.items.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        1,
        "only carol's file in carol's history: {keys:?}"
    );
    assert!(keys[0].ends_with("carols.txt"), "{keys:?}");
    let row = engine_c.journal().file(bart_id).unwrap().unwrap();
    assert!(
        !row.state.is_final() && row.state != FileState::Uploaded,
        "bart's file waits for bart: {:?}",
        row.state
    );
    let status = engine_c.status().await.unwrap();
    assert_eq!(
        status.waiting_for_others,
        vec![bart_waits()],
        "the status says whose files wait"
    );
    engine_c.close().await;

    // Bart comes back: his file resumes and lands in his prefix.
    let (engine_b, _) = engine(&server, &data, "bart", &bart_password, |_| {}).await;
    within(120, "bart's run", engine_b.run_until_idle())
        .await
        .unwrap();
    let bart_history = server.history("bart", &bart_password).await;
    assert_eq!(bart_history.items.len(), 1);
    assert!(bart_history.items[0].key.ends_with("barts.bin"));
    assert_eq!(
        engine_b.journal().file(bart_id).unwrap().unwrap().state,
        FileState::Confirmed
    );
    assert_eq!(
        server.history("carol", &carol_password).await.items.len(),
        1,
        "carol's history is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_confirmed_for_one_account_is_still_uploaded_for_another() {
    let server = TestServer::start().await;
    let bart_password = server.add_user("bart", Role::User);
    let carol_password = server.add_user("carol", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let folder = dir.path().join("shared");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("report.txt"), b"both of them want this").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(folder.join("report.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    for (user, password) in [("bart", &bart_password), ("carol", &carol_password)] {
        let (engine, _) = engine(&server, &data, user, password, |_| {}).await;
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
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server.history(user, password).await.items.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{user}'s copy was never uploaded"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        task.abort();
        let _ = task.await;
        engine.close().await;
    }
    for (user, password) in [("bart", &bart_password), ("carol", &carol_password)] {
        let page = server.history(user, password).await;
        assert_eq!(page.items.len(), 1, "{user}: {:?}", page.items);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_another_account_mid_upload_keeps_each_files_in_its_own_prefix() {
    let server = TestServer::start().await;
    let bart_password = server.add_user("bart", Role::User);
    let carol_password = server.add_user("carol", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let barts = dir.path().join("barts.bin");
    std::fs::write(&barts, bytes(40 * MIB, 61)).unwrap();
    let carols = dir.path().join("carols.txt");
    std::fs::write(&carols, b"carol's").unwrap();
    let (engine, _) = engine(
        &server,
        &dir.path().join("data"),
        "bart",
        &bart_password,
        |c| {
            c.transfer.bandwidth = Some(16 * MIB as u64);
        },
    )
    .await;
    engine.enqueue(std::slice::from_ref(&barts)).await.unwrap();
    let transfer = engine.transfer().clone();
    let runner = tokio::spawn(async move { transfer.run().await });
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Carol signs in on the running engine while bart's parts are in flight.
    engine
        .sign_in(
            "carol",
            &ferry_engine::secret::Secret::new(carol_password.clone()),
            "test-device",
        )
        .await
        .unwrap();
    engine.enqueue(std::slice::from_ref(&carols)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server
        .history("carol", &carol_password)
        .await
        .items
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "carol's file never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    runner.abort();
    let _ = runner.await;

    let carol_keys: Vec<String> = server
        .history("carol", &carol_password)
        .await
        .items
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(carol_keys.len(), 1, "{carol_keys:?}");
    assert!(carol_keys[0].ends_with("/carols.txt"));
    assert!(
        server
            .history("bart", &bart_password)
            .await
            .items
            .is_empty(),
        "bart's upload stopped mid-way; nothing of it is in anyone's history yet"
    );
    assert_eq!(
        engine.status().await.unwrap().waiting_for_others,
        [bart_waits()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_kept_in_the_keychain_is_used_only_by_its_own_account() {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(4)).await;
    let bart_password = server.add_user("bart", Role::User);
    let carol_password = server.add_user("carol", Role::User);
    let dir = tempfile::tempdir().unwrap();
    // Two front ends with their own data dirs and one keychain, like the desktop app and a
    // `ferry` command of the same desktop user.
    let keychain: std::sync::Arc<dyn ferry_engine::keychain::Keychain> =
        std::sync::Arc::new(ferry_engine::keychain::MemoryKeychain::default());
    let shared = |c: &mut ferry_engine::EngineConfig| c.keychain = keychain.clone();
    let (bart, _) = engine(
        &server,
        &dir.path().join("a"),
        "bart",
        &bart_password,
        shared,
    )
    .await;
    let (carol, _) = engine(
        &server,
        &dir.path().join("b"),
        "carol",
        &carol_password,
        shared,
    )
    .await;
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, name.as_bytes()).unwrap();
        path
    };
    // Bart's grant is fetched (and kept) after carol signed in.
    bart.enqueue(&[file("bart-1.txt")]).await.unwrap();
    within(60, "bart's upload", bart.run_until_idle())
        .await
        .unwrap();
    carol.enqueue(&[file("carol-1.txt")]).await.unwrap();
    within(60, "carol's upload", carol.run_until_idle())
        .await
        .unwrap();
    // And again once both grants have been replaced.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bart.enqueue(&[file("bart-2.txt")]).await.unwrap();
    within(60, "bart's upload", bart.run_until_idle())
        .await
        .unwrap();
    carol.enqueue(&[file("carol-2.txt")]).await.unwrap();
    within(60, "carol's upload", carol.run_until_idle())
        .await
        .unwrap();

    for (user, password, mine) in [
        ("bart", &bart_password, ["bart-1.txt", "bart-2.txt"]),
        ("carol", &carol_password, ["carol-1.txt", "carol-2.txt"]),
    ] {
        let mut keys: Vec<String> = server
            .history(user, password)
            .await
            .items
            .into_iter()
            .map(|r| r.key.rsplit('/').next().unwrap().to_owned())
            .collect();
        keys.sort();
        assert_eq!(keys, mine, "{user}'s history holds exactly {user}'s files");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_folders_belong_to_the_account_that_added_them() {
    let server = TestServer::start().await;
    let bart_password = server.add_user("bart", Role::User);
    let carol_password = server.add_user("carol", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let barts = dir.path().join("barts-folder");
    std::fs::create_dir(&barts).unwrap();
    let (engine, _) = engine(&server, &data, "bart", &bart_password, |_| {}).await;
    engine
        .add_folder(Folder {
            path: barts.clone(),
            on_conflict: ferry_engine::conflict::OnConflict::Ask,
            prefix: String::new(),
            excludes: vec![],
        })
        .await
        .unwrap();
    let duplicate = engine
        .add_folder(Folder {
            path: barts.clone(),
            on_conflict: ferry_engine::conflict::OnConflict::Ask,
            prefix: String::new(),
            excludes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), "duplicate");
    // Carol signs in on the same running engine: bart's folder is no longer watched, and
    // carol's kept folders (none) are what is watched now.
    engine
        .sign_in(
            "carol",
            &ferry_engine::secret::Secret::new(carol_password.clone()),
            "test-device",
        )
        .await
        .unwrap();
    engine.watch_saved_folders().await.unwrap();
    assert!(engine.folders().await.unwrap().is_empty());
    assert!(
        engine.watcher().status().is_empty(),
        "nothing of bart's is watched"
    );
    let watcher = engine.watcher();
    let transfer = engine.transfer().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = watcher.run() => panic!("the watcher stopped: {result:?}"),
            result = transfer.run() => panic!("the scheduler stopped: {result:?}"),
        }
    });
    std::fs::write(barts.join("private.txt"), b"bart's alone").unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    task.abort();
    let _ = task.await;
    assert!(
        server
            .history("carol", &carol_password)
            .await
            .items
            .is_empty()
    );
    engine.close().await;

    // Bart is back: his folder is his, and its file arrives in his prefix.
    let (engine, _) = ferry_tests::engine(&server, &data, "bart", &bart_password, |_| {}).await;
    engine.watch_saved_folders().await.unwrap();
    assert_eq!(engine.folders().await.unwrap().len(), 1);
    let watcher = engine.watcher();
    let transfer = engine.transfer().clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = watcher.run() => panic!("the watcher stopped: {result:?}"),
            result = transfer.run() => panic!("the scheduler stopped: {result:?}"),
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server
        .history("bart", &bart_password)
        .await
        .items
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "bart's file never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
    assert!(
        server
            .history("carol", &carol_password)
            .await
            .items
            .is_empty()
    );
}
