//! The `ferry-server` binary: `serve` on port 0 with demo accounts, and the `user` commands.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod verify_callback;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-server");

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn user_command(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(BIN)
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry-server");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Starts `serve` and reads its start-up lines until `want` of them arrived (bounded in time).
fn serve(data_dir: &std::path::Path, extra: &[&str], want: usize) -> (Running, Vec<String>) {
    let data_dir = data_dir.to_str().unwrap();
    let mut args = vec!["--listen", "127.0.0.1:0", "--store-listen", "127.0.0.1:0"];
    args.extend(["--data-dir", data_dir]);
    args.extend(extra);
    start(&args, want)
}

/// Starts `serve` with exactly `args` and reads `want` start-up lines (bounded in time).
fn start(args: &[&str], want: usize) -> (Running, Vec<String>) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferry-server");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while lines.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("server printed only {lines:?} within 30 s"),
        }
    }
    (running, lines)
}

fn sign_in(api: &str, user: &str, password: &str) -> u16 {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    client
        .post(format!("{api}/api/v1/sessions"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .expect("API answers")
        .status()
        .as_u16()
}

#[test]
fn serve_prints_addresses_and_demo_accounts_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, lines) = serve(dir.path(), &["--demo"], 5);
    let api = lines[0]
        .strip_prefix("api: http://127.0.0.1:")
        .expect("api line");
    assert!(api.parse::<u16>().unwrap() > 0, "{lines:?}");
    let store = lines[1]
        .strip_prefix("store: http://127.0.0.1:")
        .expect("store line");
    assert!(store.parse::<u16>().unwrap() > 0);
    let alice = lines
        .iter()
        .find(|l| l.starts_with("demo account: alice / "))
        .expect("alice");
    let password = alice.split(' ').nth(4).unwrap();
    let api = format!("http://127.0.0.1:{api}");
    assert_eq!(sign_in(&api, "alice", password), 201);
    assert_eq!(sign_in(&api, "admin", "not-the-password"), 401);
    // Secrets never reach the data dir in the clear.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let hay = String::from_utf8_lossy(&bytes);
            assert!(
                !hay.contains(password),
                "{} holds a demo password",
                path.display()
            );
        }
    }
}

#[test]
fn user_commands_add_list_change_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = user_command(dir.path(), &["add", "carol", "--admin"], "first-password\n");
    assert!(ok, "{out}");
    let (ok, out) = user_command(dir.path(), &["add", "carol"], "x\n");
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = user_command(dir.path(), &["add", "Bad Name"], "x\n");
    assert!(!ok && out.contains("invalid username"), "{out}");
    let (ok, out) = user_command(dir.path(), &["add", "dave"], "\n");
    assert!(!ok && out.contains("empty"), "{out}");
    let (ok, out) = user_command(dir.path(), &["list"], "");
    assert!(ok && out.contains("carol\tadmin\tactive"), "{out}");
    let (ok, out) = user_command(dir.path(), &["passwd", "carol"], "second-password\n");
    assert!(ok, "{out}");
    let (ok, out) = user_command(dir.path(), &["passwd", "nobody"], "x\n");
    assert!(!ok && out.contains("no user"), "{out}");

    let (server, lines) = serve(dir.path(), &[], 2);
    let api = lines[0].strip_prefix("api: ").unwrap().to_owned();
    assert_eq!(sign_in(&api, "carol", "first-password"), 401);
    assert_eq!(sign_in(&api, "carol", "second-password"), 201);
    drop(server);

    let (ok, out) = user_command(dir.path(), &["disable", "carol"], "");
    assert!(ok, "{out}");
    let (ok, out) = user_command(dir.path(), &["list"], "");
    assert!(ok && out.contains("carol\tadmin\tdisabled"), "{out}");
    let (_server, lines) = serve(dir.path(), &[], 2);
    let api = lines[0].strip_prefix("api: ").unwrap().to_owned();
    assert_eq!(sign_in(&api, "carol", "second-password"), 401);
}

#[test]
fn settings_come_from_a_toml_file_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, "grant_ttl = 0\n").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("grant-ttl"));

    std::fs::write(&config, "unknown_setting = 1\n").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown"));

    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nstore_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _server = Running(child);
    assert!(first.starts_with("api: http://127.0.0.1:"), "{first}");
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn seconds_until(rfc3339: &str) -> i64 {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (at - time::OffsetDateTime::now_utc()).whole_seconds()
}

#[test]
fn every_toml_setting_takes_effect_and_flags_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-toml");
    let (api_port, store_port) = (free_port(), free_port());
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nlisten = \"127.0.0.1:{api_port}\"\n\
             store_listen = \"127.0.0.1:{store_port}\"\n\
             store_public_url = \"https://store.example:9443\"\ndemo = true\n\
             grant_ttl = 120\nsession_ttl = 600\nbucket = \"toml-bucket\"\nregion = \"eu-toml-1\"\n"
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    // The region also comes as a flag, which wins.
    let (server, lines) = start(&["--config", config_arg, "--region", "eu-flag-1"], 5);
    assert_eq!(
        lines[0],
        format!("api: http://127.0.0.1:{api_port}"),
        "{lines:?}"
    );
    assert_eq!(lines[1], format!("store: http://127.0.0.1:{store_port}"));
    assert_eq!(lines[2], format!("data: {}", data.display()));
    assert!(data.join("ferry-server.db").exists(), "data_dir");
    let alice = lines
        .iter()
        .find_map(|l| l.strip_prefix("demo account: alice / "))
        .expect("demo = true creates the demo accounts");
    let password = alice.split(' ').next().unwrap();

    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let api = format!("http://127.0.0.1:{api_port}/api/v1");
    let session: serde_json::Value = http
        .post(format!("{api}/sessions"))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session_left = seconds_until(session["expires_at"].as_str().unwrap());
    assert!(
        (595..=600).contains(&session_left),
        "session_ttl: {session_left}"
    );
    let grant: serde_json::Value = http
        .post(format!("{api}/grants"))
        .bearer_auth(session["token"].as_str().unwrap())
        .json(&serde_json::json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        grant["endpoint"], "https://store.example:9443",
        "store_public_url"
    );
    assert_eq!(grant["bucket"], "toml-bucket", "bucket");
    assert_eq!(grant["region"], "eu-flag-1", "the flag wins over the file");
    let grant_left = seconds_until(grant["expires_at"].as_str().unwrap());
    assert!((115..=120).contains(&grant_left), "grant_ttl: {grant_left}");
    drop(server);

    // Without the flag, the file's region is used.
    let listen = ["--listen", "127.0.0.1:0", "--store-listen", "127.0.0.1:0"];
    let (_server, lines) = start(&[&["--config", config_arg][..], &listen[..]].concat(), 5);
    let api = lines[0].strip_prefix("api: ").unwrap().to_owned() + "/api/v1";
    let password = lines
        .iter()
        .find_map(|l| l.strip_prefix("demo account: alice / "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let session: serde_json::Value = http
        .post(format!("{api}/sessions"))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let grant: serde_json::Value = http
        .post(format!("{api}/grants"))
        .bearer_auth(session["token"].as_str().unwrap())
        .json(&serde_json::json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(grant["region"], "eu-toml-1", "region");
}
