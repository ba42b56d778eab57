//! How a deployment chooses its credential broker: the cloud, where its credential service and
//! its object store are, and the long-term key the server signs its calls with. The key's secret
//! comes from the environment or a file only its owner can read, and never shows in `Debug`.

use std::path::Path;
use std::time::Duration;

use ferry_protocol::{Addressing, Provider, SignatureVersion};
use ferry_sign::Secret;
use serde::Deserialize;

/// The credential service a server vends grants through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerKind {
    /// AWS-compatible `AssumeRole` (AWS, MinIO, Ceph RGW, moto), signed with SigV4.
    Sts,
    /// Alibaba Cloud STS `AssumeRole` (RPC style, HMAC-SHA1 signature).
    Aliyun,
    /// Huawei Cloud IAM `POST /v3.0/OS-CREDENTIAL/securitytokens` (SDK-HMAC-SHA256 signature).
    Huawei,
    /// JD Cloud STS `assumeRole` (JDCLOUD3-HMAC-SHA256 signature, as its SDK signs today).
    Jdcloud,
}

impl BrokerKind {
    /// The name used in configuration, logs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Aliyun => "aliyun",
            Self::Huawei => "huawei",
            Self::Jdcloud => "jdcloud",
        }
    }

    /// The credential service's public endpoint, when the cloud has one well-known address.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::Sts => "https://sts.amazonaws.com",
            Self::Aliyun => "https://sts.aliyuncs.com",
            Self::Huawei => "https://iam.myhuaweicloud.com",
            Self::Jdcloud => "https://sts.jdcloud-api.com",
        }
    }

    /// The dialect of the cloud's object store.
    pub fn default_provider(self) -> Provider {
        match self {
            Self::Sts | Self::Jdcloud => Provider::S3,
            Self::Aliyun => Provider::Oss,
            Self::Huawei => Provider::Obs,
        }
    }

    /// The shortest credential lifetime the cloud hands out, in seconds.
    pub fn min_duration_secs(self) -> u64 {
        match self {
            Self::Sts | Self::Aliyun | Self::Huawei => 900,
            Self::Jdcloud => 3600,
        }
    }
}

/// Where to reach a cloud's credential service and what its grants point at.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Which cloud API to call.
    pub kind: BrokerKind,
    /// Base URL of the credential service (STS, IAM).
    pub endpoint: String,
    /// Region: the STS signing region (`sts`), `RegionId` (`aliyun`) and the grant's region.
    pub region: String,
    /// The bucket uploads go to.
    pub bucket: String,
    /// Base URL of the object store, written into grants.
    pub store_endpoint: String,
    /// How the bucket appears in the store's URLs.
    pub addressing: Addressing,
    /// The store's dialect (the cloud's own when not set).
    pub provider: Provider,
    /// The signature the uploader uses (OSS: V4 or V1).
    pub signature_version: SignatureVersion,
    /// The role to assume: an ARN (`sts`, `aliyun`) or JRN (`jdcloud`).
    pub role_arn: Option<String>,
    /// Huawei: the agency to assume; without it, the key's own user gets a token.
    pub agency_name: Option<String>,
    /// Huawei: the account that owns the agency (name).
    pub agency_domain_name: Option<String>,
    /// Huawei: the account of the key, sent as `X-Domain-Id` when known.
    pub domain_id: Option<String>,
    /// The server's long-term access key id.
    pub access_key_id: String,
    /// The server's long-term secret; never logged.
    pub secret: Secret,
    /// How long one call may take.
    pub timeout: Duration,
    /// Calls tried at most for one grant (transient failures only are tried again).
    pub attempts: u32,
    /// How long all tries for one grant may take together.
    pub deadline: Duration,
}

impl BrokerConfig {
    /// A configuration with the cloud's defaults: its public endpoint and dialect,
    /// virtual-hosted addressing, 10 s a call, 3 tries within 30 s.
    pub fn new(
        kind: BrokerKind,
        region: impl Into<String>,
        bucket: impl Into<String>,
        store_endpoint: impl Into<String>,
        access_key_id: impl Into<String>,
        secret: Secret,
    ) -> Self {
        Self {
            kind,
            endpoint: kind.default_endpoint().to_owned(),
            region: region.into(),
            bucket: bucket.into(),
            store_endpoint: store_endpoint.into(),
            addressing: Addressing::VirtualHosted,
            provider: kind.default_provider(),
            signature_version: SignatureVersion::V4,
            role_arn: None,
            agency_name: None,
            agency_domain_name: None,
            domain_id: None,
            access_key_id: access_key_id.into(),
            secret,
            timeout: Duration::from_secs(10),
            attempts: 3,
            deadline: Duration::from_secs(30),
        }
    }

