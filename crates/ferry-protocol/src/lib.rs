//! The JSON types on the wire between the Ferry client and the Ferry app server (`/api/v1`).
//!
//! Request bodies reject unknown fields so that a typo is an error, not a silently ignored
//! option; response bodies accept unknown fields so that an older client keeps working against a
//! newer server. Types that carry a secret redact it in `Debug`.

#![warn(missing_docs)]

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version prefix of every API path.
pub const API_PREFIX: &str = "/api/v1";

/// Stable error codes in [`ErrorBody::code`]. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Username or password wrong, or the account is disabled.
    InvalidCredentials,
    /// No bearer token was sent, or it is not known.
    Unauthenticated,
    /// The session token has expired: sign in again.
    SessionExpired,
    /// Signed in, but not allowed (an admin-only endpoint, another user's object).
    Forbidden,
    /// Too many failed sign-ins for this user or address; try again later.
    RateLimited,
    /// The request body or query is malformed, has unknown fields or bad values.
    InvalidRequest,
    /// An object key that is empty, too long, not UTF-8, or has `.`/`..` segments.
    InvalidKey,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The path does not exist.
    NotFound,
    /// The confirmed object is not in the store.
    ObjectMissing,
    /// The object in the store has another size or ETag than the confirmation says.
    ObjectMismatch,
    /// The same `upload_id` was confirmed before with different contents.
    Conflict,
    /// The server failed; the message says what it was doing.
    Internal,
    /// The cloud's credential service (STS, IAM) refused to vend credentials; the message
    /// carries the cloud's own error code.
    BrokerRefused,
    /// The cloud's credential service could not be reached, kept failing or answered something
    /// unreadable; trying again later may work.
    BrokerUnavailable,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status the app server answers with this code (one table for both ends: a
    /// refusal inside a batch means what the same refusal alone would).
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidCredentials | Self::Unauthenticated | Self::SessionExpired => 401,
            Self::Forbidden => 403,
            Self::RateLimited => 429,
            Self::InvalidRequest | Self::InvalidKey => 400,
            Self::PayloadTooLarge => 413,
            Self::NotFound | Self::ObjectMissing => 404,
            Self::ObjectMismatch => 422,
            Self::Conflict => 409,
            Self::BrokerRefused => 502,
            Self::BrokerUnavailable => 503,
            Self::Internal | Self::Unknown => 500,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unauthenticated => "unauthenticated",
            Self::SessionExpired => "session_expired",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidKey => "invalid_key",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::ObjectMissing => "object_missing",
            Self::ObjectMismatch => "object_mismatch",
            Self::Conflict => "conflict",
            Self::Internal => "internal",
            Self::BrokerRefused => "broker_refused",
            Self::BrokerUnavailable => "broker_unavailable",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable code.
    pub code: ErrorCode,
    /// A sentence for people; may change between versions.
    pub message: String,
}

/// `POST /api/v1/sessions`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Account name.
    pub username: String,
    /// Password in clear (the transport is HTTPS outside loopback).
    pub password: String,
    /// A name for the device, shown in history.
    #[serde(default)]
    pub device: Option<String>,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("username", &self.username)
            .field("password", &"******")
            .field("device", &self.device)
            .finish()
    }
}

/// Role of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Role {
    /// Uploads under their own prefix and sees their own history.
    User,
    /// Also sees everyone's history, the CSV export and statistics.
    Admin,
}

impl Role {
    /// The role as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// The signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    /// Stable numeric id; part of the user's storage prefix.
    pub id: i64,
    /// Account name.
    pub name: String,
    /// What the account may do.
    pub role: Role,
}

/// Answer to a successful sign-in.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// Bearer token for every further request.
    pub token: String,
    /// When the token stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who signed in.
    pub user: User,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &"******")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish()
    }
}

/// `POST /api/v1/grants`; `{}` asks for the default upload grant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// A shorter lifetime than the server's default, in seconds (never longer).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// The dialect asked for, where the server offers several (Ferry's embedded store speaks
    /// `s3`, `oss` and `obs`); the server's choice when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// For `oss`: which signature (`v4`, or `v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_version: Option<SignatureVersion>,
}

