//! One file's upload: fingerprint, single PUT or multipart (reconciled with the store's part
//! list), final ETag check, then the confirmation to the app server.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use base64::Engine as _;
use ferry_protocol::Confirmation;

use super::source::{
    Fingerprint, Small, changed, changed_under, crc64_of, hash_span, look, unchanged,
};
use super::{Shared, callback};
use crate::conflict::{self, Write};
use crate::dialect::{Dialect, same_etag};
use crate::error::{Error, Result};
use crate::journal::{FileRow, FileState, Owner, Uploaded};
use crate::storage::{Body, Payload, Stored, Who};

/// The body of a one-PUT upload of `size` bytes, its MD5 and CRC-64: the bytes themselves for
/// a small file (read with its fingerprint), else the file sent from disk after a first read
/// to hash it — so many files in flight hold little memory.
async fn one_put_body(
    path: &Path,
    size: u64,
    small: Option<Small>,
) -> Result<(Body, [u8; 16], u64)> {
    if let Some(Small { bytes, md5 }) = small {
        let crc = crc64_of(&bytes);
        return Ok((Body::Bytes(bytes), md5, crc));
    }
    let (md5, crc) = hash_span(path, 0, size).await?;
    let body = Body::Span {
        path: path.to_owned(),
        offset: 0,
        len: size,
    };
    Ok((body, md5, crc))
}

/// Whether a file of a size is sent in parts, by the settings as they are now (read once per
/// upload: a threshold changed meanwhile applies from the file's next start).
fn sent_in_parts(shared: &Shared) -> impl Fn(u64) -> bool + use<> {
    let threshold = shared.settings().single_put_threshold;
    move |size| size >= threshold
}

/// Part size for a file: at least the minimum, and few enough parts for S3's 10 000 limit.
pub fn part_size(size: u64, min: u64) -> u64 {
    min.max(size.div_ceil(10_000))
}

/// Refuses, before the first byte, a key the grant's policy does not let it write.
fn inside_grant(grant: &ferry_protocol::Grant, key: &str, path: &Path) -> Result<()> {
    match crate::policy::verdict(&grant.policy, &grant.bucket, key) {
        crate::policy::Verdict::Allowed => Ok(()),
        crate::policy::Verdict::Outside { allowed } => Err(Error::File {
            path: path.display().to_string(),
            code: "outside_grant",
            reason: format!(
                "the storage credentials do not allow writing {}/{key}; they allow {}",
                grant.bucket,
                match allowed.is_empty() {
                    true => "no uploads at all".to_owned(),
                    false => allowed.join(", "),
                }
            ),
        }),
    }
}

