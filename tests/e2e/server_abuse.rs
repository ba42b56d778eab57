//! Abuse of the server and its store: oversized, unsigned, slow, cut-short and malformed
//! requests. Each gets a clear refusal, loses nothing, and the server keeps serving others.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_protocol::{Role, Session, SignIn};
use ferry_tests::raw_http::{self, RawReply};
use ferry_tests::server_process::ServerProcess;
use ferry_tests::{StoreClient, TestServer, bytes, md5_hex, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

/// Signs in as the demo user of a spawned server and puts one small object: proof that it still
/// serves.
async fn still_serves(server: &ServerProcess) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap();
    let session: Session = http
        .post(format!("{}/api/v1/sessions", server.api))
        .json(&SignIn {
            username: "alice".into(),
            password: server.alice_password.clone(),
            device: None,
        })
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("a session");
    let grant: ferry_protocol::Grant = http
        .post(format!("{}/api/v1/grants", server.api))
        .bearer_auth(&session.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("a grant");
    let store = StoreClient::new(grant);
    let key = format!("{}after-abuse.bin", store.grant.prefix);
    let reply = store.put(&key, bytes(1000, 9)).await;
    assert_eq!(reply.status, 200, "the store still serves: {}", reply.body);
}

/// Streams an unsigned `multipart/form-data` POST of `file_len` bytes (made on the fly) to the
/// store; returns the reply and how many bytes of the body went out before the server stopped
/// taking them.
async fn unsigned_form_post(store: SocketAddr, file_len: u64) -> (RawReply, u64) {
    const BOUNDARY: &str = "ferry-abuse-boundary";
    let before = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/1/big.bin\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let after = format!("\r\n--{BOUNDARY}--\r\n");
    let length = before.len() as u64 + file_len + after.len() as u64;
    let head = format!(
        "POST /ferry HTTP/1.1\r\nHost: {store}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    );
    let stream = raw_http::connect(store).await;
    let (mut reader, mut writer) = stream.into_split();
    let reading = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(120), reader.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
                Ok(Ok(n)) => out.extend_from_slice(&buffer[..n]),
            }
        }
    });
    let chunk = vec![0x5au8; MIB];
    let mut sent = 0u64;
    let writing = async {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(before.as_bytes()).await?;
        while sent < file_len {
            let n = chunk.len().min((file_len - sent) as usize);
            writer.write_all(&chunk[..n]).await?;
            sent += n as u64;
        }
        writer.write_all(after.as_bytes()).await
    };
    // The server may stop reading at once (the refusal) or only at the end (buffered): either
    // way this ends, and a stall fails the test instead of hanging it.
    let _ = tokio::time::timeout(Duration::from_secs(300), writing)
        .await
        .expect("the body was sent or refused within 300 s");
    let bytes = within(150, "the reply to the form POST", reading)
        .await
        .expect("reader task");
    let reply = RawReply::parse(&bytes).unwrap_or_else(|| {
        panic!(
            "no HTTP reply after {sent} body bytes: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (reply, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_1_gib_form_post_is_refused_before_its_body_is_read() {
    let mut server = ServerProcess::start();
    let at_start = server.peak_rss_kib();
    let (reply, sent) = unsigned_form_post(server.store, 1 << 30).await;
    let peak = server.peak_rss_kib();
    eprintln!(
        "store peak RSS: {at_start} KiB at start, {peak} KiB after a 1 GiB unsigned form POST \
         ({} MiB of its body sent before the refusal)",
        sent / MIB as u64
    );
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (403, "AccessDenied"),
        "{}",
        reply.body
    );
    assert!(
        peak < 100 * 1024,
        "the store's peak RSS reached {peak} KiB (limit 100 MiB)"
    );
    assert!(
        sent < 512 * MIB as u64,
        "the server read {sent} bytes of a body it refuses"
    );
    assert!(server.is_running());
    still_serves(&server).await;
}

/// Files in the store's blob directory: committed objects and parts, and anything left behind.
fn blob_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.dir.path().join("store").join("blobs"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Starts a signed PUT to `key?query` whose body is announced at 8 MiB and sends 1 MiB of it;
/// the connection, for the caller to cut or leave silent.
async fn start_body(store: &StoreClient, key: &str, query: &str) -> tokio::net::TcpStream {
    let url = store.url(key, query);
    let headers = store.sign_headers(
        "PUT",
        &url,
        vec![("content-length".into(), (8 * MIB).to_string())],
        ferry_engine::dialect::s3::UNSIGNED_PAYLOAD,
    );
    let target = url
        .trim_start_matches(store.grant.endpoint.as_str())
        .to_owned();
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = raw_http::connect(store.store_addr()).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bytes(MIB, 80)).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Waits (at most 10 s) until the store has written `want` blob files (the partial one shows).
async fn wait_for_blob_files(server: &TestServer, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while blob_files(server) != want {
        assert!(
            Instant::now() < deadline,
            "the store never started the blob"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a body (see [`start_body`]), lets the store begin its blob, and resets the connection.
async fn hang_up_mid_body(server: &TestServer, store: &StoreClient, key: &str, query: &str) {
    let before = blob_files(server);
    let stream = start_body(store, key, query).await;
    wait_for_blob_files(server, before + 1).await;
    stream.set_zero_linger().unwrap();
    drop(stream);
}

/// Waits (at most 10 s) for the blob directory to hold `want` files; the count it saw last.
async fn settle_blob_files(server: &TestServer, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = blob_files(server);
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_body_cut_short_leaves_no_partial_blob() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}cut.bin", store.grant.prefix);

    hang_up_mid_body(&server, &store, &key, "").await;
    assert_eq!(
        settle_blob_files(&server, 0).await,
        0,
        "a PutObject cut short left its partial blob"
    );

    let upload = store.create_multipart(&key).await;
    let one = bytes(5 * MIB, 81);
    assert_eq!(
        store
            .upload_part(&key, &upload, 1, one.clone())
            .await
            .status,
        200
    );
    hang_up_mid_body(
        &server,
        &store,
        &key,
        &format!("partNumber=2&uploadId={upload}"),
    )
    .await;
    assert_eq!(
        settle_blob_files(&server, 1).await,
        1,
        "an UploadPart cut short left its partial blob"
    );
    // Nothing else was lost: the whole part 2 goes through, and the object is intact.
    let two = bytes(1000, 82);
    assert_eq!(
        store
            .upload_part(&key, &upload, 2, two.clone())
            .await
            .status,
        200
    );
    let done = store
        .complete(&key, &upload, &[(1, md5_hex(&one)), (2, md5_hex(&two))])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let stored = server.server.object_bytes(&store.grant.bucket, &key).await;
    assert_eq!(stored.unwrap(), Some([one.clone(), two.clone()].concat()));
    assert_eq!(
        blob_files(&server),
        2,
        "the object's two parts, nothing else (Complete references them, copies nothing)"
    );
    // A restart sweeps blobs no row references: the object's parts are referenced.
    let TestServer {
        server: running,
        dir,
        ..
    } = server;
    running.stop().await;
    let again = ferry_server::Server::start(ferry_server::ServeOptions::new(dir.path()))
        .await
        .unwrap();
    let stored = again.object_bytes(&store.grant.bucket, &key).await;
    assert_eq!(
        stored.unwrap(),
        Some([one, two].concat()),
        "intact after a restart"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("store").join("blobs"))
            .unwrap()
            .count(),
        2
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_ended_and_leaves_no_blob() {
    let server = TestServer::start_with(|o| o.body_read_timeout = Duration::from_secs(1)).await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}silent.bin", store.grant.prefix);
    // The client sends part of the body and then nothing, without closing (a laptop asleep,
    // a dead link).
    let mut stream = start_body(&store, &key, "").await;
    wait_for_blob_files(&server, 1).await;
    let reply = within(
        15,
        "the answer to a stalled body",
        raw_http::read_all(&mut stream),
    )
    .await;
    let reply = RawReply::parse(&reply).expect("the store answers a stalled body");
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "RequestTimeout"),
        "{}",
        reply.body
    );
    assert_eq!(
        settle_blob_files(&server, 0).await,
        0,
        "the partial blob is gone"
    );
    assert_eq!(store.head(&key).await.status, 404);
    assert_eq!(store.put(&key, bytes(10, 87)).await.status, 200);
}

#[tokio::test]
async fn stopping_the_server_mid_body_leaves_no_partial_blob() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}stopped.bin", store.grant.prefix);
    let _stream = start_body(&store, &key, "").await;
    wait_for_blob_files(&server, 1).await;
    let TestServer {
        server: running,
        dir,
        ..
    } = server;
    running.stop().await;
    let blobs = dir.path().join("store").join("blobs");
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        tokio::task::yield_now().await;
        let left = std::fs::read_dir(&blobs).unwrap().count();
        if left == 0 || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        left, 0,
        "a request dropped at shutdown left its partial blob until restart"
    );
}

