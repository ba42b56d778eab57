//! Files no task has — rows left `uploading`, and uploaded files awaiting a confirmation no
//! try is planned for (see [`crate::journal::Awaiting::All`]) — and when a scheduling round
//! looks for them. While files upload, the ones just uploaded are their own tasks' to
//! confirm: a round that read past each of them cost more than the round, so rounds look
//! only now and then — when nothing runs, when asked to, and once [`STRAYS_EVERY`] has passed
//! since the last look — and again at once while looking finds some. A round with no free
//! slot does not look (the look waits for the next round that has one).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after its last look a round with a free slot looks for strays by itself while
/// files are uploading.
pub(super) const STRAYS_EVERY: Duration = Duration::from_secs(1);

/// When a scheduling round last looked for files no task has.
#[derive(Default)]
pub(super) struct Strays {
    /// None: the next round with a free slot looks.
    looked: Mutex<Option<Instant>>,
}

impl Strays {
    /// Whether a round with `busy` tasks running looks now; one that does counts from now.
    pub(super) fn look_now(&self, busy: usize) -> bool {
        self.look_at(Instant::now(), busy)
    }

    /// The next round looks (files were moved back to work; a look found some).
    pub(super) fn look_next(&self) {
        *self.looked() = None;
    }

    fn look_at(&self, now: Instant, busy: usize) -> bool {
        let mut looked = self.looked();
        let due = busy == 0 || looked.is_none_or(|at| now.duration_since(at) >= STRAYS_EVERY);
        if due {
            *looked = Some(now);
        }
        due
    }

    fn looked(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.looked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_look_when_nothing_runs_when_asked_and_a_second_on() {
        let strays = Strays::default();
        let start = Instant::now();
        let soon = start + Duration::from_millis(10);
        // The first round looks; then, files running, not again within the second...
        assert!(strays.look_at(start, 5));
        assert!(!strays.look_at(soon, 5));
        // ...unless nothing runs (the queue's end is decided on what the round finds)...
        assert!(strays.look_at(soon, 0));
        assert!(!strays.look_at(soon, 5));
        // ...or it is asked to.
        strays.look_next();
        assert!(strays.look_at(soon, 5));
        assert!(!strays.look_at(soon + Duration::from_millis(10), 5));
        // A second after the last look, it looks again.
        assert!(strays.look_at(soon + STRAYS_EVERY, 5));
    }
}
