//! One file's upload: fingerprint, single PUT or multipart (reconciled with the store's part
//! list), final ETag check, then the confirmation to the app server.

use std::io::SeekFrom;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use base64::Engine as _;
use bytes::Bytes;
use ferry_protocol::Confirmation;
use md5::{Digest, Md5};

use super::{Shared, callback};
use crate::dialect::same_etag;
use crate::error::{Error, Result};
use crate::journal::{FileRow, FileState, Owner, Uploaded};
use crate::storage::{Body, Payload, Stored, Who};

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
    blocking(path, fingerprint_now).await
}

/// Runs `read` on `path` on the blocking pool, in one hop (a small file costs a few system
/// calls, and each hop to the pool costs two thread switches).
async fn blocking<T: Send + 'static>(
    path: &Path,
    read: impl FnOnce(&Path) -> std::result::Result<T, Error> + Send + 'static,
) -> Result<T> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || read(&owned))
        .await
        .map_err(|err| Error::Protocol {
            operation: "reading a file",
            detail: err.to_string(),
        })?
}

fn fingerprint_now(path: &Path) -> Result<Fingerprint> {
    Ok(look(path, false)?.0)
}

/// The file's fingerprint and, when it is small enough to be sent from memory
/// ([`IN_MEMORY`]), its bytes — read once, the fingerprint computed from them.
fn look(path: &Path, keep_small: bool) -> Result<(Fingerprint, Option<Bytes>)> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, &e))?;
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
    let mut file = std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
    let whole = keep_small && size <= IN_MEMORY;
    let (sample, bytes) = sampled(&mut file, size, whole).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            changed(path)
        } else {
            file_error(path, &e)
        }
    })?;
    let print = Fingerprint {
        size,
        mtime_ns,
        sample,
    };
    Ok((print, bytes.map(Bytes::from)))
}

/// The sample hash of a file of `size` bytes (first, middle and last 64 KiB with the size)
/// and, when `whole`, its bytes — read once, the hash computed from them. A file that turns
/// out shorter than `size` is `UnexpectedEof`.
fn sampled<R: std::io::Read + std::io::Seek>(
    file: &mut R,
    size: u64,
    whole: bool,
) -> std::io::Result<(String, Option<Vec<u8>>)> {
    let mut bytes = Vec::new();
    if whole {
        read_upto(file, size + 1, &mut bytes)?;
        if bytes.len() as u64 != size {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let mut hasher = Md5::new();
    hasher.update(size.to_le_bytes());
    let mut buffer = Vec::new();
    for offset in [0, size / 2, size.saturating_sub(SAMPLE)] {
        let end = (offset + SAMPLE.min(size)).min(size);
        if whole {
            hasher.update(&bytes[offset as usize..end as usize]);
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        // Every byte of the sample, however the file system hands them out.
        read_upto(file, end - offset, &mut buffer)?;
        hasher.update(&buffer);
    }
    Ok((hex::encode(hasher.finalize()), whole.then_some(bytes)))
}

/// Reads up to `most` bytes into `into` (cleared first), to the end of the file if sooner.
fn read_upto(file: &mut impl std::io::Read, most: u64, into: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    into.clear();
    file.take(most).read_to_end(into).map(|_| ())
}

/// Reads `len` bytes at `offset`; a file that got shorter is an error.
pub(super) async fn read_at(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    blocking(path, move |path| {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| file_error(path, &e))?;
        let mut buffer = vec![0u8; len as usize];
        file.read_exact(&mut buffer).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                changed(path)
            } else {
                file_error(path, &e)
            }
        })?;
        Ok(Bytes::from(buffer))
    })
    .await
}

/// What a failed request whose body was read from disk means: a file rewritten meanwhile —
/// its fingerprint moved, or the store found the bytes were not those hashed a moment before
/// (even a rewrite that kept size and time) — starts again as `file_changed`; anything else
/// is `err` itself.
pub(super) async fn changed_under(path: &Path, print: &Fingerprint, err: Error) -> Error {
    let refused_digest = matches!(
        &err,
        Error::Storage { code, .. } if code == "BadDigest" || code == "InvalidDigest"
    );
    if refused_digest || fingerprint(path).await.is_ok_and(|now| now != *print) {
        return changed(path);
    }
    err
}

