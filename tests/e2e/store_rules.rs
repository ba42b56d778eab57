//! Every rule of the embedded store, exercised with SigV4-signed requests.

use ferry_engine::dialect::s3::sha256_hex;
use ferry_protocol::Role;
use ferry_tests::s3xml::{Completed, PartList, UploadList};
use ferry_tests::{StoreClient, TestServer, Token, bytes, md5_base64, md5_hex, multipart_etag};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn put_and_head_within_the_prefix() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}dir/a b+c%d#e?f~g=h ü.txt", store.grant.prefix);
    let body = bytes(1024, 1);
    let put = store.put(&key, body.clone()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let etag = put.headers["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert_eq!(etag, md5_hex(&body));
    let stored = server.server.object_bytes(&store.grant.bucket, &key).await;
    assert_eq!(stored.unwrap().as_deref(), Some(&body[..]));
    let head = store.head(&key).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-length"], "1024");
    // An empty object is an object too.
    let empty = format!("{}empty", store.grant.prefix);
    assert_eq!(store.put(&empty, vec![]).await.status, 200);
    assert_eq!(store.head(&empty).await.headers["content-length"], "0");
    assert_eq!(
        store
            .head(&format!("{}missing", store.grant.prefix))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn everything_outside_the_prefix_or_not_an_upload_is_denied() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let prefix = store.grant.prefix.clone();
    assert_eq!(
        store
            .put(&format!("{prefix}ok"), b"x".to_vec())
            .await
            .status,
        200
    );

    for key in [
        "uploads/999/x",
        "other/x",
        "uploads/x",
        &prefix[..prefix.len() - 1],
    ] {
        let reply = store.put(key, b"x".to_vec()).await;
        assert_eq!(
            (reply.status, reply.s3_code().as_str()),
            (403, "AccessDenied"),
            "{key}"
        );
    }
    // Reading, deleting and listing objects are not upload operations.
    for method in ["GET", "DELETE"] {
        let reply = store
            .send(method, &format!("{prefix}ok"), "", vec![], vec![])
            .await;
        assert_eq!(reply.s3_code(), "AccessDenied", "{method}");
    }
    let list = store
        .send_url(
            "GET",
            format!(
                "{}/{}?list-type=2",
                store.grant.endpoint, store.grant.bucket
            ),
            vec![],
            vec![],
        )
        .await;
    assert_eq!(list.s3_code(), "AccessDenied");
    let other_bucket = store
        .send_url(
            "PUT",
            format!("{}/elsewhere/{prefix}x", store.grant.endpoint),
            vec![],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(other_bucket.s3_code(), "AccessDenied");
    // A dot-dot segment cannot climb out of the prefix, sent raw (an HTTP client would
    // normalise it away) and percent-encoded; both are signed for the path the store sees.
    let signed = format!("/{}/{prefix}../999/x", store.grant.bucket);
    for wire in [
        signed.clone(),
        format!("/{}/{prefix}%2E%2E/999/x", store.grant.bucket),
        format!("/{}/{prefix}%2e%2e/999/x", store.grant.bucket),
    ] {
        let climb = store.raw("PUT", &signed, &wire, vec![], b"x").await;
        assert_eq!(
            (climb.status, climb.s3_code().as_str()),
            (400, "InvalidArgument"),
            "{wire}: {}",
            climb.body
        );
    }
    assert_eq!(
        server
            .server
            .object_bytes(&store.grant.bucket, "uploads/999/x")
            .await
            .unwrap(),
        None
    );
    let long = format!("{prefix}{}", "k".repeat(1100));
    assert_eq!(
        store.put(&long, b"x".to_vec()).await.s3_code(),
        "KeyTooLongError"
    );
}

#[tokio::test]
async fn security_token_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let grant = alice.grant().await;
    let key = format!("{}t", grant.prefix);

    let mut store = StoreClient::new(grant.clone());
    store.token = Token::Missing;
    assert_eq!(
        store.put(&key, b"x".to_vec()).await.s3_code(),
        "AccessDenied"
    );
    store.token = Token::Other("not-the-token".into());
    assert_eq!(
        store.put(&key, b"x".to_vec()).await.s3_code(),
        "InvalidToken"
    );
    // A token of another grant of the same user is wrong too.
    store.token = Token::Other(alice.grant().await.security_token);
    assert_eq!(
        store.put(&key, b"x".to_vec()).await.s3_code(),
        "InvalidToken"
    );

    let mut forged = StoreClient::new(grant.clone());
    forged.secret = Some("wrong-secret".into());
    assert_eq!(
        forged.put(&key, b"x".to_vec()).await.s3_code(),
        "SignatureDoesNotMatch"
    );

    let mut unknown = grant.clone();
    unknown.access_key_id = "FERRYUNKNOWN".into();
    assert_eq!(
        StoreClient::new(unknown)
            .put(&key, b"x".to_vec())
            .await
            .s3_code(),
        "InvalidAccessKeyId"
    );

    let unsigned = reqwest::Client::new()
        .put(StoreClient::new(grant.clone()).url(&key, ""))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    assert_eq!(
        StoreClient::new(grant)
            .put(&key, b"x".to_vec())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn expired_credentials_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let grant = alice.grant_for(1).await;
    let store = StoreClient::new(grant);
    let key = format!("{}late", store.grant.prefix);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = store.put(&key, b"x".to_vec()).await;
    assert_eq!(reply.s3_code(), "ExpiredToken", "{}", reply.body);
}

#[tokio::test]
async fn presigned_urls_carry_the_token() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let mut store = StoreClient::new(alice.grant().await);
    let key = format!("{}presigned.bin", store.grant.prefix);
    let http = reqwest::Client::new();
    let url = store.presign("PUT", &key, 300);
    let reply = http.put(&url).body("hello").send().await.unwrap();
    assert_eq!(
        reply.status().as_u16(),
        200,
        "{}",
        reply.text().await.unwrap()
    );
    assert_eq!(store.head(&key).await.headers["content-length"], "5");

    store.token = Token::Other("forged".into());
    let reply = http
        .put(store.presign("PUT", &key, 300))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status().as_u16(),
        400,
        "S3 answers InvalidToken with 400"
    );
    assert!(reply.text().await.unwrap().contains("InvalidToken"));
}

#[tokio::test]
async fn content_md5_is_verified() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}digest", store.grant.prefix);
    let body = bytes(4096, 2);
    let wrong = vec![("Content-MD5".to_owned(), md5_base64(b"something else"))];
    let reply = store.send("PUT", &key, "", wrong, body.clone()).await;
    assert_eq!(reply.s3_code(), "BadDigest");
    assert_eq!(
        store.head(&key).await.status,
        404,
        "a bad digest stores nothing"
    );
    let right = vec![("Content-MD5".to_owned(), md5_base64(&body))];
    assert_eq!(store.send("PUT", &key, "", right, body).await.status, 200);

    let upload = store.create_multipart(&key).await;
    let part = bytes(1000, 3);
    let wrong = vec![("Content-MD5".to_owned(), md5_base64(b"nope"))];
    let reply = store
        .send(
            "PUT",
            &key,
            &format!("partNumber=1&uploadId={upload}"),
            wrong,
            part,
        )
        .await;
    assert_eq!(reply.s3_code(), "BadDigest");
    let parts: PartList = store.list_parts(&key, &upload, "").await.xml(200);
    assert!(parts.parts.is_empty(), "{parts:?}");
}

