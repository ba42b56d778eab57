//! The server's security rules, tried the way an attacker would: signatures other than SigV4,
//! one user reaching for another's uploads, sessions and grants that outlive a sign-out or a
//! disabled account, and password guessing in parallel and from one address.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::{Role, SignIn};
use ferry_server::ThrottlePolicy;
use ferry_tests::s3xml::{PartList, UploadList};
use ferry_tests::server_process::server_bin;
use ferry_tests::{StoreClient, TestServer, bytes, md5_hex};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;

const MIB: usize = 1024 * 1024;

fn hmac_sha1_base64(secret: &str, text: &str) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn sigv2_signed_requests_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let grant = &store.grant;
    let key = format!("{}v2.txt", grant.prefix);
    let path = format!("/{}/{key}", grant.bucket);
    let body = b"signed the old way";

    // Header auth: `Authorization: AWS <key>:<HMAC-SHA1>` over the SigV2 string to sign.
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap();
    let to_sign = format!(
        "PUT\n\n\n\nx-amz-date:{date}\nx-amz-security-token:{}\n{path}",
        grant.security_token
    );
    let signature = hmac_sha1_base64(&grant.secret_access_key, &to_sign);
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nx-amz-date: {date}\r\n\
         x-amz-security-token: {}\r\nAuthorization: AWS {}:{signature}",
        store.store_addr(),
        body.len(),
        grant.security_token,
        grant.access_key_id
    );
    let reply = ferry_tests::raw_http::exchange(store.store_addr(), &head, body).await;
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "InvalidRequest"),
        "a SigV2 header must be refused: {}",
        reply.body
    );

    // Query auth: `?AWSAccessKeyId=…&Expires=…&Signature=…`.
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 300;
    let to_sign = format!(
        "PUT\n\n\n{expires}\nx-amz-security-token:{}\n{path}",
        grant.security_token
    );
    let signature = hmac_sha1_base64(&grant.secret_access_key, &to_sign);
    let query = format!(
        "AWSAccessKeyId={}&Expires={expires}&Signature={}",
        grant.access_key_id,
        ferry_engine::dialect::uri_encode(&signature, false)
    );
    let head = format!(
        "PUT {path}?{query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\
         x-amz-security-token: {}",
        store.store_addr(),
        body.len(),
        grant.security_token
    );
    let reply = ferry_tests::raw_http::exchange(store.store_addr(), &head, body).await;
    assert_eq!(
        (reply.status, reply.s3_code().as_str()),
        (400, "InvalidRequest"),
        "a SigV2 presigned URL must be refused: {}",
        reply.body
    );
    assert_eq!(store.head(&key).await.status, 404, "nothing was stored");
    // SigV4 with the same grant still works.
    assert_eq!(store.put(&key, body.to_vec()).await.status, 200);
}

