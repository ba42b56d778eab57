//! A shared bandwidth limit: a token bucket every upload body draws from.

use std::time::Duration;

use tokio::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, Notify};

/// Bytes per second across all uploads, when limited; the limit can change while uploads run.
pub(crate) struct Throttle {
    /// Whether there is a limit: without one, bytes go without taking the lock.
    limited: AtomicBool,
    state: Mutex<Bucket>,
    /// Wakes the bytes waiting at the old limit when it changes.
    changed: Notify,
}

/// The limit and the token bucket drawn from.
struct Bucket {
    /// Bytes per second and the burst allowed; `None`: no limit.
    limit: Option<(f64, f64)>,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    pub(crate) fn new(bytes_per_sec: Option<u64>) -> Self {
        let limit = Self::limit(bytes_per_sec);
        Self {
            limited: AtomicBool::new(limit.is_some()),
            state: Mutex::new(Bucket {
                limit,
                tokens: limit.map_or(0.0, |(_, burst)| burst),
                last: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    /// Rate and burst for `bytes_per_sec`.
    fn limit(bytes_per_sec: Option<u64>) -> Option<(f64, f64)> {
        bytes_per_sec.map(|b| {
            let rate = b.max(1) as f64;
            (rate, (rate / 10.0).max(64.0 * 1024.0))
        })
    }

    /// A limit of `bytes_per_sec` (or none) from now. The bucket keeps what it holds (no
    /// new burst, and bytes sent ahead of the old limit still count) up to the new burst.
    pub(crate) async fn set(&self, bytes_per_sec: Option<u64>) {
        let limit = Self::limit(bytes_per_sec);
        let mut bucket = self.state.lock().await;
        if bucket.limit == limit {
            return;
        }
        let now = Instant::now();
        if let Some((rate, burst)) = bucket.limit {
            let earned = now.duration_since(bucket.last).as_secs_f64() * rate;
            bucket.tokens = (bucket.tokens + earned).min(burst);
        }
        bucket.tokens = match limit {
            Some((_, burst)) if bucket.limit.is_some() => bucket.tokens.min(burst),
            Some((_, burst)) => burst,
            None => 0.0,
        };
        (bucket.limit, bucket.last) = (limit, now);
        self.limited.store(limit.is_some(), Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether bytes are limited now.
    pub(crate) fn limited(&self) -> bool {
        self.limited.load(Ordering::Relaxed)
    }

    /// Waits until `n` bytes may be sent — or the limit changes: they go then (what they
    /// owe stays in the bucket under a new limit; without one it is forgiven).
    pub(crate) async fn take(&self, n: u64) {
        let changed = self.changed.notified();
        let wait = {
            let mut bucket = self.state.lock().await;
            let Some((rate, burst)) = bucket.limit else {
                return;
            };
            let now = Instant::now();
            let earned = now.duration_since(bucket.last).as_secs_f64() * rate;
            bucket.tokens = (bucket.tokens + earned).min(burst) - n as f64;
            bucket.last = now;
            if bucket.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens / rate)
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = changed => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds (of tokio's paused clock) `throttle` takes to let 2 MiB through in 64-KiB
    /// pieces.
    async fn two_mib(throttle: &Throttle) -> f64 {
        let start = tokio::time::Instant::now();
        for _ in 0..32 {
            throttle.take(64 * 1024).await;
        }
        start.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn limits_the_rate() {
        let throttle = Throttle::new(Some(1024 * 1024));
        // 2 MiB at 1 MiB/s, less the initial burst.
        let took = two_mib(&throttle).await;
        assert!((1.7..2.3).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_set_later_holds_from_then_and_none_lets_everything_through() {
        let throttle = Throttle::new(None);
        assert_eq!(two_mib(&throttle).await, 0.0);
        throttle.set(Some(4 * 1024 * 1024)).await;
        let took = two_mib(&throttle).await;
        assert!((0.35..0.6).contains(&took), "2 MiB at 4 MiB/s: {took}");
        throttle.set(None).await;
        assert_eq!(two_mib(&throttle).await, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_waiting_at_a_slow_limit_go_when_the_limit_is_lifted() {
        let throttle = std::sync::Arc::new(Throttle::new(Some(1024)));
        // The burst (64 KiB) goes at once; the next 64 KiB would wait 64 s at 1 KiB/s.
        throttle.take(64 * 1024).await;
        let waiting = tokio::spawn({
            let throttle = throttle.clone();
            async move { throttle.take(64 * 1024).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = tokio::time::Instant::now();
        throttle.set(None).await;
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the bytes go once the limit is lifted")
            .unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
