//! A shared bandwidth limit: a token bucket every upload body draws from.

use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

/// Bytes per second across all uploads.
pub(crate) struct Throttle {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate / 10.0).max(64.0 * 1024.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until `n` bytes may be sent.
    pub(crate) async fn take(&self, n: u64) {
        let wait = {
            let mut state = self.state.lock().await;
            let (tokens, last) = &mut *state;
            let now = Instant::now();
            *tokens =
                (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
            *last = now;
            *tokens -= n as f64;
            if *tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-*tokens / self.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_the_rate() {
        let throttle = Throttle::new(1024 * 1024);
        let start = tokio::time::Instant::now();
        for _ in 0..32 {
            throttle.take(64 * 1024).await;
        }
        // 2 MiB at 1 MiB/s, less the initial burst.
        let took = start.elapsed().as_secs_f64();
        assert!((1.7..2.3).contains(&took), "{took}");
    }
}
