//! Trying again what may pass: network trouble, 5xx, 429, timeouts. Each operation gets a few
//! attempts with jittered exponential backoff, and every retry is announced as an
//! [`Event::Retrying`] with its reason and count — a retry is never silent, and never endless.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::Result;
use crate::events::{ErrorInfo, Event, EventSink};

/// Attempts per request for transient failures.
pub(crate) const ATTEMPTS: u32 = 5;
/// First backoff; doubled each time, with jitter.
const BACKOFF: Duration = Duration::from_millis(250);

/// The wait before attempt `attempt + 1`: 250 ms doubled per attempt, ±50 %.
fn jittered(attempt: u32) -> Duration {
    let base = BACKOFF * 2u32.pow(attempt.saturating_sub(1).min(6));
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

/// Announces that `operation` failed at `attempt` and will be tried again; returns how long to
/// wait first.
pub(crate) fn announce(
    events: &EventSink,
    file: Option<i64>,
    operation: &str,
    attempt: u32,
    err: &crate::Error,
) -> Duration {
    let wait = jittered(attempt);
    tracing::debug!(operation, attempt, error = %err, "retrying");
    events(Event::Retrying {
        file_id: file,
        operation: operation.to_owned(),
        attempt,
        max_attempts: ATTEMPTS,
        error: ErrorInfo::from(err),
        retry_in_ms: wait.as_millis() as u64,
    });
    wait
}

/// Runs `attempt` until it succeeds, fails for good, or has failed [`ATTEMPTS`] times.
pub(crate) async fn retrying<T, F, Fut>(
    events: &EventSink,
    file: Option<i64>,
    operation: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Err(err) if err.is_transient() && made < ATTEMPTS => {
                let wait = announce(events, file, operation, made, &err);
                tokio::time::sleep(wait).await;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::Error;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_a_bounded_number_of_times_and_announced() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: EventSink = {
            let seen = seen.clone();
            Arc::new(move |e| seen.lock().unwrap().push(e))
        };
        let mut calls = 0;
        let result: Result<()> = retrying(&sink, Some(7), "confirming", || {
            calls += 1;
            async { Err(Error::UploadLost { key: "k".into() }) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, ATTEMPTS);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), ATTEMPTS as usize - 1, "one event per retry");
            assert!(seen.iter().all(|e| matches!(
                e,
                Event::Retrying {
                    file_id: Some(7),
                    max_attempts: ATTEMPTS,
                    ..
                }
            )));
        }

        let mut calls = 0;
        let refused: Result<()> = retrying(&sink, None, "x", || {
            calls += 1;
            async { Err(Error::SignedOut) }
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(calls, 1, "a permanent failure is not retried");
    }
}
