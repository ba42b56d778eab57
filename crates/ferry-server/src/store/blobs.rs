//! Object and part bytes on disk: one file per blob, named by a random id, written as the
//! request body streams in so that memory does not grow with object or part size.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::io::{AsyncWriteExt, BufWriter};

/// A blob just written.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) md5: [u8; 16],
}

/// Why writing a blob failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("writing to disk: {0}")]
    Disk(#[from] std::io::Error),
}

/// The blob directory.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    dir: PathBuf,
    /// Request body bytes received since start (whether kept or not).
    received: Arc<AtomicU64>,
}

const BUFFER: usize = 256 * 1024;

impl Blobs {
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
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

    fn new_name() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Streams `body` into a new blob, hashing as it goes. On error nothing is left behind.
    pub(crate) async fn write<S, E>(&self, body: S) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let name = Self::new_name();
        let path = self.path(&name);
        let result = write_hashed(&path, body, &self.received).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        let (size, md5) = result?;
        Ok(Written { name, size, md5 })
    }

    /// Writes the blobs one after another into a new blob; returns its name and size. Runs on
    /// the blocking pool with `std::io::copy`, which Linux turns into `copy_file_range`: the
    /// bytes move inside the kernel.
    pub(crate) async fn concat(&self, parts: &[String]) -> std::io::Result<(String, u64)> {
        let name = Self::new_name();
        let path = self.path(&name);
        let sources: Vec<PathBuf> = parts.iter().map(|p| self.path(p)).collect();
        let target = path.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut out = std::fs::File::create(&target)?;
            let mut size = 0;
            for source in sources {
                size += std::io::copy(&mut std::fs::File::open(source)?, &mut out)?;
            }
            out.sync_data()?;
            Ok(size)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match result {
            Ok(size) => Ok((name, size)),
            Err(err) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(err)
            }
        }
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

    /// Reads a whole blob into memory (tests and checks only; objects may be large).
    pub(crate) async fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        tokio::fs::File::open(self.path(name))
            .await?
            .read_to_end(&mut out)
            .await?;
        Ok(out)
    }
}

async fn write_hashed<S, E>(
    path: &Path,
    mut body: S,
    received: &AtomicU64,
) -> Result<(u64, [u8; 16]), WriteError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = BufWriter::with_capacity(BUFFER, tokio::fs::File::create(path).await?);
    let mut hasher = Md5::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| WriteError::Body(e.to_string()))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_data().await?;
    Ok((size, hasher.finalize().into()))
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
    async fn writes_hashes_concatenates_and_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let a = blobs.write(stream(&[b"hello ", b"world"])).await.unwrap();
        assert_eq!(a.size, 11);
        assert_eq!(hex::encode(a.md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        let b = blobs.write(stream(&[b"!"])).await.unwrap();
        let (joined, size) = blobs
            .concat(&[a.name.clone(), b.name.clone()])
            .await
            .unwrap();
        assert_eq!(size, 12);
        assert_eq!(blobs.read(&joined).await.unwrap(), b"hello world!");
        assert_eq!(blobs.sweep(std::slice::from_ref(&joined)).unwrap(), 2);
        assert!(blobs.read(&a.name).await.is_err());
        assert!(blobs.read(&joined).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_body_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"x")), Err("reset")]);
        assert!(matches!(blobs.write(body).await, Err(WriteError::Body(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
