//! A signed-in account, as most tests start: `alice` on an engine in a temp dir, or the `ferry`
//! command signed in on its first run.

use ferry_protocol::Role;

use crate::{Recorder, TestServer, engine, ferry_bin};

/// A server with the user `alice`, signed in on an engine whose data dir is `dir/data` (files
/// to upload go beside it, in `dir`): the start most engine tests share. Destructured, keep
/// `server` bound (`server: _server`): a field left to `..` is dropped at once, and the
/// server with it.
pub struct Alice {
    pub server: TestServer,
    pub password: String,
    pub dir: tempfile::TempDir,
    pub engine: ferry_engine::Engine,
    pub events: Recorder,
}

impl Alice {
    /// Starts it; `adjust` shapes the engine's settings.
    pub async fn start(adjust: impl FnOnce(&mut ferry_engine::EngineConfig)) -> Self {
        let server = TestServer::start().await;
        let password = server.add_user("alice", Role::User);
        let dir = tempfile::tempdir().expect("a temp dir");
        let (engine, events) = engine(
            &server,
            &dir.path().join("data"),
            "alice",
            &password,
            adjust,
        )
        .await;
        Self {
            server,
            password,
            dir,
            engine,
            events,
        }
    }
}

/// The `ferry` command against `server`, signed in as `user` with `password` on its first
/// command (secrets in memory), its data dir `data_dir`.
pub fn ferry_as(
    server: &TestServer,
    data_dir: &std::path::Path,
    user: &str,
    password: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(ferry_bin());
    command
        .env("FERRY_DATA_DIR", data_dir)
        .env("FERRY_SERVER", &server.api)
        .env("FERRY_MEMORY_KEYCHAIN", "true")
        .env("FERRY_USER", user)
        .env("FERRY_PASSWORD", password)
        .stdin(std::process::Stdio::null());
    command
}

/// Runs `command` off the async threads; its output, which must say it succeeded.
pub async fn succeeds(mut command: std::process::Command) -> std::process::Output {
    let output = tokio::task::spawn_blocking(move || command.output().expect("it runs"))
        .await
        .expect("the runner");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
