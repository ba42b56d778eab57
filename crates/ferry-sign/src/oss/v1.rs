//! OSS Signature Version 1: `Authorization: OSS <AccessKeyId>:<Signature>`, the signature being
//! base64(HMAC-SHA1(secret, string to sign)), and its presigned form with `OSSAccessKeyId`,
//! `Expires` and `Signature` in the query.
//!
//! The string to sign is `VERB\nContent-MD5\nContent-Type\nDate\n` + the `x-oss-*` headers
//! (lower-cased, trimmed, sorted) + the canonical resource: `/<bucket>/<key>` with the key
//! *unencoded*, then the sub-resources among the query parameters ([`SUB_RESOURCES`]), sorted,
//! with decoded values. The date line is `x-oss-date` when present, else `Date` (the OSS
//! documentation: "when both exist, x-oss-date prevails"); in a presigned URL it is `Expires`.

use time::OffsetDateTime;

use super::{DATE_HEADER, HEADER_PREFIX, TOKEN_HEADER};
use crate::sigv4::MAX_PRESIGN_SECS;
use crate::{
    RawUrl, Resource, SignError, SignedRequest, SigningCredentials, UnsignedRequest, add_header,
    header, hmac_sha1_base64, http_date, prefixed_headers, query_pairs, uri_encode,
};

/// The word before the credential in the `Authorization` header.
pub const AUTH_PREFIX: &str = "OSS";
/// The query parameter that carries the security token in a presigned URL (itself signed).
pub const TOKEN_QUERY: &str = "security-token";

/// The query parameters OSS signs as sub-resources (case-sensitive, as oss2 lists them); any
/// other parameter is sent but not signed.
pub const SUB_RESOURCES: &[&str] = &[
    "acl",
    "append",
    "asyncFetch",
    "bucketInfo",
    "callback",
    "callback-var",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "qos",
    "qosInfo",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-async-process",
    "x-oss-process",
    "x-oss-request-payer",
    "x-oss-traffic-limit",
    "x-oss-write-get-object-response",
];

/// The canonical resource: `/<bucket>/<key>` (key unencoded; `/` alone without a bucket) and the
/// sub-resources among the decoded `query` pairs, sorted, `name` alone when the value is empty.
pub fn canonical_resource(
    resource: &Resource<'_>,
    query: &[(String, String)],
) -> Result<String, SignError> {
    let mut out = match (resource.bucket, resource.key) {
        (Some(bucket), key) => format!("/{bucket}/{}", key.unwrap_or("")),
        (None, Some(_)) => return Err(SignError::KeyWithoutBucket),
        (None, None) => "/".to_owned(),
    };
    let mut subs: Vec<&(String, String)> = query
        .iter()
        .filter(|(name, _)| SUB_RESOURCES.contains(&name.as_str()))
        .collect();
    subs.sort();
    for (i, (name, value)) in subs.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
    Ok(out)
}

/// The date line of a header-signed request: `x-oss-date` if present, else `Date`.
pub fn date_line(headers: &[(String, String)]) -> Option<&str> {
    header(headers, DATE_HEADER).or_else(|| header(headers, "date"))
}

/// The string to sign. `date` is [`date_line`] (header mode) or the `Expires` value (presigned).
pub fn string_to_sign(
    method: &str,
    headers: &[(String, String)],
    date: &str,
    canonical_resource: &str,
) -> String {
    let line = |name: &str| header(headers, name).map(str::trim).unwrap_or("");
    let oss_headers: String = prefixed_headers(headers, HEADER_PREFIX, |_, v| v.trim().to_owned())
        .iter()
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect();
    format!(
        "{}\n{}\n{}\n{}\n{oss_headers}{canonical_resource}",
        method.to_ascii_uppercase(),
        line("content-md5"),
        line("content-type"),
        date.trim(),
    )
}

/// The base64 signature of `string_to_sign`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    hmac_sha1_base64(secret, string_to_sign)
}

/// `OSS <AccessKeyId>:<Signature>`.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("{AUTH_PREFIX} {access_key_id}:{signature}")
}

/// Splits `OSS <AccessKeyId>:<Signature>` into the access key id and the signature.
pub fn parse_authorization(value: &str) -> Result<(String, String), SignError> {
    parse_prefixed(value, AUTH_PREFIX)
}