/// Opens a connection and sends a request head one byte every 200 ms, never finishing it.
/// Returns how long the server kept the connection open (`None`: still open after 15 s).
async fn slowloris(addr: SocketAddr) -> Option<Duration> {
    let mut stream = raw_http::connect(addr).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}",
        "a".repeat(200)
    );
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    for byte in head.bytes().cycle() {
        if started.elapsed() > Duration::from_secs(15) {
            return None;
        }
        if stream.write_all(&[byte]).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // An answer (such as 408) ends it too: the server is done with this client.
            Ok(Ok(_)) => return Some(started.elapsed()),
            Err(_) => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_timed_out_while_others_are_served() {
    let server = TestServer::start_with(|o| o.header_read_timeout = Duration::from_secs(2)).await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let api: SocketAddr = server.api.trim_start_matches("http://").parse().unwrap();
    let slow_api = tokio::spawn(slowloris(api));
    let slow_store = tokio::spawn(slowloris(store.store_addr()));
    // Meanwhile everyone else is served as usual.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let key = format!("{}meanwhile.bin", store.grant.prefix);
    assert_eq!(store.put(&key, bytes(100, 83)).await.status, 200);
    let me = alice.get("/api/v1/sessions/current").await;
    assert_eq!(me.status, 200, "{}", me.body);
    for (name, slow) in [("API", slow_api), ("store", slow_store)] {
        let closed = slow.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("the {name} kept a slowloris open 15 s"));
        assert!(
            closed < Duration::from_secs(8),
            "the {name} closed a slow request head only after {closed:?}"
        );
    }
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused_and_the_server_serves_on() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let api: SocketAddr = server.api.trim_start_matches("http://").parse().unwrap();

    // A 1 MiB header, to the API and to the store.
    for addr in [api, store.store_addr()] {
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}",
            "b".repeat(MIB)
        );
        let reply = raw_http::exchange(addr, &head, b"").await;
        assert_eq!(reply.status, 431, "{addr}: {}", reply.head);
    }
    // A signed request for a 16 KiB key (S3 allows 1 KiB), to the store.
    let long = format!("{}{}", store.grant.prefix, "k".repeat(16 * 1024));
    let reply = store.put(&long, b"x".to_vec()).await;
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "KeyTooLongError"),
        "{}",
        reply.body
    );

    // A JSON body of unknown length that never stops: refused once past the API's limit.
    let mut stream = raw_http::connect(api).await;
    let head = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut sent = 0;
    while sent < 64 * MIB {
        let write =
            tokio::time::timeout(Duration::from_secs(10), stream.write_all(chunk.as_bytes()));
        if !matches!(write.await, Ok(Ok(()))) {
            break;
        }
        sent += 64 * 1024;
    }
    let reply = RawReply::parse(&raw_http::read_all(&mut stream).await).expect("a reply");
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("payload_too_large"), "{}", reply.body);

    // JSON nested deeper than any parser should follow.
    let nested = format!("{}{}", "[".repeat(60_000), "]".repeat(60_000));
    let reply = alice.post_raw("/api/v1/uploads", nested.into_bytes()).await;
    assert_eq!(reply.error(413), "payload_too_large");
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let reply = alice.post_raw("/api/v1/uploads", nested.into_bytes()).await;
    assert_eq!(reply.error(400), "invalid_request");

    // Still serving.
    let key = format!("{}fine.bin", store.grant.prefix);
    assert_eq!(store.put(&key, bytes(10, 84)).await.status, 200);
    let me = alice.get("/api/v1/sessions/current").await;
    assert_eq!(me.status, 200);
}

