//! Spinning briefly before the event loop sleeps.
//!
//! A node that has just done work is likely to get more soon: the answer to the request
//! it sent, the next frame of a stream. Sleeping in `epoll_wait` and being woken costs
//! two context switches and, on a virtual machine, an inter-processor interrupt: on
//! loopback that was about half of a round trip. So, for a short window after its last work,
//! the loop polls without sleeping (yielding the CPU between polls to any other runnable
//! thread) and only then sleeps. An idle node does not spin: the window starts at work
//! and ends on its own. Erlang's schedulers also busy-wait before they sleep (`+sbwt`,
//! `very_short` by default since OTP 23).
//!
//! Real-world only: the simulator drives nodes its own way, on virtual time.

use std::time::{Duration, Instant};

/// How long a node's event loop keeps polling without sleeping after its last work, by
/// default (see [`NodeConfig::busy_wait`](crate::NodeConfig::busy_wait)).
pub const BUSY_WAIT_DEFAULT: Duration = Duration::from_micros(50);

/// When the loop last worked, and how long after that it spins.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BusyWait {
    window: Duration,
    last_work: Option<Instant>,
}

impl BusyWait {
    /// Spins for `window` after work; `Duration::ZERO` never spins.
    pub(crate) fn new(window: Duration) -> BusyWait {
        BusyWait {
            window,
            last_work: None,
        }
    }

    /// Whether spinning is on at all (the loop reads the clock only then).
    pub(crate) fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// The loop did work at `now`: a task ran, or an event arrived.
    pub(crate) fn worked(&mut self, now: Instant) {
        self.last_work = Some(now);
    }

    /// The poll timeout at `now` for a loop that would sleep for `sleep` (`None`: until
    /// an event): zero while within the window after the last work, `sleep` after it.
    pub(crate) fn timeout(&self, now: Instant, sleep: Option<Duration>) -> Option<Duration> {
        match self.last_work {
            Some(at) if now.saturating_duration_since(at) < self.window => Some(Duration::ZERO),
            _ => sleep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_micros(50);

    #[test]
    fn a_loop_that_never_worked_sleeps() {
        let now = Instant::now(); // real-world only
        let spin = BusyWait::new(WINDOW);
        assert_eq!(spin.timeout(now, None), None);
        assert_eq!(
            spin.timeout(now, Some(Duration::from_millis(3))),
            Some(Duration::from_millis(3))
        );
    }

    #[test]
    fn within_the_window_after_work_the_loop_polls_without_sleeping() {
        let start = Instant::now(); // real-world only
        let mut spin = BusyWait::new(WINDOW);
        spin.worked(start);
        assert_eq!(spin.timeout(start, None), Some(Duration::ZERO));
        let later = start + WINDOW - Duration::from_nanos(1);
        assert_eq!(
            spin.timeout(later, Some(Duration::from_secs(1))),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn after_the_window_the_loop_sleeps_until_new_work() {
        let start = Instant::now(); // real-world only
        let mut spin = BusyWait::new(WINDOW);
        spin.worked(start);
        let after = start + WINDOW;
        assert_eq!(spin.timeout(after, None), None);
        spin.worked(after);
        assert_eq!(spin.timeout(after, None), Some(Duration::ZERO));
    }

    #[test]
    fn a_zero_window_never_spins() {
        let now = Instant::now(); // real-world only
        let mut spin = BusyWait::new(Duration::ZERO);
        assert!(!spin.enabled());
        spin.worked(now);
        assert_eq!(spin.timeout(now, None), None);
    }
}
