//! The signing case of `docs/signing.md`: one request described in JSON, signed by one dialect, so
//! that any published vector or SDK output can be checked against the engine without Rust.
//! `examples/sign.rs` reads a case on stdin and prints [`CaseOutput`].

use ferry_sign::obs::{self, Flavor};
use ferry_sign::oss::{self, v1, v4};
use ferry_sign::{RawUrl, Resource, SignedRequest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use ferry_protocol::{Addressing, Grant, Provider, SignatureVersion};

use super::{Dialect, SignError, SigningCredentials, UnsignedRequest, s3};
use crate::secret::Secret;

/// Credentials of a case.
#[derive(Debug, Clone, Deserialize)]
pub struct CaseCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Security token, if any.
    #[serde(default)]
    pub security_token: Option<Secret>,
}

/// One request to sign.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// `s3`, `oss` or `obs`.
    pub dialect: String,
    /// oss: `v4` (default) or `v1`; obs: `obs` (default) or `v2` (the S3 V2 scheme the OBS SDKs
    /// use in CNAME and path-style mode).
    #[serde(default)]
    pub signature_version: Option<String>,
    /// HTTP method.
    pub method: String,
    /// URL as sent on the wire.
    pub url: String,
    /// Headers in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD` (s3; oss V4 sends it as
    /// `x-oss-content-sha256`).
    #[serde(default)]
    pub payload_sha256: Option<String>,
    /// Signing region.
    #[serde(default)]
    pub region: Option<String>,
    /// Signing service (s3: default `s3`; oss: default `oss`, `oss-cloudbox` for CloudBox).
    #[serde(default)]
    pub service: Option<String>,
    /// Signing time, `YYYYMMDDTHHMMSSZ`.
    pub time: String,
    /// Who signs.
    pub credentials: CaseCredentials,
    /// Produce a presigned URL valid this many seconds instead of a header.
    #[serde(default)]
    pub presign_expires: Option<u64>,
    /// Bucket (oss / obs canonical resource). For obs, a key without a bucket is CNAME mode:
    /// the URL's host name stands for the bucket, as the OBS SDKs sign it.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Object key, unencoded (oss / obs).
    #[serde(default)]
    pub key: Option<String>,
    /// OSS V4 `AdditionalHeaders`.
    #[serde(default)]
    pub additional_headers: Vec<String>,
}

/// What signing a case produced.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutput {
    /// Canonical request (s3 / oss V4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical_request: Option<String>,
    /// The string that was signed.
    pub string_to_sign: String,
    /// The signature.
    pub signature: String,
    /// `Authorization` header (header mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// Presigned URL (presign mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Every header to send, in order.
    pub headers: Vec<(String, String)>,
    /// Whether the case is a request the upload path makes, and was also signed through it
    /// (with the same headers as a result).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upload_path: bool,
}

