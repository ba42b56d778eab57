//! The store's upload operations, the same for every front (S3, OSS, OBS): single PUT,
//! multipart uploads bound to the user and to `bucket/key`, part listing sorted and paged,
//! completion that checks every part, HEAD, and the listing of open uploads. Each front parses
//! its dialect's request, checks who is calling (see `rules`), calls one of these, and renders
//! the result or the [`StoreError`] in its own XML.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::Stream;

mod multipart;

use super::blobs::{Blobs, WriteError, Written};
pub(crate) use crate::db::IfExists;
use crate::db::{Db, DbError, MultipartRow, NotCompleted, ObjectRow, PartRow};
use crate::grants::Principal;

/// Smallest part allowed, except the last one.
pub(crate) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number.
pub(crate) const MAX_PART_NUMBER: i32 = 10_000;
/// Most parts or uploads one listing returns.
pub(crate) const MAX_LIST: i32 = 1000;

/// Why a store operation was refused; each front names it in its dialect (the codes OSS and
/// OBS use are S3's for all of these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    KeyTooLong(String),
    #[error("{0}")]
    InvalidDigest(String),
    #[error("{0}")]
    BadDigest(String),
    #[error("{0}")]
    IncompleteBody(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    NoSuchUpload(String),
    #[error("the object does not exist")]
    NoSuchKey,
    #[error("{0}")]
    InvalidPart(String),
    #[error("{0}")]
    InvalidPartOrder(String),
    #[error("{0}")]
    EntityTooSmall(String),
    #[error("{0}")]
    MalformedXml(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("an object exists at this key and the write was not to replace it")]
    AlreadyExists,
    #[error("{0}")]
    NotImplemented(String),
    #[error("the store failed; see its log")]
    Internal,
}

impl StoreError {
    /// The error code (S3's, which OSS and OBS share for these).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::KeyTooLong(_) => "KeyTooLongError",
            Self::InvalidDigest(_) => "InvalidDigest",
            Self::BadDigest(_) => "BadDigest",
            Self::IncompleteBody(_) => "IncompleteBody",
            Self::RequestTimeout(_) => "RequestTimeout",
            Self::NoSuchUpload(_) => "NoSuchUpload",
            Self::NoSuchKey => "NoSuchKey",
            Self::InvalidPart(_) => "InvalidPart",
            Self::InvalidPartOrder(_) => "InvalidPartOrder",
            Self::EntityTooSmall(_) => "EntityTooSmall",
            Self::MalformedXml(_) => "MalformedXML",
            Self::AccessDenied(_) => "AccessDenied",
            Self::AlreadyExists => "PreconditionFailed",
            Self::NotImplemented(_) => "NotImplemented",
            Self::Internal => "InternalError",
        }
    }

    /// The HTTP status that goes with the code.
    pub(crate) fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::NoSuchUpload(_) | Self::NoSuchKey => S::NOT_FOUND,
            Self::AccessDenied(_) => S::FORBIDDEN,
            Self::AlreadyExists => S::PRECONDITION_FAILED,
            Self::NotImplemented(_) => S::NOT_IMPLEMENTED,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
            _ => S::BAD_REQUEST,
        }
    }
}

fn internal(err: impl std::fmt::Display) -> StoreError {
    tracing::error!(%err, "store operation failed");
    StoreError::Internal
}

fn db_err(err: DbError) -> StoreError {
    internal(err)
}

/// A body just stored (an object or a part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Lowercase hex MD5, or `<md5 of md5s>-<parts>` for an assembled object.
    pub(crate) etag: String,
    pub(crate) size: u64,
    /// CRC-64/XZ of the bytes, when every part's is known.
    pub(crate) crc64: Option<u64>,
}

/// A committed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectInfo {
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) user_id: i64,
    pub(crate) created_at: i64,
    pub(crate) crc64: Option<u64>,
}

impl From<ObjectRow> for ObjectInfo {
    fn from(row: ObjectRow) -> Self {
        Self {
            size: row.size,
            etag: row.etag,
            user_id: row.user_id,
            created_at: row.created_at,
            crc64: row.crc64,
        }
    }
}

/// Where a body comes from and what the client said of it.
pub(crate) struct Upload<S> {
    pub(crate) body: S,
    /// `Content-MD5` as sent (base64).
    pub(crate) content_md5: Option<String>,
    pub(crate) content_length: Option<u64>,
}

/// One page of an upload's parts.
#[derive(Debug, Clone)]
pub(crate) struct PartPage {
    pub(crate) parts: Vec<PartRow>,
    pub(crate) max: i32,
    pub(crate) marker: i32,
    /// Set when truncated: the marker of the next page.
    pub(crate) next_marker: Option<i32>,
}

/// Where a listing of open uploads starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct UploadListing {
    pub(crate) prefix: Option<String>,
    pub(crate) key_marker: Option<String>,
    pub(crate) upload_id_marker: Option<String>,
    pub(crate) max: Option<i32>,
}

/// One page of open uploads.
#[derive(Debug, Clone)]
pub(crate) struct UploadPage {
    /// The prefix actually listed (the grant's, when the caller asked for a shorter one).
    pub(crate) prefix: String,
    pub(crate) uploads: Vec<MultipartRow>,
    pub(crate) max: i32,
    /// Set when truncated: the key and upload id markers of the next page.
    pub(crate) next: Option<(String, String)>,
}

/// The part list of a CompleteMultipartUpload, as the client sent it.
#[derive(Debug, Clone)]
pub(crate) struct ListedPart {
    pub(crate) number: i32,
    /// The ETag, quoted or not, any case.
    pub(crate) etag: Option<String>,
}