/// Uploads `row` to the store for `owner` and records it `Uploaded`; returns the row as it
/// now is in the journal (what its confirmation tells the app server).
pub(crate) async fn upload(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
    sent: &Arc<AtomicU64>,
) -> Result<FileRow> {
    // Sent in parts or in one PUT: decided once, from the file as looked at.
    let in_parts = sent_in_parts(shared);
    let (print, small) = note_fingerprint(shared, row, owner, &in_parts).await?;
    // A file changed under its multipart upload let go of it: the row as the journal has it
    // (no upload begun, so its key is settled again; its earlier object noted as its own).
    let row = &match row.upload_id {
        Some(_) => fresh(shared, row).await?,
        None => row.clone(),
    };
    let big = in_parts(print.size);
    let grant = shared.storage.grant(&Who::file(owner, row.id)).await?;
    check_owner(shared, owner)?;
    inside_grant(&grant, &format!("{}{}", grant.prefix, row.key), &row.path)?;
    let _big_slot = match big {
        true => Some(shared.big_files.clone().acquire_owned().await),
        false => None,
    };
    let who = Who::file(owner, row.id);
    // The file as just looked at (its modification time decides "overwrite if newer").
    let mut row = FileRow {
        size: Some(print.size),
        mtime_ns: Some(print.mtime_ns),
        ..row.clone()
    };
    let store_refuses = !Dialect::looks_before_writing(&grant);
    let mut settled = match row.upload_id {
        // Begun already: its key was settled then; the condition still guards its Complete.
        Some(_) => conflict::begun(&row, &grant.prefix),
        None => {
            let looking = conflict::Looking {
                first: big || !store_refuses,
                store_refuses,
            };
            conflict::settle(shared, &row, &who, &grant.prefix, looking).await?
        }
    };
    // A write refused because an object appeared at the key is settled again, a few times.
    for attempt in 0..MAX_REFUSED_WRITES {
        if attempt > 0 {
            // Its key may have changed (keep both), its multipart upload begun; the file is
            // as just looked at (a file sent in one PUT has its fingerprint journaled only
            // with its object).
            row = FileRow {
                size: Some(print.size),
                mtime_ns: Some(print.mtime_ns),
                ..fresh(shared, &row).await?
            };
        }
        let row = &row;
        if big && settled.write == Write::Present {
            // (Bytes found whole at the key are a file sent in one PUT's; the threshold may
            // have moved since this file was judged big: its parts go, conditionally.)
            settled.write = Write::OnlyNew;
        }
        inside_grant(&grant, &settled.key, &row.path)?;
        let target = Target {
            bucket: &grant.bucket,
            key: &settled.key,
            owner,
            write: settled.write,
            looks_before_complete: !store_refuses && settled.write == Write::OnlyNew,
        };
        let written = match big {
            true => super::multipart::multipart(shared, row, &print, &target, sent).await,
            false if settled.write == Write::Present => {
                present(shared, row, print.clone(), small.clone(), &target, sent).await
            }
            false => {
                put_and_record(
                    shared,
                    row,
                    print.clone(),
                    small.clone(),
                    &target,
                    sent,
                    &grant,
                )
                .await
            }
        };
        let refused = match written {
            Err(err) if conflict::is_exists_refusal(&err) => err,
            other => return other,
        };
        tracing::info!(file_id = row.id, error = %refused, "an object appeared at the key");
        match conflict::refused(shared, row, &who, &grant.prefix, &settled.key).await {
            Ok(next) => settled = next,
            // Skipped: a multipart upload whose Complete was refused is let go of. (Asked:
            // it is kept, to be completed at once if the answer is to overwrite.)
            Err(kept @ Error::Kept { .. }) => {
                abandon(shared, &fresh(shared, row).await?, owner).await?;
                return Err(kept);
            }
            Err(err) => return Err(err),
        }
    }
    Err(Error::Protocol {
        operation: "uploading the file",
        detail: format!("the store refused {MAX_REFUSED_WRITES} writes for objects at the key"),
    })
}

/// Writes a refused for an object at their key, at most, before the attempt is given up.
const MAX_REFUSED_WRITES: usize = 3;

/// `row` as the journal has it now (a key changed to keep both, an upload begun).
async fn fresh(shared: &Arc<Shared>, row: &FileRow) -> Result<FileRow> {
    let id = row.id;
    Ok(shared
        .db(move |j| j.file(id))
        .await?
        .unwrap_or_else(|| row.clone()))
}

/// Sends a file in one PUT and records it `Uploaded`.
async fn put_and_record(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: Fingerprint,
    small: Option<Small>,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
    grant: &ferry_protocol::Grant,
) -> Result<FileRow> {
    let object = put_whole(shared, row, &print, small.clone(), target, sent, grant).await?;
    // The file must still be what was hashed and sent (looked at off the journal).
    let same = still_as_seen(row, &print, small).await;
    if !matches!(same, Ok(true)) {
        // The object at the key is this file's, if not its bytes of now (or the file is gone
        // for a moment, as an editor saving it by renaming leaves it): its next try replaces
        // it without asking, where it can look at it.
        let (id, key, etag) = (row.id, object.key.clone(), object.etag.clone());
        shared.db(move |j| j.stored_stale(id, &key, &etag)).await?;
        return Err(same.err().unwrap_or_else(|| changed(&row.path)));
    }
    record_put(shared, row, print, object).await
}

