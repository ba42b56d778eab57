//! Progress of one file for front ends: bytes acknowledged, a smoothed rate and an ETA, at most
//! ten times a second, for exactly as long as the upload runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{AbortOnDrop, Transfer};
use crate::events::Event;

impl Transfer {
    /// Reports `sent` of file `id`, `total` bytes (as the journal has its size), until the
    /// guard is dropped.
    pub(super) fn progress_reporter(
        &self,
        id: i64,
        total: u64,
        sent: Arc<AtomicU64>,
    ) -> AbortOnDrop {
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), sent.load(Ordering::Relaxed));
            let mut rate = 0.0f64;
            let mut reported = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = (Instant::now(), sent.load(Ordering::Relaxed));
                let secs = now.0.duration_since(last.0).as_secs_f64();
                if secs > 0.0 {
                    let instant = now.1.saturating_sub(last.1) as f64 / secs;
                    rate = if rate == 0.0 {
                        instant
                    } else {
                        0.7 * rate + 0.3 * instant
                    };
                }
                last = now;
                if now.1 == reported {
                    continue;
                }
                reported = now.1;
                let eta = (rate > 1.0).then(|| (total.saturating_sub(now.1) as f64 / rate) as u64);
                events(Event::Progress {
                    file_id: id,
                    bytes: now.1.min(total),
                    total,
                    rate: rate as u64,
                    eta_secs: eta,
                });
            }
        });
        AbortOnDrop(task.abort_handle())
    }
}
