//! OSS V4 against the vectors Alibaba Cloud publishes with its SDKs (the same request, key
//! `1234+-/123/1.txt` with `+`, `|` and empty query parameters, signed identically by the Go,
//! Python, PHP, .NET, C++ and iOS SDKs' tests; the V4 documentation's own example masks its
//! keys, so it cannot be recomputed).

use time::OffsetDateTime;

use super::*;
use crate::Secret;

const QUERY: &str = "%2Bparam1=value3&%2Bparam2=&param1=value1&param2=&%7Cparam1=value4&%7Cparam2=";

fn credentials(token: Option<&str>) -> SigningCredentials {
    SigningCredentials {
        access_key_id: "ak".into(),
        secret_access_key: Secret::new("sk"),
        security_token: token.map(Secret::new),
    }
}

fn request(content_type: &str, with_payload_header: bool) -> UnsignedRequest {
    let mut headers: Vec<(String, String)> = [
        ("x-oss-head1", "value"),
        ("abc", "value"),
        ("ZAbc", "value"),
        ("XYZ", "value"),
        ("content-type", content_type),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    if with_payload_header {
        headers.push(("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    }
    UnsignedRequest {
        method: "PUT".into(),
        url: format!("http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-/123/1.txt?{QUERY}"),
        headers,
    }
}

fn scope(unix: i64) -> Scope<'static> {
    Scope {
        region: "cn-hangzhou",
        product: super::super::PRODUCT,
        time: OffsetDateTime::from_unix_timestamp(unix).unwrap(),
    }
}

const RESOURCE: Resource<'static> = Resource {
    bucket: Some("bucket"),
    key: Some("1234+-/123/1.txt"),
};

const NONE: [&str; 0] = [];

#[test]
fn vendor_vector_header() {
    let signed = sign(
        &request("text/plain", true),
        &credentials(None),
        &scope(1_702_743_657),
        &RESOURCE,
        &NONE,
    )
    .unwrap();
    assert_eq!(
        signed.authorization.as_deref(),
        Some(
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
             Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        )
    );
    let canonical = signed.canonical_request.unwrap();
    assert!(canonical.starts_with(
        "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2\
         &param1=value1&param2\ncontent-type:text/plain\n"
    ));
    assert!(
        signed
            .headers
            .iter()
            .any(|(n, v)| n == DATE_HEADER && v == "20231216T162057Z")
    );
}

#[test]
fn vendor_vector_header_with_token_and_cloudbox() {
    let signed = sign(
        &request("text/plain", true),
        &credentials(Some("token")),
        &scope(1_702_784_856),
        &RESOURCE,
        &NONE,
    )
    .unwrap();
    assert_eq!(
        signed.signature,
        "b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"
    );
    let cloudbox = Scope {
        region: "cb-123",
        product: super::super::PRODUCT_CLOUDBOX,
        ..scope(1_702_743_657)
    };
    let signed = sign(
        &request("text/plain", true),
        &credentials(None),
        &cloudbox,
        &RESOURCE,
        &NONE,
    )
    .unwrap();
    assert_eq!(
        signed.authorization.as_deref(),
        Some(
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,\
             Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"
        )
    );
}

#[test]
fn vendor_vector_additional_headers() {
    for asked in [
        &["ZAbc", "abc"][..],
        &["x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"][..],
    ] {
        let signed = sign(
            &request("text/plain", true),
            &credentials(None),
            &scope(1_702_747_512),
            &RESOURCE,
            asked,
        )
        .unwrap();
        assert_eq!(
            signed.authorization.as_deref(),
            Some(
                "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
                 AdditionalHeaders=abc;zabc,\
                 Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"
            )
        );
    }
}

#[test]
fn vendor_vectors_presigned() {
    let cases: [(i64, Option<&str>, &[&str], &str); 3] = [
        (
            1_702_781_677,
            None,
            &[],
            "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe",
        ),
        (
            1_702_785_388,
            Some("token"),
            &[],
            "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5",
        ),
        (
            1_702_783_809,
            None,
            &["ZAbc", "abc"],
            "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7",
        ),
    ];
    for (time, token, additional, expected) in cases {
        let signed = presign(
            &request("application/octet-stream", false),
            &credentials(token),
            &scope(time),
            &RESOURCE,
            additional,
            599,
        )
        .unwrap();
        assert_eq!(signed.signature, expected);
        assert!(
            signed
                .url
                .ends_with(&format!("&x-oss-signature={expected}"))
        );
        let parsed =
            parse_presigned(&query_pairs(RawUrl::parse(&signed.url).unwrap().query)).unwrap();
        assert_eq!(parsed.expires_secs, 599);
        assert_eq!(parsed.authorization.signature, expected);
        assert_eq!(parsed.security_token.as_deref(), token);
    }
}

#[test]
fn authorization_parses_both_spellings() {
    let compact = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
                   AdditionalHeaders=abc;zabc,Signature=4a41";
    let spaced = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request, \
                  Signature=4a41, AdditionalHeaders=abc;zabc";
    let parsed = parse_authorization(compact).unwrap();
    assert_eq!(parsed, parse_authorization(spaced).unwrap());
    assert_eq!(parsed.access_key_id, "ak");
    assert_eq!(parsed.region, "cn-hangzhou");
    assert_eq!(parsed.additional_headers, ["abc", "zabc"]);
    assert!(parse_authorization("OSS ak:sig").is_err());
    assert!(parse_authorization("OSS4-HMAC-SHA256 Credential=ak/2023/x,Signature=1").is_err());
}

#[test]
fn an_additional_header_must_be_sent() {
    let err = sign(
        &request("text/plain", true),
        &credentials(None),
        &scope(1_702_747_512),
        &RESOURCE,
        &["x-missing"],
    );
    assert_eq!(
        err,
        Err(SignError::MissingAdditionalHeader("x-missing".into()))
    );
    let key_only = Resource {
        bucket: None,
        key: Some("k"),
    };
    assert_eq!(canonical_uri(&key_only), Err(SignError::KeyWithoutBucket));
}

#[test]
fn expiry_is_bounded() {
    let err = presign(
        &request("text/plain", false),
        &credentials(None),
        &scope(1_702_747_512),
        &RESOURCE,
        &NONE,
        MAX_PRESIGN_SECS + 1,
    );
    assert_eq!(err, Err(SignError::InvalidExpiry(MAX_PRESIGN_SECS + 1)));
}

#[test]
fn secrets_stay_out_of_debug() {
    let signed = sign(
        &request("text/plain", true),
        &credentials(Some("token-secret")),
        &scope(1_702_743_657),
        &RESOURCE,
        &NONE,
    )
    .unwrap();
    assert!(
        signed
            .canonical_request
            .as_deref()
            .unwrap()
            .contains("token-secret")
    );
    assert!(!format!("{:?}", credentials(Some("token-secret"))).contains("token-secret"));
    assert!(!format!("{signed:?}").contains("token-secret"));
}
