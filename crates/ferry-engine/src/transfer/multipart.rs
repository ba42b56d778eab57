//! A multipart upload, step by step: reconcile with the store's part list, begin (journaled
//! before any part is sent, strays of a lost answer aborted), send the missing parts a few at a
//! time, and finish (every part there, the file unchanged, the final ETag checked).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use md5::{Digest, Md5};
use tokio::sync::Semaphore;

use super::source::{
    Fingerprint, changed, changed_under, crc64_of, hash_span, md5_of, moved, read_at,
};
use super::upload::{Object, Target, abandon, check_owner, check_stored, part_size, release};
use super::{Shared, callback};
use crate::dialect::same_etag;
use crate::error::{Error, Result};
use crate::journal::{FileRow, Owner, PartRow};
use crate::storage::{Body, Payload, Stored, Who};

pub(super) async fn multipart(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
) -> Result<FileRow> {
    let id = row.id;
    let current = shared
        .db(move |j| j.file(id))
        .await?
        .unwrap_or_else(|| row.clone());
    let plan = Plan::new(
        current
            .part_size
            .unwrap_or_else(|| part_size(print.size, shared.settings().min_part_size)),
        print.size,
    );
    let (upload_id, done) = match reconcile(shared, &current, &plan, target).await? {
        Resumed::Open { upload_id, done } => (upload_id, done),
        Resumed::Completed { etag, expected } => {
            if moved(&row.path, print).await? {
                // The object holds the file as it was: its own, replaced by the next try.
                let key = target.key.to_owned();
                shared.db(move |j| j.stored_stale(id, &key, &etag)).await?;
                return Err(changed(&row.path));
            }
            sent.store(print.size, Ordering::Relaxed);
            return record(shared, row, print, target, etag, &expected).await;
        }
        Resumed::Nothing => (begin(shared, &current, &plan, target).await?, Vec::new()),
    };
    sent.store(done.iter().map(|p| p.size).sum(), Ordering::Relaxed);
    if let Err(err) = send_parts(shared, row, &plan, &done, target, &upload_id, sent).await {
        // Parts are read from disk as they are sent.
        return Err(changed_under(&row.path, print, err).await);
    }
    // Uploads begun but never journaled not swept yet (the sweep failed, or the engine
    // stopped before it): swept before this one completes.
    if let Some(since) = shared
        .db(move |j| j.file(id))
        .await?
        .and_then(|r| r.initiating_at)
    {
        let who = Who::file(target.owner, id);
        sweep(shared, id, &who, target.key, &upload_id, since).await?;
    }
    finish(shared, row, print, &plan, target, &upload_id).await
}

/// How a file is cut into parts.
#[derive(Debug, Clone, Copy)]
struct Plan {
    part_size: u64,
    size: u64,
    count: u32,
}

impl Plan {
    fn new(part_size: u64, size: u64) -> Self {
        Self {
            part_size,
            size,
            count: size.div_ceil(part_size) as u32,
        }
    }

    /// Offset and length of part `n` (from 1).
    fn span(&self, n: u32) -> (u64, u64) {
        let start = u64::from(n - 1) * self.part_size;
        (start, self.part_size.min(self.size - start))
    }
}

/// What the store has of a file's journaled multipart upload.
enum Resumed {
    /// The upload is open: the parts of it that match the file.
    Open {
        upload_id: String,
        done: Vec<PartRow>,
    },
    /// The upload is gone and the file's own object is at the key: a Complete of an earlier
    /// run took effect, and that run stopped before it heard so.
    Completed { etag: String, expected: String },
    /// No usable upload: none yet, the store lost it, or it was begun at another key (then it
    /// is aborted, not left behind).
    Nothing,
}

