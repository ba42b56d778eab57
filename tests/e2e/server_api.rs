//! The JSON API: sign-in and its throttle, sessions, grants, confirmations, history, bad input.

use std::time::Duration;

use ferry_protocol::{Grant, Role, Session, Stats, UploadPage, UploadRecord, UploadStatus};
use ferry_tests::{ApiClient, StoreClient, TestServer, bytes, md5_hex};
use serde_json::json;
use time::OffsetDateTime;

#[tokio::test]
async fn sign_in_good_bad_and_rate_limited() {
    let server = TestServer::start().await;
    let password = server.add_user("alice", Role::User);
    let session: Session = server.sign_in("alice", &password).await.json(201);
    assert_eq!(session.user.name, "alice");
    assert_eq!(session.user.role, Role::User);
    assert!(session.expires_at > OffsetDateTime::now_utc());

    assert_eq!(
        server.sign_in("alice", "wrong").await.error(401),
        "invalid_credentials"
    );
    assert_eq!(
        server.sign_in("nobody", "wrong").await.error(401),
        "invalid_credentials"
    );
    assert_eq!(
        server.sign_in("../../etc", "x").await.error(401),
        "invalid_credentials"
    );
    for _ in 0..4 {
        server.sign_in("alice", "wrong").await;
    }
    // Five failures: even the right password is refused for a while.
    let limited = server.sign_in("alice", &password).await;
    assert_eq!(limited.error(429), "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn sessions_are_required_checked_and_ended() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    assert_eq!(
        server
            .anonymous()
            .post("/api/v1/grants", &json!({}))
            .await
            .error(401),
        "unauthenticated"
    );
    let mut forged = server.anonymous();
    forged.token = Some("made-up".into());
    assert_eq!(
        forged.post("/api/v1/grants", &json!({})).await.error(401),
        "unauthenticated"
    );

    let me: ferry_protocol::User = alice.get("/api/v1/sessions/current").await.json(200);
    assert_eq!(me.name, "alice");
    assert_eq!(alice.delete("/api/v1/sessions/current").await.status, 204);
    assert_eq!(
        alice.post("/api/v1/grants", &json!({})).await.error(401),
        "unauthenticated"
    );
}

#[tokio::test]
async fn sessions_expire() {
    let server = TestServer::start_with(|o| o.session_ttl = Duration::from_secs(1)).await;
    let alice = server.user("alice", Role::User).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        alice.post("/api/v1/grants", &json!({})).await.error(401),
        "session_expired"
    );
}

#[tokio::test]
async fn grants_have_the_documented_shape() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let id = alice.session.as_ref().unwrap().user.id;
    let before = OffsetDateTime::now_utc();
    let reply = alice.post("/api/v1/grants", &json!({})).await;
    let raw: serde_json::Value = reply.json(201);
    for field in [
        "provider",
        "endpoint",
        "region",
        "bucket",
        "prefix",
        "access_key_id",
        "secret_access_key",
        "security_token",
        "expires_at",
        "policy",
    ] {
        assert!(raw.get(field).is_some(), "missing {field}: {raw}");
    }
    let grant: Grant = serde_json::from_value(raw).unwrap();
    assert_eq!(grant.prefix, format!("uploads/{id}/"));
    assert_eq!(grant.endpoint, server.server.store_url());
    let ttl = (grant.expires_at - before).whole_seconds();
    assert!((899..=901).contains(&ttl), "default TTL 900 s, got {ttl}");
    let policy = grant.policy.to_string();
    assert!(
        policy.contains(&format!("arn:aws:s3:::{}/uploads/{id}/*", grant.bucket)),
        "{policy}"
    );
    assert!(policy.contains("s3:PutObject"));
    assert!(!policy.contains("s3:GetObject\""), "no reads: {policy}");

    let short = alice.grant_for(5).await;
    assert!((short.expires_at - OffsetDateTime::now_utc()).whole_seconds() <= 5);
    let capped = alice.grant_for(100_000).await;
    assert!((capped.expires_at - OffsetDateTime::now_utc()).whole_seconds() <= 900);
    let two = alice.grant().await;
    assert_ne!(two.access_key_id, grant.access_key_id);
    assert_ne!(two.security_token, grant.security_token);
    let unknown = alice.post("/api/v1/grants", &json!({"ttl": 5})).await;
    assert_eq!(unknown.error(400), "invalid_request");
}

