//! Credential vending. [`Grants`] is the one place the API asks for a grant: it mints one for the
//! embedded store ([`embedded`]) or, when the deployment configures a cloud broker, asks that
//! cloud's credential service ([`sts`], [`aliyun`], [`huawei`], [`jdcloud`], sharing
//! [`broker`]). Either way a grant writes under `uploads/<user id>/` only and never outlives the
//! server's grant lifetime. The embedded store also checks its own grants here.

mod aliyun;
mod ascii_json;
mod broker;
mod config;
mod embedded;
mod huawei;
mod jdcloud;
mod policy;
mod sts;

use std::time::Duration;

use ferry_protocol::{Grant, Provider, SignatureVersion, User};

pub use self::broker::BrokerError;
use self::broker::{Broker, Cloud};
pub use self::config::{BrokerConfig, BrokerKind, SecretFileError, read_secret_file};
use self::embedded::Embedded;
use crate::db::Db;
use crate::error::{Error, Result};

/// Where embedded grants point and how long grants live.
#[derive(Debug, Clone)]
pub(crate) struct GrantSettings {
    pub(crate) endpoint: String,
    pub(crate) region: String,
    pub(crate) bucket: String,
    pub(crate) ttl: Duration,
    /// The dialect when the client does not ask for one.
    pub(crate) provider: Provider,
    /// The OSS signature when the client does not ask for one.
    pub(crate) oss_signature: SignatureVersion,
}

/// The operations an embedded grant allows, as IAM action names.
pub(crate) const ALLOWED_ACTIONS: &[&str] = &[
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
    "s3:GetObjectAttributes",
];

/// Mints grants (through the configured broker) and checks the embedded store's.
pub(crate) struct Grants {
    embedded: Embedded,
    broker: Option<Broker>,
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
    /// No such grant, or one whose user is disabled, or one minted for another dialect.
    UnknownKey,
    Expired,
    MissingToken,
    WrongToken,
    /// The grant's requests are signed with the other of its dialect's schemes (OSS V4 / V1).
    OtherScheme,
}

/// The name a signature version is stored under.
pub(crate) fn version_name(version: SignatureVersion) -> &'static str {
    match version {
        SignatureVersion::V4 => "v4",
        SignatureVersion::V1 => "v1",
    }
}

/// The name a dialect is stored under.
pub(crate) fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::S3 => "s3",
        Provider::Oss => "oss",
        Provider::Obs => "obs",
    }
}

/// What a client asks of a new grant.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GrantAsk {
    /// A shorter lifetime than the configured one.
    pub(crate) ttl: Option<Duration>,
    /// The dialect (the server's default if not given).
    pub(crate) provider: Option<Provider>,
    /// OSS only: V4 (default) or V1 signatures.
    pub(crate) signature_version: Option<SignatureVersion>,
}

/// The prefix a user may write under.
pub(crate) fn user_prefix(user_id: i64) -> String {
    format!("uploads/{user_id}/")
}

impl Grants {
    /// Grants for the embedded store, or through `broker` when one is configured (checked
    /// here, so a server with an unusable broker does not start).
    pub(crate) fn new(
        db: Db,
        master_key: [u8; 32],
        settings: GrantSettings,
        broker: Option<BrokerConfig>,
    ) -> Result<Self> {
        let ttl = settings.ttl;
        let broker = match broker {
            None => None,
            Some(config) => {
                config.check(ttl).map_err(Error::Config)?;
                let cloud: Box<dyn Cloud> = match config.kind {
                    BrokerKind::Sts => Box::new(sts::Sts::new(&config)),
                    BrokerKind::Aliyun => Box::new(aliyun::Aliyun::new(&config)),
                    BrokerKind::Huawei => Box::new(huawei::Huawei::new(&config)),
                    BrokerKind::Jdcloud => Box::new(jdcloud::Jdcloud::new(&config)),
                };
                Some(Broker::new(config, cloud, ttl))
            }
        };
        Ok(Self {
            embedded: Embedded::new(db, master_key, settings),
            broker,
        })
    }

    pub(crate) fn settings(&self) -> &GrantSettings {
        &self.embedded.settings
    }

    /// Where grants send uploads: the bucket, and whether it is the embedded store's (so that
    /// confirmations can be checked against it) or a cloud's the server cannot look into.
    pub(crate) fn upload_bucket(&self) -> crate::uploads::UploadBucket {
        match &self.broker {
            Some(broker) => crate::uploads::UploadBucket {
                name: broker.config().bucket.clone(),
                in_store: false,
            },
            None => crate::uploads::UploadBucket {
                name: self.embedded.settings.bucket.clone(),
                in_store: true,
            },
        }
    }

    /// A new grant for `user`; its `ttl` may shorten the configured lifetime, never lengthen
    /// it. A cloud broker vends its cloud's dialect only: asking for another is refused.
    pub(crate) async fn mint(&self, user: &User, ask: GrantAsk) -> Result<Grant> {
        let Some(broker) = &self.broker else {
            return self.embedded.mint(user, ask).await;
        };
        let config = broker.config();
        if ask.provider.is_some_and(|p| p != config.provider)
            || ask
                .signature_version
                .is_some_and(|v| v != config.signature_version)
        {
            return Err(Error::InvalidRequest(format!(
                "this server vends {} grants ({} signatures) through {} only",
                provider_name(config.provider),
                match config.signature_version {
                    SignatureVersion::V4 => "v4",
                    SignatureVersion::V1 => "v1",
                },
                config.kind.as_str()
            )));
        }
        Ok(broker.vend(user, ask.ttl).await?)
    }

    /// The secret that signs `provider` requests for `access_key_id` of the embedded store, if
    /// the grant exists, is for that dialect and is current.
    pub(crate) async fn secret(
        &self,
        access_key_id: &str,
        provider: Provider,
        version: SignatureVersion,
    ) -> Result<Result<String, Refusal>> {
        self.embedded.secret(access_key_id, provider, version).await
    }

    /// Checks the session token sent with a signed request to the embedded store (constant
    /// time) and says who it is.
    pub(crate) async fn principal(
        &self,
        access_key_id: &str,
        token: Option<&str>,
        provider: Provider,
    ) -> Result<Result<Principal, Refusal>> {
        self.embedded
            .principal(access_key_id, token, provider)
            .await
    }
}
