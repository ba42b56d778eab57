//! Object and part bytes on disk: one file per blob, named by a random id, written as the
//! request body streams in so that memory does not grow with object or part size.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::crc64::Crc64;

/// A blob file no row references yet. Dropping it deletes the file, so a request that fails,
/// or whose future is dropped because the client went away mid-body, leaves nothing behind;
/// [`NewBlob::keep`] is called once a committed row references it.
#[derive(Debug)]
pub(crate) struct NewBlob {
    name: String,
    path: PathBuf,
    armed: bool,
}

impl NewBlob {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The file is referenced now: keep it.
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for NewBlob {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // A plain unlink: quick enough for any thread, and it must also run where no async
        // context is left (a future dropped mid-request).
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(blob = %self.name, %err, "could not delete an unused blob"),
        }
    }
}

/// A blob just written, not yet referenced.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) blob: NewBlob,
    pub(crate) size: u64,
    pub(crate) md5: [u8; 16],
    /// CRC-64/XZ of the bytes (what OSS calls `crc64ecma`).
    pub(crate) crc64: u64,
}

/// Why writing a blob failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("no body bytes arrived for {} s", .0.as_secs())]
    Stalled(Duration),
    #[error("writing to disk: {0}")]
    Disk(#[from] std::io::Error),
}

/// The blob directory.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    dir: PathBuf,
    /// Longest pause between two pieces of a body before the write gives up.
    body_read_timeout: Duration,
    /// Request body bytes received since start (whether kept or not).
    received: Arc<AtomicU64>,
}

const BUFFER: usize = 256 * 1024;

impl Blobs {
    pub(crate) fn open(dir: &Path, body_read_timeout: Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            body_read_timeout,
            received: Arc::default(),
        })
    }

    /// Body bytes received since start, kept or not (to measure what clients send again).
    pub(crate) fn received(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A new, unreferenced blob name (its file is deleted when the guard drops).
    fn new_blob(&self) -> NewBlob {
        let name = uuid::Uuid::new_v4().simple().to_string();
        NewBlob {
            path: self.path(&name),
            name,
            armed: true,
        }
    }

    /// Streams `body` into a new blob, hashing (MD5 and CRC-64) as it goes. On error, or if this
    /// future is dropped, nothing is left behind. A body that fits in one buffer (most small
    /// files) is created, written and synced in one trip to the blocking pool; a longer one
    /// streams through the buffer.
    pub(crate) async fn write<S, E>(&self, body: S) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut body = Body::new(body, &self.received, self.body_read_timeout);
        let first = body.read_first(BUFFER).await?;
        let blob = self.new_blob();
        let blob = if body.ended {
            // The guard goes with the bytes: if this future is dropped meanwhile, the task
            // still ends, and its unclaimed guard deletes the file it made.
            tokio::task::spawn_blocking(move || {
                write_whole(&blob.path, &first)?;
                Ok::<_, std::io::Error>(blob)
            })
            .await
            .map_err(|err| WriteError::Disk(std::io::Error::other(err)))??
        } else {
            write_streamed(&blob.path, first, &mut body).await?;
            blob
        };
        Ok(Written {
            blob,
            size: body.size,
            md5: body.md5.finalize().into(),
            crc64: body.crc.finish(),
        })
    }

    /// Deletes blobs no longer referenced; a failure is logged, not returned.
    pub(crate) async fn remove(&self, names: impl IntoIterator<Item = String>) {
        for name in names {
            if let Err(err) = tokio::fs::remove_file(self.path(&name)).await {
                tracing::warn!(blob = %name, %err, "could not delete an unused blob");
            }
        }
    }

    /// Deletes files that no row references (left by a crash between write and commit).
    pub(crate) fn sweep(&self, referenced: &[String]) -> std::io::Result<usize> {
        let keep: HashSet<&str> = referenced.iter().map(String::as_str).collect();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Reads a whole object into memory from its blobs, in order (tests and checks only;
    /// objects may be large).
    pub(crate) async fn read(&self, names: &[String]) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        for name in names {
            tokio::fs::File::open(self.path(name))
                .await?
                .read_to_end(&mut out)
                .await?;
        }
        Ok(out)
    }
}

