//! Telling a slow request from a stopped one: the stall watch over a request's body and its
//! answer, and reading an answer within bounds of size and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::MAX_ANSWER;
use crate::error::{Error, Result};

/// Watches a request for the moment it stops moving: the store not taking the body for
/// `stall`, or not answering within `stall` once it has it. A slow link that keeps moving is
/// never cut off.
pub(super) struct Stall {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last body chunk taken.
    last: std::sync::atomic::AtomicU64,
    /// Whether the whole body has been taken.
    sent: std::sync::atomic::AtomicBool,
    /// Whether the body waits for the bandwidth limit (not for the store) right now.
    throttled: std::sync::atomic::AtomicBool,
    /// Body bytes counted as progress by this attempt.
    pub(super) counted: AtomicU64,
}

impl Stall {
    pub(super) fn new(empty_body: bool) -> Arc<Self> {
        Arc::new(Self {
            started: std::time::Instant::now(),
            last: std::sync::atomic::AtomicU64::new(0),
            sent: std::sync::atomic::AtomicBool::new(empty_body),
            throttled: std::sync::atomic::AtomicBool::new(false),
            counted: AtomicU64::new(0),
        })
    }

    pub(super) fn throttled(&self, waiting: bool) {
        self.throttled.store(waiting, Ordering::Relaxed);
        if !waiting {
            self.moved(false);
        }
    }

    pub(super) fn counted(&self, bytes: u64) {
        self.counted.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn moved(&self, last_chunk: bool) {
        let at = self.started.elapsed().as_millis() as u64;
        self.last.store(at, std::sync::atomic::Ordering::Relaxed);
        if last_chunk {
            self.sent.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What stopped, if anything stopped for longer than `limit`.
    fn stopped(&self, limit: Duration) -> Option<&'static str> {
        if self.throttled.load(Ordering::Relaxed) {
            return None;
        }
        let last = Duration::from_millis(self.last.load(std::sync::atomic::Ordering::Relaxed));
        if self.started.elapsed().saturating_sub(last) < limit {
            return None;
        }
        Some(if self.sent.load(std::sync::atomic::Ordering::Relaxed) {
            "no answer came"
        } else {
            "the request body stopped moving"
        })
    }

    /// Runs `send` until it answers, or fails with [`Error::Timeout`] when it stops moving.
    pub(super) async fn watch<T>(
        &self,
        limit: Duration,
        send: impl std::future::Future<Output = T>,
        operation: &'static str,
        target: &str,
    ) -> Result<T> {
        tokio::pin!(send);
        let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::select! {
                answer = &mut send => return Ok(answer),
                _ = tokio::time::sleep(tick) => {
                    if let Some(what) = self.stopped(limit) {
                        return Err(Error::Timeout {
                            operation,
                            target: target.to_owned(),
                            what: format!("{what} for {} s", limit.as_secs_f64()),
                        });
                    }
                }
            }
        }
    }
}

/// Reads an answer's body: at most [`MAX_ANSWER`] bytes, all of it within `limit` of its
/// head (a trickle that never ends is cut off).
pub(super) async fn read_answer(
    mut response: reqwest::Response,
    limit: Duration,
    operation: &'static str,
    target: &str,
) -> Result<Bytes> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| Error::Network {
            operation,
            target: target.to_owned(),
            source,
        })? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Error::Protocol {
                    operation,
                    detail: format!("an answer larger than {MAX_ANSWER} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| Error::Timeout {
            operation,
            target: target.to_owned(),
            what: format!(
                "the answer did not arrive whole within {} s",
                limit.as_secs_f64()
            ),
        })?
}