/// Takes the object at the key — found to hold the file's very bytes — as the file's upload,
/// once it is looked at again (it may have been replaced since): nothing is sent. One that no
/// longer holds them is refused as a conditional write would be, to be settled again (or the
/// file changed, and starts again).
async fn present(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: Fingerprint,
    small: Option<Small>,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
) -> Result<FileRow> {
    let md5 = match &small {
        Some(small) => small.md5,
        None => hash_span(&row.path, 0, print.size).await?.0,
    };
    let expected = hex::encode(md5);
    let who = Who::file(target.owner, row.id);
    let head = shared.storage.head(&who, target.key).await?;
    if !still_as_seen(row, &print, small).await? {
        return Err(changed(&row.path));
    }
    let Some(head) = head.filter(|h| h.size == print.size && same_etag(&h.etag, &expected)) else {
        return Err(conflict::object_there(
            "PutObject",
            "the object at the key changed since it was looked at",
        ));
    };
    tracing::info!(
        file_id = row.id,
        "the file's bytes are at its key already; nothing sent"
    );
    sent.store(print.size, std::sync::atomic::Ordering::Relaxed);
    let object = Object {
        bucket: target.bucket.to_owned(),
        key: target.key.to_owned(),
        etag: head.etag,
        checksum: put_checksum(&expected),
        size: print.size,
    };
    record_put(shared, row, print, object).await
}

/// Whether the file is still what `print` saw (and, read whole, still `small`): looked at off
/// the journal.
async fn still_as_seen(row: &FileRow, print: &Fingerprint, small: Option<Small>) -> Result<bool> {
    let (path, looked) = (row.path.clone(), print.clone());
    crate::blocking::run("looking at a file", move || {
        unchanged(&path, &looked, small.as_ref().map(|s| &s.bytes[..]))
    })
    .await
}

/// Records `object` — at the key with the file's bytes as `print` saw them — as the file's
/// upload, with its fingerprint, in the next group commit.
async fn record_put(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: Fingerprint,
    object: Object,
) -> Result<FileRow> {
    let (id, recorded) = (row.id, object.clone());
    shared
        .grouped(move |j| j.uploaded(id, &recorded.as_uploaded(&print)))
        .await?;
    Ok(object.onto(row))
}

/// Looks at the file and journals its fingerprint, in one hop to the blocking pool (with a
/// small file's bytes) — unless the file changed under an open multipart upload, whose parts
/// are let go of before the new fingerprint is recorded.
async fn note_fingerprint(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
    in_parts: &impl Fn(u64) -> bool,
) -> Result<(Fingerprint, Option<Small>)> {
    let (id, path, open) = (row.id, row.path.clone(), row.upload_id.is_some());
    let known = (row.size, row.mtime_ns, row.sample.clone());
    let (print, small) =
        crate::blocking::run("looking at a file", move || look(&path, true)).await?;
    let seen = (
        Some(print.size),
        Some(print.mtime_ns),
        Some(print.sample.clone()),
    );
    let stale = open && known != seen;
    // A file sent in one PUT has its fingerprint recorded with the object (nothing resumes
    // from it); one sent in parts needs it before its first part (a resume compares it).
    if !stale && in_parts(print.size) {
        let found = print.clone();
        shared
            .grouped(move |j| j.set_fingerprint(id, found.size, found.mtime_ns, &found.sample))
            .await?;
    }
    if stale {
        tracing::info!(file = %row.path.display(), "the file changed since its upload began; starting again");
        // (Completed before the engine stopped, it left the file's earlier bytes at the key.)
        super::multipart::note_if_completed(shared, row, owner).await?;
        abandon(shared, row, owner).await?;
        let found = print.clone();
        shared
            .db(move |j| j.set_fingerprint(id, found.size, found.mtime_ns, &found.sample))
            .await?;
    }
    Ok((print, small))
}