/// Storage dialect a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// AWS SigV4 (AWS, MinIO, JD Cloud, Ceph, the embedded store).
    S3,
    /// Alibaba OSS.
    Oss,
    /// Huawei OBS.
    Obs,
}

/// How a grant's bucket appears in request URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressing {
    /// `https://endpoint/bucket/key` (AWS, MinIO, the embedded store's S3 front).
    #[default]
    Path,
    /// `https://bucket.endpoint-host/key` (AWS, OSS, OBS, JD Cloud).
    VirtualHosted,
    /// The endpoint is the bucket's own domain: `https://endpoint/key` (a CNAME, or the embedded
    /// store's OSS and OBS fronts).
    Domain,
}

/// Which signature a dialect with several uses (OSS: V4 by default, V1 where deployments still
/// need it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureVersion {
    /// The dialect's current signature (SigV4, OSS4-HMAC-SHA256, OBS's).
    #[default]
    V4,
    /// OSS's older `OSS AK:signature` (HMAC-SHA1).
    V1,
}

impl std::str::FromStr for Provider {
    type Err = String;

    /// `s3`, `oss` or `obs`, as in JSON.
    fn from_str(value: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(value.into()))
            .map_err(|_| format!("{value:?} is not s3, oss or obs"))
    }
}

impl std::str::FromStr for SignatureVersion {
    type Err = String;

    /// `v4` or `v1`, as in JSON.
    fn from_str(value: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(value.into()))
            .map_err(|_| format!("{value:?} is not v4 or v1"))
    }
}

/// Temporary storage credentials, limited to writes under `prefix`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    /// Which signing dialect the endpoint speaks.
    pub provider: Provider,
    /// Base URL of the object store (see `addressing`).
    pub endpoint: String,
    /// How the bucket appears in URLs; path-style when absent.
    #[serde(default)]
    pub addressing: Addressing,
    /// Which signature to use, for dialects that have several; the dialect's current one when
    /// absent.
    #[serde(default)]
    pub signature_version: SignatureVersion,
    /// Signing region.
    pub region: String,
    /// Bucket to upload into.
    pub bucket: String,
    /// Every key must start with this; ends with `/`.
    pub prefix: String,
    /// Temporary access key id.
    pub access_key_id: String,
    /// Temporary secret; never logged.
    pub secret_access_key: String,
    /// Session token sent with every request; never logged.
    pub security_token: String,
    /// When the credentials stop working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// IAM-style policy saying exactly what is allowed.
    pub policy: serde_json::Value,
    /// Provider-native callback settings, when the provider has them.
    #[serde(default)]
    pub callback: Option<serde_json::Value>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("addressing", &self.addressing)
            .field("signature_version", &self.signature_version)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"******")
            .field("security_token", &"******")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A provider-native upload callback, as a grant's `callback` carries it: where the store posts
/// when an object is stored, the body template it fills, and the custom variables the client
/// passes along. The template's variables are the store's own (OSS `${object}`, OBS `$(key)`)
/// and custom ones named `x:…` (`${x:upload_id}`, `${x:name}`, `${x:device}`), which the client
/// fills for each file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSpec {
    /// The app server's callback endpoint, as the store reaches it.
    pub url: String,
    /// The body template.
    pub body: String,
    /// `application/x-www-form-urlencoded` or `application/json`.
    pub body_type: String,
    /// Custom variables the app server wants sent back as they are (`x:grant`).
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

impl CallbackSpec {
    /// The spec a grant carries, if it carries one this client understands.
    pub fn of(grant: &Grant) -> Option<Self> {
        grant
            .callback
            .as_ref()
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}

/// `POST /api/v1/uploads`: the client says an object is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The client's id for this upload; confirmations are idempotent on it.
    pub upload_id: String,
    /// Bucket of the object.
    pub bucket: String,
    /// Full object key.
    pub key: String,
    /// Object size in bytes.
    pub size: u64,
    /// ETag the store returned, without quotes.
    pub etag: String,
    /// The client's own checksum of the file (e.g. `sha256:…`).
    #[serde(default)]
    pub checksum: Option<String>,
    /// The file's name on the client.
    pub name: String,
    /// The device that uploaded it.
    #[serde(default)]
    pub device: Option<String>,
}

/// The most confirmations one `POST /api/v1/uploads/batch` may carry.
pub const MAX_BATCH: usize = 500;