/// Puts an object with Alice's grant; returns `(key, etag, size)`.
async fn stored(store: &StoreClient, name: &str, len: usize) -> (String, String, u64) {
    let key = format!("{}{name}", store.grant.prefix);
    let body = bytes(len, len as u64);
    let reply = store.put(&key, body.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (key, md5_hex(&body), len as u64)
}

fn confirmation(
    upload_id: &str,
    grant: &Grant,
    key: &str,
    etag: &str,
    size: u64,
) -> serde_json::Value {
    json!({
        "upload_id": upload_id, "bucket": grant.bucket, "key": key, "size": size,
        "etag": etag, "checksum": "sha256:abc", "name": "report.pdf", "device": "laptop"
    })
}

async fn history(client: &ApiClient, query: &str) -> UploadPage {
    client
        .get(&format!("/api/v1/uploads{query}"))
        .await
        .json(200)
}

#[tokio::test]
async fn confirmations_are_checked_idempotent_and_merge_with_the_store_record() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let grant = store.grant.clone();
    let (key, etag, size) = stored(&store, "report.pdf", 2048).await;

    // The store recorded it before anyone confirmed.
    let page = history(&alice, "").await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].status, UploadStatus::Stored);
    assert_eq!(
        page.items[0].confirmed_by,
        ferry_protocol::ConfirmedBy::Store
    );

    let body = confirmation("up-1", &grant, &key, &format!("\"{etag}\""), size);
    let first: UploadRecord = alice.post("/api/v1/uploads", &body).await.json(200);
    assert_eq!(first.status, UploadStatus::Confirmed);
    assert_eq!(first.confirmed_by, ferry_protocol::ConfirmedBy::Client);
    assert_eq!(
        (first.name.as_str(), first.device.as_deref()),
        ("report.pdf", Some("laptop"))
    );
    let again: UploadRecord = alice.post("/api/v1/uploads", &body).await.json(200);
    assert_eq!(again.id, first.id);
    let page = history(&alice, "").await;
    assert_eq!(page.items.len(), 1, "store and client records are one row");

    let wrong_size = confirmation("up-2", &grant, &key, &etag, size + 1);
    assert_eq!(
        alice.post("/api/v1/uploads", &wrong_size).await.error(422),
        "object_mismatch"
    );
    let wrong_etag = confirmation("up-2", &grant, &key, &md5_hex(b"x"), size);
    assert_eq!(
        alice.post("/api/v1/uploads", &wrong_etag).await.error(422),
        "object_mismatch"
    );
    let missing = confirmation(
        "up-2",
        &grant,
        &format!("{}nothing", grant.prefix),
        &etag,
        size,
    );
    assert_eq!(
        alice.post("/api/v1/uploads", &missing).await.error(404),
        "object_missing"
    );
    let outside = confirmation("up-2", &grant, "uploads/999/x", &etag, size);
    assert_eq!(
        alice.post("/api/v1/uploads", &outside).await.error(403),
        "forbidden"
    );
    let (other_key, other_etag, other_size) = stored(&store, "other.bin", 10).await;
    let reused = confirmation("up-1", &grant, &other_key, &other_etag, other_size);
    assert_eq!(
        alice.post("/api/v1/uploads", &reused).await.error(409),
        "conflict"
    );

    let page = history(&alice, "").await;
    assert_eq!(page.items.len(), 2, "refusals record nothing");
    assert_eq!(
        page.items
            .iter()
            .filter(|r| r.status == UploadStatus::Confirmed)
            .count(),
        1
    );
}