/// What the journal records a one-PUT upload was checked against: its bytes' MD5 (hex).
fn put_checksum(md5_hex: &str) -> String {
    format!("md5:{md5_hex}")
}

/// Sends the file in one PUT and checks what the store says it stored.
async fn put_whole(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    small: Option<Small>,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
    grant: &ferry_protocol::Grant,
) -> Result<Object> {
    let path = row.path.as_path();
    let (body, md5, crc) = one_put_body(path, print.size, small).await?;
    let expected = hex::encode(md5);
    let checksum = put_checksum(&expected);
    let payload = Payload {
        body,
        content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
        progress: Some(sent.clone()),
        callback: callback::headers(shared, grant, row),
        write: Some(target.write),
    };
    let who = Who::file(target.owner, row.id);
    let stored = match shared.storage.put_object(&who, target.key, payload).await {
        Ok(stored) => stored,
        // Refused for an object at the key: this very file is there already when a PUT sent
        // again after its answer was lost finds its own first try (or someone stored the
        // same bytes).
        Err(err) if conflict::is_exists_refusal(&err) => {
            // (A grant that may not look leaves the refusal as it is.)
            match shared.storage.head(&who, target.key).await {
                Ok(Some(head)) if head.size == print.size && same_etag(&head.etag, &expected) => {
                    Stored {
                        etag: head.etag,
                        crc64: None,
                        callback: None,
                    }
                }
                _ => return Err(err),
            }
        }
        Err(err) => return Err(changed_under(path, print, err).await),
    };
    check_stored(&stored, &expected, crc)?;
    callback::report(shared, row, stored.callback.as_ref());
    Ok(Object {
        bucket: target.bucket.to_owned(),
        key: target.key.to_owned(),
        etag: stored.etag,
        checksum,
        size: print.size,
    })
}

/// An object the store now holds for a file: what the journal records as `Uploaded`.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) etag: String,
    pub(super) checksum: String,
    pub(super) size: u64,
}

impl Object {
    /// What the journal records: this object, made of the file's bytes as `print` saw them.
    pub(super) fn as_uploaded<'a>(&'a self, print: &'a Fingerprint) -> Uploaded<'a> {
        Uploaded {
            bucket: &self.bucket,
            key: &self.key,
            etag: &self.etag,
            checksum: &self.checksum,
            size: self.size,
            mtime_ns: print.mtime_ns,
            sample: &print.sample,
        }
    }

    /// `row` as the journal has it once this object is recorded.
    pub(super) fn onto(self, row: &FileRow) -> FileRow {
        FileRow {
            state: FileState::Uploaded,
            size: Some(self.size),
            bucket: Some(self.bucket),
            object_key: Some(self.key),
            etag: Some(self.etag),
            checksum: Some(self.checksum),
            bytes_done: self.size,
            upload_id: None,
            error_code: None,
            error_message: None,
            next_retry_at: None,
            ..row.clone()
        }
    }
}

/// Checks what the store says it stored against what was sent: the ETag is the MD5 (in any
/// case), and the CRC-64 matches when the store answers one.
pub(super) fn check_stored(stored: &Stored, md5_hex: &str, crc: u64) -> Result<()> {
    if !same_etag(&stored.etag, md5_hex) {
        return Err(Error::IntegrityMismatch {
            expected: md5_hex.to_owned(),
            got: stored.etag.clone(),
        });
    }
    match stored.crc64 {
        Some(theirs) if theirs != crc => Err(Error::IntegrityMismatch {
            expected: format!("crc64 {crc}"),
            got: format!("crc64 {theirs}"),
        }),
        _ => Ok(()),
    }
}

/// Where an upload goes, for whom, and whether it may replace an object there.
pub(super) struct Target<'a> {
    pub(super) bucket: &'a str,
    pub(super) key: &'a str,
    pub(super) owner: &'a Owner,
    pub(super) write: Write,
    /// The store cannot refuse the write: a multipart upload looks again before completing.
    pub(super) looks_before_complete: bool,
}