/// The store is the source of truth for which parts arrived, and whether they were completed.
async fn reconcile(
    shared: &Arc<Shared>,
    current: &FileRow,
    plan: &Plan,
    target: &Target<'_>,
) -> Result<Resumed> {
    let Some(upload_id) = current.upload_id.clone() else {
        return Ok(Resumed::Nothing);
    };
    if current.object_key.as_deref() != Some(target.key) {
        abandon(shared, current, target.owner).await?;
        return Ok(Resumed::Nothing);
    }
    let stored = match shared
        .storage
        .list_parts(&Who::file(target.owner, current.id), target.key, &upload_id)
        .await
    {
        Ok(stored) => stored,
        Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => {
            let at = (target.owner, target.key);
            if let Some(completed) = completed_before(shared, current, plan, at).await? {
                return Ok(completed);
            }
            let id = current.id;
            shared.db(move |j| j.reset_upload(id)).await?;
            return Ok(Resumed::Nothing);
        }
        Err(err) => return Err(err),
    };
    let id = current.id;
    let journaled = shared.db(move |j| j.parts(id)).await?;
    let mut done = Vec::new();
    for part in stored {
        if part.number == 0 || part.number > plan.count || part.size != plan.span(part.number).1 {
            continue;
        }
        let (md5, crc64) = match journaled
            .iter()
            .find(|p| p.number == part.number && same_etag(&p.etag, &part.etag))
        {
            Some(p) if p.crc64.is_some() => (p.md5.clone(), p.crc64),
            // Acknowledged by the store but not journaled (a crash in between), or journaled
            // without its CRC: check the bytes rather than trust them.
            _ => {
                let (offset, len) = plan.span(part.number);
                let bytes = read_at(&current.path, offset, len).await?;
                (hex::encode(md5_of(&bytes)), Some(crc64_of(&bytes)))
            }
        };
        if same_etag(&md5, &part.etag) {
            let part = PartRow {
                number: part.number,
                size: part.size,
                etag: part.etag,
                md5,
                crc64,
            };
            let recorded = part.clone();
            shared.db(move |j| j.record_part(id, &recorded)).await?;
            done.push(part);
        }
    }
    Ok(Resumed::Open { upload_id, done })
}

/// The file's upload, gone from the store, was completed: every part of the plan was journaled
/// and the object at the key has their size and ETag. (A grant that may not look cannot tell;
/// the file is then sent again.)
async fn completed_before(
    shared: &Arc<Shared>,
    current: &FileRow,
    plan: &Plan,
    (owner, key): (&Owner, &str),
) -> Result<Option<Resumed>> {
    let id = current.id;
    let parts = shared.db(move |j| j.parts(id)).await?;
    let planned = (1..=plan.count).all(|n| {
        parts
            .iter()
            .any(|p| p.number == n && p.size == plan.span(n).1)
    });
    if parts.len() as u32 != plan.count || !planned {
        return Ok(None);
    }
    let expected = multipart_etag(&parts);
    let Some(etag) = own_object(shared, id, (owner, key), plan.size, &expected).await? else {
        return Ok(None);
    };
    tracing::info!(
        file_id = id,
        "the upload was completed before the engine stopped"
    );
    Ok(Some(Resumed::Completed { etag, expected }))
}

/// Notes the object at the key of file `row`'s journaled multipart upload as the file's own when
/// that upload was completed before the engine stopped (every part of the size the journal
/// last saw was journaled, and the object holds them): the file as it is now replaces it
/// without asking whose it is. For a file changed under its upload, before the upload and its
/// parts are let go of.
pub(super) async fn note_if_completed(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
) -> Result<()> {
    let (Some(part_size), Some(size), Some(key)) = (row.part_size, row.size, &row.object_key)
    else {
        return Ok(());
    };
    let plan = Plan::new(part_size, size);
    if let Some(Resumed::Completed { etag, .. }) =
        completed_before(shared, row, &plan, (owner, key)).await?
    {
        let (id, key) = (row.id, key.clone());
        shared.db(move |j| j.stored_stale(id, &key, &etag)).await?;
    }
    Ok(())
}

