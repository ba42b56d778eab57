//! How many parts are in flight at once, adapted to the link. A distant store that caps each
//! connection (most clouds do) takes more with more parts in flight; a near one gains nothing
//! and each part costs memory and a connection. So the window climbs a hill: while parts wait
//! for a slot it measures the bytes acknowledged per second, tries a window twice as wide,
//! keeps it only if the rate rose clearly, and tries again now and then. It starts at
//! [`START`] and never leaves `1..=ceiling` — the ceiling is the user's setting. Small files
//! in flight climb the same way ([`Meter`], files sent per second).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Parts in flight before anything was measured.
pub(crate) const START: usize = 8;

/// Shortest measurement.
const EPOCH: Duration = Duration::from_secs(1);

/// How much faster a wider window must be to be kept.
const GAIN: f64 = 1.15;

/// Measurements at a kept width before a wider one is tried again.
const HOLD: u32 = 8;

/// The highest ceiling taken (a semaphore holds fewer than `usize::MAX` permits).
const MOST: usize = 4096;

/// The hill climb itself: given the rate measured at the current width, the next width.
#[derive(Debug, Clone)]
pub(crate) struct Climb {
    width: usize,
    ceiling: usize,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Nothing measured at this width yet.
    Measure,
    /// Trying `width`, widened from `from`, where the rate was `rate`.
    Probe { from: usize, rate: f64 },
    /// Kept this width, where the rate was `rate`; tries wider after `left` more
    /// measurements.
    Hold { left: u32, rate: f64 },
}

impl Climb {
    #[cfg(test)]
    pub(crate) fn new(ceiling: usize) -> Self {
        Self::starting(START, ceiling)
    }