/// Refuses to go on when the signed-in account is no longer the file's owner (a sign-out or
/// another account's sign-in while the upload ran): the grant in hand is not the owner's.
pub(super) fn check_owner(shared: &Shared, owner: &Owner) -> Result<()> {
    if shared.session.owner().as_ref() == Some(owner) {
        Ok(())
    } else {
        Err(Error::SignedOut)
    }
}

/// Aborts the file's multipart upload (remembering it if the store cannot be reached).
pub(crate) async fn abandon(shared: &Arc<Shared>, row: &FileRow, owner: &Owner) -> Result<()> {
    if let (Some(upload_id), Some(key)) = (&row.upload_id, &row.object_key) {
        release(shared, owner, row.id, key, upload_id).await?;
    }
    let id = row.id;
    shared.db(move |j| j.reset_upload(id)).await
}

/// Aborts multipart upload `upload_id` at `key`, begun for file `id` and no longer needed —
/// or, when the store cannot be told now, journals it to be aborted later.
pub(crate) async fn release(
    shared: &Arc<Shared>,
    owner: &Owner,
    id: i64,
    key: &str,
    upload_id: &str,
) -> Result<()> {
    let Err(err) = shared
        .storage
        .abort(&Who::file(owner, id), key, upload_id)
        .await
    else {
        return Ok(());
    };
    tracing::warn!(error = %err, "could not abort an upload now; will try again later");
    let (owner, key, upload_id) = (owner.clone(), key.to_owned(), upload_id.to_owned());
    shared
        .db(move |j| j.abandon(&owner, &key, &upload_id))
        .await
}

/// Confirms an uploaded file (`row` as the journal has it once uploaded) to the app server as
/// `owner` and records it `Confirmed`.
pub(crate) async fn confirm(shared: &Arc<Shared>, row: FileRow, owner: &Owner) -> Result<()> {
    let (id, upload_id) = (row.id, callback::upload_id(shared, &row));
    let (Some(bucket), Some(key), Some(etag), Some(size)) =
        (row.bucket, row.object_key, row.etag, row.size)
    else {
        return Err(Error::Protocol {
            operation: "confirming the upload",
            detail: "incomplete row".into(),
        });
    };
    if callback::take_recorded(shared, id, &upload_id) {
        // The store's callback made the app server record this upload already.
        return shared
            .grouped(move |j| j.expect_state(id, FileState::Uploaded, FileState::Confirmed))
            .await;
    }
    let confirmation = Confirmation {
        upload_id,
        bucket,
        key,
        size,
        etag,
        checksum: row.checksum,
        name: row.name,
        device: Some(shared.device.clone()),
    };
    check_owner(shared, owner)?;
    let token = shared.session.token()?;
    let api = shared.session.api();
    // A token server takes no confirmations: the upload is recorded on this computer only.
    if api.keeps_history() {
        use super::confirm::{Answer, Confirmations};
        match Confirmations::submit(shared, id, confirmation.clone()).await {
            // Recorded, and journaled with the rest of its batch.
            Answer::Confirmed => return Ok(()),
            Answer::Recorded => {}
            Answer::Refused(err) => return Err(err),
            Answer::Alone => {
                let _turn = shared.confirmations.alone.acquire().await;
                crate::retry::retrying(&shared.events, Some(id), "confirming the upload", || {
                    api.confirm(&token, &confirmation)
                })
                .await?;
            }
        }
    }
    match shared
        .db(move |j| j.expect_state(id, FileState::Uploaded, FileState::Confirmed))
        .await
    {
        // Journaled already, with a batch that settled it at the same time.
        Err(Error::StateChanged { found: "confirmed" }) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_follow_the_design() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size(100 * MIB, 8 * MIB), 8 * MIB);
        assert_eq!(part_size(200_000 * MIB, 8 * MIB), 20 * MIB);
        assert!(part_size(5 * 1024 * 1024 * MIB, 8 * MIB) * 10_000 >= 5 * 1024 * 1024 * MIB);
    }
}
