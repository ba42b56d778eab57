//! The store's OBS front on the wire, signed with `ferry_sign` the way the uploader signs for
//! the bucket's own domain (`OBS ak:sig` over `/<domain>/<key>`): OBS's namespaced XML, its
//! error document and request-id headers, lower-case ETags, presigned URLs, and its refusals.

use ferry_protocol::{Grant, Role};
use ferry_tests::native_store::{NativeClient, Scheme};
use ferry_tests::{Reply, TestServer, Token, bytes, md5_hex, multipart_etag, xml_value};
use serde_json::json;

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header: {:?}", reply.headers))
}

/// Asserts an OBS error document, its headers and request id; the code.
fn obs_error(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status, status, "{}", reply.body);
    for tag in ["Code", "Message", "RequestId", "HostId"] {
        assert!(
            xml_value(&reply.body, tag).is_some(),
            "no {tag}: {}",
            reply.body
        );
    }
    assert_eq!(
        xml_value(&reply.body, "RequestId").as_deref(),
        Some(header(reply, "x-obs-request-id"))
    );
    let code = xml_value(&reply.body, "Code").unwrap_or_default();
    assert_eq!(header(reply, "x-obs-error-code"), code);
    code
}

async fn obs_grant(server: &TestServer) -> Grant {
    let user = server.user("alice", Role::User).await;
    user.post("/api/v1/grants", &json!({ "provider": "obs" }))
        .await
        .json(201)
}

#[tokio::test]
async fn obs_front_uploads_in_the_buckets_own_domain_and_answers_in_obs_xml() {
    let server = TestServer::start().await;
    let grant = obs_grant(&server).await;
    let obs = NativeClient::new(grant.clone(), Scheme::Obs);
    let key = format!("{}obs/a b+c%d ü.bin", grant.prefix);
    let body = bytes(70_000, 5);
    let put = obs.put(&key, body.clone()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(header(&put, "etag"), format!("\"{}\"", md5_hex(&body)));
    assert!(put.headers.get("x-oss-hash-crc64ecma").is_none());
    assert!(!header(&put, "x-obs-request-id").is_empty());

    let multi = format!("{}obs/multi.bin", grant.prefix);
    let initiated = obs.send("POST", &multi, "uploads", vec![], vec![]).await;
    assert_eq!(initiated.status, 200, "{}", initiated.body);
    assert!(
        initiated
            .body
            .contains("xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\""),
        "{}",
        initiated.body
    );
    let id = xml_value(&initiated.body, "UploadId").unwrap();
    let parts = [bytes(5 * 1024 * 1024, 6), bytes(10, 7)];
    let mut listed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let reply = obs
            .upload_part(&multi, &id, i as u32 + 1, part.clone())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        listed.push((i as u32 + 1, header(&reply, "etag").to_owned()));
    }
    let done = obs.complete(&multi, &id, &listed).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let etag = multipart_etag(&[&parts[0], &parts[1]]);
    assert_eq!(xml_value(&done.body, "ETag"), Some(format!("\"{etag}\"")));
    assert_eq!(
        server
            .server
            .object_bytes(&grant.bucket, &multi)
            .await
            .unwrap(),
        Some(parts.concat())
    );
    let again = obs.complete(&multi, &id, &listed).await;
    assert_eq!(obs_error(&again, 404), "NoSuchUpload");

    let presigned_key = format!("{}obs/presigned.txt", grant.prefix);
    let url = obs.presign("PUT", &presigned_key, 60);
    let reply = obs.send_presigned("PUT", &url, b"hello".to_vec()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        server
            .server
            .object_bytes(&grant.bucket, &presigned_key)
            .await
            .unwrap(),
        Some(b"hello".to_vec())
    );
}

#[tokio::test]
async fn obs_front_refuses_bad_signatures_tokens_and_times() {
    let server = TestServer::start().await;
    let grant = obs_grant(&server).await;
    let key = format!("{}obs/refused.bin", grant.prefix);
    let signer = |change: &dyn Fn(&mut NativeClient)| {
        let mut client = NativeClient::new(grant.clone(), Scheme::Obs);
        change(&mut client);
        client
    };
    let cases: [(&str, NativeClient, &str, u16); 4] = [
        (
            "wrong secret",
            signer(&|c| c.secret = Some("nope".into())),
            "SignatureDoesNotMatch",
            403,
        ),
        (
            "wrong token",
            signer(&|c| c.token = Token::Other("nope".into())),
            "InvalidToken",
            400,
        ),
        (
            "no token",
            signer(&|c| c.token = Token::Missing),
            "AccessDenied",
            403,
        ),
        (
            "signed 20 minutes ahead",
            signer(&|c| c.skew_secs = 1200),
            "RequestTimeTooSkewed",
            403,
        ),
    ];
    for (what, client, code, status) in cases {
        let reply = client.put(&key, b"x".to_vec()).await;
        assert_eq!(obs_error(&reply, status), code, "{what}");
    }
    let obs = NativeClient::new(grant.clone(), Scheme::Obs);
    let reply = obs.put("uploads/999/x", b"x".to_vec()).await;
    assert_eq!(obs_error(&reply, 403), "AccessDenied");
    assert_eq!(
        server
            .server
            .object_bytes(&grant.bucket, &key)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_s3_v2_flavor_obs_sdks_use_works_in_headers_and_presigned_urls() {
    let server = TestServer::start().await;
    let grant = obs_grant(&server).await;
    let mut obs = NativeClient::new(grant.clone(), Scheme::Obs);
    obs.flavor = ferry_sign::obs::Flavor::AwsV2;
    let key = format!("{}obs/v2-header.txt", grant.prefix);
    let put = obs.put(&key, b"header".to_vec()).await;
    assert_eq!(put.status, 200, "header: {}", put.body);

    let key = format!("{}obs/v2-presigned.txt", grant.prefix);
    let url = obs.presign("PUT", &key, 60);
    assert!(url.contains("AWSAccessKeyId="), "{url}");
    let reply = obs.send_presigned("PUT", &url, b"presigned".to_vec()).await;
    assert_eq!(reply.status, 200, "presigned: {}", reply.body);
    let stored = server
        .server
        .object_bytes(&grant.bucket, &key)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"presigned"[..]));

    obs.skew_secs = -120;
    let stale = obs.presign("PUT", &format!("{key}.stale"), 60);
    let reply = obs.send_presigned("PUT", &stale, b"late".to_vec()).await;
    assert_eq!(obs_error(&reply, 403), "AccessDenied", "an expired V2 URL");
}
