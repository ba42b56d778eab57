//! Reading a span of a file as a stream of blocks, for request bodies sent straight from disk.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from disk at a time (split into smaller chunks on the way out).
const BLOCK: u64 = 256 * 1024;

/// The `len` bytes of `path` from `offset`, a block at a time. Fewer bytes than that (the
/// file shrank) end the stream in an error, so a request never goes out short.
pub(super) fn blocks(
    path: PathBuf,
    offset: u64,
    len: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let start = (path, None::<tokio::fs::File>, offset, len);
    futures::stream::try_unfold(start, |(path, file, offset, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut file = match file {
            Some(file) => file,
            None => {
                let mut file = tokio::fs::File::open(&path).await?;
                file.seek(SeekFrom::Start(offset)).await?;
                file
            }
        };
        let mut block = vec![0u8; left.min(BLOCK) as usize];
        file.read_exact(&mut block).await.map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::other(Changed(path.display().to_string()))
            } else {
                err
            }
        })?;
        let read = block.len() as u64;
        Ok(Some((
            Bytes::from(block),
            (path, Some(file), offset, left - read),
        )))
    })
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
