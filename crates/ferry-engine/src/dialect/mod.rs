//! Storage dialects: everything that differs between the object stores Ferry speaks — how a
//! request is addressed (path-style, virtual-hosted, the bucket's own domain) and signed, which
//! header carries the security token, how the store's errors read and which of them mean
//! "credentials refused", "clock off" or "no such upload", how ETags compare and which checksum
//! the store returns. [`Dialect::of`] picks one from the grant; `storage` keeps only what is
//! common (sign just before sending, retries, timeouts, throttling). A fourth dialect is one
//! more variant here and one more file beside `s3`, `oss` and `obs`.
//!
//! | dialect | signature | token header | URL style | integrity |
//! |---|---|---|---|---|
//! | `s3` (AWS, MinIO, JD Cloud, the embedded store) | SigV4 | `x-amz-security-token` | path or virtual-hosted | Content-MD5, ETag |
//! | `oss` (Alibaba) | OSS4-HMAC-SHA256, or V1 | `x-oss-security-token` | virtual-hosted or own domain | Content-MD5, ETag, CRC-64 |
//! | `obs` (Huawei) | OBS | `x-obs-security-token` | virtual-hosted or own domain | Content-MD5, ETag |
//!
//! Native upload callbacks: `oss` sends `x-oss-callback` and `x-oss-callback-var` (base64
//! JSON), `obs` sends `x-obs-callback` (base64 JSON, the custom variables filled in by the
//! client, as OBS has no callback-var for PUT), `s3` none.

pub mod case;
mod obs;
mod oss;
pub mod preset;
pub mod s3;

use ferry_protocol::{Addressing, CallbackSpec, Grant, Provider, SignatureVersion};
pub use ferry_sign::{
    RawUrl, SignError, SigningCredentials, UnsignedRequest, percent_decode, uri_encode,
};
use time::OffsetDateTime;

/// The dialect a grant's store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// AWS Signature Version 4.
    S3,
    /// Alibaba OSS with OSS4-HMAC-SHA256.
    OssV4,
    /// Alibaba OSS with the older `OSS AK:signature`.
    OssV1,
    /// Huawei OBS.
    Obs,
}

/// What a store's error code means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The credentials were refused (expired or unknown): a fresh grant may pass.
    Credentials,
    /// The request's time is too far from the store's: the clock offset is corrected.
    ClockSkew,
    /// The multipart upload is not (or no longer) known.
    NoSuchUpload,
    /// Anything else: transient or not by its status.
    Other,
}

impl Dialect {
    /// The dialect of `grant`.
    pub fn of(grant: &Grant) -> Self {
        match (grant.provider, grant.signature_version) {
            (Provider::S3, _) => Self::S3,
            (Provider::Oss, SignatureVersion::V1) => Self::OssV1,
            (Provider::Oss, SignatureVersion::V4) => Self::OssV4,
            (Provider::Obs, _) => Self::Obs,
        }
    }

    /// The URL of `key` (unencoded; the bucket itself when `None`) in `grant`'s bucket, with a
    /// raw query, as the grant's addressing puts it.
    pub fn url(self, grant: &Grant, key: Option<&str>, query: &str) -> Result<String, SignError> {
        let base = grant.endpoint.trim_end_matches('/');
        let path = key.map(|k| uri_encode(k, true)).unwrap_or_default();
        let mut url = match grant.addressing {
            Addressing::Path => match key {
                Some(_) => format!("{base}/{}/{path}", uri_encode(&grant.bucket, false)),
                None => format!("{base}/{}", uri_encode(&grant.bucket, false)),
            },
            Addressing::VirtualHosted => {
                let endpoint = RawUrl::parse(base)?;
                format!(
                    "{}://{}.{}/{path}",
                    endpoint.scheme, grant.bucket, endpoint.authority
                )
            }
            Addressing::Domain => format!("{base}/{path}"),
        };
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        Ok(url)
    }

