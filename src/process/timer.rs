//! Waiting on the node's clock: deadlines for receives with a timeout, and `sleep`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::handle::Process;
use crate::kernel::TimerKey;

/// A deadline armed on first use, `timeout` after that moment.
#[derive(Default)]
pub(crate) struct Deadline {
    timer: Option<TimerKey>,
    at: Option<Duration>,
}

impl Deadline {
    /// Whether the deadline has passed; arms a timer to wake the process at the deadline
    /// if not. A zero timeout has always passed (a receive that only looks).
    pub(crate) fn expired(&mut self, process: &Process, timeout: Duration) -> bool {
        let now = process.now();
        let timeout = crate::planted::timeout(timeout);
        let at = *self.at.get_or_insert_with(|| now.saturating_add(timeout));
        if now >= at {
            self.cancel(process);
            return true;
        }
        if self.timer.is_none() {
            self.timer = Some(process.node().state().arm_timer(at, process.task));
        }
        false
    }

    /// Disarms the timer, if armed. Safe in destructors: if the node is busy (the
    /// process is being torn down), a stale timer only causes a harmless extra poll.
    #[inline]
    pub(crate) fn cancel(&mut self, process: &Process) {
        if let Some(timer) = self.timer.take() {
            process.node().cancel_timer_if_free(timer);
        }
    }
}

/// The future of [`Process::sleep`].
pub struct Sleep<'a> {
    process: &'a Process,
    duration: Duration,
    deadline: Deadline,
}

impl<'a> Sleep<'a> {
    pub(crate) fn new(process: &'a Process, duration: Duration) -> Self {
        Sleep {
            process,
            duration,
            deadline: Deadline::default(),
        }
    }
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.process.assert_running();
        if this.deadline.expired(this.process, this.duration) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        self.deadline.cancel(self.process);
    }
}