/// Splits `<prefix> <AccessKeyId>:<Signature>` (OSS V1, OBS).
pub(crate) fn parse_prefixed(value: &str, prefix: &str) -> Result<(String, String), SignError> {
    value
        .trim()
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ak, sig)| !ak.is_empty() && !sig.is_empty())
        .map(|(ak, sig)| (ak.trim().to_owned(), sig.trim().to_owned()))
        .ok_or_else(|| SignError::MalformedAuthorization(format!("not `{prefix} AK:signature`")))
}

/// What a presigned URL's query says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// `OSSAccessKeyId`.
    pub access_key_id: String,
    /// `Expires`, unix seconds.
    pub expires: i64,
    /// `Signature` (decoded).
    pub signature: String,
}

/// Reads `OSSAccessKeyId`, `Expires` and `Signature` from a presigned URL's decoded query.
pub fn parse_presigned(query: &[(String, String)]) -> Result<Presigned, SignError> {
    parse_presigned_with(query, "OSSAccessKeyId")
}

pub(crate) fn parse_presigned_with(
    query: &[(String, String)],
    key_param: &str,
) -> Result<Presigned, SignError> {
    let need = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SignError::MalformedAuthorization(format!("no {name}")))
    };
    let expires = need("Expires")?;
    Ok(Presigned {
        access_key_id: need(key_param)?.to_owned(),
        expires: expires
            .parse()
            .map_err(|_| SignError::MalformedAuthorization(format!("Expires {expires:?}")))?,
        signature: need("Signature")?.to_owned(),
    })
}

/// Signs with an `Authorization` header. Adds `x-oss-security-token` and, when the request has
/// neither `x-oss-date` nor `Date`, `x-oss-date` with `time` as an HTTP date (as ali-oss does).
pub fn sign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
    resource: &Resource<'_>,
) -> Result<SignedRequest, SignError> {
    let url = RawUrl::parse(&request.url)?;
    let mut headers = request.headers.clone();
    if let Some(token) = &credentials.security_token {
        add_header(&mut headers, TOKEN_HEADER, || token.expose().to_owned());
    }
    if date_line(&headers).is_none() {
        headers.push((DATE_HEADER.to_owned(), http_date(time)));
    }
    let resource = canonical_resource(resource, &query_pairs(url.query))?;
    let date = date_line(&headers).unwrap_or_default();
    let string_to_sign = string_to_sign(&request.method, &headers, date, &resource);
    let signature = signature(credentials.secret_access_key.expose(), &string_to_sign);
    let authorization = authorization(&credentials.access_key_id, &signature);
    headers.push(("Authorization".to_owned(), authorization.clone()));
    Ok(SignedRequest {
        canonical_request: None,
        string_to_sign,
        signature,
        authorization: Some(authorization),
        url: request.url.clone(),
        headers,
    })
}

/// Signs into the URL's query, valid until `time + expires_secs`. The query becomes
/// `OSSAccessKeyId`, `Expires`, `Signature`, what it had, then `security-token` (ali-oss's order).
pub fn presign(
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
    resource: &Resource<'_>,
    expires_secs: u64,
) -> Result<SignedRequest, SignError> {
    if !(1..=MAX_PRESIGN_SECS).contains(&expires_secs) {
        return Err(SignError::InvalidExpiry(expires_secs));
    }
    let url = RawUrl::parse(&request.url)?;
    let expires = (time.unix_timestamp() + expires_secs as i64).to_string();
    let mut query = query_pairs(url.query);
    let token = credentials.security_token.as_ref().map(|t| t.expose());
    if let Some(token) = token {
        query.push((TOKEN_QUERY.to_owned(), token.to_owned()));
    }
    let resource = canonical_resource(resource, &query)?;
    let string_to_sign = string_to_sign(&request.method, &request.headers, &expires, &resource);
    let signature = signature(credentials.secret_access_key.expose(), &string_to_sign);
    let mut parts = vec![
        format!(
            "OSSAccessKeyId={}",
            uri_encode(&credentials.access_key_id, false)
        ),
        format!("Expires={expires}"),
        format!("Signature={}", uri_encode(&signature, false)),
    ];
    parts.extend(url.query.filter(|q| !q.is_empty()).map(str::to_owned));
    parts.extend(token.map(|t| format!("{TOKEN_QUERY}={}", uri_encode(t, false))));
    Ok(SignedRequest {
        canonical_request: None,
        string_to_sign,
        signature,
        authorization: None,
        url: format!(
            "{}://{}{}?{}",
            url.scheme,
            url.authority,
            url.path,
            parts.join("&")
        ),
        headers: request.headers.clone(),
    })
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod tests;
