//! The `ferry` binary killed with SIGKILL halfway through a 100 MiB upload, then run again: it
//! resumes from the store's part list and re-sends at most the parts that were in flight.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_protocol::{Role, UploadStatus};
use ferry_tests::{TestServer, bytes, expected_etag, ferry_as};

const MIB: u64 = 1024 * 1024;

/// Parts in flight at most in these runs.
const PARTS: u64 = 4;

fn ferry(server: &TestServer, data_dir: &std::path::Path, password: &str) -> Command {
    let mut command = ferry_as(server, data_dir, "alice", password);
    // Four parts in flight at most: the bound below has teeth (a quarter of the file).
    command.env("FERRY_PARTS", PARTS.to_string());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_at_half_then_resume_resends_at_most_the_parts_in_flight() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("hundred.bin");
    let data = bytes(100 * MIB as usize, 77);
    std::fs::write(&file, &data).unwrap();

    let mut child = ferry(&server, &data_dir, &password)
        .env("FERRY_BANDWIDTH", (40 * MIB).to_string())
        .arg("upload")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.server.store_bytes_received() < 50 * MIB {
        assert!(
            Instant::now() < deadline,
            "the first run never reached half"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = server.server.store_bytes_received();
    assert!(first < 100 * MIB, "killed before the end ({first} bytes)");

    let output = tokio::task::spawn_blocking({
        let mut command = ferry(&server, &data_dir, &password);
        command.arg("upload").arg(&file);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("confirmed"));

    let total = server.server.store_bytes_received();
    let resent = total - 100 * MIB;
    // Parts in flight × part size.
    let limit = PARTS * 8 * MIB;
    assert!(resent <= limit, "re-sent {resent} bytes, more than {limit}");
    eprintln!("killed after {first} bytes; re-sent {resent} bytes after the restart");

    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].status, UploadStatus::Confirmed);
    assert_eq!(
        page.items[0].etag,
        expected_etag(&data, 16 * MIB as usize, 8 * MIB as usize)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_is_non_zero_unless_every_file_is_confirmed() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, b"ok").unwrap();
    let data_dir = dir.path().join("data");
    let run = |args: Vec<PathBuf>| {
        let mut command = ferry(&server, &data_dir, &password);
        command.arg("upload").args(args);
        command
    };
    let mut ok = run(vec![good.clone()]);
    let ok = tokio::task::spawn_blocking(move || ok.output().unwrap())
        .await
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut missing = run(vec![good, dir.path().join("nope.txt")]);
    let missing = tokio::task::spawn_blocking(move || missing.output().unwrap())
        .await
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
}
