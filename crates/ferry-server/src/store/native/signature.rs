//! The OSS and OBS fronts' signature checks: who claims to sign a request (and when, and with
//! which token), and whether the signature is right. The canonical strings and signatures are
//! computed by `ferry_sign`, the same functions the uploader signs with; this module only picks
//! the scheme a request uses and feeds them the request as received.
//!
//! Schemes: OSS `OSS4-HMAC-SHA256` (header, or presigned `x-oss-signature`) and `OSS ak:sig`
//! (header, or presigned `OSSAccessKeyId`); OBS `OBS ak:sig` (header, or presigned
//! `AccessKeyId`) and, for OBS grants only, the S3 V2 flavor OBS also accepts (`AWS ak:sig`,
//! presigned `AWSAccessKeyId`), which the OBS SDKs use in CNAME and path-style mode.

use ferry_protocol::SignatureVersion;
use ferry_sign::obs::{self, Flavor};
use ferry_sign::oss::{self, CONTENT_SHA256_HEADER as CONTENT_SHA256, v1, v4};
use ferry_sign::sigv4::UNSIGNED_PAYLOAD;
use ferry_sign::{Resource, SignError};
use time::OffsetDateTime;

use super::dialect::Dialect;
use super::request::Received;

/// Why a request's credentials or signature are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the access key is not known")]
    UnknownKey,
    #[error("the security token has expired")]
    Expired,
    #[error("a security token is required")]
    MissingToken,
    #[error("the security token is not valid")]
    WrongToken,
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureMismatch,
    #[error("the difference between the request time and the server's time is too large")]
    Skewed,
    #[error("the presigned URL has expired")]
    UrlExpired,
    #[error("the store could not check the credentials")]
    Internal,
}

impl From<SignError> for AuthError {
    fn from(err: SignError) -> Self {
        Self::Malformed(err.to_string())
    }
}

/// The signature scheme of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    OssV4Header(v4::Authorization),
    OssV4Query(v4::Presigned),
    OssV1Header {
        signature: String,
    },
    OssV1Query(v1::Presigned),
    ObsHeader {
        flavor: Flavor,
        signature: String,
    },
    ObsQuery {
        flavor: Flavor,
        presigned: v1::Presigned,
    },
}

/// What a request says of its signer, before the signature is checked.
#[derive(Clone)]
pub(crate) struct Claim {
    pub(crate) access_key: String,
    /// When it was signed (header forms, OSS V4 presigned URLs); `None` when a header form
    /// carries no readable date.
    pub(crate) signed_at: Option<OffsetDateTime>,
    /// When a presigned URL stops being valid.
    pub(crate) expires_at: Option<OffsetDateTime>,
    /// The security token, from the header or the presigned URL's query.
    pub(crate) token: Option<String>,
    /// OBS: the S3 V2 flavor (`AWS ak:sig`), accepted for OBS grants only.
    pub(crate) aws_v2: bool,
    scheme: Scheme,
}

fn unix(secs: i64) -> Result<OffsetDateTime, AuthError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| AuthError::Malformed(format!("Expires {secs} is not a time")))
}

/// The signing time of a header-signed HMAC-SHA1 request: `date_header`, else `Date` (`None`
/// when neither is a date; the time check refuses it once the key is known).
fn http_date(received: &Received, date_header: &str) -> Option<OffsetDateTime> {
    let value = received
        .header(date_header)
        .or_else(|| received.header("date"))?;
    ferry_sign::parse_http_date(value).ok()
}

fn authorization(received: &Received) -> Option<&str> {
    received.header("authorization")
}