/// Why a case could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    /// The JSON does not describe a case.
    #[error("malformed case: {0}")]
    Json(#[from] serde_json::Error),
    /// A field has a value the dialect cannot use.
    #[error("{0}")]
    Sign(#[from] SignError),
    /// The dialect is not one the engine has.
    #[error("unsupported dialect {0:?} (this build signs: s3, oss, obs)")]
    Dialect(String),
    /// The signature version is not one the dialect has.
    #[error("unsupported signature_version {0:?} for this dialect (oss: v4, v1; obs: obs, v2)")]
    Version(String),
    /// A required field is missing for this dialect.
    #[error("missing field {0:?} for this dialect")]
    Missing(&'static str),
    /// The engine's upload path ([`Dialect::sign`]) sent other headers than the signer did.
    #[error("the upload path signs differently: {0}")]
    Diverged(String),
}

/// Signs a case.
pub fn sign_case(case: &Case) -> Result<CaseOutput, CaseError> {
    let time = s3::parse_amz_date(&case.time)?;
    let request = UnsignedRequest {
        method: case.method.clone(),
        url: case.url.clone(),
        headers: case.headers.clone(),
    };
    let credentials = SigningCredentials {
        access_key_id: case.credentials.access_key_id.clone(),
        secret_access_key: case.credentials.secret_access_key.clone(),
        security_token: case.credentials.security_token.clone(),
    };
    let mut signed = match case.dialect.as_str() {
        "s3" => sign_s3(case, &request, &credentials, time)?,
        "oss" => output(case, sign_oss(case, request.clone(), &credentials, time)?),
        "obs" => output(case, sign_obs(case, &request, &credentials, time)?),
        other => return Err(CaseError::Dialect(other.to_owned())),
    };
    if let Some((dialect, grant)) = as_uploaded(case, &request)? {
        let key = case.key.as_deref();
        let sent = dialect.sign(&grant, &request, &credentials, key, time)?;
        if sent != signed.headers {
            return Err(CaseError::Diverged(format!(
                "{sent:?} against {:?}",
                signed.headers
            )));
        }
        signed.upload_path = true;
    }
    Ok(signed)
}

/// The dialect and grant under which the engine's upload path would send this case, when it is
/// a request that path makes (header mode; no payload hash, additional headers or S3 V2
/// flavor, which the uploader never uses): every such case is also signed through
/// [`Dialect::sign`] and must come out the same, so the oracles judge what uploads send.
fn as_uploaded(
    case: &Case,
    request: &UnsignedRequest,
) -> Result<Option<(Dialect, Grant)>, CaseError> {
    let unsigned_payload = case
        .payload_sha256
        .as_deref()
        .is_none_or(|p| p == s3::UNSIGNED_PAYLOAD);
    if case.presign_expires.is_some() || !case.additional_headers.is_empty() || !unsigned_payload {
        return Ok(None);
    }
    let url = RawUrl::parse(&request.url)?;
    let (provider, version, addressing) = match (
        case.dialect.as_str(),
        case.signature_version.as_deref(),
        &case.bucket,
    ) {
        ("s3", _, _) if case.payload_sha256.is_some() => {
            (Provider::S3, SignatureVersion::V4, Addressing::Path)
        }
        ("oss", None | Some("v4"), Some(_))
            if case.service.as_deref().is_none_or(|s| s == "oss") =>
        {
            (
                Provider::Oss,
                SignatureVersion::V4,
                Addressing::VirtualHosted,
            )
        }
        ("oss", Some("v1"), Some(_)) => (
            Provider::Oss,
            SignatureVersion::V1,
            Addressing::VirtualHosted,
        ),
        ("obs", None | Some("obs"), None) => {
            (Provider::Obs, SignatureVersion::V4, Addressing::Domain)
        }
        ("obs", None | Some("obs"), Some(_)) => (
            Provider::Obs,
            SignatureVersion::V4,
            Addressing::VirtualHosted,
        ),
        _ => return Ok(None),
    };
    let grant = Grant {
        provider,
        endpoint: format!("{}://{}", url.scheme, url.authority),
        addressing,
        signature_version: version,
        region: case.region.clone().unwrap_or_default(),
        bucket: case.bucket.clone().unwrap_or_default(),
        prefix: String::new(),
        access_key_id: case.credentials.access_key_id.clone(),
        secret_access_key: case.credentials.secret_access_key.expose().to_owned(),
        security_token: case
            .credentials
            .security_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default(),
        expires_at: OffsetDateTime::UNIX_EPOCH,
        policy: serde_json::Value::Null,
        callback: None,
    };
    Ok(Some((Dialect::of(&grant), grant)))
}

fn sign_s3(
    case: &Case,
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
) -> Result<CaseOutput, CaseError> {
    let region = case.region.as_deref().ok_or(CaseError::Missing("region"))?;
    let scope = s3::Scope {
        region,
        service: case.service.as_deref().unwrap_or("s3"),
        time,
    };
    let signed = match case.presign_expires {
        Some(expires) => {
            let payload = case
                .payload_sha256
                .as_deref()
                .unwrap_or(s3::UNSIGNED_PAYLOAD);
            s3::presign(request, credentials, &scope, payload, expires)?
        }
        None => {
            let payload = case.payload_sha256.as_deref().unwrap_or(s3::EMPTY_SHA256);
            s3::sign(request, credentials, &scope, payload)?
        }
    };
    Ok(CaseOutput {
        canonical_request: Some(signed.canonical_request),
        string_to_sign: signed.string_to_sign,
        signature: signed.signature,
        url: case.presign_expires.map(|_| signed.url),
        authorization: signed.authorization,
        headers: signed.headers,
        upload_path: false,
    })
}

fn output(case: &Case, signed: SignedRequest) -> CaseOutput {
    CaseOutput {
        canonical_request: signed.canonical_request,
        string_to_sign: signed.string_to_sign,
        signature: signed.signature,
        url: case.presign_expires.map(|_| signed.url),
        authorization: signed.authorization,
        headers: signed.headers,
        upload_path: false,
    }
}

fn sign_oss(
    case: &Case,
    mut request: UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
) -> Result<SignedRequest, CaseError> {
    let resource = Resource {
        bucket: case.bucket.as_deref(),
        key: case.key.as_deref(),
    };
    match case.signature_version.as_deref().unwrap_or("v4") {
        "v4" => {
            let scope = v4::Scope {
                region: case.region.as_deref().ok_or(CaseError::Missing("region"))?,
                product: case.service.as_deref().unwrap_or(oss::PRODUCT),
                time,
            };
            let additional = case.additional_headers.as_slice();
            Ok(match case.presign_expires {
                Some(expires) => v4::presign(
                    &request,
                    credentials,
                    &scope,
                    &resource,
                    additional,
                    expires,
                )?,
                None => {
                    let has_hash =
                        ferry_sign::header(&request.headers, oss::CONTENT_SHA256_HEADER).is_some();
                    if let (Some(payload), false) = (&case.payload_sha256, has_hash) {
                        let name = oss::CONTENT_SHA256_HEADER.to_owned();
                        request.headers.push((name, payload.clone()));
                    }
                    v4::sign(&request, credentials, &scope, &resource, additional)?
                }
            })
        }
        "v1" => Ok(match case.presign_expires {
            Some(expires) => v1::presign(&request, credentials, time, &resource, expires)?,
            None => v1::sign(&request, credentials, time, &resource)?,
        }),
        other => Err(CaseError::Version(other.to_owned())),
    }
}

fn sign_obs(
    case: &Case,
    request: &UnsignedRequest,
    credentials: &SigningCredentials,
    time: OffsetDateTime,
) -> Result<SignedRequest, CaseError> {
    let flavor = match case.signature_version.as_deref().unwrap_or("obs") {
        "obs" => Flavor::Obs,
        "v2" => Flavor::AwsV2,
        other => return Err(CaseError::Version(other.to_owned())),
    };
    let url = RawUrl::parse(&request.url)?;
    // CNAME mode: the OBS SDKs sign the bucket's own domain where the bucket would be.
    let bucket = match (&case.bucket, &case.key) {
        (Some(bucket), _) => Some(bucket.as_str()),
        (None, Some(_)) => Some(url.hostname()),
        (None, None) => None,
    };
    let resource = Resource {
        bucket,
        key: case.key.as_deref(),
    };
    Ok(match case.presign_expires {
        Some(expires) => obs::presign(request, credentials, time, flavor, &resource, expires)?,
        None => obs::sign(request, credentials, time, flavor, &resource)?,
    })
}

/// Parses a case from JSON and signs it.
pub fn sign_json(json: &str) -> Result<CaseOutput, CaseError> {
    sign_case(&serde_json::from_str(json)?)
}
