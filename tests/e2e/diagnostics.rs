//! The diagnostics zip a user sends for help: the journal summary and the logs, with every
//! secret the engine holds redacted — even ones a log line leaked.

use std::io::{Read, Write};

use ferry_engine::diagnostics::LogFile;
use std::path::Path;

use ferry_engine::journal::{FileState, NewFile, Owner};
use ferry_tests::{Alice, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_explain_failures_and_hold_no_secret_even_one_a_log_leaked() {
    let Alice {
        server: _server,
        password,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let data = dir.path().join("data");
    let (kept, gone) = (dir.path().join("kept.txt"), dir.path().join("gone.txt"));
    std::fs::write(&kept, "kept").unwrap();
    std::fs::write(&gone, "gone").unwrap();
    engine.enqueue(&[kept, gone.clone()]).await.unwrap();
    std::fs::remove_file(&gone).unwrap();
    let summary = within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    assert_eq!((summary.confirmed, summary.failed), (1, 1), "{summary:?}");

    // A grant held earlier and replaced since: its secret is left out too, even bare.
    let earlier = engine.credentials().current().await.unwrap();
    let owner = engine.session().owner().unwrap();
    let grant = engine
        .credentials()
        .after_rejection(&owner, &earlier.access_key_id)
        .await
        .unwrap();
    assert_ne!(grant.secret_access_key, earlier.secret_access_key);
    let token = engine.session().token().unwrap().expose().to_owned();
    // A proxy named with a password since (its password kept in memory by the engine).
    let proxy_password = "proxy-pass-8131".to_owned();
    let proxy = ferry_engine::network::ManualProxy {
        url: "http://127.0.0.1:9".into(),
        user: Some("proxy-user".into()),
        password: Some(ferry_engine::secret::Secret::new(proxy_password.clone())),
    };
    engine
        .set_network(&ferry_engine::network::Network {
            proxy: ferry_engine::network::ProxyChoice::Manual(proxy),
            extra_ca: None,
        })
        .unwrap();
    // …and no proxy since: the one used before is still left out (the logs may hold it).
    engine
        .set_network(&ferry_engine::network::Network::default())
        .unwrap();
    let secrets = [
        ("the session token", token.clone()),
        ("the storage secret", grant.secret_access_key.clone()),
        ("the security token", grant.security_token.clone()),
        ("the password", password.clone()),
        (
            "an earlier grant's secret",
            earlier.secret_access_key.clone(),
        ),
        ("the proxy's password", proxy_password.clone()),
    ];
    // A log that leaked them, in the shapes they travel in.
    let mut log = LogFile::new(&data);
    writeln!(log, "INFO upload finished: kept.txt").unwrap();
    writeln!(log, "DEBUG replaced {}", earlier.secret_access_key).unwrap();
    writeln!(log, "DEBUG session {token} refreshed").unwrap();
    writeln!(
        log,
        "DEBUG grant {{\"secret_access_key\":\"{}\"}}",
        grant.secret_access_key
    )
    .unwrap();
    writeln!(log, "DEBUG x-amz-security-token: {}", grant.security_token).unwrap();
    writeln!(log, "DEBUG proxy login proxy-user/{proxy_password} refused").unwrap();
    writeln!(
        log,
        "DEBUG sign-in {{\"username\":\"alice\",\"password\":\"{password}\"}}"
    )
    .unwrap();
    log.flush().unwrap();

    // Another account's failed file on the same computer is not this user's to send.
    let bob = Owner {
        user_id: owner.user_id + 1,
        user_name: "bob".into(),
        ..owner.clone()
    };
    let theirs = NewFile {
        path: Path::new("/elsewhere/bobs-private-report.pdf"),
        key: "bobs-private-report.pdf",
        name: "bobs-private-report.pdf",
        size: Some(1),
        mtime_ns: Some(1),
        on_conflict: ferry_engine::conflict::OnConflict::Ask,
    };
    let id = engine.journal().add(&bob, &theirs, None).unwrap();
    assert!(
        engine
            .journal()
            .set_state(id, FileState::Queued, FileState::Uploading)
            .unwrap()
    );
    engine
        .journal()
        .fail(id, "storage", "refused", None)
        .unwrap();

    let out = dir.path().join("ferry-diagnostics.zip");
    engine.save_diagnostics(&data, &out).await.unwrap();

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        entries.push((entry.name().to_owned(), text));
    }
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["summary.txt", "logs/ferry.log"]);
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is a real secret");
        for (name, text) in &entries {
            assert!(
                !text.contains(secret.as_str()),
                "{what} is in {name}:\n{text}"
            );
        }
    }
    let (summary, log) = (&entries[0].1, &entries[1].1);
    assert!(summary.contains("Signed in as alice"), "{summary}");
    let failed = engine
        .files(10)
        .unwrap()
        .into_iter()
        .find(|f| f.state == FileState::Failed && f.name == "gone.txt")
        .unwrap();
    let line = format!(
        "#{} gone.txt [failed] {}",
        failed.id,
        failed.error_code.unwrap()
    );
    assert!(summary.contains(&line), "{line} in:\n{summary}");
    assert!(!summary.contains("bobs-private-report"), "{summary}");
    assert!(log.contains("upload finished: kept.txt"), "{log}");
    assert_eq!(log.matches("[redacted]").count(), 6, "{log}");
}

