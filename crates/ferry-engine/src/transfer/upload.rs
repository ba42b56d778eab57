//! One file's upload: fingerprint, single PUT or multipart (reconciled with the store's part
//! list), final ETag check, then the confirmation to the app server.

use std::io::SeekFrom;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use ferry_protocol::Confirmation;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Semaphore;

use super::Shared;
use crate::error::{Error, Result};
use crate::journal::{FileRow, FileState, Owner, PartRow, Uploaded};
use crate::storage::{Payload, Who};

/// What a file looked like: size, modification time, and a hash of sampled bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) sample: String,
}

const SAMPLE: u64 = 64 * 1024;

fn file_error(path: &Path, err: &std::io::Error) -> Error {
    let (code, reason) = match err.kind() {
        std::io::ErrorKind::NotFound => ("file_missing", "the file no longer exists".to_owned()),
        std::io::ErrorKind::PermissionDenied => ("file_unreadable", "permission denied".to_owned()),
        _ => ("file_unreadable", err.to_string()),
    };
    Error::File {
        path: path.display().to_string(),
        code,
        reason,
    }
}

/// Reads the fingerprint: first, middle and last 64 KiB hashed with the size.
pub(crate) async fn fingerprint(path: &Path) -> Result<Fingerprint> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| file_error(path, &e))?;
    if !meta.is_file() {
        return Err(Error::File {
            path: path.display().to_string(),
            code: "not_a_file",
            reason: "not a regular file".into(),
        });
    }
    let size = meta.len();
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| file_error(path, &e))?;
    let mut hasher = Md5::new();
    hasher.update(size.to_le_bytes());
    let mut buffer = vec![0u8; SAMPLE as usize];
    for offset in [0, size / 2, size.saturating_sub(SAMPLE)] {
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| file_error(path, &e))?;
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| file_error(path, &e))?;
        hasher.update(&buffer[..n]);
    }
    Ok(Fingerprint {
        size,
        mtime_ns,
        sample: hex::encode(hasher.finalize()),
    })
}

/// Reads `len` bytes at `offset`; a file that got shorter is an error.
async fn read_at(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| file_error(path, &e))?;
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| file_error(path, &e))?;
    let mut buffer = vec![0u8; len as usize];
    file.read_exact(&mut buffer).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            changed(path)
        } else {
            file_error(path, &e)
        }
    })?;
    Ok(Bytes::from(buffer))
}

fn changed(path: &Path) -> Error {
    Error::File {
        path: path.display().to_string(),
        code: "file_changed",
        reason: "the file changed while it was being uploaded; starting again".into(),
    }
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// Part size for a file: at least the minimum, and few enough parts for S3's 10 000 limit.
pub fn part_size(size: u64, min: u64) -> u64 {
    min.max(size.div_ceil(10_000))
}

/// Uploads `row` to the store for `owner` and records it `Uploaded`.
pub(crate) async fn upload(
    shared: &Arc<Shared>,
    row: &FileRow,
    owner: &Owner,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let path = row.path.as_path();
    let print = fingerprint(path).await?;
    let known = (row.size, row.mtime_ns, row.sample.as_deref());
    if row.upload_id.is_some()
        && known
            != (
                Some(print.size),
                Some(print.mtime_ns),
                Some(print.sample.as_str()),
            )
    {
        tracing::info!(file = %path.display(), "the file changed since its upload began; starting again");
        abandon(shared, row, owner).await?;
    }
    let (id, found) = (row.id, print.clone());
    shared
        .db(move |j| j.set_fingerprint(id, found.size, found.mtime_ns, &found.sample))
        .await?;
    let grant = shared.storage.grant(&Who::file(owner, row.id)).await?;
    check_owner(shared, owner)?;
    let key = format!("{}{}", grant.prefix, row.key);
    if print.size < shared.settings.single_put_threshold {
        let bytes = read_at(path, 0, print.size).await?;
        let md5 = md5_of(&bytes);
        let payload = Payload {
            bytes,
            content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
            progress: Some(progress(sent)),
        };
        let etag = shared
            .storage
            .put_object(&Who::file(owner, row.id), &key, payload)
            .await?;
        let expected = hex::encode(md5);
        if etag != expected {
            return Err(Error::IntegrityMismatch {
                expected,
                got: etag,
            });
        }
        if fingerprint(path).await? != print {
            return Err(changed(path));
        }
        let (id, bucket, size) = (row.id, grant.bucket.clone(), print.size);
        let checksum = format!("md5:{expected}");
        shared
            .db(move |j| {
                let object = Uploaded {
                    bucket: &bucket,
                    key: &key,
                    etag: &etag,
                    checksum: &checksum,
                    size,
                };
                j.uploaded(id, &object)
            })
            .await?;
        return Ok(());
    }
    let target = Target {
        bucket: &grant.bucket,
        key: &key,
        owner,
    };
    multipart(shared, row, &print, &target, sent).await
}

/// Where a multipart upload goes and for whom.
struct Target<'a> {
    bucket: &'a str,
    key: &'a str,
    owner: &'a Owner,
}