pub(super) fn changed(path: &Path) -> Error {
    Error::File {
        path: path.display().to_string(),
        code: "file_changed",
        reason: "the file changed while it was being uploaded; starting again".into(),
    }
}

/// The MD5 and CRC-64 of `len` bytes of `path` from `offset`, in one read of the span on the
/// blocking pool (a block of memory, not the span). A file shorter than that has changed.
pub(super) async fn hash_span(path: &Path, offset: u64, len: u64) -> Result<([u8; 16], u64)> {
    let owned = path.to_owned();
    let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<([u8; 16], u64)> {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::open(&owned)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut file = file.take(len);
        let (mut md5, mut crc) = (
            Md5::new(),
            crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Xz),
        );
        let mut block = vec![0u8; len.min(256 << 10) as usize];
        let mut read = 0u64;
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                break;
            }
            md5.update(&block[..n]);
            crc.update(&block[..n]);
            read += n as u64;
        }
        if read != len {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        Ok((md5.finalize().into(), crc.finalize()))
    })
    .await
    .map_err(|err| Error::Protocol {
        operation: "reading a part",
        detail: err.to_string(),
    })?;
    hashed.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            changed(path)
        } else {
            file_error(path, &e)
        }
    })
}

pub(super) fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// Files up to this size are read whole for their one PUT; bigger ones are sent from disk (128
/// small files in flight hold 8 MiB at most).
const IN_MEMORY: u64 = 64 * 1024;

