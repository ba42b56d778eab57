//! `ferry watch` and the desktop app share one list of watched folders, the engine's: a folder
//! the app keeps is watched by `ferry watch` with no folder given, a folder `ferry watch DIR`
//! is given is kept for the app too, `ferry folders` lists them and `ferry unwatch` forgets one.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ferry_engine::conflict::OnConflict;
use ferry_engine::watch::Folder;
use ferry_protocol::{Role, UploadStatus};
use ferry_tests::{TestServer, ferry_as, succeeds};

/// `ferry ARGS` for alice on `data`, running (its output dropped).
fn running(server: &TestServer, data: &Path, password: &str, args: &[&Path]) -> Child {
    let mut command = ferry_as(server, data, "alice", password);
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().expect("ferry starts")
}

/// Waits (at most 60 s) until alice's history has `key` confirmed.
async fn confirmed(server: &TestServer, password: &str, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = server.history("alice", password).await;
        let done = page
            .items
            .iter()
            .any(|r| r.key.ends_with(key) && r.status == UploadStatus::Confirmed);
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "{key} never confirmed: {page:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `ferry folders` prints, one folder a line.
async fn folders(server: &TestServer, data: &Path, password: &str) -> Vec<String> {
    let mut command = ferry_as(server, data, "alice", password);
    command.arg("folders");
    let output = succeeds(command).await;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_watch_and_the_app_share_one_list_of_watched_folders() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let real = |name: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        folder.canonicalize().unwrap()
    };
    let (kept, given, elsewhere) = (real("kept"), real("given"), real("elsewhere"));

    // Kept by the app (the engine's API, as the desktop calls it).
    let (app, _) = ferry_tests::engine(&server, &data, "alice", &password, |_| {}).await;
    app.add_folder(Folder {
        path: kept.clone(),
        prefix: "kept/".into(),
        excludes: Vec::new(),
        on_conflict: OnConflict::Ask,
    })
    .await
    .unwrap();
    app.close().await;

    // `ferry watch` with no folder watches it, under the prefix the app kept it with.
    let watching = running(&server, &data, &password, &[Path::new("watch")]);
    std::fs::write(kept.join("from-the-app.txt"), "kept by the app").unwrap();
    confirmed(&server, &password, "/kept/from-the-app.txt").await;
    stop(watching);

    // `ferry watch DIR` keeps DIR too, with its prefix.
    let watching = running(
        &server,
        &data,
        &password,
        &[
            Path::new("watch"),
            &given,
            Path::new("--prefix"),
            Path::new("given/"),
        ],
    );
    std::fs::write(given.join("from-the-cli.txt"), "given to ferry watch").unwrap();
    confirmed(&server, &password, "/given/from-the-cli.txt").await;
    stop(watching);

    let listed = folders(&server, &data, &password).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&kept.display().to_string())),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&given.display().to_string()) && l.contains("\"given/\"")),
        "{listed:?}"
    );
    // The app finds what `ferry watch` kept.
    let (app, _) = ferry_tests::engine(&server, &data, "alice", &password, |_| {}).await;
    let paths: Vec<_> = app
        .folders()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.folder.path)
        .collect();
    assert!(paths.contains(&given), "{paths:?}");
    app.close().await;

    // A folder that is not there, or a pattern that is not one: refused, and nothing kept.
    for args in [
        vec![
            "watch".to_owned(),
            dir.path().join("not-there").display().to_string(),
        ],
        vec![
            "watch".to_owned(),
            elsewhere.display().to_string(),
            "--exclude".to_owned(),
            "[".to_owned(),
        ],
    ] {
        let mut refused = ferry_as(&server, &data, "alice", &password);
        refused.args(&args);
        let output = tokio::task::spawn_blocking(move || refused.output().unwrap())
            .await
            .unwrap();
        assert!(!output.status.success(), "{args:?} refused");
    }
    assert_eq!(folders(&server, &data, &password).await.len(), 2);

    // Forgotten by `ferry unwatch`: gone from the list both read.
    let mut unwatch = ferry_as(&server, &data, "alice", &password);
    unwatch.arg("unwatch").arg(&kept);
    succeeds(unwatch).await;
    let listed = folders(&server, &data, &password).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].starts_with(&given.display().to_string()),
        "{listed:?}"
    );
}
