//! The embedded store's S3 operations, on s3s's `S3` trait: single PUT, multipart uploads bound
//! to the user and to `bucket/key`, part listing sorted and paged, completion that checks every
//! part, and HEAD. Access was checked before any of these run (see `access`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, ETag,
    HeadObjectInput, HeadObjectOutput, ListMultipartUploadsInput, ListMultipartUploadsOutput,
    ListPartsInput, ListPartsOutput, MultipartUpload, Part, PutObjectInput, PutObjectOutput,
    StreamingBlob, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Error, S3Request, S3Response, S3Result, s3_error};
use time::OffsetDateTime;

use super::blobs::{Blobs, WriteError, Written};
use crate::db::{Db, DbError, MultipartRow, ObjectRow, PartRow};
use crate::grants::Principal;

/// Smallest part allowed, except the last one.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_NUMBER: i32 = 10_000;
const MAX_LIST: i32 = 1000;

/// The embedded store's S3 implementation.
#[derive(Clone)]
pub(crate) struct Backend {
    db: Db,
    blobs: Blobs,
}

fn internal(err: impl std::fmt::Display) -> S3Error {
    tracing::error!(%err, "store operation failed");
    s3_error!(InternalError, "the store failed; see its log")
}

fn db_err(err: DbError) -> S3Error {
    internal(err)
}

fn principal<T>(req: &S3Request<T>) -> S3Result<Principal> {
    req.extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| s3_error!(AccessDenied, "the request carries no verified credentials"))
}