    /// Refuses settings the broker cannot work with, saying which.
    pub(crate) fn check(&self, grant_ttl: Duration) -> Result<(), String> {
        let kind = self.kind.as_str();
        let missing = |what: &str| format!("the {kind} broker needs {what}");
        if self.bucket.is_empty() {
            return Err(missing("a bucket"));
        }
        for (what, url) in [
            ("endpoint", &self.endpoint),
            ("store_endpoint", &self.store_endpoint),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => {
                    return Err(format!(
                        "{kind} broker: {what} {url:?} is not an http(s) URL"
                    ));
                }
            }
        }
        let needs_role = matches!(
            self.kind,
            BrokerKind::Sts | BrokerKind::Aliyun | BrokerKind::Jdcloud
        );
        if needs_role && self.role_arn.as_deref().is_none_or(str::is_empty) {
            return Err(missing("role_arn (the role to assume)"));
        }
        if self.kind == BrokerKind::Huawei
            && self.agency_name.is_some()
            && self.agency_domain_name.is_none()
        {
            return Err(missing("agency_domain_name with agency_name"));
        }
        if self.access_key_id.is_empty() || self.secret.expose().is_empty() {
            return Err(missing(
                "a long-term key: FERRY_BROKER_ACCESS_KEY_ID and FERRY_BROKER_SECRET_ACCESS_KEY \
                 (or secret_file)",
            ));
        }
        if self.region.is_empty() {
            return Err(missing("a region"));
        }
        if self.attempts == 0 || self.timeout.is_zero() || self.deadline.is_zero() {
            return Err(format!(
                "{kind} broker: attempts, timeout and deadline must be above 0"
            ));
        }
        let min = self.kind.min_duration_secs();
        if grant_ttl.as_secs() < min {
            return Err(format!(
                "grant_ttl is {} s, but {kind} hands out credentials for at least {min} s: raise \
                 grant_ttl so that no grant outlives the server's limit",
                grant_ttl.as_secs()
            ));
        }
        Ok(())
    }
}

/// Why a secret file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file could not be read.
    #[error("reading the secret file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Others than its owner may read or write it.
    #[error(
        "the secret file {path} has mode {mode:o}; it must be readable by its owner only \
         (chmod 600 {path})"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds nothing but white space.
    #[error("the secret file {path} is empty")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads a secret from a file that only its owner may read (mode 0600 or 0400); the secret is
/// the file's content without surrounding white space.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretFileError> {
    let shown = path.display().to_string();
    let read = |source| SecretFileError::Read {
        path: shown.clone(),
        source,
    };
    // One open: the mode checked is the mode of the file read. Links are followed on purpose
    // (Kubernetes mounts secrets through them); the file they reach is what is checked.
    let mut file = std::fs::File::open(path).map_err(read)?;
    let metadata = file.metadata().map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::TooOpen { path: shown, mode });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(read)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretFileError::Empty { path: shown });
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: BrokerKind) -> BrokerConfig {
        let mut config = BrokerConfig::new(
            kind,
            "cn-north-4",
            "photos",
            "https://obs.example.com",
            "AKID",
            Secret::new("wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET"),
        );
        config.role_arn = Some("arn:aws:iam::1:role/up".into());
        config
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", config(BrokerKind::Sts));
        assert!(!shown.contains("wJalr"), "{shown}");
        assert!(shown.contains("AKID"), "the key id is not secret: {shown}");
    }

    #[test]
    fn a_ttl_below_the_clouds_minimum_is_refused() {
        let err = config(BrokerKind::Jdcloud)
            .check(Duration::from_secs(900))
            .unwrap_err();
        assert!(err.contains("at least 3600 s"), "{err}");
        assert!(
            config(BrokerKind::Jdcloud)
                .check(Duration::from_secs(3600))
                .is_ok()
        );
        assert!(
            config(BrokerKind::Aliyun)
                .check(Duration::from_secs(900))
                .is_ok()
        );
    }

    #[test]
    fn missing_settings_are_named() {
        let mut no_role = config(BrokerKind::Aliyun);
        no_role.role_arn = None;
        assert!(
            no_role
                .check(Duration::from_secs(900))
                .unwrap_err()
                .contains("role_arn")
        );
        let mut bad_url = config(BrokerKind::Sts);
        bad_url.store_endpoint = "s3.example.com".into();
        assert!(
            bad_url
                .check(Duration::from_secs(900))
                .unwrap_err()
                .contains("store_endpoint")
        );
        let mut no_key = config(BrokerKind::Huawei);
        no_key.secret = Secret::new("");
        let err = no_key.check(Duration::from_secs(900)).unwrap_err();
        assert!(err.contains("FERRY_BROKER_SECRET_ACCESS_KEY"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.secret");
        std::fs::write(&path, "  s3cr3t-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&path).unwrap_err();
        assert!(err.to_string().contains("mode 644"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().expose(), "s3cr3t-value");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretFileError::Empty { .. })
        ));
    }
}