#[tokio::test]
async fn multipart_upload_lists_pages_and_completes() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}big.bin", store.grant.prefix);
    let upload = store.create_multipart(&key).await;
    let parts: Vec<Vec<u8>> = vec![bytes(5 * MIB, 10), bytes(5 * MIB, 11), bytes(1234, 12)];
    // Out of order on purpose: the store must sort.
    for number in [3u32, 1, 2] {
        let reply = store
            .upload_part(&key, &upload, number, parts[number as usize - 1].clone())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let first: PartList = store
        .list_parts(&key, &upload, "max-parts=2")
        .await
        .xml(200);
    assert_eq!(first.numbers(), [1, 2]);
    assert!(first.is_truncated);
    assert_eq!(first.next_part_number_marker, Some(2));
    assert_eq!(first.parts[0].e_tag, format!("\"{}\"", md5_hex(&parts[0])));
    let second: PartList = store
        .list_parts(&key, &upload, "max-parts=2&part-number-marker=2")
        .await
        .xml(200);
    assert_eq!(second.numbers(), [3]);
    assert!(!second.is_truncated);
    assert_eq!(second.parts[0].size, 1234);

    let listed: Vec<(u32, String)> = (1..=3)
        .map(|n| (n, md5_hex(&parts[n as usize - 1])))
        .collect();
    let done: Completed = store.complete(&key, &upload, &listed).await.xml(200);
    let expected = multipart_etag(&[&parts[0], &parts[1], &parts[2]]);
    assert_eq!(done.e_tag.trim_matches('"'), expected);
    assert_eq!(done.key, key);
    let stored = server.server.object_bytes(&store.grant.bucket, &key).await;
    assert_eq!(
        stored.unwrap().map(|b| sha256_hex(&b)),
        Some(sha256_hex(&parts.concat())),
        "the object is the parts in order"
    );
    let head = store.head(&key).await;
    assert_eq!(
        head.headers["content-length"].to_str().unwrap(),
        (10 * MIB + 1234).to_string()
    );
    // Completed uploads are gone.
    assert_eq!(
        store.list_parts(&key, &upload, "").await.s3_code(),
        "NoSuchUpload"
    );
}