/// The dialect-neutral store.
#[derive(Clone)]
pub(crate) struct Core {
    db: Db,
    blobs: Blobs,
}

impl Core {
    pub(crate) fn new(db: Db, blobs: Blobs) -> Self {
        Self { db, blobs }
    }

    /// Streams a body to a blob and checks `Content-MD5` and `Content-Length`.
    async fn receive<S, E>(&self, upload: Upload<S>) -> Result<Written, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let expected_md5 = match &upload.content_md5 {
            Some(value) => Some(
                STANDARD
                    .decode(value.trim())
                    .ok()
                    .filter(|d| d.len() == 16)
                    .ok_or_else(|| {
                        StoreError::InvalidDigest("Content-MD5 is not a base64 MD5".into())
                    })?,
            ),
            None => None,
        };
        let written = self
            .blobs
            .write(upload.body)
            .await
            .map_err(|err| match err {
                WriteError::Body(msg) => StoreError::IncompleteBody(msg),
                WriteError::Stalled(_) => StoreError::RequestTimeout(err.to_string()),
                WriteError::Disk(err) => internal(err),
            })?;
        let length_ok = upload.content_length.is_none_or(|n| n == written.size);
        let digest_ok = expected_md5.is_none_or(|d| d == written.md5);
        if !digest_ok {
            // Dropping `written` deletes its blob.
            return Err(StoreError::BadDigest(
                "the Content-MD5 does not match the body".into(),
            ));
        }
        if !length_ok {
            return Err(StoreError::IncompleteBody(
                "the body is shorter or longer than Content-Length".into(),
            ));
        }
        Ok(written)
    }

    /// The open upload `upload_id`, if it belongs to this caller and this bucket and key.
    async fn open_upload(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<MultipartRow, StoreError> {
        let row = self
            .db
            .multipart(upload_id.to_owned())
            .await
            .map_err(db_err)?;
        match row {
            Some(row)
                if row.state == "open"
                    && row.user_id == who.user_id
                    && row.bucket == bucket
                    && row.key == key =>
            {
                Ok(row)
            }
            _ => Err(StoreError::NoSuchUpload(format!(
                "no open upload {upload_id} for this key"
            ))),
        }
    }

    /// PutObject: stores the body as the object at `bucket/key` (one history row per upload);
    /// with [`IfExists::Refuse`], only if the key holds no object when it is committed.
    pub(crate) async fn put_object<S, E>(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload: Upload<S>,
        if_exists: IfExists,
    ) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let started_at = crate::db::now();
        let written = self.receive(upload).await?;
        let stored = Stored {
            etag: hex::encode(written.md5),
            size: written.size,
            crc64: Some(written.crc64),
        };
        let object = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: written.size,
            etag: stored.etag.clone(),
            blob: written.blob.name().to_owned(),
            user_id: who.user_id,
            created_at: crate::db::now(),
            crc64: stored.crc64,
        };
        let blob = written.blob;
        // Refused: the blob is not kept (dropping it removes it).
        let replaced = self
            .db
            .put_object(object, started_at, if_exists, move || blob.keep())
            .await
            .map_err(db_err)?
            .map_err(|_: NotCompleted| StoreError::AlreadyExists)?;
        self.blobs.remove(replaced).await;
        Ok(stored)
    }

    /// Refuses a write that is not to replace an object when `bucket/key` holds one (checked
    /// again when the write commits: this only spares sending what would be refused).
    pub(crate) async fn check_new(
        &self,
        bucket: &str,
        key: &str,
        if_exists: IfExists,
    ) -> Result<(), StoreError> {
        match (if_exists, self.head(bucket, key).await) {
            (IfExists::Refuse, Ok(_)) => Err(StoreError::AlreadyExists),
            (_, Err(StoreError::NoSuchKey) | Ok(_)) => Ok(()),
            (_, Err(err)) => Err(err),
        }
    }

    /// HeadObject: what is known of the object at `bucket/key`.
    pub(crate) async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        self.db
            .object(bucket.to_owned(), key.to_owned())
            .await
            .map_err(db_err)?
            .map(ObjectInfo::from)
            .ok_or(StoreError::NoSuchKey)
    }

    /// The committed object at `bucket/key`, if any (for the app server's confirmations).
    pub(crate) async fn object(
        &self,
        bucket: &str,
        key: &str,
    ) -> crate::error::Result<Option<ObjectInfo>> {
        Ok(self
            .db
            .object(bucket.to_owned(), key.to_owned())
            .await?
            .map(ObjectInfo::from))
    }

    /// The committed objects at `keys` of `bucket`, in order, looked up together.
    pub(crate) async fn objects(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> crate::error::Result<Vec<Option<ObjectInfo>>> {
        Ok(self
            .db
            .objects(bucket.to_owned(), keys)
            .await?
            .into_iter()
            .map(|row| row.map(ObjectInfo::from))
            .collect())
    }

    /// The whole content of the committed object at `bucket/key`, if any, read from its blob.
    pub(crate) async fn object_bytes(
        &self,
        bucket: &str,
        key: &str,
    ) -> crate::error::Result<Option<Vec<u8>>> {
        let Some(row) = self.db.object(bucket.to_owned(), key.to_owned()).await? else {
            return Ok(None);
        };
        let bytes = self
            .blobs
            .read(&crate::db::blob_names(&row.blob))
            .await
            .map_err(crate::Error::io(format!(
                "reading the blob of {bucket}/{key}"
            )))?;
        Ok(Some(bytes))
    }
}
