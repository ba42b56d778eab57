//! The file being uploaded, as read from disk: its fingerprint (size, time and sampled bytes),
//! a small file's bytes and their MD5 read with it, the hashes of a span, and what a failed read or a
//! refused digest says about the file — it changed, or could not be read.

use std::io::SeekFrom;
use std::path::Path;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::error::{Error, Result};

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

/// Reads the fingerprint: first, middle and last 64 KiB hashed with the size (a file no
/// bigger than 64 KiB: its bytes' MD5).
async fn fingerprint(path: &Path) -> Result<Fingerprint> {
    blocking(path, fingerprint_now).await
}

/// Whether the file at `path` holds exactly the bytes of an object of `size` whose ETag is
/// `etag`: the MD5 of its bytes, as a store gives an object stored in one PUT (an ETag made
/// from parts, `…-N`, cannot tell, and is `false`). The file is read only when the sizes
/// agree; one that cannot be read holds nothing.
pub(crate) async fn holds(path: &Path, size: u64, etag: &str) -> bool {
    if etag.contains('-') {
        return false;
    }
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() && meta.len() == size => {}
        _ => return false,
    }
    hash_span(path, 0, size)
        .await
        .is_ok_and(|(md5, _)| crate::dialect::same_etag(etag, &hex::encode(md5)))
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

/// A file small enough to be sent from memory ([`IN_MEMORY`]): its bytes and their MD5, both
/// from the one read that made its fingerprint.
#[derive(Debug, Clone)]
pub(super) struct Small {
    pub(super) bytes: Bytes,
    pub(super) md5: [u8; 16],
}

/// The file's fingerprint and, when it is small enough to be sent from memory, its bytes —
/// read once, the fingerprint and the bytes' MD5 computed from them.
pub(super) fn look(path: &Path, keep_small: bool) -> Result<(Fingerprint, Option<Small>)> {
    let (size, mtime_ns, mut file) = opened(path)?;
    let whole = keep_small && size <= IN_MEMORY;
    let (sample, small) = sampled(&mut file, size, whole).map_err(|e| {
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
    Ok((print, small))
}

/// Whether the file at `path` is still the one `print` describes. A file sent from memory
/// (`sent`, its bytes) is compared byte for byte — size and time first — which says as much
/// as its samples' hash and costs less than hashing them again.
pub(super) fn unchanged(path: &Path, print: &Fingerprint, sent: Option<&[u8]>) -> Result<bool> {
    let Some(sent) = sent else {
        return Ok(fingerprint_now(path)? == *print);
    };
    let (size, mtime_ns, mut file) = opened(path)?;
    if size != print.size || mtime_ns != print.mtime_ns {
        return Ok(false);
    }
    let mut now = Vec::new();
    read_upto(&mut file, size + 1, &mut now).map_err(|e| file_error(path, &e))?;
    Ok(now == sent)
}

/// The regular file at `path`, opened, with its size and modification time.
fn opened(path: &Path) -> Result<(u64, i64, std::fs::File)> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, &e))?;
    if !meta.is_file() {
        return Err(Error::File {
            path: path.display().to_string(),
            code: "not_a_file",
            reason: "not a regular file".into(),
        });
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let file = std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
    Ok((meta.len(), mtime_ns, file))
}

