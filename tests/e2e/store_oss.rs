//! The store's OSS front on the wire, signed with `ferry_sign` in the bucket's own domain: OSS's
//! XML and error document, upper-case ETags, the CRC-64 in `x-oss-hash-crc64ecma`, and the same
//! rules as the S3 front (prefix, token, time, part sizes, uploads bound to their user and key).

use ferry_protocol::{Grant, Role, UploadPage};
use ferry_tests::native_store::{NativeClient, Scheme};
use ferry_tests::{
    Reply, TestServer, Token, bytes, md5_hex, multipart_etag, xml_value, xml_values,
};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// CRC-64/XZ bit by bit (the ECMA-182 polynomial, reflected, all ones in and out): an oracle
/// independent of the store's table-driven one.
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = !0u64;
    for &byte in data {
        crc ^= u64::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn oss_grant(server: &TestServer, name: &str) -> (ferry_tests::ApiClient, Grant) {
    let user = server.user(name, Role::User).await;
    let grant = user
        .post("/api/v1/grants", &json!({ "provider": "oss" }))
        .await
        .json(201);
    (user, grant)
}

/// A grant of `user`'s whose requests carry `scheme`'s signature.
async fn grant_for(user: &ferry_tests::ApiClient, scheme: Scheme) -> Grant {
    let version = match scheme {
        Scheme::OssV1 => "v1",
        _ => "v4",
    };
    user.post(
        "/api/v1/grants",
        &json!({ "provider": "oss", "signature_version": version }),
    )
    .await
    .json(201)
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header: {:?}", reply.headers))
}

/// Asserts an OSS error document and its request id header; the code.
fn oss_error(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body.contains("<Error>"), "{}", reply.body);
    for tag in ["Code", "Message", "RequestId", "HostId"] {
        assert!(
            xml_value(&reply.body, tag).is_some(),
            "no {tag}: {}",
            reply.body
        );
    }
    assert_eq!(
        xml_value(&reply.body, "RequestId").as_deref(),
        Some(header(reply, "x-oss-request-id"))
    );
    xml_value(&reply.body, "Code").unwrap_or_default()
}

fn upper(etag: &str) -> String {
    format!("\"{}\"", etag.to_ascii_uppercase())
}

#[tokio::test]
async fn crc64_oracle_matches_the_published_check_value() {
    assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
}

