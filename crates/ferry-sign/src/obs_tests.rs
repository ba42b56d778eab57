//! OBS against the examples of the OBS API reference ("Authentication of Signature in a Header",
//! tables 2 to 7, and "in a URL"). The documentation gives strings to sign but no secret key
//! with a signature to recompute, so signatures themselves are checked against
//! esdk-obs-nodejs by the engine's oracle test.

use time::OffsetDateTime;

use super::*;
use crate::Secret;

fn credentials(token: Option<&str>) -> SigningCredentials {
    SigningCredentials {
        access_key_id: "AK".into(),
        secret_access_key: Secret::new("SK"),
        security_token: token.map(Secret::new),
    }
}

fn put(url: &str, headers: &[(&str, &str)]) -> UnsignedRequest {
    UnsignedRequest {
        method: "PUT".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

const OBJECT: Resource<'static> = Resource {
    bucket: Some("bucket"),
    key: Some("object.txt"),
};

fn string_to_sign_of(
    request: &UnsignedRequest,
    token: Option<&str>,
    resource: &Resource,
) -> String {
    let time = OffsetDateTime::from_unix_timestamp(0).unwrap();
    sign(request, &credentials(token), time, Flavor::Obs, resource)
        .unwrap()
        .string_to_sign
}

#[test]
fn documentation_get_object_and_acl() {
    let mut request = put(
        "https://bucket.obs.region.example.com/object.txt",
        &[("Date", "Sat, 12 Oct 2015 08:12:38 GMT")],
    );
    request.method = "GET".into();
    assert_eq!(
        string_to_sign_of(&request, None, &OBJECT),
        "GET\n\n\nSat, 12 Oct 2015 08:12:38 GMT\n/bucket/object.txt"
    );
    request.url.push_str("?acl");
    assert_eq!(
        string_to_sign_of(&request, None, &OBJECT),
        "GET\n\n\nSat, 12 Oct 2015 08:12:38 GMT\n/bucket/object.txt?acl"
    );
}

#[test]
fn documentation_put_with_token_and_x_obs_date() {
    let request = put(
        "https://bucket.obs.region.example.com/object.txt",
        &[
            ("User-Agent", "curl/7.15.5"),
            ("x-obs-date", "Tue, 15 Oct 2015 07:20:09 GMT"),
            ("content-type", "text/plain"),
            ("Content-Length", "5913339"),
        ],
    );
    let string_to_sign = string_to_sign_of(&request, Some("YwkaRTbdY8g7q...."), &OBJECT);
    assert_eq!(
        string_to_sign,
        "PUT\n\ntext/plain\n\nx-obs-date:Tue, 15 Oct 2015 07:20:09 GMT\n\
         x-obs-security-token:YwkaRTbdY8g7q....\n/bucket/object.txt"
    );
}

#[test]
fn documentation_put_with_acl_header_and_content_md5() {
    let request = put(
        "https://bucket.obs.region.example.com/object.txt",
        &[
            ("Date", "Mon, 14 Oct 2015 12:08:34 GMT"),
            ("x-obs-acl", "public-read"),
            ("content-type", "text/plain"),
        ],
    );
    assert_eq!(
        string_to_sign_of(&request, None, &OBJECT),
        "PUT\n\ntext/plain\nMon, 14 Oct 2015 12:08:34 GMT\nx-obs-acl:public-read\n/bucket/object.txt"
    );
    let request = put(
        "https://bucket.obs.region.example.com/object.txt",
        &[
            ("x-obs-date", "Tue, 15 Oct 2015 07:20:09 GMT"),
            ("Content-MD5", "I5pU0r4+sgO9Emgl1KMQUg=="),
        ],
    );
    assert_eq!(
        string_to_sign_of(&request, None, &OBJECT),
        "PUT\nI5pU0r4+sgO9Emgl1KMQUg==\n\n\nx-obs-date:Tue, 15 Oct 2015 07:20:09 GMT\n\
         /bucket/object.txt"
    );
}

/// Table 7: through the bucket's own domain (CNAME), the domain stands for the bucket.
#[test]
fn documentation_user_domain_name() {
    let request = put(
        "https://obs.ccc.com/object.txt",
        &[
            ("x-obs-date", "Tue, 15 Oct 2015 07:20:09 GMT"),
            ("Content-MD5", "I5pU0r4+sgO9Emgl1KMQUg=="),
        ],
    );
    let resource = Resource {
        bucket: Some("obs.ccc.com"),
        key: Some("object.txt"),
    };
    assert!(string_to_sign_of(&request, None, &resource).ends_with("\n/obs.ccc.com/object.txt"));
}

#[test]
fn documentation_presigned_get_with_token() {
    let request = UnsignedRequest {
        method: "GET".into(),
        url: "https://examplebucket.obs.region.example.com/objectkey".into(),
        headers: vec![],
    };
    let resource = Resource {
        bucket: Some("examplebucket"),
        key: Some("objectkey"),
    };
    let time = OffsetDateTime::from_unix_timestamp(1_532_779_451 - 3600).unwrap();
    let signed = presign(
        &request,
        &credentials(Some("YwkaRTbdY8g7q....")),
        time,
        Flavor::Obs,
        &resource,
        3600,
    )
    .unwrap();
    assert_eq!(
        signed.string_to_sign,
        "GET\n\n\n1532779451\n/examplebucket/objectkey?x-obs-security-token=YwkaRTbdY8g7q...."
    );
    let expected_query = format!(
        "?AccessKeyId=AK&Expires=1532779451&x-obs-security-token=YwkaRTbdY8g7q....&Signature={}",
        uri_encode(&signed.signature, true)
    );
    assert!(signed.url.ends_with(&expected_query), "{}", signed.url);
    let parsed = parse_presigned(
        Flavor::Obs,
        &query_pairs(RawUrl::parse(&signed.url).unwrap().query),
    );
    assert_eq!(parsed.unwrap().signature, signed.signature);
}

#[test]
fn keys_are_encoded_and_sub_resources_sorted() {
    let resource = Resource {
        bucket: Some("b"),
        key: Some("dir/a b+ü.txt"),
    };
    let query = query_pairs(Some("uploadId=x%2By&partNumber=2&foo=bar&x-obs-meta=1"));
    assert_eq!(
        canonical_resource(Flavor::Obs, &resource, &query).unwrap(),
        "/b/dir/a%20b%2B%C3%BC.txt?partNumber=2&uploadId=x+y&x-obs-meta=1"
    );
    assert_eq!(
        canonical_resource(Flavor::Obs, &Resource::default(), &[]).unwrap(),
        "/"
    );
}

#[test]
fn both_flavors_parse() {
    assert_eq!(
        parse_authorization("OBS ak:c2ln").unwrap(),
        (Flavor::Obs, "ak".into(), "c2ln".into())
    );
    assert_eq!(parse_authorization("AWS ak:c2ln").unwrap().0, Flavor::AwsV2);
    assert!(parse_authorization("OSS ak:c2ln").is_err());
    assert!(parse_authorization("OBS ak").is_err());
}
