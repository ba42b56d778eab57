//! The proxy against a small axum upstream on loopback: every framing passes untouched on one
//! kept-alive connection, and each action does what it says, seen from both ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, put};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Action, Proxy, Rule};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    received: AtomicU64,
    whole_bodies: AtomicU64,
    broken_bodies: AtomicU64,
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Counts a request body as it streams in; answers with its length.
async fn echo(State(seen): State<Arc<Seen>>, body: Body) -> (axum::http::StatusCode, String) {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let mut stream = body.into_data_stream();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                len += bytes.len() as u64;
                seen.received
                    .fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
            Err(_) => {
                seen.broken_bodies.fetch_add(1, Ordering::SeqCst);
                return (axum::http::StatusCode::BAD_REQUEST, "broken".into());
            }
        }
    }
    seen.whole_bodies.fetch_add(1, Ordering::SeqCst);
    (axum::http::StatusCode::OK, len.to_string())
}

fn count(seen: &Seen) {
    seen.requests.fetch_add(1, Ordering::SeqCst);
}

async fn upstream() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/echo", put(echo))
        .route(
            "/big",
            get(|State(seen): State<Arc<Seen>>| async move {
                count(&seen);
                pattern(MIB)
            }),
        )
        .route(
            "/small",
            get(|State(seen): State<Arc<Seen>>| async move {
                count(&seen);
                pattern(1000)
            }),
        )
        .route(
            "/chunked",
            get(|State(seen): State<Arc<Seen>>| async move {
                count(&seen);
                let chunks = [pattern(10 * KIB), pattern(1), pattern(70 * KIB)];
                let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
                Body::from_stream(stream)
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}

/// Polls `condition` until it holds, for at most [`WAIT`].
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Sends `request` on a fresh connection and reads until the proxy closes it.
async fn raw(proxy: &Proxy, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(proxy.addr()).await?;
    stream.write_all(request).await?;
    let mut got = Vec::new();
    within("reading to the end", stream.read_to_end(&mut got)).await?;
    Ok(got)
}

fn split_head(answer: &[u8]) -> (String, &[u8]) {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    (
        String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase(),
        &answer[end..],
    )
}

#[tokio::test]
async fn every_framing_passes_untouched_on_one_kept_alive_connection() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let http = client();
    let url = |path: &str| format!("{}{path}", proxy.url());

    let put = http.put(url("/echo")).body(pattern(3 * MIB)).send().await;
    assert_eq!(put.unwrap().text().await.unwrap(), (3 * MIB).to_string());
    let chunks = futures::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(pattern(100 * KIB))));
    let chunked = http
        .put(url("/echo"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert_eq!(
        chunked.unwrap().text().await.unwrap(),
        (300 * KIB).to_string()
    );
    let big = http.get(url("/big")).send().await.unwrap();
    assert_eq!(big.bytes().await.unwrap().as_ref(), pattern(MIB).as_slice());
    let head = http.head(url("/big")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], MIB.to_string().as_str());
    assert!(head.bytes().await.unwrap().is_empty());
    let streamed = http.get(url("/chunked")).send().await.unwrap();
    let expected = [pattern(10 * KIB), pattern(1), pattern(70 * KIB)].concat();
    assert_eq!(
        streamed.bytes().await.unwrap().as_ref(),
        expected.as_slice()
    );

    let traffic = proxy.traffic();
    assert_eq!(
        traffic.connections, 1,
        "keep-alive held across every framing"
    );
    assert_eq!(traffic.requests, 5);
    assert_eq!(traffic.most_at_once, 1, "one request after another");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
    assert!(
        traffic.bytes_up > (3 * MIB + 300 * KIB) as u64,
        "{traffic:?}"
    );
    assert!(traffic.bytes_down > (MIB + 80 * KIB) as u64, "{traffic:?}");
    let log = proxy.seen();
    assert!(
        log.iter()
            .all(|s| s.action == "forward" && s.status == Some(200)),
        "{log:?}"
    );
    assert_eq!(proxy.count("PUT", "/echo"), 2);
}

