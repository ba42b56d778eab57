//! The `oss` dialect (Alibaba Cloud OSS): OSS4-HMAC-SHA256 or the older `OSS AK:signature`
//! (from [`ferry_sign::oss`]), `x-oss-security-token`, OSS's error codes, and the CRC-64 it
//! returns for what it stored. OSS signs `/<bucket>/<key>` whatever the host name (virtual-hosted
//! or the bucket's own domain).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::{CallbackSpec, Grant};
use ferry_sign::oss::{v1, v4};
use ferry_sign::{Resource, SignError, SigningCredentials, UnsignedRequest};
use time::OffsetDateTime;

/// Where OSS answers the CRC-64 (ECMA-182, as in XZ) of an object or part it stored.
pub(super) const CRC64_HEADER: &str = "x-oss-hash-crc64ecma";

/// OSS's codes for credentials it refuses.
pub(super) const CREDENTIALS_REFUSED: &[&str] = &[
    "SecurityTokenExpired",
    "InvalidSecurityToken",
    "InvalidAccessKeyId",
    "AccessKeyIdExpired",
];

fn resource<'a>(grant: &'a Grant, key: Option<&'a str>) -> Resource<'a> {
    Resource {
        bucket: Some(&grant.bucket),
        key,
    }
}

pub(super) fn sign_v4(
    grant: &Grant,
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    key: Option<&str>,
    time: OffsetDateTime,
) -> Result<Vec<(String, String)>, SignError> {
    let scope = v4::Scope {
        region: &grant.region,
        product: ferry_sign::oss::PRODUCT,
        time,
    };
    let none: &[&str] = &[];
    Ok(v4::sign(request, credentials, &scope, &resource(grant, key), none)?.headers)
}

pub(super) fn sign_v1(
    grant: &Grant,
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    key: Option<&str>,
    time: OffsetDateTime,
) -> Result<Vec<(String, String)>, SignError> {
    Ok(v1::sign(request, credentials, time, &resource(grant, key))?.headers)
}

/// `x-oss-callback` (base64 of `{callbackUrl, callbackBody, callbackBodyType}`) and
/// `x-oss-callback-var` (base64 of the custom variables: the grant's and the client's).
pub(super) fn callback_headers(
    spec: &CallbackSpec,
    vars: &[(&str, String)],
) -> Vec<(String, String)> {
    let callback = serde_json::json!({
        "callbackUrl": spec.url,
        "callbackBody": spec.body,
        "callbackBodyType": spec.body_type,
    });
    let mut all = spec.vars.clone();
    for (name, value) in vars {
        all.insert((*name).to_owned(), value.clone());
    }
    let mut headers = vec![(
        "x-oss-callback".to_owned(),
        STANDARD.encode(callback.to_string()),
    )];
    if !all.is_empty() {
        let vars = serde_json::to_string(&all).unwrap_or_default();
        headers.push(("x-oss-callback-var".to_owned(), STANDARD.encode(vars)));
    }
    headers
}
