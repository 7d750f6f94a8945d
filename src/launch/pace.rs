//! Launching at a bounded rate: a master asked for many workers at once starts them
//! one interval apart, so that it (and the machine, or the batch scheduler) is not
//! swamped by process starts or submissions before any worker has connected.

use std::cell::Cell;
use std::time::Duration;

use crate::process::Process;

/// Spaces launches at least an interval apart, on the launching process's clock.
///
/// ```
/// use std::time::Duration;
/// use hyperion::launch::LaunchPacer;
/// let pacer = LaunchPacer::new(Duration::from_millis(100));
/// let took = hyperion_sim::Sim::run_alone(1, move |p| async move {
///     let started = p.now();
///     for _ in 0..5 {
///         pacer.wait_turn(&p).await;
///     }
///     p.now() - started
/// });
/// assert_eq!(took.unwrap(), Duration::from_millis(400)); // the first goes at once
/// ```
#[derive(Debug)]
pub struct LaunchPacer {
    interval: Duration,
    next: Cell<Option<Duration>>,
}

impl LaunchPacer {
    /// Launches at least `interval` apart (`Duration::ZERO`: no pacing).
    pub fn new(interval: Duration) -> LaunchPacer {
        LaunchPacer {
            interval,
            next: Cell::new(None),
        }
    }

    /// The interval between launches.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until this launch's turn: at once for the first, then each one
    /// `interval` after the previous one's turn.
    pub async fn wait_turn(&self, p: &Process) {
        let now = p.now();
        let turn = self.next.get().map_or(now, |next| next.max(now));
        self.next.set(Some(turn + self.interval));
        if turn > now {
            p.sleep(turn - now).await;
        }
    }
}
