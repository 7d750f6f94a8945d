//! Launching at a bounded rate: a master asked for many workers at once starts a small
//! burst at once, then one per interval, so that it (and the machine, or the batch
//! scheduler) is not swamped by process starts or submissions before any worker has
//! connected.

use std::cell::Cell;
use std::time::Duration;

use crate::process::Process;

/// Launches a pacer lets through at once before spacing them, by default.
pub const LAUNCH_BURST_DEFAULT: u32 = 8;

/// Spaces launches an interval apart after a burst, on the launching process's clock
/// (a token bucket, in the form of the generic cell rate algorithm).
///
/// ```
/// use std::time::Duration;
/// use hyperion::launch::LaunchPacer;
/// let pacer = LaunchPacer::new(Duration::from_millis(100)).with_burst(2);
/// let took = hyperion_sim::Sim::run_alone(1, move |p| async move {
///     let started = p.now();
///     for _ in 0..5 {
///         pacer.wait_turn(&p).await;
///     }
///     p.now() - started
/// });
/// // Two at once, then one every 100 ms.
/// assert_eq!(took.unwrap(), Duration::from_millis(300));
/// ```
#[derive(Debug)]
pub struct LaunchPacer {
    interval: Duration,
    burst: u32,
    /// When the next launch would be due if launches came exactly one interval apart.
    theoretical_next: Cell<Option<Duration>>,
}

impl LaunchPacer {
    /// Launches `interval` apart after a burst of [`LAUNCH_BURST_DEFAULT`]
    /// (`Duration::ZERO`: no pacing).
    pub fn new(interval: Duration) -> LaunchPacer {
        LaunchPacer {
            interval,
            burst: LAUNCH_BURST_DEFAULT,
            theoretical_next: Cell::new(None),
        }
    }

    /// Lets `burst` launches (at least 1) through at once before spacing them.
    pub fn with_burst(mut self, burst: u32) -> LaunchPacer {
        self.burst = burst.max(1);
        self
    }

    /// The interval between launches after the burst.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until this launch's turn.
    pub async fn wait_turn(&self, p: &Process) {
        let now = p.now();
        let due = self
            .theoretical_next
            .get()
            .map_or(now, |next| next.max(now));
        let window = self.interval.saturating_mul(self.burst - 1);
        let turn = due.saturating_sub(window).max(now);
        self.theoretical_next.set(Some(due + self.interval));
        if turn > now {
            p.sleep(turn - now).await;
        }
    }
}