#[tokio::test]
async fn malformed_and_oversized_complete_bodies_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}xml.bin", store.grant.prefix);
    let upload = store.create_multipart(&key).await;
    let part = bytes(1000, 85);
    assert_eq!(
        store
            .upload_part(&key, &upload, 1, part.clone())
            .await
            .status,
        200
    );
    let query = format!("uploadId={upload}");
    let good_part = format!(
        "<Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>",
        md5_hex(&part)
    );
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">\
                <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>\
                <CompleteMultipartUpload><Part><PartNumber>&c;</PartNumber></Part>\
                </CompleteMultipartUpload>";
    for (what, body) in [
        ("not XML", "this is not xml".to_owned()),
        ("unclosed", format!("<CompleteMultipartUpload>{good_part}")),
        ("wrong root", format!("<Other>{good_part}</Other>")),
        (
            "not a number",
            "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber></Part>\
             </CompleteMultipartUpload>"
                .to_owned(),
        ),
        ("entity bomb", bomb.to_owned()),
        ("empty", String::new()),
    ] {
        let reply = store
            .send("POST", &key, &query, vec![], body.into_bytes())
            .await;
        assert_eq!(reply.status / 100, 4, "{what}: {}", reply.body);
        assert!(!reply.s3_code().is_empty(), "{what}: {}", reply.body);
    }
    // A well-formed body padded past the store's limit for XML is refused before it is parsed.
    let padded = format!(
        "<CompleteMultipartUpload>{good_part}{}</CompleteMultipartUpload>",
        " ".repeat(5 * MIB)
    );
    let reply = store
        .send("POST", &key, &query, vec![], padded.into_bytes())
        .await;
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "MaxMessageLengthExceeded"),
        "{}",
        reply.body
    );
    // The upload is untouched: a proper Complete works.
    let done = store.complete(&key, &upload, &[(1, md5_hex(&part))]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let stored = server.server.object_bytes(&store.grant.bucket, &key).await;
    assert_eq!(stored.unwrap(), Some(part));
}

