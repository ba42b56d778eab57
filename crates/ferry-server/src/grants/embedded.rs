//! The embedded broker: temporary credentials for the server's own store, limited to one user's
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

use super::{
    ALLOWED_ACTIONS, GrantAsk, GrantSettings, Principal, Refusal, provider_name, user_prefix,
    version_name,
};
use crate::db::{Db, GrantRow};
use crate::error::Result;
use crate::sessions;

/// Mints and checks grants of the embedded store.
pub(crate) struct Embedded {
    db: Db,
    master_key: [u8; 32],
    pub(crate) settings: GrantSettings,
}

impl Embedded {
    pub(crate) fn new(db: Db, master_key: [u8; 32], settings: GrantSettings) -> Self {
        Self {
            db,
            master_key,
            settings,
        }
    }

    fn secret_for(&self, access_key_id: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.master_key).expect("any key length");
        mac.update(b"ferry-grant-secret\0");
        mac.update(access_key_id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
    /// A new grant for `user`; its `ttl` may shorten the configured lifetime, never lengthen
    /// it. An OSS or OBS grant's endpoint is the bucket's own domain (the store on loopback):
    /// requests carry keys only, and the store knows the bucket from the access key.
    pub(crate) async fn mint(&self, user: &User, ask: GrantAsk) -> Result<Grant> {
        let provider = ask.provider.unwrap_or(self.settings.provider);
        let signature_version = match provider {
            Provider::Oss => ask.signature_version.unwrap_or(self.settings.oss_signature),
            Provider::S3 | Provider::Obs => match ask.signature_version {
                None | Some(SignatureVersion::V4) => SignatureVersion::V4,
                Some(SignatureVersion::V1) => {
                    return Err(crate::Error::InvalidRequest(
                        "signature_version v1 exists for provider oss only".into(),
                    ));
                }
            },
        };
        let addressing = match provider {
            Provider::S3 => Addressing::Path,
            Provider::Oss | Provider::Obs => Addressing::Domain,
        };
        let ttl = ask
            .ttl
            .map_or(self.settings.ttl, |asked| asked.min(self.settings.ttl));
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
                provider: provider_name(provider).to_owned(),
                signature_version: version_name(signature_version).to_owned(),
            })
            .await?;
        tracing::info!(
            user = %user.name,
            %access_key_id,
            provider = provider_name(provider),
            ttl_secs = ttl.as_secs(),
            "grant issued"
        );
        Ok(Grant {
            provider,
            endpoint: self.settings.endpoint.clone(),
            addressing,
            signature_version,
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

    /// The grant of `access_key_id` if it exists and is for `provider`.
    async fn row(&self, access_key_id: &str, provider: Provider) -> Result<Option<GrantRow>> {
        Ok(self
            .db
            .grant(access_key_id.to_owned())
            .await?
            .filter(|row| row.provider == provider_name(provider)))
    }

    /// The secret that signs `provider` requests for `access_key_id`, if the grant exists, is
    /// for that dialect, is signed with `version` and is current.
    pub(crate) async fn secret(
        &self,
        access_key_id: &str,
        provider: Provider,
        version: SignatureVersion,
    ) -> Result<Result<String, Refusal>> {
        let Some(row) = self.row(access_key_id, provider).await? else {
            return Ok(Err(Refusal::UnknownKey));
        };
        if row.signature_version != version_name(version) {
            return Ok(Err(Refusal::OtherScheme));
        }
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
        provider: Provider,
    ) -> Result<Result<Principal, Refusal>> {
        let Some(row) = self.row(access_key_id, provider).await? else {
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
