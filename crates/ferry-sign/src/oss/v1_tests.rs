//! OSS V1 against the examples of the OSS documentation ("Include a V1 signature in the
//! Authorization header": PUT /nelson; the presigned GET of oss-api.pdf) and the V1 vectors of
//! Alibaba Cloud's Go SDK v2 (sub-resources, a key with `+`, a security token).

use time::OffsetDateTime;

use super::*;
use crate::Secret;

fn credentials(ak: &str, sk: &str, token: Option<&str>) -> SigningCredentials {
    SigningCredentials {
        access_key_id: ak.into(),
        secret_access_key: Secret::new(sk),
        security_token: token.map(Secret::new),
    }
}

fn doc_credentials() -> SigningCredentials {
    credentials(
        "44CF9590006BF252F707",
        "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV",
        None,
    )
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// The documentation's example. Its request shows `Content-Md5: eB5eJF1ptWaXm4bijSPyxw==` but
/// its string to sign (and so its signature) uses `ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=`;
/// the signature is reproduced with the latter.
#[test]
fn documentation_put_nelson() {
    let request = UnsignedRequest {
        method: "PUT".into(),
        url: "http://oss-example.oss-cn-hangzhou.aliyuncs.com/nelson".into(),
        headers: headers(&[
            (
                "Content-Md5",
                "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
            ),
            ("Content-Type", "text/html"),
            ("Date", "Thu, 17 Nov 2005 18:49:58 GMT"),
            ("X-OSS-Meta-Author", "foo@bar.com"),
            ("X-OSS-Magic", "abracadabra"),
        ]),
    };
    let resource = Resource {
        bucket: Some("oss-example"),
        key: Some("nelson"),
    };
    let signed = sign(&request, &doc_credentials(), at(0), &resource).unwrap();
    assert_eq!(
        signed.string_to_sign,
        "PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\n\
         Thu, 17 Nov 2005 18:49:58 GMT\nx-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n\
         /oss-example/nelson"
    );
    assert_eq!(
        signed.authorization.as_deref(),
        Some("OSS 44CF9590006BF252F707:26NBxoKdsyly4EDv6inkoDft/yA=")
    );
    assert_eq!(
        parse_authorization(signed.authorization.as_deref().unwrap()).unwrap(),
        (
            "44CF9590006BF252F707".into(),
            "26NBxoKdsyly4EDv6inkoDft/yA=".into()
        )
    );
}

#[test]
fn documentation_presigned_get() {
    let request = UnsignedRequest {
        method: "GET".into(),
        url: "http://oss-example.oss-cn-hangzhou.aliyuncs.com/oss-api.pdf".into(),
        headers: vec![],
    };
    let resource = Resource {
        bucket: Some("oss-example"),
        key: Some("oss-api.pdf"),
    };
    let signed = presign(
        &request,
        &doc_credentials(),
        at(1_141_889_060),
        &resource,
        60,
    )
    .unwrap();
    assert_eq!(
        signed.url,
        "http://oss-example.oss-cn-hangzhou.aliyuncs.com/oss-api.pdf?\
         OSSAccessKeyId=44CF9590006BF252F707&Expires=1141889120&\
         Signature=EwaNTn1erJGkimiJ9WmXgwnANLc%3D"
    );
    let parsed = parse_presigned(&query_pairs(RawUrl::parse(&signed.url).unwrap().query));
    assert_eq!(parsed.unwrap().expires, 1_141_889_120);
}

#[test]
fn sdk_vectors_sub_resources_in_header_mode() {
    let cases = [
        (
            "/?resourceGroup&non-resousce=null",
            "/examplebucket/?resourceGroup",
            "vkQmfuUDyi1uDi3bKt67oemssIs=",
        ),
        (
            "/?resourceGroup&acl",
            "/examplebucket/?acl&resourceGroup",
            "x3E5TgOvl/i7PN618s5mEvpJDYk=",
        ),
    ];
    for (target, resource_line, expected) in cases {
        let request = UnsignedRequest {
            method: "GET".into(),
            url: format!("http://examplebucket.oss-cn-hangzhou.aliyuncs.com{target}"),
            headers: headers(&[("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT")]),
        };
        let resource = Resource {
            bucket: Some("examplebucket"),
            key: None,
        };
        let signed = sign(&request, &credentials("ak", "sk", None), at(0), &resource).unwrap();
        assert_eq!(
            signed.string_to_sign,
            format!(
                "GET\n\n\nWed, 28 Dec 2022 10:27:41 GMT\n\
                 x-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\n{resource_line}"
            )
        );
        assert_eq!(signed.signature, expected);
    }
}

#[test]
fn sdk_vectors_presigned_with_token() {
    let cases = [
        (
            "key",
            "key",
            None,
            1_699_807_420,
            "dcLTea%2BYh9ApirQ8o8dOPqtvJXQ%3D",
        ),
        (
            "key%2B123",
            "key+123",
            Some("token"),
            1_699_808_204,
            "jzKYRrM5y6Br0dRFPaTGOsbrDhY%3D",
        ),
    ];
    for (path, key, token, expires, expected) in cases {
        let request = UnsignedRequest {
            method: "GET".into(),
            url: format!("http://bucket.oss-cn-hangzhou.aliyuncs.com/{path}?versionId=versionId"),
            headers: vec![],
        };
        let resource = Resource {
            bucket: Some("bucket"),
            key: Some(key),
        };
        let signed = presign(
            &request,
            &credentials("ak", "sk", token),
            at(expires - 900),
            &resource,
            900,
        )
        .unwrap();
        assert!(
            signed
                .url
                .contains(&format!("&Signature={expected}&versionId=versionId"))
        );
        assert_eq!(
            signed.url.ends_with("&security-token=token"),
            token.is_some()
        );
    }
}

#[test]
fn x_oss_date_prevails_over_date_and_is_added_when_neither_is_sent() {
    let both = headers(&[
        ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("x-oss-date", "X"),
    ]);
    assert_eq!(date_line(&both), Some("X"));
    let request = UnsignedRequest {
        method: "PUT".into(),
        url: "http://b.example/k".into(),
        headers: vec![],
    };
    let resource = Resource {
        bucket: Some("b"),
        key: Some("k"),
    };
    let token = credentials("ak", "sk", Some("tok"));
    let signed = sign(&request, &token, at(1_132_253_398), &resource).unwrap();
    assert_eq!(
        header(&signed.headers, DATE_HEADER),
        Some("Thu, 17 Nov 2005 18:49:58 GMT")
    );
    assert!(
        signed
            .string_to_sign
            .contains("\nx-oss-security-token:tok\n")
    );
    assert!(parse_authorization("OBS ak:sig").is_err());
}