/// The ETag of the object at the key when it holds file `id`'s own bytes (its `size` and the
/// ETag its parts make, `expected`) — another upload of the file made it. `None` when the key
/// holds nothing or something else, or when the grant may not look.
async fn own_object(
    shared: &Arc<Shared>,
    id: i64,
    (owner, key): (&Owner, &str),
    size: u64,
    expected: &str,
) -> Result<Option<String>> {
    match shared.storage.head(&Who::file(owner, id), key).await {
        Ok(Some(head)) if head.size == size && same_etag(&head.etag, expected) => {
            Ok(Some(head.etag))
        }
        Ok(_) | Err(Error::Storage { status: 403, .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The ETag a store gives the object completed from `parts`: the MD5 of their MD5s, and how
/// many there are.
fn multipart_etag(parts: &[PartRow]) -> String {
    let mut md5s = Md5::new();
    for part in parts {
        md5s.update(hex::decode(&part.md5).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5s.finalize()), parts.len())
}

/// Starts a multipart upload and journals it before any part is sent; if the file stopped
/// uploading meanwhile, the new upload is aborted at once. The moment it is begun is noted
/// first, so uploads begun but never journaled — the engine stopped, or the store's answer was
/// lost and the request sent again — are found and aborted here, not left in the store.
async fn begin(
    shared: &Arc<Shared>,
    row: &FileRow,
    plan: &Plan,
    target: &Target<'_>,
) -> Result<String> {
    let id = row.id;
    let since = row
        .initiating_at
        .unwrap_or_else(|| shared.storage.now().unix_timestamp());
    shared.db(move |j| j.initiating(id, since)).await?;
    let who = Who::file(target.owner, id);
    let upload_id = shared.storage.create_multipart(&who, target.key).await?;
    tracing::info!(file_id = id, upload_id = %upload_id, since, "began a multipart upload");
    let (upload, part_size) = (upload_id.clone(), plan.part_size);
    let (bucket, key) = (target.bucket.to_owned(), target.key.to_owned());
    let recorded = shared
        .db(move |j| j.begin_multipart(id, &upload, part_size, &bucket, &key))
        .await;
    if let Err(err) = recorded {
        release(shared, target.owner, id, target.key, &upload_id).await?;
        return Err(err);
    }
    // Looked for now (parts of a stray would be sent in vain beside ours) and again before
    // Complete, when the moment noted is forgotten: a create whose client was killed may still
    // be on its way into the store's records when the first look is made.
    abort_strays(shared, &who, target.key, &upload_id, since).await;
    Ok(upload_id)
}

/// Aborts this key's uploads begun but never journaled (see [`abort_strays`]) and, when that
/// worked, forgets the moment noted before they were begun. Made before an upload completes
/// (after a first look when it was begun); when it fails the moment stays, for the next run
/// that finds the upload journaled.
async fn sweep(
    shared: &Arc<Shared>,
    id: i64,
    who: &Who<'_>,
    key: &str,
    keep: &str,
    since: i64,
) -> Result<()> {
    if abort_strays(shared, who, key, keep, since).await {
        shared.db(move |j| j.swept(id)).await?;
    }
    Ok(())
}

/// Seconds after the upload kept that a stray may be dated: the store dates an upload when it
/// takes the request, and a request whose client was killed can be taken late.
const LATE: i64 = 5;

/// Aborts this key's open uploads begun since `since` (2 s of slack for the clock) and no
/// later than [`LATE`] after `keep`, but for `keep`; whether all were. Failing to is not an error: the caller tries again later.
async fn abort_strays(
    shared: &Arc<Shared>,
    who: &Who<'_>,
    key: &str,
    keep: &str,
    since: i64,
) -> bool {
    let open = match shared.storage.open_uploads(who, key).await {
        Ok(open) => open,
        Err(err) => {
            tracing::warn!(error = %err, "could not list open uploads");
            return false;
        }
    };
    let begun = |u: &crate::dialect::s3::xml::OpenUpload| {
        u.initiated.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|at| at.unix_timestamp())
        })
    };
    // A stray was begun before the upload kept (its answer was lost, then `keep` was
    // begun): uploads begun later at this key are someone else's — another device of the
    // account, another client with its credentials — and are left alone.
    let Some(until) = open.iter().find(|u| u.upload_id == keep).and_then(begun) else {
        tracing::warn!("the upload kept is not among the open ones; strays are looked for later");
        return false;
    };
    let mut all = true;
    for stray in open.iter().filter(|u| u.upload_id != keep) {
        if begun(stray).is_some_and(|at| at >= since - 2 && at <= until + LATE) {
            tracing::info!(upload_id = %stray.upload_id, "aborting an upload begun but never journaled");
            if let Err(err) = shared.storage.abort(who, key, &stray.upload_id).await {
                tracing::warn!(error = %err, "could not abort a stray upload");
                all = false;
            }
        }
    }
    all
}

/// Sends the parts not yet `done`, a few at a time; stops at the first failure (the parts
/// already acknowledged stay for the next attempt).
async fn send_parts(
    shared: &Arc<Shared>,
    row: &FileRow,
    plan: &Plan,
    done: &[PartRow],
    target: &Target<'_>,
    upload_id: &str,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let (key, owner) = (target.key, target.owner);
    let per_file = Arc::new(Semaphore::new(shared.settings().per_file_parts.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for number in (1..=plan.count).filter(|n| !done.iter().any(|p| p.number == *n)) {
        let (offset, len) = plan.span(number);
        let part = PartJob {
            shared: shared.clone(),
            owner: owner.clone(),
            file_id: row.id,
            path: row.path.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            number,
            offset,
            len,
        };
        let per_file = per_file.clone();
        let sent = sent.clone();
        tasks.spawn(async move {
            let _file_slot = per_file.acquire_owned().await.expect("semaphore open");
            let _global_slot = part.shared.parts.acquire().await;
            part.send().await?;
            part.shared.parts.acknowledged(part.len);
            sent.fetch_add(part.len, Ordering::Relaxed);
            Ok::<_, Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tasks.abort_all();
                return Err(err);
            }
            Err(join) if join.is_cancelled() => {}
            Err(join) => {
                return Err(Error::Protocol {
                    operation: "uploading a part",
                    detail: join.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// One part to send.
struct PartJob {
    shared: Arc<Shared>,
    owner: Owner,
    file_id: i64,
    path: std::path::PathBuf,
    key: String,
    upload_id: String,
    number: u32,
    offset: u64,
    len: u64,
}

impl PartJob {
    /// Hashes, sends and journals the part, reading it from disk twice (to hash it, then as
    /// it is sent) rather than holding it; its ETag must be the MD5 of what was hashed.
    async fn send(&self) -> Result<()> {
        let (md5, crc) = hash_span(&self.path, self.offset, self.len).await?;
        let payload = Payload {
            body: Body::Span {
                path: self.path.clone(),
                offset: self.offset,
                len: self.len,
            },
            content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
            progress: None,
            callback: Vec::new(),
            write: None,
        };
        let stored = self
            .shared
            .storage
            .upload_part(
                &Who::file(&self.owner, self.file_id),
                &self.key,
                &self.upload_id,
                self.number,
                payload,
            )
            .await?;
        let md5 = hex::encode(md5);
        check_stored(&stored, &md5, crc)?;
        let (id, part) = (
            self.file_id,
            PartRow {
                number: self.number,
                size: self.len,
                etag: stored.etag,
                md5,
                crc64: Some(crc),
            },
        );
        self.shared.db(move |j| j.record_part(id, &part)).await
    }
}

/// Checks that every part is there and the file did not change, completes the upload, checks
/// the final ETag, and records the file `Uploaded`.
async fn finish(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    plan: &Plan,
    target: &Target<'_>,
    upload_id: &str,
) -> Result<FileRow> {
    let id = row.id;
    let parts = shared.db(move |j| j.parts(id)).await?;
    let total: u64 = parts.iter().map(|p| p.size).sum();
    if parts.len() as u32 != plan.count || total != print.size {
        return Err(Error::Protocol {
            operation: "completing the upload",
            detail: format!(
                "{} of {} parts, {total} of {} bytes",
                parts.len(),
                plan.count,
                print.size
            ),
        });
    }
    if moved(&row.path, print).await? {
        let fresh = shared
            .db(move |j| j.file(id))
            .await?
            .unwrap_or_else(|| row.clone());
        abandon(shared, &fresh, target.owner).await?;
        return Err(changed(&row.path));
    }
    let expected = multipart_etag(&parts);
    let listed: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
    check_owner(shared, target.owner)?;
    let grant = shared
        .storage
        .grant(&Who::file(target.owner, row.id))
        .await?;
    let call = Complete {
        upload_id,
        listed: &listed,
        expected: &expected,
        callback: callback::headers(shared, &grant, row),
    };
    let stored = complete(shared, row, print, target, call).await?;
    check_object(&stored, &expected, &parts)?;
    callback::report(shared, row, stored.callback.as_ref());
    record(shared, row, print, target, stored.etag, &expected).await
}

/// What a Complete sends, and the ETag its object must have.
struct Complete<'a> {
    upload_id: &'a str,
    listed: &'a [(u32, String)],
    expected: &'a str,
    callback: Vec<(String, String)>,
}

/// Completes the upload: what the store stored. Refused for an object at the key — by the
/// store, or by the look before Complete where the store cannot refuse — the object is taken
/// when it holds the file's own bytes, and this upload, not needed any more, is aborted: a
/// Complete sent again after its answer was lost finds what the first one made, or an upload
/// of this file by a run killed before it heard its answer was completed meanwhile.
async fn complete(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    target: &Target<'_>,
    call: Complete<'_>,
) -> Result<Stored> {
    let who = Who::file(target.owner, row.id);
    let free = match target.looks_before_complete {
        true => found_before_complete(shared, row, target).await,
        false => Ok(()),
    };
    let answer = match free {
        Ok(()) => {
            let (listed, callback) = (call.listed, call.callback);
            shared
                .storage
                .complete(
                    &who,
                    target.key,
                    call.upload_id,
                    listed,
                    callback,
                    target.write,
                )
                .await
        }
        Err(refused) => Err(refused),
    };
    let etag = match answer {
        Ok(stored) => return Ok(stored),
        Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => {
            let mut row = row.clone();
            row.size = Some(print.size);
            completed_earlier(shared, &row, target, call.upload_id, call.expected).await?
        }
        Err(err) if crate::conflict::is_exists_refusal(&err) => {
            let expected = call.expected;
            let at = (target.owner, target.key);
            let Some(etag) = own_object(shared, row.id, at, print.size, expected).await? else {
                return Err(err);
            };
            release(shared, target.owner, row.id, target.key, call.upload_id).await?;
            etag
        }
        Err(err) => return Err(err),
    };
    Ok(Stored {
        etag,
        crc64: None,
        callback: None,
    })
}

/// Records the file `Uploaded` as the object its parts made (`etag`, checked against
/// `expected`, the ETag of its parts).
async fn record(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    target: &Target<'_>,
    etag: String,
    expected: &str,
) -> Result<FileRow> {
    let object = Object {
        bucket: target.bucket.to_owned(),
        key: target.key.to_owned(),
        etag,
        checksum: format!("md5-parts:{expected}"),
        size: print.size,
    };
    let (id, recorded, print) = (row.id, object.clone(), print.clone());
    shared
        .db(move |j| j.uploaded(id, &recorded.as_uploaded(&print)))
        .await?;
    Ok(object.onto(row))
}

/// Refuses (as a store would, `412`) to complete over an object that is at the key now.
async fn found_before_complete(
    shared: &Arc<Shared>,
    row: &FileRow,
    target: &Target<'_>,
) -> Result<()> {
    match shared
        .storage
        .head(&Who::file(target.owner, row.id), target.key)
        .await?
    {
        None => Ok(()),
        Some(_) => Err(crate::conflict::object_there(
            "CompleteMultipartUpload",
            "an object was stored at the key while the parts were sent",
        )),
    }
}

/// Checks the object a Complete made: by the CRC-64 of the whole, combined from the parts', when
/// the store answers one (OSS does; its multipart ETag is its own business), by the
/// `md5-of-md5s-N` ETag otherwise.
fn check_object(stored: &Stored, expected_etag: &str, parts: &[PartRow]) -> Result<()> {
    let ours = parts.iter().try_fold(None, |whole: Option<u64>, part| {
        let crc = part.crc64?;
        Some(Some(match whole {
            None => crc,
            Some(before) => {
                crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Xz, before, crc, part.size)
            }
        }))
    });
    let (expected, got) = match (stored.crc64, ours.flatten()) {
        (Some(theirs), Some(ours)) if theirs == ours => return Ok(()),
        (Some(theirs), Some(ours)) => (format!("crc64 {ours}"), format!("crc64 {theirs}")),
        _ if same_etag(&stored.etag, expected_etag) => return Ok(()),
        _ => (expected_etag.to_owned(), stored.etag.clone()),
    };
    Err(Error::IntegrityMismatch { expected, got })
}

/// The store no longer knows the upload being completed: either an earlier Complete succeeded
/// and its answer was lost — then the object is there with the expected size and ETag — or the
/// upload is gone, and the file must start again (the upload id is aborted all the same, so
/// nothing can be left open if the store was wrong).
async fn completed_earlier(
    shared: &Arc<Shared>,
    row: &FileRow,
    target: &Target<'_>,
    upload_id: &str,
    expected: &str,
) -> Result<String> {
    let (id, size) = (row.id, row.size.unwrap_or(0));
    match shared
        .storage
        .head(&Who::file(target.owner, id), target.key)
        .await?
    {
        Some(head) if head.size == size && same_etag(&head.etag, expected) => Ok(head.etag),
        _ => {
            let mut current = row.clone();
            current.upload_id = Some(upload_id.to_owned());
            current.object_key = Some(target.key.to_owned());
            abandon(shared, &current, target.owner).await?;
            Err(Error::UploadLost {
                key: target.key.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::source::{crc64_of, md5_of};
    use super::super::upload::check_stored;
    use super::*;

    fn part(number: u32, data: &[u8], crc: bool) -> PartRow {
        PartRow {
            number,
            size: data.len() as u64,
            etag: hex::encode(md5_of(data)),
            md5: hex::encode(md5_of(data)),
            crc64: crc.then(|| crc64_of(data)),
        }
    }

    fn stored(etag: &str, crc64: Option<u64>) -> Stored {
        Stored {
            etag: etag.to_owned(),
            crc64,
            callback: None,
        }
    }

    #[test]
    fn a_part_is_stored_when_its_etag_and_crc_are_the_bytes_sent() {
        let data = b"part bytes";
        let (md5, crc) = (hex::encode(md5_of(data)), crc64_of(data));
        let upper = format!("\"{}\"", md5.to_ascii_uppercase());
        assert!(check_stored(&stored(&upper, Some(crc)), &md5, crc).is_ok());
        assert!(
            check_stored(&stored(&md5, None), &md5, crc).is_ok(),
            "no CRC: the ETag"
        );
        let wrong_crc = check_stored(&stored(&md5, Some(crc ^ 1)), &md5, crc).unwrap_err();
        assert_eq!(wrong_crc.code(), "integrity");
        let wrong_etag = check_stored(&stored("0bad", Some(crc)), &md5, crc).unwrap_err();
        assert_eq!(wrong_etag.code(), "integrity");
    }

    #[test]
    fn the_object_crc_is_the_parts_crcs_combined() {
        let (a, b) = (vec![1u8; 5000], vec![2u8; 3000]);
        let parts = [part(1, &a, true), part(2, &b, true)];
        let whole = crc64_of(&[a.clone(), b.clone()].concat());
        assert!(check_object(&stored("any-2", Some(whole)), "etag-2", &parts).is_ok());
        let err = check_object(&stored("etag-2", Some(whole ^ 1)), "etag-2", &parts).unwrap_err();
        assert_eq!(
            err.code(),
            "integrity",
            "a wrong CRC is not excused by a right ETag"
        );
    }

    #[test]
    fn without_every_parts_crc_the_etag_decides() {
        let (a, b) = (vec![1u8; 5000], vec![2u8; 3000]);
        let parts = [part(1, &a, true), part(2, &b, false)];
        assert!(check_object(&stored("\"ABC-2\"", Some(7)), "abc-2", &parts).is_ok());
        let err = check_object(&stored("abd-2", Some(7)), "abc-2", &parts).unwrap_err();
        assert_eq!(err.code(), "integrity");
        assert!(check_object(&stored("abc-2", None), "abc-2", &parts[..1]).is_ok());
    }
}
