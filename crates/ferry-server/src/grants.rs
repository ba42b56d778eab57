//! Credential vending: temporary credentials for the embedded store, limited to one user's
//! prefix. Only the grant's shape and the hash of its session token are stored; the secret is
//! derived from the server's master key, so nothing on disk can sign a request by itself.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_protocol::{Addressing, Grant, Provider, SignatureVersion, User};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::db::{Db, GrantRow};
use crate::error::Result;
use crate::sessions;

/// Where grants point and how long they live.
#[derive(Debug, Clone)]
pub(crate) struct GrantSettings {
    pub(crate) endpoint: String,
    pub(crate) region: String,
    pub(crate) bucket: String,
    pub(crate) ttl: Duration,
}

/// The operations a grant allows, as IAM action names.
pub(crate) const ALLOWED_ACTIONS: &[&str] = &[
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
    "s3:GetObjectAttributes",
];

/// Mints and checks grants.
pub(crate) struct Grants {
    db: Db,
    master_key: [u8; 32],
    settings: GrantSettings,
}

/// A verified caller of the embedded store.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) user_id: i64,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
}

/// Why a store request's credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownKey,
    Expired,
    MissingToken,
    WrongToken,
}

/// The prefix a user may write under.
pub(crate) fn user_prefix(user_id: i64) -> String {
    format!("uploads/{user_id}/")
}

impl Grants {
    pub(crate) fn new(db: Db, master_key: [u8; 32], settings: GrantSettings) -> Self {
        Self {
            db,
            master_key,
            settings,
        }
    }

    pub(crate) fn settings(&self) -> &GrantSettings {
        &self.settings
    }

    fn secret_for(&self, access_key_id: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.master_key).expect("any key length");
        mac.update(b"ferry-grant-secret\0");
        mac.update(access_key_id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A new grant for `user`; `ttl` may shorten the configured lifetime, never lengthen it.
    pub(crate) async fn mint(&self, user: &User, ttl: Option<Duration>) -> Result<Grant> {
        let ttl = ttl.map_or(self.settings.ttl, |asked| asked.min(self.settings.ttl));
        let ttl = ttl.max(Duration::from_secs(1));
        let mut id = [0u8; 10];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let access_key_id = format!("FERRY{}", hex::encode_upper(id));
        let security_token = sessions::random_token();
        let expires_at = OffsetDateTime::now_utc() + ttl;
        let prefix = user_prefix(user.id);
        self.db
            .insert_grant(GrantRow {
                access_key_id: access_key_id.clone(),
                user_id: user.id,
                bucket: self.settings.bucket.clone(),
                prefix: prefix.clone(),
                token_hash: sessions::token_hash(&security_token),
                expires_at: expires_at.unix_timestamp(),
            })
            .await?;
        tracing::info!(user = %user.name, %access_key_id, ttl_secs = ttl.as_secs(), "grant issued");
        Ok(Grant {
            provider: Provider::S3,
            endpoint: self.settings.endpoint.clone(),
            addressing: Addressing::Path,
            signature_version: SignatureVersion::V4,
            region: self.settings.region.clone(),
            bucket: self.settings.bucket.clone(),
            policy: policy(&self.settings.bucket, &prefix),
            prefix,
            secret_access_key: self.secret_for(&access_key_id),
            access_key_id,
            security_token,
            expires_at,
            callback: None,
        })
    }

    /// The secret that signs requests for `access_key_id`, if the grant exists and is current.
    pub(crate) async fn secret(&self, access_key_id: &str) -> Result<Result<String, Refusal>> {
        let Some(row) = self.db.grant(access_key_id.to_owned()).await? else {
            return Ok(Err(Refusal::UnknownKey));
        };
        if row.expires_at <= crate::db::now() {
            return Ok(Err(Refusal::Expired));
        }
        Ok(Ok(self.secret_for(&row.access_key_id)))
    }

    /// Checks the session token sent with a signed request (constant time) and says who it is.
    pub(crate) async fn principal(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<Result<Principal, Refusal>> {
        let Some(row) = self.db.grant(access_key_id.to_owned()).await? else {
            return Ok(Err(Refusal::UnknownKey));
        };
        let Some(token) = token else {
            return Ok(Err(Refusal::MissingToken));
        };
        if !bool::from(sessions::token_hash(token).ct_eq(&row.token_hash)) {
            return Ok(Err(Refusal::WrongToken));
        }
        if row.expires_at <= crate::db::now() {
            return Ok(Err(Refusal::Expired));
        }
        Ok(Ok(Principal {
            user_id: row.user_id,
            bucket: row.bucket,
            prefix: row.prefix,
        }))
    }
}

/// The IAM-style policy a grant carries: upload operations on `bucket/prefix*`, nothing else.
fn policy(bucket: &str, prefix: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ALLOWED_ACTIONS,
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")]
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucketMultipartUploads"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}
            }
        ]
    })
}