/// The least a request body must bring per body timeout window (about 270 bytes a second with
/// the default minute): slower is a trickle holding a connection, not an upload.
const MIN_WINDOW_BYTES: u64 = 16 * 1024;

/// A request body read piece by piece, hashed and counted as it comes.
struct Body<'a, S> {
    stream: S,
    received: &'a AtomicU64,
    /// Longest wait for the next piece.
    idle: Duration,
    /// When the current window started, and the bytes it brought.
    window: (std::time::Instant, u64),
    md5: Md5,
    crc: Crc64,
    size: u64,
    ended: bool,
}

impl<'a, S, E> Body<'a, S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    fn new(stream: S, received: &'a AtomicU64, idle: Duration) -> Self {
        Self {
            stream,
            received,
            idle,
            window: (std::time::Instant::now(), 0),
            md5: Md5::new(),
            crc: Crc64::new(),
            size: 0,
            ended: false,
        }
    }

    /// The next piece, hashed; `None` at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, WriteError> {
        // A body that stops arriving without its connection closing (a dead link) would
        // otherwise hold the request, and its partial blob, for good — and so would one that
        // trickles a byte now and then: each `idle` window must bring at least
        // `MIN_WINDOW_BYTES`.
        let piece = tokio::time::timeout(self.idle, self.stream.next())
            .await
            .map_err(|_| WriteError::Stalled(self.idle))?;
        let Some(piece) = piece else {
            self.ended = true;
            return Ok(None);
        };
        let piece = piece.map_err(|e| WriteError::Body(e.to_string()))?;
        self.window.1 += piece.len() as u64;
        if self.window.0.elapsed() >= self.idle {
            if self.window.1 < MIN_WINDOW_BYTES {
                return Err(WriteError::Stalled(self.idle));
            }
            self.window = (std::time::Instant::now(), 0);
        }
        self.md5.update(&piece);
        self.crc.update(&piece);
        self.size += piece.len() as u64;
        self.received
            .fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok(Some(piece))
    }

    /// The body's first pieces, as they came: until the end, or until at least `at_least`
    /// bytes have come (one piece more than that at most: nothing is copied).
    async fn read_first(&mut self, at_least: usize) -> Result<Vec<Bytes>, WriteError> {
        let mut first = Vec::new();
        let mut size = 0;
        while size < at_least {
            match self.next().await? {
                Some(piece) => {
                    size += piece.len();
                    first.push(piece);
                }
                None => break,
            }
        }
        Ok(first)
    }
}

/// Writes a whole small body and syncs it (on the blocking pool).
fn write_whole(path: &Path, pieces: &[Bytes]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    for piece in pieces {
        file.write_all(piece)?;
    }
    file.sync_data()
}