#[tokio::test]
async fn complete_checks_etags_order_and_part_sizes() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}checked.bin", store.grant.prefix);
    let upload = store.create_multipart(&key).await;
    let big = bytes(5 * MIB, 20);
    let small = bytes(10, 21);
    store.upload_part(&key, &upload, 1, small.clone()).await;
    store.upload_part(&key, &upload, 2, big.clone()).await;
    store.upload_part(&key, &upload, 3, small.clone()).await;

    let bad_etag = store
        .complete(&key, &upload, &[(1, md5_hex(b"other"))])
        .await;
    assert_eq!(bad_etag.s3_code(), "InvalidPart");
    let missing = store.complete(&key, &upload, &[(4, md5_hex(&small))]).await;
    assert_eq!(missing.s3_code(), "InvalidPart");
    let order = store
        .complete(&key, &upload, &[(2, md5_hex(&big)), (1, md5_hex(&small))])
        .await;
    assert_eq!(order.s3_code(), "InvalidPartOrder");
    let too_small = store
        .complete(&key, &upload, &[(1, md5_hex(&small)), (2, md5_hex(&big))])
        .await;
    assert_eq!(too_small.s3_code(), "EntityTooSmall");
    // The upload is still open after refusals, and a subset of parts may be completed.
    let done = store
        .complete(&key, &upload, &[(2, md5_hex(&big)), (3, md5_hex(&small))])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        store.head(&key).await.headers["content-length"]
            .to_str()
            .unwrap(),
        (5 * MIB + 10).to_string()
    );
}

#[tokio::test]
async fn upload_ids_are_bound_to_user_bucket_and_key_and_die_with_abort() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let bob = server.user("bob", Role::User).await;
    let a = StoreClient::new(alice.grant().await);
    let b = StoreClient::new(bob.grant().await);
    let a_key = format!("{}a.bin", a.grant.prefix);
    let b_key = format!("{}b.bin", b.grant.prefix);
    let b_upload = b.create_multipart(&b_key).await;

    // Unknown id.
    assert_eq!(
        a.list_parts(&a_key, "0123456789abcdef", "").await.s3_code(),
        "NoSuchUpload"
    );
    // Bob's id under Alice's key: no such upload for her.
    assert_eq!(
        a.list_parts(&a_key, &b_upload, "").await.s3_code(),
        "NoSuchUpload"
    );
    assert_eq!(
        a.upload_part(&a_key, &b_upload, 1, b"x".to_vec())
            .await
            .s3_code(),
        "NoSuchUpload"
    );
    // Bob's key is outside her prefix.
    assert_eq!(
        a.list_parts(&b_key, &b_upload, "").await.s3_code(),
        "AccessDenied"
    );
    assert_eq!(a.abort(&b_key, &b_upload).await.s3_code(), "AccessDenied");
    // Bob's own id under another of his keys.
    let other_key = format!("{}other.bin", b.grant.prefix);
    assert_eq!(
        b.list_parts(&other_key, &b_upload, "").await.s3_code(),
        "NoSuchUpload"
    );

    assert_eq!(b.abort(&b_key, &b_upload).await.status, 204);
    assert_eq!(
        b.list_parts(&b_key, &b_upload, "").await.s3_code(),
        "NoSuchUpload"
    );
    assert_eq!(
        b.upload_part(&b_key, &b_upload, 1, b"x".to_vec())
            .await
            .s3_code(),
        "NoSuchUpload"
    );
    assert_eq!(b.abort(&b_key, &b_upload).await.s3_code(), "NoSuchUpload");
}