#[tokio::test]
async fn one_user_cannot_put_complete_list_or_abort_anothers_uploads() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let bob = server.user("bob", Role::User).await;
    let a = StoreClient::new(alice.grant().await);
    let b = StoreClient::new(bob.grant().await);
    let b_key = format!("{}secret.bin", b.grant.prefix);
    let a_key = format!("{}mine.bin", a.grant.prefix);
    let b_upload = b.create_multipart(&b_key).await;
    let part = bytes(5 * MIB, 40);
    let last = bytes(100, 41);
    assert_eq!(
        b.upload_part(&b_key, &b_upload, 1, part.clone())
            .await
            .status,
        200
    );
    let parts = [(1, md5_hex(&part))];

    // Under Bob's key, with Bob's upload id: every operation is outside Alice's prefix.
    let denied = [
        a.put(&b_key, b"x".to_vec()).await,
        a.send("POST", &b_key, "uploads=", vec![], vec![]).await,
        a.upload_part(&b_key, &b_upload, 2, last.clone()).await,
        a.list_parts(&b_key, &b_upload, "").await,
        a.complete(&b_key, &b_upload, &parts).await,
        a.abort(&b_key, &b_upload).await,
        a.list_uploads(&format!(
            "prefix={}",
            ferry_engine::dialect::uri_encode(&b.grant.prefix, false)
        ))
        .await,
    ];
    for (i, reply) in denied.iter().enumerate() {
        assert_eq!(
            (reply.status, reply.s3_code().as_str()),
            (403, "AccessDenied"),
            "operation #{i}: {}",
            reply.body
        );
    }
    // Bob's upload id under Alice's own key: no such upload for her.
    let foreign_id = [
        a.upload_part(&a_key, &b_upload, 2, last.clone()).await,
        a.list_parts(&a_key, &b_upload, "").await,
        a.complete(&a_key, &b_upload, &parts).await,
        a.abort(&a_key, &b_upload).await,
    ];
    for (i, reply) in foreign_id.iter().enumerate() {
        assert_eq!(
            reply.s3_code(),
            "NoSuchUpload",
            "operation #{i}: {}",
            reply.body
        );
    }
    // Listing without a prefix shows only her own uploads (none).
    let listed: UploadList = a.list_uploads("").await.xml(200);
    assert!(listed.uploads.is_empty(), "{listed:?}");
    assert_eq!(
        server
            .server
            .object_bytes(&b.grant.bucket, &a_key)
            .await
            .unwrap(),
        None
    );

    // Bob's upload came through untouched and completes with his bytes.
    let listed: PartList = b.list_parts(&b_key, &b_upload, "").await.xml(200);
    assert_eq!(listed.numbers(), [1]);
    assert_eq!(
        b.upload_part(&b_key, &b_upload, 2, last.clone())
            .await
            .status,
        200
    );
    let done = b
        .complete(
            &b_key,
            &b_upload,
            &[(1, md5_hex(&part)), (2, md5_hex(&last))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let stored = server
        .server
        .object_bytes(&b.grant.bucket, &b_key)
        .await
        .unwrap();
    assert_eq!(stored, Some([part, last].concat()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_or_disabling_ends_sessions_and_grants() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let bob = server.user("bob", Role::User).await;
    let bob_store = StoreClient::new(bob.grant().await);
    let key = format!("{}before.bin", bob_store.grant.prefix);
    assert_eq!(bob_store.put(&key, b"x".to_vec()).await.status, 200);

    // A signed-out session gets no grant.
    assert_eq!(alice.delete("/api/v1/sessions/current").await.status, 204);
    assert_eq!(
        alice.post("/api/v1/grants", &json!({})).await.error(401),
        "unauthenticated"
    );

    // `ferry-server user disable`, run beside the running server on its data dir.
    let data_dir = server.dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(server_bin())
            .args(["user", "disable", "bob", "--data-dir"])
            .arg(data_dir)
            .output()
            .expect("run ferry-server user disable")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        bob.post("/api/v1/grants", &json!({})).await.error(401),
        "unauthenticated",
        "the disabled user's session is over"
    );
    assert_eq!(
        bob.get("/api/v1/uploads").await.error(401),
        "unauthenticated"
    );
    let refused = bob_store
        .put(
            &format!("{}after.bin", bob_store.grant.prefix),
            b"y".to_vec(),
        )
        .await;
    assert_eq!(
        (refused.status, refused.s3_code().as_str()),
        (403, "InvalidAccessKeyId"),
        "the disabled user's grant is over: {}",
        refused.body
    );
    let upload = bob_store
        .send("POST", &key, "uploads=", vec![], vec![])
        .await;
    assert_eq!(upload.s3_code(), "InvalidAccessKeyId");
}

/// Signs in from `from` (a loopback address of its own); the status.
async fn sign_in_from(server: &TestServer, from: IpAddr, user: &str, password: &str) -> u16 {
    let http = reqwest::Client::builder()
        .local_address(from)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    http.post(format!("{}/api/v1/sessions", server.api))
        .json(&SignIn {
            username: user.into(),
            password: password.into(),
            device: None,
        })
        .send()
        .await
        .expect("the API answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_password_guesses_are_throttled() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let guesses = (0..30).map(|i| {
        let server = &server;
        async move { server.sign_in("alice", &format!("guess-{i}")).await.status }
    });
    let statuses = ferry_tests::within(
        120,
        "30 parallel guesses",
        futures::future::join_all(guesses),
    )
    .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("30 parallel guesses: {checked} checked, {limited} refused as rate-limited");
    assert_eq!(checked + limited, 30, "{statuses:?}");
    assert!(
        checked <= ThrottlePolicy::default().per_user as usize,
        "{checked} parallel guesses were checked against the password: {statuses:?}"
    );
    assert_eq!(
        server.sign_in("alice", &password).await.error(429),
        "rate_limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_limit_is_separate_from_the_per_user_limit() {
    let policy = ThrottlePolicy {
        per_user: 3,
        per_address: 6,
        slow_after: 100,
        ..ThrottlePolicy::default()
    };
    let server = TestServer::start_with(|o| o.throttle = policy).await;
    let alice = server.add_user("alice", Role::User);
    let bob = server.add_user("bob", Role::User);
    let carol = server.add_user("carol", Role::User);
    let ip = |last: u8| IpAddr::from([127, 0, 0, last]);

    // Per user: three failures for alice, each from another address, lock alice everywhere…
    for last in 11..14 {
        assert_eq!(sign_in_from(&server, ip(last), "alice", "wrong").await, 401);
    }
    assert_eq!(sign_in_from(&server, ip(14), "alice", &alice).await, 429);
    // …but not the address it is tried from, nor other users.
    assert_eq!(sign_in_from(&server, ip(14), "bob", &bob).await, 201);

    // Per address: six failures from one address, each for another (or no) user, lock the
    // address for everyone, even with the right password…
    for i in 0..6 {
        let status = sign_in_from(&server, ip(20), &format!("nobody{i}"), "wrong").await;
        assert_eq!(status, 401);
    }
    assert_eq!(sign_in_from(&server, ip(20), "carol", &carol).await, 429);
    // …while the same user from another address is fine.
    assert_eq!(sign_in_from(&server, ip(21), "carol", &carol).await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_whose_client_hangs_up_before_the_answer_is_not_counted() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let addr: std::net::SocketAddr = server.api.trim_start_matches("http://").parse().unwrap();
    // A `ferry` killed while signing in: the request arrives whole, the client is gone before
    // the password is checked. Wrong passwords, twice the per-user limit of them: answered,
    // each would count.
    for i in 0..2 * ThrottlePolicy::default().per_user {
        use tokio::io::AsyncWriteExt;
        let body = format!(r#"{{"username":"alice","password":"wrong-{i}"}}"#);
        let mut stream = ferry_tests::raw_http::connect(addr).await;
        let head = format!(
            "POST /api/v1/sessions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        drop(stream);
    }
    // The checks still run to their end (hanging up buys no extra checks); once they are
    // done, nothing of them counts.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.sign_in("alice", &password).await;
        if reply.status == 201 {
            break;
        }
        assert_eq!(reply.status, 429, "{}", reply.body);
        assert!(
            std::time::Instant::now() < deadline,
            "locked out by answers nobody got: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