/// The sample hash of a file of `size` bytes and, when `whole`, its bytes with their MD5. A
/// file no bigger than a sample is read whole either way and its sample hash is its bytes'
/// MD5 (one pass: a small file sent from memory takes its Content-MD5 from it) and one that
/// turns out shorter or longer than `size` is `UnexpectedEof`; a bigger one hashes its first,
/// middle and last 64 KiB with the size (unchanged on 2026-11-29: a journaled sample of a file
/// being sent in parts must still agree after an update).
fn sampled<R: std::io::Read + std::io::Seek>(
    file: &mut R,
    size: u64,
    whole: bool,
) -> std::io::Result<(String, Option<Small>)> {
    if size <= SAMPLE {
        let mut bytes = Vec::new();
        read_upto(file, size + 1, &mut bytes)?;
        if bytes.len() as u64 != size {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let md5 = md5_of(&bytes);
        let small = whole.then(|| Small {
            bytes: Bytes::from(bytes),
            md5,
        });
        return Ok((hex::encode(md5), small));
    }
    let mut hasher = Md5::new();
    hasher.update(size.to_le_bytes());
    let mut buffer = Vec::new();
    for offset in [0, size / 2, size - SAMPLE] {
        let end = (offset + SAMPLE).min(size);
        file.seek(SeekFrom::Start(offset))?;
        // Every byte of the sample, however the file system hands them out.
        read_upto(file, end - offset, &mut buffer)?;
        hasher.update(&buffer);
    }
    Ok((hex::encode(hasher.finalize()), None))
}

/// Reads up to `most` bytes into `into` (cleared first), to the end of the file if sooner.
/// Room for them is made first (callers ask for a sample or a small file's bytes): into an
/// empty vector, `read_to_end` reads 32 bytes, then twice as many each time — seven reads
/// for 1 KiB, where two do (the bytes, then the end; a few more for 64 KiB).
fn read_upto(file: &mut impl std::io::Read, most: u64, into: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    into.clear();
    into.reserve(most.min(SAMPLE.max(IN_MEMORY) + 1) as usize);
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
    if refused_digest || moved(path, print).await.unwrap_or(false) {
        return changed(path);
    }
    err
}

/// Whether the file at `path` is no longer the one `print` describes: its fingerprint moved,
/// or it was found changing as it was read (a small file, read whole, whose length is not the
/// size it had a moment before). A file that cannot be read is the error.
pub(super) async fn moved(path: &Path, print: &Fingerprint) -> Result<bool> {
    match fingerprint(path).await {
        Ok(now) => Ok(now != *print),
        Err(Error::File {
            code: "file_changed",
            ..
        }) => Ok(true),
        Err(err) => Err(err),
    }
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
    // Made here, on the async threads (see `storage::BLOCK`).
    let mut block = vec![0u8; len.min(crate::storage::BLOCK as u64) as usize];
    let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<([u8; 16], u64)> {
        use std::io::{Read, Seek};
        let mut file = std::fs::File::open(&owned)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut file = file.take(len);
        let (mut md5, mut crc) = (
            Md5::new(),
            crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Xz),
        );
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

// A file kept in memory is one whose sample hash is its bytes' MD5 (see `sampled`).
const _: () = assert!(IN_MEMORY <= SAMPLE);

/// The CRC-64 some stores answer for what they stored (OSS's `x-oss-hash-crc64ecma`).
pub(super) fn crc64_of(bytes: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_looked_at_with_its_bytes_has_the_fingerprint_it_has_without() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let k = 1024;
        for size in [
            0,
            1,
            64 * k - 1,
            64 * k,
            64 * k + 1,
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
                true => {
                    let kept = kept.unwrap();
                    assert_eq!(&kept.bytes[..], &bytes[..], "size {size}");
                    // Their MD5, from the same read, is the one a PUT of them sends.
                    assert_eq!(kept.md5, md5_of(&bytes), "size {size}");
                    assert_eq!(whole.sample, hex::encode(kept.md5), "size {size}");
                }
                false => assert!(kept.is_none(), "size {size}"),
            }
        }
    }

    #[test]
    fn a_file_sent_from_memory_is_unchanged_only_while_every_byte_is_as_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes = vec![5u8; 32 * 1024];
        std::fs::write(&path, &bytes).unwrap();
        let (print, kept) = look(&path, true).unwrap();
        let sent = kept.unwrap().bytes;
        assert!(unchanged(&path, &print, Some(&sent)).unwrap());
        assert!(unchanged(&path, &print, None).unwrap());
        // Rewritten in place with its size, its time put back: only the bytes tell.
        let time = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut other = bytes.clone();
        other[20_000] = 6;
        std::fs::write(&path, &other).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(time).unwrap();
        drop(file);
        assert_eq!(look(&path, false).unwrap().0.mtime_ns, print.mtime_ns);
        assert!(!unchanged(&path, &print, Some(&sent)).unwrap());
        assert!(!unchanged(&path, &print, None).unwrap());
        // Back as it was, then longer, then touched: a size or a time that moved is a change.
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(time).unwrap();
        drop(file);
        assert!(unchanged(&path, &print, Some(&sent)).unwrap());
        std::fs::write(&path, [&bytes[..], b"!"].concat()).unwrap();
        assert!(!unchanged(&path, &print, Some(&sent)).unwrap());
        std::fs::write(&path, &bytes[1..]).unwrap();
        assert!(!unchanged(&path, &print, Some(&sent)).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(time + std::time::Duration::from_secs(1))
            .unwrap();
        drop(file);
        assert!(!unchanged(&path, &print, Some(&sent)).unwrap());
        std::fs::remove_file(&path).unwrap();
        let gone = unchanged(&path, &print, Some(&sent)).unwrap_err();
        assert_eq!(gone.code(), "file_missing");
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
            let dribbled = dribbled.unwrap();
            assert_eq!(dribbled.0, plain.0, "size {size}");
            assert!(dribbled.1.is_none() && plain.1.is_none());
            let whole = sampled(
                &mut Dribble(std::io::Cursor::new(bytes.clone())),
                size,
                true,
            );
            let (sample, kept) = whole.unwrap();
            assert_eq!(sample, plain.0, "size {size}");
            match size <= SAMPLE {
                true => assert_eq!(kept.unwrap().bytes, bytes),
                false => assert!(kept.is_none()),
            }
        }
        // A bigger file's samples are hashed as before (an open multipart upload is resumed
        // only while they agree): MD5 of the size (8 bytes, little-endian)
        // and the first, middle and last 64 KiB, as Python's hashlib gives it.
        for (size, python) in [
            (65_537u64, "dbe40f1276125b6fd6df26212bba2329"),
            (70_000, "436527f5001c606928e5858cab38dafc"),
            (200_000, "e7d0f49c8e180ee68b2ebf9aa6dce993"),
        ] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
            let (sample, _) = sampled(&mut std::io::Cursor::new(bytes), size, false).unwrap();
            assert_eq!(sample, python, "size {size}");
        }
        // Shorter or longer than its size says, a small file read with or without its bytes
        // kept: changed under us.
        for (len, whole) in [(10, true), (10, false), (12, true), (12, false)] {
            let read = sampled(&mut std::io::Cursor::new(vec![1u8; len]), 11, whole);
            assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        }
    }

    /// A file whose length is not the size it had when looked at — caused here with a file
    /// of Linux's `/proc`, whose size reads 0 and whose reads give bytes — is a file that
    /// changed as it was read: `file_changed` when looked at, moved when compared.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_file_found_changing_as_it_is_read_has_changed() {
        let path = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        for keep in [true, false] {
            assert_eq!(look(path, keep).unwrap_err().code(), "file_changed");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"kept").unwrap();
        let print = look(&file, false).unwrap().0;
        assert!(!moved(&file, &print).await.unwrap());
        assert!(moved(path, &print).await.unwrap());
        // Changing as it was read after a failed request: the file starts again.
        let failed = Error::Protocol {
            operation: "uploading",
            detail: "reset".into(),
        };
        assert_eq!(
            changed_under(path, &print, failed).await.code(),
            "file_changed"
        );
        let failed = Error::Protocol {
            operation: "uploading",
            detail: "reset".into(),
        };
        assert_eq!(
            changed_under(&file, &print, failed).await.code(),
            "protocol"
        );
        // Gone is not "changed": the error says what it is.
        let gone = moved(&dir.path().join("gone"), &print).await.unwrap_err();
        assert_eq!(gone.code(), "file_missing");
    }

    #[tokio::test]
    async fn a_file_holds_an_objects_bytes_only_with_its_size_and_its_md5_as_a_one_put_etag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes = vec![7u8; 100_000];
        std::fs::write(&path, &bytes).unwrap();
        let md5 = hex::encode(md5_of(&bytes));
        assert!(holds(&path, 100_000, &md5).await);
        assert!(holds(&path, 100_000, &format!("\"{}\"", md5.to_uppercase())).await);
        // Another size, other bytes of the same size, an ETag made from parts, no file.
        assert!(!holds(&path, 99_999, &md5).await);
        let other = hex::encode(md5_of(&vec![8u8; 100_000]));
        assert!(!holds(&path, 100_000, &other).await);
        assert!(!holds(&path, 100_000, &format!("{md5}-1")).await);
        assert!(!holds(&dir.path().join("gone"), 100_000, &md5).await);
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