/// Refuses to go on when the signed-in account is no longer the file's owner (a sign-out or
/// another account's sign-in while the upload ran): the grant in hand is not the owner's.
fn check_owner(shared: &Shared, owner: &Owner) -> Result<()> {
    if shared.session.owner().as_ref() == Some(owner) {
        Ok(())
    } else {
        Err(Error::SignedOut)
    }
}

fn progress(sent: &Arc<AtomicU64>) -> Arc<dyn Fn(u64) + Send + Sync> {
    let sent = sent.clone();
    Arc::new(move |n| {
        sent.fetch_add(n, Ordering::Relaxed);
    })
}

/// Aborts the file's multipart upload (remembering it if the store cannot be reached).
pub(crate) async fn abandon(shared: &Arc<Shared>, row: &FileRow, owner: &Owner) -> Result<()> {
    if let (Some(upload_id), Some(key)) = (&row.upload_id, &row.object_key)
        && let Err(err) = shared
            .storage
            .abort(&Who::file(owner, row.id), key, upload_id)
            .await
    {
        tracing::warn!(error = %err, "could not abort an upload now; will try again later");
        let (owner, key, upload_id) = (owner.clone(), key.clone(), upload_id.clone());
        shared
            .db(move |j| j.abandon(&owner, &key, &upload_id))
            .await?;
    }
    let id = row.id;
    shared.db(move |j| j.reset_upload(id)).await
}

