//! The dialect seam: URLs by addressing, the presets, error codes, ETags.

use ferry_protocol::{Addressing, Grant, Provider, SignatureVersion};
use time::OffsetDateTime;

use super::*;

fn grant(provider: Provider, endpoint: &str, addressing: Addressing) -> Grant {
    Grant {
        provider,
        endpoint: endpoint.into(),
        addressing,
        signature_version: SignatureVersion::V4,
        region: "cn-north-1".into(),
        bucket: "photos".into(),
        prefix: "uploads/1/".into(),
        access_key_id: "AK".into(),
        secret_access_key: "SK".into(),
        security_token: "TOKEN".into(),
        expires_at: OffsetDateTime::UNIX_EPOCH,
        policy: serde_json::Value::Null,
        callback: None,
    }
}

#[test]
fn urls_follow_the_grants_addressing() {
    let key = Some("uploads/1/a b+c.txt");
    let path = grant(Provider::S3, "http://127.0.0.1:9000/", Addressing::Path);
    assert_eq!(
        Dialect::of(&path).url(&path, key, "uploads=").unwrap(),
        "http://127.0.0.1:9000/photos/uploads/1/a%20b%2Bc.txt?uploads="
    );
    assert_eq!(
        Dialect::of(&path).url(&path, None, "uploads=").unwrap(),
        "http://127.0.0.1:9000/photos?uploads="
    );
    let hosted = grant(
        Provider::Oss,
        "https://oss-cn-hangzhou.aliyuncs.com",
        Addressing::VirtualHosted,
    );
    assert_eq!(
        Dialect::of(&hosted).url(&hosted, key, "").unwrap(),
        "https://photos.oss-cn-hangzhou.aliyuncs.com/uploads/1/a%20b%2Bc.txt"
    );
    let domain = grant(Provider::Obs, "http://127.0.0.1:4711", Addressing::Domain);
    assert_eq!(
        Dialect::of(&domain).url(&domain, key, "").unwrap(),
        "http://127.0.0.1:4711/uploads/1/a%20b%2Bc.txt"
    );
    assert_eq!(
        Dialect::of(&domain).url(&domain, None, "uploads=").unwrap(),
        "http://127.0.0.1:4711/?uploads="
    );
}

#[test]
fn jd_cloud_is_the_s3_dialect_at_its_own_endpoints_in_both_styles() {
    let hosted = preset::preset("jdcloud", "cn-north-1", false).unwrap();
    assert_eq!(hosted.provider, Provider::S3);
    let mut g = grant(hosted.provider, &hosted.endpoint, hosted.addressing);
    assert_eq!(
        Dialect::of(&g)
            .url(&g, Some("uploads/1/x.bin"), "")
            .unwrap(),
        "https://photos.s3.cn-north-1.jdcloud-oss.com/uploads/1/x.bin"
    );
    let path = preset::preset("jdcloud", "cn-north-1", true).unwrap();
    g.addressing = path.addressing;
    assert_eq!(
        Dialect::of(&g)
            .url(&g, Some("uploads/1/x.bin"), "")
            .unwrap(),
        "https://s3.cn-north-1.jdcloud-oss.com/photos/uploads/1/x.bin"
    );
    // Signed with SigV4 for region cn-north-1, service s3, and the session token.
    let url = Dialect::of(&g)
        .url(&g, Some("uploads/1/x.bin"), "")
        .unwrap();
    let request = UnsignedRequest {
        method: "PUT".into(),
        url,
        headers: vec![],
    };
    let credentials = SigningCredentials {
        access_key_id: "AK".into(),
        secret_access_key: crate::secret::Secret::new("SK"),
        security_token: Some(crate::secret::Secret::new("TOKEN")),
    };
    let time = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let headers = Dialect::of(&g)
        .sign(&g, &request, &credentials, Some("uploads/1/x.bin"), time)
        .unwrap();
    let authorization = &headers
        .iter()
        .find(|(n, _)| n == "Authorization")
        .unwrap()
        .1;
    assert!(
        authorization.contains("/cn-north-1/s3/aws4_request"),
        "{authorization}"
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "x-amz-security-token" && v == "TOKEN")
    );
    // OSS and OBS refuse path-style: their presets stay virtual-hosted.
    assert_eq!(
        preset::preset("oss", "cn-hangzhou", true)
            .unwrap()
            .addressing,
        Addressing::VirtualHosted
    );
    assert!(preset::preset("nowhere", "x", false).is_none());
}

