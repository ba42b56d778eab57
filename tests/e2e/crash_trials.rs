//! Crash trials: `ferry upload` and `ferry watch` killed with SIGKILL at random moments (mid-part,
//! between Complete and the confirmation, during journal writes), then run again. Every file
//! must end confirmed exactly once with the bytes it has, and no multipart upload may be left
//! open in the store.
//!
//! The number of trials is `FERRY_CRASH_TRIALS` (default 30); `cargo xtask soak` runs more and
//! writes the figures into `docs/reliability.md`. The seed is printed so a failure can be
//! replayed with `FERRY_CRASH_SEED`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_protocol::{Role, UploadPage, UploadStatus};
use ferry_tests::{ApiClient, StoreClient, TestServer, bytes, expected_etag, ferry_bin};

const MIB: usize = 1024 * 1024;

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ferry(server: &TestServer, data: &Path, password: &str) -> Command {
    let mut command = Command::new(ferry_bin());
    command
        .env("FERRY_DATA_DIR", data)
        .env("FERRY_SERVER", &server.api)
        .env("FERRY_MEMORY_KEYCHAIN", "true")
        .env("FERRY_USER", "alice")
        .env("FERRY_PASSWORD", password)
        // About half a second for the big file: a kill lands in every phase.
        .env("FERRY_BANDWIDTH", (48 * MIB).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The files of one trial: a multipart one, two small ones, an empty one.
fn make_files(dir: &Path, trial: u64) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::create_dir_all(dir).unwrap();
    [24 * MIB, MIB, 3000, 0]
        .iter()
        .enumerate()
        .map(|(i, size)| {
            let path = dir.join(format!("t{trial}-f{i}.bin"));
            let data = bytes(*size, trial * 10 + i as u64);
            std::fs::write(&path, &data).unwrap();
            // Old enough for a watcher to take it at the first look.
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - Duration::from_secs(10))
                .unwrap();
            (path, data)
        })
        .collect()
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Alice's history (one session for the whole run: a sign-in per look would be throttled).
async fn history(client: &ApiClient) -> UploadPage {
    client.get("/api/v1/uploads?limit=500").await.json(200)
}

/// How many of `keys` (suffixes) the history holds confirmed.
async fn confirmed(client: &ApiClient, keys: &[String]) -> usize {
    let page = history(client).await;
    keys.iter()
        .filter(|k| {
            page.items
                .iter()
                .any(|r| r.key.ends_with(k.as_str()) && r.status == UploadStatus::Confirmed)
        })
        .count()
}

/// Waits until the history holds every one of `keys` confirmed.
async fn confirmed_all(client: &ApiClient, keys: &[String], secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if confirmed(client, keys).await == keys.len() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What went wrong, printed as written (the test harness prints a returned error with
/// `Debug`, which would escape its lines).
struct Failure(String);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Err(why())` unless `ok`. The test returns its failure rather than panicking, so that what
/// went wrong is near the end of what it prints (a CI log keeps the end, and a backtrace would
/// push the message out of it).
fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(Failure(why())) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_every_file_ends_confirmed_once_and_intact() -> Result<(), Failure>
{
    let trials = env_number("FERRY_CRASH_TRIALS", 30);
    let seed = env_number("FERRY_CRASH_SEED", {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        u64::from(nanos) | 1
    });
    eprintln!("crash trials: {trials}, seed {seed} (FERRY_CRASH_SEED replays it)");
    let mut dice = Dice(seed);
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let session: ferry_protocol::Session = server.sign_in("alice", &password).await.json(201);
    let mut client = server.anonymous();
    client.token = Some(session.token);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
    let started = Instant::now();
    // How many of a trial's 4 files were confirmed when it was killed.
    let mut at_kill = [0u32; 5];
    let mut between = 0u32;
    for trial in 0..trials {
        let watch = trial % 2 == 1;
        let folder = dir.path().join(format!("trial-{trial}"));
        let files = make_files(&folder, trial);
        let keys: Vec<String> = files
            .iter()
            .map(|(p, _)| {
                let name = p.file_name().unwrap().to_string_lossy();
                if watch {
                    format!("/{name}")
                } else {
                    format!("/trial-{trial}/{name}")
                }
            })
            .collect();
        let mut first = ferry(&server, &data, &password);
        if watch {
            first.arg("watch").arg(&folder);
        } else {
            first.arg("upload").arg(&folder);
        }
        // Each run's log, to tell what happened should a trial leave something behind.
        first
            .env("FERRY_LOG", "info")
            .stderr(std::fs::File::create(dir.path().join(format!("first-{trial}.log"))).unwrap());
        let child = first.spawn().unwrap();
        let wait = Duration::from_millis(dice.below(1200));
        tokio::time::sleep(wait).await;
        kill(child);
        at_kill[confirmed(&client, &keys).await] += 1;
        // Stored by the store but not yet confirmed: killed between Complete and confirmation.
        let page = history(&client).await;
        between += u32::from(page.items.iter().any(|r| {
            r.status == UploadStatus::Stored && keys.iter().any(|k| r.key.ends_with(k.as_str()))
        }));

        // Run again until everything of this trial is confirmed.
        let mut again = ferry(&server, &data, &password);
        if watch {
            again.arg("watch").arg(&folder);
        } else {
            again.arg("upload").arg(&folder);
        }
        let log = dir.path().join(format!("trial-{trial}.log"));
        again
            .env("FERRY_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap());
        let child = again.spawn().unwrap();
        let done = confirmed_all(&client, &keys, 90).await;
        kill(child);
        if !done {
            eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        ensure(done, || {
            format!(
                "trial {trial} (seed {seed}, killed after {wait:?}) never finished (its run again's log is above)"
            )
        })?;
        for ((_, content), key) in files.into_iter().zip(keys) {
            expected.push((key, content));
        }
    }
    let verified = expected.len();
    let summary = format!(
        "{trials} kills (seed {seed}) in {:.0} s; files of 4 confirmed at the kill: \
         0: {}, 1: {}, 2: {}, 3: {}, 4: {}; killed with a file stored but not confirmed: {between}; \
         {verified} files verified",
        started.elapsed().as_secs_f64(),
        at_kill[0],
        at_kill[1],
        at_kill[2],
        at_kill[3],
        at_kill[4]
    );

    let page = history(&client).await;
    for (key, content) in &expected {
        let rows: Vec<_> = page
            .items
            .iter()
            .filter(|r| r.key.ends_with(key.as_str()))
            .collect();
        ensure(rows.len() == 1, || {
            format!("{key} (seed {seed}): exactly one history row, got {rows:?}")
        })?;
        let row = rows[0];
        let etag = expected_etag(content, 16 * MIB, 8 * MIB);
        let right = row.status == UploadStatus::Confirmed
            && row.size == content.len() as u64
            && row.etag == etag;
        ensure(right, || {
            format!(
                "{key} (seed {seed}): confirmed, {} bytes, ETag {etag}: {row:?}",
                content.len()
            )
        })?;
        let stored = server
            .server
            .object_bytes(&row.bucket, &row.key)
            .await
            .unwrap();
        ensure(stored.as_deref() == Some(content.as_slice()), || {
            format!("{key} (seed {seed}): stored bytes differ")
        })?;
    }
    ensure(page.items.len() == expected.len(), || {
        format!("seed {seed}: no other rows: {:?}", page.items)
    })?;

    let store = StoreClient::new(client.grant().await);
    let open = store.list_uploads("").await;
    assert_eq!(open.status, 200, "{}", open.body);
    if open.body.contains("<UploadId>") {
        print_logs_of_trials_in(&open.body, dir.path());
    }
    ensure(!open.body.contains("<UploadId>"), || {
        format!(
            "seed {seed}: no multipart upload is left open (the logs of its trials are above): {}",
            open.body
        )
    })?;
    ferry_tests::figures("crash_trials", &summary);
    Ok(())
}

/// Prints what the runs of each trial named in `listing` (by its keys, `trial-N/`) logged
/// about uploads: what a failure needs to be understood.
fn print_logs_of_trials_in(listing: &str, dir: &Path) {
    let mut trials: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("trial-").nth(1)?.split('/').next())
        .collect();
    trials.dedup();
    for trial in trials {
        for log in [format!("first-{trial}.log"), format!("trial-{trial}.log")] {
            let text = std::fs::read_to_string(dir.join(&log)).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("upload") || l.contains("stray") || l.contains("abort"))
                .collect();
            let from = lines.len().saturating_sub(60);
            eprintln!("--- {log} ({} lines about uploads) ---", lines.len());
            for line in &lines[from..] {
                eprintln!("{line}");
            }
        }
    }
}
