//! The credential cache as front ends see it, against the real server: every refresh is
//! announced (`credentials_refreshing` → `credentials_refreshed`) and its status is real; a
//! refresh that fails while the old grant is still good is retried after a backoff, not by
//! every request; a grant the keychain cannot save is still used. Faults in the app server are
//! caused by a small loopback gate in front of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_engine::events::Event;
use ferry_engine::keychain::{Keychain, MemoryKeychain};
use ferry_engine::secret::Secret;
use ferry_protocol::Role;
use ferry_tests::{Recorder, TestServer, engine, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the gate does with the connections it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward to the app server.
    Pass,
    /// Answer every request with 503.
    Refuse,
    /// Forward after a delay.
    Delay(Duration),
}

/// A TCP front for the app server on `127.0.0.1:0`. Changing the mode drops the open
/// connections, so a kept-alive connection cannot slip past the new mode.
struct Gate {
    url: String,
    mode: Arc<std::sync::Mutex<Mode>>,
    refused: Arc<AtomicUsize>,
    open: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Gate {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(std::sync::Mutex::new(Mode::Pass));
        let refused = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (m, r, o) = (mode.clone(), refused.clone(), open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = *m.lock().unwrap();
                let task = tokio::spawn(serve(client, upstream.clone(), mode, r.clone()));
                o.lock().unwrap().push(task);
            }
        });
        Self {
            url,
            mode,
            refused,
            open,
            accept,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

async fn serve(mut client: TcpStream, upstream: String, mode: Mode, refused: Arc<AtomicUsize>) {
    match mode {
        Mode::Refuse => {
            // Read the request head, then answer 503 and close.
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            refused.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"code":"internal","message":"the gate refuses"}"#;
            let reply = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(reply.as_bytes()).await;
        }
        Mode::Pass | Mode::Delay(_) => {
            if let Mode::Delay(delay) = mode {
                tokio::time::sleep(delay).await;
            }
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
    }
}

fn count(events: &Recorder, wanted: fn(&Event) -> bool) -> usize {
    events.events().iter().filter(|e| wanted(e)).count()
}

fn is_refreshing(e: &Event) -> bool {
    matches!(e, Event::CredentialsRefreshing)
}

fn is_refreshed(e: &Event) -> bool {
    matches!(e, Event::CredentialsRefreshed { .. })
}

fn is_failed(e: &Event) -> bool {
    matches!(e, Event::CredentialsRefreshFailed { .. })
}

/// Waits until `check` holds, for at most `secs`.
async fn until(secs: u64, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refresh_is_announced_and_the_status_is_real() {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(4)).await;
    let password = server.add_user("alice", Role::User);
    let gate = Gate::start(&server.api).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, events) = engine(&server, dir.path(), "alice", &password, |c| {
        c.server = gate.url.clone();
    })
    .await;
    let credentials = engine.credentials().clone();
    let before = credentials.status();
    assert_eq!(before.expires_at, None, "no grant before the first fetch");
    assert!(!before.refreshing);

    // A slow app server: the refresh shows as under way while it lasts. The gate closed the
    // connection kept alive since the sign-in; the client is given a moment to see that, or
    // its next request may go out on the dead connection and fail at once (seen twice in full
    // runs on a loaded machine; the engine does not retry an app-server request that failed
    // that way — noted as its own work).
    gate.set(Mode::Delay(Duration::from_millis(3000)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetching = tokio::spawn({
        let credentials = credentials.clone();
        async move { credentials.current().await }
    });
    until(15, "refreshing shows while the grant is fetched", || {
        credentials.status().refreshing
    })
    .await;
    assert_eq!(count(&events, is_refreshing), 1);
    assert_eq!(count(&events, is_refreshed), 0, "not refreshed yet");
    let first = within(30, "the first grant", fetching)
        .await
        .unwrap()
        .expect("a grant");
    let status = credentials.status();
    assert!(!status.refreshing, "{status:?}");
    assert_eq!(status.expires_at, Some(first.expires_at));
    assert_eq!(status.last_error, None);
    let first_refreshed_at = status.refreshed_at.expect("refreshed_at");

    // Past half its lifetime the next request gets a new one, announced the same way.
    gate.set(Mode::Pass);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = within(30, "the second grant", credentials.current())
        .await
        .unwrap();
    assert_ne!(second.access_key_id, first.access_key_id);
    assert_eq!(count(&events, is_refreshing), 2);
    assert_eq!(count(&events, is_refreshed), 2);
    let status = credentials.status();
    assert_eq!(status.expires_at, Some(second.expires_at));
    assert!(
        status.refreshed_at.unwrap() > first_refreshed_at,
        "{status:?}"
    );

    // Kept fresh with no request at all (what a front end's countdown relies on).
    let keeper = tokio::spawn({
        let credentials = credentials.clone();
        async move { credentials.keep_fresh().await }
    });
    until(10, "two refreshes while idle", || {
        count(&events, is_refreshed) >= 4
    })
    .await;
    keeper.abort();
    assert_eq!(count(&events, is_failed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_backs_off_and_keeps_the_old_grant() {
    let server = TestServer::start_with(|o| o.grant_ttl = Duration::from_secs(8)).await;
    let password = server.add_user("alice", Role::User);
    let gate = Gate::start(&server.api).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, events) = engine(&server, dir.path(), "alice", &password, |c| {
        c.server = gate.url.clone();
    })
    .await;
    let credentials = engine.credentials().clone();
    let old = credentials.current().await.expect("first grant");

    // Past half-life (4 s) the grant is due, and the app server refuses.
    gate.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(4300)).await;
    for i in 0..20 {
        let grant = credentials.current().await.expect("the old grant is kept");
        assert_eq!(grant.access_key_id, old.access_key_id, "request {i}");
    }
    assert_eq!(
        gate.refused(),
        1,
        "20 requests during the backoff asked the server once"
    );
    assert_eq!(count(&events, is_failed), 1);
    let status = credentials.status();
    assert_eq!(
        status.last_error.as_ref().map(|e| e.code.as_str()),
        Some("internal"),
        "{status:?}"
    );
    assert!(status.retry_at.is_some(), "{status:?}");
    assert!(!status.refreshing);

    // After the backoff the next request tries again and, with the server back, succeeds.
    gate.set(Mode::Pass);
    let retry_at = status.retry_at.unwrap();
    let wait = (retry_at - time::OffsetDateTime::now_utc()).unsigned_abs();
    assert!(
        wait <= Duration::from_secs(2),
        "first backoff ≤ 2 s: {wait:?}"
    );
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    let new = within(30, "the refresh after the backoff", credentials.current())
        .await
        .unwrap();
    assert_ne!(new.access_key_id, old.access_key_id);
    let status = credentials.status();
    assert_eq!(status.last_error, None, "{status:?}");
    assert_eq!(status.retry_at, None);
    assert_eq!(status.expires_at, Some(new.expires_at));
}

/// A keychain whose writes of storage grants fail on demand: a full or locked keychain is a
/// fault this machine's Secret Service cannot be made to show reliably.
#[derive(Default)]
struct RefusingKeychain {
    inner: MemoryKeychain,
    refuse_grants: std::sync::atomic::AtomicBool,
}

impl Keychain for RefusingKeychain {
    fn set(&self, name: &str, value: &Secret) -> ferry_engine::Result<()> {
        if name.starts_with("grant:") && self.refuse_grants.load(Ordering::SeqCst) {
            return Err(ferry_engine::Error::KeychainUnavailable(
                "the keyring is locked or access was refused".into(),
            ));
        }
        self.inner.set(name, value)
    }

    fn get(&self, name: &str) -> ferry_engine::Result<Option<Secret>> {
        self.inner.get(name)
    }

    fn delete(&self, name: &str) -> ferry_engine::Result<()> {
        self.inner.delete(name)
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_the_keychain_cannot_save_is_still_used() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(RefusingKeychain::default());
    let (engine, events) = engine(&server, dir.path(), "alice", &password, |c| {
        c.keychain = keychain.clone();
    })
    .await;
    keychain.refuse_grants.store(true, Ordering::SeqCst);
    let grant = within(30, "the grant", engine.credentials().current())
        .await
        .expect("a good refresh is not failed by the keychain");
    let status = engine.credentials().status();
    assert_eq!(status.expires_at, Some(grant.expires_at));
    assert_eq!(status.last_error, None);
    assert_eq!(
        status.keychain_error.as_ref().map(|e| e.code.as_str()),
        Some("keychain_unavailable"),
        "{status:?}"
    );
    assert_eq!(count(&events, is_refreshed), 1);
    assert_eq!(
        count(&events, |e| matches!(e, Event::CredentialsNotSaved { .. })),
        1
    );
    // The grant is kept in memory: the next request does not ask again.
    let again = engine.credentials().current().await.unwrap();
    assert_eq!(again.access_key_id, grant.access_key_id);
    assert_eq!(engine.credentials().refresh_count(), 1);
}
