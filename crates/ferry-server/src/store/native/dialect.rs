//! Everything that differs between the OSS and the OBS front, in one place: names of headers
//! and query parameters, the ETag's case, the XML namespace, the request-id headers, and the
//! codes the credential refusals are answered with.

use ferry_protocol::Provider;

use super::signature::AuthError;
use crate::store::core::StoreError;

/// A vendor dialect served by the native front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Alibaba Cloud OSS.
    Oss,
    /// Huawei Cloud OBS.
    Obs,
}

/// A refusal as a dialect names it: status, code, and OSS's `EC` detail code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Named {
    pub(crate) status: http::StatusCode,
    pub(crate) code: &'static str,
    pub(crate) ec: Option<&'static str>,
}

const fn named(status: u16, code: &'static str, ec: Option<&'static str>) -> Named {
    let status = match http::StatusCode::from_u16(status) {
        Ok(status) => status,
        Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
    };
    Named { status, code, ec }
}

impl Dialect {
    /// The header that makes a write refuse to replace an object (OBS documents none).
    pub(crate) fn forbid_overwrite_header(self) -> Option<&'static str> {
        match self {
            Self::Oss => Some("x-oss-forbid-overwrite"),
            Self::Obs => None,
        }
    }

    /// A store refusal as the dialect names it: OSS answers a write it may not make because
    /// the object exists `409 FileAlreadyExists`; the rest are S3's codes in both.
    pub(crate) fn store_refusal(self, err: &StoreError) -> Named {
        match (self, err) {
            (Self::Oss, StoreError::AlreadyExists) => named(409, "FileAlreadyExists", None),
            _ => Named {
                status: err.status(),
                code: err.code(),
                ec: None,
            },
        }
    }

    /// The grants this front accepts are minted for this provider.
    pub(crate) fn provider(self) -> Provider {
        match self {
            Self::Oss => Provider::Oss,
            Self::Obs => Provider::Obs,
        }
    }

    /// The header naming the object a PUT would copy (CopyObject is not an upload).
    pub(crate) fn copy_source_header(self) -> &'static str {
        match self {
            Self::Oss => "x-oss-copy-source",
            Self::Obs => "x-obs-copy-source",
        }
    }

    /// The header carrying the request id.
    pub(crate) fn request_id_header(self) -> &'static str {
        match self {
            Self::Oss => "x-oss-request-id",
            Self::Obs => "x-obs-request-id",
        }
    }

    /// The `Server` header the vendor's service sends.
    pub(crate) fn server(self) -> &'static str {
        match self {
            Self::Oss => "AliyunOSS",
            Self::Obs => "OBS",
        }
    }

    /// The namespace of the dialect's XML documents, if it has one.
    pub(crate) fn xmlns(self) -> Option<&'static str> {
        match self {
            Self::Oss => None,
            Self::Obs => Some("http://obs.myhwclouds.com/doc/2015-06-30/"),
        }
    }

    /// The quoted ETag of a stored lowercase one: OSS writes its hex in upper case.
    pub(crate) fn etag(self, stored: &str) -> String {
        match self {
            Self::Oss => format!("\"{}\"", stored.to_ascii_uppercase()),
            Self::Obs => format!("\"{stored}\""),
        }
    }

    /// Whether responses carry the CRC-64 of the bytes stored (`x-oss-hash-crc64ecma`).
    pub(crate) fn crc64_header(self) -> Option<&'static str> {
        match self {
            Self::Oss => Some("x-oss-hash-crc64ecma"),
            Self::Obs => None,
        }
    }

    /// How the dialect answers a refused credential or signature.
    pub(crate) fn auth_refusal(self, err: &AuthError) -> Named {
        match (self, err) {
            (_, AuthError::Malformed(_)) => named(400, "InvalidArgument", None),
            (_, AuthError::Unsupported(_)) => named(400, "InvalidRequest", None),
            (Self::Oss, AuthError::UnknownKey) => {
                named(403, "InvalidAccessKeyId", Some("0002-00000002"))
            }
            (Self::Oss, AuthError::Expired) => {
                named(403, "SecurityTokenExpired", Some("0002-00000007"))
            }
            (Self::Oss, AuthError::MissingToken) => {
                named(403, "InvalidAccessKeyId", Some("0002-00000002"))
            }
            (Self::Oss, AuthError::WrongToken) => {
                named(403, "InvalidAccessKeyId", Some("0002-00000008"))
            }
            (Self::Obs, AuthError::UnknownKey) => named(403, "InvalidAccessKeyId", None),
            (Self::Obs, AuthError::Expired) => named(400, "ExpiredToken", None),
            (Self::Obs, AuthError::MissingToken) => named(403, "AccessDenied", None),
            (Self::Obs, AuthError::WrongToken) => named(400, "InvalidToken", None),
            (_, AuthError::SignatureMismatch) => named(403, "SignatureDoesNotMatch", None),
            (_, AuthError::Skewed) => named(403, "RequestTimeTooSkewed", None),
            (_, AuthError::UrlExpired) => named(403, "AccessDenied", None),
            (_, AuthError::Internal) => named(500, "InternalError", None),
        }
    }
}
