//! The OS keychain for real: a `gnome-keyring-daemon` (Secret Service) inside
//! `dbus-run-session`, used by the `ferry` binary across processes; and what happens without one.

use std::process::{Command, Stdio};

use ferry_protocol::Role;
use ferry_tests::{TestServer, ferry_bin};

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_lives_in_the_secret_service_and_nowhere_on_disk() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&home).unwrap();
    let file = dir.path().join("keychain.txt");
    std::fs::write(&file, b"uploaded with the session from the keychain").unwrap();
    let zip = dir.path().join("help.zip");
    let ferry = ferry_bin();
    let base = format!(
        "{} --data-dir {} --server {}",
        shell_quote(ferry.to_str().unwrap()),
        shell_quote(data.to_str().unwrap()),
        server.api
    );
    // Each `ferry` is its own process: the second and third find the session in the keychain.
    let script = format!(
        r#"set -e
eval "$(printf keyring-pw | gnome-keyring-daemon --unlock --components=secrets)"
FERRY_PASSWORD={password} {base} login alice
echo "--- entries after login"
secret-tool search --all service ferry-dev 2>&1 | grep -c '^\[' || true
{base} upload {file}
echo "--- entries after upload"
secret-tool search --all service ferry-dev 2>&1 | grep -c '^\[' || true
echo "--- status"
{base} status
echo "--- diagnostics"
{base} diagnostics {zip}
echo "--- secrets"
secret-tool search --all service ferry-dev 2>/dev/null | grep '^secret = ' || true
echo "--- end of secrets"
{base} logout
echo "--- entries after logout"
secret-tool search --all service ferry-dev 2>&1 | grep -c '^\[' || true
"#,
        password = shell_quote(&password),
        file = shell_quote(file.to_str().unwrap()),
        zip = shell_quote(zip.to_str().unwrap()),
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["60", "dbus-run-session", "--", "bash", "-c", &script])
            .env("HOME", &home)
            .env("FERRY_LOG", "trace")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .output()
            .expect("dbus-run-session (cargo xtask test installs dbus and gnome-keyring)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("signed in to"), "{stdout}");
    assert!(stdout.contains("confirmed"), "{stdout}");
    let after_login = stdout
        .split("--- entries after login\n")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert_eq!(
        after_login.trim(),
        "1",
        "the session is in the keychain: {stdout}"
    );
    let after_upload = stdout
        .split("--- entries after upload\n")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert_eq!(after_upload.trim(), "2", "and then the grant: {stdout}");
    let after_logout = stdout
        .split("--- entries after logout\n")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert_eq!(after_logout.trim(), "0", "logout removes them: {stdout}");
    // `ferry status` reads the keychain, not the network: who is signed in and when the
    // storage credentials expire.
    let status = stdout.split("--- status\n").nth(1).unwrap();
    assert!(status.contains("account    alice"), "{status}");
    assert!(status.contains("credentials expire at"), "{status}");

    // The password never reaches the data dir or the log (the engine tests check the token and
    // the grant's secret the same way); the ETag is found, so the scan does read the journal.
    let session: ferry_protocol::Session = server.sign_in("alice", &password).await.json(201);
    let mut client = server.anonymous();
    client.token = Some(session.token);
    let page: ferry_protocol::UploadPage = client.get("/api/v1/uploads").await.json(200);
    assert_eq!(page.items.len(), 1);
    let mut found_etag = false;
    for file in files_under(&data) {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&password), "the password is on disk");
        found_etag |= text.contains(&page.items[0].etag);
    }
    assert!(found_etag, "the scan reads the journal");
    assert!(!stderr.contains(&password), "the password is in the log");
    assert!(!stderr.contains("X-Amz-Security-Token") && !stderr.contains("x-amz-security-token:"));

    // The actual secrets, as the keychain holds them: the session token, the grant's secret key
    // and security token. None may reach the log (at trace level), the output, or the data dir.
    let kept = stdout
        .split("--- secrets\n")
        .nth(1)
        .and_then(|rest| rest.split("--- end of secrets").next())
        .unwrap();
    let mut secrets = Vec::new();
    for line in kept.lines() {
        let json: serde_json::Value =
            serde_json::from_str(line.trim_start_matches("secret = ")).unwrap_or_default();
        collect_secrets(&json, &mut secrets);
    }
    assert!(
        secrets.len() >= 3,
        "the session token and the grant's two secrets were found: {} of them",
        secrets.len()
    );
    eprintln!(
        "secrets checked: {} (trace log: {} bytes)",
        secrets.len(),
        stderr.len()
    );
    // `ferry diagnostics`, another process than the one that signed in: it names the account
    // the keychain keeps and leaves the keychain's secrets out of every entry.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        entries.push((entry.name().to_owned(), text));
    }
    assert!(
        entries[0].1.contains("Signed in as alice"),
        "{}",
        entries[0].1
    );
    for secret in &secrets {
        for (name, text) in &entries {
            assert!(
                !text.contains(secret.as_str()),
                "a secret is in the diagnostics' {name}"
            );
        }
    }
    let outside_the_dump = stdout.replace(kept, "");
    for secret in &secrets {
        assert!(
            !stderr.contains(secret.as_str()),
            "a secret is in the trace log"
        );
        assert!(
            !outside_the_dump.contains(secret.as_str()),
            "a secret is in the output"
        );
        for file in files_under(&data) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret.as_str()),
                "a secret is in the data dir: {}",
                file.display()
            );
        }
    }
}

/// The values of the secret fields of what the keychain holds, wherever they are nested.
fn collect_secrets(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (name, value) in map {
                match (name.as_str(), value) {
                    (
                        "token" | "secret_access_key" | "security_token",
                        serde_json::Value::String(s),
                    ) => out.push(s.clone()),
                    _ => collect_secrets(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_keychain_the_error_is_clear_and_memory_only_is_an_explicit_choice() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let run = move |extra: &[&str]| {
        let mut command = Command::new(ferry_bin());
        command
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--server",
                &server.api,
            ])
            .args(extra)
            .args(["login", "alice"])
            .env("FERRY_PASSWORD", &password)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/ferry-test-bus",
            )
            .stdin(Stdio::null());
        command.output().unwrap()
    };
    let refused = run(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("keychain_unavailable"), "{stderr}");
    assert!(
        stderr.contains("--memory-keychain"),
        "the way out is named: {stderr}"
    );
    let memory = run(&["--memory-keychain"]);
    assert!(
        memory.status.success(),
        "{}",
        String::from_utf8_lossy(&memory.stderr)
    );
}

/// Every file under `dir`, in its folders too (the log file is in `logs/`).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => files.extend(files_under(&path)),
            false => files.push(path),
        }
    }
    files
}
