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
use crate::journal::{FileRow, PartRow};
use crate::storage::Payload;

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

/// Uploads `row` to the store and records it `Uploaded`.
pub(crate) async fn upload(
    shared: &Arc<Shared>,
    row: &FileRow,
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
        abandon(shared, row).await?;
    }
    shared
        .journal
        .set_fingerprint(row.id, print.size, print.mtime_ns, &print.sample)?;
    let grant = shared.storage.grant().await?;
    let key = format!("{}{}", grant.prefix, row.key);
    if print.size < shared.settings.single_put_threshold {
        let bytes = read_at(path, 0, print.size).await?;
        let md5 = md5_of(&bytes);
        let payload = Payload {
            bytes,
            content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
            progress: Some(progress(sent)),
        };
        let etag = shared.storage.put_object(&key, payload).await?;
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
        shared.journal.uploaded(
            row.id,
            &grant.bucket,
            &key,
            &etag,
            &format!("md5:{expected}"),
            print.size,
        )?;
        return Ok(());
    }
    multipart(shared, row, &print, &grant.bucket, &key, sent).await
}

fn progress(sent: &Arc<AtomicU64>) -> Arc<dyn Fn(u64) + Send + Sync> {
    let sent = sent.clone();
    Arc::new(move |n| {
        sent.fetch_add(n, Ordering::Relaxed);
    })
}

/// Aborts the file's multipart upload (remembering it if the store cannot be reached).
pub(crate) async fn abandon(shared: &Arc<Shared>, row: &FileRow) -> Result<()> {
    if let (Some(upload_id), Some(key)) = (&row.upload_id, &row.object_key)
        && let Err(err) = shared.storage.abort(key, upload_id).await
    {
        tracing::warn!(error = %err, "could not abort an upload now; will try again later");
        shared.journal.abandon(key, upload_id)?;
    }
    shared.journal.reset_upload(row.id)
}

async fn multipart(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    bucket: &str,
    key: &str,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    let path = row.path.as_path();
    let current = shared.journal.file(row.id)?.unwrap_or_else(|| row.clone());
    let part_size = current
        .part_size
        .unwrap_or_else(|| part_size(print.size, shared.settings.min_part_size));
    let count = print.size.div_ceil(part_size) as u32;
    let span = |n: u32| {
        let start = u64::from(n - 1) * part_size;
        (start, part_size.min(print.size - start))
    };

    // Reconcile with the store: it is the source of truth for which parts arrived.
    let mut upload_id = current
        .upload_id
        .clone()
        .filter(|_| current.object_key.as_deref() == Some(key));
    let mut done: Vec<PartRow> = Vec::new();
    if let Some(id) = &upload_id {
        match shared.storage.list_parts(key, id).await {
            Ok(stored) => {
                let journal = shared.journal.parts(row.id)?;
                for part in stored {
                    if part.number == 0 || part.number > count || part.size != span(part.number).1 {
                        continue;
                    }
                    let md5 = match journal
                        .iter()
                        .find(|p| p.number == part.number && p.etag == part.etag)
                    {
                        Some(p) => p.md5.clone(),
                        // Acknowledged by the store but not journaled (a crash in between):
                        // check the bytes rather than trust them.
                        None => {
                            let (offset, len) = span(part.number);
                            hex::encode(md5_of(&read_at(path, offset, len).await?))
                        }
                    };
                    if md5 == part.etag {
                        let row_part = PartRow {
                            number: part.number,
                            size: part.size,
                            etag: part.etag,
                            md5,
                        };
                        shared.journal.record_part(row.id, &row_part)?;
                        done.push(row_part);
                    }
                }
            }
            Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => {
                shared.journal.reset_upload(row.id)?;
                upload_id = None;
            }
            Err(err) => return Err(err),
        }
    }
    let upload_id = match upload_id {
        Some(id) => id,
        None => {
            let id = shared.storage.create_multipart(key).await?;
            shared
                .journal
                .begin_multipart(row.id, &id, part_size, bucket, key)?;
            id
        }
    };
    let already: u64 = done.iter().map(|p| p.size).sum();
    sent.store(already, Ordering::Relaxed);

    let per_file = Arc::new(Semaphore::new(shared.settings.per_file_parts.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for number in (1..=count).filter(|n| !done.iter().any(|p| p.number == *n)) {
        let (offset, len) = span(number);
        let shared = shared.clone();
        let per_file = per_file.clone();
        let path = path.to_owned();
        let key = key.to_owned();
        let upload_id = upload_id.clone();
        let sent = sent.clone();
        let file_id = row.id;
        tasks.spawn(async move {
            let _file_slot = per_file.acquire_owned().await.expect("semaphore open");
            let _global_slot = shared
                .parts
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            let bytes = read_at(&path, offset, len).await?;
            let md5 = md5_of(&bytes);
            let payload = Payload {
                bytes,
                content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
                progress: None,
            };
            let etag = shared
                .storage
                .upload_part(&key, &upload_id, number, payload)
                .await?;
            let md5 = hex::encode(md5);
            if etag != md5 {
                return Err(Error::IntegrityMismatch {
                    expected: md5,
                    got: etag,
                });
            }
            shared.journal.record_part(
                file_id,
                &PartRow {
                    number,
                    size: len,
                    etag,
                    md5,
                },
            )?;
            sent.fetch_add(len, Ordering::Relaxed);
            Ok::<_, Error>(())
        });
    }
    // Stop at the first failure; the parts already acknowledged stay for the next attempt.
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

    let parts = shared.journal.parts(row.id)?;
    let total: u64 = parts.iter().map(|p| p.size).sum();
    if parts.len() as u32 != count || total != print.size {
        return Err(Error::Protocol {
            operation: "completing the upload",
            detail: format!(
                "{} of {count} parts, {total} of {} bytes",
                parts.len(),
                print.size
            ),
        });
    }
    if fingerprint(path).await? != *print {
        let fresh = shared.journal.file(row.id)?.unwrap_or_else(|| row.clone());
        abandon(shared, &fresh).await?;
        return Err(changed(path));
    }
    let mut md5s = Md5::new();
    for part in &parts {
        md5s.update(hex::decode(&part.md5).unwrap_or_default());
    }
    let expected = format!("{}-{count}", hex::encode(md5s.finalize()));
    let listed: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
    let etag = match shared.storage.complete(key, &upload_id, &listed).await {
        Ok(etag) => etag,
        // Completed by an earlier attempt whose answer was lost.
        Err(Error::Storage { code, .. }) if code == "NoSuchUpload" => expected.clone(),
        Err(err) => return Err(err),
    };
    if etag != expected {
        return Err(Error::IntegrityMismatch {
            expected,
            got: etag,
        });
    }
    shared.journal.uploaded(
        row.id,
        bucket,
        key,
        &etag,
        &format!("md5-parts:{expected}"),
        print.size,
    )
}

/// Confirms an uploaded file to the app server and records it `Confirmed`.
pub(crate) async fn confirm(shared: &Arc<Shared>, id: i64) -> Result<()> {
    let row = shared.journal.file(id)?.ok_or(Error::Protocol {
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
    let token = shared.session.token()?;
    shared.session.api().confirm(&token, &confirmation).await?;
    shared
        .journal
        .set_state(id, crate::journal::FileState::Confirmed)
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
