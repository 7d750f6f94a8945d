//! Time as the runtime sees it.
//!
//! Every timeout, sleep and timer in hyperion reads a [`Clock`]; nothing in code that
//! may run in the simulator asks the operating system for the time. A clock counts
//! monotonic time since its own epoch, as a [`Duration`].

use std::time::Duration;

/// A monotonic source of time for one node.
///
/// The real world uses [`SystemClock`]; the simulator gives each node a virtual clock
/// (possibly skewed) so that time is free and reproducible.
pub trait Clock {
    /// Time elapsed since this clock's epoch. Never goes backwards.
    fn now(&self) -> Duration;
}

/// The operating system's monotonic clock, counted from the moment it was created.
///
/// ```
/// use hyperion::clock::{Clock, SystemClock};
/// let clock = SystemClock::new();
/// assert!(clock.now() < std::time::Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    epoch: std::time::Instant,
}

impl SystemClock {
    /// A clock whose epoch is now.
    pub fn new() -> SystemClock {
        SystemClock {
            epoch: std::time::Instant::now(), // real-world only
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}
