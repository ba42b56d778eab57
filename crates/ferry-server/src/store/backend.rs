//! The S3 front's operations, on s3s's `S3` trait: each takes s3s's parsed input, calls the
//! dialect-neutral [`Core`], and answers in s3s's types. Access was checked before any of these
//! run (see `access`).

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, ETag,
    ETagCondition, HeadObjectInput, HeadObjectOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload, Part,
    PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp, UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use time::OffsetDateTime;

use super::core::{Core, IfExists, ListedPart, StoreError, Upload, UploadListing};
use crate::grants::Principal;

/// The embedded store's S3 implementation.
#[derive(Clone)]
pub(crate) struct Backend {
    core: Core,
}

/// The store's refusal as an s3s error (same code, same message).
pub(crate) fn to_s3_error(err: StoreError) -> S3Error {
    let code = S3ErrorCode::from_bytes(err.code().as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    S3Error::with_message(code, err.to_string())
}

/// What a write's conditions ask for, as S3 takes them: `If-None-Match: *` writes only a new
/// object; other conditions (`If-Match`, `If-None-Match` with an ETag) are not implemented
/// here, and refused rather than ignored — a write the client made conditional never
/// overwrites unconditionally.
fn if_exists(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<IfExists> {
    match (if_match, if_none_match) {
        (None, None) => Ok(IfExists::Replace),
        (None, Some(ETagCondition::Any)) => Ok(IfExists::Refuse),
        _ => Err(to_s3_error(StoreError::NotImplemented(
            "of the conditions on a write, this store implements If-None-Match: * only".into(),
        ))),
    }
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

/// A request body for the core (an empty one when there is none).
fn upload(
    body: Option<StreamingBlob>,
    content_md5: Option<String>,
    content_length: Option<i64>,
) -> Upload<StreamingBlob> {
    Upload {
        body: body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
        }),
        content_md5,
        content_length: content_length.and_then(|n| u64::try_from(n).ok()),
    }
}

impl Backend {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }
}

#[async_trait::async_trait]
impl S3 for Backend {
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        let if_exists = if_exists(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let body = upload(input.body, input.content_md5, input.content_length);
        let stored = self
            .core
            .put_object(&who, &input.bucket, &input.key, body, if_exists)
            .await
            .map_err(to_s3_error)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(stored.etag)),
            size: i64::try_from(stored.size).ok(),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        let upload_id = self
            .core
            .create_multipart(&who, &input.bucket, &input.key)
            .await
            .map_err(to_s3_error)?;
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
        let body = upload(input.body, input.content_md5, input.content_length);
        let stored = self
            .core
            .upload_part(
                &who,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                body,
            )
            .await
            .map_err(to_s3_error)?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(stored.etag)),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        let page = self
            .core
            .list_parts(
                &who,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number_marker,
                input.max_parts,
            )
            .await
            .map_err(to_s3_error)?;
        let parts = page
            .parts
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
            max_parts: Some(page.max),
            part_number_marker: Some(page.marker),
            next_part_number_marker: page.next_marker,
            is_truncated: Some(page.next_marker.is_some()),
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
        let listing = UploadListing {
            prefix: input.prefix,
            key_marker: input.key_marker.clone(),
            upload_id_marker: input.upload_id_marker.clone(),
            max: input.max_uploads,
        };
        let page = self
            .core
            .list_uploads(&who, &input.bucket, listing)
            .await
            .map_err(to_s3_error)?;
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| MultipartUpload {
                initiated: Some(timestamp(u.initiated_at)),
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                ..Default::default()
            })
            .collect();
        let (next_key, next_id) = page.next.clone().unzip();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(page.prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(page.max),
            is_truncated: Some(page.next.is_some()),
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
        let listed: Vec<ListedPart> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| ListedPart {
                number: p.part_number.unwrap_or(0),
                etag: p.e_tag.map(|t| t.value().to_owned()),
            })
            .collect();
        let if_exists = if_exists(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let stored = self
            .core
            .complete(
                &who,
                &input.bucket,
                &input.key,
                &input.upload_id,
                &listed,
                if_exists,
            )
            .await
            .map_err(to_s3_error)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(stored.etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let who = principal(&req)?;
        let input = req.input;
        self.core
            .abort(&who, &input.bucket, &input.key, &input.upload_id)
            .await
            .map_err(to_s3_error)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self
            .core
            .head(&input.bucket, &input.key)
            .await
            .map_err(to_s3_error)?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: i64::try_from(object.size).ok(),
            e_tag: Some(etag(object.etag)),
            last_modified: Some(timestamp(object.created_at)),
            ..Default::default()
        }))
    }
}