#[test]
fn each_dialect_names_its_token_header_and_reads_its_refusals() {
    let time = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let credentials = SigningCredentials {
        access_key_id: "AK".into(),
        secret_access_key: crate::secret::Secret::new("SK"),
        security_token: Some(crate::secret::Secret::new("TOKEN")),
    };
    for (provider, version, token_header) in [
        (Provider::S3, SignatureVersion::V4, "x-amz-security-token"),
        (Provider::Oss, SignatureVersion::V4, "x-oss-security-token"),
        (Provider::Oss, SignatureVersion::V1, "x-oss-security-token"),
        (Provider::Obs, SignatureVersion::V4, "x-obs-security-token"),
    ] {
        let mut g = grant(provider, "http://127.0.0.1:4711", Addressing::Domain);
        g.signature_version = version;
        let dialect = Dialect::of(&g);
        let request = UnsignedRequest {
            method: "PUT".into(),
            url: dialect.url(&g, Some("uploads/1/k"), "").unwrap(),
            headers: vec![],
        };
        let headers = dialect
            .sign(&g, &request, &credentials, Some("uploads/1/k"), time)
            .unwrap();
        assert!(
            headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(token_header) && v == "TOKEN"),
            "{dialect:?}: {:?}",
            headers.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        assert!(headers.iter().any(|(n, _)| n == "Authorization"));
        assert_eq!(dialect.refusal("RequestTimeTooSkewed"), Refusal::ClockSkew);
        assert_eq!(dialect.refusal("NoSuchUpload"), Refusal::NoSuchUpload);
        assert_eq!(dialect.refusal("InvalidAccessKeyId"), Refusal::Credentials);
        assert_eq!(dialect.refusal("AccessDenied"), Refusal::Other);
    }
    let oss = grant(Provider::Oss, "http://h", Addressing::Domain);
    assert_eq!(
        Dialect::of(&oss).refusal("SecurityTokenExpired"),
        Refusal::Credentials
    );
    assert_eq!(
        Dialect::of(&oss).crc64_header(),
        Some("x-oss-hash-crc64ecma")
    );
    assert!(same_etag(
        "\"7778AEF83F66ABC1FA1E8477F296D394\"",
        "7778aef83f66abc1fa1e8477f296d394"
    ));
    assert!(!same_etag("abc", "abd"));
}

#[test]
fn obs_signs_the_host_name_of_its_own_domain_even_on_ipv6() {
    let time = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let credentials = SigningCredentials {
        access_key_id: "AK".into(),
        secret_access_key: crate::secret::Secret::new("SK"),
        security_token: None,
    };
    for (endpoint, domain) in [
        ("http://[::1]", "[::1]"),
        ("http://[::1]:9000", "[::1]"),
        ("http://files.example.com:9000", "files.example.com"),
    ] {
        let g = grant(Provider::Obs, endpoint, Addressing::Domain);
        let request = UnsignedRequest {
            method: "PUT".into(),
            url: Dialect::Obs.url(&g, Some("k"), "").unwrap(),
            headers: vec![("x-obs-date".into(), "Fri, 15 Jan 2027 08:00:00 GMT".into())],
        };
        let sent = Dialect::Obs
            .sign(&g, &request, &credentials, Some("k"), time)
            .unwrap();
        let resource = ferry_sign::Resource {
            bucket: Some(domain),
            key: Some("k"),
        };
        let expected = ferry_sign::obs::sign(
            &request,
            &credentials,
            time,
            ferry_sign::obs::Flavor::Obs,
            &resource,
        )
        .unwrap();
        assert_eq!(sent, expected.headers, "{endpoint}");
    }
}

fn decoded(headers: &[(String, String)], name: &str) -> serde_json::Value {
    use base64::Engine;
    let value = &headers.iter().find(|(n, _)| n == name).unwrap().1;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn callback_headers_follow_each_stores_way() {
    let spec = ferry_protocol::CallbackSpec {
        url: "http://app/cb".into(),
        body: "o=${object}&n=${x:name}&g=${x:grant}".into(),
        body_type: "application/x-www-form-urlencoded".into(),
        vars: [("x:grant".to_owned(), "t".to_owned())].into(),
    };
    let vars = [("x:name", "a b/é".to_owned())];
    assert!(Dialect::S3.callback_headers(&spec, &vars).is_empty());
    let oss = Dialect::OssV4.callback_headers(&spec, &vars);
    assert_eq!(
        decoded(&oss, "x-oss-callback"),
        serde_json::json!({"callbackUrl": "http://app/cb", "callbackBody": spec.body,
                           "callbackBodyType": spec.body_type})
    );
    assert_eq!(
        decoded(&oss, "x-oss-callback-var"),
        serde_json::json!({"x:grant": "t", "x:name": "a b/é"})
    );
    let obs = Dialect::Obs.callback_headers(&spec, &vars);
    assert_eq!(obs.len(), 1, "OBS has no callback-var on a PUT");
    assert_eq!(
        decoded(&obs, "x-obs-callback")["callbackBody"],
        "o=${object}&n=a%20b%2F%C3%A9&g=t"
    );
}
