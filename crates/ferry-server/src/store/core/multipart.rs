//! The multipart operations of the [`Core`]: create, upload a part, list parts and open
//! uploads, complete (checking every listed part) and abort. An upload is bound to the user who
//! began it and to its bucket and key.

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};

use super::{
    Core, ListedPart, MAX_LIST, MAX_PART_NUMBER, MIN_PART_SIZE, PartPage, StoreError, Stored,
    Upload, UploadListing, UploadPage, db_err, internal,
};
use crate::db::{IfExists, MultipartRow, ObjectRow, PartRow};
use crate::grants::Principal;
use crate::store::crc64;

/// Accepts `"abc"`, `abc` and `ABC` as the same ETag.
fn normalize_etag(value: &str) -> String {
    value.trim().trim_matches('"').to_ascii_lowercase()
}

impl Core {
    /// CreateMultipartUpload: a new upload id bound to the caller, bucket and key.
    pub(crate) async fn create_multipart(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
    ) -> Result<String, StoreError> {
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        self.db
            .create_multipart(MultipartRow {
                upload_id: upload_id.clone(),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                user_id: who.user_id,
                initiated_at: crate::db::now(),
                state: "open".into(),
            })
            .await
            .map_err(db_err)?;
        Ok(upload_id)
    }

    /// UploadPart: stores one part of an open upload of this caller's, replacing any earlier
    /// part with its number.
    pub(crate) async fn upload_part<S, E>(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        upload: Upload<S>,
    ) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(StoreError::InvalidArgument(
                "part numbers go from 1 to 10000".into(),
            ));
        }
        self.open_upload(who, bucket, key, upload_id).await?;
        let written = self.receive(upload).await?;
        let stored = Stored {
            etag: hex::encode(written.md5),
            size: written.size,
            crc64: Some(written.crc64),
        };
        let part = PartRow {
            part_number,
            size: written.size,
            etag: stored.etag.clone(),
            blob: written.blob.name().to_owned(),
            modified_at: crate::db::now(),
            crc64: stored.crc64,
        };
        let blob = written.blob;
        match self
            .db
            .put_part(upload_id.to_owned(), part, move || blob.keep())
            .await
            .map_err(db_err)?
        {
            Ok(replaced) => self.blobs.remove(replaced).await,
            // Completed or aborted while this part was streaming in; its blob is gone with
            // the unrun `keep`.
            Err(()) => {
                return Err(StoreError::NoSuchUpload(format!(
                    "upload {upload_id} is closed"
                )));
            }
        }
        Ok(stored)
    }

    /// ListParts: one page of an open upload's parts, sorted by number.
    pub(crate) async fn list_parts(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: Option<i32>,
        max: Option<i32>,
    ) -> Result<PartPage, StoreError> {
        self.open_upload(who, bucket, key, upload_id).await?;
        let max = max.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
        let marker = marker.unwrap_or(0).max(0);
        let mut parts = self
            .db
            .parts(upload_id.to_owned(), marker, max as usize + 1)
            .await
            .map_err(db_err)?;
        let truncated = parts.len() > max as usize;
        parts.truncate(max as usize);
        let next_marker = if truncated {
            parts.last().map(|p| p.part_number)
        } else {
            None
        };
        Ok(PartPage {
            parts,
            max,
            marker,
            next_marker,
        })
    }

    /// ListMultipartUploads: the caller's open uploads under its prefix, by key then id.
    pub(crate) async fn list_uploads(
        &self,
        who: &Principal,
        bucket: &str,
        listing: UploadListing,
    ) -> Result<UploadPage, StoreError> {
        let asked = listing.prefix.unwrap_or_default();
        let prefix = if asked.starts_with(&who.prefix) {
            asked
        } else if who.prefix.starts_with(&asked) {
            who.prefix.clone()
        } else {
            return Err(StoreError::AccessDenied(
                "uploads are listed only under the grant's prefix".into(),
            ));
        };
        let max = listing.max.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
        // Without an upload-id marker, S3 lists only keys after the key marker.
        let upload_marker = match (&listing.key_marker, listing.upload_id_marker) {
            (Some(_), Some(id)) => id,
            (Some(_), None) => "\u{10FFFF}".to_owned(),
            (None, _) => String::new(),
        };
        let mut uploads = self
            .db
            .open_multiparts(
                who.user_id,
                bucket.to_owned(),
                prefix.clone(),
                listing.key_marker.unwrap_or_default(),
                upload_marker,
                max as usize + 1,
            )
            .await
            .map_err(db_err)?;
        let truncated = uploads.len() > max as usize;
        uploads.truncate(max as usize);
        let next = match uploads.last() {
            Some(last) if truncated => Some((last.key.clone(), last.upload_id.clone())),
            _ => None,
        };
        Ok(UploadPage {
            prefix,
            uploads,
            max,
            next,
        })
    }

    /// The stored parts a completion lists, checked: ascending numbers, matching ETags, and
    /// every part but the last at least [`MIN_PART_SIZE`].
    async fn chosen_parts(
        &self,
        upload_id: &str,
        listed: &[ListedPart],
    ) -> Result<Vec<PartRow>, StoreError> {
        if listed.is_empty() {
            return Err(StoreError::MalformedXml(
                "the request lists no parts".into(),
            ));
        }
        let stored = self
            .db
            .parts(upload_id.to_owned(), 0, MAX_PART_NUMBER as usize)
            .await
            .map_err(db_err)?;
        let mut chosen: Vec<PartRow> = Vec::with_capacity(listed.len());
        let mut previous = 0;
        for part in listed {
            let number = part.number;
            if number <= previous {
                return Err(StoreError::InvalidPartOrder(
                    "parts must be listed in ascending order".into(),
                ));
            }
            previous = number;
            let given = part.etag.as_deref().map(normalize_etag);
            match stored.iter().find(|p| p.part_number == number) {
                Some(p) if given.as_deref() == Some(p.etag.as_str()) => chosen.push(p.clone()),
                Some(_) => {
                    return Err(StoreError::InvalidPart(format!(
                        "part {number}: the ETag does not match"
                    )));
                }
                None => {
                    return Err(StoreError::InvalidPart(format!(
                        "part {number} was not uploaded"
                    )));
                }
            }
        }
        if let Some((index, small)) = chosen[..chosen.len() - 1]
            .iter()
            .enumerate()
            .find(|(_, p)| p.size < MIN_PART_SIZE)
        {
            return Err(StoreError::EntityTooSmall(format!(
                "part {} (#{} listed) has {} bytes; all but the last need 5 MiB",
                small.part_number,
                index + 1,
                small.size
            )));
        }
        Ok(chosen)
    }

    /// CompleteMultipartUpload: assembles the listed parts into the object.
    pub(crate) async fn complete(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[ListedPart],
        if_exists: IfExists,
    ) -> Result<Stored, StoreError> {
        let upload = self.open_upload(who, bucket, key, upload_id).await?;
        let chosen = self.chosen_parts(upload_id, listed).await?;
        let mut md5s = Md5::new();
        for part in &chosen {
            md5s.update(hex::decode(&part.etag).map_err(internal)?);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let crc64 = crc64::of_parts(chosen.iter().map(|p| (p.crc64, p.size)));
        // The object is its parts, in order: no byte is copied (each part's blob was synced
        // to disk before the part was acknowledged, so the committed object survives a crash).
        let names: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        let size = chosen.iter().map(|p| p.size).sum();
        let object = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            etag: etag.clone(),
            blob: crate::db::blob_list(&names),
            user_id: who.user_id,
            created_at: crate::db::now(),
            crc64,
        };
        match self
            .db
            .complete_multipart(upload, object, if_exists, || {})
            .await
            .map_err(db_err)?
        {
            Ok(unused) => self.blobs.remove(unused).await,
            Err(crate::db::NotCompleted::Exists) => return Err(StoreError::AlreadyExists),
            Err(crate::db::NotCompleted::Closed) => {
                return Err(StoreError::NoSuchUpload(format!(
                    "upload {upload_id} was closed meanwhile"
                )));
            }
            Err(crate::db::NotCompleted::PartReplaced) => {
                return Err(StoreError::InvalidPart(
                    "a part was sent again while the upload was being completed; complete it \
                     again"
                        .into(),
                ));
            }
        }
        Ok(Stored { etag, size, crc64 })
    }

    /// AbortMultipartUpload: closes an open upload of this caller's and drops its parts.
    pub(crate) async fn abort(
        &self,
        who: &Principal,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        self.open_upload(who, bucket, key, upload_id).await?;
        match self
            .db
            .abort_multipart(upload_id.to_owned())
            .await
            .map_err(db_err)?
        {
            Ok(blobs) => {
                self.blobs.remove(blobs).await;
                Ok(())
            }
            Err(()) => Err(StoreError::NoSuchUpload(format!(
                "upload {upload_id} is closed"
            ))),
        }
    }
}
