//! The embedded store, on its own loopback listener: one dialect-neutral core (`core`, over the
//! database and the blob files) behind three fronts chosen by each request's signature scheme
//! (`admission`): S3 (s3s with `access` and `backend`), and OSS and OBS (`native`). Every front
//! accepts only requests signed with a current grant of its dialect, and only upload operations
//! under the grant's prefix (`rules`). Objects and parts are streamed to blob files; their
//! metadata lives in the database.

mod access;
mod admission;
mod backend;
mod blobs;
mod core;
mod crc64;
mod native;
mod rules;

use std::path::Path;
use std::sync::Arc;

use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};

pub(crate) use self::admission::Admission;

pub(crate) use self::core::ObjectInfo;
use crate::callbacks::Delivery;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::grants::Grants;

/// Every s3s limit, set on purpose rather than left at s3s's defaults (which would buffer a 5 GB
/// POST form in memory).
fn limits() -> S3Config {
    let mut config = S3Config::default();
    // CompleteMultipartUpload is the only XML body the store reads whole (`admission` checks
    // its length first).
    config.xml_max_body_size = admission::MAX_XML_BODY;
    // POST form uploads are refused before s3s sees them (see `admission`); should one get
    // through, nothing of its file is buffered and its fields stay tiny.
    config.post_object_max_file_size = 0;
    config.form_max_field_size = 1024;
    config.form_max_fields_size = 8 * 1024;
    config.form_max_parts = 8;
    // S3's own presigned-URL and clock-skew tolerance: 15 minutes.
    config.presigned_url_max_skew_time_secs = 900;
    // Keys are stored exactly as sent; `a//b` and `a/b` are different keys.
    config.normalize_forward_slash_path = false;
    config
}

/// The embedded store.
#[derive(Clone)]
pub(crate) struct Store {
    core: self::core::Core,
    service: S3Service,
    native: native::NativeFront,
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Opens the blob directory under `dir`, removes blobs a crash left unreferenced, and builds
    /// the fronts (the OSS and OBS ones call back through `delivery`). A request body that
    /// pauses longer than `body_read_timeout` is refused.
    pub(crate) fn open(
        dir: &Path,
        db: Db,
        grants: Arc<Grants>,
        delivery: Arc<Delivery>,
        body_read_timeout: std::time::Duration,
    ) -> Result<Self> {
        let blobs = blobs::Blobs::open(&dir.join("blobs"), body_read_timeout)
            .map_err(Error::io("opening the store"))?;
        let swept = blobs
            .sweep(&db.referenced_blobs()?)
            .map_err(Error::io("sweeping the store"))?;
        if swept > 0 {
            tracing::info!(swept, "removed blobs left unreferenced by an earlier stop");
        }
        let received = blobs.received();
        let core = self::core::Core::new(db, blobs);
        let mut builder = S3ServiceBuilder::new(backend::Backend::new(core.clone()));
        let access = access::GrantAccess::new(grants.clone());
        builder.set_auth(access.clone());
        builder.set_access(access);
        builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(limits()))));
        let bucket = grants.settings().bucket.clone();
        Ok(Self {
            native: native::NativeFront::new(core.clone(), grants, delivery, bucket),
            core,
            service: builder.build(),
            received,
        })
    }

    /// The store's HTTP service: the admission check, then the request's front.
    pub(crate) fn service(&self) -> Admission {
        Admission::new(self.service.clone(), self.native.clone())
    }

    /// Request body bytes received since start.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The committed object at `bucket/key`, if any.
    pub(crate) async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        self.core.object(bucket, key).await
    }

    /// The committed objects at `keys` of `bucket`, in order (one trip to the database).
    pub(crate) async fn heads(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<ObjectInfo>>> {
        self.core.objects(bucket, keys).await
    }

    /// The whole content of the committed object at `bucket/key`, if any. Read straight from its
    /// blob: no store operation reads objects back (grants allow uploads only).
    pub(crate) async fn object_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.core.object_bytes(bucket, key).await
    }
}