#[tokio::test]
async fn oss_front_answers_in_oss_xml_with_upper_case_etags_and_crc64() {
    let server = TestServer::start().await;
    let (alice, grant) = oss_grant(&server, "alice").await;
    for scheme in [Scheme::OssV4, Scheme::OssV1] {
        let grant = grant_for(&alice, scheme).await;
        let oss = NativeClient::new(grant.clone(), scheme);
        let key = format!("{}{scheme:?}/a b+c%d ü.bin", grant.prefix);
        let body = bytes(100_000, 1);
        let put = oss.put(&key, body.clone()).await;
        assert_eq!(put.status, 200, "{scheme:?}: {}", put.body);
        assert_eq!(header(&put, "etag"), upper(&md5_hex(&body)));
        assert_eq!(
            header(&put, "x-oss-hash-crc64ecma"),
            crc64(&body).to_string()
        );
        assert!(!header(&put, "x-oss-request-id").is_empty());
        let head = oss.send("HEAD", &key, "", vec![], vec![]).await;
        assert_eq!(head.status, 200);
        assert_eq!(header(&head, "content-length"), "100000");
        assert_eq!(header(&head, "etag"), upper(&md5_hex(&body)));
        assert_eq!(
            header(&head, "x-oss-hash-crc64ecma"),
            crc64(&body).to_string()
        );
        assert_eq!(header(&head, "x-oss-object-type"), "Normal");
        assert_eq!(
            server
                .server
                .object_bytes(&grant.bucket, &key)
                .await
                .unwrap(),
            Some(body)
        );
    }

    let oss = NativeClient::new(grant.clone(), Scheme::OssV4);
    let key = format!("{}multi/parts.bin", grant.prefix);
    let parts = [bytes(5 * MIB, 2), bytes(1234, 3)];
    let id = oss.create_multipart(&key).await;
    let mut listed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let reply = oss.upload_part(&key, &id, i as u32 + 1, part.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(header(&reply, "etag"), upper(&md5_hex(part)));
        assert_eq!(
            header(&reply, "x-oss-hash-crc64ecma"),
            crc64(part).to_string()
        );
        listed.push((i as u32 + 1, header(&reply, "etag").to_owned()));
    }
    let list = oss
        .send("GET", &key, &format!("uploadId={id}"), vec![], vec![])
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(xml_values(&list.body, "PartNumber"), ["1", "2"]);
    let crcs: Vec<String> = parts.iter().map(|p| crc64(p).to_string()).collect();
    assert_eq!(xml_values(&list.body, "HashCrc64ecma"), crcs);
    assert_eq!(
        xml_values(&list.body, "ETag")[0],
        upper(&md5_hex(&parts[0]))
    );
    let uploads = oss.send("GET", "", "uploads", vec![], vec![]).await;
    assert_eq!(uploads.status, 200, "{}", uploads.body);
    assert_eq!(
        xml_values(&uploads.body, "UploadId"),
        std::slice::from_ref(&id)
    );
    let done = oss.complete(&key, &id, &listed).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let whole = parts.concat();
    let etag = multipart_etag(&[&parts[0], &parts[1]]);
    assert_eq!(xml_value(&done.body, "ETag"), Some(upper(&etag)));
    assert_eq!(
        header(&done, "x-oss-hash-crc64ecma"),
        crc64(&whole).to_string()
    );
    let head = oss.send("HEAD", &key, "", vec![], vec![]).await;
    assert_eq!(
        header(&head, "x-oss-hash-crc64ecma"),
        crc64(&whole).to_string()
    );
    assert_eq!(header(&head, "x-oss-object-type"), "Multipart");
    assert_eq!(
        server
            .server
            .object_bytes(&grant.bucket, &key)
            .await
            .unwrap(),
        Some(whole)
    );
    // The upload is closed now: in OSS's words.
    let again = oss.complete(&key, &id, &listed).await;
    assert_eq!(oss_error(&again, 404), "NoSuchUpload");
    // One upload, one history row, whatever the front.
    let page: UploadPage = alice.get("/api/v1/uploads?limit=500").await.json(200);
    assert_eq!(page.items.iter().filter(|r| r.key == key).count(), 1);
}

#[tokio::test]
async fn presigned_oss_urls_work_until_they_expire() {
    let server = TestServer::start().await;
    let (alice, _) = oss_grant(&server, "alice").await;
    for scheme in [Scheme::OssV4, Scheme::OssV1] {
        let grant = grant_for(&alice, scheme).await;
        let mut oss = NativeClient::new(grant.clone(), scheme);
        let key = format!("{}presigned/{scheme:?}.txt", grant.prefix);
        let url = oss.presign("PUT", &key, 60);
        let reply = oss.send_presigned("PUT", &url, b"hello".to_vec()).await;
        assert_eq!(reply.status, 200, "{scheme:?}: {}", reply.body);
        // Signed two minutes ago for one minute: expired.
        oss.skew_secs = -120;
        let stale = oss.presign("PUT", &format!("{key}.stale"), 60);
        let reply = oss.send_presigned("PUT", &stale, b"late".to_vec()).await;
        assert_eq!(oss_error(&reply, 403), "AccessDenied", "{scheme:?}");
        // A URL for another key does not cover this one.
        oss.skew_secs = 0;
        let other = oss.presign("PUT", &format!("{key}.other"), 60);
        let moved = other.replace(".other", ".moved");
        let reply = oss.send_presigned("PUT", &moved, b"x".to_vec()).await;
        assert_eq!(
            oss_error(&reply, 403),
            "SignatureDoesNotMatch",
            "{scheme:?}"
        );
    }
}

