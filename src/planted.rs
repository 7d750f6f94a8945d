//! Defects planted on purpose, to prove that the simulator's checkers catch them (the
//! evidence tests of `hyperion-sim`). Compiled only with the `planted-defects` feature,
//! which only test builds enable: without it `is_planted` is a constant `false` and
//! the planted branches vanish, so no release build can carry a defect.

/// A defect that can be planted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Defect {
    /// A monitor on a process of this node never fires when the process dies.
    MonitorNeverFires = 1,
    /// A monitor notification is queued twice.
    MonitorFiresTwice = 2,
    /// Data is sent after a connection break even if the sender did not `reconnect`.
    DataWithoutReconnect = 4,
    /// Peers are declared lost after twice the configured heartbeat timeout.
    HeartbeatTimeoutDoubled = 8,
    /// A management agent's finalizer is skipped when the agent is killed.
    FinalizerSkippedOnKill = 16,
    /// A worker's handshake gives up one hello early (after 4 × 10 s, not 5 × 10 s).
    HandshakeGivesUpEarly = 32,
    /// Timeouts (`sleep`, receives with a timeout) fire after 90% of their duration.
    TimeoutFiresEarly = 64,
    /// A name held by a remote process stays registered after the holder died.
    NameKeptAfterHolderDied = 128,
    /// When two nodes dial each other at once, the node whose own dial should win (the
    /// smaller id) accepts the other's dial too: the two ends keep different connections.
    CrossedDialAccepted = 256,
    /// A `with_service` block that ends never sends its worker `ShutDown` (the
    /// launcher's backstop still stops the worker, so nothing else notices).
    ShutDownNotSent = 512,
    /// Data frames to another node are held back until the next control frame to that
    /// node, so a death notice (a control frame) can overtake its sender's last data.
    DeathNoticeOvertakesData = 1024,
}

#[cfg(feature = "planted-defects")]
mod switch {
    use super::Defect;
    use std::cell::Cell;

    thread_local! {
        static PLANTED: Cell<u32> = const { Cell::new(0) };
    }

    /// Plants `defect` on this thread until the guard is dropped.
    pub fn plant(defect: Defect) -> Planted {
        PLANTED.with(|set| set.set(set.get() | defect as u32));
        Planted(defect)
    }

    /// Removes its defect when dropped.
    #[must_use = "the defect is removed when the guard is dropped"]
    pub struct Planted(Defect);

    impl Drop for Planted {
        fn drop(&mut self) {
            PLANTED.with(|set| set.set(set.get() & !(self.0 as u32)));
        }
    }

    /// Whether `defect` is planted on this thread.
    pub fn is_planted(defect: Defect) -> bool {
        PLANTED.with(|set| set.get() & defect as u32 != 0)
    }
}

#[cfg(feature = "planted-defects")]
pub use switch::{plant, Planted};

#[cfg(feature = "planted-defects")]
pub(crate) use switch::is_planted;

/// Without the feature nothing is ever planted.
#[cfg(not(feature = "planted-defects"))]
#[inline(always)]
pub(crate) fn is_planted(_defect: Defect) -> bool {
    false
}

/// A worker's handshake attempts, one fewer under [`Defect::HandshakeGivesUpEarly`].
#[inline(always)]
pub(crate) fn handshake_attempts(attempts: u32) -> u32 {
    attempts.saturating_sub(is_planted(Defect::HandshakeGivesUpEarly).into())
}

/// A timeout's duration, 90% of it under [`Defect::TimeoutFiresEarly`].
#[inline(always)]
pub(crate) fn timeout(timeout: std::time::Duration) -> std::time::Duration {
    if is_planted(Defect::TimeoutFiresEarly) {
        timeout * 9 / 10
    } else {
        timeout
    }
}