/// Runs `ferry diagnostics OUT` on `data` against `server` (memory keychain); the zip's
/// summary.
async fn cli_diagnostics(
    data: &Path,
    server: &str,
    out: &Path,
    proxy_password: Option<&str>,
) -> (String, zip::ZipArchive<std::fs::File>) {
    let mut command = std::process::Command::new(ferry_tests::ferry_bin());
    command
        .env("FERRY_DATA_DIR", data)
        .env("FERRY_SERVER", server)
        .env("FERRY_MEMORY_KEYCHAIN", "true");
    if let Some(password) = proxy_password {
        // (Given as it would be to `ferry watch`, without naming the proxy here.)
        command.env("FERRY_PROXY_PASSWORD", password);
    }
    command.arg("diagnostics").arg(out);
    let output = ferry_tests::succeeds(command).await;
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("diagnostics written to"), "{said}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(out).unwrap()).unwrap();
    let mut summary = String::new();
    zip.by_name("summary.txt")
        .unwrap()
        .read_to_string(&mut summary)
        .unwrap();
    (summary, zip)
}

/// `ferry diagnostics` from the command line, where help is most needed: the app server cannot
/// be reached and nobody is signed in. The zip says so and holds the log of the run before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_diagnostics_signed_out_and_offline() {
    let server = ferry_tests::TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A first run that fails (wrong password) leaves its warning in the log.
    let mut login = ferry_tests::ferry_as(&server, &data, "nobody", "wrong-password");
    login.arg("upload").arg(dir.path());
    let failed = tokio::task::spawn_blocking(move || login.output().unwrap())
        .await
        .unwrap();
    assert!(!failed.status.success());
    // Told once on stderr, in the CLI's words; the log line is for the file only.
    let told = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(told.matches("error").count(), 1, "{told}");
    assert!(!told.contains("the command failed"), "{told}");
    drop(server);
    // A proxy password a log leaked: left out when the command is given it.
    let proxy_password = "proxy-pass-2207";
    let mut leaked = LogFile::new(&data);
    writeln!(leaked, "DEBUG proxy login proxy-user/{proxy_password}").unwrap();
    leaked.flush().unwrap();
    let out = dir.path().join("help.zip");
    let (summary, mut zip) =
        cli_diagnostics(&data, "http://127.0.0.1:9", &out, Some(proxy_password)).await;
    assert!(summary.contains("Not signed in"), "{summary}");
    assert!(!summary.contains("wrong-password"), "{summary}");
    let mut log = String::new();
    zip.by_name("logs/ferry.log")
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("the command failed"),
        "the failed run is in the log: {log}"
    );
    assert!(!log.contains("wrong-password"), "{log}");
    assert!(!log.contains(proxy_password), "{log}");
    assert!(log.contains("proxy-user/[redacted]"), "{log}");
}

/// `ferry diagnostics` while the app (or `ferry watch`) runs on the same data dir — when help
/// is needed most: it reads the journal without taking it, and the engine goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_diagnostics_while_the_app_holds_the_data_dir() {
    let Alice {
        server,
        dir,
        engine,
        ..
    } = Alice::start(|_| {}).await;
    let data = dir.path().join("data");
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "a").unwrap();
    engine.enqueue(&[file]).await.unwrap();
    within(60, "the run", engine.run_until_idle())
        .await
        .unwrap();
    let out = dir.path().join("help.zip");
    let (summary, _) = cli_diagnostics(&data, &server.api, &out, None).await;
    // This process's memory keychain holds no session: nobody's files are listed.
    assert!(
        summary.contains("Not signed in: no files are listed"),
        "{summary}"
    );
    // The engine still holds its data dir and works.
    assert!(engine.journal().file(1).unwrap().is_some());
}