#[tokio::test]
async fn requests_handled_together_are_counted_at_their_most() {
    let (addr, _seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    // Held long enough that the three overlap however the runtime schedules them.
    proxy.add(Rule::new(Action::Latency(Duration::from_millis(500))).target("/big"));
    let http = client();
    let get = || http.get(format!("{}/big", proxy.url())).send();
    let (a, b, c) = within("three at once", async { tokio::join!(get(), get(), get()) }).await;
    for answer in [a, b, c] {
        assert_eq!(answer.unwrap().status(), 200);
    }
    assert_eq!(proxy.traffic().most_at_once, 3);
}

#[tokio::test]
async fn canned_answers_are_counted_per_rule_and_never_forwarded() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let rule = proxy.add(
        Rule::new(Action::s3_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        ))
        .method("PUT")
        .target("/echo")
        .times(2),
    );
    let http = client();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = http
            .put(format!("{}/echo", proxy.url()))
            .body(pattern(MIB))
            .send()
            .await
            .unwrap();
        answers.push((reply.status().as_u16(), reply.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 503);
    assert!(
        answers[0].1.contains("<Code>SlowDown</Code>"),
        "{}",
        answers[0].1
    );
    assert_eq!(answers[1].0, 503);
    assert_eq!(answers[2], (200, MIB.to_string()));
    assert_eq!((rule.matched(), rule.applied()), (3, 2));
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        1,
        "canned answers stay in the proxy"
    );
    assert_eq!(
        proxy.traffic().connections,
        1,
        "the canned answers kept the connection usable"
    );
}

#[tokio::test]
async fn nth_applies_to_one_match_and_counts_only_its_own_matches() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let rule = proxy.add(
        Rule::new(Action::api_error(500, "internal", "boom"))
            .method("GET")
            .target("/small")
            .nth(2),
    );
    let http = client();
    let mut statuses = Vec::new();
    for path in ["/small", "/big", "/small", "/small"] {
        let reply = http
            .get(format!("{}{path}", proxy.url()))
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
        let _ = reply.bytes().await;
    }
    assert_eq!(statuses, [200, 200, 500, 200]);
    assert_eq!((rule.matched(), rule.applied()), (3, 1));
    let log = proxy.seen();
    assert_eq!(log[2].action, "respond");
    assert_eq!(log[2].status, Some(500));
}

#[tokio::test]
async fn a_reset_mid_body_breaks_the_client_and_leaves_the_upstream_a_short_body() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let rule = proxy.add(Rule::new(Action::ResetAfter(64 * KIB as u64)).method("PUT"));
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let head = format!("PUT /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {MIB}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The reset may reach the client while it writes or when it reads, whichever comes first.
    let written = within("writing the body", stream.write_all(&pattern(MIB))).await;
    let mut buffer = [0u8; 64];
    let read = within("reading after the reset", stream.read(&mut buffer)).await;
    let reset = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionReset;
    let broken = [written.as_ref().err(), read.as_ref().err()];
    assert!(
        broken.into_iter().flatten().any(reset),
        "the client sees a reset, not an answer: {written:?}, {read:?}"
    );
    assert!(!matches!(read, Ok(n) if n > 0), "no answer byte");
    eventually("the upstream notices the short body", || {
        seen.broken_bodies.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        seen.received.load(Ordering::SeqCst),
        64 * KIB as u64,
        "exactly N body bytes"
    );
    assert_eq!(seen.whole_bodies.load(Ordering::SeqCst), 0);
    assert_eq!(rule.applied(), 1);

    rule.remove();
    let healed = client()
        .put(format!("{}/echo", proxy.url()))
        .body(pattern(MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(
        healed.text().await.unwrap(),
        MIB.to_string(),
        "healed once removed"
    );
}

#[tokio::test]
async fn a_stall_pauses_the_body_then_lets_it_all_through() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let pause = Duration::from_millis(400);
    let rule = proxy.add(Rule::new(Action::Stall {
        after: 100 * KIB as u64,
        pause,
    }));
    let started = Instant::now();
    let reply = client()
        .put(format!("{}/echo", proxy.url()))
        .body(pattern(MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.text().await.unwrap(), MIB.to_string());
    assert!(started.elapsed() >= pause, "the body waited {pause:?}");
    assert_eq!(rule.applied(), 1);
    assert_eq!(seen.whole_bodies.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn latency_delays_only_the_requests_it_applies_to() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let delay = Duration::from_millis(300);
    let rule = proxy.add(Rule::new(Action::Latency(delay)).target("/small").times(2));
    let http = client();
    for _ in 0..2 {
        let started = Instant::now();
        let reply = http
            .get(format!("{}/small", proxy.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.bytes().await.unwrap().len(), 1000);
        assert!(started.elapsed() >= delay);
    }
    let reply = http
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.bytes().await.unwrap().len(), 1000);
    assert_eq!((rule.matched(), rule.applied()), (3, 2));
}

#[tokio::test]
async fn a_truncated_answer_has_its_head_and_n_body_bytes_then_ends() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    proxy.add(Rule::new(Action::Truncate(1000)).target("/big"));
    let answer = raw(&proxy, b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = split_head(&answer);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {MIB}")), "{head}");
    assert_eq!(
        body,
        &pattern(MIB)[..1000],
        "exactly N body bytes, then the end"
    );

    let cut = client()
        .get(format!("{}/big", proxy.url()))
        .send()
        .await
        .unwrap();
    assert!(
        cut.bytes().await.is_err(),
        "a client notices the short body"
    );
}

#[tokio::test]
async fn a_dropped_answer_took_effect_upstream_but_never_reaches_the_client() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    proxy.add(Rule::new(Action::DropAnswer).method("PUT"));
    let head = format!("PUT /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {MIB}\r\n\r\n");
    let request = [head.as_bytes(), &pattern(MIB)].concat();
    let answer = raw(&proxy, &request).await.unwrap();
    assert!(answer.is_empty(), "no answer at all");
    assert_eq!(
        seen.whole_bodies.load(Ordering::SeqCst),
        1,
        "the upstream got it all"
    );
    assert_eq!(seen.received.load(Ordering::SeqCst), MIB as u64);
    assert_eq!(proxy.seen()[0].status, None, "the client got no status");
}

#[tokio::test]
async fn a_held_answer_took_effect_upstream_and_its_client_waits_on_an_open_connection() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let rule = proxy.add(Rule::new(Action::HoldAnswer).method("PUT"));
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let head = format!("PUT /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {MIB}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&pattern(MIB)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.whole_bodies.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the upstream never got it all");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.received.load(Ordering::SeqCst), MIB as u64);
    let mut buffer = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(700), stream.read(&mut buffer)).await;
    assert!(waited.is_err(), "neither an answer nor a close: {waited:?}");
    assert_eq!(rule.applied(), 1);
}