/// The body of a one-PUT upload of `size` bytes, its MD5 and CRC-64: the bytes themselves for
/// a small file (read with its fingerprint), else the file sent from disk after a first read
/// to hash it — so many files in flight hold little memory.
async fn one_put_body(
    path: &Path,
    size: u64,
    small: Option<Bytes>,
) -> Result<(Body, [u8; 16], u64)> {
    if let Some(bytes) = small {
        let (md5, crc) = (md5_of(&bytes), crc64_of(&bytes));
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
    let (print, small) = note_fingerprint(shared, row, owner).await?;
    let grant = shared.storage.grant(&Who::file(owner, row.id)).await?;
    check_owner(shared, owner)?;
    let key = format!("{}{}", grant.prefix, row.key);
    inside_grant(&grant, &key, &row.path)?;
    let target = Target {
        bucket: &grant.bucket,
        key: &key,
        owner,
    };
    if print.size >= shared.settings.single_put_threshold {
        let _big_slot = shared.big_files.clone().acquire_owned().await;
        return super::multipart::multipart(shared, row, &print, &target, sent).await;
    }
    let object = put_whole(shared, row, &print, small, &target, sent, &grant).await?;
    // The file must still be what was hashed: checked in the hop that records it.
    let (id, path, recorded) = (row.id, row.path.clone(), object.clone());
    shared
        .db(move |j| {
            if fingerprint_now(&path)? != print {
                return Err(changed(&path));
            }
            j.uploaded(id, &recorded.as_uploaded())
        })
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
) -> Result<(Fingerprint, Option<Bytes>)> {
    let (id, path, open) = (row.id, row.path.clone(), row.upload_id.is_some());
    let known = (row.size, row.mtime_ns, row.sample.clone());
    let (print, small, stale) = shared
        .db(move |j| {
            let (print, small) = look(&path, true)?;
            let seen = (
                Some(print.size),
                Some(print.mtime_ns),
                Some(print.sample.clone()),
            );
            let stale = open && known != seen;
            if !stale {
                j.set_fingerprint(id, print.size, print.mtime_ns, &print.sample)?;
            }
            Ok((print, small, stale))
        })
        .await?;
    if stale {
        tracing::info!(file = %row.path.display(), "the file changed since its upload began; starting again");
        abandon(shared, row, owner).await?;
        let found = print.clone();
        shared
            .db(move |j| j.set_fingerprint(id, found.size, found.mtime_ns, &found.sample))
            .await?;
    }
    Ok((print, small))
}

/// Sends the file in one PUT and checks what the store says it stored.
async fn put_whole(
    shared: &Arc<Shared>,
    row: &FileRow,
    print: &Fingerprint,
    small: Option<Bytes>,
    target: &Target<'_>,
    sent: &Arc<AtomicU64>,
    grant: &ferry_protocol::Grant,
) -> Result<Object> {
    let path = row.path.as_path();
    let (body, md5, crc) = one_put_body(path, print.size, small).await?;
    let payload = Payload {
        body,
        content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
        progress: Some(sent.clone()),
        callback: callback::headers(shared, grant, row),
    };
    let who = Who::file(target.owner, row.id);
    let stored = match shared.storage.put_object(&who, target.key, payload).await {
        Ok(stored) => stored,
        Err(err) => return Err(changed_under(path, print, err).await),
    };
    let expected = hex::encode(md5);
    check_stored(&stored, &expected, crc)?;
    callback::report(shared, row.id, stored.callback.as_ref());
    Ok(Object {
        bucket: target.bucket.to_owned(),
        key: target.key.to_owned(),
        etag: stored.etag,
        checksum: format!("md5:{expected}"),
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
    pub(super) fn as_uploaded(&self) -> Uploaded<'_> {
        Uploaded {
            bucket: &self.bucket,
            key: &self.key,
            etag: &self.etag,
            checksum: &self.checksum,
            size: self.size,
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

/// The CRC-64 some stores answer for what they stored (OSS's `x-oss-hash-crc64ecma`).
pub(super) fn crc64_of(bytes: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, bytes)
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

/// Where a multipart upload goes and for whom.
pub(super) struct Target<'a> {
    pub(super) bucket: &'a str,
    pub(super) key: &'a str,
    pub(super) owner: &'a Owner,
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

/// Confirms an uploaded file (`row` as the journal has it once uploaded) to the app server as
/// `owner` and records it `Confirmed`.
pub(crate) async fn confirm(shared: &Arc<Shared>, row: FileRow, owner: &Owner) -> Result<()> {
    let id = row.id;
    let (Some(bucket), Some(key), Some(etag), Some(size)) =
        (row.bucket, row.object_key, row.etag, row.size)
    else {
        return Err(Error::Protocol {
            operation: "confirming the upload",
            detail: "incomplete row".into(),
        });
    };
    if callback::take_recorded(shared, id) {
        // The store's callback made the app server record this upload already.
        return shared
            .db(move |j| j.expect_state(id, FileState::Uploaded, FileState::Confirmed))
            .await;
    }
    let confirmation = Confirmation {
        upload_id: callback::upload_id(shared, row.id),
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

    #[test]
    fn a_small_file_read_whole_has_the_fingerprint_of_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let k = 1024;
        for size in [
            0,
            1,
            64 * k - 1,
            64 * k,
            100 * k,
            128 * k + 1,
            256 * k,
            256 * k + 1,
        ] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            let (whole, kept) = look(&path, true).unwrap();
            let (sampled, none) = look(&path, false).unwrap();
            assert_eq!(whole, sampled, "size {size}");
            assert!(none.is_none());
            match size as u64 <= IN_MEMORY {
                true => assert_eq!(kept.as_deref(), Some(&bytes[..]), "size {size}"),
                false => assert!(kept.is_none(), "size {size}"),
            }
        }
    }

    /// A reader that hands out one byte per read, as some network file systems do.
    struct Dribble(std::io::Cursor<Vec<u8>>);

    impl std::io::Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let one = buf.len().min(1);
            self.0.read(&mut buf[..one])
        }
    }

    impl std::io::Seek for Dribble {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.0.seek(to)
        }
    }

    #[test]
    fn a_file_system_that_reads_a_byte_at_a_time_gives_the_same_fingerprint() {
        for size in [0u64, 1, 70_000, 200_000] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
            let plain = sampled(&mut std::io::Cursor::new(bytes.clone()), size, false).unwrap();
            let dribbled = sampled(
                &mut Dribble(std::io::Cursor::new(bytes.clone())),
                size,
                false,
            );
            assert_eq!(dribbled.unwrap(), plain, "size {size}");
            let whole = sampled(
                &mut Dribble(std::io::Cursor::new(bytes.clone())),
                size,
                true,
            );
            let (sample, kept) = whole.unwrap();
            assert_eq!(sample, plain.0, "size {size}");
            assert_eq!(kept.as_deref(), Some(&bytes[..]));
        }
        // Shorter than its size says: changed under us.
        let short = sampled(&mut std::io::Cursor::new(vec![1u8; 10]), 11, true).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
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