    pub(crate) fn starting(start: usize, ceiling: usize) -> Self {
        let ceiling = ceiling.clamp(1, MOST);
        Self {
            width: start.clamp(1, ceiling),
            ceiling,
            phase: Phase::Measure,
        }
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The user set another ceiling: a width above it comes down to it at once and the climb
    /// measures again from there; below it, the climb goes on as it was.
    pub(crate) fn set_ceiling(&mut self, ceiling: usize) {
        self.ceiling = ceiling.clamp(1, MOST);
        if self.width > self.ceiling {
            self.width = self.ceiling;
            self.phase = Phase::Measure;
        }
    }

    /// A measurement made while parts waited for a slot: `rate` bytes per second at the
    /// current width. Returns the width to use next.
    pub(crate) fn measured(&mut self, rate: f64) -> usize {
        match self.phase {
            Phase::Probe { from, rate: before } if rate < before * GAIN => {
                self.width = from;
                self.phase = Phase::Hold {
                    left: HOLD,
                    rate: before,
                };
            }
            Phase::Hold { rate: kept, .. } if rate * GAIN < kept => {
                // The link got slower at this width: narrow, and measure again from there.
                self.width = (self.width / 2).max(1);
                self.phase = Phase::Measure;
            }
            Phase::Hold { left, rate: kept } if left > 0 => {
                self.phase = Phase::Hold {
                    left: left - 1,
                    rate: kept,
                };
            }
            Phase::Measure | Phase::Probe { .. } | Phase::Hold { .. } => self.widen(rate),
        }
        self.width
    }

    /// A measurement made while the window was not full: it says nothing about a wider one.
    pub(crate) fn unsaturated(&mut self) {
        if let Phase::Probe { from, .. } = self.phase {
            self.width = from;
        }
        self.phase = Phase::Measure;
    }

    fn widen(&mut self, rate: f64) {
        if self.width >= self.ceiling {
            self.phase = Phase::Hold { left: HOLD, rate };
            return;
        }
        let from = self.width;
        self.width = (from * 2).min(self.ceiling);
        self.phase = Phase::Probe { from, rate };
    }
}

/// A climb fed by what is done: measurements of at least [`EPOCH`] and of at least one
/// turn of every slot, counted only while work waited for a slot.
pub(crate) struct Meter {
    state: Mutex<Epoch>,
}

struct Epoch {
    climb: Climb,
    since: Instant,
    amount: u64,
    done: usize,
    /// Work waited for a slot since `since`.
    starved: bool,
}

impl Meter {
    /// A meter starting at `start` (at most `ceiling`).
    pub(crate) fn new(start: usize, ceiling: usize) -> Self {
        Self {
            state: Mutex::new(Epoch {
                climb: Climb::starting(start, ceiling),
                since: Instant::now(),
                amount: 0,
                done: 0,
                starved: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Epoch> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many at once now.
    pub(crate) fn width(&self) -> usize {
        self.lock().climb.width()
    }

    /// Another ceiling from now (see [`Climb::set_ceiling`]); the width before and after. A
    /// measurement under way is started again when the width changed (its bytes were moved
    /// at the old one).
    pub(crate) fn set_ceiling(&self, ceiling: usize) -> (usize, usize) {
        let mut epoch = self.lock();
        let before = epoch.climb.width();
        epoch.climb.set_ceiling(ceiling);
        let after = epoch.climb.width();
        if after != before {
            (epoch.since, epoch.amount, epoch.done, epoch.starved) = (Instant::now(), 0, 0, false);
        }
        (before, after)
    }

    /// Work is waiting for a slot.
    pub(crate) fn starved(&self) {
        self.lock().starved = true;
    }

    /// Work starts after nothing was in flight: the time spent idle is not measured.
    pub(crate) fn restart(&self) {
        let mut epoch = self.lock();
        (epoch.since, epoch.amount, epoch.done, epoch.starved) = (Instant::now(), 0, 0, false);
    }

    /// One piece of work of `amount` (bytes, or 1 for a file) is done; returns the width
    /// before and after when a measurement ended.
    pub(crate) fn done(&self, amount: u64) -> Option<(usize, usize)> {
        let mut epoch = self.lock();
        epoch.amount += amount;
        epoch.done += 1;
        let elapsed = epoch.since.elapsed();
        let before = epoch.climb.width();
        if elapsed < EPOCH || epoch.done < before {
            return None;
        }
        if epoch.starved {
            let rate = epoch.amount as f64 / elapsed.as_secs_f64();
            epoch.climb.measured(rate);
        } else {
            epoch.climb.unsaturated();
        }
        (epoch.since, epoch.amount, epoch.done, epoch.starved) = (Instant::now(), 0, 0, false);
        Some((before, epoch.climb.width()))
    }
}

/// The engine's window of parts in flight: a [`Meter`] of acknowledged bytes and the slots
/// it allows.
pub(crate) struct Window {
    slots: Arc<Semaphore>,
    meter: Meter,
    /// Slots out now.
    out: std::sync::atomic::AtomicUsize,
    /// Slots to take out of use as they come back (the window narrowed while they were out).
    debt: Mutex<usize>,
}

/// A part's slot in the window, given back when dropped.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    window: Arc<Window>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut debt = self.window.debt();
        if let Some(permit) = self.permit.take() {
            if *debt > 0 {
                *debt -= 1;
                permit.forget();
            } else {
                drop(permit);
            }
        }
        self.window.out.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Window {
    /// A window of at most `ceiling` parts.
    pub(crate) fn new(ceiling: usize) -> Arc<Self> {
        Self::starting(START, ceiling)
    }

    /// A window of `start` parts, at most `ceiling`.
    fn starting(start: usize, ceiling: usize) -> Arc<Self> {
        let meter = Meter::new(start, ceiling);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(meter.width())),
            meter,
            out: Default::default(),
            debt: Mutex::new(0),
        })
    }

    fn debt(&self) -> std::sync::MutexGuard<'_, usize> {
        self.debt.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parts allowed in flight now.
    #[cfg(test)]
    pub(crate) fn width(&self) -> usize {
        self.meter.width()
    }

    /// Waits for a slot.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.meter.starved();
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the window's semaphore is never closed")
            }
        };
        if self.out.fetch_add(1, Ordering::SeqCst) == 0 {
            self.meter.restart();
        }
        Slot {
            permit: Some(permit),
            window: self.clone(),
        }
    }

    /// A part of `bytes` was acknowledged; at the end of a measurement the width may change.
    pub(crate) fn acknowledged(&self, bytes: u64) {
        let Some((before, after)) = self.meter.done(bytes) else {
            return;
        };
        if before != after {
            tracing::debug!(before, after, "parts in flight");
        }
        self.resize(before, after);
    }

    /// The user set another ceiling: parts out above it finish, and none take their place.
    pub(crate) fn set_ceiling(&self, ceiling: usize) {
        let (before, after) = self.meter.set_ceiling(ceiling);
        self.resize(before, after);
    }

    /// Slots for a width of `after` instead of `before`: more at once, or fewer as the slots
    /// out come back.
    fn resize(&self, before: usize, after: usize) {
        let mut debt = self.debt();
        if after > before {
            // Slots still owed from a narrowing are simply kept.
            let owed = (*debt).min(after - before);
            *debt -= owed;
            self.slots.add_permits(after - before - owed);
        } else {
            *debt += before - after;
            while *debt > 0 {
                match self.slots.try_acquire() {
                    Ok(permit) => {
                        permit.forget();
                        *debt -= 1;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_start_at_eight_unless_the_ceiling_is_lower() {
        assert_eq!(Climb::new(16).width(), 8);
        assert_eq!(Climb::new(6).width(), 6);
        assert_eq!(Window::new(16).slots.available_permits(), 8);
    }

    /// Feeds the climb a link whose rate is `rate(width)` from 4 parts; returns the widths it
    /// chose.
    fn walk(ceiling: usize, steps: usize, rate: impl Fn(usize) -> f64) -> Vec<usize> {
        let mut climb = Climb::starting(4, ceiling);
        (0..steps)
            .map(|_| climb.measured(rate(climb.width())))
            .collect()
    }

    #[test]
    fn a_link_that_caps_each_connection_is_given_more_parts_up_to_the_ceiling() {
        // 20 MiB/s per connection, no other limit: every widening pays.
        let widths = walk(16, 12, |w| w as f64 * 20.0);
        assert_eq!(widths[..2], [8, 16]);
        assert!(widths.iter().all(|w| *w <= 16));
        assert_eq!(*widths.last().unwrap(), 16);
    }

    #[test]
    fn a_link_full_at_four_parts_stays_at_four_and_tries_again_later() {
        let widths = walk(16, 12, |w| w.min(4) as f64 * 100.0);
        // Tries 8, finds nothing more, goes back; holds; then tries once more.
        assert_eq!(widths[..2], [8, 4]);
        assert!(widths[2..10].iter().all(|w| *w == 4), "{widths:?}");
        assert_eq!(widths[10], 8);
        assert_eq!(widths[11], 4);
    }

    #[test]
    fn the_user_ceiling_is_never_passed_and_a_small_one_is_kept() {
        let widths = walk(7, 20, |w| w as f64);
        assert!(widths.iter().all(|w| *w <= 7), "{widths:?}");
        // It does climb to the ceiling: 4, then 7 (not 8).
        assert_eq!(widths[0], 7, "{widths:?}");
        assert!(walk(2, 20, |w| w as f64).iter().all(|w| *w == 2));
        assert!(walk(1, 5, |w| w as f64).iter().all(|w| *w == 1));
    }

    #[test]
    fn a_link_that_gets_slower_is_given_fewer_parts() {
        let mut climb = Climb::starting(4, 16);
        assert_eq!(climb.measured(400.0), 8);
        assert_eq!(climb.measured(800.0), 16);
        assert_eq!(climb.measured(1600.0), 16);
        // Same width, a third of the rate (the link is shared now): narrow and measure again.
        assert_eq!(climb.measured(500.0), 8);
        assert_eq!(climb.measured(500.0), 16);
        assert_eq!(climb.measured(500.0), 8);
    }

    #[test]
    fn idle_time_is_not_taken_for_a_slow_link() {
        let meter = Meter::new(4, 16);
        meter.lock().since = Instant::now() - Duration::from_secs(60);
        meter.lock().amount = 1 << 30;
        meter.restart();
        // The idle minute and what was counted in it are forgotten.
        assert!(meter.lock().since.elapsed() < EPOCH);
        assert_eq!(meter.lock().amount, 0);
        meter.starved();
        // About one second of work follows.
        meter.lock().since = Instant::now() - EPOCH;
        for _ in 0..3 {
            assert_eq!(meter.done(8 << 20), None);
        }
        // Measured over about one second, not sixty: 32 MiB/s at 4, then probes 8.
        assert_eq!(meter.done(8 << 20), Some((4, 8)));
        let rate = match meter.lock().climb.phase {
            Phase::Probe { rate, .. } => rate,
            other => panic!("{other:?}"),
        };
        assert!(rate > 16.0 * (1 << 20) as f64, "{rate}");
    }

    #[test]
    fn a_wider_window_that_is_slower_is_given_up() {
        // More parts make this store slower (it thrashes): never kept beyond a probe.
        let widths = walk(16, 20, |w| 100.0 / w as f64);
        assert!(widths.iter().all(|w| *w == 4 || *w == 8), "{widths:?}");
        assert_eq!(widths.iter().filter(|w| **w == 8).count(), 2);
    }

    #[test]
    fn an_unsaturated_window_goes_back_from_a_probe_and_measures_again() {
        let mut climb = Climb::starting(4, 16);
        assert_eq!(climb.measured(100.0), 8);
        climb.unsaturated();
        assert_eq!(climb.width(), 4);
        // The next saturated measurement is a fresh start.
        assert_eq!(climb.measured(100.0), 8);
    }

    #[tokio::test]
    async fn narrowing_takes_slots_out_of_use_as_they_come_back() {
        let window = Window::starting(4, 16);
        let held: Vec<Slot> = take(&window, 4).await;
        {
            let mut epoch = window.meter.lock();
            epoch.climb = Climb {
                width: 4,
                ceiling: 16,
                phase: Phase::Probe {
                    from: 2,
                    rate: 1e12,
                },
            };
            epoch.starved = true;
            epoch.since = Instant::now() - EPOCH;
            epoch.done = 4;
        }
        // The probe at 4 was not faster: back to 2 while all 4 slots are out.
        window.acknowledged(1);
        assert_eq!(window.width(), 2);
        assert_eq!(*window.debt(), 2);
        drop(held);
        assert_eq!(*window.debt(), 0);
        assert_eq!(window.slots.available_permits(), 2);
    }

    async fn take(window: &Arc<Window>, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(window.acquire().await);
        }
        slots
    }

    #[test]
    fn a_lower_ceiling_brings_the_width_down_and_a_higher_one_keeps_the_climb() {
        let mut climb = Climb::new(16);
        climb.measured(100.0);
        assert_eq!(climb.width(), 16, "probing twice the width");
        let probing = climb.phase;
        climb.set_ceiling(32);
        assert_eq!(
            (climb.width(), climb.phase),
            (16, probing),
            "a raise keeps the probe"
        );
        climb.set_ceiling(2);
        assert_eq!((climb.width(), climb.phase), (2, Phase::Measure));
    }

    #[tokio::test]
    async fn a_narrower_window_takes_back_the_slots_out_as_they_return() {
        let window = Window::new(16);
        let mut out = Vec::new();
        for _ in 0..8 {
            out.push(window.acquire().await);
        }
        window.set_ceiling(2);
        assert_eq!(window.slots.available_permits(), 0);
        out.truncate(3);
        assert_eq!(window.slots.available_permits(), 0, "5 back, 6 owed");
        out.clear();
        assert_eq!(window.slots.available_permits(), 2);
        window.set_ceiling(16);
        assert_eq!(
            window.slots.available_permits(),
            2,
            "a raise is climbed to, not jumped to"
        );
    }
}
