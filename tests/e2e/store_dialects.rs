//! The embedded store's dialects seen from the API and the wire: grants per provider, a grant
//! working only at its own front, refusals answered in the dialect the request speaks, and
//! confirmations of the ETags each front hands out.

use ferry_protocol::{Addressing, Grant, Provider, Role, SignatureVersion};
use ferry_tests::{StoreClient, TestServer, bytes, md5_hex, xml_value};
use serde_json::json;

#[tokio::test]
async fn grants_name_their_dialect_addressing_and_signature() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store_url = server.server.store_url();
    let cases = [
        (
            json!({}),
            Provider::S3,
            Addressing::Path,
            SignatureVersion::V4,
        ),
        (
            json!({"provider": "s3"}),
            Provider::S3,
            Addressing::Path,
            SignatureVersion::V4,
        ),
        (
            json!({"provider": "oss"}),
            Provider::Oss,
            Addressing::Domain,
            SignatureVersion::V4,
        ),
        (
            json!({"provider": "oss", "signature_version": "v1"}),
            Provider::Oss,
            Addressing::Domain,
            SignatureVersion::V1,
        ),
        (
            json!({"provider": "obs"}),
            Provider::Obs,
            Addressing::Domain,
            SignatureVersion::V4,
        ),
    ];
    for (body, provider, addressing, signature) in cases {
        let grant: Grant = alice.post("/api/v1/grants", &body).await.json(201);
        assert_eq!(grant.provider, provider, "{body}");
        assert_eq!(grant.addressing, addressing, "{body}");
        assert_eq!(grant.signature_version, signature, "{body}");
        // The bucket's own domain is the store itself, on loopback.
        assert_eq!(grant.endpoint, store_url, "{body}");
        assert_eq!(grant.bucket, "ferry");
    }
    for body in [
        json!({"provider": "gcs"}),
        json!({"provider": "s3", "signature_version": "v1"}),
        json!({"provider": "obs", "signature_version": "v1"}),
        json!({"provider": "oss", "addressing": "path"}),
    ] {
        let reply = alice.post("/api/v1/grants", &body).await;
        assert_eq!(reply.error(400), "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn a_grant_works_only_at_the_front_of_its_dialect() {
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    for provider in ["oss", "obs"] {
        let grant: Grant = alice
            .post("/api/v1/grants", &json!({ "provider": provider }))
            .await
            .json(201);
        let store = StoreClient::new(grant);
        let key = format!("{}{provider}-via-sigv4", store.grant.prefix);
        let reply = store.put(&key, b"x".to_vec()).await;
        assert_eq!(reply.status, 403, "{provider}: {}", reply.body);
        assert_eq!(reply.s3_code(), "InvalidAccessKeyId", "{provider}");
        let stored = server.server.object_bytes(&store.grant.bucket, &key).await;
        assert_eq!(stored.unwrap(), None);
    }
}

/// Sends `head` with an empty body to the store; the raw answer.
async fn raw(server: &TestServer, head: &str) -> ferry_tests::raw_http::RawReply {
    let addr = server
        .server
        .store_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    ferry_tests::raw_http::exchange(addr, head, b"").await
}

fn header<'a>(reply: &'a ferry_tests::raw_http::RawReply, name: &str) -> Option<&'a str> {
    reply.head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn refusals_at_the_door_speak_the_dialect_of_the_request() {
    let server = TestServer::start().await;
    let host = server
        .server
        .store_url()
        .trim_start_matches("http://")
        .to_owned();
    // Unsigned, but with the dialect's own headers: refused in its XML, with its request id.
    for (dialect, token_header, id_header) in [
        ("oss", "x-oss-security-token", "x-oss-request-id"),
        ("obs", "x-obs-security-token", "x-obs-request-id"),
    ] {
        let head = format!(
            "PUT /uploads/1/x HTTP/1.1\r\nhost: {host}\r\n{token_header}: t\r\n\
             content-length: 0"
        );
        let reply = raw(&server, &head).await;
        assert_eq!(reply.status, 403, "{dialect}: {}", reply.body);
        assert_eq!(
            xml_value(&reply.body, "Code").as_deref(),
            Some("AccessDenied")
        );
        let id = header(&reply, id_header).unwrap_or_else(|| panic!("{dialect}: {}", reply.head));
        assert_eq!(xml_value(&reply.body, "RequestId").as_deref(), Some(id));
        assert_eq!(header(&reply, "connection"), Some("close"), "{dialect}");
    }
    // SigV2 and unknown schemes are refused whatever dialect they resemble.
    for authorization in ["AWS AK:c2ln", "OSS3 AK:c2ln", "Bearer x"] {
        let head = format!(
            "PUT /ferry/uploads/1/x HTTP/1.1\r\nhost: {host}\r\nauthorization: {authorization}\r\n\
             content-length: 0"
        );
        let reply = raw(&server, &head).await;
        assert_eq!(reply.status, 400, "{authorization}: {}", reply.body);
        assert_eq!(
            xml_value(&reply.body, "Code").as_deref(),
            Some("InvalidRequest"),
            "{authorization}"
        );
    }
}

#[tokio::test]
async fn a_confirmation_matches_the_etag_in_any_case() {
    // OSS hands out upper-case ETags: a client confirming with what its store said must match
    // the object the S3 front stored with a lower-case one.
    let server = TestServer::start().await;
    let alice = server.user("alice", Role::User).await;
    let store = StoreClient::new(alice.grant().await);
    let key = format!("{}confirm/upper.bin", store.grant.prefix);
    let body = bytes(3000, 7);
    assert_eq!(store.put(&key, body.clone()).await.status, 200);
    let confirmation = json!({
        "upload_id": "client-upload-1",
        "bucket": store.grant.bucket,
        "key": key,
        "size": body.len(),
        "etag": format!("\"{}\"", md5_hex(&body).to_ascii_uppercase()),
        "name": "upper.bin",
    });
    let reply = alice.post("/api/v1/uploads", &confirmation).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let record: ferry_protocol::UploadRecord = reply.json(200);
    assert_eq!(record.etag, md5_hex(&body));
}
