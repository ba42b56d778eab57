//! The engine uploading through the fault-injecting proxy ([`ferry_tests::proxy`]): one proxy
//! between the engine and the store (the server's grants point at it) and one between the
//! engine and the app server. Each test injects faults on one side — resets mid-part, stalls,
//! latency, truncated and lost answers, bursts of 500/503, trickling answers, answers that never
//! come, faults that never heal — and checks what users care about: every file arrives
//! byte-identical with exactly one history row, the engine says it is retrying (which
//! operation, why, which attempt of how many) instead of failing, and a fault that never heals
//! ends with the file failed for a stated reason after a bounded number of attempts.

mod api;
mod store;

use std::path::PathBuf;

use ferry_engine::events::{ErrorInfo, Event};
use ferry_engine::journal::FileState;
use ferry_engine::{Engine, EngineConfig};
use ferry_protocol::{Role, UploadStatus};
use ferry_server::ServeOptions;
use ferry_tests::proxy::Proxy;
use ferry_tests::{Recorder, TestServer, bytes, expected_etag, md5_hex, within};
use sha2::{Digest, Sha256};

pub(crate) const MIB: usize = 1024 * 1024;
/// The engine's defaults: files below this go up in one PUT, bigger ones in parts of [`PART`].
pub(crate) const THRESHOLD: usize = 16 * MIB;
pub(crate) const PART: usize = 8 * MIB;

/// A server with a proxy in front of its store (where its grants point) and one in front of
/// its API, a user, and a temporary dir for the files and the engine's data.
pub(crate) struct Rig {
    pub(crate) server: TestServer,
    /// Between the engine and the store.
    pub(crate) store: Proxy,
    /// Between the engine and the app server.
    pub(crate) api: Proxy,
    pub(crate) password: String,
    pub(crate) dir: tempfile::TempDir,
}