#[tokio::test]
async fn history_filters_pages_and_admin_views() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let bob = server.user("bob", Role::User).await;
    let admin = server.user("admin", Role::Admin).await;
    let a = StoreClient::new(alice.grant().await);
    let b = StoreClient::new(bob.grant().await);
    for (i, name) in [
        "alpha.txt",
        "beta.txt",
        "gamma.jpg",
        "delta.jpg",
        "epsilon.txt",
    ]
    .iter()
    .enumerate()
    {
        stored(&a, name, 100 + i).await;
    }
    let (bkey, betag, bsize) = stored(&b, "bob.bin", 50).await;
    let conf = confirmation("bob-1", &b.grant, &bkey, &betag, bsize);
    let _: UploadRecord = bob.post("/api/v1/uploads", &conf).await.json(200);

    // Own rows only, newest first, paged without overlap.
    let first = history(&alice, "?limit=2").await;
    assert_eq!(
        first
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["epsilon.txt", "delta.jpg"]
    );
    let cursor = first.next_cursor.clone().expect("more pages");
    let second = history(&alice, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(
        second
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["gamma.jpg", "beta.txt"]
    );
    let third = history(
        &alice,
        &format!("?limit=2&cursor={}", second.next_cursor.unwrap()),
    )
    .await;
    assert_eq!(third.items.len(), 1);
    assert!(third.next_cursor.is_none());

    assert_eq!(history(&alice, "?q=.jpg").await.items.len(), 2);
    assert_eq!(
        history(&alice, "?q=%25").await.items.len(),
        0,
        "% is literal in q"
    );
    assert_eq!(history(&alice, "?status=confirmed").await.items.len(), 0);
    assert_eq!(history(&alice, "?status=stored").await.items.len(), 5);
    assert_eq!(
        history(&alice, "?since=2000-01-01&until=2999-01-01")
            .await
            .items
            .len(),
        5
    );
    assert_eq!(history(&alice, "?until=2000-01-01").await.items.len(), 0);
    let today = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        history(&alice, &format!("?since={today}&until={today}"))
            .await
            .items
            .len(),
        5
    );
    assert_eq!(
        alice.get("/api/v1/uploads?user=bob").await.error(403),
        "forbidden"
    );
    assert_eq!(history(&alice, "?user=alice").await.items.len(), 5);

    // Admins see everyone and can narrow by user.
    assert_eq!(history(&admin, "").await.items.len(), 6);
    let bobs = history(&admin, "?user=bob&status=confirmed").await;
    assert_eq!(bobs.items.len(), 1);
    assert_eq!(bobs.items[0].user, "bob");

    let csv = admin.get("/api/v1/uploads.csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.body.lines().count(),
        7,
        "header + 6 rows:\n{}",
        csv.body
    );
    assert!(
        csv.body
            .lines()
            .next()
            .unwrap()
            .starts_with("id,user,bucket,key,name,size")
    );
    let stats: Stats = admin.get("/api/v1/uploads/stats?by=day").await.json(200);
    let alice_day = stats
        .rows
        .iter()
        .find(|r| r.user == "alice")
        .expect("alice's day");
    assert_eq!(alice_day.day, today);
    assert_eq!(
        (alice_day.count, alice_day.bytes),
        (5, 100 + 101 + 102 + 103 + 104)
    );

    assert_eq!(
        alice.get("/api/v1/uploads.csv").await.error(403),
        "forbidden"
    );
    assert_eq!(
        alice.get("/api/v1/uploads/stats?by=day").await.error(403),
        "forbidden"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let (key, etag, size) = stored(&store, "keep.bin", 10).await;

    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "invalid_request"),
        (b"[]".to_vec(), 400, "invalid_request"),
        (vec![0xff, 0xfe, b'{', b'}'], 400, "invalid_request"),
        (
            format!("{{\"upload_id\":\"{}\"}}", "x".repeat(100 * 1024)).into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        assert_eq!(
            alice.post_raw("/api/v1/uploads", body).await.error(status),
            code
        );
    }
    let mut unknown_field = confirmation("u", &store.grant, &key, &etag, size);
    unknown_field["extra"] = json!(1);
    assert_eq!(
        alice
            .post("/api/v1/uploads", &unknown_field)
            .await
            .error(400),
        "invalid_request"
    );
    for bad_key in [
        format!("{}../../etc/passwd", store.grant.prefix),
        format!("{}{}", store.grant.prefix, "k".repeat(1100)),
        format!("{}a\u{0}b", store.grant.prefix),
        String::new(),
    ] {
        let body = confirmation("u", &store.grant, &bad_key, &etag, size);
        assert_eq!(
            alice.post("/api/v1/uploads", &body).await.error(400),
            "invalid_key",
            "{bad_key:?}"
        );
    }
    let empty_name = json!({"upload_id": "u", "bucket": store.grant.bucket, "key": key, "size": size, "etag": etag, "name": ""});
    assert_eq!(
        alice.post("/api/v1/uploads", &empty_name).await.error(400),
        "invalid_request"
    );
    let negative = json!({"upload_id": "u", "bucket": store.grant.bucket, "key": key, "size": -1, "etag": etag, "name": "n"});
    assert_eq!(
        alice.post("/api/v1/uploads", &negative).await.error(400),
        "invalid_request"
    );
    for query in [
        "?bogus=1",
        "?cursor=abc",
        "?limit=0",
        "?limit=100000",
        "?since=yesterday",
        "?status=lost",
    ] {
        assert_eq!(
            alice
                .get(&format!("/api/v1/uploads{query}"))
                .await
                .error(400),
            "invalid_request",
            "{query}"
        );
    }
    assert_eq!(
        alice.get("/api/v1/nothing-here").await.error(404),
        "not_found"
    );
    assert_eq!(alice.delete("/api/v1/grants").await.status, 405);
    let odd_user = server
        .anonymous()
        .post(
            "/api/v1/sessions",
            &json!({"username": "\u{202e}x", "password": "p"}),
        )
        .await;
    assert_eq!(odd_user.error(401), "invalid_credentials");

    // Nothing above was recorded, and the server still works.
    let page = history(&alice, "").await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].status, UploadStatus::Stored);
    let ok: UploadRecord = alice
        .post(
            "/api/v1/uploads",
            &confirmation("u", &store.grant, &key, &etag, size),
        )
        .await
        .json(200);
    assert_eq!(ok.status, UploadStatus::Confirmed);
}

