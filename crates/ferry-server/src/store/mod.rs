//! The embedded S3-compatible store: an s3s service on its own loopback listener that accepts
//! only requests signed with a current grant, and only upload operations under the grant's
//! prefix. Objects and parts are streamed to blob files; their metadata lives in the database.

mod access;
mod admission;
mod backend;
mod blobs;

use std::path::Path;
use std::sync::Arc;

use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};

pub(crate) use self::admission::Admission;

use crate::db::{Db, ObjectRow};
use crate::error::{Error, Result};
use crate::grants::Grants;

/// What the server knows of a committed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectInfo {
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) user_id: i64,
    pub(crate) created_at: i64,
}

impl From<ObjectRow> for ObjectInfo {
    fn from(row: ObjectRow) -> Self {
        Self {
            size: row.size,
            etag: row.etag,
            user_id: row.user_id,
            created_at: row.created_at,
        }
    }
}

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
    db: Db,
    blobs: blobs::Blobs,
    service: S3Service,
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Opens the blob directory under `dir`, removes blobs a crash left unreferenced, and builds
    /// the S3 service. A request body that pauses longer than `body_read_timeout` is refused.
    pub(crate) fn open(
        dir: &Path,
        db: Db,
        grants: Arc<Grants>,
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
        let mut builder = S3ServiceBuilder::new(backend::Backend::new(db.clone(), blobs.clone()));
        let access = access::GrantAccess::new(grants);
        builder.set_auth(access.clone());
        builder.set_access(access);
        builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(limits()))));
        Ok(Self {
            db,
            blobs,
            service: builder.build(),
            received,
        })
    }

    /// The store's HTTP service: the admission check, then s3s.
    pub(crate) fn service(&self) -> Admission {
        Admission::new(self.service.clone())
    }

    /// Request body bytes received since start.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The committed object at `bucket/key`, if any.
    pub(crate) async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(self
            .db
            .object(bucket.to_owned(), key.to_owned())
            .await?
            .map(ObjectInfo::from))
    }

    /// The whole content of the committed object at `bucket/key`, if any. Read straight from its
    /// blob: no S3 operation reads objects back (grants allow uploads only).
    pub(crate) async fn object_bytes(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(row) = self.db.object(bucket.to_owned(), key.to_owned()).await? else {
            return Ok(None);
        };
        let bytes = self
            .blobs
            .read(&row.blob)
            .await
            .map_err(Error::io(format!("reading the blob of {bucket}/{key}")))?;
        Ok(Some(bytes))
    }
}