fn socket(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

impl Rig {
    /// Starts the server (options adjusted by `adjust`), both proxies and the user `alice`.
    pub(crate) async fn start(adjust: impl FnOnce(&mut ServeOptions)) -> Self {
        let store = Proxy::unconnected().await;
        let store_url = store.url();
        let server = TestServer::start_with(|o| {
            o.store_public_url = Some(store_url);
            adjust(o);
        })
        .await;
        store.set_upstream(socket(&server.server.store_url()));
        let api = Proxy::start(socket(&server.api)).await;
        let password = server.add_user("alice", Role::User);
        Self {
            server,
            store,
            api,
            password,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// An engine signed in as `alice` through the API proxy.
    pub(crate) async fn engine(
        &self,
        adjust: impl FnOnce(&mut EngineConfig),
    ) -> (Engine, Recorder) {
        let api = self.api.url();
        ferry_tests::engine(
            &self.server,
            &self.dir.path().join("data"),
            "alice",
            &self.password,
            |c| {
                c.server = api;
                adjust(c);
            },
        )
        .await
    }

    /// Queues `files` on `engine` and runs it until idle, within `secs` (`what` names the wait).
    pub(crate) async fn upload_all(
        engine: &Engine,
        files: &[Source],
        secs: u64,
        what: &str,
    ) -> ferry_engine::transfer::Summary {
        let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
        engine.enqueue(&paths).await.unwrap();
        within(secs, what, engine.run_until_idle()).await.unwrap()
    }

    /// Writes a file of `len` deterministic bytes (from `seed`) to upload.
    pub(crate) fn file(&self, name: &str, len: usize, seed: u64) -> Source {
        let data = bytes(len, seed);
        let path = self.dir.path().join("files").join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("files dir");
        std::fs::write(&path, &data).expect("write the file");
        Source { path, data }
    }

    /// Checks that every file is confirmed in the journal, has exactly one history row with
    /// its size and ETag, the same checksum in both, and that the store holds its exact bytes.
    pub(crate) async fn assert_arrived_once(
        &self,
        engine: &Engine,
        events: &Recorder,
        files: &[Source],
    ) {
        let page = self.server.history("alice", &self.password).await;
        let rows = engine.files(10_000).expect("journal rows");
        for source in files {
            let name = source.name();
            let history: Vec<_> = page
                .items
                .iter()
                .filter(|r| r.key.ends_with(&format!("/{name}")))
                .collect();
            assert_eq!(
                history.len(),
                1,
                "{name}: one history row, got {history:#?}"
            );
            let row = history[0];
            assert_eq!(row.status, UploadStatus::Confirmed, "{name}");
            assert_eq!(row.size, source.data.len() as u64, "{name}: size");
            let etag = expected_etag(&source.data, THRESHOLD, PART);
            assert_eq!(row.etag, etag, "{name}: ETag");
            let journal = rows
                .iter()
                .find(|r| r.path == source.path)
                .unwrap_or_else(|| panic!("{name} is in the journal"));
            assert_eq!(journal.state, FileState::Confirmed, "{name}");
            let checksum = journal.checksum.as_deref().expect("a checksum");
            assert_checksum(checksum, &source.data, &etag);
            assert_eq!(row.checksum.as_deref(), Some(checksum), "{name}: checksum");
            let stored = self
                .server
                .server
                .object_bytes(&row.bucket, &row.key)
                .await
                .expect("reading the stored object");
            assert!(
                stored.as_deref() == Some(source.data.as_slice()),
                "{name}: the store holds the file's exact bytes"
            );
        }
        self.print_figures(events, files.len());
    }
}

impl Rig {
    /// Prints what the proxies did and what the engine said, for the suite's figures.
    pub(crate) fn print_figures(&self, events: &Recorder, verified: usize) {
        let faults = |proxy: &Proxy| {
            let seen = proxy.seen();
            let faulted = seen.iter().filter(|s| s.action != "forward").count();
            (faulted, seen.len())
        };
        let (store_faults, store_requests) = faults(&self.store);
        let (api_faults, api_requests) = faults(&self.api);
        let retries = retries(events);
        let failed = failures(events).len();
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        ferry_tests::figures(
            &test,
            &format!(
                "store {store_faults} faults in {store_requests} requests, API {api_faults} faults \
                 in {api_requests} requests, {} retries announced (highest attempt {}), {failed} \
                 failures shown, {verified} files verified",
                retries.len(),
                retries.iter().map(|r| r.attempt).max().unwrap_or(0),
            ),
        );
    }
}

/// A file to upload and its bytes.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) data: Vec<u8>,
}

impl Source {
    pub(crate) fn name(&self) -> String {
        self.path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned()
    }

    /// The journal id the engine gave this file.
    pub(crate) fn id(&self, engine: &Engine) -> i64 {
        engine
            .files(10_000)
            .expect("journal rows")
            .into_iter()
            .find(|r| r.path == self.path)
            .unwrap_or_else(|| panic!("{} is in the journal", self.name()))
            .id
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The journal's checksum of a file, in whichever of its documented forms it is.
fn assert_checksum(checksum: &str, data: &[u8], etag: &str) {
    match checksum.split_once(':') {
        Some(("sha256", hex)) => assert_eq!(hex, hex::encode(sha256(data)), "sha256"),
        Some(("md5", hex)) => assert_eq!(hex, md5_hex(data), "md5"),
        Some(("md5-parts", parts)) => assert_eq!(parts, etag, "md5 of the parts"),
        _ => panic!("unknown checksum form {checksum:?}"),
    }
}

/// A `Retrying` event, flattened.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    pub(crate) file_id: Option<i64>,
    pub(crate) operation: String,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) error: ErrorInfo,
    pub(crate) retry_in_ms: u64,
}

/// Every retry the engine announced, each checked for what a user needs to see: the reason
/// (code and message), which attempt of how many, and a bounded wait.
pub(crate) fn retries(events: &Recorder) -> Vec<Retry> {
    let retries: Vec<Retry> = events
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::Retrying {
                file_id,
                operation,
                attempt,
                max_attempts,
                error,
                retry_in_ms,
            } => Some(Retry {
                file_id,
                operation,
                attempt,
                max_attempts,
                error,
                retry_in_ms,
            }),
            _ => None,
        })
        .collect();
    for retry in &retries {
        assert!(!retry.operation.is_empty(), "{retry:?}");
        assert!(
            !retry.error.code.is_empty() && !retry.error.message.is_empty(),
            "{retry:?}"
        );
        assert!(
            1 <= retry.attempt && retry.attempt <= retry.max_attempts,
            "attempt within its bound: {retry:?}"
        );
        assert!(
            retry.retry_in_ms <= 10 * 60 * 1000,
            "a bounded wait: {retry:?}"
        );
    }
    retries
}

/// The retries of one operation.
pub(crate) fn retries_of(events: &Recorder, operation: &str) -> Vec<Retry> {
    retries(events)
        .into_iter()
        .filter(|r| r.operation == operation)
        .collect()
}

/// Every `Failed` state the engine reported, with its reason.
pub(crate) fn failures(events: &Recorder) -> Vec<(i64, Option<ErrorInfo>)> {
    events
        .events()
        .into_iter()
        .filter_map(|event| match event {
            Event::State {
                file_id,
                state: FileState::Failed,
                error,
            } => Some((file_id, error)),
            _ => None,
        })
        .collect()
}

/// No file was ever shown as failed.
pub(crate) fn assert_no_failure(events: &Recorder) {
    let shown = failures(events);
    assert!(
        shown.is_empty(),
        "no failure visible to the user: {shown:?}"
    );
}
