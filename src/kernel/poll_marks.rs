//! The marks of a node's polls: each poll's begin and end, written by the node's
//! thread (two relaxed stores per poll, no clock read) and read by the real-world
//! watchdog (`node::watchdog`) on its own thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the node's thread says about its polls, read by the watchdog thread.
#[derive(Default)]
pub(crate) struct PollMarks {
    /// Polls begun (written by the node's thread only).
    begun: AtomicU64,
    /// Polls ended; equal to `begun` when no poll runs.
    ended: AtomicU64,
    /// The local number of the process being polled.
    local: AtomicU64,
}

impl PollMarks {
    /// A poll of the process numbered `local` begins.
    #[inline(always)]
    pub(crate) fn begin(&self, local: u64) {
        self.local.store(local, Ordering::Relaxed);
        // Only this thread writes `begun`: load + store, no read-modify-write.
        let begun = self.begun.load(Ordering::Relaxed) + 1;
        self.begun.store(begun, Ordering::Release);
    }

    /// The poll begun last has ended.
    #[inline(always)]
    pub(crate) fn end(&self) {
        let begun = self.begun.load(Ordering::Relaxed);
        self.ended.store(begun, Ordering::Release);
    }

    /// The poll running now, if any: its number and its process's local number.
    pub(crate) fn running(&self) -> Option<(u64, u64)> {
        let begun = self.begun.load(Ordering::Acquire);
        let local = self.local.load(Ordering::Relaxed);
        (self.ended.load(Ordering::Acquire) != begun).then_some((begun, local))
    }
}
