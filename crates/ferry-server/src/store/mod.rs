//! The embedded S3-compatible store: an s3s service on its own loopback listener that accepts
//! only requests signed with a current grant, and only upload operations under the grant's
//! prefix. Objects and parts are streamed to blob files; their metadata lives in the database.

mod access;
mod backend;
mod blobs;

use std::path::Path;
use std::sync::Arc;

use s3s::service::{S3Service, S3ServiceBuilder};

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
    /// the S3 service.
    pub(crate) fn open(dir: &Path, db: Db, grants: Arc<Grants>) -> Result<Self> {
        let blobs =
            blobs::Blobs::open(&dir.join("blobs")).map_err(Error::io("opening the store"))?;
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
        Ok(Self {
            db,
            blobs,
            service: builder.build(),
            received,
        })
    }

    pub(crate) fn service(&self) -> S3Service {
        self.service.clone()
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