#[tokio::test]
async fn a_trickled_answer_arrives_whole_in_small_pieces() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let every = Duration::from_millis(20);
    proxy.add(Rule::new(Action::Trickle { chunk: 100, every }));
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"GET /small HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the trickled answer", stream.read_to_end(&mut answer))
        .await
        .unwrap();
    let (_, body) = split_head(&answer);
    assert_eq!(body, pattern(1000).as_slice());
    let chunks = answer.len().div_ceil(100) as u32;
    assert!(
        started.elapsed() >= every * (chunks - 1),
        "a pause between chunks"
    );
}

#[tokio::test]
async fn a_blackholed_request_is_never_answered_and_its_connection_stays_open() {
    let (addr, seen) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let rule = proxy.add(Rule::new(Action::Blackhole).target("/small"));
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(700), stream.read(&mut buffer)).await;
    assert!(waited.is_err(), "neither an answer nor a close: {waited:?}");
    stream.write_all(b"more bytes are swallowed").await.unwrap();
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);

    let timed_out = client()
        .get(format!("{}/small", proxy.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out}");
    assert_eq!(rule.applied(), 2);
    rule.remove();
    let healed = client()
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(healed.status(), 200);
}

#[tokio::test]
async fn a_rule_lasting_a_while_heals_by_itself() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    proxy.add(
        Rule::new(Action::s3_error(500, "InternalError", "try again"))
            .lasting(Duration::from_millis(400)),
    );
    let http = client();
    let during = http
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(during.status(), 500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = http
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::start(addr).await;
    let answer = raw(&proxy, b"NOT HTTP AT ALL\r\n\x00\x01\r\n\r\n")
        .await
        .unwrap();
    assert!(answer.is_empty());
    let fine = client()
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn a_proxy_without_upstream_refuses_until_it_gets_one() {
    let (addr, _) = upstream().await;
    let proxy = Proxy::unconnected().await;
    let refused = client().get(format!("{}/small", proxy.url())).send().await;
    assert!(refused.is_err(), "{refused:?}");
    proxy.set_upstream(addr);
    let fine = client()
        .get(format!("{}/small", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}
