//! The `obs` dialect (Huawei Cloud OBS): the OBS signature (from [`ferry_sign::obs`]),
//! `x-obs-security-token`, OBS's error codes. With the bucket's own domain as endpoint, OBS
//! signs `/<domain>/<key>` (the host name without its port), as its SDKs do.

use ferry_protocol::{Addressing, Grant};
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
