//! Reading a span of a file as a stream of blocks, for request bodies sent straight from disk.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};

/// Bytes read from disk in one trip to the blocking pool.
const READ: u64 = 256 * 1024;
/// Bytes a block of a file read from disk holds (here and when a span is hashed): under
/// glibc's threshold for mapping an allocation of its own (128 KiB), which a freed larger
/// block raises for good — after which every freed block stays in its thread's heap. Made on
/// the async threads, not on each of the blocking pool's. (A 1 GiB upload peaked at
/// 29.6–32.5 MiB with 256-KiB blocks made on the pool, 21.2–22.8 with these; `/usr/bin/time`.)
pub(crate) const BLOCK: usize = 64 * 1024;

/// The `len` bytes of `path` from `offset`, a block at a time. Fewer bytes than that (the
/// file shrank) end the stream in an error, so a request never goes out short.
pub(super) fn blocks(
    path: PathBuf,
    offset: u64,
    len: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let start = (path, None::<std::fs::File>, len);
    futures::stream::try_unfold(start, move |(path, file, left)| async move {
        if left == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        let want = left.min(READ);
        // Made here, on the async threads: the blocking pool's many threads would each keep
        // a heap of their own.
        let blocks = (0..want.div_ceil(BLOCK as u64))
            .map(|i| vec![0u8; (want - i * BLOCK as u64).min(BLOCK as u64) as usize])
            .collect();
        let (path, file, read) =
            tokio::task::spawn_blocking(move || read_blocks(path, file, offset, blocks))
                .await
                .map_err(std::io::Error::other)??;
        let next = (path, Some(file), left - want);
        Ok(Some((
            futures::stream::iter(read.into_iter().map(Ok)),
            next,
        )))
    })
    .try_flatten()
}

/// The next bytes of `file` (opened at `offset` on the first read) into `blocks`.
fn read_blocks(
    path: PathBuf,
    file: Option<std::fs::File>,
    offset: u64,
    blocks: Vec<Vec<u8>>,
) -> std::io::Result<(PathBuf, std::fs::File, Vec<Bytes>)> {
    let mut file = match file {
        Some(file) => file,
        None => {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(offset))?;
            file
        }
    };
    let mut read = Vec::with_capacity(blocks.len());
    for mut block in blocks {
        file.read_exact(&mut block).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::other(Changed(path.display().to_string()))
            } else {
                err
            }
        })?;
        read.push(Bytes::from(block));
    }
    Ok((path, file, read))
}

/// The file a body was read from ended early: it changed while it was sent.
#[derive(Debug, thiserror::Error)]
#[error("{0} changed while it was sent")]
pub(super) struct Changed(String);

/// The file, if a failed request failed because its body's file changed.
pub(super) fn changed_file(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(Changed(path)) = err.downcast_ref::<Changed>() {
            return Some(path.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(Changed(path)) = io.get_ref().and_then(|e| e.downcast_ref::<Changed>())
        {
            return Some(path.clone());
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn file_of(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    #[tokio::test]
    async fn a_span_comes_out_whole_from_its_offset_in_blocks_of_at_most_a_block() {
        // Several trips to the disk, the last one short, from an offset inside a block.
        let (_dir, path, bytes) = file_of(3 * READ as usize + 5_000);
        let (offset, len) = (70_001u64, 2 * READ + 12_345);
        let blocks: Vec<Bytes> = blocks(path, offset, len).try_collect().await.unwrap();
        assert!(blocks.iter().all(|b| !b.is_empty() && b.len() <= BLOCK));
        let sent: Vec<u8> = blocks.concat();
        assert_eq!(sent.len() as u64, len);
        assert_eq!(sent, bytes[offset as usize..(offset + len) as usize]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_span_ends_the_stream_in_an_error() {
        // The file ends in the middle of the second trip: what was read is not the span.
        let (_dir, path, _) = file_of(READ as usize + 1_000);
        let read: std::io::Result<Vec<Bytes>> =
            blocks(path.clone(), 0, 2 * READ).try_collect().await;
        let err = read.expect_err("a short file is an error");
        assert_eq!(
            changed_file(&err),
            Some(path.display().to_string()),
            "{err}"
        );
    }
}