fn timestamp(unix: i64) -> Timestamp {
    Timestamp::from(OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

fn etag(value: String) -> ETag {
    ETag::Strong(value)
}

/// Accepts `"abc"` and `abc`.
fn unquote(value: &str) -> &str {
    value.trim().trim_matches('"')
}

impl Backend {
    pub(crate) fn new(db: Db, blobs: Blobs) -> Self {
        Self { db, blobs }
    }

    /// Streams a request body to a blob and checks `Content-MD5` and `Content-Length`.
    async fn receive(
        &self,
        body: Option<StreamingBlob>,
        content_md5: Option<&str>,
        content_length: Option<i64>,
    ) -> S3Result<Written> {
        let expected_md5 = match content_md5 {
            Some(value) => Some(
                STANDARD
                    .decode(value.trim())
                    .ok()
                    .filter(|d| d.len() == 16)
                    .ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5"))?,
            ),
            None => None,
        };
        let written = match body {
            Some(body) => self.blobs.write(body).await,
            None => {
                self.blobs
                    .write(futures::stream::empty::<Result<bytes::Bytes, String>>())
                    .await
            }
        }
        .map_err(|err| match err {
            WriteError::Body(msg) => s3_error!(IncompleteBody, "{msg}"),
            WriteError::Stalled(_) => s3_error!(RequestTimeout, "{err}"),
            WriteError::Disk(err) => internal(err),
        })?;
        let length_ok = content_length.is_none_or(|n| u64::try_from(n) == Ok(written.size));
        let digest_ok = expected_md5.is_none_or(|d| d == written.md5);
        if !length_ok || !digest_ok {
            // Dropping `written` deletes its blob.
            return Err(if digest_ok {
                s3_error!(
                    IncompleteBody,
                    "the body is shorter or longer than Content-Length"
                )
            } else {
                s3_error!(BadDigest, "the Content-MD5 does not match the body")
            });
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
    ) -> S3Result<MultipartRow> {
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
            _ => Err(s3_error!(
                NoSuchUpload,
                "no open upload {upload_id} for this key"
            )),
        }
    }
}

#[async_trait::async_trait]
impl S3 for Backend {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let who = principal(&req)?;
        let started_at = crate::db::now();
        let input = req.input;
        let written = self
            .receive(
                input.body,
                input.content_md5.as_deref(),
                input.content_length,
            )
            .await?;
        let tag = hex::encode(written.md5);
        let object = ObjectRow {
            bucket: input.bucket,
            key: input.key,
            size: written.size,
            etag: tag.clone(),
            blob: written.blob.name().to_owned(),
            user_id: who.user_id,
            created_at: crate::db::now(),
        };
        let blob = written.blob;
        let replaced = self
            .db
            .put_object(object, started_at, move || blob.keep())
            .await
            .map_err(db_err)?;
        self.blobs.remove(replaced).await;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(tag)),
            size: i64::try_from(written.size).ok(),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let who = principal(&req)?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let input = req.input;
        self.db
            .create_multipart(MultipartRow {
                upload_id: upload_id.clone(),
                bucket: input.bucket.clone(),
                key: input.key.clone(),
                user_id: who.user_id,
                initiated_at: crate::db::now(),
                state: "open".into(),
            })
            .await
            .map_err(db_err)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        if !(1..=MAX_PART_NUMBER).contains(&input.part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "part numbers go from 1 to 10000"
            ));
        }
        self.open_upload(&who, &input.bucket, &input.key, &input.upload_id)
            .await?;
        let written = self
            .receive(
                input.body,
                input.content_md5.as_deref(),
                input.content_length,
            )
            .await?;
        let tag = hex::encode(written.md5);
        let part = PartRow {
            part_number: input.part_number,
            size: written.size,
            etag: tag.clone(),
            blob: written.blob.name().to_owned(),
            modified_at: crate::db::now(),
        };
        let blob = written.blob;
        match self
            .db
            .put_part(input.upload_id.clone(), part, move || blob.keep())
            .await
            .map_err(db_err)?
        {
            Ok(replaced) => self.blobs.remove(replaced).await,
            Err(()) => {
                // Completed or aborted while this part was streaming in; its blob is gone
                // with the unrun `keep`.
                return Err(s3_error!(
                    NoSuchUpload,
                    "upload {} is closed",
                    input.upload_id
                ));
            }
        }
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(tag)),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        self.open_upload(&who, &input.bucket, &input.key, &input.upload_id)
            .await?;
        let max = input.max_parts.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
        let marker = input.part_number_marker.unwrap_or(0).max(0);
        let mut rows = self
            .db
            .parts(input.upload_id.clone(), marker, max as usize + 1)
            .await
            .map_err(db_err)?;
        let truncated = rows.len() > max as usize;
        rows.truncate(max as usize);
        let next = rows.last().map(|p| p.part_number);
        let parts = rows
            .into_iter()
            .map(|p| Part {
                e_tag: Some(etag(p.etag)),
                last_modified: Some(timestamp(p.modified_at)),
                part_number: Some(p.part_number),
                size: i64::try_from(p.size).ok(),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max),
            part_number_marker: Some(marker),
            next_part_number_marker: if truncated { next } else { None },
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        let asked = input.prefix.clone().unwrap_or_default();
        let prefix = if asked.starts_with(&who.prefix) {
            asked
        } else if who.prefix.starts_with(&asked) {
            who.prefix.clone()
        } else {
            return Err(s3_error!(
                AccessDenied,
                "uploads are listed only under the grant's prefix"
            ));
        };
        let max = input.max_uploads.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
        // Without an upload-id marker, S3 lists only keys after the key marker.
        let upload_marker = match (&input.key_marker, &input.upload_id_marker) {
            (Some(_), Some(id)) => id.clone(),
            (Some(_), None) => "\u{10FFFF}".to_owned(),
            (None, _) => String::new(),
        };
        let mut rows = self
            .db
            .open_multiparts(
                who.user_id,
                input.bucket.clone(),
                prefix.clone(),
                input.key_marker.clone().unwrap_or_default(),
                upload_marker,
                max as usize + 1,
            )
            .await
            .map_err(db_err)?;
        let truncated = rows.len() > max as usize;
        rows.truncate(max as usize);
        let (next_key, next_id) = match rows.last() {
            Some(last) if truncated => (Some(last.key.clone()), Some(last.upload_id.clone())),
            _ => (None, None),
        };
        let uploads = rows
            .into_iter()
            .map(|u| MultipartUpload {
                initiated: Some(timestamp(u.initiated_at)),
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        let upload = self
            .open_upload(&who, &input.bucket, &input.key, &input.upload_id)
            .await?;
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if listed.is_empty() {
            return Err(s3_error!(MalformedXML, "the request lists no parts"));
        }
        let stored = self
            .db
            .parts(input.upload_id.clone(), 0, MAX_PART_NUMBER as usize)
            .await
            .map_err(db_err)?;
        let mut chosen: Vec<&PartRow> = Vec::with_capacity(listed.len());
        let mut previous = 0;
        for part in &listed {
            let number = part.part_number.unwrap_or(0);
            if number <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "parts must be listed in ascending order"
                ));
            }
            previous = number;
            let given = part.e_tag.as_ref().map(|t| unquote(t.value()).to_owned());
            let found = stored.iter().find(|p| p.part_number == number);
            match found {
                Some(p) if given.as_deref() == Some(p.etag.as_str()) => chosen.push(p),
                Some(_) => {
                    return Err(s3_error!(
                        InvalidPart,
                        "part {number}: the ETag does not match"
                    ));
                }
                None => return Err(s3_error!(InvalidPart, "part {number} was not uploaded")),
            }
        }
        if let Some((index, small)) = chosen[..chosen.len() - 1]
            .iter()
            .enumerate()
            .find(|(_, p)| p.size < MIN_PART_SIZE)
        {
            return Err(s3_error!(
                EntityTooSmall,
                "part {} (#{} listed) has {} bytes; all but the last need 5 MiB",
                small.part_number,
                index + 1,
                small.size
            ));
        }
        let mut md5s = Md5::new();
        for part in &chosen {
            let raw = hex::decode(&part.etag).map_err(internal)?;
            md5s.update(&raw);
        }
        let tag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let names: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        let (blob, size) = self.blobs.concat(&names).await.map_err(internal)?;
        let object = ObjectRow {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            size,
            etag: tag.clone(),
            blob: blob.name().to_owned(),
            user_id: who.user_id,
            created_at: crate::db::now(),
        };
        match self
            .db
            .complete_multipart(upload, object, move || blob.keep())
            .await
            .map_err(db_err)?
        {
            Ok(unused) => self.blobs.remove(unused).await,
            Err(()) => {
                return Err(s3_error!(
                    NoSuchUpload,
                    "upload {} was closed meanwhile",
                    input.upload_id
                ));
            }
        }
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(tag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        self.open_upload(&who, &input.bucket, &input.key, &input.upload_id)
            .await?;
        match self
            .db
            .abort_multipart(input.upload_id.clone())
            .await
            .map_err(db_err)?
        {
            Ok(blobs) => self.blobs.remove(blobs).await,
            Err(()) => {
                return Err(s3_error!(
                    NoSuchUpload,
                    "upload {} is closed",
                    input.upload_id
                ));
            }
        }
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self
            .db
            .object(input.bucket, input.key)
            .await
            .map_err(db_err)?
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: i64::try_from(object.size).ok(),
            e_tag: Some(etag(object.etag)),
            last_modified: Some(timestamp(object.created_at)),
            ..Default::default()
        }))
    }
}
