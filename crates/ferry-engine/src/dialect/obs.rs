//! The `obs` dialect (Huawei Cloud OBS): the OBS signature (from [`ferry_sign::obs`]),
//! `x-obs-security-token`, OBS's error codes. With the bucket's own domain as endpoint, OBS
//! signs `/<domain>/<key>` (the host name without its port), as its SDKs do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_protocol::{Addressing, CallbackSpec, Grant};
use ferry_sign::obs::{self, Flavor};
use ferry_sign::{RawUrl, Resource, SignError, SigningCredentials, UnsignedRequest};
use time::OffsetDateTime;

/// OBS's codes for credentials it refuses.
pub(super) const CREDENTIALS_REFUSED: &[&str] = &[
    "ExpiredToken",
    "InvalidToken",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
];

pub(super) fn sign(
    grant: &Grant,
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    key: Option<&str>,
    time: OffsetDateTime,
) -> Result<Vec<(String, String)>, SignError> {
    let url = RawUrl::parse(&request.url)?;
    let domain = url.hostname();
    let bucket = match grant.addressing {
        Addressing::Domain => domain,
        Addressing::Path | Addressing::VirtualHosted => &grant.bucket,
    };
    let resource = Resource {
        bucket: Some(bucket),
        key,
    };
    Ok(obs::sign(request, credentials, time, Flavor::Obs, &resource)?.headers)
}

/// `x-obs-callback`: base64 of `{callbackUrl, callbackBody, callbackBodyType}`. OBS passes no
/// custom variables on a PUT, so the client writes their values into the body itself
/// (URL-encoded in a form body, JSON strings in a JSON one); OBS fills its own `$(…)` ones.
pub(super) fn callback_headers(
    spec: &CallbackSpec,
    vars: &[(&str, String)],
) -> Vec<(String, String)> {
    let json = spec.body_type.starts_with("application/json");
    let mut body = spec.body.clone();
    let grant_vars = spec.vars.iter().map(|(n, v)| (n.as_str(), v.clone()));
    for (name, value) in grant_vars.chain(vars.iter().map(|(n, v)| (*n, v.clone()))) {
        let filled = if json {
            serde_json::Value::String(value).to_string()
        } else {
            ferry_sign::uri_encode(&value, false)
        };
        body = body.replace(&format!("${{{name}}}"), &filled);
    }
    let callback = serde_json::json!({
        "callbackUrl": spec.url,
        "callbackBody": body,
        "callbackBodyType": spec.body_type,
    });
    vec![(
        "x-obs-callback".to_owned(),
        STANDARD.encode(callback.to_string()),
    )]
}