fn oss_claim(received: &Received) -> Result<Claim, AuthError> {
    let header_token = received.header(oss::TOKEN_HEADER).map(str::to_owned);
    if let Some(value) = authorization(received) {
        if value.starts_with(v4::ALGORITHM) {
            // The store does not hash bodies: a request that signs a payload hash would have
            // its body stored unchecked, so only the unsigned payload OSS documents is taken.
            if let Some(hash) = received.header(CONTENT_SHA256)
                && hash != UNSIGNED_PAYLOAD
            {
                return Err(AuthError::Unsupported(format!(
                    "{CONTENT_SHA256} must be {UNSIGNED_PAYLOAD}"
                )));
            }
            let parsed = v4::parse_authorization(value)?;
            let date = received.header(oss::DATE_HEADER).unwrap_or_default();
            return Ok(Claim {
                access_key: parsed.access_key_id.clone(),
                signed_at: ferry_sign::sigv4::parse_amz_date(date).ok(),
                expires_at: None,
                token: header_token,
                aws_v2: false,
                scheme: Scheme::OssV4Header(parsed),
            });
        }
        let (access_key, signature) = v1::parse_authorization(value)?;
        return Ok(Claim {
            access_key,
            signed_at: http_date(received, oss::DATE_HEADER),
            expires_at: None,
            token: header_token,
            aws_v2: false,
            scheme: Scheme::OssV1Header { signature },
        });
    }
    if received.param("x-oss-signature").is_some() {
        let presigned = v4::parse_presigned(&received.query)?;
        let expires = i64::try_from(presigned.expires_secs)
            .ok()
            .filter(|secs| (1..=v4::MAX_PRESIGN_SECS as i64).contains(secs))
            .ok_or_else(|| AuthError::Malformed("x-oss-expires is out of range".into()))?;
        return Ok(Claim {
            access_key: presigned.authorization.access_key_id.clone(),
            signed_at: Some(presigned.time),
            expires_at: Some(presigned.time + time::Duration::seconds(expires)),
            token: presigned.security_token.clone().or(header_token),
            aws_v2: false,
            scheme: Scheme::OssV4Query(presigned),
        });
    }
    let presigned = v1::parse_presigned(&received.query)?;
    Ok(Claim {
        access_key: presigned.access_key_id.clone(),
        signed_at: None,
        expires_at: Some(unix(presigned.expires)?),
        token: received
            .param(v1::TOKEN_QUERY)
            .map(str::to_owned)
            .or(header_token),
        aws_v2: false,
        scheme: Scheme::OssV1Query(presigned),
    })
}

fn obs_claim(received: &Received) -> Result<Claim, AuthError> {
    if let Some(value) = authorization(received) {
        let (flavor, access_key, signature) = obs::parse_authorization(value)?;
        return Ok(Claim {
            access_key,
            signed_at: http_date(received, flavor.date_header()),
            expires_at: None,
            token: received.header(flavor.token_header()).map(str::to_owned),
            aws_v2: flavor == Flavor::AwsV2,
            scheme: Scheme::ObsHeader { flavor, signature },
        });
    }
    let flavor = match received.param(Flavor::AwsV2.access_key_param()) {
        Some(_) => Flavor::AwsV2,
        None => Flavor::Obs,
    };
    let presigned = obs::parse_presigned(flavor, &received.query)?;
    let token = received
        .param(flavor.token_header())
        .or_else(|| received.header(flavor.token_header()))
        .map(str::to_owned);
    Ok(Claim {
        access_key: presigned.access_key_id.clone(),
        signed_at: None,
        expires_at: Some(unix(presigned.expires)?),
        token,
        aws_v2: flavor == Flavor::AwsV2,
        scheme: Scheme::ObsQuery { flavor, presigned },
    })
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("access_key", &self.access_key)
            .field("signed_at", &self.signed_at)
            .field("expires_at", &self.expires_at)
            .field("token", &self.token.as_ref().map(|_| "******"))
            .field("signature_version", &self.signature_version())
            .finish_non_exhaustive()
    }
}

impl Claim {
    /// Which of its dialect's signatures the request carries (OSS V1, else V4: OSS4 and OBS).
    pub(crate) fn signature_version(&self) -> SignatureVersion {
        match self.scheme {
            Scheme::OssV1Header { .. } | Scheme::OssV1Query(_) => SignatureVersion::V1,
            _ => SignatureVersion::V4,
        }
    }