/// Writes `first`, then the rest of `body` as it comes, and syncs; each piece is let go of
/// once written.
async fn write_streamed<S, E>(
    path: &Path,
    first: Vec<Bytes>,
    body: &mut Body<'_, S>,
) -> Result<(), WriteError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = BufWriter::with_capacity(BUFFER, tokio::fs::File::create(path).await?);
    for piece in first {
        out.write_all(&piece).await?;
    }
    while let Some(piece) = body.next().await? {
        out.write_all(&piece).await?;
    }
    out.flush().await?;
    out.into_inner().sync_data().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn writes_hashes_reads_in_order_and_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::from_secs(60)).unwrap();
        let a = blobs.write(stream(&[b"hello ", b"world"])).await.unwrap();
        assert_eq!(a.size, 11);
        assert_eq!(hex::encode(a.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(a.crc64, super::super::crc64::checksum(b"hello world"));
        let b = blobs.write(stream(&[b"!"])).await.unwrap();
        let c = blobs.write(stream(&[b"?"])).await.unwrap();
        let names = [a.blob.name().to_owned(), b.blob.name().to_owned()];
        a.blob.keep();
        b.blob.keep();
        assert_eq!(blobs.read(&names).await.unwrap(), b"hello world!");
        // `c` is dropped without being kept: its file goes. `a` and `b` are kept, so only a
        // sweep (of what no row references) removes one.
        let gone = [c.blob.name().to_owned()];
        drop(c);
        assert!(blobs.read(&gone).await.is_err());
        assert_eq!(blobs.sweep(&names[..1]).unwrap(), 1);
        assert!(blobs.read(&names[..1]).await.is_ok());
        assert!(blobs.read(&names[1..]).await.is_err());
    }

    /// `len` bytes of a pattern, and the body that brings them in pieces of `piece` bytes.
    fn body_of(len: usize, piece: usize) -> (Vec<u8>, Vec<Result<Bytes, String>>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let pieces = bytes
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        (bytes, pieces)
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test]
    async fn bodies_either_side_of_the_buffer_are_written_whole_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::from_secs(60)).unwrap();
        let shapes = [
            (BUFFER - 1, 40_000),
            (BUFFER, 40_000),
            (BUFFER + 1, 40_000),
            (BUFFER * 2 + 12_345, 40_000),
            // One piece longer than the buffer.
            (BUFFER * 3, BUFFER * 3),
        ];
        for (len, piece) in shapes {
            let (bytes, pieces) = body_of(len, piece);
            let written = blobs.write(futures::stream::iter(pieces)).await.unwrap();
            assert_eq!(written.size, len as u64);
            assert_eq!(written.md5, <[u8; 16]>::from(Md5::digest(&bytes)));
            assert_eq!(written.crc64, super::super::crc64::checksum(&bytes));
            let name = written.blob.name().to_owned();
            written.blob.keep();
            assert_eq!(blobs.read(&[name]).await.unwrap(), bytes, "{len} bytes");
        }
    }

    #[tokio::test]
    async fn a_failed_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::from_secs(60)).unwrap();
        // Failing after more than a buffer's worth: the blob's file exists by then.
        let (_, mut pieces) = body_of(BUFFER + 1, BUFFER + 1);
        pieces.push(Err("reset".into()));
        let body = futures::stream::iter(pieces);
        assert!(matches!(blobs.write(body).await, Err(WriteError::Body(_))));
        assert_eq!(files_in(dir.path()), 0);
    }
}

#[cfg(test)]
mod dropped {
    use super::*;

    #[tokio::test]
    async fn a_long_write_dropped_mid_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), Duration::from_secs(60)).unwrap();
        // More than a buffer's worth, then nothing more, like a client gone quiet: the blob's
        // file is being written when the request goes.
        let first = Bytes::from(vec![7u8; BUFFER + 1]);
        let body =
            futures::stream::iter(vec![Ok::<_, String>(first)]).chain(futures::stream::pending());
        let mut writing = Box::pin(blobs.write(Box::pin(body)));
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::read_dir(dir.path()).unwrap().count() == 0 {
            assert!(std::time::Instant::now() < until, "no file after 20 s");
            let polled = tokio::time::timeout(Duration::from_millis(10), &mut writing).await;
            assert!(polled.is_err(), "the body never ends");
        }
        drop(writing);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_short_write_dropped_while_its_file_is_made_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let blobs = runtime
            .block_on(async { Blobs::open(dir.path(), Duration::from_secs(60)) })
            .unwrap();
        runtime.block_on(async {
            let body = futures::stream::iter(vec![Ok::<_, String>(Bytes::from_static(b"x"))]);
            let mut writing = Box::pin(blobs.write(body));
            // The body is read whole at once: the first poll hands its file to the blocking
            // pool and waits for it; the request goes meanwhile.
            assert!(futures::poll!(&mut writing).is_pending());
            drop(writing);
        });
        // Waits for what the blocking pool started.
        runtime.shutdown_timeout(Duration::from_secs(20));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