#[tokio::test]
async fn an_upload_begun_under_one_grant_finishes_under_the_next() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let first = StoreClient::new(alice.grant().await);
    let key = format!("{}resumed.bin", first.grant.prefix);
    let upload = first.create_multipart(&key).await;
    let one = bytes(5 * MIB, 30);
    assert_eq!(
        first
            .upload_part(&key, &upload, 1, one.clone())
            .await
            .status,
        200
    );

    let next = StoreClient::new(alice.grant().await);
    assert_ne!(next.grant.access_key_id, first.grant.access_key_id);
    let listed: PartList = next.list_parts(&key, &upload, "").await.xml(200);
    assert_eq!(listed.numbers(), [1]);
    let two = bytes(100, 31);
    assert_eq!(
        next.upload_part(&key, &upload, 2, two.clone()).await.status,
        200
    );
    let done = next
        .complete(&key, &upload, &[(1, md5_hex(&one)), (2, md5_hex(&two))])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let stored = server.server.object_bytes(&next.grant.bucket, &key).await;
    assert_eq!(stored.unwrap(), Some([one, two].concat()));
}

#[tokio::test]
async fn multipart_uploads_are_listed_within_the_callers_prefix() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let bob = server.user("bob", Role::User).await;
    let a = StoreClient::new(alice.grant().await);
    let b = StoreClient::new(bob.grant().await);
    let mut mine = Vec::new();
    for name in ["x/1", "x/2", "y/1"] {
        mine.push(
            a.create_multipart(&format!("{}{name}", a.grant.prefix))
                .await,
        );
    }
    b.create_multipart(&format!("{}theirs", b.grant.prefix))
        .await;

    let all: UploadList = a.list_uploads("").await.xml(200);
    let p = &a.grant.prefix;
    assert_eq!(
        all.keys(),
        [format!("{p}x/1"), format!("{p}x/2"), format!("{p}y/1")]
    );
    let narrowed: UploadList = a
        .list_uploads(&format!(
            "prefix={}x%2F",
            ferry_engine::dialect::uri_encode(p, false)
        ))
        .await
        .xml(200);
    assert_eq!(narrowed.keys().len(), 2, "{narrowed:?}");
    let paged: UploadList = a.list_uploads("max-uploads=1").await.xml(200);
    assert!(paged.is_truncated);
    let next_key = paged.next_key_marker.unwrap();
    let next_id = paged.next_upload_id_marker.unwrap();
    let rest: UploadList = a
        .list_uploads(&format!(
            "key-marker={}&upload-id-marker={next_id}",
            ferry_engine::dialect::uri_encode(&next_key, false)
        ))
        .await
        .xml(200);
    assert_eq!(rest.keys().len(), 2, "{rest:?}");
    let outside = a.list_uploads("prefix=uploads%2F999%2F").await;
    assert_eq!(outside.s3_code(), "AccessDenied");
}

#[tokio::test]
async fn complete_keeps_the_listed_order_of_equal_size_parts() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}same-size.bin", store.grant.prefix);
    let upload = store.create_multipart(&key).await;
    // Equal sizes, so only the order tells them apart; sent in reverse.
    let parts: Vec<Vec<u8>> = (0..3).map(|i| bytes(5 * MIB, 60 + i)).collect();
    for number in [3u32, 2, 1] {
        let reply = store
            .upload_part(&key, &upload, number, parts[number as usize - 1].clone())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let listed: Vec<(u32, String)> = (1..=3)
        .map(|n| (n, md5_hex(&parts[n as usize - 1])))
        .collect();
    let done = store.complete(&key, &upload, &listed).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let stored = server
        .server
        .object_bytes(&store.grant.bucket, &key)
        .await
        .unwrap()
        .expect("the object");
    assert_eq!(stored.len(), 15 * MIB);
    assert_eq!(
        sha256_hex(&stored),
        sha256_hex(&parts.concat()),
        "the parts are joined in the order listed"
    );
}
