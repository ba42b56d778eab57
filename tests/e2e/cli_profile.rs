//! What the `ferry` command accepts as an app server: https://, or http:// to this computer;
//! plain http:// to another computer only when explicitly allowed — and then it is tried.

use std::process::{Command, Stdio};

use ferry_tests::{ferry_as, ferry_bin, succeeds};

fn login(server: &str, extra: &[&str]) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(ferry_bin())
        .args([
            "--data-dir",
            data.path().to_str().unwrap(),
            "--memory-keychain",
        ])
        .args(["--server", server])
        .args(extra)
        .args(["login", "alice"])
        .env("FERRY_PASSWORD", "not sent anywhere")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn plain_http_to_another_computer_is_refused_before_anything_is_sent() {
    // 192.0.2.1 is TEST-NET-1: nothing answers there, so an attempt would show as a network
    // error, not as the refusal.
    let refused = login("http://192.0.2.1:8480", &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("[insecure_server]"), "{stderr}");
    assert!(stderr.contains("https://"), "says what to use: {stderr}");

    let invalid = login("ftp://files.example.com", &[]);
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("[invalid_server]"));

    // Allowed on purpose: it is tried (and fails to connect, in a bounded time).
    let allowed = login("http://127.0.0.1:9", &[]);
    assert!(
        String::from_utf8_lossy(&allowed.stderr).contains("[network]"),
        "loopback http:// is tried: {}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let started = std::time::Instant::now();
    let tried = login("http://192.0.2.1:8480", &["--allow-insecure-http"]);
    let stderr = String::from_utf8_lossy(&tried.stderr);
    assert!(!stderr.contains("insecure_server"), "{stderr}");
    assert!(stderr.contains("[network]"), "{stderr}");
    assert!(started.elapsed().as_secs() < 30, "gives up in bounded time");
}

/// History names the computer as the OS knows it, not as a `HOSTNAME` variable says (apps
/// started from a desktop or at login have none, or an inherited one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_names_the_computer_as_the_os_knows_it() {
    let server = ferry_tests::TestServer::start().await;
    let password = server.add_user("alice", ferry_protocol::Role::User);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("named.txt");
    std::fs::write(&file, b"from this computer").unwrap();
    let mut command = ferry_as(&server, &dir.path().join("data"), "alice", &password);
    command
        .env("HOSTNAME", "not-this-computer")
        .arg("upload")
        .arg(&file);
    succeeds(command).await;
    let uname = Command::new("uname").arg("-n").output().unwrap();
    let computer = String::from_utf8_lossy(&uname.stdout).trim().to_owned();
    let page = server.history("alice", &password).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].device.as_deref(), Some(computer.as_str()));
}