async fn multipart(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let id = row.id;
    let current = shared
        .db(move |j| j.file(id))
        .await?
        .unwrap_or_else(|| row.clone());
    let plan = Plan::new(
        current
            .part_size
            .unwrap_or_else(|| part_size(print.size, shared.settings.min_part_size)),
        print.size,
    );
    let (upload_id, done) = match reconcile(shared, &current, &plan, target).await? {
        Some(found) => found,
        None => (begin(shared, row.id, &plan, target).await?, Vec::new()),
    };
    sent.store(done.iter().map(|p| p.size).sum(), Ordering::Relaxed);
    send_parts(shared, row, &plan, &done, target, &upload_id, sent).await?;
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

/// The store is the source of truth for which parts arrived: the open upload's parts that
/// match the file, or `None` when there is no usable upload (none yet, the store lost it, or it
/// was begun at another key — then it is aborted, not left behind).
async fn reconcile(
    shared: &Arc<Shared>,
    current: &FileRow,
    plan: &Plan,
    target: &Target<'_>,
) -> Result<Option<(String, Vec<PartRow>)>> {
    let Some(upload_id) = current.upload_id.clone() else {
        return Ok(None);
    };
    if current.object_key.as_deref() != Some(target.key) {
        abandon(shared, current, target.owner).await?;
        return Ok(None);
    }
    let stored = match shared
        .storage
        .list_parts(&Who::file(target.owner, current.id), target.key, &upload_id)
        .await
    {
        Ok(stored) => stored,
        Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => {
            let id = current.id;
            shared.db(move |j| j.reset_upload(id)).await?;
            return Ok(None);
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
        let md5 = match journaled
            .iter()
            .find(|p| p.number == part.number && p.etag == part.etag)
        {
            Some(p) => p.md5.clone(),
            // Acknowledged by the store but not journaled (a crash in between): check the
            // bytes rather than trust them.
            None => {
                let (offset, len) = plan.span(part.number);
                hex::encode(md5_of(&read_at(&current.path, offset, len).await?))
            }
        };
        if md5 == part.etag {
            let part = PartRow {
                number: part.number,
                size: part.size,
                etag: part.etag,
                md5,
            };
            let recorded = part.clone();
            shared.db(move |j| j.record_part(id, &recorded)).await?;
            done.push(part);
        }
    }
    Ok(Some((upload_id, done)))
}

/// Starts a multipart upload and journals it before any part is sent; if the file stopped
/// uploading meanwhile, the new upload is aborted at once.
async fn begin(shared: &Arc<Shared>, id: i64, plan: &Plan, target: &Target<'_>) -> Result<String> {
    let upload_id = shared
        .storage
        .create_multipart(&Who::file(target.owner, id), target.key)
        .await?;
    let (upload, part_size) = (upload_id.clone(), plan.part_size);
    let (bucket, key) = (target.bucket.to_owned(), target.key.to_owned());
    let recorded = shared
        .db(move |j| j.begin_multipart(id, &upload, part_size, &bucket, &key))
        .await;
    if let Err(err) = recorded {
        if let Err(abort) = shared
            .storage
            .abort(&Who::file(target.owner, id), target.key, &upload_id)
            .await
        {
            tracing::warn!(error = %abort, "could not abort an unneeded upload; will try later");
            let (owner, key) = (target.owner.clone(), target.key.to_owned());
            shared
                .db(move |j| j.abandon(&owner, &key, &upload_id))
                .await?;
        }
        return Err(err);
    }
    Ok(upload_id)
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
    let per_file = Arc::new(Semaphore::new(shared.settings.per_file_parts.max(1)));
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
            let _global_slot = part.shared.parts.clone().acquire_owned().await;
            part.send().await?;
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
    /// Reads, sends and journals the part; its ETag must be the MD5 of what was read.
    async fn send(&self) -> Result<()> {
        let bytes = read_at(&self.path, self.offset, self.len).await?;
        let md5 = md5_of(&bytes);
        let payload = Payload {
            bytes,
            content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
            progress: None,
        };
        let etag = self
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
        if etag != md5 {
            return Err(Error::IntegrityMismatch {
                expected: md5,
                got: etag,
            });
        }
        let (id, part) = (
            self.file_id,
            PartRow {
                number: self.number,
                size: self.len,
                etag,
                md5,
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
) -> Result<()> {
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
    if fingerprint(&row.path).await? != *print {
        let fresh = shared
            .db(move |j| j.file(id))
            .await?
            .unwrap_or_else(|| row.clone());
        abandon(shared, &fresh, target.owner).await?;
        return Err(changed(&row.path));
    }
    let mut md5s = Md5::new();
    for part in &parts {
        md5s.update(hex::decode(&part.md5).unwrap_or_default());
    }
    let expected = format!("{}-{}", hex::encode(md5s.finalize()), plan.count);
    let listed: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
    check_owner(shared, target.owner)?;
    let etag = match shared
        .storage
        .complete(
            &Who::file(target.owner, row.id),
            target.key,
            upload_id,
            &listed,
        )
        .await
    {
        Ok(etag) => etag,
        Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => {
            let mut row = row.clone();
            row.size = Some(print.size);
            completed_earlier(shared, &row, target, upload_id, &expected).await?
        }
        Err(err) => return Err(err),
    };
    if etag != expected {
        return Err(Error::IntegrityMismatch {
            expected,
            got: etag,
        });
    }
    let (bucket, key, size) = (target.bucket.to_owned(), target.key.to_owned(), print.size);
    let checksum = format!("md5-parts:{expected}");
    shared
        .db(move |j| {
            let object = Uploaded {
                bucket: &bucket,
                key: &key,
                etag: &etag,
                checksum: &checksum,
                size,
            };
            j.uploaded(id, &object)
        })
        .await
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
        Some(head) if head.size == size && head.etag == expected => Ok(head.etag),
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

/// Confirms an uploaded file to the app server as `owner` and records it `Confirmed`.
pub(crate) async fn confirm(shared: &Arc<Shared>, id: i64, owner: &Owner) -> Result<()> {
    let row = shared
        .db(move |j| j.file(id))
        .await?
        .ok_or(Error::Protocol {
            operation: "confirming the upload",
            detail: "the file left the journal".into(),
        })?;
    let (Some(bucket), Some(key), Some(etag), Some(size)) =
        (row.bucket, row.object_key, row.etag, row.size)
    else {
        return Err(Error::Protocol {
            operation: "confirming the upload",
            detail: "incomplete row".into(),
        });
    };
    let confirmation = Confirmation {
        upload_id: format!("{}-{}", shared.device_id, row.id),
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
    crate::retry::retrying(&shared.events, Some(id), "confirming the upload", || {
        api.confirm(&token, &confirmation)
    })
    .await?;
    shared
        .db(move |j| j.expect_state(id, FileState::Uploaded, FileState::Confirmed))
        .await
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

    #[tokio::test]
    async fn fingerprints_see_size_and_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 300_000]).unwrap();
        let a = fingerprint(&path).await.unwrap();
        let mut bytes = vec![1u8; 300_000];
        bytes[150_000] = 2;
        std::fs::write(&path, &bytes).unwrap();
        let b = fingerprint(&path).await.unwrap();
        assert_ne!(a.sample, b.sample);
        assert_eq!(a.size, b.size);
        let missing = fingerprint(&dir.path().join("nope")).await.unwrap_err();
        assert_eq!(missing.code(), "file_missing");
        assert_eq!(
            fingerprint(dir.path()).await.unwrap_err().code(),
            "not_a_file"
        );
    }
}