    /// An OSS V4 signature's scope: region and product.
    pub(crate) fn v4_scope(&self) -> Option<(&str, &str)> {
        match &self.scheme {
            Scheme::OssV4Header(auth)
            | Scheme::OssV4Query(v4::Presigned {
                authorization: auth,
                ..
            }) => Some((&auth.region, &auth.product)),
            _ => None,
        }
    }
}

/// The claim of a request signed in `dialect`'s header or presigned form.
pub(crate) fn claim(dialect: Dialect, received: &Received) -> Result<Claim, AuthError> {
    match dialect {
        Dialect::Oss => oss_claim(received),
        Dialect::Obs => obs_claim(received),
    }
}

/// The signature `claim` should carry, computed with `secret`, and the one it carries.
fn signatures(
    claim: &Claim,
    received: &Received,
    resource: &Resource<'_>,
    secret: &str,
) -> Result<(String, String), AuthError> {
    let method = received.method.as_str();
    let query = &received.query;
    let headers = &received.headers;
    Ok(match &claim.scheme {
        Scheme::OssV4Header(auth)
        | Scheme::OssV4Query(v4::Presigned {
            authorization: auth,
            ..
        }) => {
            let time = claim
                .signed_at
                .ok_or_else(|| AuthError::Malformed("no signing time".into()))?;
            if ferry_sign::sigv4::amz_date(time)[..8] != auth.date {
                return Err(AuthError::Malformed(
                    "the credential's date is not the signing date".into(),
                ));
            }
            let scope = v4::Scope {
                region: &auth.region,
                product: &auth.product,
                time,
            };
            let additional = v4::additional_headers(&auth.additional_headers);
            let canonical = v4::canonical_request(method, resource, query, headers, &additional)?;
            let expected = v4::signature(secret, &scope, &v4::string_to_sign(&scope, &canonical));
            (expected, auth.signature.clone())
        }
        Scheme::OssV1Header { signature } => {
            let date = v1::date_line(headers).unwrap_or("");
            let canonical = v1::canonical_resource(resource, query)?;
            let to_sign = v1::string_to_sign(method, headers, date, &canonical);
            (v1::signature(secret, &to_sign), signature.clone())
        }
        Scheme::OssV1Query(presigned) => {
            let canonical = v1::canonical_resource(resource, query)?;
            let expires = received.param("Expires").unwrap_or_default();
            let to_sign = v1::string_to_sign(method, headers, expires, &canonical);
            (v1::signature(secret, &to_sign), presigned.signature.clone())
        }
        Scheme::ObsHeader { flavor, signature } => {
            let canonical = obs::canonical_resource(*flavor, resource, query)?;
            let date = obs::date_line(*flavor, headers);
            let to_sign = obs::string_to_sign(*flavor, method, headers, date, &canonical);
            (obs::signature(secret, &to_sign), signature.clone())
        }
        Scheme::ObsQuery { flavor, presigned } => {
            let canonical = obs::canonical_resource(*flavor, resource, query)?;
            let expires = received.param("Expires").unwrap_or_default();
            let to_sign = obs::string_to_sign(*flavor, method, headers, expires, &canonical);
            (
                obs::signature(secret, &to_sign),
                presigned.signature.clone(),
            )
        }
    })
}

/// Checks the signature of `received` against `secret`. `resource_bucket` is what the
/// dialect's canonical resource names as the bucket (OBS in CNAME mode: the domain).
pub(crate) fn verify(
    claim: &Claim,
    received: &Received,
    resource_bucket: &str,
    secret: &str,
) -> Result<(), AuthError> {
    let resource = Resource {
        bucket: Some(resource_bucket),
        key: received.key.as_deref(),
    };
    let (expected, given) = signatures(claim, received, &resource, secret)?;
    if ferry_sign::signatures_match(&expected, &given) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}