#[tokio::test]
async fn oss_front_refuses_bad_signatures_tokens_times_and_operations() {
    let server = TestServer::start().await;
    let (alice, grant) = oss_grant(&server, "alice").await;
    let (bob, bobs) = oss_grant(&server, "bob").await;
    let key = format!("{}refused.bin", grant.prefix);
    for scheme in [Scheme::OssV4, Scheme::OssV1] {
        let (grant, bobs) = (
            grant_for(&alice, scheme).await,
            grant_for(&bob, scheme).await,
        );
        let signer = |change: &dyn Fn(&mut NativeClient)| {
            let mut client = NativeClient::new(grant.clone(), scheme);
            change(&mut client);
            client
        };
        let cases: [(&str, NativeClient, &str, u16); 5] = [
            (
                "wrong secret",
                signer(&|c| c.secret = Some("nope".into())),
                "SignatureDoesNotMatch",
                403,
            ),
            (
                "wrong token",
                signer(&|c| c.token = Token::Other("nope".into())),
                "InvalidAccessKeyId",
                403,
            ),
            (
                "no token",
                signer(&|c| c.token = Token::Missing),
                "InvalidAccessKeyId",
                403,
            ),
            (
                "signed 20 minutes ago",
                signer(&|c| c.skew_secs = -1200),
                "RequestTimeTooSkewed",
                403,
            ),
            (
                "another user's key",
                NativeClient::new(bobs.clone(), scheme),
                "AccessDenied",
                403,
            ),
        ];
        for (what, client, code, status) in cases {
            let reply = client.put(&key, b"x".to_vec()).await;
            assert_eq!(oss_error(&reply, status), code, "{scheme:?} {what}");
        }
    }
    let oss = NativeClient::new(grant.clone(), Scheme::OssV4);
    // Not uploads: reading, deleting, ACLs, appends, copies, listing objects.
    let copy = vec![(
        "x-oss-copy-source".to_owned(),
        "/ferry/uploads/2/x".to_owned(),
    )];
    for (method, query, headers) in [
        ("GET", "", vec![]),
        ("DELETE", "", vec![]),
        ("PUT", "acl", vec![]),
        ("POST", "append&position=0", vec![]),
        ("PUT", "", copy),
    ] {
        let reply = oss.send(method, &key, query, headers, vec![]).await;
        assert_eq!(oss_error(&reply, 403), "AccessDenied", "{method} ?{query}");
    }
    let listing = oss.send("GET", "", "", vec![], vec![]).await;
    assert_eq!(oss_error(&listing, 403), "AccessDenied");
    let outside = oss.put("uploads/999/x", b"x".to_vec()).await;
    assert_eq!(oss_error(&outside, 403), "AccessDenied");
    assert_eq!(
        server
            .server
            .object_bytes(&grant.bucket, &key)
            .await
            .unwrap(),
        None
    );

    // An upload belongs to its user and key; parts but the last need 5 MiB.
    let id = oss.create_multipart(&key).await;
    let bob = NativeClient::new(bobs.clone(), Scheme::OssV4);
    let bobs_key = format!("{}stolen.bin", bobs.prefix);
    let stolen = bob.upload_part(&bobs_key, &id, 1, b"x".to_vec()).await;
    assert_eq!(oss_error(&stolen, 404), "NoSuchUpload");
    let other_key = oss
        .upload_part(&format!("{key}.2"), &id, 1, b"x".to_vec())
        .await;
    assert_eq!(oss_error(&other_key, 404), "NoSuchUpload");
    let mut listed = Vec::new();
    for number in 1..=2 {
        let reply = oss
            .upload_part(&key, &id, number, bytes(1000, u64::from(number)))
            .await;
        listed.push((number, header(&reply, "etag").to_owned()));
    }
    let small = oss.complete(&key, &id, &listed).await;
    assert_eq!(oss_error(&small, 400), "EntityTooSmall");
    let bad_part = oss.upload_part(&key, &id, 10_001, b"x".to_vec()).await;
    assert_eq!(oss_error(&bad_part, 400), "InvalidArgument");
    let malformed = oss
        .send(
            "POST",
            &key,
            &format!("uploadId={id}"),
            vec![],
            b"<nope".to_vec(),
        )
        .await;
    assert_eq!(oss_error(&malformed, 400), "MalformedXML");
    let aborted = oss
        .send("DELETE", &key, &format!("uploadId={id}"), vec![], vec![])
        .await;
    assert_eq!(aborted.status, 204, "{}", aborted.body);
    let gone = oss
        .send("GET", &key, &format!("uploadId={id}"), vec![], vec![])
        .await;
    assert_eq!(oss_error(&gone, 404), "NoSuchUpload");
}

