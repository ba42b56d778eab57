//! One engine per data dir: a second `ferry` that would upload refuses with the holder's pid,
//! while `ferry status` reads the journal without touching what the first one is doing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_protocol::Role;
use ferry_tests::{TestServer, bytes, ferry_bin};

const MIB: u64 = 1024 * 1024;

fn ferry(server: &TestServer, data_dir: &std::path::Path, password: &str) -> Command {
    let mut command = Command::new(ferry_bin());
    command
        .env("FERRY_DATA_DIR", data_dir)
        .env("FERRY_SERVER", &server.api)
        .env("FERRY_MEMORY_KEYCHAIN", "true")
        .env("FERRY_USER", "alice")
        .env("FERRY_PASSWORD", password)
        .stdin(Stdio::null());
    command
}

async fn output(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_uploader_on_the_same_data_dir_is_refused_and_status_changes_nothing() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("slow.bin");
    std::fs::write(&file, bytes(48 * MIB as usize, 5)).unwrap();

    let mut first = ferry(&server, &data_dir, &password)
        .env("FERRY_BANDWIDTH", (8 * MIB).to_string())
        .arg("upload")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.server.store_bytes_received() < 4 * MIB {
        assert!(Instant::now() < deadline, "the first upload never started");
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut second = ferry(&server, &data_dir, &password);
    second.arg("upload").arg(&file);
    let second = output(second).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second uploader must not run");
    assert!(
        stderr.contains("data_dir_in_use") && stderr.contains(&first.id().to_string()),
        "names the holder: {stderr}"
    );

    for round in 0..2 {
        let mut status = ferry(&server, &data_dir, &password);
        status.arg("status");
        let status = output(status).await;
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        assert!(
            text.lines().any(|l| l.starts_with("uploading")),
            "round {round}: status shows the running upload as uploading: {text}"
        );
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run carries on"
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

/// `ferry status` reads and changes nothing — the log file included (it may run every few
/// seconds from a script or a shell prompt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_no_log() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut status = ferry(&server, &data_dir, &password);
    status.arg("status");
    let status = output(status).await;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let logs = ferry_engine::diagnostics::log_dir(&data_dir);
    assert!(!logs.exists(), "{} was written", logs.display());
}