#[tokio::test]
async fn a_retried_put_is_one_history_row() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}retried.bin", store.grant.prefix);
    let body = bytes(4096, 70);
    // The client sends the same PUT again (its first answer was lost, say).
    for _ in 0..3 {
        assert_eq!(store.put(&key, body.clone()).await.status, 200);
    }
    let page = history(&alice, "").await;
    assert_eq!(
        page.items.len(),
        1,
        "a retried PUT is the same upload: {page:?}"
    );
    let confirmed: UploadRecord = alice
        .post(
            "/api/v1/uploads",
            &confirmation("c-1", &store.grant, &key, &md5_hex(&body), 4096),
        )
        .await
        .json(200);
    assert_eq!(confirmed.id, page.items[0].id);

    // Other bytes at the same key are another upload; so is the same bytes sent again after
    // the first was confirmed (it gets its own confirmation).
    let other = bytes(4096, 71);
    assert_eq!(store.put(&key, other.clone()).await.status, 200);
    assert_eq!(store.put(&key, body.clone()).await.status, 200);
    let page = history(&alice, "").await;
    assert_eq!(page.items.len(), 3, "{page:?}");
    let etags: Vec<&str> = page.items.iter().map(|r| r.etag.as_str()).collect();
    let (a, b) = (md5_hex(&body), md5_hex(&other));
    assert_eq!(etags, [a.as_str(), b.as_str(), a.as_str()]);
}

/// Many confirmations in one request: each checked as alone, recorded together; one that
/// fails its checks fails alone, in its place; a repeat is the same row; too many is refused.
#[tokio::test]
async fn a_batch_of_confirmations_is_recorded_at_once_and_bad_ones_fail_alone() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let mut keys = Vec::new();
    for i in 0..3u64 {
        let key = format!("{}batch-{i}.bin", store.grant.prefix);
        assert_eq!(store.put(&key, bytes(1000, i)).await.status, 200);
        keys.push(key);
    }
    let etag = |i: u64| md5_hex(&bytes(1000, i));
    let g = &store.grant;
    // (No object there: its place among the objects looked up is taken, not skipped.)
    let missing = format!("{}batch-missing.bin", g.prefix);
    let batch = json!({"uploads": [
        confirmation("b-0", g, &keys[0], &etag(0), 1000),
        confirmation("b-1", g, &keys[1], &etag(9), 1000),
        confirmation("b-2", g, "uploads/999/not-mine.bin", &etag(2), 1000),
        confirmation("b-4", g, &missing, &etag(2), 1000),
        confirmation("b-3", g, &keys[2], &etag(2), 1000),
        confirmation("b-0", g, &keys[0], &etag(0), 1000),
        confirmation("b-3", g, &keys[1], &etag(1), 1000),
    ]});
    let answer: ferry_protocol::BatchOutcome =
        alice.post("/api/v1/uploads/batch", &batch).await.json(200);
    let codes: Vec<String> = answer
        .results
        .iter()
        .map(|o| match o {
            ferry_protocol::ConfirmOutcome::Recorded(row) => format!("row {}", row.key),
            ferry_protocol::ConfirmOutcome::Refused(e) => serde_json::to_value(e.code)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned(),
        })
        .collect();
    assert_eq!(
        codes,
        [
            format!("row {}", keys[0]),
            "object_mismatch".into(),
            "forbidden".into(),
            "object_missing".into(),
            format!("row {}", keys[2]),
            format!("row {}", keys[0]),
            "conflict".into(),
        ]
    );
    let page = history(&alice, "?status=confirmed").await;
    assert_eq!(page.items.len(), 2, "{page:?}");

    let too_many: Vec<_> = (0..=ferry_protocol::MAX_BATCH)
        .map(|i| confirmation(&format!("x-{i}"), g, &keys[0], &etag(0), 1000))
        .collect();
    let refused = alice
        .post("/api/v1/uploads/batch", &json!({ "uploads": too_many }))
        .await;
    assert_eq!(refused.error(400), "invalid_request");
}
