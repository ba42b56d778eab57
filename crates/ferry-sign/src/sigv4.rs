//! AWS Signature Version 4, header and presigned modes, with `x-amz-security-token`.
//!
//! For `service = "s3"` the canonical path is the path as sent (S3 never normalises it, and the
//! uploader encodes keys itself); for other services dot segments and
//! repeated slashes are removed and the path is encoded once more, as the AWS suite expects.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use super::{RawUrl, SignError, SigningCredentials, UnsignedRequest, percent_decode, uri_encode};

/// The algorithm name in headers and presigned URLs.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash of a request whose body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The header that carries the session token of temporary credentials.
pub const TOKEN_HEADER: &str = "x-amz-security-token";
/// Longest presigned URL lifetime S3 accepts.
pub const MAX_PRESIGN_SECS: u64 = 7 * 24 * 3600;

/// Where and when a request is signed.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    /// Signing region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing service: `s3` for object stores, `sts` for STS.
    pub service: &'a str,
    /// Signing time (UTC); sign just before sending.
    pub time: OffsetDateTime,
}

/// A signed request and the intermediate strings (useful to check against other signers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string that was signed.
    pub string_to_sign: String,
    /// Hex signature.
    pub signature: String,
    /// The `Authorization` header value (header mode only).
    pub authorization: Option<String>,
    /// The URL to send (presign mode adds the signing query).
    pub url: String,
    /// Every header to send, in order (header mode includes `Authorization`).
    pub headers: Vec<(String, String)>,
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(time: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(value: &str) -> Result<OffsetDateTime, SignError> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, &format)
        .map(|t| t.assume_utc())
        .map_err(|_| SignError::InvalidTime(value.to_owned()))
}

pub(crate) fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Trims a header value and collapses runs of spaces; folded lines become comma-separated.
fn canonical_value(value: &str) -> String {
    value
        .split('\n')
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// `(canonical headers block, signed header list)`.
fn canonical_headers(headers: &[(String, String)]) -> Result<(String, String), SignError> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', ':', '\n']) {
            return Err(SignError::InvalidHeader(name));
        }
        if name == "authorization" {
            continue;
        }
        let value = canonical_value(value);
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    let block = merged
        .iter()
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect::<String>();
    let signed = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    Ok((block, signed))
}

/// Query parameters decoded, re-encoded the SigV4 way and sorted by name, then value.
fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Removes `.` and `..` segments and repeated slashes (non-S3 services only).
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("/{}", segments.join("/"));
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

fn canonical_path(path: &str, service: &str) -> String {
    if service == "s3" {
        path.to_owned()
    } else {
        uri_encode(&normalize_path(path), true)
    }
}

fn credential_scope(scope: &Scope<'_>) -> String {
    let date = &amz_date(scope.time)[..8];
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

fn signature(secret: &str, scope: &Scope<'_>, canonical_request: &str) -> (String, String) {
    let time = amz_date(scope.time);
    let string_to_sign = format!(
        "{ALGORITHM}\n{time}\n{}\n{}",
        credential_scope(scope),
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), &time[..8]);
    let k_region = hmac(&k_date, scope.region);
    let k_service = hmac(&k_region, scope.service);
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    (string_to_sign, signature)
}

/// Signs with an `Authorization` header. `payload_sha256` is the hex body hash or
/// [`UNSIGNED_PAYLOAD`]. Adds `host`, `x-amz-date`, `x-amz-content-sha256` (service `s3`) and
/// `x-amz-security-token` unless the request already has them.
pub fn sign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    scope: &Scope<'_>,
    payload_sha256: &str,
) -> Result<Signed, SignError> {
    let url = RawUrl::parse(&request.url)?;
    let mut headers = request.headers.clone();
    let mut add = |name: &str, value: String| {
        if !has_header(&headers, name) {
            headers.push((name.to_owned(), value));
        }
    };
    add("host", url.host().to_owned());
    add("x-amz-date", amz_date(scope.time));
    if scope.service == "s3" {
        add("x-amz-content-sha256", payload_sha256.to_owned());
    }
    if let Some(token) = &credentials.security_token {
        add(TOKEN_HEADER, token.expose().to_owned());
    }
    let (header_block, signed_headers) = canonical_headers(&headers)?;
    let canonical_request = format!(
        "{}\n{}\n{}\n{header_block}\n{signed_headers}\n{payload_sha256}",
        request.method.to_ascii_uppercase(),
        canonical_path(url.path, scope.service),
        canonical_query(url.query),
    );
    let (string_to_sign, signature) = signature(
        credentials.secret_access_key.expose(),
        scope,
        &canonical_request,
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id,
        credential_scope(scope)
    );
    headers.push(("Authorization".to_owned(), authorization.clone()));
    Ok(Signed {
        canonical_request,
        string_to_sign,
        signature,
        authorization: Some(authorization),
        url: request.url.clone(),
        headers,
    })
}