#[tokio::test]
async fn a_refused_oss_or_obs_request_is_answered_before_its_body() {
    // A PUT announcing a gigabyte, signed wrongly, with no body sent: the answer comes anyway.
    let server = TestServer::start().await;
    let user = server.user("alice", Role::User).await;
    for (provider, version, scheme) in [
        ("oss", "v4", Scheme::OssV4),
        ("oss", "v1", Scheme::OssV1),
        ("obs", "v4", Scheme::Obs),
    ] {
        let grant: Grant = user
            .post(
                "/api/v1/grants",
                &json!({ "provider": provider, "signature_version": version }),
            )
            .await
            .json(201);
        let mut client = NativeClient::new(grant.clone(), scheme);
        client.secret = Some("wrong".into());
        let key = format!("{}huge.bin", grant.prefix);
        let url = client.url(&key, "");
        let path = url.trim_start_matches(&grant.endpoint).to_owned();
        let addr: std::net::SocketAddr = grant
            .endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let mut head = format!("PUT {path} HTTP/1.1\r\ncontent-length: 1073741824");
        let signed = client.sign("PUT", &url, Some(&key), vec![]);
        if !signed
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("\r\nhost: {addr}"));
        }
        for (name, value) in signed {
            head.push_str(&format!("\r\n{name}: {value}"));
        }
        let reply = ferry_tests::raw_http::exchange(addr, &head, b"").await;
        assert_eq!(reply.status, 403, "{scheme:?}: {}", reply.body);
        assert_eq!(
            xml_value(&reply.body, "Code").as_deref(),
            Some("SignatureDoesNotMatch"),
            "{scheme:?}"
        );
    }
}

#[tokio::test]
async fn an_oss_grant_takes_only_its_own_signature_its_scope_and_unsigned_payloads() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let v4_grant = grant_for(&alice, Scheme::OssV4).await;
    let v1_grant = grant_for(&alice, Scheme::OssV1).await;
    let key = format!("{}scheme.bin", v4_grant.prefix);
    for (grant, scheme) in [(&v4_grant, Scheme::OssV4), (&v1_grant, Scheme::OssV1)] {
        let reply = NativeClient::new(grant.clone(), scheme)
            .put(&key, b"ok".to_vec())
            .await;
        assert_eq!(
            reply.status, 200,
            "{scheme:?} on its own grant: {}",
            reply.body
        );
    }
    for (grant, scheme) in [(&v4_grant, Scheme::OssV1), (&v1_grant, Scheme::OssV4)] {
        let reply = NativeClient::new(grant.clone(), scheme)
            .put(&key, b"no".to_vec())
            .await;
        assert_eq!(
            oss_error(&reply, 400),
            "InvalidRequest",
            "{scheme:?} on a grant of the other version"
        );
    }

    // A V4 scope of another region or product does not name this store.
    let mut elsewhere = v4_grant.clone();
    elsewhere.region = "cn-shanghai".into();
    let reply = NativeClient::new(elsewhere, Scheme::OssV4)
        .put(&key, b"no".to_vec())
        .await;
    assert_eq!(reply.status, 400, "another region's scope: {}", reply.body);

    // The store keeps what it receives without hashing it: a request that signs a payload
    // hash is refused rather than stored unchecked.
    let client = NativeClient::new(v4_grant.clone(), Scheme::OssV4);
    let signed_hash = vec![(
        "x-oss-content-sha256".to_owned(),
        ferry_sign::sigv4::sha256_hex(b"what was signed"),
    )];
    let reply = client
        .send("PUT", &key, "", signed_hash, b"what was sent".to_vec())
        .await;
    assert_eq!(
        oss_error(&reply, 400),
        "InvalidRequest",
        "a signed payload hash"
    );
    let stored = server
        .server
        .object_bytes(&v4_grant.bucket, &key)
        .await
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(&b"ok"[..]),
        "nothing else was stored"
    );
}