/// `POST /api/v1/uploads/batch`: several confirmations in one request (at most
/// [`MAX_BATCH`]), each checked as `POST /uploads` checks one, recorded in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationBatch {
    /// The confirmations.
    pub uploads: Vec<Confirmation>,
}

/// The answer to a [`ConfirmationBatch`]: one outcome per confirmation, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Outcomes, in the order of the confirmations.
    pub results: Vec<ConfirmOutcome>,
}

/// What became of one confirmation of a batch: its history row, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmOutcome {
    /// Recorded (or recorded before: confirmations are idempotent).
    Recorded(Box<UploadRecord>),
    /// Refused, as `POST /uploads` would have refused it.
    Refused(ErrorBody),
}

/// Who vouched for a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ConfirmedBy {
    /// The client's confirmation, checked against the store.
    Client,
    /// The embedded store, when it committed the object.
    Store,
    /// A provider-native callback (OSS, OBS).
    Provider,
}

/// State of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum UploadStatus {
    /// The store holds the object; the client has not confirmed it (yet).
    Stored,
    /// The client confirmed it and the server checked it.
    Confirmed,
}

impl UploadStatus {
    /// The status as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Confirmed => "confirmed",
        }
    }
}

/// One row of upload history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UploadRecord {
    /// Row id; also the pagination cursor.
    pub id: i64,
    /// Account that uploaded.
    pub user: String,
    /// Bucket of the object.
    pub bucket: String,
    /// Full object key.
    pub key: String,
    /// File name on the client (the key's last segment until confirmed).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, without quotes.
    pub etag: String,
    /// Client checksum, when confirmed.
    pub checksum: Option<String>,
    /// Device, when confirmed.
    pub device: Option<String>,
    /// The client's upload id, when confirmed.
    pub upload_id: Option<String>,
    /// When the upload began (multipart initiation or the single PUT).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub started_at: OffsetDateTime,
    /// When the store committed the object.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub completed_at: OffsetDateTime,
    /// Stored or confirmed.
    pub status: UploadStatus,
    /// Who vouched for this row last.
    pub confirmed_by: ConfirmedBy,
}

/// A page of history, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UploadPage {
    /// Rows of this page.
    pub items: Vec<UploadRecord>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One row of `GET /api/v1/uploads/stats?by=day`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DayStats {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Account name.
    pub user: String,
    /// Uploads completed that day.
    pub count: u64,
    /// Bytes of those uploads.
    pub bytes: u64,
}

/// Answer of `GET /api/v1/uploads/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Grouping, always `day` for now.
    pub by: String,
    /// One row per day and user, oldest day first.
    pub rows: Vec<DayStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let grant = Grant {
            provider: Provider::S3,
            endpoint: "http://127.0.0.1:1".into(),
            addressing: Default::default(),
            signature_version: Default::default(),
            region: "us-east-1".into(),
            bucket: "b".into(),
            prefix: "uploads/1/".into(),
            access_key_id: "FAKEKEYID".into(),
            secret_access_key: "very-secret-value".into(),
            security_token: "very-secret-token".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            policy: serde_json::json!({}),
            callback: None,
        };
        let shown = format!("{grant:?}");
        assert!(shown.contains("FAKEKEYID"));
        assert!(!shown.contains("very-secret"), "{shown}");

        let sign_in = SignIn {
            username: "a".into(),
            password: "hunter2".into(),
            device: None,
        };
        assert!(!format!("{sign_in:?}").contains("hunter2"));
        let session = Session {
            token: "tok-secret".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            user: User {
                id: 1,
                name: "a".into(),
                role: Role::User,
            },
        };
        assert!(!format!("{session:?}").contains("tok-secret"));
    }

    #[test]
    fn requests_reject_unknown_fields_and_responses_tolerate_them() {
        let err = serde_json::from_str::<GrantRequest>(r#"{"ttl":5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(serde_json::from_str::<GrantRequest>("{}").is_ok());
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"brand_new","message":"m","extra":1}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown);
    }

    #[test]
    fn error_codes_round_trip_as_snake_case() {
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::InvalidCredentials,
            ErrorCode::InvalidKey,
            ErrorCode::BrokerRefused,
            ErrorCode::BrokerUnavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