/// Signs into the URL's query (a presigned URL valid for `expires_secs`). The security token
/// is part of the signed query, as S3 expects.
pub fn presign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    scope: &Scope<'_>,
    payload_sha256: &str,
    expires_secs: u64,
) -> Result<Signed, SignError> {
    if !(1..=MAX_PRESIGN_SECS).contains(&expires_secs) {
        return Err(SignError::InvalidExpiry(expires_secs));
    }
    let url = RawUrl::parse(&request.url)?;
    let mut headers = request.headers.clone();
    if !has_header(&headers, "host") {
        headers.push(("host".to_owned(), url.host().to_owned()));
    }
    let (header_block, signed_headers) = canonical_headers(&headers)?;
    let mut added = vec![
        ("X-Amz-Algorithm", ALGORITHM.to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{}", credentials.access_key_id, credential_scope(scope)),
        ),
        ("X-Amz-Date", amz_date(scope.time)),
        ("X-Amz-Expires", expires_secs.to_string()),
        ("X-Amz-SignedHeaders", signed_headers.clone()),
    ];
    if let Some(token) = &credentials.security_token {
        added.push(("X-Amz-Security-Token", token.expose().to_owned()));
    }
    let added_query = added
        .iter()
        .map(|(n, v)| format!("{n}={}", uri_encode(v, false)))
        .collect::<Vec<_>>()
        .join("&");
    let query = match url.query.filter(|q| !q.is_empty()) {
        Some(existing) => format!("{existing}&{added_query}"),
        None => added_query,
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{header_block}\n{signed_headers}\n{payload_sha256}",
        request.method.to_ascii_uppercase(),
        canonical_path(url.path, scope.service),
        canonical_query(Some(&query)),
    );
    let (string_to_sign, signature) = signature(
        credentials.secret_access_key.expose(),
        scope,
        &canonical_request,
    );
    let signed_url = format!(
        "{}://{}{}?{query}&X-Amz-Signature={signature}",
        url.scheme, url.authority, url.path
    );
    Ok(Signed {
        canonical_request,
        string_to_sign,
        signature,
        authorization: None,
        url: signed_url,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn example_credentials() -> SigningCredentials {
        SigningCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            security_token: None,
        }
    }

    fn scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "s3",
            time: parse_amz_date("20130524T000000Z").unwrap(),
        }
    }

    /// The "GET Object" example of the S3 SigV4 documentation (header mode).
    #[test]
    fn s3_documentation_get_object() {
        let request = UnsignedRequest {
            method: "GET".into(),
            url: "https://examplebucket.s3.amazonaws.com/test.txt".into(),
            headers: vec![("Range".into(), "bytes=0-9".into())],
        };
        let signed = sign(&request, &example_credentials(), &scope(), EMPTY_SHA256).unwrap();
        assert_eq!(
            signed.signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// The "PUT Object" example of the S3 SigV4 documentation.
    #[test]
    fn s3_documentation_put_object() {
        let request = UnsignedRequest {
            method: "PUT".into(),
            url: "https://examplebucket.s3.amazonaws.com/test%24file.text".into(),
            headers: vec![
                ("Date".into(), "Fri, 24 May 2013 00:00:00 GMT".into()),
                ("x-amz-storage-class".into(), "REDUCED_REDUNDANCY".into()),
            ],
        };
        let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        let signed = sign(&request, &example_credentials(), &scope(), payload).unwrap();
        assert_eq!(
            signed.signature,
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    /// The presigned-URL example of the S3 SigV4 documentation.
    #[test]
    fn s3_documentation_presigned_url() {
        let request = UnsignedRequest {
            method: "GET".into(),
            url: "https://examplebucket.s3.amazonaws.com/test.txt".into(),
            headers: vec![],
        };
        let signed = presign(
            &request,
            &example_credentials(),
            &scope(),
            UNSIGNED_PAYLOAD,
            86_400,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert!(
            signed
                .url
                .ends_with(&format!("&X-Amz-Signature={}", signed.signature))
        );
        assert!(
            signed
                .url
                .contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F")
        );
    }

    #[test]
    fn the_token_is_signed_and_sent() {
        let mut credentials = example_credentials();
        credentials.security_token = Some(Secret::new("TOKEN/+="));
        let request = UnsignedRequest {
            method: "PUT".into(),
            url: "http://h/b/k".into(),
            headers: vec![],
        };
        let signed = sign(&request, &credentials, &scope(), UNSIGNED_PAYLOAD).unwrap();
        assert!(
            signed
                .canonical_request
                .contains("x-amz-security-token:TOKEN/+=\n")
        );
        assert!(
            signed
                .headers
                .iter()
                .any(|(n, v)| n == TOKEN_HEADER && v == "TOKEN/+=")
        );
        let presigned = presign(&request, &credentials, &scope(), UNSIGNED_PAYLOAD, 60).unwrap();
        assert!(
            presigned
                .url
                .contains("X-Amz-Security-Token=TOKEN%2F%2B%3D")
        );
    }

    #[test]
    fn paths_normalise_only_outside_s3() {
        assert_eq!(canonical_path("/a//b/../c", "s3"), "/a//b/../c");
        assert_eq!(canonical_path("/a//b/../c", "service"), "/a/c");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(
            canonical_path("/example space/", "service"),
            "/example%20space/"
        );
    }

    #[test]
    fn presign_expiry_is_bounded() {
        let request = UnsignedRequest {
            method: "GET".into(),
            url: "http://h/".into(),
            headers: vec![],
        };
        let err = presign(
            &request,
            &example_credentials(),
            &scope(),
            UNSIGNED_PAYLOAD,
            0,
        );
        assert_eq!(err, Err(SignError::InvalidExpiry(0)));
    }
}