    /// Signs `request` (to `key` in `grant`'s bucket) for sending now, in header mode: every
    /// header to send, `Authorization` and the token header included.
    pub fn sign(
        self,
        grant: &Grant,
        request: &UnsignedRequest,
        credentials: &SigningCredentials,
        key: Option<&str>,
        time: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, SignError> {
        match self {
            Self::S3 => {
                let scope = s3::Scope {
                    region: &grant.region,
                    service: "s3",
                    time,
                };
                Ok(s3::sign(request, credentials, &scope, s3::UNSIGNED_PAYLOAD)?.headers)
            }
            Self::OssV4 => oss::sign_v4(grant, request, credentials, key, time),
            Self::OssV1 => oss::sign_v1(grant, request, credentials, key, time),
            Self::Obs => obs::sign(grant, request, credentials, key, time),
        }
    }

    /// What the store's error `code` means.
    pub fn refusal(self, code: &str) -> Refusal {
        let credentials: &[&str] = match self {
            Self::S3 => &[
                "ExpiredToken",
                "InvalidToken",
                "InvalidAccessKeyId",
                "TokenRefreshRequired",
            ],
            Self::OssV4 | Self::OssV1 => oss::CREDENTIALS_REFUSED,
            Self::Obs => obs::CREDENTIALS_REFUSED,
        };
        match code {
            _ if credentials.contains(&code) => Refusal::Credentials,
            "RequestTimeTooSkewed" => Refusal::ClockSkew,
            "NoSuchUpload" => Refusal::NoSuchUpload,
            _ => Refusal::Other,
        }
    }

    /// The headers that ask the store to call the app server back once it has stored the
    /// object (PutObject, CompleteMultipartUpload), with the client's custom variables `vars`
    /// (`x:upload_id`, …); none for S3, which has no native callback.
    pub fn callback_headers(
        self,
        spec: &CallbackSpec,
        vars: &[(&str, String)],
    ) -> Vec<(String, String)> {
        match self {
            Self::S3 => Vec::new(),
            Self::OssV4 | Self::OssV1 => oss::callback_headers(spec, vars),
            Self::Obs => obs::callback_headers(spec, vars),
        }
    }

    /// The header that makes a write refuse to replace an object, if the dialect has one: S3's
    /// `If-None-Match: *` (AWS, MinIO, Ceph, the embedded store), OSS's
    /// `x-oss-forbid-overwrite`. OBS documents none.
    pub fn only_new_header(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::S3 => Some(("if-none-match", "*")),
            Self::OssV4 | Self::OssV1 => Some(("x-oss-forbid-overwrite", "true")),
            Self::Obs => None,
        }
    }

    /// Whether the store of `grant` may ignore [`Dialect::only_new_header`], so a write that
    /// must not replace an object looks first: OBS has no such header, and JD Cloud's S3 API
    /// does not document `If-None-Match` on writes.
    pub fn looks_before_writing(grant: &Grant) -> bool {
        let jd_cloud = reqwest::Url::parse(&grant.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.ends_with("jdcloud-oss.com")))
            .unwrap_or(false);
        Self::of(grant).only_new_header().is_none() || jd_cloud
    }

    /// The header in which the store answers a CRC-64 of what it stored, if it does.
    pub fn crc64_header(self) -> Option<&'static str> {
        match self {
            Self::OssV4 | Self::OssV1 => Some(oss::CRC64_HEADER),
            Self::S3 | Self::Obs => None,
        }
    }
}

/// Whether two ETags name the same bytes: quotes aside, and in any case (OSS answers upper
/// case hex, S3 lower case).
pub fn same_etag(a: &str, b: &str) -> bool {
    a.trim()
        .trim_matches('"')
        .eq_ignore_ascii_case(b.trim().trim_matches('"'))
}

/// The URL path of an object key in path-style addressing: every byte but unreserved ones and
/// `/` percent-encoded, so spaces, `+ % # ? ~ =` and non-ASCII keys reach the store as written.
pub fn key_path(bucket: &str, key: &str) -> String {
    format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true))
}

#[cfg(test)]
mod tests;
