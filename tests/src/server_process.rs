//! The real `ferry-server` binary as a child process on `127.0.0.1:0`, for tests that need its
//! own memory figures or that must see it survive abuse as a separate process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/ferry-server`, next to the running test's executable in `deps/`.
pub fn server_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("ferry-server");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first",
        bin.display()
    );
    bin
}

/// A running `ferry-server serve --demo`; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Its data dir (removed when dropped).
    pub dir: tempfile::TempDir,
    /// API base URL.
    pub api: String,
    /// Store address.
    pub store: SocketAddr,
    /// The demo account `alice`'s password.
    pub alice_password: String,
}

impl ServerProcess {
    /// Starts the server and waits (at most 30 s) for its start-up lines.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(server_bin())
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .args(["--store-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferry-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self {
            child,
            dir,
            api: String::new(),
            store: SocketAddr::from(([127, 0, 0, 1], 0)),
            alice_password: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.alice_password.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("ferry-server printed its addresses within 30 s");
            if let Some(api) = line.strip_prefix("api: ") {
                process.api = api.to_owned();
            } else if let Some(store) = line.strip_prefix("store: http://") {
                process.store = store.parse().expect("store address");
            } else if let Some(rest) = line.strip_prefix("demo account: alice / ") {
                process.alice_password = rest.split(' ').next().unwrap_or_default().to_owned();
            }
        }
        process
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status of the server");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