#[tokio::test]
async fn a_malformed_content_md5_is_refused_and_stores_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}md5.bin", store.grant.prefix);
    let body = bytes(2048, 86);
    for bad in ["not base64!", "AAAA", "", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="] {
        let headers = vec![("Content-MD5".to_owned(), bad.to_owned())];
        let reply = store.send("PUT", &key, "", headers, body.clone()).await;
        assert_eq!(reply.status, 400, "{bad:?}: {}", reply.body);
        assert_eq!(reply.s3_code(), "InvalidDigest", "{bad:?}: {}", reply.body);
    }
    assert_eq!(store.head(&key).await.status, 404);
    assert_eq!(blob_files(&server), 0);
}

#[tokio::test]
async fn a_body_that_trickles_a_byte_now_and_then_is_ended_and_leaves_no_blob() {
    let server = TestServer::start_with(|o| o.body_read_timeout = Duration::from_secs(1)).await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}trickle.bin", store.grant.prefix);
    let mut stream = start_body(&store, &key, "").await;
    wait_for_blob_files(&server, 1).await;
    // A byte every 100 ms: never silent for the body timeout, but far from an upload.
    let trickle = async {
        for _ in 0..200 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        raw_http::read_all(&mut stream).await
    };
    let reply = within(30, "the answer to a trickling body", trickle).await;
    let reply = RawReply::parse(&reply).expect("the store answers a trickling body");
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "RequestTimeout"),
        "{}",
        reply.body
    );
    assert_eq!(
        settle_blob_files(&server, 0).await,
        0,
        "the partial blob is gone"
    );
}
